"""Why a large face is poorly protected: the working scale against the full-resolution floor.

The cloak of a face wider than ``WORK_PX`` is optimised on the face shrunk to that width
(its visibility penalty scored there), then enlarged to full resolution, where
:func:`faceguard.cloak.budget.keep_visible` scores it again and scales it down until the
face's SSIMULACRA2 keeps the floor. For the album's 12.6 MP photo (one face 1080 px
wide; the reference is another photo of the person) and each working width, this
records: the seconds of the optimisation, each recognizer's distance to the reference
in threshold units (above 1 = not matched) before the cloak, after it without the
floor and after the floor, the full-resolution score before the floor, and the factor
the floor scaled the change by.

Usage: .venv/bin/python benchmarks/large_face.py [--threads N] [--work-px 224 448]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, write_results  # noqa: E402
from speed import big_photo, reference  # noqa: E402

from faceguard.album import embed_faces  # noqa: E402
from faceguard.cloak.budget import keep_visible  # noqa: E402
from faceguard.cloak.photo import cloak_face, face_in, paste  # noqa: E402
from faceguard.cloak.recipe import make_cloak, objective_factory  # noqa: E402
from faceguard.detect import FaceDetector  # noqa: E402
from faceguard.io import load_photo, to_tensor  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.settings import DEFAULT_MODELS, CloakSettings  # noqa: E402
from faceguard.visibility.differentiable import ssimulacra2  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work-px", type=int, nargs="+", default=[224, 448])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    album = data_dir("album")
    detector, ensemble = FaceDetector(), Ensemble.load(DEFAULT_MODELS)
    s = CloakSettings().resolved()
    photo = load_photo(big_photo(album))
    face = detector(photo.pixels)[0]
    ref = load_photo(reference(album))
    centroids = {m: e[0] for m, e in embed_faces(ensemble, to_tensor(ref.pixels),
                                                 detector(ref.pixels)[:1]).items()}
    image = to_tensor(photo.pixels)

    def distances(pixels: torch.Tensor) -> dict[str, float]:
        e = embed_faces(ensemble, pixels, [face])
        return {m: float(ensemble[m].compare(e[m][0], centroids[m]) / ensemble[m].threshold)
                for m in ensemble.names}

    results = {"face_px": round(face.width), "before": distances(image), "working_px": {}}
    for work_px in args.work_px:
        t0 = time.perf_counter()
        cloaked, crop = cloak_face(image, face, make_cloak(s), ensemble,
                                   objective_factory(s, ensemble, centroids, seed=s.seed),
                                   texture=s.texture, delta_e=s.delta_e, floor=None,
                                   work_px=work_px)
        seconds = time.perf_counter() - t0
        x0, y0, x1, y1 = crop.region
        region = cloaked[..., y0:y1, x0:x1]
        fx0, fy0, fx1, fy1 = face_in(crop, face)
        score = float(ssimulacra2(crop.pixels[..., fy0:fy1, fx0:fx1],
                                  region[..., fy0:fy1, fx0:fx1]))
        kept, _ = keep_visible(crop.pixels, region, s.floor, (fx0, fy0, fx1, fy1),
                               s.delta_e)
        scale = float((kept - crop.pixels).abs().max() / (region - crop.pixels).abs().max())
        results["working_px"][work_px] = {
            "optimise_s": seconds, "no_floor": distances(cloaked),
            "full_resolution_ssimulacra2": score, "floor_scaled_the_change_by": scale,
            "after_floor": distances(paste(image, crop, kept))}
        print(work_px, results["working_px"][work_px], flush=True)
    print(write_results("large-face", {"threads": args.threads, "models": list(DEFAULT_MODELS),
                                       "floor": s.floor, "photo": "album/person_img8/img49.jpg",
                                       "reference": "album/person_img8/img47.jpg",
                                       "distances": "threshold units (above 1: not matched)"},
                        results, False, started))


if __name__ == "__main__":
    main()
