"""Training pairs for an attacker who knows FaceGuard: other people's faces, clean and
cloaked with the user's own settings.

FaceGuard is open, so an attacker can download it and cloak faces of their own
(Radiya-Dixit, Hong, Carlini and Tramèr, "Data poisoning won't save you from facial
recognition", ICLR 2022: trained against Fawkes and LowKey cloaks this way, they left
about 3% protection). The audit's adaptive attackers
(:mod:`faceguard.audit.defenses.adaptive`) train on the pairs made here.

The faces are never the protected person's: the bundled public-domain photos
(scikit-image's astronaut and cameraman, and their mirror images) plus, in a
developer checkout, the aligned faces of ``../shared/data/celeb24`` (or
``$FACEGUARD_TEST_DATA/celeb24``); installed copies have only the bundled ones, a weak
attacker, which the report says. Every face is an aligned 112 px ArcFace crop, cloaked
as a whole batch with the settings' method (feature objective: away from the face's
own clean embedding, as a photo cloaked with no reference photos), and cached per
settings hash in the user cache, never next to the photos.

This module is the bridge from the cloak to the audit: the audit itself takes pairs
and never imports the cloak.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from faceguard.align import ARCFACE_112, align_face
from faceguard.face import Face
from faceguard.settings import CloakSettings

#: side of the aligned stand-in crops (pixels)
ALIGNED_PX = 112
#: where the face sits in an aligned crop: the ArcFace template and the median MTCNN box
#: measured on 24 celeb24 crops
ALIGNED_FACE = Face((20.0, 11.0, 100.0, 118.0), ARCFACE_112.copy(), 1.0)

Images = torch.Tensor  # (N, 3, 112, 112) float in [0, 1]


@dataclass
class TrainingPairs:
    """Pairs of clean and cloaked faces of other people (stand-ins for the protected one).

    Attributes:
        clean, cloaked: (N, 3, 112, 112) aligned crops in [0, 1], cloaked rounded to 8 bits.
        people: (N,) who each face is (for splits and thresholds).
        source: one plain sentence on where the faces come from.
        key: a hash of the settings and the faces (names the cached models).
    """

    clean: Images
    cloaked: Images
    people: list[str]
    source: str
    key: str = ""


def shared_faces_dir() -> Path | None:
    """celeb24 in ``$FACEGUARD_TEST_DATA`` or ``<checkout>/../shared/data``, if present."""
    root = Path(os.environ.get("FACEGUARD_TEST_DATA",
                               Path(__file__).resolve().parents[2] / "shared" / "data"))
    return root / "celeb24" if (root / "celeb24").is_dir() else None


def bundled_faces(detector: Callable[[np.ndarray], list[Face]] | None = None
                  ) -> tuple[Images, list[str]]:
    """The public-domain faces that ship with scikit-image, aligned, and mirrored."""
    from faceguard.detect import FaceDetector
    from faceguard.stand_ins import public_domain_photos

    detector = detector or FaceDetector()
    crops, people = [], []
    for name, image in public_domain_photos().items():
        pixels = np.asarray(image, np.float32) / 255
        found = detector(np.ascontiguousarray(pixels))
        if not found:
            continue
        face = max(found, key=lambda f: f.width)
        photo = torch.from_numpy(pixels).permute(2, 0, 1)[None]
        crop = align_face(photo, face.landmarks, ARCFACE_112, ALIGNED_PX)[0]
        crops += [crop.clamp(0, 1), crop.flip(-1).clamp(0, 1)]
        people += [f"skimage/{name}"] * 2
    return (torch.stack(crops) if crops else torch.zeros(0, 3, ALIGNED_PX, ALIGNED_PX)), people


def shared_faces(limit: int, per_person: int = 2) -> tuple[Images, list[str]]:
    """Up to ``limit`` celeb24 faces, ``per_person`` of each person in name order."""
    from PIL import Image

    folder = shared_faces_dir()
    if folder is None or limit <= 0:
        return torch.zeros(0, 3, ALIGNED_PX, ALIGNED_PX), []
    crops, people = [], []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(person.glob("*.png"))[:per_person]:
            if len(crops) == limit:
                break
            with Image.open(f) as im:
                pixels = np.asarray(im.convert("RGB").resize((ALIGNED_PX, ALIGNED_PX)),
                                    np.float32) / 255
            crops.append(torch.from_numpy(pixels).permute(2, 0, 1))
            people.append(f"celeb24/{person.name}")
    return (torch.stack(crops) if crops else torch.zeros(0, 3, ALIGNED_PX, ALIGNED_PX)), people


def cloak_aligned(settings: CloakSettings, images: Images, device: str | None = None,
                  batch: int = 8, people: list[str] | None = None) -> Images:
    """Cloak aligned 112 px crops with ``settings``, ``batch`` at a time.

    Each face is pushed away from its own clean embedding (the feature objective), or
    for the classifier objective (P-FGSM) away from its own person in a classifier of
    ``people`` (who each face is; needed then), with the pipeline's budget shaping (face
    ellipse, texture, lightness) and visibility floor, and rounded to 8 bits as a saved
    photo is.

    Raises:
        ValueError: a universal mask (needs many photos of one person), or the classifier
            objective with fewer than two people.
    """
    out = list(cloak_batches(settings, images, device, batch, people))
    return torch.cat(out) if out else images.clone()


def cloak_batches(settings: CloakSettings, images: Images, device: str | None = None,
                  batch: int = 8, people: list[str] | None = None, start: int = 0
                  ) -> Iterator[Images]:
    """:func:`cloak_aligned` of ``images[start:]`` one batch at a time (on the CPU), so
    that a caller with a time budget can stop between batches (the classifier of the
    classifier objective still knows every face's person)."""
    from faceguard.cloak.budget import (
        eight_bit,
        face_weight,
        keep_visible,
        limit_lightness,
        texture_weight,
    )
    from faceguard.cloak.recipe import budget, make_cloak, objective_factory
    from faceguard.device import pick_device
    from faceguard.models.ensemble import Ensemble
    from faceguard.visibility import face_box

    s = settings.resolved()
    if s.universal:
        raise ValueError(f"stand-in cloaks with the {s.method} method (a universal mask) "
                         "are not supported yet")
    dev = pick_device(device)
    ensemble = Ensemble.load(s.models, dev)
    gen = torch.Generator(device=dev).manual_seed(s.seed)
    box = face_box(ALIGNED_FACE.box, ALIGNED_PX, ALIGNED_PX)
    marks = np.broadcast_to(ALIGNED_FACE.landmarks, (len(images), 5, 2)).copy()
    classify = None
    if s.objective == "classifier":
        classify = _classes(s, ensemble, images, marks, people)
    for k in range(start, len(images), batch):
        x = images[k:k + batch].to(dev)
        weight = face_weight(ALIGNED_FACE, (0, 0, ALIGNED_PX, ALIGNED_PX)).to(x)
        weight = weight.expand(len(x), -1, -1, -1)
        if s.texture > 0:
            weight = weight * texture_weight(x, s.texture)
        weight = limit_lightness(weight, x, budget(s), s.delta_e)
        if classify is None:
            with torch.no_grad():
                own = ensemble.embed(x, marks[k:k + len(x)])
            make = objective_factory(s, ensemble, own, seed=s.seed)
            cloaked = make_cloak(s)(x, make(marks[k:k + len(x)]), weight, gen)
        else:  # one call per face: each has its own class and decoy
            make = objective_factory(s, ensemble, classifier=classify[0], seed=s.seed)
            cloaked = torch.cat([
                make_cloak(s)(x[i:i + 1], make(marks[:1], *classify[1][k + i]),
                              weight[i:i + 1], gen) for i in range(len(x))])
        cloaked = torch.cat([keep_visible(x[i:i + 1], cloaked[i:i + 1], s.floor, box,
                                          s.delta_e)[0]
                             for i in range(len(x))])
        yield eight_bit(cloaked).detach().cpu()


def _classes(s: CloakSettings, ensemble, images: Images, marks: np.ndarray,
             people: list[str] | None):
    """The classifier objective's classifier of the stand-in people, and per face its
    (class, decoy class), as the pipeline picks them
    (:func:`faceguard.cloak.recipe.classes`)."""
    from faceguard.cloak.recipe import classes
    from faceguard.identity import FaceClassifier, Person

    names = sorted(set(people or []))
    if len(names) < 2:
        raise ValueError(f"stand-in cloaks with the {s.method} method need faces of at least "
                         "two people")
    with torch.no_grad():
        emb = {m: e.cpu() for m, e in ensemble.embed(images.to(ensemble.device), marks).items()}
    who = np.array(people)
    clf = FaceClassifier([Person(n, {m: e[torch.from_numpy(who == n)] for m, e in emb.items()})
                          for n in names]).fit()
    return clf, [classes(s, clf, {m: e[i] for m, e in emb.items()}, names.index(people[i]))
                 for i in range(len(images))]


def _settings(settings: CloakSettings | dict | None) -> CloakSettings:
    """Cloak settings from a manifest's dict (lists as tuples), or the defaults."""
    if isinstance(settings, dict):
        settings = CloakSettings.from_dict(settings)
    return (settings or CloakSettings()).resolved()


def cloak_check(settings: dict, images: Images) -> Images:
    """Aligned crops cloaked as the audit's stand-ins are, from a run's recorded
    ``settings`` (a manifest's dict; at most 20 steps, :func:`stand_in_settings`): the
    audit's held-out check (:mod:`faceguard.audit.held_out`)."""
    from faceguard.stand_ins import stand_in_settings

    return cloak_aligned(stand_in_settings(settings), images)


def cloaked_pairs(settings: CloakSettings | dict | None = None, faces: int = 16,
                      avoid: Callable[[Images], np.ndarray] | None = None,
                      cache: Path | None = None, device: str | None = None,
                      given: tuple[Images, list[str]] | None = None,
                      seconds: float | None = None) -> TrainingPairs:
    """About ``faces`` stand-in faces and their cloaks made with ``settings``: fewer
    when time is short (``seconds``), more at each later call with the same settings.

    Args:
        settings: the user's cloak settings (a manifest's dict, or None: the defaults).
        faces: how many faces to cloak (the bundled ones come on top; fewer = quicker).
        avoid: aligned crops -> (N,) bool, True for a face of a protected person; those
            are left out (the attacker trains on other people only).
        cache: folder of cached cloaks (default: ``<user cache>/attackers/pairs``).
        device: torch device for the cloak (default: CUDA when present).
        given: (aligned crops, people) to use instead of the bundled and shared faces.
        seconds: how long to spend cloaking (None: as long as it takes). The cloaks are
            cached as they are made, so an audit that ran out of time leaves the next
            one fewer to make; the bundled faces come first, then two per person.
    """
    from faceguard.paths import cache_dir

    settings = _settings(settings)
    if given is not None:
        (clean, people), shared_people = given, given[1]
    else:
        own, own_people = bundled_faces()
        shared, shared_people = shared_faces(faces)
        clean, people = torch.cat([own, shared]), own_people + shared_people
    if avoid is not None and len(clean):
        keep = ~np.asarray(avoid(clean), bool)
        clean, people = clean[torch.from_numpy(keep)], [p for p, k in zip(people, keep,
                                                                           strict=True) if k]
    if not len(clean):
        raise ValueError("no stand-in face was found to train an attacker on")
    names = "|".join(people).encode("utf-8", "surrogatepass")  # folder names may not be UTF-8
    key = hashlib.sha256(settings.digest().encode() + names).hexdigest()
    path = (cache or cache_dir() / "attackers" / "pairs") / f"{key[:20]}.pt"
    cloaked = _cloak_in_time(settings, clean, people, path, seconds, device)
    wanted, clean, people = len(clean), clean[:len(cloaked)], people[:len(cloaked)]
    source = f"{len(clean)} faces of {len(set(people))} other people"
    if not shared_people:
        source += " (only the bundled sample photos: a weak attacker)"
    if len(clean) < wanted:
        source += (f" (of {wanted}: the time for cloaking them ran out; each audit with "
                   "these settings cloaks more)")
    # the fitted models are cached per training set: settings, faces and how many
    return TrainingPairs(clean, cloaked, people, source, f"{key[:20]}-{len(clean)}")


def _cloak_in_time(settings: CloakSettings, clean: Images, people: list[str], path: Path,
                   seconds: float | None, device: str | None) -> Images:
    """The first faces of ``clean`` (of ``people``) cloaked: those cached at ``path`` by
    earlier calls, then more, batch by batch, while the next batch is expected to end within
    ``seconds`` (None: all). With none cached, one batch is always made."""
    saved = torch.load(path, weights_only=True) if path.is_file() else {}
    if isinstance(saved, torch.Tensor):  # written before budgets: every face, no timing
        saved = {"cloaked": saved}
    cloaked = list(saved.get("cloaked", clean[:0]))
    per_face = saved.get("seconds_per_face")
    started = time.perf_counter()
    batches = cloak_batches(settings, clean, device, people=people, start=len(cloaked))
    while len(cloaked) < len(clean):
        elapsed, size = time.perf_counter() - started, min(8, len(clean) - len(cloaked))
        if (seconds is not None and cloaked
                and elapsed + (per_face or 0.0) * size > seconds):
            break
        t0 = time.perf_counter()
        made = next(batches)
        per_face = (time.perf_counter() - t0) / len(made)
        cloaked += list(made)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"cloaked": torch.stack(cloaked), "seconds_per_face": per_face}, path)
    return torch.stack(cloaked)
