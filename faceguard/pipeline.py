"""Album workflows as generators of progress events (see :mod:`faceguard.progress`).

The CLI and the GUI both drive these. Stopping the iteration cancels between photos;
every output file and the manifest are written atomically, so a cancelled run leaves
only complete files, and ``resume`` picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from faceguard.detect import Face, FaceDetector
from faceguard.identity import FaceClassifier, Person, cluster_faces, normalised_distance
from faceguard.io import (
    Photo,
    PhotoError,
    find_photos,
    from_tensor,
    load_photo,
    output_suffix,
    save_photo,
    to_tensor,
)
from faceguard.manifest import Manifest
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event
from faceguard.settings import CloakSettings


class PipelineError(Exception):
    """A problem with the whole job (not one photo): one line for the user."""


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

    def to_dict(self) -> dict:
        return {"path": str(self.path), "width": self.width, "height": self.height,
                "faces": [f.to_dict() for f in self.faces]}


def photo_jobs(inputs: Sequence[Path], recursive: bool = True) -> list[tuple[Path, Path]]:
    """(photo, output-relative path) for every photo named by the inputs.

    A folder's photos keep their path relative to it (prefixed by the folder's name
    when several inputs are given, so that names cannot collide); files given
    directly keep their name.
    """
    jobs: list[tuple[Path, Path]] = []
    for given in inputs:
        given = Path(given)
        for path in find_photos([given], recursive):
            rel = path.relative_to(given) if given.is_dir() else Path(path.name)
            if len(inputs) > 1 and given.is_dir():
                rel = Path(given.resolve().name) / rel
            jobs.append((path, rel))
    return jobs


def embed_faces(ensemble: Ensemble, photo: torch.Tensor, faces: Sequence[Face]
                ) -> dict[str, torch.Tensor]:
    """model -> (F, D) embeddings of the faces of a (1, 3, H, W) photo."""
    from faceguard.cloak.photo import crop_face

    out: dict[str, list[torch.Tensor]] = {m: [] for m in ensemble.names}
    with torch.no_grad():
        for face in faces:
            crop = crop_face(photo, face, ensemble)
            for m, e in ensemble.embed(crop.pixels, crop.landmarks).items():
                out[m].append(e[0])
    return {m: torch.stack(v) if v else torch.zeros(0) for m, v in out.items()}


def detect_photos(
    paths: Sequence[Path],
    detector: FaceDetector,
    ensemble: Ensemble | None = None,
    max_pixels: int | None = None,
    stage: str = "detecting",
) -> Iterator[Event]:
    """Detect (and embed, given an ensemble) the faces of each photo.

    A bad photo is an error event; the rest go on. Yields one :class:`Event` per photo
    with ``result`` a :class:`PhotoFaces`.
    """
    kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}
    for i, path in enumerate(paths, 1):
        try:
            photo = load_photo(path, **kwargs)
        except PhotoError as exc:
            yield Event(i, len(paths), stage, path, error=str(exc))
            continue
        faces = detector(photo.pixels)
        h, w = photo.pixels.shape[:2]
        result = PhotoFaces(path, w, h, faces)
        if ensemble is not None and faces:
            result.embeddings = embed_faces(ensemble, to_tensor(photo.pixels), faces)
        yield Event(i, len(paths), stage, path, result=result)


def reference_person(name: str, paths: Sequence[Path], detector: FaceDetector,
                     ensemble: Ensemble) -> Iterator[Event]:
    """Build a :class:`Person` from reference photos (the largest face of each).

    The last event's ``result`` is the person. Raises :class:`PipelineError` when no
    reference photo shows a face.
    """
    embeddings: dict[str, list[torch.Tensor]] = {m: [] for m in ensemble.names}
    total = len(paths) + 1
    for event in detect_photos(paths, detector, ensemble, stage=f"reading {name}"):
        event.total = total
        if event.result is not None and not event.result.faces:
            event.error = f"{event.path}: no face found"
        if event.result is not None and event.result.faces:
            for m in ensemble.names:
                embeddings[m].append(event.result.embeddings[m][0])
        yield event
    if not embeddings[ensemble.names[0]]:
        raise PipelineError(f"no face found in the reference photos of {name}")
    person = Person(name, {m: torch.stack(v) for m, v in embeddings.items()})
    yield Event(total, total, f"reading {name}", result=person)


def gallery_people(folder: Path, detector: FaceDetector, ensemble: Ensemble,
                   min_faces: int = 1) -> Iterator[Event]:
    """People of a gallery folder (one sub-folder per person); last event's result is the list."""
    folders = sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise PipelineError(f"{folder}: a gallery needs one sub-folder of photos per person")
    people = []
    for i, sub in enumerate(folders, 1):
        person = None
        for event in reference_person(sub.name, find_photos([sub]), detector, ensemble):
            if isinstance(event.result, Person):
                person = event.result
        if person is not None and len(person) >= min_faces:
            people.append(person)
        yield Event(i, len(folders) + 1, "reading gallery", sub)
    yield Event(len(folders) + 1, len(folders) + 1, "reading gallery", result=people)


