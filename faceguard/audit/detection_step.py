"""The audit's detection step: could a platform's detector tell the cloaked faces from
clean ones?

With enough cloaked faces (:data:`~faceguard.audit.cloak_detection.MIN_FACES`), each
detector is cross-validated on them. With fewer, it is trained on stand-in faces
FaceGuard cloaked itself with the same settings (:mod:`faceguard.stand_ins`, made by
the caller: the audit never cloaks) and tested on the user's. When neither can be
done, :attr:`AuditResult.detection_problem` says why in one plain sentence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict

import numpy as np
import torch

from faceguard.align import ARCFACE_112, face_transform, warp
from faceguard.audit.cloak_detection import (
    MIN_FACES,
    cross_validate,
    detector_label,
    train_and_test,
)
from faceguard.audit.defenses.base import Defense, defend_face
from faceguard.audit.protection import AuditFace
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event
from faceguard.words import plural


def too_few(faces: int, why: str) -> str:
    """The plain sentence of a detection check that cannot run with ``faces`` cloaked faces."""
    return (f"The cloak-detection check could not run: it needs at least {MIN_FACES} cloaked "
            f"faces, this set has {faces}, and {why}.")


def detect_cloaks(names: Sequence[str], faces: list[AuditFace], stand_ins: list[AuditFace],
                  result, ensemble: Ensemble, after: str | None = None,
                  before: Defense | None = None, watch: str = "dlib") -> Iterator[Event]:
    """Train and test each detector of ``names``; entries go to ``result.detection``.

    Args:
        faces: the user's cloaked faces.
        stand_ins: cloaked stand-in faces (their ``person`` the stand-in's name), used
            when ``faces`` are fewer than MIN_FACES.
        result: the :class:`~faceguard.audit.run.AuditResult` being filled.
        after, before: the name of a defense applied before detection, and that defense.
        watch: the recognizer the trajectory detectors watch (when it was loaded).
    """
    if not names or result.detection_problem:
        return
    persons = [f.person for f in faces]
    split = "person" if len(set(persons)) >= 2 else "photo"
    groups = persons if split == "person" else [f.photo for f in faces]
    if len(faces) < MIN_FACES:
        if not stand_ins:
            result.detection_problem = too_few(len(faces), "no stand-in face could be cloaked")
            return
        result.notes.append(f"Your {plural(len(faces), 'cloaked face')} "
                            f"{'are' if len(faces) > 1 else 'is'} too few to train a detector, "
                            f"so the detectors were trained on {len(stand_ins)} stand-in faces "
                            "FaceGuard cloaked itself (public-domain photos) with "
                            + ("the same settings" if result.cloak_settings else
                               "the default settings (without the cloak run's manifest, its "
                               "own are not known)")
                            + ", and tested on yours.")
    elif len(set(groups)) < 2:
        result.detection_problem = ("The cloak-detection check could not run: it needs faces "
                                    "from at least two photos.")
        return
    elif split == "photo":
        result.notes.append("All cloaked faces are one person, so detectors were tested on "
                            "other photos of the same person (a platform would train on "
                            "other people, which is no easier for it).")
    for k, name in enumerate(names, 1):
        rec = None
        template, size = ARCFACE_112 * 2, 224
        if name.startswith("trajectory-"):
            rec = ensemble[watch if watch in ensemble.names else ensemble.names[0]]
            template, size = rec.template, rec.input_size
        mine = _crops(faces, template, size, before)
        try:
            if len(faces) >= MIN_FACES:
                r = cross_validate(name, *mine, groups, persons, rec, split=split)
            else:
                r = train_and_test(name, _crops(stand_ins, template, size, before),
                                   [f.person for f in stand_ins], mine, rec)
        except ValueError as exc:
            result.notes.append(f"{detector_label(name)}: {exc}")
            yield Event(k, len(names), "training detectors", error=f"{name}: {exc}")
            if k == len(names) and not result.detection:  # none ran: exit code 3 says so
                result.detection_problem = ("The cloak-detection check could not run: "
                                            f"{detector_label(name)}: {exc}.")
            continue
        entry = asdict(r) | {"sentence": r.sentence(), "tested_on": r.tested_on(),
                             "after_defense": after,
                             "watched_model": rec.name if rec is not None else None}
        result.detection.append(entry)
        yield Event(k, len(names), "training detectors", result=entry)


def _crops(faces: list[AuditFace], template: np.ndarray, size: int,
           before: Defense | None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(clean, cloaked) aligned crops of ``faces``."""
    return ([_aligned(f.original, f.landmarks, template, size, before) for f in faces],
            [_aligned(f.cloaked, f.landmarks, template, size, before) for f in faces])


def _aligned(crop: torch.Tensor, landmarks: np.ndarray, template: np.ndarray, size: int,
             defense: Defense | None = None) -> torch.Tensor:
    image = defend_face(defense, crop, landmarks) if defense is not None else crop
    with torch.no_grad():
        return warp(image, face_transform(landmarks, template), size)[0].clamp(0, 1)
