"""Two attackers who learn the cloak from other people's cloaked real photos, for
``album_distances.py`` (its ``common_shift`` and ``robust_head`` views).

The attacker runs FaceGuard itself on photos of other people and compares each cloaked
face with its clean original. Each protected person is left out of what the attacker
learns from (their faces are the ones it meets later).

- ``common_shift``: the mean move (cloaked minus clean embedding) of the other people's
  faces gives a direction; each cloaked face loses its excess along it, measured from
  the mean level of the clean album faces of other people. Linear, no training.
- ``robust_head``: the audit's robust recognizer
  (:mod:`faceguard.audit.defenses.robust`: an ``e + MLP(e)`` head over each
  recognizer's embeddings, trained to map a cloaked face onto its clean original), trained
  on the other people's real pairs instead of the audit's stand-in crops. The person's
  other photos go through the head too, and the distance is in units of the head's own
  FAR 1% threshold, calibrated on the album's clean faces through it.

Radiya-Dixit, Hong, Carlini and Tramèr, "Data poisoning won't save you from facial
recognition", ICLR 2022.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from protection_data import own_thresholds

from faceguard.audit.defenses.robust import _train_head
from faceguard.models.ensemble import Ensemble

#: the robust head's Adam steps, as the audit trains it
HEAD_STEPS = 300


@dataclass
class Cloaked:
    """One cloaked face: its person, its row of results (views are added to it), its
    clean and cloaked embeddings (model -> (1, D)), and its mates (the indices of the
    person's other photos in the clean distractor set; empty when there are none)."""

    person: str
    row: dict
    clean: dict[str, torch.Tensor]
    cloaked: dict[str, torch.Tensor]
    mates: Sequence[int]


def add_learned_views(faces: list[Cloaked], ensemble: Ensemble, clean: dict[str, torch.Tensor],
                      labels: list[str], far1: dict[str, float]) -> None:
    """Set each face's ``common_shift`` and ``robust_head`` views (model -> distance to
    the mean of its person's other photos, in FAR 1% threshold units); None for a face
    with no other photos."""
    for face in faces:
        face.row["common_shift"] = face.row["robust_head"] = None
    for person in sorted({f.person for f in faces}):
        theirs = [f for f in faces if f.person == person and f.mates]
        others = [f for f in faces if f.person != person]
        if not theirs or not others:
            continue
        for f in theirs:
            f.row["common_shift"], f.row["robust_head"] = {}, {}
        album = [k for k, label in enumerate(labels)
                 if label.startswith("album/") and label != person]
        for m in ensemble.names:
            rec = ensemble[m]
            before = torch.cat([f.clean[m] for f in others]).float()
            after = torch.cat([f.cloaked[m] for f in others]).float()
            u = (after - before).mean(0)
            u = u / u.norm()
            excess = float((after @ u).mean() - (clean[m][album].float() @ u).mean())
            head = _train_head(rec, before, after, HEAD_STEPS)
            with torch.no_grad():
                mapped = {m: head(clean[m].float())}
                threshold = own_thresholds(Ensemble([rec]), mapped, labels, "album")[m][0.01]
                for f in theirs:
                    ref = clean[m][list(f.mates)].float()
                    e = f.cloaked[m].float()
                    f.row["common_shift"][m] = round(float(rec.compare(
                        (e - excess * u)[:, None], ref.mean(0, keepdim=True)[None])) / far1[m], 3)
                    f.row["robust_head"][m] = round(float(rec.compare(
                        head(e)[:, None], head(ref).mean(0, keepdim=True)[None])) / threshold, 3)
