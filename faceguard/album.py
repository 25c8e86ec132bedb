"""An album's photos and people: finding photos, detecting and embedding faces, grouping
faces into people. Long work is a generator of progress events (:mod:`faceguard.progress`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from faceguard.detect import FaceDetector
from faceguard.face import Face
from faceguard.identity import (
    SAME_PERSON_CUT,
    Person,
    cluster_faces,
    likeliest_face,
    sure_face,
)
from faceguard.io import (
    DEFAULT_LIMIT,
    Photo,
    PhotoError,
    PixelLimit,
    find_photos,
    load_photo,
    resolved,
    tensor_view,
)
from faceguard.io.photo import shrunk_size
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event
from faceguard.workers import in_parallel


class AlbumError(Exception):
    """A problem with a whole job, not one photo (no photos, no references, a bad mask
    file, an output folder inside the input, ...): one line for the user. The album
    readers and :func:`faceguard.pipeline.cloak_album` raise it."""


# ----------------------------------------------------------------------------------------
# Finding and scanning photos


@dataclass
class PhotoFaces:
    """The faces found in one photo, with their embeddings when an ensemble was given."""

    path: Path
    width: int
    height: int
    faces: list[Face]
    embeddings: dict[str, torch.Tensor] = field(default_factory=dict)  # model -> (F, D)
    stat: list[int] | None = None  # the file's as read (:attr:`faceguard.io.Photo.stat`)

    def to_dict(self) -> dict:
        return {"path": str(self.path), "width": self.width, "height": self.height,
                "faces": [f.to_dict() for f in self.faces]}

    def shrunk(self, max_side: int | None) -> PhotoFaces:
        """The same faces in the photo shrunk as :meth:`faceguard.io.Photo.shrunk` does;
        itself (the same object) when the photo fits, which tells callers it is not shrunk."""
        size = shrunk_size(self.width, self.height, max_side)
        if size == (self.width, self.height):
            return self
        k = np.array(size) / (self.width, self.height)
        return replace(self, width=size[0], height=size[1], faces=[replace(
            f, box=tuple(float(v) for v in np.tile(k, 2) * f.box),
            landmarks=f.landmarks * k) for f in self.faces])


def photo_jobs(inputs: Sequence[Path], recursive: bool = True) -> list[tuple[Path, Path]]:
    """(photo, output-relative path) for every photo named by the inputs.

    A folder's photos keep their path relative to it (prefixed by the folder's name
    when several inputs are given, so that names cannot collide); files given
    directly keep their name.
    """
    return relative_paths([(Path(g), find_photos([g], recursive)) for g in inputs])


def relative_paths(found: Sequence[tuple[Path, Sequence[Path]]]) -> list[tuple[Path, Path]]:
    """(photo, output-relative path) for photos already found: (input, its photos) pairs
    (see :func:`photo_jobs`), so that a shell that found them does not find them again.

    A photo named twice is taken once. Photos that would share an output path (two input
    folders, or files, of one name) each start it with as many of their folder's names
    as makes them differ: ``a/sub/x.jpg`` and ``b/sub/x.jpg`` given as ``a/sub`` and
    ``b/sub`` are written as ``a/sub/x.jpg`` and ``b/sub/x.jpg``, not both as ``sub/x.jpg``.
    """
    photos: list[Path] = []
    folders: list[tuple[str, ...]] = []  # each photo's input folder, its names below the root
    inside: list[Path] = []  # each photo's path in its input folder (a file: its name)
    depths: list[int] = []  # how many of its folder's names its output path starts with
    seen: set[Path] = set()
    for given, paths in found:
        folder = resolved(given) if given.is_dir() else resolved(given).parent
        for path in paths:
            if (key := resolved(path)) in seen:
                continue
            seen.add(key)
            photos.append(path)
            folders.append(folder.parts[1:])
            inside.append(path.relative_to(given) if given.is_dir() else Path(path.name))
            depths.append(int(len(found) > 1 and given.is_dir()))

    def rel(i: int) -> Path:
        return Path(*folders[i][len(folders[i]) - depths[i]:], inside[i])

    while True:
        claims: dict[Path, list[int]] = {}
        for i in range(len(photos)):
            claims.setdefault(rel(i), []).append(i)
        grow = [i for group in claims.values() if len(group) > 1 for i in group
                if depths[i] < len(folders[i])]
        if not grow:
            return [(path, rel(i)) for i, path in enumerate(photos)]
        for i in grow:
            depths[i] += 1


def embed_faces(ensemble: Ensemble, photo: torch.Tensor, faces: Sequence[Face]
                ) -> dict[str, torch.Tensor]:
    """model -> (F, D) embeddings of the faces of a (1, 3, H, W) photo (a view of its
    pixels, :func:`~faceguard.io.tensor_view`: only each face's region is copied, which
    scans an album 3% faster than a copy of the whole photo)."""
    from faceguard.regions import crop_face

    out: dict[str, list[torch.Tensor]] = {m: [] for m in ensemble.names}
    with torch.no_grad():
        for face in faces:
            crop = crop_face(photo, face, ensemble)
            for m, e in ensemble.embed(crop.pixels, crop.landmarks).items():
                out[m].append(e[0])
    return {m: torch.stack(v) if v else torch.zeros(0) for m, v in out.items()}


class DecodedPhotos:
    """Photos decoded once per run: kept from the scan for the later steps, up to a
    memory budget (an album larger than the budget has the rest decoded again).

    Args:
        limit: the pixel limit of the photos read.
        budget: bytes of decoded pixels kept at most.
    """

    def __init__(self, limit: PixelLimit = DEFAULT_LIMIT, budget: int = 1 << 30) -> None:
        self.limit = limit
        self.budget = budget
        self._kept: dict[Path, Photo] = {}
        self._bytes = 0

    def keep(self, photo: Photo) -> None:
        size = photo.pixels.nbytes
        if photo.path is not None and self._bytes + size <= self.budget:
            self._kept[photo.path] = photo
            self._bytes += size

    def load(self, path: Path) -> Photo:
        """The photo, decoded already or now (it stays kept)."""
        return self._kept.get(Path(path)) or load_photo(path, limit=self.limit)

    def forget(self, path: Path) -> None:
        """Stop keeping the photo (it is not needed any more)."""
        photo = self._kept.pop(Path(path), None)
        if photo is not None:
            self._bytes -= photo.pixels.nbytes

    def take(self, path: Path, decode: bool = True) -> Photo:
        """The photo, decoded already or now; it is not kept any longer. ``decode`` False:
        a photo only to be copied (see :func:`faceguard.io.load_photo`)."""
        photo = self._kept.pop(Path(path), None)
        if photo is None:
            return load_photo(path, limit=self.limit, decode=decode)
        self._bytes -= photo.pixels.nbytes
        return photo


def detect_photos(
    paths: Sequence[Path],
    detector: FaceDetector,
    ensemble: Ensemble | None = None,
    limit: PixelLimit = DEFAULT_LIMIT,
    stage: str = "detecting",
    decoded: DecodedPhotos | None = None,
) -> Iterator[Event]:
    """Detect (and embed, given an ensemble) the faces of each photo.

    A bad photo is an error event; the rest go on. Yields one :class:`Event` per photo,
    in order, with ``result`` a :class:`PhotoFaces`. ``decoded`` keeps the decoded
    photos. Photos are decoded, detected and embedded side by side
    (:func:`faceguard.workers.in_parallel`), one core each.
    """
    def scan(path: Path) -> tuple[Photo | PhotoError, PhotoFaces | None]:
        try:
            photo = load_photo(path, limit=limit)
        except PhotoError as exc:
            return exc, None
        faces = detector(photo.pixels)
        h, w = photo.pixels.shape[:2]
        result = PhotoFaces(path, w, h, faces, stat=photo.stat)
        if ensemble is not None and faces:
            result.embeddings = embed_faces(ensemble, tensor_view(photo.pixels), faces)
        return photo, result

    for i, (path, (photo, result)) in enumerate(zip(paths, in_parallel(scan, paths),
                                                    strict=True), 1):
        if isinstance(photo, PhotoError):
            yield Event(i, len(paths), stage, path, error=str(photo))
            continue
        if decoded is not None:
            decoded.keep(photo)
        yield Event(i, len(paths), stage, path, result=result)


def reference_person(name: str, paths: Sequence[Path], detector: FaceDetector,
                     ensemble: Ensemble) -> Iterator[Event]:
    """Build a :class:`Person` from reference photos, one face of each.

    A photo with several faces gives the one most like the references with a single
    face (:func:`faceguard.identity.likeliest_face`), or its largest when there are
    none; a note says which. The last event's ``result`` is the person. Raises
    :class:`AlbumError` when no reference photo shows a face.
    """
    found: list[PhotoFaces] = []
    total = len(paths) + 1
    for event in detect_photos(paths, detector, ensemble, stage=f"reading {name}"):
        event.total = total
        if event.result is not None and not event.result.faces:
            event.error = f"{event.path}: no face found"
        elif event.result is not None:
            found.append(event.result)
        yield event
    if not found:
        raise AlbumError(f"no face found in the reference photos of {name}")
    alone = [p for p in found if len(p.faces) == 1]
    theirs = {m: torch.cat([p.embeddings[m] for p in alone])
              for m in ensemble.names} if alone else None
    chosen = []
    for p in found:
        k = likeliest_face(ensemble, p.embeddings, theirs)
        if len(p.faces) > 1:
            how = ("the one most like the reference photos with one face" if alone
                   else "the largest (give a photo of them alone to be sure)")
            yield Event(total - 1, total, f"reading {name}", p.path,
                        note=f"{p.path}: {len(p.faces)} faces; took {how}")
        chosen.append((p, k))
    person = Person(name, {m: torch.stack([p.embeddings[m][k] for p, k in chosen])
                           for m in ensemble.names},
                    [(p.path, p.faces[k].landmarks) for p, k in chosen])
    yield Event(total, total, f"reading {name}", result=person)


def gallery_folders(folder: Path) -> dict[str, list[Path]]:
    """A gallery folder's people: sub-folder name -> its photos (hidden ones skipped)."""
    subs = sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith("."))
    return {sub.name: find_photos([sub]) for sub in subs}


