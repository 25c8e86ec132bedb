"""An audit run: pair originals with cloaked photos, test protection and detection, report.

Driven as a generator of progress events by ``faceguard audit`` and the GUI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from faceguard.align import ARCFACE_112, face_transform, warp
from faceguard.audit.protection import (
    AuditFace,
    Gallery,
    audit_crop,
    audit_thresholds,
    protection_table,
)
from faceguard.detect import Face, FaceDetector
from faceguard.io import (
    DEFAULT_LIMIT,
    PhotoError,
    PixelLimit,
    find_photos,
    load_photo,
    to_tensor,
)
from faceguard.manifest import MANIFEST_NAME, Manifest, manifest_file
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event

#: the quick default: what people meet when they upload, and the papers' strongest
QUICK_DEFENSES = ("none", "jpeg75", "jpeg50", "bilateral", "resize", "bl+sr", "purifier")
QUICK_DETECTORS = ("wlmp-linear", "wlmp-rbf", "wlmp-rf", "trajectory-lstm")


class AuditError(Exception):
    """A problem with the whole audit: one line for the user."""


@dataclass
class AuditJob:
    """What to audit and how.

    Attributes:
        cloaked: folder of cloaked photos (with a FaceGuard manifest, or paired by name).
        originals: folder (or file) of the originals; optional with a manifest.
        outdir: where report.json and report.html go.
        gallery: extra clean photos of known people (one sub-folder per person).
        models: recognizers to test (default: every installed one).
        defenses: defense names (or "name:key=value" forms).
        detectors: detector names.
        detect_after: a defense applied before detection (the paper's "BL+SR then detect").
        trajectory_model: the recognizer the trajectory detectors watch.
        examples: how many example faces to show.
        limit: the pixel limit of the photos read.
    """

    cloaked: Path
    outdir: Path
    originals: Path | None = None
    gallery: Path | None = None
    models: list[str] | None = None
    defenses: Sequence[str] = QUICK_DEFENSES
    detectors: Sequence[str] = QUICK_DETECTORS
    detect_after: str | None = None
    trajectory_model: str = "dlib"
    examples: int = 3
    limit: PixelLimit = DEFAULT_LIMIT


@dataclass
class Pair:
    """An original photo, its cloaked version, and the cloaked faces (None: find them)."""

    original: Path
    cloaked: Path
    faces: list[Face] | None = None


@dataclass
class AuditResult:
    """Everything the report shows."""

    protection: list[dict] = field(default_factory=list)
    detection: list[dict] = field(default_factory=list)
    cloak_models: list[str] = field(default_factory=list)
    cloak_settings: dict = field(default_factory=dict)
    models: list[dict] = field(default_factory=list)
    faces: int = 0
    photos: int = 0
    people: int = 0
    notes: list[str] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)  # arrays; not in report.json
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("examples")
        return d


def find_pairs(job: AuditJob) -> tuple[list[Pair], dict]:
    """Pairs of (original, cloaked) photos and the cloak run's manifest (or {})."""
    if manifest_file(job.cloaked) is not None:
        try:
            manifest = Manifest.load(job.cloaked)
        except ValueError as exc:
            raise AuditError(str(exc)) from None
        pairs = []
        for rel, entry in manifest.photos.items():
            if entry.get("status") != "cloaked":
                continue
            faces = [Face(tuple(f.box), np.asarray(f.landmarks), 1.0)
                     for f in manifest.faces(rel) if f.protected]
            pairs.append(Pair(_original(manifest, entry, job.originals),
                              job.cloaked / entry["output"], faces))
        data = dict(manifest.data, references=[str(job.cloaked / r) for r in
                                               manifest.data.get("references", [])])
        return pairs, data
    if job.originals is None:
        raise AuditError(f"{job.cloaked} has no {MANIFEST_NAME}: say where the originals are "
                         "with --originals DIR")
    originals = {_key(p, job.originals): p for p in find_photos([job.originals])}
    pairs = []
    for path in find_photos([job.cloaked]):
        key = _key(path, job.cloaked)
        if key in originals:
            pairs.append(Pair(originals[key], path))
    return pairs, {}


def _original(manifest: Manifest, entry: dict, originals: Path | None) -> Path:
    """Where a manifest entry's original is: as recorded, else in ``originals``."""
    recorded = manifest.input_path(entry)
    if recorded is not None and (originals is None or recorded.is_file()):
        return recorded
    if originals is None:
        raise AuditError(f"{manifest.path.name} does not say where the originals are (their "
                         "folder is kept private): give it with --originals DIR")
    below = originals / entry["input"]
    return below if below.is_file() else originals / Path(entry["input"]).name


def _key(path: Path, root: Path) -> str:
    rel = path.relative_to(root) if root.is_dir() else Path(path.name)
    return rel.with_suffix("").as_posix()


def _changed_faces(original: np.ndarray, cloaked: np.ndarray, faces: list[Face]) -> list[Face]:
    """The faces whose pixels differ (the cloaked ones), by mean absolute change."""
    out = []
    for f in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in f.box)
        diff = np.abs(original[y0:y1, x0:x1] - cloaked[y0:y1, x0:x1]).mean()
        if diff > 0.5 / 255:
            out.append(f)
    return out


