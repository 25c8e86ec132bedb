"""``faceguard demo``: cloak and audit a bundled public-domain photo, end to end.

The photo is scikit-image's astronaut (Eileen Collins, NASA, public domain). The
reference photo of "the person to protect" is a mirrored, resized JPEG copy, standing
in for a second photo of her.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from faceguard.cli import CLIError, common
from faceguard.visibility import summary as visibility_line

MARKER = ".faceguard-demo"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="cloak and audit a bundled public-domain photo",
                       description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("-o", "--out", type=Path, default=Path("faceguard-demo"), metavar="DIR",
                   help="where to write the demo's photos and report (default ./faceguard-demo)")
    from faceguard.settings import DEFAULT_PRESET, PRESETS

    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS),
                   help=f"how strong and how visible the cloak is (default {DEFAULT_PRESET})")
    common.add_models_arg(p)
    common.add_device_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _prepare(out: Path) -> tuple[Path, Path]:
    """Write the demo photo and its reference; a previous demo folder is replaced."""
    import skimage.data
    from PIL import Image, ImageOps

    if out.exists():
        if not (out / MARKER).is_file():
            raise CLIError(f"{out} exists and is not a FaceGuard demo folder: choose another "
                           "with --out")
        shutil.rmtree(out)
    (out / "photos").mkdir(parents=True)
    (out / "reference").mkdir()
    (out / MARKER).write_text("created by `faceguard demo`; safe to delete\n")
    photo = Image.fromarray(skimage.data.astronaut())
    photo.save(out / "photos" / "astronaut.png")
    ImageOps.mirror(photo).resize((400, 400), Image.LANCZOS).save(
        out / "reference" / "astronaut-mirrored.jpg", quality=90)
    return out / "photos", out / "reference" / "astronaut-mirrored.jpg"


def run(args: argparse.Namespace) -> int:
    from faceguard.audit.report import summary, write_report
    from faceguard.audit.run import AuditJob, run_audit
    from faceguard.cli.audit import make_defenses
    from faceguard.detect import FaceDetector
    from faceguard.manifest import FaceRecord
    from faceguard.pipeline import CloakJob, cloak_album
    from faceguard.progress import show_in_terminal
    from faceguard.settings import CloakSettings

    models = common.model_list(args.models)  # a usage error leaves no folder behind
    photos, reference = _prepare(args.out)
    detector = FaceDetector(device=args.device)

    def ensemble(names):
        return common.load_ensemble(list(names), args.device)

    print("1/2 cloaking the astronaut photo (public domain, NASA) ...", file=sys.stderr)
    job = CloakJob(inputs=[photos], outdir=args.out / "cloaked", protect=[reference],
                   settings=CloakSettings(preset=args.preset, models=tuple(models)))
    for event in show_in_terminal(cloak_album(job, detector, ensemble), quiet=args.quiet):
        if event.stage == "cloaking" and event.result:
            for face in map(FaceRecord.from_dict, event.result["faces"]):
                if face.protected:
                    print(f"   face cloaked in {face.seconds:.1f}s: "
                          f"{visibility_line(face.quality)}; distance to her reference: "
                          f"{face.distances_words()}", file=sys.stderr)
    from faceguard.models.catalogue import one_per_family

    print("2/2 auditing: purification defenses x recognizers (incl. held-out) ...",
          file=sys.stderr)
    audit = AuditJob(cloaked=args.out / "cloaked", outdir=args.out / "report",
                     models=one_per_family(), detectors=())
    result = None
    from faceguard.training_pairs import cloak_check

    for event in show_in_terminal(run_audit(audit, detector, ensemble, make_defenses,
                                            check_cloak=cloak_check), quiet=args.quiet):
        if event.stage == "done":
            result = event.result
    _, html_path = write_report(result, audit.outdir)
    print(result.verdict().words())
    for line in summary(result):
        print(line)
    print(f"cloaked photo: {args.out / 'cloaked' / 'astronaut.png'}\nreport: {html_path}")
    return 0