def labelled_photos(folder: Path) -> dict[str, list[Path]]:
    """identity -> photos of a labelled album: ``labels.csv`` with ``identity`` and
    ``file`` columns, photos in ``<identity>/<file>`` (the evaluation albums' layout)."""
    import csv

    out: dict[str, list[Path]] = {}
    with open(Path(folder) / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["identity"], []).append(Path(folder) / row["identity"] / row["file"])
    return out


def gallery_people(folder: Path, detector: FaceDetector, ensemble: Ensemble,
                   min_faces: int = 1) -> Iterator[Event]:
    """People of a gallery folder (one sub-folder per person); last event's result is the list."""
    folders = gallery_folders(folder)
    if not folders:
        raise AlbumError(f"{folder}: a gallery needs one sub-folder of photos per person")
    people = []
    for i, (name, photos) in enumerate(folders.items(), 1):
        sub = Path(folder) / name
        person = None
        for event in reference_person(name, photos, detector, ensemble):
            if isinstance(event.result, Person):
                person = event.result
        if person is not None and len(person) >= min_faces:
            people.append(person)
        yield Event(i, len(folders) + 1, "reading gallery", sub)
    yield Event(len(folders) + 1, len(folders) + 1, "reading gallery", result=people)


def album_people(scanned: Sequence[PhotoFaces], ensemble: Ensemble,
                 threshold: float = SAME_PERSON_CUT
                 ) -> list[tuple[Person, list[tuple[int, int]]]]:
    """Cluster all faces of an album into people.

    Returns:
        [(person, [(photo index, face index), ...]), ...], largest first; people are
        named "person 1", "person 2", ... No person has two faces in one photo.
    """
    where = [(i, j) for i, p in enumerate(scanned) for j in range(len(p.faces))]
    if not where:
        return []
    emb = {m: torch.cat([p.embeddings[m] for p in scanned if p.faces]) for m in ensemble.names}
    labels = cluster_faces(ensemble, emb, threshold, photos=[i for i, _ in where],
                           sure=np.array([sure_face(scanned[i].faces[j], scanned[i].width,
                                                    scanned[i].height) for i, j in where]))
    out = []
    for c in range(labels.max() + 1):
        idx = np.flatnonzero(labels == c)
        person = Person(f"person {c + 1}", {m: e[idx] for m, e in emb.items()})
        out.append((person, [where[k] for k in idx]))
    return out


