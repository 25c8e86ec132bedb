"""``faceguard detect``: list the faces found in photos."""

from __future__ import annotations

import argparse
import json
import sys

from faceguard.cli import common
from faceguard.words import plural


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="list the faces in photos",
                       description="Detect faces (MTCNN) and print them per photo.")
    common.add_input_args(p)
    common.add_detector_args(p)
    common.add_device_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from faceguard.album import detect_photos
    from faceguard.progress import show_in_terminal

    jobs, skipped = common.search_inputs(args)  # skipped files: one line each reason
    photos = [path for path, _ in jobs]
    detector = common.make_detector(args)
    results, failures = [], []
    events = detect_photos(photos, detector, limit=common.pixel_limit(args))
    for event in show_in_terminal(events, quiet=args.quiet or args.json):
        if event.error:
            failures.append(event.error)
        else:
            results.append(event.result)
    if args.json:
        out = {"photos": [r.to_dict() for r in results], "errors": failures,
               "skipped": [s.to_dict() for s in skipped]}
        print(json.dumps(out, indent=2))
    else:
        print(f"{'photo':<48} {'size':>11} {'faces':>5}  boxes (x0,y0,x1,y1 @ score)")
        for r in results:
            boxes = "  ".join(
                "({:.0f},{:.0f},{:.0f},{:.0f} @ {:.2f}".format(*f.box, f.score)
                + ("" if f.orientation == "upright" else f", {f.orientation}") + ")"
                for f in r.faces
            ) or "no face"
            size = f"{r.width}x{r.height}"
            print(f"{_short(str(r.path)):<48} {size:>11} {len(r.faces):>5}  {boxes}")
        print(f"{plural(len(results), 'photo')}, "
              f"{plural(sum(len(r.faces) for r in results), 'face')}"
              + (f", {len(failures)} failed" if failures else ""), file=sys.stderr)
    return 1 if failures else 0


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]
