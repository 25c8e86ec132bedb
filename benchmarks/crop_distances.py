"""How far the cloak moves each recognizer on celeb24's crops, in the units of
``album_distances.py``: why the crops' protection figures run ahead of the album's.

On the crops (``protection.py``) a recognizer the cloak never saw is fooled far more
often than on real photos (``protection_album.py``): dlib never seen 80% against 3%.
Shares hide why; distances show it. Each probe's distance to its person's clean
gallery centroid (12 other crops, the protocol's attacker), and to the centroid of the
8 references the cloak pushed from, divided by the recognizer's FAR 1% threshold
calibrated on celeb24's clean impostor pairs (as ``protection.py`` does): above 1, not
matched. Clean and cloaked, per recognizer, with the paired move.

``--models`` names the families the cloak is made on (default: mobileface and faceres,
dlib never seen); every installed family judges.

Usage: .venv/bin/python benchmarks/crop_distances.py [--probes-per-person N]
    [--models dlib mobileface ...] [--out NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402
from protection import JUDGES, cloak_probes, visibility  # noqa: E402
from protection_data import embed_given, load_celeb24  # noqa: E402

from faceguard.audit.protocol import calibrate, centroids  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402


def distances(ensemble: Ensemble, clean: dict, cloaked: dict, data, thresholds: dict) -> dict:
    """Per recognizer, each probe's distance (clean, cloaked) to its person's gallery and
    reference centroids in threshold units, and their summary."""
    def person_centroids(rows: list[int]) -> tuple[list[str], dict]:
        return centroids(ensemble, {m: clean[m][rows] for m in ensemble.names},
                         [data.labels[i] for i in rows])

    (gallery_names, galleries), (ref_names, refs) = (person_centroids(data.gallery),
                                                     person_centroids(data.refs))
    out = {}
    for m in ensemble.names:
        rows = []
        for k, i in enumerate(data.probes):
            person = data.labels[i]
            rows.append([float(ensemble[m].compare(e, c)) / thresholds[m][0.01]
                         for c in (galleries[m][gallery_names.index(person)],
                                   refs[m][ref_names.index(person)])
                         for e in (clean[m][i], cloaked[m][k])])
        a = np.array(rows)  # (probes, 4): gallery clean, cloaked; references clean, cloaked
        recognised = a[:, 0] < 1
        out[m] = {"gallery_clean": a[:, 0].mean(), "gallery_cloaked": a[:, 1].mean(),
                  "gallery_move": (a[:, 1] - a[:, 0]).mean(),
                  "gallery_move_sd": (a[:, 1] - a[:, 0]).std(),
                  "recognised": recognised.mean(),
                  "turned_of_recognised": (a[recognised, 1] >= 1).mean(),
                  "references_clean": a[:, 2].mean(),
                  "references_move": (a[:, 3] - a[:, 2]).mean(),
                  "probes": a.tolist()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes-per-person", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["mobileface", "faceres"])
    parser.add_argument("--out", default="crop-distances")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(0)
    data = load_celeb24(args.probes_per_person, user_ids=24)
    judges = Ensemble.load(JUDGES)
    clean = embed_given(judges, data.images)
    known = data.refs + data.gallery  # the thresholds never see the probes
    thresholds = calibrate(judges, {m: clean[m][known] for m in JUDGES},
                           [data.labels[i] for i in known])
    t = time.perf_counter()
    cloaked_images = cloak_probes({"method": "perceptual", "models": args.models}, data)
    cloak_s = time.perf_counter() - t
    results = {"thresholds": thresholds, "cloak_seconds": cloak_s,
               "visibility": visibility(data, cloaked_images),
               "distances": distances(judges, clean, embed_given(judges, cloaked_images),
                                      data, thresholds)}
    for m, d in results["distances"].items():
        print(f"{m:>10}: clean {d['gallery_clean']:.3f} -> cloaked {d['gallery_cloaked']:.3f}"
              f" (move {d['gallery_move']:+.3f}), turned {d['turned_of_recognised']:.0%}")
    settings = {"models": args.models, "method": "perceptual", "preset": "balanced",
                "probes": len(data.probes), "judges": list(JUDGES)}
    print(write_results(args.out, settings, results, started=started))


if __name__ == "__main__":
    main()
