"""Visibility benchmark: how visible the product's cloak is on real photos, in colour.

1. The demo's astronaut (skimage, public domain) cloaked as the demo does it (protect
   her by her own photo, every preset, default method and models): face SSIMULACRA2,
   its JPEG equivalent, CIEDE2000 mean and p95, the old grey SSIM / PSNR; and a 3x
   side-by-side crop of her face at ``balanced`` (``visibility-astronaut-3x.png``) to
   look at with your own eyes.
2. Every face of the album (``../shared/data/album``, labelled photos; ``--protect-all``),
   at ``balanced``: the same figures per face, and how many faces meet the targets
   (face SSIMULACRA2 >= 75 and CIEDE2000 p95 <= 3), as the manifest records them.

Usage: .venv/bin/python benchmarks/visibility.py [--quick] [--preset P]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, data_dir, write_results  # noqa: E402

from faceguard.detect import FaceDetector  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.pipeline import CloakJob, cloak_album  # noqa: E402
from faceguard.settings import LOOKS, PERCEPTUAL_PRESETS, CloakSettings  # noqa: E402
from faceguard.visibility import face_box  # noqa: E402

KEYS = ("ssimulacra2", "jpeg_equivalent", "ciede2000_mean", "ciede2000_p95", "ssim", "psnr",
        "linf", "saved_ssimulacra2")


def cloak(inputs: list[Path], out: Path, settings: CloakSettings, detector: FaceDetector,
          **who) -> list[dict]:
    """Cloak; the manifest entries of the photos, in order."""
    job = CloakJob(inputs=inputs, outdir=out, settings=settings, format="png", **who)
    entries = []
    for event in cloak_album(job, detector, Ensemble.load):
        if event.stage == "cloaking" and event.result:
            entries.append(event.result)
            print(event.path.name, [_figures(f) for f in event.result["faces"]
                                    if f["protected"]], flush=True)
    return entries


def _figures(face: dict) -> dict:
    return {k: face["quality"].get(k) for k in KEYS} | {"seconds": face["seconds"]}


def side_by_side(original: Path, cloaked: Path, box: list[float], path: Path,
                 scale: int = 3) -> None:
    """The face region (box grown 1.3x) before | after, enlarged ``scale`` x (nearest)."""
    a, b = Image.open(original).convert("RGB"), Image.open(cloaked).convert("RGB")
    region = face_box(box, a.width, a.height)
    a, b = (im.crop(region) for im in (a, b))
    size = (a.width * scale, a.height * scale)
    a, b = (im.resize(size, Image.NEAREST) for im in (a, b))
    out = Image.new("RGB", (2 * size[0] + 12, size[1]), "white")
    out.paste(a, (0, 0))
    out.paste(b, (size[0] + 12, 0))
    out.save(path)


def summary(faces: list[dict], floor: float) -> dict:
    s = np.array([f["ssimulacra2"] for f in faces])
    p95 = np.array([f["ciede2000_p95"] for f in faces])
    return {"faces": len(faces),
            "ssimulacra2_mean": float(s.mean()), "ssimulacra2_min": float(s.min()),
            "jpeg_equivalent_median": float(np.median([f["jpeg_equivalent"] for f in faces])),
            "ciede2000_mean": float(np.mean([f["ciede2000_mean"] for f in faces])),
            "ciede2000_p95_mean": float(p95.mean()), "ciede2000_p95_max": float(p95.max()),
            "ssim_mean": float(np.mean([f["ssim"] for f in faces])),
            "meet_floor": int((s >= floor - 0.5).sum()), "meet_p95_3": int((p95 <= 3).sum()),
            "seconds_per_face": float(np.mean([f["seconds"] for f in faces]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the astronaut and 8 album photos")
    parser.add_argument("--preset", default="balanced", choices=list(LOOKS))
    args = parser.parse_args()
    started = time.perf_counter()
    detector = FaceDetector()
    results: dict = {"astronaut": {}, "album": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        import skimage.data

        (tmp / "in").mkdir()
        Image.fromarray(skimage.data.astronaut()).save(tmp / "in" / "astronaut.png")
        Image.fromarray(skimage.data.astronaut()).save(tmp / "reference.png")
        for preset in LOOKS:
            entry = cloak([tmp / "in"], tmp / preset, CloakSettings(preset=preset), detector,
                          protect=[tmp / "reference.png"])[0]
            face = next(f for f in entry["faces"] if f["protected"])
            results["astronaut"][preset] = _figures(face) | {
                "distance_before": face["distance_before"],
                "distance_after": face["distance_after"]}
            if preset == args.preset:
                side_by_side(tmp / "in" / "astronaut.png", tmp / preset / entry["output"],
                             face["box"], RESULTS / "visibility-astronaut-3x.png")
        album = data_dir("album")
        photos = sorted(p for p in album.glob("person_*/*") if p.suffix.lower() in
                        (".jpg", ".jpeg", ".png", ".webp"))
        if args.quick:
            photos = photos[::8]
        (tmp / "album").mkdir()
        for p in photos:  # one flat folder: the same photos a user would pick
            shutil.copy(p, tmp / "album" / f"{p.parent.name}-{p.name}")
        entries = cloak([tmp / "album"], tmp / "album-out", CloakSettings(preset=args.preset),
                        detector, protect_all=True)
        faces = [_figures(f) | {"photo": e["output"]} for e in entries for f in e["faces"]
                 if f["protected"] and "ssimulacra2" in f["quality"]]
        results["album"] = {"summary": summary(faces, LOOKS[args.preset]["floor"]),
                            "faces": faces}
    print(json.dumps(results["album"]["summary"]))
    settings = {"preset": args.preset, "looks": LOOKS, "perceptual_presets": PERCEPTUAL_PRESETS,
                "method": CloakSettings().method, "models": list(CloakSettings().models),
                "album_photos": len(photos)}
    print(write_results("visibility", settings, results, args.quick, started))


if __name__ == "__main__":
    main()
