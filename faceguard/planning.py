"""What a cloak run needs before the first photo: whom to protect, who is whom in the
album, and what the method needs beyond the settings (the local classifier, decoys,
universal masks).

:func:`faceguard.pipeline.cloak_album` scans the album, then calls :func:`whose_faces`,
:func:`other_people` and :func:`make_plan`; how each becomes an attack is
:mod:`faceguard.cloak.recipe`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from faceguard.album import AlbumError, PhotoFaces, album_people
from faceguard.identity import FaceClassifier, Person, mean_distance
from faceguard.io import Photo, find_photos, load_photo, resolved, to_tensor
from faceguard.manifest import NOBODY
from faceguard.models.ensemble import Ensemble
from faceguard.progress import StepCallback, no_steps
from faceguard.settings import CloakSettings

SELF = -1  # "person" of a face cloaked with protect_all: the face itself


@dataclass
class Plan:
    """What cloaking needs beyond the settings, per protected person (index)."""

    protected: list[Person]
    classifier: FaceClassifier | None = None
    decoys: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    masks: dict[int, object] = field(default_factory=dict)  # UniversalMask
    #: person -> their mask as the warm start of each photo's cloak (``person_mask``)
    starts: dict[int, object] = field(default_factory=dict)  # UniversalMask

    def whom(self, owners: Sequence[int | None]) -> list[str | None]:
        """Per face of a photo (:func:`whose_faces`' owners), whom it is cloaked as, as the
        manifest records it: the person's name, :data:`NOBODY` (protect-all), or None."""
        return [None if k is None else NOBODY if k == SELF else self.protected[k].name
                for k in owners]


def whose_faces(scanned: PhotoFaces, protected: Sequence[Person], ensemble: Ensemble,
                protect_all: bool, threshold: float) -> list[int | None]:
    """Per face: the index of the protected person it is, else SELF (protect_all) or None.

    A face is the protected person nearest to it when its mean normalised distance to
    them is below ``threshold``. With ``protect_all`` too (the app's Everyone beside people
    ticked), their faces are cloaked as them, from their other photos, and the rest each
    for itself.
    """
    out: list[int | None] = [SELF if protect_all else None] * len(scanned.faces)
    if not scanned.faces or not protected:
        return out
    d = torch.stack([mean_distance(ensemble, scanned.embeddings, p) for p in protected])
    best = d.argmin(0)
    for j in range(len(out)):
        if d[best[j], j] < threshold:
            out[j] = int(best[j])
    return out


def people_among(scanned, who, ensemble: Ensemble, owner: int | None
                 ) -> list[tuple[Person, list[tuple[int, int]]]]:
    """:func:`faceguard.album.album_people` of the faces whose owner
    (:func:`whose_faces`) is ``owner``: [(person, [(photo index, face index) in
    ``scanned``, ...]), ...]."""
    rest, where = [], []  # where: per photo kept, (its index in scanned, its faces kept)
    for i, (p, owners) in enumerate(zip(scanned, who, strict=True)):
        keep = [j for j, k in enumerate(owners) if k == owner] if p else []
        if keep:
            rest.append(PhotoFaces(p.path, p.width, p.height, [p.faces[j] for j in keep],
                                   {m: e[keep] for m, e in p.embeddings.items()}))
            where.append((i, keep))
    return [(person, [(where[a][0], where[a][1][b]) for a, b in faces])
            for person, faces in album_people(rest, ensemble)]


def other_people(scanned, who, ensemble) -> list[Person]:
    """The album's other people (clusters of the faces nobody protects)."""
    return [person for person, _ in people_among(scanned, who, ensemble, None)]


def everyone_as_people(scanned, who, ensemble: Ensemble, protected: list[Person],
                       album: Mapping[Path, PhotoFaces] | None = None) -> None:
    """Faces cloaked each for itself (:data:`SELF`: protect-all, the app's Everyone)
    whose person has other faces in the album are cloaked as that person instead: pushed
    from, and measured against, their other faces, as a platform matches an upload
    against other photos of the person. On the album protocol's 35 faces, of those each
    recognizer matched uncloaked, the cloak made on dlib / mobileface / faceres turned
    60 / 50 / 43% so, against 43 / 27 / 34% pushed from itself
    (benchmarks/results/protection-album-everyone-grouped-12-06.json, -everyone-12-06).

    ``album``: photos already scanned (``CloakJob.scanned``; the app's whole album,
    around the one photo its preview cloaks): the faces of those not cloaked now, scanned
    with ``ensemble``'s recognizers, are grouped too, so a preview pushes a face from what
    the whole run would. Each such person is appended to ``protected`` (named :data:`NOBODY`:
    nobody named them; their ``album_faces`` are all their faces) and their faces'
    owners in ``who`` changed in place; a face alone in its group stays :data:`SELF`."""
    cloaked_now = {p.path for p in scanned if p}
    context = [p for path, p in (album or {}).items() if path not in cloaked_now
               and p.faces and set(p.embeddings) == set(ensemble.names)]
    every = [*scanned, *context]
    owners = [*who, *([SELF] * len(p.faces) for p in context)]
    for person, faces in people_among(every, owners, ensemble, SELF):
        to_cloak = [(i, j) for i, j in faces if i < len(scanned)]  # not the context's
        if to_cloak and len(faces) > 1:
            protected.append(Person(NOBODY, person.embeddings, album_faces=[
                (every[i].path, every[i].faces[j]) for i, j in faces]))
            for i, j in to_cloak:
                who[i][j] = len(protected) - 1


def needs_others(s: CloakSettings) -> bool:
    """Whether :func:`make_plan` uses the album's other people: the classifier's classes,
    or the decoy of a targeted feature cloak."""
    return s.objective == "classifier" or (s.targeted and s.objective == "feature")


def make_plan(s: CloakSettings, ensemble: Ensemble, protected: list[Person],
              others: list[Person], scanned, who, load: Callable[[Path], Photo],
              on_step: StepCallback = no_steps) -> Plan:
    """Whatever the method needs before cloaking: classifier, decoys, universal masks
    (as the method, or as the warm start of each photo with ``person_mask``).

    The classifier's classes are the protected people (0..P-1), then the others.
    ``load`` reads a photo of the album (universal masks are fitted on their faces).
    ``on_step`` follows the masks' fitting, all people's steps counted together.
    """
    plan = Plan(protected)
    if s.objective == "classifier":
        classes = protected + others
        if len(classes) < 2:
            raise AlbumError(f"the {s.method} method needs other people to tell the face "
                             "from: add --gallery DIR (one sub-folder per person)")
        plan.classifier = FaceClassifier(classes).fit()
    if s.targeted and s.objective == "feature":
        if not others or not protected:
            raise AlbumError("a targeted cloak needs the person (--protect) and a decoy "
                             "(--gallery DIR)")
        for k, person in enumerate(protected):
            plan.decoys[k] = decoy_for(ensemble, person, others).centroids()
    if s.person_mask is not None:  # the album path: one mask per person, refined per photo
        fit = replace(s, method="universal-sgd", eps=None, steps=None, floor=None,
                      delta_e=None, eot_samples=s.resolved().eot_samples,  # the path's
                      person_mask=None).resolved()
        # half the universal method's steps (50 sign steps at `balanced`): the fitting
        # was over half of the album path's time, and each photo's refinement makes up
        # for it (on the album's 35 probes, 60 paired figures: 0.45 points lower on
        # average; benchmarks/results/protection-album-person-mask-fit50.json, -fit100)
        fit = replace(fit, steps=max(1, fit.steps // 2))
        for k, person in enumerate(protected):
            if any(k in owners for owners in who):
                plan.starts[k] = _fit_mask(fit, ensemble, person, k, None, scanned, who,
                                           load, lambda d, n, k=k: on_step(
                                               k * n + d, len(protected) * n))
    if s.universal:
        if not protected:
            raise AlbumError("a universal mask is made for a person: name them with "
                             "--protect instead of --protect-all")
        for k, person in enumerate(protected):
            def person_step(done: int, total: int, k: int = k) -> None:
                on_step(k * total + done, len(protected) * total)

            mask = _fit_mask(s, ensemble, person, k, plan.classifier, scanned, who, load,
                             person_step)
            mask.settings["centroids"] = person.centroids()
            plan.masks[k] = mask
    return plan


def _distance(ensemble: Ensemble, a: Person, b: Person) -> float:
    return float(mean_distance(ensemble, {m: c[None] for m, c in a.centroids().items()}, b))


def decoy_for(ensemble: Ensemble, person: Person, others: list[Person]) -> Person:
    """The decoy of a targeted cloak: the one of ``others`` least like ``person`` (the
    largest mean normalised distance between their centroids), as Fawkes picks its
    target (Shan et al., USENIX Security 2020)."""
    return max(others, key=lambda o: _distance(ensemble, o, person))


def _fit_mask(s: CloakSettings, ensemble: Ensemble, person: Person, index: int,
              classifier: FaceClassifier | None, scanned, who, load: Callable[[Path], Photo],
              on_step: StepCallback = no_steps):
    """One person's universal mask, from all their faces in the album and in their
    reference photos."""
    from faceguard.cloak.recipe import fit_universal
    from faceguard.cloak.universal import UniversalMask, canonical_faces

    faces = []
    for p, owners in zip(scanned, who, strict=True):
        if p is None or index not in owners:
            continue
        photo = to_tensor(load(p.path).pixels)
        faces += [canonical_faces(photo, f.landmarks)
                  for f, k in zip(p.faces, owners, strict=True) if k == index]
    if not faces:
        raise AlbumError(f"{person.name} appears in none of the photos")
    faces += [canonical_faces(to_tensor(load_photo(path).pixels), landmarks)
              for path, landmarks in person.faces]
    faces_t = torch.cat(faces)
    generator = torch.Generator().manual_seed(s.seed)
    v, rate, algorithm = fit_universal(s, ensemble, faces_t, person, generator,
                                       classifier, on_step)
    return UniversalMask(v, person.name, ensemble.names,
                         {"method": s.method, "algorithm": algorithm, "eps": s.eps,
                          "faces": len(faces_t), "preset": s.preset, "floor": s.floor},
                         rate)


#: the name of a person given as photos, not as a folder
UNNAMED = "the person to protect"


def named_by_faceguard(name: str) -> bool:
    """Whether a protected person's name is one FaceGuard gave, not the user:
    :data:`UNNAMED`, or "person 2" of the app and ``faceguard people``'s "person-2" folders
    (:func:`faceguard.album.group_people`), however deep."""
    return name == UNNAMED or re.fullmatch(r"(.*/)?person[ -]\d+", name) is not None


def reference_groups(protect: Sequence[Path]) -> list[tuple[str, list[Path]]]:
    """(name, reference photos) of each person ``protect`` names: a folder is one person,
    named after it (``people/person-1`` -> "person-1": it names their mask file, the
    manifest's faces and the audit's figures; two folders, two people, each keeping
    their name when a third is added), and the photos given one by one are "the person
    to protect". A folder given twice is one person; a photo in two folders given
    (``people people/alice``) is the innermost's; folders without photos are left out."""
    folders: dict[Path, Path] = {}  # each folder once, as first given
    for given in protect:
        if given.is_dir():
            folders.setdefault(resolved(given), given)
    owner: dict[Path, Path] = {}
    for folder in sorted(folders, key=lambda f: -len(f.parts)):  # the innermost first
        for photo in find_photos([folders[folder]]):
            owner.setdefault(resolved(photo), folder)
    groups: list[tuple[str, list[Path]]] = []
    for folder, given in folders.items():
        # a/x/alice and b/x/alice: as many of its folders' names as tell it apart, in any order
        k = 1
        while k < len(folder.parts) and any(f != folder and f.parts[-k:] == folder.parts[-k:]
                                            for f in folders):
            k += 1
        name = "/".join(folder.parts[-k:]).lstrip("/") or UNNAMED
        if photos := [p for p in find_photos([given]) if owner[resolved(p)] == folder]:
            groups.append((name, photos))
    if loose := [p for p in protect if not p.is_dir()]:
        groups.append((UNNAMED, loose))
    return groups
