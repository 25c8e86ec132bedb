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
- ``protected``: the figure verdicts use. Of the faces the recognizer recognised
  uncloaked (their nearest person right, or within the threshold: ``clean_recognised``
  of them), the share the cloak turned on both counts: beyond the threshold, and
  nearest to someone else (counted with :data:`~faceguard.audit.verdict.TOP1_PEOPLE` people
  known or more). A face within the threshold is still matched by whoever asks "is this
  them?", and one the recognizer missed uncloaked is no work of the cloak;
- ``held_out``: the recognizer's family was not used to make the cloak (None: not known,
  as without the cloak run's manifest).

The gallery leaves the probe's own photo out (an attacker has other photos of the
person, not the original of this one).

Thresholds are calibrated on the gallery as the benchmarks' protocol calibrates them
(:mod:`faceguard.audit.protocol`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from faceguard.align import ARCFACE_112, face_transform, warp
from faceguard.audit.defenses.base import Defense, defend_face
from faceguard.audit.protocol import FARS, calibrate
from faceguard.audit.verdict import TOP1_PEOPLE
from faceguard.face import Face
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event
from faceguard.regions import crop_face
from faceguard.words import plural

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


def unmeasured_people(gallery: Gallery, faces: Sequence[AuditFace]) -> list[str]:
    """The people of ``faces`` whose gallery photos are only their cloaked ones': their
    faces cannot be measured (:func:`protection_table` skips them). A face no clean face
    was found for ("unknown") is no one to add photos of."""
    photos: dict[str, set[str]] = {}
    for person, photo in zip(gallery.people, gallery.photos, strict=True):
        photos.setdefault(person, set()).add(photo)
    return sorted({f.person for f in faces
                   if f.person in photos and not photos[f.person] - {f.photo}})


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


def embed_crops(ensemble: Ensemble, crops: Sequence[tuple[torch.Tensor, np.ndarray]],
                defend: Defense | None = None, batch: int = 32) -> dict[str, torch.Tensor]:
    """model -> (N, D) embeddings of face crops ((1, 3, h, w), (5, 2) landmarks each, as
    :func:`audit_crop` cuts them) after ``defend``: each crop defended and aligned on its
    own (crops differ in size), then embedded ``batch`` at a time (on a CPU, a batch
    costs far less than its faces one by one)."""
    aligned: dict[str, list[torch.Tensor]] = {m: [] for m in ensemble.names}
    mirror = getattr(defend, "mirrors", False)  # flipped aligned, where its landmarks hold
    with torch.no_grad():
        for image, landmarks in crops:
            if defend is not None and not mirror:
                image = defend_face(defend, image, landmarks)
            for m, a in ensemble.align(image, landmarks).items():
                aligned[m].append(a.flip(-1) if mirror else a)
        return {m: torch.cat([ensemble.embed_aligned({m: torch.cat(xs[k:k + batch])})[m]
                              for k in range(0, len(xs), batch)])
                for m, xs in aligned.items() if xs}


@dataclass
class ProtectionRow:
    """One cell of the protection table."""

    defense: str
    model: str
    held_out: bool | None
    faces: int
    protected_top1: float | None
    protected_verify: float | None
    mean_distance: float | None
    clean_top1: float | None
    clean_verify: float | None
    protected: float | None = None
    clean_recognised: float | None = None
    among: int = 0  # the most people a face was picked out among
    # the protected person with the least ``protected`` share, and theirs: 90% of the
    # faces over everyone hid one person whose only face was still matched
    least_person: str | None = None
    least_person_protected: float | None = None


def not_made_on(family: str, cloak_families: set[str]) -> bool | None:
    """Whether a recognizer of ``family`` is one the cloak was not made on; None when the
    families it was made on are not known (an empty set): counting it as not made on
    then called cloaks "protected" against a platform's own recognizer on the strength
    of the very recognizers they were made on."""
    return family not in cloak_families if cloak_families else None


def _own_thresholds(ensemble: Ensemble) -> dict[str, float]:
    """Each recognizer's own same-person threshold."""
    return {m: float(ensemble[m].threshold) for m in ensemble.names}


def audit_thresholds(ensemble: Ensemble, gallery: Gallery, far: float = FARS[0],
                     least: int = 1000) -> tuple[dict[str, float], str]:
    """The match threshold per recognizer for an audit, and a sentence saying which.

    Calibrated on the gallery (:func:`calibrate`) when it holds at least ``least`` clean
    impostor comparisons (so the FAR quantile rests on at least 10 of them); else each
    recognizer's own threshold.
    """
    people = len(set(gallery.people))
    comparisons = len(gallery.people) * (people - 1)
    if comparisons < least:
        return (_own_thresholds(ensemble),
                f"Match thresholds: each recognizer's own ({plural(people, 'person', 'people')} "
                f"known here: too few comparisons of different people to calibrate them "
                f"at FAR {far:.1%}).")
    t = calibrate(ensemble, gallery.embeddings, gallery.people, (far,))
    return ({m: t[m][far] for m in ensemble.names},
            f"Match thresholds calibrated on this gallery: {comparisons} comparisons of "
            f"clean faces with other people, at a false-match rate of {far:.1%}.")


def protection_table(faces: Sequence[AuditFace], gallery: Gallery, ensemble: Ensemble,
                     defenses: Mapping[str, Defense], cloak_families: set[str],
                     thresholds: Mapping[str, float] | None = None) -> Iterator[Event]:
    """Evaluate every (defense, recognizer) pair.

    ``thresholds``: model -> match threshold (default: each recognizer's own; see
    :func:`audit_thresholds`). Yields one "trying defenses" event per defense; the last
    event's ``result`` is the list of :class:`ProtectionRow`.
    """
    thresholds = thresholds or _own_thresholds(ensemble)
    rows: list[ProtectionRow] = []
    names = list(defenses)
    for k, name in enumerate(names, 1):
        defend = defenses[name]
        ens, gal, thr = _recognizers(defend, ensemble, gallery, thresholds)
        stats: dict[str, dict[str, list]] = {
            m: {"t1": [], "v": [], "d": [], "ct1": [], "cv": [], "seen": [], "turned": [],
                "among": [0], "by_person": {}} for m in ens.names}
        clean_all = embed_crops(ens, [(f.original, f.landmarks) for f in faces], defend)
        cloaked_all = embed_crops(ens, [(f.cloaked, f.landmarks) for f in faces], defend)
        for i, face in enumerate(faces):
            clean = {m: e[i] for m, e in clean_all.items()}
            cloaked = {m: e[i] for m, e in cloaked_all.items()}
            for m in ens.names:
                r = ens[m]
                people, cents = gal.centroids(m, exclude_photo=face.photo)
                if face.person not in people:
                    continue  # no other photo of this person to recognise them by
                own = cents[people.index(face.person)]
                s = stats[m]
                s["among"].append(len(people))
                recognised = []
                for emb, top1, verify in ((cloaked, "t1", "v"), (clean, "ct1", "cv")):
                    d = r.compare(emb[m][None], cents)
                    d_own = float(r.compare(emb[m], own))
                    named = len(people) > 1 and people[int(d.argmin())] == face.person
                    if len(people) > 1:
                        s[top1].append(named)
                    s[verify].append(d_own < thr[m])
                    # nearest among a few people is a coin toss: then the threshold alone
                    recognised.append(named and len(people) >= TOP1_PEOPLE
                                      or d_own < thr[m])
                    if top1 == "t1":
                        s["d"].append(d_own / thr[m])
                s["seen"].append(recognised[1])
                if recognised[1]:
                    s["turned"].append(not recognised[0])
                    s["by_person"].setdefault(face.person, []).append(not recognised[0])
        for m in ens.names:
            s = stats[m]
            shares = {p: _share(turned) for p, turned in s["by_person"].items()}
            least = min(shares, key=shares.get, default=None)
            rows.append(ProtectionRow(
                defense=name, model=m, held_out=not_made_on(ens[m].family, cloak_families),
                faces=len(s["v"]),
                protected_top1=_share(s["t1"], invert=True),
                protected_verify=_share(s["v"], invert=True),
                mean_distance=round(float(np.mean(s["d"])), 3) if s["d"] else None,
                clean_top1=_share(s["ct1"]), clean_verify=_share(s["cv"]),
                protected=_share(s["turned"]), clean_recognised=_share(s["seen"]),
                among=max(s["among"]), least_person=least,
                least_person_protected=shares.get(least)))
        yield Event(k, len(names), "trying defenses", result=rows if k == len(names) else None)


def _recognizers(defend: Defense, ensemble: Ensemble, gallery: Gallery,
                 thresholds: Mapping[str, float]
                 ) -> tuple[Ensemble, Gallery, Mapping[str, float]]:
    """The recognizers an attacker uses with ``defend``: the same ones, or, for a defense
    that retrains them (``adapt``/``map``, e.g. the robust recognizer), theirs, with the
    gallery mapped and the thresholds taken again (:func:`audit_thresholds`)."""
    if not hasattr(defend, "adapt"):
        return ensemble, gallery, thresholds
    ens = defend.adapt(ensemble)
    mapped = Gallery({m: defend.map(m, e) for m, e in gallery.embeddings.items()},
                     list(gallery.people), list(gallery.photos))
    return ens, mapped, audit_thresholds(ens, mapped)[0]


def _share(values: list[bool], invert: bool = False) -> float | None:
    if not values:
        return None
    rate = float(np.mean(values))
    return round(1 - rate if invert else rate, 4)


def examples(faces: list[AuditFace], defenses: dict, count: int) -> list[dict]:
    """A few faces as original / cloaked / purified / amplified difference (uint8 arrays)."""
    name = next((n for n in ("bl+sr", "bilateral", "jpeg75") if n in defenses), None)
    out = []
    for f in faces[:count]:
        t = face_transform(f.landmarks, ARCFACE_112 * 2)
        with torch.no_grad():
            o = warp(f.original, t, 224)
            c = warp(f.cloaked, t, 224)
            p = warp(defenses[name](f.cloaked), t, 224) if name else c
        diff = ((c - o) * 10 + 0.5).clamp(0, 1)  # amplified x10 around grey
        out.append({"person": f.person, "photo": f.photo, "purified_by": name,
                    **{k: (v[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                       for k, v in (("original", o), ("cloaked", c), ("purified", p),
                                    ("difference", diff))}})
    return out
