"""Audit benchmark on celeb24: purification defenses x recognizers, and cloak detection.

The data and the attacker are the protection benchmark's (``protection_data.py``,
:class:`protection.Attacker`): 12 protected people, each with 8 references, 12 gallery
images and 5 probes (3 with ``--quick``) cloaked with :func:`protection.cloak_probes`
(60 in all, 36 quick). Every cloak is made on every family (dlib, mobileface, faceres:
white-box, the product's default; with ``--quick``, on dlib and mobileface only, faceres
held out, as it is the slowest to cloak on); SFace and FaceNet judge too and no cloak is
made on them (``not_made_on``: the transfer figures). For each cloak:

1. Protection table: every defense (``faceguard audit --list-defenses``, less those
   that learn from other people's cloaked faces first: ``benchmarks/attackers.py``)
   applied to the cloaked 112 px crops, then each recognizer judges them with
   :mod:`faceguard.audit.protection`'s protocol: evasion and poisoning, the share of
   probes not matched at FAR 1% / 0.1% (thresholds calibrated on clean faces) and not
   identified top-1 among 75 people (celeb24's 24, att's 40, the album's; distractors
   widen the gallery). The clean baseline (``results.clean``: the same defense on the
   uncloaked probes, the share "protected" without a cloak) is reported once.
2. Detection: detectors trained on clean vs cloaked crops and tested on people they
   never saw (5 folds grouped by identity, :func:`faceguard.audit.cloak_detection.cross_validate`):
   WLMP with its six classifiers (also after BL+SR, the restoration paper's
   "BL+SR then detect"), and the trajectory detector (LSTM and MLP) watching dlib.

Papers' figures to compare with (their setting: CelebA / VGGFace2, their own models):
WLMP about 98-99% accuracy on P-FGSM before and after BL+SR; trajectory LSTM AUC about
0.98 on targeted BIM / MI-FGSM, 0.88-0.93 untargeted.

Usage: .venv/bin/python benchmarks/audit.py [--quick]
  --quick: the default cloak (faceres held out) only, 3 probes per person, 3 detectors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402
from protection import FAMILIES, JUDGES, Attacker, cloak_probes, white_box  # noqa: E402
from protection_data import Data, load_celeb24  # noqa: E402

from faceguard.align import ARCFACE_112, face_transform, warp  # noqa: E402
from faceguard.audit.cloak_detection import cross_validate  # noqa: E402
from faceguard.audit.defenses import DEFENSES, TRAINED, make_defense  # noqa: E402
from faceguard.audit.protocol import FARS  # noqa: E402
from faceguard.cloak.budget import eight_bit  # noqa: E402

THREATS = ("evasion", "poisoning")
#: the trajectory detectors' recognizer
WATCHED = "dlib"
PAPERS = {
    "wlmp": "Sadu & Das: WLMP + SVM/RF/kNN about 98-99% accuracy on P-FGSM, before and "
            "after BL+SR (CelebA)",
    "trajectory": "trajectory detector, LSTM + medoids: AUC 0.977-0.991 targeted BIM / "
                  "MI-FGSM, 0.878-0.930 untargeted (VGGFace2, 500 identities)",
}


def cloaks(quick: bool) -> list[dict]:
    """The cloaks measured, made on every family (:func:`protection.white_box`); quick:
    the default cloak, faceres (the slowest to cloak on) held out."""
    if quick:
        return [{**white_box(), "models": ["dlib", "mobileface"]}]
    out = [{**white_box(), "recipe": f"perceptual-{p}", "preset": p}
           for p in ("low", "balanced", "high")]
    out.append(white_box("pfgsm"))
    for method in ("bim", "mifgsm"):
        for targeted in (True, False):
            out.append({**white_box(method), "objective": "classifier", "robust": False,
                        "targeted": targeted, "recipe": f"{method}-balanced-"
                        f"{'targeted' if targeted else 'untargeted'}"})
    return out


def detection(data: Data, attacker: Attacker, cloaked: torch.Tensor,
              quick: bool) -> list[dict]:
    """Cross-validated detection of the cloaked probes, folds grouped by person."""
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
    # the trajectory detectors see what the watched recognizer sees: its own alignment
    watched = attacker.ensemble[WATCHED]
    t = face_transform(ARCFACE_112, watched.template)
    with torch.no_grad():
        chips = [warp(x, t, watched.input_size).clamp(0, 1) for x in (clean, cloaked)]
    for name in ["trajectory-lstm"] if quick else ["trajectory-lstm", "trajectory-mlp"]:
        r = cross_validate(name, list(chips[0]), list(chips[1]), groups, recognizer=watched)
        out.append({"detector": name, "watched_model": WATCHED, "after_defense": None,
                    "accuracy": r.accuracy, "roc_auc": r.roc_auc, "precision": r.precision,
                    "recall": r.recall, "f1": r.f1})
    return out


def judged(attacker: Attacker, images: torch.Tensor, defenses: list[str],
           before: dict[str, dict] | None = None) -> dict:
    """Both threat models on ``images`` after each defense: threat -> defense -> model ->
    rates (``far_0.01``, ``far_0.001``, ``top1``: shares protected; with ``before``,
    defense -> the attacker's embeddings of the probes' originals after it, also
    ``turned_far_0.01``, of the faces matched uncloaked: :func:`faceguard.audit.protocol
    .evasion`)."""
    by_defense = {d: attacker.judge(make_defense(d)(images), None if before is None else before[d])
                  for d in defenses}
    return {threat: {d: by_defense[d][threat] for d in defenses} for threat in THREATS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="the default cloak (faceres held out) only, 3 probes per "
                             "person, 3 detectors")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(0)
    probes = 3 if args.quick else 5
    data = load_celeb24(probes_per_id=probes, user_ids=12)
    attacker = Attacker(data)
    defenses = [d for d in DEFENSES if d not in TRAINED]
    settings = {"split": f"celeb24: {len(data.user_ids)} protected people x {probes} "
                         "cloaked probes; attacker gallery 12 clean images of each of "
                         "celeb24's 24 people and the distractors; detection: 5 folds "
                         "grouped by person",
                "probes": len(data.probes), "gallery_people": attacker.people,
                "poisoning_queries": len(attacker.queries), "fars": FARS,
                "families": FAMILIES, "judges": JUDGES, "defenses": defenses,
                "papers": PAPERS}
    before = {d: attacker.embed(make_defense(d)(data.images[data.probes])) for d in defenses}
    results: dict = {"thresholds": attacker.thresholds,
                     "clean": judged(attacker, data.images[data.probes], defenses),
                     "cloaks": []}
    print("clean", json.dumps(results["clean"]["evasion"]), flush=True)
    for config in cloaks(args.quick):
        t0 = time.perf_counter()
        cloaked = eight_bit(cloak_probes(config, data))
        unseen = [m for m in JUDGES if m not in config["models"]]
        entry = {**config, "not_made_on": unseen, "probes": len(data.probes),
                 "cloak_seconds_per_probe": (time.perf_counter() - t0) / len(data.probes),
                 **judged(attacker, cloaked, defenses, before),
                 "detection": detection(data, attacker, cloaked, args.quick)}
        results["cloaks"].append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k not in THREATS}), flush=True)
        print("  not made on, evasion at FAR 1%:",
              {d: {m: entry["evasion"][d][m]["far_0.01"] for m in unseen}
               for d in defenses}, flush=True)
        # after every cloak: a long run cut short still leaves its numbers
        path = write_results("audit", settings, results, args.quick, started)
    print(path)


if __name__ == "__main__":
    main()
