"""The protection benchmark's data: who is protected, what the attacker holds.

celeb24 (24 people, aligned 112x112 crops), split by image for every person:
- 8 *references*: the user's own photos (the clean centroid the cloak pushes away from,
  the classifier's training data, the universal mask's faces);
- 12 *gallery* images: the attacker's clean photos of everyone;
- the rest (up to 10) are *probes*: the photos that get cloaked. Only the first
  ``user_ids`` people (sorted by name) are protected.

Distractors widen the attacker's search: every person of ``att`` (40, grey) and of the
album's labelled photos (13) joins the gallery. The thresholds are calibrated on the
clean impostor pairs of the scored faces' own data (:func:`own_thresholds`).

The attacker's view of a celeb24 crop is its own ArcFace alignment; a distractor photo
is aligned from MTCNN landmarks. The cloak aligns with our own MTCNN landmarks, as the
product does.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from common import data_dir
from PIL import Image

from faceguard.align import ARCFACE_112, face_transform, warp
from faceguard.audit.protection import audit_crop
from faceguard.detect import FaceDetector
from faceguard.face import Face
from faceguard.models.catalogue import one_per_family
from faceguard.models.ensemble import Ensemble

Embeddings = dict[str, torch.Tensor]  # model -> (N, D)

#: MTCNN needs context around a tight crop (on the bare crop its landmarks are about
#: 7 px off, 3.6 px with a border: benchmarks/results/recognition.json)
BORDER = 56


@dataclass
class Data:
    images: torch.Tensor  # (N, 3, 112, 112)
    labels: list[str]
    faces: list[Face]  # MTCNN on each crop
    refs: list[int]
    gallery: list[int]
    probes: list[int]
    user_ids: list[str]


def _shift(face: Face, d: float) -> Face:
    x0, y0, x1, y1 = face.box
    return Face((x0 + d, y0 + d, x1 + d, y1 + d), face.landmarks + d, face.score)


def _detect_crop(detector: FaceDetector, pixels: np.ndarray) -> Face | None:
    border = np.pad(pixels, ((BORDER, BORDER), (BORDER, BORDER), (0, 0)), mode="edge")
    found = detector(border)
    return _shift(found[0], -BORDER) if found else None


def load_celeb24(probes_per_id: int, user_ids: int, seed: int = 0) -> Data:
    root = data_dir("celeb24")
    detector = FaceDetector()
    rng = random.Random(seed)
    images, labels, faces = [], [], []
    refs, gallery, probes = [], [], []
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    for name in names:
        files = sorted((root / name).glob("*.png"))
        rng.shuffle(files)
        for k, f in enumerate(files):
            pixels = np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255
            face = _detect_crop(detector, pixels)
            if face is None:
                continue
            idx = len(images)
            images.append(torch.from_numpy(pixels).permute(2, 0, 1))
            labels.append(name)
            faces.append(face)
            (refs if k < 8 else gallery if k < 20 else probes).append(idx)
    by_id: dict[str, list[int]] = {}
    for i in probes:
        if labels[i] in names[:user_ids]:
            by_id.setdefault(labels[i], []).append(i)
    probes = [i for ids in by_id.values() for i in ids[:probes_per_id]]
    return Data(torch.stack(images), labels, faces, refs, gallery, probes, names[:user_ids])


def grey_probes(data: Data) -> Data:
    """The same data with the probes (the photos the person uploads) as grey photos: luma
    (ITU-R 601, as Pillow's "L") rounded to 8 bits, in three equal channels. References
    and the attacker's gallery stay in colour."""
    images = data.images.clone()
    p = data.probes
    luma = torch.tensordot(torch.tensor([0.299, 0.587, 0.114]), images[p], dims=([0], [1]))
    images[p] = ((luma * 255).round() / 255)[:, None].expand(-1, 3, -1, -1)
    return replace(data, images=images)


def attacker_models(made_on: list[str] | tuple[str, ...]) -> list[str]:
    """The attacker's recognizers: those a cloak is made on, then every other installed
    family (SFace and FaceNet, for the default cloak), which it never sees."""
    return list(dict.fromkeys([*made_on, *one_per_family()]))


def embed_given(ensemble: Ensemble, images: torch.Tensor) -> Embeddings:
    """Embeddings of 112x112 crops with their own ArcFace alignment (the attacker's view)."""
    out = {}
    with torch.no_grad():
        for m in ensemble.names:
            r = ensemble[m]
            t = face_transform(ARCFACE_112, r.template)
            out[m] = torch.cat([r.embed(warp(images[i:i + 64], t, r.input_size))
                                for i in range(0, len(images), 64)])
    return out


def _photos() -> list[tuple[str, Path]]:
    """(person, path) of every distractor photo: att's 400 and the album's labelled ones."""
    att = data_dir("att")
    out = [(f"att/{d.name}", f) for d in sorted(att.iterdir()) if d.is_dir()
           for f in sorted(d.glob("*.pgm"))]
    album = data_dir("album")
    with open(album / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            path = album / row["identity"] / row["file"]
            out.append((f"album/{row['identity']}", path if path.is_file()
                        else album / row["file"]))
    return out


#: album people who are celeb24 people too: one person to the attacker, not two (as two,
#: their same-person pairs calibrated the thresholds as impostors, and a match counted
#: as someone else)
CELEB24_NAMES = {"album/person_img3": "Jennifer_Aniston",
                 "album/person_img34": "Leonardo_DiCaprio"}


def load_distractors(ensemble: Ensemble) -> tuple[Embeddings, list[str], list[Path]]:
    """Clean embeddings (model -> (N, D)), people and paths of the distractor photos.

    A photo with several faces counts its largest; one with none is left out.
    """
    detector = FaceDetector()
    rows: list[Embeddings] = []
    labels, paths = [], []
    for person, path in _photos():
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
        small = pixels.shape[0] < 200
        face = (_detect_crop(detector, pixels) if small else
                max(detector(pixels), key=lambda f: f.width, default=None))
        if face is None:
            continue
        photo = torch.from_numpy(pixels).permute(2, 0, 1)[None]
        crop, marks = audit_crop(photo, face, ensemble)
        with torch.no_grad():
            rows.append(ensemble.embed(crop, marks))
        labels.append(person)
        paths.append(path)
    return {m: torch.cat([r[m] for r in rows]) for m in ensemble.names}, labels, paths


def own_thresholds(ensemble: Ensemble, embeddings: Embeddings, labels: list[str],
                   data: str) -> dict[str, dict[float, float]]:
    """Per recognizer and FAR, the thresholds calibrated (:func:`faceguard.audit.protocol
    .calibrate`) on the clean faces of ``data`` alone: "album" (labels ``album/...``) or
    "celeb24" (the rest but att's). Pooled with att's grey faces, two thirds of the pairs,
    a "FAR 1%" threshold let 0.02-6.7% of impostors of the faces scored through (6 Dec)."""
    from faceguard.audit.protocol import calibrate

    if data not in ("album", "celeb24"):
        raise ValueError(f"data is album or celeb24, not {data!r}")
    keep = [k for k, person in enumerate(labels)
            if person.startswith("album/") == (data == "album") and not person.startswith("att/")]
    return calibrate(ensemble, {m: e[keep] for m, e in embeddings.items()},
                     [labels[k] for k in keep])