def album_people(scanned: Sequence[PhotoFaces], ensemble: Ensemble, threshold: float = 0.9
                 ) -> list[tuple[Person, list[tuple[int, int]]]]:
    """Cluster all faces of an album into people.

    Returns:
        [(person, [(photo index, face index), ...]), ...], largest first; people are
        named "person 1", "person 2", ...
    """
    where = [(i, j) for i, p in enumerate(scanned) for j in range(len(p.faces))]
    if not where:
        return []
    emb = {m: torch.cat([p.embeddings[m] for p in scanned if p.faces]) for m in ensemble.names}
    labels = cluster_faces(ensemble, emb, threshold)
    out = []
    for c in range(labels.max() + 1):
        idx = np.flatnonzero(labels == c)
        person = Person(f"person {c + 1}", {m: e[idx] for m, e in emb.items()})
        out.append((person, [where[k] for k in idx]))
    return out


# ----------------------------------------------------------------------------------------
# Cloaking an album


@dataclass
class CloakJob:
    """A cloak run: what to read, whom to protect, how, and where to write.

    Attributes:
        inputs: photos or folders.
        outdir: the output folder (created if needed; never an input folder).
        settings: how to cloak.
        protect: reference photos of the person to protect (None with protect_all or mask).
        protect_all: cloak every face.
        gallery: a folder of other people (one sub-folder each) for the local classifier.
        mask: a universal mask file to apply instead of optimising.
        format, quality, metadata: how outputs are written (see :func:`faceguard.io.save_photo`).
        resume: skip photos the manifest says are done with identical settings.
        overwrite: replace existing output files.
        recursive, max_pixels: how inputs are read.
        match_threshold: a face is the protected person when its mean normalised
            distance to them is below this (1.0 = each model's own threshold).
    """

    inputs: list[Path]
    outdir: Path
    settings: CloakSettings = field(default_factory=CloakSettings)
    protect: list[Path] | None = None
    protect_all: bool = False
    gallery: Path | None = None
    mask: Path | None = None
    format: str = "keep"
    quality: int = 95
    metadata: str = "strip"
    resume: bool = False
    overwrite: bool = False
    recursive: bool = True
    max_pixels: int | None = None
    match_threshold: float = 1.0


