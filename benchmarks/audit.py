"""Audit benchmark on celeb24: purification defenses x recognizers, and cloak detection.

Cloaks come from the cloaking engine (see benchmarks/protection.py for the split:
12 user identities, 8 references, 12 gallery images of all 24 identities, the rest
(5 per user identity, 60 in all) cloaked). For each cloak:

1. Protection table: every defense (``faceguard audit --list-defenses``) applied to the
   cloaked 112 px crops, then each recognizer's top-1 among the 24 gallery identities;
   protection = share of probes whose top-1 is wrong. The clean baseline (the same
   defense on the uncloaked probes: top-1 error) is reported alongside.
2. Detection: detectors trained on clean vs cloaked crops and tested on people they
   never saw (5 folds grouped by identity, :func:`faceguard.audit.cloak_detection.cross_validate`):
   WLMP with its six classifiers (also after BL+SR, the restoration paper's
   "BL+SR then detect"), and the trajectory detector (LSTM and MLP) watching dlib.

Papers' figures to compare with (their setting: CelebA / VGGFace2, their own models):
WLMP about 98-99% accuracy on P-FGSM before and after BL+SR; trajectory LSTM AUC about
0.98 on targeted BIM / MI-FGSM, 0.88-0.93 untargeted.

Usage: .venv/bin/python benchmarks/audit.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import protection as P  # noqa: E402
from common import data_dir, write_results  # noqa: E402

from faceguard.audit.cloak_detection import cross_validate  # noqa: E402
from faceguard.audit.defenses import DEFENSES, make_defense  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402

DEFAULT = ["dlib", "mobileface"]
PAPERS = {
    "wlmp": "Sadu & Das: WLMP + SVM/RF/kNN about 98-99% accuracy on P-FGSM, before and "
            "after BL+SR (CelebA)",
    "trajectory": "trajectory detector, LSTM + medoids: AUC 0.977-0.991 targeted BIM / "
                  "MI-FGSM, 0.878-0.930 untargeted (VGGFace2, 500 identities)",
}


def cloaks(quick: bool) -> list[dict]:
    out = [{"name": f"perceptual-{p}", "method": "perceptual", "preset": p, "models": DEFAULT}
           for p in (("balanced",) if quick else ("low", "balanced", "high"))]
    if quick:
        return out
    out += [
        {"name": "pfgsm-balanced", "method": "pfgsm", "models": DEFAULT},
        {"name": "bim-balanced-targeted", "method": "bim", "objective": "classifier",
         "targeted": True, "robust": False, "models": DEFAULT},
        {"name": "bim-balanced-untargeted", "method": "bim", "objective": "classifier",
         "robust": False, "models": DEFAULT},
        {"name": "mifgsm-balanced-targeted", "method": "mifgsm", "objective": "classifier",
         "targeted": True, "robust": False, "models": DEFAULT},
        {"name": "mifgsm-balanced-untargeted", "method": "mifgsm", "objective": "classifier",
         "robust": False, "models": DEFAULT},
    ]
    return out


def protection_table(data, attack, gallery_emb, cloaked, defenses) -> list[dict]:
    clean = data.images[data.probes]
    rows = []
    for name in defenses:
        defend = make_defense(name)
        with torch.no_grad():
            protected = P.top1_wrong(attack, data, defend(cloaked), gallery_emb)
            baseline = P.top1_wrong(attack, data, defend(clean), gallery_emb)
        for m in attack.names:
            rows.append({"defense": name, "model": m, "protection": protected[m],
                         "clean_top1_error": baseline[m]})
    return rows


def detection(data, attack, cloaked, quick: bool) -> list[dict]:
    clean = data.images[data.probes]
    groups = [data.labels[i] for i in data.probes]
    blsr = make_defense("bl+sr")
    with torch.no_grad():
        purified = (blsr(clean), blsr(cloaked))
    out = []
    wlmp = ["wlmp-linear", "wlmp-rbf"] if quick else [
        "wlmp-linear", "wlmp-poly", "wlmp-rbf", "wlmp-sigmoid", "wlmp-rf", "wlmp-knn"]
    for name in wlmp:
        for after, (a, b) in ((None, (clean, cloaked)), ("bl+sr", purified)):
            r = cross_validate(name, list(a), list(b), groups)
            out.append({"detector": name, "after_defense": after, "accuracy": r.accuracy,
                        "roc_auc": r.roc_auc, "precision": r.precision, "recall": r.recall,
                        "f1": r.f1})
    dlib = attack["dlib"]
    t = P.face_transform(P.ARCFACE_112, dlib.template)
    with torch.no_grad():
        chips = (P.warp(clean, t, dlib.input_size), P.warp(cloaked, t, dlib.input_size))
    for name in ["trajectory-lstm"] if quick else ["trajectory-lstm", "trajectory-mlp"]:
        r = cross_validate(name, list(chips[0].clamp(0, 1)), list(chips[1].clamp(0, 1)),
                           groups, recognizer=dlib)
        out.append({"detector": name, "watched_model": "dlib", "after_defense": None,
                    "accuracy": r.accuracy, "roc_auc": r.roc_auc, "precision": r.precision,
                    "recall": r.recall, "f1": r.f1})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="balanced cloak only, 3 probes per identity, fewer detectors")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(0)
    probes = 3 if args.quick else 5
    data = P.load_data(data_dir("celeb24"), probes_per_id=probes, user_ids=12)
    attack = Ensemble.load(P.MODELS)
    gallery_emb = P.embed_given(attack, data.images[data.gallery])
    ensembles = {tuple(DEFAULT): Ensemble([attack[m] for m in DEFAULT])}
    defenses = list(DEFENSES)
    settings = {"split": f"celeb24: 12 user identities x {probes} cloaked probes; attacker "
                         "gallery 12 clean images x 24 identities; detection: 5 folds "
                         "grouped by identity",
                "defenses": defenses, "papers": PAPERS,
                "held_out": [m for m in P.MODELS if m not in DEFAULT]}
    results = []
    for config in cloaks(args.quick):
        t0 = time.perf_counter()
        cloaked = P.quantise(P.cloak_probes(config, data, ensembles))
        entry = {**config, "probes": len(data.probes),
                 "cloak_seconds_per_probe": (time.perf_counter() - t0) / len(data.probes),
                 "protection": protection_table(data, attack, gallery_emb, cloaked, defenses),
                 "detection": detection(data, attack, cloaked, args.quick)}
        results.append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k != "protection"}), flush=True)
        held = [r for r in entry["protection"] if r["model"] == "faceres"]
        print("  faceres (held-out):", {r["defense"]: r["protection"] for r in held}, flush=True)
        # after every cloak: a long run cut short still leaves its numbers
        path = write_results("audit", settings, {"cloaks": results}, args.quick, started)
    print(path)


if __name__ == "__main__":
    main()
