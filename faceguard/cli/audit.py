"""``faceguard audit``: does the cloak survive purification, transfer, and escape detection?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faceguard.cli import CLIError, common


def add_parser(sub: argparse._SubParsersAction) -> None:
    from faceguard.audit import ATTACKER_SECONDS, QUICK_DEFENSES, QUICK_DETECTORS

    p = sub.add_parser(
        "audit", help="check whether cloaked photos still protect",
        description="Try to break the cloak with purification defenses, test it on recognizers "
                    "it was not made on (held-out), train detectors to spot it, and write "
                    "report.json and report.html.",
        epilog="Exit codes: 0 every check ran; 1 the audit could not run, or some photos "
               "could not be read (each named); 2 usage error; 3 the report was written but "
               "no face could be measured, or the cloak-detection check could not run (the "
               "output says why).")
    p.add_argument("--cloaked", type=Path, metavar="DIR",
                   help="folder of cloaked photos (a `faceguard cloak` output folder knows its "
                        "originals)")
    p.add_argument("--originals", type=Path, metavar="DIR",
                   help="folder of the originals (needed without a cloak manifest; paired by "
                        "relative path)")
    p.add_argument("-o", "--out", type=Path, default=Path("report"), metavar="OUTDIR",
                   help="where to write the report (default ./report)")
    p.add_argument("--gallery", type=Path, metavar="DIR",
                   help="clean photos of known people, one sub-folder each")
    p.add_argument("--models", default=None, metavar="NAMES",
                   help="recognizers to test (default: one per installed family; add "
                        "faceres-deep, a fine-tuned faceres, by name)")
    p.add_argument("--defenses", default=",".join(QUICK_DEFENSES), metavar="NAMES",
                   help="comma-separated defenses, 'all', or name:key=value forms "
                        f"(default {','.join(QUICK_DEFENSES)}); adaptive-purifier and "
                        "robust-recognizer, attackers who train against FaceGuard and not "
                        "among the default, first cloak other people's faces with your "
                        "settings (minutes on a CPU the first time, then cached)")
    p.add_argument("--detectors", default=",".join(QUICK_DETECTORS), metavar="NAMES",
                   help=f"comma-separated detectors, 'all' or 'none' "
                        f"(default {','.join(QUICK_DETECTORS)})")
    p.add_argument("--detect-after", default=None, metavar="DEFENSE",
                   help="purify before detecting, e.g. bl+sr (the paper's BL+SR then detect)")
    p.add_argument("--no-stand-ins", action="store_true",
                   help="with fewer than 8 cloaked faces, do not train the detectors on "
                        "stand-in faces FaceGuard cloaks itself (the detection check is "
                        "then skipped, exit code 3)")
    p.add_argument("--held-out-check", type=int, default=None, metavar="N",
                   help="when the cloak was made on every recognizer, re-make it without "
                        "each one's family on N faces and ask that family (default 4; 0: "
                        "off, and the verdict cannot say protected)")
    p.add_argument("--attacker-time", type=float, default=ATTACKER_SECONDS, metavar="SECONDS",
                   help="how long the attackers who train may spend cloaking other people's "
                        f"faces to learn from (default {ATTACKER_SECONDS:.0f}; 0: one batch "
                        "of 8); they are cached, so each later audit adds more")
    p.add_argument("--list-defenses", action="store_true", help="list the defenses and exit")
    p.add_argument("--list-detectors", action="store_true", help="list the detectors and exit")
    common.add_size_limit_arg(p)
    common.add_detector_args(p)
    common.add_device_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="after the verdict, print the detailed findings (also in the report)")
    p.set_defaults(run=run)


def make_defenses(names) -> dict:
    from faceguard.audit.run import make_defenses as make

    try:
        return make(names)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _names(text: str, known, nothing: str | None = None) -> list[str]:
    """The names in a comma-separated list; 'all' for every ``known`` one, ``nothing``
    (when given) for none."""
    if text == "all":
        return list(known)
    if text == nothing:
        return []
    return [n.strip() for n in text.split(",") if n.strip()]


def run(args: argparse.Namespace) -> int:
    from faceguard.album import AlbumError
    from faceguard.audit.cloak_detection import DETECTORS
    from faceguard.audit.defenses import DEFENSES, list_defenses
    from faceguard.audit.report import check_report_folder, write_report
    from faceguard.audit.run import AuditError, AuditJob, check_detect_after, run_audit
    from faceguard.output_folder import make_outdir
    from faceguard.progress import show_in_terminal
    from faceguard.stand_ins import stand_in_cloaks
    from faceguard.training_pairs import cloak_check, cloaked_pairs

    if args.list_defenses:
        for spec in list_defenses():
            params = ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
            print(f"{spec.name:<14} {spec.label}: {spec.description}"
                  + (f" [{params}]" if params else ""))
            if spec.citation:
                print(f"{'':<14} paper: {spec.citation}")
            if spec.limits:
                print(f"{'':<14} limits: {spec.limits}")
        return 0
    if args.list_detectors:
        for name, named in DETECTORS.items():
            print(f"{name:<16} {named.label}: {named.description}")
        return 0
    if args.cloaked is None:
        raise CLIError("say which folder holds the cloaked photos: --cloaked DIR")
    for path in (args.cloaked, args.originals, args.gallery):
        if path is not None and not path.exists():
            raise CLIError(f"no such file or folder: {path}")
    if args.gallery is not None and not args.gallery.is_dir():
        raise CLIError(f"--gallery: {args.gallery} is a file: give a folder with one "
                       "sub-folder of photos per person")
    try:  # before the work, not after it
        check_report_folder(args.out, args.cloaked)
        if args.out.is_dir():  # one that cannot be written into: not after minutes of work
            make_outdir(args.out)
    except AlbumError as exc:
        raise CLIError(str(exc)) from None
    detectors = _names(args.detectors, DETECTORS, nothing="none")
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise CLIError(f"unknown detector{'s' * (len(unknown) > 1)} {', '.join(unknown)}; "
                       "see --list-detectors")
    defenses = _names(args.defenses, DEFENSES)  # "none" is a defense: as published
    if not defenses:
        raise CLIError("--defenses needs at least one defense, e.g. none (as published)")
    make_defenses(defenses + ([args.detect_after] if args.detect_after else []))  # validate
    try:
        check_detect_after(defenses, args.detect_after)
    except ValueError as exc:
        raise CLIError(f"--detect-after: {exc}") from None
    job = AuditJob(cloaked=args.cloaked, outdir=args.out, originals=args.originals,
                   gallery=args.gallery,
                   models=common.model_list(args.models) if args.models else None,
                   defenses=defenses, detectors=detectors, detect_after=args.detect_after,
                   limit=common.pixel_limit(args), stand_ins=not args.no_stand_ins,
                   attacker_seconds=max(0.0, args.attacker_time),
                   **({} if args.held_out_check is None else
                      {"held_out_check": max(0, args.held_out_check)}))
    result = None
    try:
        events = run_audit(job, common.make_detector(args),
                           lambda names: common.load_ensemble(list(names), args.device),
                           make_defenses, stand_in_cloaks, training_pairs=cloaked_pairs,
                           check_cloak=cloak_check)
        for event in show_in_terminal(events, quiet=args.quiet):
            if event.stage == "done":
                result = event.result
    except AuditError as exc:
        raise CLIError(str(exc), code=1) from None
    try:
        json_path, html_path = write_report(result, args.out)
    except AlbumError as exc:
        raise CLIError(str(exc), code=1) from None
    from faceguard.audit.report import PRIVATE, summary

    verdict = result.verdict()
    print(verdict.words())
    if args.verbose:  # the detection sentences among them
        for line in summary(result):
            print(line)
    else:
        for detection in result.detection:  # how easily a platform spots the cloak
            print(detection["sentence"] + ".")
    if result.detection_problem:
        print(result.detection_problem)
    if not args.verbose:
        print("Details: the report, or run with --verbose.")
    print(f"report: {html_path} and {json_path} ({PRIVATE[0].lower()}{PRIVATE[1:]})",
          file=sys.stderr)
    # a check that could not run is no pass for a script reading the exit code
    return (1 if result.errors else
            3 if result.detection_problem or verdict.status == "unmeasured" else 0)
