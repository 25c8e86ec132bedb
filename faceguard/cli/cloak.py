"""``faceguard cloak``: cloak the faces of chosen people in photos or whole albums."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from faceguard.atomic import stopped_by
from faceguard.cli import CLIError, common
from faceguard.visibility import describe
from faceguard.visibility import summary as visibility_line
from faceguard.words import plural

if TYPE_CHECKING:
    from faceguard.settings import CloakSettings


def add_parser(sub: argparse._SubParsersAction) -> None:
    from faceguard.measured import (
        COLOUR_SHARE_MEASURED,
        LARGE_FACES_MEASURED,
        MORE_FAMILIES_MEASURED,
        PERSON_MASK_MEASURED,
        TARGETED_MEASURED,
        TEXTURE_MEASURED,
    )
    from faceguard.settings import (
        DEFAULT_EOT_SAMPLES,
        DEFAULT_FORMAT,
        DEFAULT_METHOD,
        DEFAULT_PRESET,
        DEFAULT_QUALITY,
        DEFAULT_TRANSFER,
        METHODS,
        OUTPUT_FORMATS,
        PERCEPTUAL_PRESETS,
        PERSON_MASK_EOT_SAMPLES,
        PRESETS,
        TRANSFER_LEVERS,
        CloakSettings,
    )

    p = sub.add_parser(
        "cloak", help="cloak faces in photos or albums",
        description="Add a nearly invisible adversarial cloak to the faces of the people you "
                    "protect, so that face recognition fails to match them. Originals are "
                    "never modified; outputs keep the inputs' relative paths in OUTDIR with a "
                    "hidden manifest (.faceguard-manifest.json: no absolute paths, easy to "
                    "leave out of an upload).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets (perceptual): " + _presets(PERCEPTUAL_PRESETS, measured=True)
               + "\npresets (other methods): " + _presets(PRESETS)
               + "\nmethods:\n" + "\n".join(f"  {k:<14} {v.label}: {v.description}"
                                          for k, v in METHODS.items())
               + "\nexit codes: 0 every photo written; 1 some photos failed (each named) or "
                 "the run could not start; 2 usage error; 130 Ctrl-C, 143 SIGTERM, 129 "
                 "SIGHUP (the photos written so far are complete: --resume goes on)")
    common.add_input_args(p)
    required = p.add_argument_group("required arguments")
    required.add_argument("-o", "--out", type=Path, required=True, metavar="OUTDIR",
                          help="output folder (must not be inside an input folder)")
    who = p.add_argument_group("whom to protect (one of)")
    who.add_argument("--protect", nargs="+", type=Path, metavar="PHOTO",
                     help="reference photos (or folders, e.g. from `faceguard people`) "
                          "of the person to protect")
    who.add_argument("--protect-all", action="store_true",
                     help="cloak every face, each pushed from its person's other faces in "
                          "these photos, or from itself when it has none there, which "
                          "fools the recognizers less often")
    who.add_argument("--mask", type=Path, metavar="FILE",
                     help="apply a saved universal mask (a universal run keeps its masks in "
                          "OUTDIR/.faceguard/, out of what you upload; the mask knows whose "
                          "face it protects)")
    p.add_argument("--gallery", type=Path, metavar="DIR",
                   help="other people, one sub-folder each (for classifier methods and "
                        "targeted cloaks)")
    how = p.add_argument_group("how to cloak")
    how.add_argument("--method", choices=list(METHODS), default=DEFAULT_METHOD,
                     help=f"how the cloak is computed (default {DEFAULT_METHOD}; the methods "
                          "are listed below)")
    how.add_argument("--preset", choices=list(PRESETS), default=None,
                     help=f"how strong and how visible the cloak is (default {DEFAULT_PRESET}, "
                          "or with --mask the one the mask was made at; "
                          "the presets are listed below)")
    how.add_argument("--eps", type=float, default=None,
                     help="L-inf budget in grey levels, e.g. 8 (= 8/255); flm's warp is "
                          "bounded by how far it moves features instead")
    how.add_argument("--steps", type=int, default=None, help="iterations")
    how.add_argument("--floor", type=float, default=None, metavar="SCORE",
                     help="how invisible the cloak stays: the least face SSIMULACRA2, 0-100 "
                          "(90 looks identical up close, 75 about like saving at JPEG "
                          "quality 65; default from the preset)")
    how.add_argument("--delta-e", type=float, default=None, metavar="DE",
                     help="the most the face's colour may change, in CIEDE2000 units at "
                          "the 95th percentile of its pixels (2.3 is just noticeable side "
                          "by side; default from the preset)")
    rob = how.add_mutually_exclusive_group()
    rob.add_argument("--robust", dest="robust", action="store_true", default=None,
                     help="optimise through JPEG/blur/resize so the cloak survives re-encoding")
    rob.add_argument("--no-robust", dest="robust", action="store_false", default=None,
                     help="optimise on the photo only: faster, weaker after re-encoding")
    how.add_argument("--eot-samples", type=int, default=None,
                     help=f"random transforms per step with --robust (default "
                          f"{DEFAULT_EOT_SAMPLES}; {PERSON_MASK_EOT_SAMPLES} with "
                          "--person-mask)")
    how.add_argument("--objective", choices=["feature", "classifier"], default="feature",
                     help="push the face away from the person's centroid (feature) or fool "
                          "the local face classifier (classifier)")
    how.add_argument("--targeted", action="store_true",
                     help="pull towards a decoy person instead (needs --gallery); "
                          + TARGETED_MEASURED.replace("%", "%%"))
    common.add_models_arg(how, note=": " + MORE_FAMILIES_MEASURED.replace("%", "%%"))
    how.add_argument("--transfer", default=",".join(DEFAULT_TRANSFER), metavar="LEVERS",
                     help="comma-separated transfer levers, to fool recognizers the cloak is "
                          "not made on and survive clean-up (default %(default)s; 'none' for "
                          "none): " + "; ".join(f"{k}: {v}" for k, v in TRANSFER_LEVERS.items()))
    how.add_argument("--texture", type=float, default=CloakSettings.texture,
                     help="0..1: spend less of the budget on flat skin, where a cloak shows "
                          "first (default %(default)s); " + TEXTURE_MEASURED.replace("%", "%%"))
    how.add_argument("--colour-share", type=float, default=CloakSettings.chroma,
                     dest="chroma", metavar="SHARE",
                     help="0..1: how much of the budget may change colour rather than "
                          "brightness (default %(default)s): "
                          + COLOUR_SHARE_MEASURED.replace("%", "%%"))
    how.add_argument("--person-mask", type=int, metavar="STEPS",
                     help="faster for albums (perceptual method): fit one mask per protected "
                          "person on all their faces, then start each photo from it and "
                          "refine it for STEPS steps (default: every photo from scratch), "
                          + PERSON_MASK_MEASURED.replace("%", "%%"))
    how.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=list(OUTPUT_FORMATS), default=DEFAULT_FORMAT,
                     help="how photos are written: keep (each photo's own format), png, "
                          f"jpeg or webp (default {DEFAULT_FORMAT}; JPEG has no "
                          "transparency: transparent parts of a photo become white)")
    out.add_argument("--quality", type=int, default=DEFAULT_QUALITY,
                     help=f"JPEG/WebP quality (default {DEFAULT_QUALITY}); a JPEG saved "
                          "finer than this keeps its own compression")
    out.add_argument("--max-side", type=int, metavar="PX",
                     help="shrink each photo larger than this to PX pixels on its long side "
                          "before it is cloaked, and write it so (platforms serve 1080-2048; "
                          "default: as it is). A large face is fooled less often at the "
                          "same visibility: " + LARGE_FACES_MEASURED.replace("%", "%%"))
    out.add_argument("--keep-metadata", action="store_true",
                     help="keep non-identifying EXIF (camera, exposure); GPS, names, "
                          "captions and serials are always removed")
    out.add_argument("--resume", action="store_true",
                     help="skip photos already done with identical settings (the "
                          "others are cloaked again: their outputs are replaced)")
    out.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    common.add_detector_args(p)
    common.add_device_arg(p)
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar and no line per photo (the summary, errors and "
                        "the notes on the whole run stay)")
    # what a saved mask is applied without: their defaults, to tell those given
    p.set_defaults(run=run, not_for_a_mask={flag: p.get_default(dest)
                                            for flag, dest in _NOT_FOR_A_MASK.items()})


def _presets(table: dict, measured: bool = False) -> str:
    """The presets in one line each; ``measured``: with the default cloak's measured looks
    and protection."""
    from faceguard.measured import MEASURED_LOOKS, measured_protection

    return "; ".join(f"{k}: face SSIMULACRA2 >= {v['floor']:g} ({describe(v['floor'])}"
                     + (f"; {MEASURED_LOOKS[k]}; {measured_protection(k)}" if measured
                        else "")
                     + f"), eps {v['eps']:g}, {v['steps']} steps"
                     + (", robust" if v["robust"] else "") for k, v in table.items())


#: the options that say how a cloak is computed (flag -> its dest): a saved mask is
#: applied as it was made, and they changed nothing without a word
_NOT_FOR_A_MASK = {"--method": "method", "--eps": "eps", "--steps": "steps",
                   "--robust": "robust", "--eot-samples": "eot_samples",
                   "--objective": "objective", "--targeted": "targeted",
                   "--transfer": "transfer", "--colour-share": "chroma",
                   "--person-mask": "person_mask", "--gallery": "gallery"}


def run(args: argparse.Namespace) -> int:
    from faceguard.album import AlbumError
    from faceguard.io import find_photos
    from faceguard.io.photo import MIN_SIDE
    from faceguard.manifest import MANIFEST_NAME, PRIVATE_FOLDER, FaceRecord, Manifest, find_mask
    from faceguard.output_folder import check_outdir, make_outdir
    from faceguard.pipeline import CloakJob, cloak_album
    from faceguard.progress import show_in_terminal
    from faceguard.settings import METHODS
    from faceguard.verdict import tally

    chosen = sum(bool(x) for x in (args.protect, args.protect_all, args.mask))
    if chosen != 1:
        raise CLIError("say whom to protect with exactly one of --protect PHOTO..., "
                       "--protect-all or --mask FILE")
    if args.mask:  # masks saved by earlier versions next to the photos have moved
        args.mask = find_mask(args.mask)
        given = ["--no-robust" if flag == "--robust" and args.robust is False else flag
                 for flag, default in args.not_for_a_mask.items()
                 if getattr(args, _NOT_FOR_A_MASK[flag]) != default]
        if given:
            raise CLIError(f"{', '.join(given)} cannot change a saved mask, which is applied "
                           "as it was made (only how it may show applies: --preset, --floor, "
                           "--delta-e and --texture): leave "
                           + ("it" if len(given) == 1 else "them") + " out")
    for path in [*(args.protect or []), *([args.mask] if args.mask else []),
                 *([args.gallery] if args.gallery else [])]:
        if not path.exists():
            raise CLIError(f"no such file or folder: {path}")
    if args.protect and not find_photos(args.protect):  # as a missing one: a usage error
        raise CLIError("no reference photos found in " + ", ".join(map(str, args.protect)))
    try:  # a usage error, before any work
        check_outdir(args.out, [*args.inputs, *(args.protect or [])])
        if args.out.is_dir():  # one that cannot be written into, as `people` says it
            make_outdir(args.out)
    except AlbumError as exc:
        raise CLIError(str(exc)) from None
    # usage errors (missing inputs, nothing found) first; files passed over are named
    photos, passed_over = common.search_inputs(args)
    settings = settings_from_args(args)
    if not 1 <= args.quality <= 100:
        raise CLIError("--quality must be 1..100")
    if args.max_side is not None and args.max_side < MIN_SIDE:
        raise CLIError(f"--max-side must be at least {MIN_SIDE}")
    job = CloakJob(
        inputs=list(args.inputs), outdir=args.out, settings=settings,
        photos=photos, protect=args.protect, protect_all=args.protect_all, gallery=args.gallery,
        mask=args.mask, format=args.format, quality=args.quality, max_side=args.max_side,
        metadata="keep" if args.keep_metadata else "strip", resume=args.resume,
        overwrite=args.overwrite, recursive=args.recursive, limit=common.pixel_limit(args))
    detector = common.make_detector(args)
    counts = {"cloaked": 0, "copied": 0, "done before": 0, "failed": 0}
    unread = 0  # reference photos that could not be read (said each, as failed photos)
    faces: list[FaceRecord] = []  # the cloaked faces, for the tally at the end
    started = time.time_ns()  # outputs written since are this run's
    events = cloak_album(job, detector, lambda names: common.load_ensemble(
        list(names), args.device))
    try:
        for event in show_in_terminal(events, quiet=args.quiet):
            if event.stage != "cloaking":  # an album photo's error comes again when cloaking
                # a reference photo that could not be read (one without a face was read)
                unread += bool(event.error) and event.result is None \
                    and event.stage.startswith("reading ")
                continue
            if event.error:
                counts["failed"] += 1
            elif event.skipped:  # --resume: cloaked by an earlier run
                counts["done before"] += 1
            elif event.result:
                counts[event.result["status"]] += 1
                faces += [r for r in map(FaceRecord.from_dict, event.result["faces"])
                          if r.protected]
                if not args.quiet:
                    _print_photo(event.result)
    except AlbumError as exc:
        raise CLIError(str(exc), code=1) from None
    except KeyboardInterrupt:
        events.close()  # a photo cloaked beside the last one is recorded when it stops
        manifest = args.out / MANIFEST_NAME
        if not manifest.is_file():
            print("faceguard cloak: interrupted before any photo was written",
                  file=sys.stderr)
            return 128 + stopped_by[0]
        done = Manifest.load(args.out).written_since(started)  # some had no line above
        print(f"faceguard cloak: interrupted after {plural(done, 'photo')} written; "
              f"every photo finished is kept and in {manifest}: the same "
              "command with --resume goes on from there", file=sys.stderr)
        return 128 + stopped_by[0]  # 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP
    how = (f"the mask {args.mask.name}" if args.mask
           else f"{METHODS[settings.method].label} at --preset {settings.preset}")
    print(f"{plural(counts['cloaked'], 'photo')} cloaked ({plural(len(faces), 'face')}) "
          f"with {how}, {counts['copied']} without a protected "
          f"face copied, {len(passed_over)} skipped, "
          + (f"{counts['done before']} done before (--resume), " if args.resume else "")
          + f"{counts['failed']} failed"
          + (f", {plural(unread, 'other photo')} not read (named above)" if unread else "")
          + "; "
          f"manifest: {args.out / MANIFEST_NAME}", file=sys.stderr)
    if faces:  # an album's outcome at once, not added up from each photo's line
        print(tally(faces).words(None if args.mask else settings.stronger,
                                 lambda preset: f"--preset {preset}", "--max-side"),
              file=sys.stderr)
    masks = sorted((args.out / PRIVATE_FOLDER).glob("*.mask.pt")) if settings.universal else []
    if masks and not args.mask:
        print(f"universal {'masks' if len(masks) > 1 else 'mask'}, kept out of the photos: "
              f"{', '.join(map(str, masks))} (apply to new photos with --mask FILE; keep "
              "private, never upload: a mask holds a face template of its person)",
              file=sys.stderr)
    return 1 if counts["failed"] or unread else 0


def _made_at(mask: Path) -> str:
    """The preset a saved mask was made at (the default for masks that do not say, or
    files that are no mask: the run says why they cannot be applied)."""
    from faceguard.cloak.universal import UniversalMask
    from faceguard.settings import DEFAULT_PRESET

    try:
        return UniversalMask.load(mask).settings.get("preset") or DEFAULT_PRESET
    except (ValueError, OSError):
        return DEFAULT_PRESET


def settings_from_args(args: argparse.Namespace) -> CloakSettings:
    """The cloak settings of the command line (:func:`faceguard.settings.build_settings`)."""
    from faceguard.settings import DEFAULT_PRESET, build_settings

    # a mask is applied as visible as it was made, unless another preset is asked for
    preset = args.preset or (_made_at(args.mask) if args.mask else DEFAULT_PRESET)
    try:
        return build_settings(
            args.method, preset, eps=args.eps, steps=args.steps, robust=args.robust,
            floor=args.floor, delta_e=args.delta_e, models=common.model_list(args.models),
            eot_samples=args.eot_samples, objective=args.objective, targeted=args.targeted,
            texture=args.texture, seed=args.seed, person_mask=args.person_mask,
            chroma=args.chroma,
            transfer=tuple(n.strip() for n in args.transfer.split(",")
                           if n.strip() and n.strip() != "none"))
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _print_photo(entry: dict) -> None:
    from faceguard.manifest import FaceRecord, why_copied
    from faceguard.verdict import measured_against, verdict

    faces = [r for r in map(FaceRecord.from_dict, entry["faces"]) if r.protected]
    if not faces:
        print(f"{entry['output']}: {why_copied(entry)}, copied")
        return
    # the photo's verdict first, then a line per face: several faces on one line ran together
    print(f"{entry['output']}: {plural(len(faces), 'face')} cloaked in "
          f"{entry['seconds']:.1f}s. {verdict(faces).words()}")
    for k, f in enumerate(faces, 1):
        print(f"  face {k}: {visibility_line(f.quality)}; distance to {measured_against(f)}: "
              f"{f.distances_words()}")