@dataclass
class FaceReport:
    """What happened to one face (a manifest entry)."""

    box: list[float]
    landmarks: list[list[float]]
    protected: bool
    method: str | None = None
    quality: dict[str, float] = field(default_factory=dict)
    distance_before: dict[str, float] = field(default_factory=dict)
    distance_after: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def cloak_album(job: CloakJob, detector: FaceDetector,
                load_ensemble: Callable[[Sequence[str]], Ensemble]) -> Iterator[Event]:
    """Cloak the protected faces of every photo of the job.

    Stages (each a run of events): reading the people, scanning the album (detect and
    embed), learning (classifier or universal mask, when the method needs one), then
    one "cloaking" event per photo with ``result`` the photo's manifest entry.

    Raises:
        PipelineError: a problem with the whole job (no references, bad mask file, ...).
    """

    s = job.settings.resolved()
    jobs = photo_jobs(job.inputs, job.recursive)
    if not jobs:
        raise PipelineError("no photos found in " + ", ".join(map(str, job.inputs)))
    _check_outdir(job)
    mask = _load_mask(job.mask) if job.mask else None
    if not (job.protect or job.protect_all or mask):
        raise PipelineError("say whom to protect: reference photos (--protect), "
                            "--protect-all, or a universal mask (--mask)")
    ensemble = load_ensemble(mask.models if mask else s.models)
    yield Event(0, 0, "loading models", result=ensemble)

    protected: list[Person] = []
    if mask is not None:
        protected.append(Person(mask.person, {m: c[None] for m, c in
                                              mask.settings["centroids"].items()}))
    elif job.protect:
        yield from _collect(reference_person("the person to protect", job.protect, detector,
                                             ensemble), protected.append)

    scanned: list[PhotoFaces | None] = []
    errors: dict[int, str] = {}
    for event in detect_photos([p for p, _ in jobs], detector, ensemble, job.max_pixels,
                               stage="scanning"):
        if event.error:
            errors[event.done - 1] = event.error
        scanned.append(event.result)
        yield event

    is_protected = [_protected_faces(p, protected, ensemble, job) if p else [] for p in scanned]
    others = _other_people(scanned, is_protected, ensemble)
    if job.gallery:
        yield from _collect(gallery_people(job.gallery, detector, ensemble), others.extend)

    manifest = Manifest.load(job.outdir) if job.resume else Manifest(job.outdir)
    digest = s.digest() if mask is None else _mask_digest(job.mask)
    learned = _Learned()
    if mask is not None:
        learned.mask = mask
    else:
        yield Event(0, 1, "learning")
        learned = _learn(s, ensemble, protected[0] if protected else None, others, scanned,
                         is_protected, job)
        yield Event(1, 1, "learning", result=learned)
    manifest.start(s.to_dict() if mask is None else {"mask": str(job.mask), **mask.settings},
                   digest, {"seed": s.seed, "models": ensemble.names,
                            "protected": [p.name for p in protected],
                            "references": [str(p) for p in job.protect or []],
                            "protect_all": job.protect_all})
    if learned.mask is not None and mask is None:
        learned.mask.settings.setdefault("centroids", {m: c for m, c in
                                                       protected[0].centroids().items()})
        mask_path = job.outdir / f"{_slug(protected[0].name)}.mask.pt"
        learned.mask.save(mask_path)
        manifest.data["mask"] = mask_path.name
    manifest.save()

    for i, (path, rel) in enumerate(jobs):
        done = i + 1
        if i in errors:
            manifest.record(str(rel), {"input": str(path), "status": "failed", "error": errors[i]})
            yield Event(done, len(jobs), "cloaking", path, error=errors[i])
            continue
        if job.resume and manifest.is_done(_out_key(rel), digest):
            yield Event(done, len(jobs), "cloaking", path, skipped=True)
            continue
        try:
            entry = _cloak_one(path, rel, scanned[i], is_protected[i], protected, ensemble,
                               learned, s, digest, job)
        except PhotoError as exc:
            manifest.record(str(rel), {"input": str(path), "status": "failed", "error": str(exc)})
            yield Event(done, len(jobs), "cloaking", path, error=str(exc))
            continue
        manifest.record(_out_key(rel), entry)
        yield Event(done, len(jobs), "cloaking", path, result=entry)


def _collect(events: Iterator[Event], take: Callable) -> Iterator[Event]:
    """Pass events through; hand the final result (a Person or list) to ``take``."""
    for event in events:
        if isinstance(event.result, Person | list):
            take(event.result)
        yield event


def _check_outdir(job: CloakJob) -> None:
    out = job.outdir.resolve()
    for given in job.inputs:
        src = Path(given).resolve()
        if src.is_dir() and (out == src or src in out.parents):
            raise PipelineError(f"the output folder {job.outdir} must not be inside the input "
                                f"folder {given} (originals are never touched)")
    job.outdir.mkdir(parents=True, exist_ok=True)


def _load_mask(path: Path):
    from faceguard.cloak.universal import UniversalMask

    try:
        mask = UniversalMask.load(path)
    except (OSError, ValueError) as exc:
        raise PipelineError(str(exc)) from None
    if "centroids" not in mask.settings:
        raise PipelineError(f"{path}: the mask does not say whose face it protects")
    return mask


def _mask_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-") or "person"


def _out_key(rel: Path) -> str:
    return str(rel)


def _protected_faces(scanned: PhotoFaces, protected: Sequence[Person], ensemble: Ensemble,
                     job: CloakJob) -> list[bool]:
    if job.protect_all:
        return [True] * len(scanned.faces)
    if not scanned.faces or not protected:
        return [False] * len(scanned.faces)
    hit = torch.zeros(len(scanned.faces), dtype=torch.bool)
    for person in protected:
        d = normalised_distance(ensemble, scanned.embeddings, person.centroids())
        hit |= torch.stack(list(d.values())).mean(0) < job.match_threshold
    return hit.tolist()


