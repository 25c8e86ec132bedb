"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from faceguard.cli import CLIError

if TYPE_CHECKING:
    from faceguard.io import PixelLimit, Skipped


def add_input_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="PATH",
                        help="photos or folders of photos")
    parser.add_argument("--no-recursive", dest="recursive", action="store_false",
                        help="do not look into sub-folders")
    add_size_limit_arg(parser)


def add_size_limit_arg(parser: argparse.ArgumentParser) -> None:
    from faceguard.io import DEFAULT_MAX_PIXELS

    parser.add_argument("--max-megapixels", type=float, default=None, metavar="MP",
                        help="refuse photos larger than this many megapixels (default "
                             f"{DEFAULT_MAX_PIXELS / 1e6:g})")


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None,
                        help="torch device: cpu or cuda (default: cuda when present)")


def add_detector_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-face", type=int, metavar="PX",
                        help="smallest face to look for, in photo pixels (default 20; in "
                             "photos over 1024 px, about 1.2%% of their longer side: 47 px "
                             "at 4000 px). A size given here is looked for in every photo, "
                             "at more time on large ones (20 px at 12 megapixels: about "
                             "4x the detection time)")
    parser.add_argument("--min-score", type=float, default=0.9,
                        help="detector confidence threshold (default 0.9)")
    parser.add_argument("--upright-only", action="store_true",
                        help="don't look for faces on their side in photos with no sure "
                             "upright face (a photo whose rotation tag was lost); saves "
                             "about 0.25 s on each 12-megapixel photo without faces")


def make_detector(args: argparse.Namespace):
    from faceguard.detect import FaceDetector

    try:
        return FaceDetector(device=args.device, min_face_size=args.min_face,
                            min_score=args.min_score, turned=not args.upright_only)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def pixel_limit(args: argparse.Namespace) -> PixelLimit:
    """The photos' pixel limit from ``--max-megapixels`` (the core's default without it)."""
    from faceguard.io import PixelLimit

    try:
        return PixelLimit.megapixels(args.max_megapixels)
    except ValueError:
        raise CLIError("--max-megapixels must be positive") from None


def collect_photos(args: argparse.Namespace) -> list[Path]:
    """The photos named by the inputs; a missing path is a usage error."""
    return [path for path, _ in photo_jobs(args)]


def photo_jobs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """(photo, output-relative path) for the inputs; see :func:`search_inputs`."""
    return search_inputs(args)[0]


def search_inputs(args: argparse.Namespace) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """(photo, output-relative path) for the inputs, and the files skipped in folders.

    One line per reason on stderr names the skipped files; a missing path or no photo
    at all is a usage error.
    """
    from faceguard.album import relative_paths
    from faceguard.io import search, skipped_lines

    missing = [str(p) for p in args.inputs if not p.exists()]
    if missing:
        raise CLIError(f"no such file or folder: {', '.join(missing)}")
    found = [(p, search([p], args.recursive)) for p in args.inputs]
    skipped = [s for _, f in found for s in f.skipped]
    for line in skipped_lines(skipped):
        print(line, file=sys.stderr)
    jobs = relative_paths([(p, f.photos) for p, f in found])
    if not jobs:
        raise CLIError("no photos found in " + ", ".join(str(p) for p in args.inputs))
    return jobs, skipped


def add_models_arg(parser: argparse.ArgumentParser, default: str | None = None,
                   note: str = "") -> None:
    """``--models``; ``note``: said of 'all' in its help."""
    from faceguard.settings import DEFAULT_MODELS

    default = default or ",".join(DEFAULT_MODELS)
    parser.add_argument("--models", default=default, metavar="NAMES",
                        help=f"comma-separated face recognizers (default {default}; 'all' "
                             f"for one of each installed family{note}; see "
                             "`faceguard models list`)")


def model_list(text: str) -> list[str]:
    """The recognizers named in ``--models``, 'all' for one of each installed family (a
    usage error, exit 2, names one unknown)."""
    from faceguard.models.catalogue import model_names, one_per_family

    if text.strip() == "all":
        return one_per_family()
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CLIError("--models needs at least one model name")
    if unknown := [n for n in names if n not in model_names()]:
        raise CLIError(f"--models: unknown recognizer{'s' * (len(unknown) > 1)} "
                       f"{', '.join(unknown)}; choose among {', '.join(model_names())}")
    return names


def load_ensemble(names: str | list[str], device: str | None = None):
    """An Ensemble of installed recognizers; a missing model is a one-line error."""
    from faceguard.models import ModelError
    from faceguard.models.ensemble import Ensemble

    if isinstance(names, str):
        names = model_list(names)
    try:
        return Ensemble.load(names, device)
    except ModelError as exc:
        raise CLIError(str(exc), code=1) from None