def make_defenses(names: Sequence[str]) -> dict:
    """name (or "name:key=value,...") -> defense; raises ValueError on a bad name."""
    from faceguard.audit.defenses import parse_defense

    return {n: parse_defense(n) for n in names}


def run_audit(job: AuditJob, detector: FaceDetector | None = None,
              load_ensemble: Callable[[Sequence[str]], Ensemble] | None = None,
              make_defenses: Callable[[Sequence[str]], dict] = make_defenses,
              training_pairs: Callable | None = None) -> Iterator[Event]:
    """Run the audit; the last event's ``result`` is the :class:`AuditResult`.

    ``training_pairs(settings, faces, avoid)``: other people's faces cloaked with the cloak's
    settings (:func:`faceguard.training_pairs.cloaked_pairs`), which the defenses that
    learn need; without it they are left out, with a note.

    Stages: reading photos, reading gallery, training attackers (for the defenses that
    learn), trying defenses (one event per defense), training detectors (one event per
    detector), then the result.
    """
    from faceguard.models.catalogue import is_installed, model_info, model_names
    detector = detector or FaceDetector()
    load_ensemble = load_ensemble or Ensemble.load
    pairs, manifest = find_pairs(job)
    if not pairs:
        raise AuditError(f"no cloaked photos with their originals found in {job.cloaked}")
    names = job.models or [m for m in model_names() if is_installed(m)]
    ensemble = load_ensemble(names)
    defenses = make_defenses(job.defenses)
    result = AuditResult(cloak_models=list(manifest.get("models", [])),
                         cloak_settings=manifest.get("settings", {}))
    cloak_families = {model_info(m)["family"] for m in result.cloak_models}
    result.models = [{"name": m, "family": ensemble[m].family,
                      "held_out": ensemble[m].family not in cloak_families}
                     for m in ensemble.names]
    if not cloak_families:
        result.notes.append("The cloak's models are unknown (no manifest): no recognizer is "
                            "marked as not made on.")

    # 1. crops of every face: cloaked ones as probes, all clean ones for the gallery
    faces: list[AuditFace] = []
    gallery_faces: list[tuple[str, Face, torch.Tensor, np.ndarray]] = []
    for i, pair in enumerate(pairs, 1):
        try:
            orig = load_photo(pair.original, limit=job.limit)
            clk = load_photo(pair.cloaked, limit=job.limit)
        except PhotoError as exc:
            result.errors.append(str(exc))
            yield Event(i, len(pairs), "reading photos", pair.cloaked, error=str(exc))
            continue
        if orig.pixels.shape != clk.pixels.shape:
            msg = f"{pair.cloaked}: not the same size as {pair.original}"
            result.errors.append(msg)
            yield Event(i, len(pairs), "reading photos", pair.cloaked, error=msg)
            continue
        all_faces = detector(orig.pixels)
        cloaked_faces = pair.faces if pair.faces is not None else _changed_faces(
            orig.pixels, clk.pixels, all_faces)
        t_orig, t_clk = to_tensor(orig.pixels), to_tensor(clk.pixels)
        for face in cloaked_faces:
            crop_o, marks = audit_crop(t_orig, face, ensemble)
            crop_c, _ = audit_crop(t_clk, face, ensemble)
            faces.append(AuditFace("", str(pair.original), crop_o, crop_c, marks))
        for face in all_faces:
            crop_o, marks = audit_crop(t_orig, face, ensemble)
            gallery_faces.append((str(pair.original), face, crop_o, marks))
        result.photos += 1
        yield Event(i, len(pairs), "reading photos", pair.cloaked)
    if not faces:
        raise AuditError("no cloaked face found in the cloaked photos")
    # the cloak run's reference photos are clean photos of the protected person
    for ref in manifest.get("references", []):
        try:
            photo = load_photo(ref, limit=job.limit)
        except PhotoError as exc:
            result.notes.append(f"reference photo skipped: {exc}")
            continue
        if found := detector(photo.pixels)[:1]:
            crop_o, marks = audit_crop(to_tensor(photo.pixels), found[0], ensemble)
            gallery_faces.append((str(ref), found[0], crop_o, marks))

    # 2. who is who: cluster the clean faces; each cloaked face takes its original's label
    gallery = _label_people(ensemble, gallery_faces, faces)
    if job.gallery is not None:
        yield from _add_gallery(job.gallery, detector, ensemble, gallery)
    result.faces = len(faces)
    result.people = len(set(gallery.people))
    if result.people < 2:
        result.notes.append("Only one person is known, so top-1 identification cannot be "
                            "tested; add other people (--gallery DIR on the command line). "
                            "Protection is measured by verification (distance beyond the "
                            "threshold).")

    # 3. protection per defense and recognizer, the learning defenses trained first
    if trained := [n for n, d in defenses.items() if hasattr(d, "fit")]:
        from faceguard.audit.defenses.adaptive import fit_trained, protected_filter

        avoid = protected_filter(ensemble, gallery, {f.person for f in faces})
        yield from fit_trained(defenses, trained, training_pairs, result.cloak_settings, ensemble,
                               avoid, result.notes)
    thresholds, how = audit_thresholds(ensemble, gallery)
    result.notes.append(how)
    for event in protection_table(faces, gallery, ensemble, defenses, cloak_families,
                                  thresholds):
        if event.result is not None:
            result.protection = [asdict(r) for r in event.result]
        yield event

    # 4. detection
    yield from _detect(job, ensemble, faces, result, make_defenses)
    result.examples = _examples(faces, defenses, job.examples)
    yield Event(1, 1, "done", result=result)