def _other_people(scanned, is_protected, ensemble) -> list[Person]:
    """The album's other people (clusters of faces not protected)."""
    rest = []
    for p, flags in zip(scanned, is_protected, strict=True):
        if p is None or not p.faces:
            continue
        keep = [j for j, f in enumerate(flags) if not f]
        if keep:
            rest.append(PhotoFaces(p.path, p.width, p.height, [p.faces[j] for j in keep],
                                   {m: e[keep] for m, e in p.embeddings.items()}))
    return [person for person, _ in album_people(rest, ensemble)]


@dataclass
class _Learned:
    classifier: FaceClassifier | None = None
    decoy: dict[str, torch.Tensor] | None = None
    mask: object | None = None  # UniversalMask


def _learn(s: CloakSettings, ensemble: Ensemble, person: Person | None, others: list[Person],
           scanned, is_protected, job: CloakJob) -> _Learned:
    """Whatever the method needs before cloaking: classifier, decoy, universal mask.

    ``person`` is the protected person (class 0 of the classifier), or None with
    ``protect_all`` (then every face's class is the classifier's own prediction).
    """
    learned = _Learned()
    classes = ([person] if person else []) + others
    if s.objective == "classifier":
        if len(classes) < 2:
            raise PipelineError(f"the {s.method} method needs other people to tell the face "
                                "from: add --gallery DIR (one sub-folder per person)")
        learned.classifier = FaceClassifier(classes).fit()
    if s.targeted and s.objective == "feature":
        if not others or person is None:
            raise PipelineError("a targeted cloak needs the person (--protect) and a decoy "
                                "(--gallery DIR)")
        # the decoy is the person least like them (as Fawkes picks its target)
        learned.decoy = max(others, key=lambda o: _mean_distance(ensemble, o, person)).centroids()
    if s.universal:
        if person is None:
            raise PipelineError("a universal mask is made for one person: name them with "
                                "--protect instead of --protect-all")
        learned.mask = _fit_universal(s, ensemble, person, learned.classifier, scanned,
                                      is_protected, job)
    return learned


def _mean_distance(ensemble: Ensemble, a: Person, b: Person) -> float:
    d = normalised_distance(ensemble, {m: c[None] for m, c in a.centroids().items()},
                            b.centroids())
    return float(torch.stack(list(d.values())).mean())


def _canonical_logits(ensemble: Ensemble, classifier: FaceClassifier):
    """Classifier logits of canonical faces: mean over heads of log-softmax."""
    from faceguard.cloak.universal import CANONICAL_TEMPLATE

    def logits(faces: torch.Tensor) -> torch.Tensor:
        emb = ensemble.embed(faces, CANONICAL_TEMPLATE)
        return torch.stack([z.log_softmax(-1) for z in classifier.logits(emb).values()]).mean(0)

    return logits


