"""Attackers benchmark: detect-then-purify and an attacker who trains against FaceGuard.

On celeb24 with :mod:`benchmarks.protection`'s protocol (FAR-calibrated verification,
top-1 among 75 people, evasion and poisoning; ``protection_data.py``):

- the **protected people** are the first ``--users`` identities; their probes are
  cloaked with the default cloak (perceptual, balanced, every family: white-box; no
  held-out family, to keep the run short), or with P-FGSM (``--method pfgsm``);
- the **attacker's training set** is other identities of celeb24 (never a protected
  person): 8 or 12 people x 2 of their reference crops, cloaked with the same settings
  (:func:`faceguard.training_pairs.cloaked_pairs`, cached);
- per defense: protection of the cloaked probes, and its clean cost (the same protocol
  on the uncloaked probes: share "protected" without a cloak);
- the **reconstruction check**'s ROC AUC on the protected people's clean and cloaked
  probes, trained on the stand-ins only (people it never saw).

Usage: .venv/bin/python benchmarks/attackers.py [--quick] [--method pfgsm]
  --quick: 12 protected people x 1 probe, 8 stand-in people x 2 faces (about 12 min of
  one core); default: 12 x 2 probes and 12 x 2 stand-ins (about 20 min of one core).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402
from protection import Attacker, cloak_probes, settings_of, white_box  # noqa: E402
from protection_data import embed_given, load_celeb24, own_thresholds  # noqa: E402

from faceguard.audit.defenses import make_defense  # noqa: E402
from faceguard.audit.defenses.adaptive import AdaptivePurifier, DetectThenPurify  # noqa: E402
from faceguard.audit.defenses.robust import RobustRecognizer  # noqa: E402
from faceguard.audit.detectors.base import separation  # noqa: E402
from faceguard.audit.detectors.reconstruction import ReconstructionDetector  # noqa: E402
from faceguard.audit.protocol import evasion, poisoning  # noqa: E402
from faceguard.cloak.budget import eight_bit  # noqa: E402
from faceguard.training_pairs import cloaked_pairs  # noqa: E402

PAPERS = {
    "faceCure": "Radiya-Dixit et al., ICLR 2022: an adaptive attacker (robust training on "
                "thousands of cloaked faces) leaves Fawkes and LowKey about 3% protection",
    "magnet": "Meng and Chen, CCS 2017: reconstruction detector on MNIST/CIFAR, not faces",
    "sparsity": "Haque and Kang, J. KIIT 2021: identification module on faces (their own "
                "attacks, no FAR-calibrated protocol): no comparable figure",
}


def stand_ins(data, n_people: int, per_person: int):
    """Aligned crops of the first ``n_people`` unprotected identities (their references)."""
    others = sorted({data.labels[i] for i in data.refs} - set(data.user_ids))[:n_people]
    idx = [i for p in others for i in [j for j in data.refs if data.labels[j] == p][:per_person]]
    return data.images[idx], [data.labels[i] for i in idx]


def robust_judge(attacker: Attacker, data, robust: RobustRecognizer, images: torch.Tensor
                 ) -> dict:
    """Both threat models with the robust recognizer: every embedding through its head,
    thresholds recalibrated on the mapped clean faces."""
    ens = robust.adapt(attacker.ensemble)
    refs = embed_given(attacker.ensemble, data.images[data.refs])

    def mapped(emb: dict) -> dict:
        return {m: robust.map(m, e) for m, e in emb.items()}

    gallery = mapped(attacker.gallery)
    both = {m: torch.cat([gallery[m], robust.map(m, refs[m])])
            for m in attacker.ensemble.names}
    thresholds = own_thresholds(ens, both, attacker.gallery_labels
                                + [data.labels[i] for i in data.refs], "celeb24")
    emb = mapped(embed_given(attacker.ensemble, images))
    return {"evasion": evasion(ens, emb, attacker.truth, gallery, attacker.gallery_labels,
                               thresholds),
            "poisoning": poisoning(ens, emb, attacker.truth, mapped(attacker.query_emb),
                                   attacker.query_labels, gallery, attacker.gallery_labels,
                                   thresholds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="perceptual", choices=("perceptual", "pfgsm"),
                        help="the cloak (balanced, every family): the default, or P-FGSM "
                             "(results in attackers-pfgsm.json)")
    parser.add_argument("--quick", action="store_true", help="1 probe each, 8 stand-ins")
    args = parser.parse_args()
    config = white_box(args.method)
    started = time.perf_counter()
    torch.manual_seed(0)
    probes, n_standins = (1, 8) if args.quick else (2, 12)
    data = load_celeb24(probes_per_id=probes, user_ids=12)
    attacker = Attacker(data)
    timings = {}
    t0 = time.perf_counter()
    cloaked = eight_bit(cloak_probes(config, data))
    clean = data.images[data.probes]
    timings["cloak_probes_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs = cloaked_pairs(settings_of(config), given=stand_ins(data, n_standins, 2))
    timings["cloak_standins_s"] = time.perf_counter() - t0
    defenses = {"none": make_defense("none"), "purifier": make_defense("purifier")}
    for name, d in (("detect-then-purify", DetectThenPurify()),
                    ("adaptive-purifier", AdaptivePurifier()),
                    ("robust-recognizer", RobustRecognizer())):
        t0 = time.perf_counter()
        defenses[name] = d.fit(pairs.clean, pairs.cloaked, attacker.ensemble, pairs.people,
                               pairs.key)
        timings[f"fit_{name}_s"] = time.perf_counter() - t0
    results: dict = {"timings": timings, "protection": {}, "clean_cost": {}}
    for name, d in defenses.items():
        t0 = time.perf_counter()
        if name == "robust-recognizer":
            results["protection"][name] = robust_judge(attacker, data, d, cloaked)
            results["clean_cost"][name] = robust_judge(attacker, data, d, clean)
        else:
            with torch.no_grad():
                results["protection"][name] = attacker.judge(d(cloaked))
                results["clean_cost"][name] = attacker.judge(d(clean))
        timings[f"judge_{name}_s"] = time.perf_counter() - t0
        print(name, json.dumps(results["protection"][name]["evasion"]), flush=True)
    # the reconstruction check on people it never saw: fit on stand-ins, test on probes
    detection = {}
    for label, det in (("reconstruction (stats + map, 112 px)", ReconstructionDetector()),
                       ("reconstruction (stats only, as detect-then-purify)",
                        defenses["detect-then-purify"].detector)):
        if not det.is_fitted:
            det.fit(pairs.clean, pairs.cloaked)
        m = separation(det.score(clean), det.score(cloaked), det.threshold)
        detection[label] = {k: m[k] for k in ("roc_auc", "accuracy", "flagged_cloaked",
                                              "flagged_clean")}
    results["detection_unseen_people"] = detection
    results["flagged_by_detect_then_purify"] = {
        "cloaked": float(np.mean(defenses["detect-then-purify"].detector.predict(cloaked))),
        "clean": float(np.mean(defenses["detect-then-purify"].detector.predict(clean)))}
    settings = {"cloak": config, "cloak_settings": settings_of(config).to_dict(),
                "protected_people": len(data.user_ids), "probes": len(data.probes),
                "standins": pairs.source, "standin_people": sorted(set(pairs.people)),
                "gallery_people": attacker.people, "thresholds": attacker.thresholds,
                "papers": PAPERS,
                "note": "white-box only (the cloak is made on every family); protection "
                        "is the share of probes not matched at FAR 1% / 0.1% (far_*) and "
                        "not identified (top1); clean_cost is the same on uncloaked "
                        "probes (the floor)"}
    print(json.dumps(detection), flush=True)
    print(write_results("attackers" + ("" if args.method == "perceptual" else f"-{args.method}"),
                        settings, results, args.quick, started))


if __name__ == "__main__":
    main()
