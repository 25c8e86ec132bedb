"""The app's jobs: small generators over the core's pipeline, run by :mod:`workers`.

Each yields :class:`faceguard.progress.Event`; where the screen needs pictures, the
event's ``result`` is wrapped with ``QImage`` thumbnails made here, in the worker
thread. No cloaking, grouping or auditing logic lives here: that is the core's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from faceguard.album import AlbumPerson, PhotoFaces, detect_photos, embed_people, group_people
from faceguard.audit.run import AuditJob, AuditResult, run_audit
from faceguard.identity import Person
from faceguard.io import NO_LIMIT, load_photo
from faceguard.pipeline import CloakJob, cloak_album
from faceguard.progress import Event
from faceguard_gui.images import difference_image, thumbnail, to_qimage
from faceguard_gui.workers import ModelCache

# ----------------------------------------------------------------------------- photos


@dataclass
class ScannedPhoto:
    """One photo after scanning: its faces (None when unreadable), why not, a thumbnail."""

    path: Path
    faces: PhotoFaces | None
    error: str | None
    thumbnail: QImage | None


@dataclass
class FoundPerson:
    """A person found in the album, with a face chip to show."""

    person: AlbumPerson
    chip: QImage | None

    @property
    def photos(self) -> int:
        return len({path for path, _ in self.person.faces})


def person_chip(person: AlbumPerson, size: int = 128) -> QImage | None:
    """A face chip of the person's largest face."""
    from faceguard.chips import face_chip

    path, face = max(person.faces, key=lambda pf: pf[1].width)
    try:
        return to_qimage(face_chip(load_photo(path), face, size=size).pixels)
    except Exception:
        return None


def scan_photos(paths: Sequence[Path], earlier: Sequence[PhotoFaces], cache: ModelCache,
                models: Sequence[str]) -> Iterator[Event]:
    """Detect and embed the faces of new photos, then group the whole album into people.

    Yields "scanning" events (``result`` a :class:`ScannedPhoto`), then one "grouping"
    event whose ``result`` is a list of :class:`FoundPerson`, largest first.
    """
    detector, ensemble = cache.detector(), cache.ensemble(models)
    scanned = list(earlier)
    for event in detect_photos(paths, detector, ensemble, stage="scanning"):
        if event.result is not None:
            scanned.append(event.result)
        photo = ScannedPhoto(event.path, event.result, event.error, thumbnail(event.path))
        yield replace(event, result=photo)
    people = group_people(scanned, ensemble)
    yield Event(1, 1, "grouping", result=[FoundPerson(p, person_chip(p)) for p in people])


# ---------------------------------------------------------------------------- protect


def protect_album(job: CloakJob, people: Sequence[AlbumPerson], cache: ModelCache
                  ) -> Iterator[Event]:
    """Cloak the album (:func:`faceguard.pipeline.cloak_album`) for the chosen people."""
    if people:
        persons: list[Person] = []
        for event in embed_people(people, cache.ensemble(job.settings.models)):
            if event.result is not None:
                persons = event.result
            yield replace(event, result=None)
        job = replace(job, protect_people=persons)
    yield from cloak_album(job, cache.detector(), load_ensemble=cache.ensemble)


@dataclass
class PreviewData:
    """Everything the preview window shows for one photo.

    Attributes:
        original, output: the photo and its protected version (files).
        entry: the photo's manifest entry (faces as :class:`~faceguard.manifest.FaceRecord`
            dictionaries: visibility, distances, thresholds, recognised or not).
        before, after, difference: full-resolution images (difference amplified).
    """

    original: Path
    output: Path
    entry: dict
    before: QImage
    after: QImage
    difference: QImage


def load_preview(original: Path, output: Path, entry: dict) -> PreviewData:
    """Read both photos at full resolution and make the three images."""
    after = load_photo(output, limit=NO_LIMIT)
    before = load_photo(original, limit=NO_LIMIT).shrunk_as(after).pixels
    after = after.pixels
    if before.shape != after.shape:  # never expected: the cloak keeps the (shrunk) size
        diff = np.full_like(after, 0.5)
    else:
        diff = difference_image(before, after)
    return PreviewData(original, output, entry, to_qimage(before), to_qimage(after),
                       to_qimage(diff))


def preview_photo(job: CloakJob, people: Sequence[AlbumPerson], cache: ModelCache
                  ) -> Iterator[Event]:
    """Cloak one photo (``job.inputs[0]``) into a scratch folder and prepare its preview.

    The last event's ``result`` is a :class:`PreviewData`, or its ``error`` says why
    there is nothing to preview.
    """
    entry = None
    for event in protect_album(job, people, cache):
        if event.stage == "cloaking" and not event.under_way:
            if event.error:
                yield replace(event, stage="preparing preview")
                return
            entry = event.result
        yield event
    if entry is None:
        return
    data = load_preview(Path(entry["input"]), job.outdir / entry["output"], entry)
    yield Event(1, 1, "preparing preview", job.inputs[0], result=data)


# ------------------------------------------------------------------------------ audit


@dataclass
class AuditOutcome:
    """An audit's result and the report's plots, ready to show."""

    result: AuditResult
    heatmap: QImage | None
    roc: QImage | None
    summary: list[str]


def report_plots(result: AuditResult) -> tuple[QImage | None, QImage | None]:
    """The report's heatmap and ROC plots (:func:`faceguard.audit.report.heatmap_png`,
    ``roc_png``) as images."""
    import base64

    from faceguard.audit import report

    images = []
    for make in (report.heatmap_png, report.roc_png):
        data = make(result)
        images.append(QImage.fromData(base64.b64decode(data), "PNG") if data else None)
    return images[0], images[1]


def audit(job: AuditJob, cache: ModelCache) -> Iterator[Event]:
    """Run :func:`faceguard.audit.run.run_audit`; the "done" event carries an AuditOutcome."""
    from faceguard.audit.report import summary
    from faceguard.stand_ins import stand_in_cloaks
    from faceguard.training_pairs import cloak_check, cloaked_pairs

    for event in run_audit(job, cache.detector(), load_ensemble=cache.ensemble,
                           make_stand_ins=stand_in_cloaks, training_pairs=cloaked_pairs,
                           check_cloak=cloak_check):
        if event.stage == "done":
            heatmap, roc = report_plots(event.result)
            event = replace(event, result=AuditOutcome(event.result, heatmap, roc,
                                                       summary(event.result)))
        yield event


def export_report(result: AuditResult, outdir: Path) -> Iterator[Event]:
    """Write report.json and report.html; the event's result is (json path, html path)."""
    from faceguard.audit.report import write_report

    yield Event(1, 1, "writing the report", outdir, result=write_report(result, outdir))


# ----------------------------------------------------------------------------- models


def install_models(names: Sequence[str], log: Callable[[str], None]) -> Iterator[Event]:
    """Install recognizers one by one (:func:`faceguard.models.install.install`)."""
    from faceguard.models.install import install

    for k, name in enumerate(names, 1):
        log(f"installing {name}…")
        install(name, log=log)
        log(f"{name} is installed")
        yield Event(k, len(names), "installing models", result=name)
