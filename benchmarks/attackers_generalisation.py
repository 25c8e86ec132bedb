"""Do the attackers who train against FaceGuard generalise to people they never saw?

Uses the training pairs of ``benchmarks/attackers.py`` (24 faces of 12 unprotected
celeb24 people, the default cloak; cached) and splits them by person: the robust
recognizer and the adaptive purifier learn from 6 people and are measured on the 6
others.

- robust recognizer: mean distance between a cloaked face and its clean original, in
  threshold units, before and after the heads (the head's own threshold after);
- adaptive purifier: mean squared error to the clean face of the shipped clean-up's
  output, of the adaptive one's, and of the cloaked face itself.

A head that closes the gap on its training people but not on the others has learned
those faces, not the cloak: it needs more people.

Usage: .venv/bin/python benchmarks/attackers_generalisation.py (about 5 minutes of one core)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attackers import stand_ins  # noqa: E402
from common import write_results  # noqa: E402
from protection import FAMILIES, settings_of, white_box  # noqa: E402
from protection_data import load_celeb24  # noqa: E402

from faceguard.audit.defenses import AdaptivePurifier, Purifier, RobustRecognizer  # noqa: E402
from faceguard.audit.defenses.adaptive import embed_aligned  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.training_pairs import cloaked_pairs  # noqa: E402


def main() -> None:
    started = time.perf_counter()
    data = load_celeb24(probes_per_id=2, user_ids=12)
    pairs = cloaked_pairs(settings_of(white_box()), given=stand_ins(data, 12, 2))
    people = sorted(set(pairs.people))
    train = torch.tensor([p in people[:6] for p in pairs.people])
    splits = {"trained_on": train, "never_seen": ~train}
    ens = Ensemble.load(FAMILIES)
    robust = RobustRecognizer().fit(pairs.clean[train], pairs.cloaked[train], ens,
                                    [p for p, k in zip(pairs.people, train, strict=True) if k])
    adaptive = AdaptivePurifier().fit(pairs.clean[train], pairs.cloaked[train])
    results: dict = {"robust_recognizer": {}, "adaptive_purifier": {}}
    with torch.no_grad():
        for split, keep in splits.items():
            clean, cloaked = pairs.clean[keep], pairs.cloaked[keep]
            e_clean, e_cloaked = embed_aligned(ens, clean), embed_aligned(ens, cloaked)
            for m in ens.names:
                r = ens[m]
                mapped = r.compare(robust.map(m, e_cloaked[m]), robust.map(m, e_clean[m]))
                results["robust_recognizer"][f"{split}/{m}"] = {
                    "before": float((r.compare(e_cloaked[m], e_clean[m]) / r.threshold).mean()),
                    "after": float((mapped / robust.thresholds[m]).mean())}
            results["adaptive_purifier"][split] = {
                "shipped_mse": float((Purifier()(cloaked) - clean).pow(2).mean()),
                "adaptive_mse": float((adaptive(cloaked) - clean).pow(2).mean()),
                "cloaked_mse": float((cloaked - clean).pow(2).mean())}
    settings = {"pairs": pairs.source, "trained_on": people[:6], "never_seen": people[6:],
                "cloak": white_box()}
    print(write_results("attackers-generalisation", settings, results, started=started))


if __name__ == "__main__":
    main()