# ----------------------------------------------------------------------------------------
# Finding the people of an album


@dataclass(eq=False)  # one person is one object: their tensors have no plain equality
class AlbumPerson:
    """One person found in an album: their faces and where they are."""

    name: str
    person: Person
    faces: list[tuple[Path, Face]]

    def to_dict(self) -> dict:
        return {"name": self.name, "count": len(self.faces),
                "faces": [{"photo": str(p), **f.to_dict()} for p, f in self.faces]}

    def renamed(self, name: str) -> AlbumPerson:
        """The same person under another name (the name the manifest records)."""
        return AlbumPerson(name, Person(name, self.person.embeddings), self.faces)

    def without(self, photo: Path) -> AlbumPerson | None:
        """The person without their faces in ``photo`` (None when none is left)."""
        keep = [k for k, (path, _) in enumerate(self.faces) if path != photo]
        if not keep:
            return None
        index = torch.tensor(keep)
        embeddings = {m: e[index] if len(e) == len(self.faces) else e
                      for m, e in self.person.embeddings.items()}
        return AlbumPerson(self.name, Person(self.person.name, embeddings),
                           [self.faces[k] for k in keep])


def embed_people(people: Sequence[AlbumPerson], ensemble: Ensemble) -> Iterator[Event]:
    """The people as :class:`Person` embedded by ``ensemble``'s recognizers.

    People found while scanning carry the scan's recognizers; when the user picked
    others since, their faces are embedded again (from the same photos and boxes).
    The last event's ``result`` is the list of persons.
    """
    out: list[Person] = []
    for k, album_person in enumerate(people, 1):
        person = album_person.person
        if set(person.embeddings) != set(ensemble.names):
            embeddings: dict[str, list] = {m: [] for m in ensemble.names}
            by_photo: dict[Path, list] = {}
            for path, face in album_person.faces:
                by_photo.setdefault(path, []).append(face)
            for path, faces in by_photo.items():
                emb = embed_faces(ensemble, tensor_view(load_photo(path).pixels), faces)
                for m in ensemble.names:
                    embeddings[m].extend(emb[m])
            person = Person(album_person.name, {m: torch.stack(v) for m, v in embeddings.items()})
        out.append(replace(person, album_faces=list(album_person.faces)))
        yield Event(k, len(people), "reading people", result=out if k == len(people) else None)


def find_people(paths: Sequence[Path], detector: FaceDetector, ensemble: Ensemble,
                limit: PixelLimit = DEFAULT_LIMIT) -> Iterator[Event]:
    """Detect, embed and cluster every face of an album into people.

    Yields "scanning" events per photo, then one "grouping" event whose ``result`` is
    the list of :class:`AlbumPerson`, largest first.
    """
    scanned = []
    for event in detect_photos(paths, detector, ensemble, limit, stage="scanning"):
        if event.result is not None:
            scanned.append(event.result)
        yield event
    yield Event(1, 1, "grouping", result=group_people(scanned, ensemble))


def group_people(scanned: Sequence[PhotoFaces], ensemble: Ensemble) -> list[AlbumPerson]:
    """The people of already scanned photos, largest first (no photo is read again)."""
    return [AlbumPerson(person.name, person,
                        [(scanned[i].path, scanned[i].faces[j]) for i, j in where])
            for person, where in album_people(scanned, ensemble)]


def slug(name: str) -> str:
    """A file-name-safe form of a person's name ("person 1" -> "person-1")."""
    return "".join(c if c.isalnum() else "-" for c in name).strip("-") or "person"
