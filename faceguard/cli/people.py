"""``faceguard people``: find the people of an album, with a face chip of each."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from faceguard.atomic import stopped_by
from faceguard.cli import CLIError, common
from faceguard.words import plural


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("people", help="group the faces of an album into people",
                       description="Detect every face, group them into people by face "
                                   "recognition, and write face chips of each person to "
                                   "OUTDIR/person-N/ (use such a folder with "
                                   "`faceguard cloak --protect OUTDIR/person-N`).")
    common.add_input_args(p)
    p.add_argument("-o", "--out", type=Path, default=Path("people"), metavar="OUTDIR",
                   help="where to write the face chips (default ./people)")
    common.add_models_arg(p)
    common.add_detector_args(p)
    common.add_device_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from faceguard.album import AlbumError, find_people
    from faceguard.chips import write_people
    from faceguard.output_folder import check_kept_private, check_outdir
    from faceguard.progress import show_in_terminal

    photos = common.collect_photos(args)
    try:  # chips in the album would be read as photos, and uploaded with it
        check_outdir(args.out, args.inputs, uploaded=False)
        check_kept_private(args.out, "the face chips show the faces uncloaked")
    except AlbumError as exc:
        raise CLIError(str(exc)) from None
    detector = common.make_detector(args)
    ensemble = common.load_ensemble(args.models, args.device)
    people, failures = [], []
    for event in show_in_terminal(find_people(photos, detector, ensemble,
                                              common.pixel_limit(args)), quiet=args.quiet):
        if event.error:
            failures.append(event.error)
        if event.stage == "grouping":
            people = event.result
    try:
        folders = write_people(people, args.out, common.pixel_limit(args))
    except AlbumError as exc:
        raise CLIError(str(exc)) from None
    except KeyboardInterrupt:  # some chips written: a folder of a person may lack faces
        print(f"faceguard people: interrupted while writing the face chips: those in "
              f"{args.out} are incomplete; run the command again", file=sys.stderr)
        return 128 + stopped_by[0]
    if people:  # a table, when there is someone to put in it
        print(f"{'person':<10} {'faces':>5} {'photos':>6}  chips")
    for person, folder in zip(people, folders, strict=True):
        photos_of = len({p for p, _ in person.faces})
        print(f"{person.name:<10} {len(person.faces):>5} {photos_of:>6}  {folder}")
    summary = (f"{plural(len(people), 'person', 'people')} in "
               f"{plural(len(photos) - len(failures), 'photo')}")
    print(summary + (f", {plural(len(failures), 'photo')} failed" if failures else ""))
    if folders:  # what to do next, with this album's own names
        album = " ".join(shlex.quote(str(p)) for p in args.inputs)
        print(f"to cloak one of them: faceguard cloak {album} -o cloaked --protect "
              f"{shlex.quote(str(folders[0]))}")
    return 1 if failures else 0
