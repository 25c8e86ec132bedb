"""How SSIMULACRA2 jumps with the size of the region it scores.

SSIMULACRA2 halves the image until a side is under 8 pixels: 6 scales from 225 px on
the short side, fewer below. With fewer, the reference (libjxl, and the ``ssimulacra2``
package FaceGuard matches) reads its 108 weights in order as if there were 6, so every
channel's and scale's features take another's weight
(:func:`faceguard.visibility.differentiable.ssimulacra2`).

This scores one change at a time on centred squares of an album face, 288 px down to
112 px, as the reference does and with each feature weighed as at 6 scales
(``aligned``). The changes: the photo saved as JPEG at quality 90, and the default cloak
made through the pipeline. A score that measures visibility moves smoothly as the square
shrinks; the reference's jumps up by about ten points between 232 and 224 px. The face
region FaceGuard scores is the face box grown 1.3x: faces under about 173 px wide are
scored below 6 scales, the celeb24 crops (112 px) always.

Usage: .venv/bin/python benchmarks/ssimulacra2_scales.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, write_results  # noqa: E402

from faceguard.detect import FaceDetector  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.pipeline import CloakJob, cloak_album  # noqa: E402
from faceguard.settings import DEFAULT_MODELS, CloakSettings  # noqa: E402
from faceguard.visibility import face_box, jpeg_copy  # noqa: E402
from faceguard.visibility.differentiable import ssimulacra2  # noqa: E402

SIDES = (288, 256, 240, 232, 224, 216, 200, 160, 128, 112)
#: (person folder, photo, the person's two reference photos): faces 174-277 px wide
FACES = (("person_img1", "img5.jpg", ("img1.jpg", "img10.jpg")),
         ("person_img1", "img11.jpg", ("img1.jpg", "img10.jpg")),
         ("person_img16", "img62.jpg", ("img16.jpg", "img17.jpg")))


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255


def _scores(original: np.ndarray, changed: np.ndarray, centre: tuple[int, int]) -> dict:
    """side -> {reference, aligned} scores of the centred square (float64)."""
    cx, cy = centre
    out = {}
    for side in SIDES:
        a, b = (torch.from_numpy(np.ascontiguousarray(
            im[cy - side // 2: cy + side // 2, cx - side // 2: cx + side // 2])
        ).permute(2, 0, 1)[None] for im in (original, changed))
        with torch.no_grad():
            out[side] = {"reference": float(ssimulacra2(a, b, aligned=False)),
                         "aligned": float(ssimulacra2(a, b, aligned=True))}
    return out


def main() -> None:
    started = time.perf_counter()
    torch.set_num_threads(2)
    album = data_dir("album")
    detector, ensemble = FaceDetector(), Ensemble.load(DEFAULT_MODELS)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for person, name, refs in FACES:
            path = album / person / name
            original = _pixels(path)
            face = detector((original * 255 + 0.5).astype(np.uint8))[0]
            x0, y0, x1, y1 = face_box(face.box, original.shape[1], original.shape[0])
            centre = ((x0 + x1) // 2, (y0 + y1) // 2)
            job = CloakJob(inputs=[path], outdir=Path(tmp) / person,
                           protect=[album / person / r for r in refs],
                           settings=CloakSettings(), format="png")
            entries = [e.result for e in cloak_album(job, detector, lambda _: ensemble)
                       if e.stage == "cloaking" and e.result]
            cloaked = _pixels(job.outdir / entries[0]["output"])
            results[f"{person}/{name}"] = {
                "face_px": round(face.width), "region": [x1 - x0, y1 - y0],
                "jpeg_q90": _scores(original, jpeg_copy(original, 90), centre),
                "default_cloak": _scores(original, cloaked, centre)}
            print(name, {k: {s: round(v["reference"], 1) for s, v in d.items()}
                         for k, d in results[f"{person}/{name}"].items() if isinstance(d, dict)},
                  flush=True)
    write_results("ssimulacra2-scales", {"sides_px": list(SIDES), "faces": [
        f"{p}/{n}" for p, n, _ in FACES], "note": "centred squares of each face region; "
        "reference: the ssimulacra2 package's weighting; aligned: each feature weighed as "
        "its channel and scale at 6 scales"}, results, started=started)


if __name__ == "__main__":
    main()
