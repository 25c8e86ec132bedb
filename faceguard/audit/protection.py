"""Does the cloak still protect? Protection rates per defense and per recognizer.

For every cloaked face we hold the original and the cloaked version, cut at
recognition resolution (:func:`audit_crop`). Someone who wants to recognise the person
may purify the photo first (a defense), then compare it with clean photos of known
people (the gallery). Per (defense, recognizer) we report:

- ``protected_top1``: share of cloaked faces whose nearest gallery person is wrong;
- ``protected_verify``: share whose distance to the person's clean centroid is beyond
  the recognizer's same-person threshold;
- ``mean_distance``: that distance in threshold units (1 = the threshold);
- ``clean_top1`` / ``clean_verify``: the same defense on the *uncloaked* faces, which must
  still be recognised (else the defense "protects" by destroying the photo);
- ``held_out``: the recognizer's family was not used to make the cloak.

The gallery leaves the probe's own photo out (an attacker has other photos of the
person, not the original of this one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from faceguard.detect import Face
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event
from faceguard.regions import crop_face

Defense = Callable[[torch.Tensor], torch.Tensor]

#: faces are audited with their box about this wide (what recognizers get to see)
AUDIT_FACE_PX = 224


@dataclass
class AuditFace:
    """One cloaked face and its original, as an attacker would get them.

    Attributes:
        person: identity label (gallery key).
        photo: the original photo's path (leave-one-out key).
        original, cloaked: (1, 3, h, w) crops at recognition resolution.
        landmarks: (5, 2) landmarks in crop pixels.
    """

    person: str
    photo: str
    original: torch.Tensor
    cloaked: torch.Tensor
    landmarks: np.ndarray


@dataclass
class Gallery:
    """Clean embeddings of known people: model -> (N, D), with person and photo per row."""

    embeddings: dict[str, torch.Tensor] = field(default_factory=dict)
    people: list[str] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)

    def add(self, person: str, photo: str, embeddings: Mapping[str, torch.Tensor]) -> None:
        for m, e in embeddings.items():
            e = e.reshape(1, -1)
            self.embeddings[m] = torch.cat([self.embeddings[m], e]) if m in self.embeddings else e
        self.people.append(person)
        self.photos.append(photo)

    def centroids(self, model: str, exclude_photo: str | None = None
                  ) -> tuple[list[str], torch.Tensor]:
        """(names, (P, D) centroids) over people, leaving ``exclude_photo`` out."""
        keep = np.array([p != exclude_photo for p in self.photos])
        names = sorted({n for n, k in zip(self.people, keep, strict=True) if k})
        people = np.array(self.people)
        e = self.embeddings[model]
        cents = [e[torch.from_numpy(keep & (people == n))].mean(0) for n in names]
        return names, torch.stack(cents) if cents else torch.zeros(0, e.shape[1])


def audit_crop(photo: torch.Tensor, face: Face, ensemble: Ensemble,
               face_px: int = AUDIT_FACE_PX) -> tuple[torch.Tensor, np.ndarray]:
    """The face's region at recognition resolution: ((1, 3, h, w), landmarks (5, 2)).

    The region holds all that the recognizers see; it is shrunk (with antialiasing) so
    the face box is at most ``face_px`` wide, as any recognizer shrinks it anyway.
    """
    crop = crop_face(photo, face, ensemble)
    scale = min(1.0, face_px / max(face.width, 1.0))
    pixels = crop.pixels
    if scale < 1:
        h, w = pixels.shape[-2:]
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        pixels = F.interpolate(pixels, size=size, mode="bilinear", antialias=True,
                               align_corners=False)
        sy, sx = size[0] / h, size[1] / w
        # pixel centres: x' + 0.5 = (x + 0.5) * s
        landmarks = (crop.landmarks + 0.5) * np.array([sx, sy]) - 0.5
    else:
        landmarks = crop.landmarks
    return pixels.clamp(0, 1), landmarks


def _embed(ensemble: Ensemble, image: torch.Tensor, landmarks: np.ndarray
           ) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {m: e[0] for m, e in ensemble.embed(image, landmarks).items()}


@dataclass
class ProtectionRow:
    """One cell of the protection table."""

    defense: str
    model: str
    held_out: bool
    faces: int
    protected_top1: float | None
    protected_verify: float | None
    mean_distance: float | None
    clean_top1: float | None
    clean_verify: float | None


def protection_table(faces: Sequence[AuditFace], gallery: Gallery, ensemble: Ensemble,
                     defenses: Mapping[str, Defense], cloak_families: set[str]
                     ) -> Iterator[Event]:
    """Evaluate every (defense, recognizer) pair.

    Yields one "trying defenses" event per defense; the last event's ``result`` is
    the list of :class:`ProtectionRow`.
    """
    rows: list[ProtectionRow] = []
    names = list(defenses)
    for k, name in enumerate(names, 1):
        defend = defenses[name]
        stats: dict[str, dict[str, list]] = {m: {"t1": [], "v": [], "d": [], "ct1": [], "cv": []}
                                             for m in ensemble.names}
        for face in faces:
            with torch.no_grad():
                clean = _embed(ensemble, defend(face.original), face.landmarks)
                cloaked = _embed(ensemble, defend(face.cloaked), face.landmarks)
            for m in ensemble.names:
                r = ensemble[m]
                people, cents = gallery.centroids(m, exclude_photo=face.photo)
                if face.person not in people:
                    continue  # no other photo of this person to recognise them by
                own = cents[people.index(face.person)]
                for emb, top1, verify in ((cloaked, "t1", "v"), (clean, "ct1", "cv")):
                    d = r.compare(emb[m][None], cents)
                    d_own = float(r.compare(emb[m], own))
                    s = stats[m]
                    if len(people) > 1:
                        s[top1].append(people[int(d.argmin())] == face.person)
                    s[verify].append(d_own < r.threshold)
                    if top1 == "t1":
                        s["d"].append(d_own / r.threshold)
        for m in ensemble.names:
            s = stats[m]
            rows.append(ProtectionRow(
                defense=name, model=m, held_out=ensemble[m].family not in cloak_families,
                faces=len(s["v"]),
                protected_top1=_share(s["t1"], invert=True),
                protected_verify=_share(s["v"], invert=True),
                mean_distance=round(float(np.mean(s["d"])), 3) if s["d"] else None,
                clean_top1=_share(s["ct1"]), clean_verify=_share(s["cv"])))
        yield Event(k, len(names), "trying defenses", result=rows if k == len(names) else None)


def _share(values: list[bool], invert: bool = False) -> float | None:
    if not values:
        return None
    rate = float(np.mean(values))
    return round(1 - rate if invert else rate, 4)