def _fit_universal(s: CloakSettings, ensemble: Ensemble, person: Person,
                   classifier: FaceClassifier | None, scanned, is_protected, job: CloakJob):
    """The person's universal mask from all their faces in the album."""
    from faceguard.cloak.objectives import FeatureObjective
    from faceguard.cloak.transforms import RandomTransform
    from faceguard.cloak.universal import (
        CANONICAL_TEMPLATE,
        UniversalMask,
        UniversalPerturbation,
        UniversalSGD,
        canonical_faces,
    )

    faces = []
    for p, flags in zip(scanned, is_protected, strict=True):
        if p is None or not any(flags):
            continue
        photo = to_tensor(load_photo(p.path, **_max(job)).pixels)
        for face, hit in zip(p.faces, flags, strict=True):
            if hit:
                faces.append(canonical_faces(photo, face.landmarks))
    if not faces:
        raise PipelineError("the person to protect appears in none of the photos")
    faces_t = torch.cat(faces)
    generator = torch.Generator().manual_seed(s.seed)
    xi = s.eps / 255
    if s.method == "universal":
        logits = _canonical_logits(ensemble, classifier)
        uap = UniversalPerturbation(xi=xi, max_passes=max(1, s.steps // 4))
        v, rate = uap.fit(faces_t, logits, generator)
        algo = repr(uap)
    else:
        objective = FeatureObjective(ensemble, CANONICAL_TEMPLATE, person.centroids(),
                                     transform=RandomTransform(s.seed) if s.robust else None,
                                     samples=s.eot_samples)
        sgd = UniversalSGD(xi=xi, steps=s.steps * 5)
        v = sgd.fit(faces_t, lambda x, idx: objective(x), generator)
        with torch.no_grad():
            plain = FeatureObjective(ensemble, CANONICAL_TEMPLATE, person.centroids(), cap=1e9)
            rate = float(_fooled(ensemble, plain, (faces_t + v).clamp(0, 1)).float().mean())
        algo = repr(sgd)
    return UniversalMask(v, person.name, ensemble.names,
                         {"method": s.method, "algorithm": algo, "eps": s.eps,
                          "faces": len(faces_t)}, rate)


def _fooled(ensemble: Ensemble, objective, faces: torch.Tensor) -> torch.Tensor:
    """(B,) the mean normalised distance to the person is beyond 1 (each model's threshold)."""
    emb = ensemble.embed(faces, objective.landmarks)
    d = normalised_distance(ensemble, emb, objective.centroids)
    return torch.stack(list(d.values())).mean(0) > 1


def _max(job: CloakJob) -> dict:
    return {} if job.max_pixels is None else {"max_pixels": job.max_pixels}


def _face_seed(seed: int, rel: Path, index: int) -> int:
    # per face, so a resumed run gives the same pixels as an uninterrupted one
    text = f"{seed}:{rel.as_posix()}:{index}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _output_path(job: CloakJob, photo: Photo, rel: Path) -> Path:
    return (job.outdir / rel).with_suffix(output_suffix(photo, job.format))


def _cloak_one(path: Path, rel: Path, scanned: PhotoFaces, flags: list[bool],
               protected: list[Person], ensemble: Ensemble, learned: _Learned,
               s: CloakSettings, digest: str, job: CloakJob) -> dict:
    """Cloak (or copy through) one photo; returns its manifest entry."""
    from faceguard.cloak.photo import cloak_face, crop_face, paste
    from faceguard.metrics import face_quality

    started = time.perf_counter()
    photo = load_photo(path, **_max(job))
    out_path = _output_path(job, photo, rel)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    image = to_tensor(photo.pixels)
    reports = []
    for j, (face, hit) in enumerate(zip(scanned.faces, flags, strict=True)):
        d = face.to_dict()
        report = FaceReport(d["box"], d["landmarks"], hit)
        if hit:
            t0 = time.perf_counter()
            own = {m: e[j] for m, e in scanned.embeddings.items()}
            centroids = own if job.protect_all or not protected else protected[0].centroids()
            if learned.mask is not None:
                crop = crop_face(image, face, ensemble)
                region = crop.pixels[:, :1] if photo.is_grey else crop.pixels
                cloaked = learned.mask.apply(region, crop.landmarks, crop.weight)
                image = paste(image, crop, cloaked.expand_as(crop.pixels))
                report.method = f"{learned.mask.settings.get('method', 'universal')} mask"
            else:
                gen = torch.Generator().manual_seed(_face_seed(s.seed, rel, j))
                image, _ = cloak_face(image, face, s.make_cloak(), ensemble,
                                      _objective_factory(s, ensemble, centroids, own,
                                                         learned, gen, job.protect_all),
                                      texture=s.texture, generator=gen, grey=photo.is_grey)
                report.method = s.method
            report.seconds = round(time.perf_counter() - t0, 3)
            report.distance_before = _distances(ensemble, scanned.embeddings, j, centroids)
        reports.append(report)
    cloaked = photo.with_pixels(from_tensor(image))
    save_photo(cloaked, out_path, format=job.format, quality=job.quality,
               metadata=job.metadata, overwrite=job.overwrite or job.resume)
    status = "cloaked" if any(flags) else "copied"
    if any(flags):
        # measure what was actually written: quantised, maybe JPEG-compressed
        saved = load_photo(out_path, max_pixels=None)
        saved_t = to_tensor(saved.pixels)
        after = embed_faces(ensemble, saved_t, [f for f, h in zip(scanned.faces, flags,
                                                                   strict=True) if h])
        k = 0
        for j, (face, report) in enumerate(zip(scanned.faces, reports, strict=True)):
            if report.protected:
                own = {m: e[j] for m, e in scanned.embeddings.items()}
                centroids = own if job.protect_all or not protected else protected[0].centroids()
                report.distance_after = _distances(ensemble, after, k, centroids)
                report.quality = face_quality(photo.pixels, saved.pixels, face.box)
                k += 1
    return {
        "input": str(path), "output": str(out_path.relative_to(job.outdir)), "status": status,
        "settings_digest": digest, "width": scanned.width, "height": scanned.height,
        "seconds": round(time.perf_counter() - started, 3),
        "faces": [r.__dict__ for r in reports],
    }


def _objective_factory(s: CloakSettings, ensemble: Ensemble, centroids, own, learned: _Learned,
                       generator: torch.Generator, protect_all: bool):
    """landmarks -> the objective for one face (``own``: its clean embeddings)."""
    from faceguard.cloak.objectives import ClassifierObjective, FeatureObjective
    from faceguard.cloak.transforms import RandomTransform

    seed = int(torch.randint(2**31, (1,), generator=generator))
    transform = RandomTransform(seed) if s.robust else None

    def make(landmarks: np.ndarray):
        if s.objective == "classifier":
            with torch.no_grad():
                probs = learned.classifier.probabilities({m: e[None] for m, e in own.items()})[0]
            label = int(probs.argmax()) if protect_all else 0
            target = None
            if s.targeted:  # the class least like the face
                probs[label] = float("inf")
                target = int(probs.argmin())
            return ClassifierObjective(ensemble, landmarks, learned.classifier, label, target,
                                       transform, s.eot_samples)
        return FeatureObjective(ensemble, landmarks, centroids, learned.decoy,
                                transform=transform, samples=s.eot_samples)

    return make


def _distances(ensemble: Ensemble, embeddings: dict[str, torch.Tensor], j: int,
               centroids: dict[str, torch.Tensor]) -> dict[str, float]:
    """model -> distance of face j to the centroid, in the model's own metric."""
    return {m: round(float(ensemble[m].compare(embeddings[m][j], centroids[m])), 4)
            for m in ensemble.names}



# ----------------------------------------------------------------------------------------
# Finding the people of an album


@dataclass
class AlbumPerson:
    """One person found in an album: their faces and where they are."""

    name: str
    person: Person
    faces: list[tuple[Path, Face]]

    def to_dict(self) -> dict:
        return {"name": self.name, "count": len(self.faces),
                "faces": [{"photo": str(p), **f.to_dict()} for p, f in self.faces]}


def find_people(paths: Sequence[Path], detector: FaceDetector, ensemble: Ensemble,
                max_pixels: int | None = None) -> Iterator[Event]:
    """Detect, embed and cluster every face of an album into people.

    Yields "scanning" events per photo, then one "grouping" event whose ``result`` is
    the list of :class:`AlbumPerson`, largest first.
    """
    scanned = []
    for event in detect_photos(paths, detector, ensemble, max_pixels, stage="scanning"):
        if event.result is not None:
            scanned.append(event.result)
        yield event
    people = [AlbumPerson(person.name, person,
                          [(scanned[i].path, scanned[i].faces[j]) for i, j in where])
              for person, where in album_people(scanned, ensemble)]
    yield Event(1, 1, "grouping", result=people)


def face_chip(photo: Photo, face: Face, size: int = 160, margin: float = 0.5) -> Photo:
    """A square crop around a face (box grown by ``margin``), resized to ``size`` px.

    The margin keeps enough context for the detector to find the face again, so
    chips work as reference photos (``--protect people/person-1``).
    """
    import cv2

    x0, y0, x1, y1 = face.box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = size / side
    m = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]])
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    chip = cv2.warpAffine(photo.pixels, m, (size, size), flags=interp,
                          borderMode=cv2.BORDER_REPLICATE)
    return Photo(np.clip(chip, 0, 1))


def write_people(people: Sequence[AlbumPerson], outdir: Path, max_pixels: int | None = None,
                 per_person: int = 5) -> list[Path]:
    """Write each person's face chips to ``outdir/person-N/`` and ``people.json``.

    Returns the folders, one per person; each is usable as ``--protect FOLDER``.
    """
    import json

    outdir.mkdir(parents=True, exist_ok=True)
    folders = []
    for person in people:
        folder = outdir / _slug(person.name)
        folder.mkdir(exist_ok=True)
        for k, (path, face) in enumerate(person.faces[:per_person]):
            chip = face_chip(load_photo(path, **({} if max_pixels is None
                                                 else {"max_pixels": max_pixels})), face)
            save_photo(chip, folder / f"face-{k + 1}.png", overwrite=True)
        folders.append(folder)
    summary = {"people": [dict(p.to_dict(), folder=f.name) for p, f in
                          zip(people, folders, strict=True)]}
    (outdir / "people.json").write_text(json.dumps(summary, indent=1))
    return folders