def _label_people(ensemble: Ensemble, gallery_faces, faces: list[AuditFace]) -> Gallery:
    """Cluster every clean face into people; label the cloaked faces from their originals."""
    from faceguard.identity import cluster_faces

    with torch.no_grad():
        embs = [{m: e[0] for m, e in ensemble.embed(crop, marks).items()}
                for _, _, crop, marks in gallery_faces]
    stacked = {m: torch.stack([e[m] for e in embs]) for m in ensemble.names}
    labels = cluster_faces(ensemble, stacked, photos=[photo for photo, *_ in gallery_faces])
    gallery = Gallery()
    for (photo, _, _, _), emb, label in zip(gallery_faces, embs, labels, strict=True):
        gallery.add(f"person {label + 1}", photo, {m: e.detach() for m, e in emb.items()})
    # a cloaked face is the clean face at the same place in the same photo
    for f in faces:
        with torch.no_grad():
            emb = {m: e[0] for m, e in ensemble.embed(f.original, f.landmarks).items()}
        best, best_d = None, np.inf
        for k, (photo, _, _, _) in enumerate(gallery_faces):
            if photo != f.photo:
                continue
            d = sum(float((embs[k][m] - emb[m]).norm()) for m in ensemble.names)
            if d < best_d:
                best, best_d = k, d
        f.person = gallery.people[best] if best is not None else "unknown"
    return gallery


def _add_gallery(folder: Path, detector, ensemble, gallery: Gallery) -> Iterator[Event]:
    """Add the clean photos of a gallery folder (one sub-folder per person)."""
    from faceguard.album import detect_photos, gallery_folders

    subs = gallery_folders(folder)
    for k, (name, photos) in enumerate(subs.items(), 1):
        for event in detect_photos(photos, detector, ensemble):
            if event.result is not None and event.result.faces:
                gallery.add(name, str(event.path),
                            {m: e[0] for m, e in event.result.embeddings.items()})
        yield Event(k, len(subs), "reading gallery", folder / name)


def _detect(job: AuditJob, ensemble: Ensemble, faces: list[AuditFace], result: AuditResult,
            make_defenses) -> Iterator[Event]:
    from faceguard.audit.cloak_detection import cross_validate, detector_label

    if not job.detectors:
        return
    persons = [f.person for f in faces]
    split = "person" if len(set(persons)) >= 2 else "photo"
    groups = persons if split == "person" else [f.photo for f in faces]
    if len(set(groups)) < 2:
        result.notes.append("Detection needs faces from at least two photos: skipped.")
        return
    if split == "photo":
        result.notes.append("All cloaked faces are one person, so detectors were tested on "
                            "other photos of the same person (a platform would train on "
                            "other people, which is no easier for it).")
    before = make_defenses([job.detect_after])[job.detect_after] if job.detect_after else None
    for k, name in enumerate(job.detectors, 1):
        if name.startswith("trajectory-"):
            model = job.trajectory_model if job.trajectory_model in ensemble.names \
                else ensemble.names[0]
            rec = ensemble[model]
            template, size = rec.template, rec.input_size
        else:
            rec, template, size = None, ARCFACE_112 * 2, 224
        clean = [_aligned(f.original, f.landmarks, template, size, before) for f in faces]
        cloaked = [_aligned(f.cloaked, f.landmarks, template, size, before) for f in faces]
        try:
            r = cross_validate(name, clean, cloaked, groups, persons, rec, split=split)
        except ValueError as exc:
            result.notes.append(f"{detector_label(name)}: {exc}")
            yield Event(k, len(job.detectors), "training detectors",
                        error=f"{name}: {exc}")
            continue
        entry = asdict(r) | {"sentence": r.sentence(), "after_defense": job.detect_after,
                             "watched_model": rec.name if rec is not None else None}
        result.detection.append(entry)
        yield Event(k, len(job.detectors), "training detectors", result=entry)


def _aligned(crop: torch.Tensor, landmarks: np.ndarray, template: np.ndarray, size: int,
             defense=None) -> torch.Tensor:
    image = defense(crop) if defense is not None else crop
    with torch.no_grad():
        return warp(image, face_transform(landmarks, template), size)[0].clamp(0, 1)


def _examples(faces: list[AuditFace], defenses: dict, count: int) -> list[dict]:
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
