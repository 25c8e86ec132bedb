"""The held-out check: does the cloak fool a recognizer it was not made on?

A platform runs its own recognizer, so the audit's real question is about recognizers
the cloak never saw. When the cloak was made on every installed family (``--models
all``) none is left to ask (FaceGuard's default, three families, leaves SFace and
FaceNet). This check then answers it the way the protection benchmark does (leave one
family out): for a sample of the faces, it re-makes the cloak with the same settings
without one family, and asks that family whether it still recognises the face. It does
so for each family in turn.

The check cloak is made as the audit's stand-in cloaks are: on the aligned 112 px face,
with at most 20 steps and one draw per step (:func:`faceguard.stand_ins.stand_in_settings`,
:func:`faceguard.training_pairs.cloak_check`), so that the audit of 50 photos stays
within minutes. It measures how well this kind of cloak transfers on these faces, not
the user's own pixels, and it overstates it: on aligned crops the visibility floor
binds less, and such cloaks transfer far better than cloaks on whole photos (never
seen, faceres: 50% of crops against 11% of real photos; README, "What to expect"). So
the verdict never says "Protected" on the strength of this check alone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, replace

import numpy as np
import torch

from faceguard.align import ARCFACE_112, align_face
from faceguard.audit.defenses.classic import NoDefense
from faceguard.audit.protection import AuditFace, Gallery, protection_table
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event

#: faces re-cloaked per family left out (each costs a cloak at 112 px: seconds on a CPU)
CHECK_FACES = 4
STAGE = "checking recognizers it was not made on"

#: ``cloak(settings, faces)``: (N, 3, 112, 112) aligned faces cloaked with the run's
#: recorded settings (models replaced), e.g. :func:`faceguard.training_pairs.cloak_check`
CheckCloak = Callable[[dict, torch.Tensor], torch.Tensor]


def needed(rows: Sequence[Mapping], families: Collection[str]) -> bool:
    """True when the protection rows hold no recognizer the cloak was not made on, and
    the cloak was made on more than one family (so one can be left out)."""
    return len(families) > 1 and not any(r["held_out"] for r in rows)


def held_out_check(faces: Sequence[AuditFace], gallery: Gallery, ensemble: Ensemble,
                   settings: dict, cloak: CheckCloak, thresholds: Mapping[str, float],
                   sample: int = CHECK_FACES) -> Iterator[Event]:
    """Re-make the cloak without each family in turn on ``sample`` faces, and measure it
    on the family left out. One event per family; the last one's ``result`` is the list
    of protection rows (as :func:`faceguard.audit.protection.protection_table`'s, as
    dicts, with ``check=True``), for the defense "none" only.
    """
    from faceguard.models.catalogue import model_info
    from faceguard.training_pairs import ALIGNED_FACE, ALIGNED_PX

    made_on = list(settings.get("models", []))
    families = {m: model_info(m)["family"] for m in made_on}
    left_out = [f for f in dict.fromkeys(families.values())
                if any(ensemble[m].family == f for m in ensemble.names)]
    chosen = list(faces)[:sample]
    aligned = torch.cat([align_face(f.original, f.landmarks, ARCFACE_112, ALIGNED_PX)
                         .clamp(0, 1) for f in chosen])
    marks = np.asarray(ALIGNED_FACE.landmarks)
    rows: list[dict] = []
    for k, family in enumerate(left_out, 1):
        rest = [m for m in made_on if families[m] != family]
        checked = cloak({**settings, "models": rest}, aligned)
        copies = [replace(f, original=aligned[i:i + 1], cloaked=checked[i:i + 1],
                          landmarks=marks) for i, f in enumerate(chosen)]
        judge = Ensemble([ensemble[m] for m in ensemble.names if ensemble[m].family == family])
        for event in protection_table(copies, gallery, judge, {"none": NoDefense()},
                                      {families[m] for m in rest}, thresholds):
            if event.result is not None:
                rows += [dict(asdict(r), check=True) for r in event.result]
        yield Event(k, len(left_out), STAGE, detail=f"a cloak made without {family}",
                    result=rows if k == len(left_out) else None)
    if not left_out:
        yield Event(1, 1, STAGE, result=[])
