"""An audit run: pair originals with cloaked photos, test protection and detection, report.
Driven as a generator of progress events by ``faceguard audit`` and the GUI."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from faceguard.audit import ATTACKER_SECONDS, QUICK_DEFENSES, QUICK_DETECTORS
from faceguard.audit.cloak_detection import MIN_FACES
from faceguard.audit.defenses import defense_label, parse_defense
from faceguard.audit.detection_step import detect_cloaks, too_few
from faceguard.audit.held_out import CHECK_FACES, CheckCloak, held_out_check, needed
from faceguard.audit.pairs import AuditError, Pair, changed_faces, find_pairs
from faceguard.audit.people import (
    add_gallery,
    against_other_photos,
    check_gallery,
    holds_photos_of,
    label_people,
    reference_faces,
)
from faceguard.audit.protection import (
    AuditFace,
    Gallery,
    audit_crop,
    audit_thresholds,
    examples,
    not_made_on,
    protection_table,
    unmeasured_people,
)
from faceguard.audit.verdict import TOP1_PEOPLE, AuditVerdict, audit_verdict
from faceguard.detect import FaceDetector
from faceguard.face import Face
from faceguard.io import (
    DEFAULT_LIMIT,
    Photo,
    PhotoError,
    PixelLimit,
    as_shown,
    load_photo,
    tensor_view,
)
from faceguard.models.ensemble import Ensemble
from faceguard.planning import named_by_faceguard
from faceguard.progress import Event
from faceguard.visibility import measure_face, most_visible
from faceguard.words import GIVE_GALLERY, plural
from faceguard.workers import in_parallel


@dataclass
class AuditJob:
    """What to audit and how.

    Attributes:
        cloaked: folder of cloaked photos (with a FaceGuard manifest, or paired by name).
        originals: folder (or file) of the originals; optional with a manifest.
        original_photos: output-relative path -> original, as the app that cloaked them knows.
        outdir: where report.json and report.html go.
        gallery: extra clean photos of known people (one sub-folder per person).
        models: recognizers to test (default: one per installed family,
            :func:`faceguard.models.catalogue.one_per_family`).
        defenses: defense names (or "name:key=value" forms); "none", the photos as
            published, is always measured: the verdict rests on it.
        detectors: detector names.
        detect_after: a defense applied before detection (the paper's "BL+SR then detect").
        trajectory_model: the recognizer the trajectory detectors watch.
        examples: how many example faces to show.
        limit: the pixel limit of the photos read.
        stand_ins: with fewer than MIN_FACES cloaked faces, train the detectors on
            stand-in faces cloaked with the same settings (see :func:`run_audit`).
        held_out_check: faces re-cloaked without each family when the cloak was made on
            every one (:mod:`faceguard.audit.held_out`); 0 turns the check off.
        attacker_seconds: how long the attackers who train may spend cloaking other
            people's faces to learn from (None: no limit); short of time they learn from
            fewer, and later audits with the same settings add more (cached).
    """

    cloaked: Path
    outdir: Path
    originals: Path | None = None
    original_photos: Mapping[Path, Path] | None = None
    gallery: Path | None = None
    models: list[str] | None = None
    defenses: Sequence[str] = QUICK_DEFENSES
    detectors: Sequence[str] = QUICK_DETECTORS
    detect_after: str | None = None
    trajectory_model: str = "dlib"
    examples: int = 3
    limit: PixelLimit = DEFAULT_LIMIT
    stand_ins: bool = True
    held_out_check: int = CHECK_FACES
    attacker_seconds: float | None = ATTACKER_SECONDS


@dataclass
class AuditResult:
    """Everything the report shows."""

    protection: list[dict] = field(default_factory=list)
    held_out_check: list[dict] = field(default_factory=list)  # rows, see audit.held_out
    other_photos: bool = False  # of the protected people, the cloak did not know (verdict)
    detection: list[dict] = field(default_factory=list)
    cloak_models: list[str] = field(default_factory=list)
    cloak_settings: dict = field(default_factory=dict)
    protected_people: list[str] = field(default_factory=list)  # as the user named them
    # people whose faces could not be measured: no other photo of them to be recognised by
    unmeasured: list[str] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    faces: int = 0
    photos: int = 0
    people: int = 0
    visibility: dict = field(default_factory=dict)
    detection_problem: str = ""  # one plain sentence when the detection check could not run
    notes: list[str] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)  # arrays; not in report.json
    errors: list[str] = field(default_factory=list)

    def verdict(self) -> AuditVerdict:
        """The verdict in plain words (:func:`faceguard.audit.verdict.audit_verdict`)."""
        return audit_verdict(self.protection + self.held_out_check, self.visibility,
                             self.people, self.other_photos, self.unmeasured)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("examples")
        return d


def make_defenses(names: Sequence[str]) -> dict:
    """name (or "name:key=value,...") -> defense; raises ValueError on a bad name."""
    return {n: parse_defense(n) for n in names}


def check_detect_after(defenses: Sequence[str], after: str | None) -> None:
    """Raise ValueError when ``after``, the defense to detect the cloak after, learns
    from cloaked faces and is not among ``defenses``: only those are trained."""
    if after and after not in defenses and hasattr(make_defenses([after])[after], "fit"):
        raise ValueError(f"{after} learns from cloaked faces: give it among the defenses "
                         "too, to detect the cloak after it")


#: ``make_stand_ins(settings, detector, load_ensemble)``: cloaks stand-in faces with a
#: run's recorded settings; events, the last one's ``result`` the folder of cloaked
#: stand-ins (:func:`faceguard.stand_ins.stand_in_cloaks`)
StandIns = Callable[[dict, FaceDetector, Callable], Iterator[Event]]


def run_audit(job: AuditJob, detector: FaceDetector | None = None,
              load_ensemble: Callable[[Sequence[str]], Ensemble] | None = None,
              make_defenses: Callable[[Sequence[str]], dict] = make_defenses,
              make_stand_ins: StandIns | None = None,
              training_pairs: Callable | None = None,
              check_cloak: CheckCloak | None = None) -> Iterator[Event]:
    """Run the audit; the last event's ``result`` is the :class:`AuditResult`.

    ``training_pairs(settings, faces, avoid, seconds=...)``: other people's faces cloaked
    with the cloak's settings (:func:`faceguard.training_pairs.cloaked_pairs`), which the
    defenses that learn need; without it they are left out, with a note. ``check_cloak``:
    re-makes the cloak on aligned faces with other models
    (:func:`faceguard.training_pairs.cloak_check`), for the held-out check; without it
    that check is left out, with a note.

    Stages: reading photos, reading gallery, training attackers (for the defenses that
    learn), trying defenses (one event per defense), checking recognizers it was not made
    on (one event per family, when the cloak was made on every one), making stand-in
    cloaks (only with too few cloaked faces for the detectors, and ``make_stand_ins``
    given: the audit itself never cloaks; the shells pass the functions that do),
    training detectors (one event per detector), then the result.
    """
    from faceguard.models.catalogue import model_info, one_per_family
    try:
        check_detect_after(job.defenses, job.detect_after)
    except ValueError as exc:
        raise AuditError(str(exc)) from None
    detector = detector or FaceDetector()
    load_ensemble = load_ensemble or Ensemble.load
    if job.gallery is not None and not job.gallery.is_dir():  # said before the work
        raise AuditError(f"no such folder of known people: {job.gallery}")
    if job.gallery is not None:
        check_gallery(job.gallery, job.cloaked)
    pairs, manifest = find_pairs(job)
    if not pairs:
        raise AuditError(f"no photo in {job.cloaked} has an original of its name in "
                         f"{job.originals}" if manifest.get("unmatched") else
                         f"no cloaked photos found in {job.cloaked}")
    names = job.models or one_per_family()
    ensemble = load_ensemble(names)
    defenses = make_defenses(["none", *(d for d in job.defenses if d != "none")])
    result = AuditResult(cloak_models=list(manifest.get("models", [])),
                         cloak_settings=manifest.get("settings", {}),
                         protected_people=list(manifest.get("protected", [])),
                         errors=list(manifest.get("unmatched", [])),
                         notes=list(manifest["notes"]))
    cloak_families = {model_info(m)["family"] for m in result.cloak_models}
    result.models = [{"name": m, "family": ensemble[m].family,
                      "held_out": not_made_on(ensemble[m].family, cloak_families)}
                     for m in ensemble.names]

    # 1. crops of every face: cloaked ones as probes, all clean ones for the gallery
    faces: list[AuditFace] = []
    qualities: list[dict] = []
    names: list[str | None] = []  # whom each cloaked face was protected as
    gallery_faces: list[tuple[str, Face, torch.Tensor, np.ndarray]] = []

    def read(pair: Pair) -> tuple[Photo, Photo, list[Face]] | str:
        """Both photos of the pair and the original's faces, or why not."""
        try:
            orig = load_photo(pair.original, limit=job.limit)
        except PhotoError as exc:  # "c/../in/a.jpg: no such file": the original, as written
            return f"the original {os.path.normpath(pair.original)}: {exc.reason}"
        try:
            clk = orig if pair.copied else load_photo(pair.cloaked, limit=job.limit)
        except PhotoError as exc:
            return str(exc)
        if (orig := orig.shrunk_as(clk)).pixels.shape != clk.pixels.shape:  # (--max-side)
            return f"{pair.cloaked}: not the same size as {pair.original}"
        return orig, clk, detector(orig.pixels)

    for error in result.errors:  # cloaked photos without an original: named, as failed
        yield Event(0, len(pairs), "reading photos", error=error)
    uncloaked: list[Path] = []  # photos without a manifest whose faces are all as before
    for i, (pair, read_pair) in enumerate(zip(pairs, in_parallel(read, pairs), strict=True), 1):
        if isinstance(read_pair, str):
            result.errors.append(read_pair)
            yield Event(i, len(pairs), "reading photos", pair.cloaked, error=read_pair)
            continue
        orig, clk, all_faces = read_pair
        cloaked_faces = pair.faces if pair.faces is not None else changed_faces(
            orig.pixels, clk.pixels, all_faces)
        if not (cloaked_faces or pair.copied):
            uncloaked.append(pair.cloaked)
        t_orig, t_clk = tensor_view(orig.pixels), tensor_view(clk.pixels)
        for k, face in enumerate(cloaked_faces):
            crop_o, marks = audit_crop(t_orig, face, ensemble)
            crop_c, _ = audit_crop(t_clk, face, ensemble)
            faces.append(AuditFace("", str(pair.original), crop_o, crop_c, marks))
            names.append(pair.names[k] if k < len(pair.names) else None)
        for face in all_faces:
            crop_o, marks = audit_crop(t_orig, face, ensemble)
            gallery_faces.append((str(pair.original), face, crop_o, marks))
        result.photos += 1
        # the file as published is judged: without the cloak run's figures (no manifest),
        # or where its compression took a face lower than the cloak, measured here as the
        # run measures them
        quality = pair.quality or [{}] * len(cloaked_faces)
        if not all(map(_as_published, quality)):  # as viewers show them (alpha, profile)
            shown = as_shown(orig), as_shown(clk)
        qualities += [q if _as_published(q) else measure_face(*shown, face.box)
                      for q, face in zip(quality, cloaked_faces, strict=True)]
        yield Event(i, len(pairs), "reading photos", pair.cloaked)
    if not faces:
        raise AuditError("no cloaked face found in the cloaked photos")
    if uncloaked:  # judged all the same: said, as a partly cloaked album is not protected
        note = (f"{len(uncloaked)} of the {len(pairs)} photos show"
                f"{'s' * (len(uncloaked) == 1)} no cloak (no face differs from its original), "
                f"such as {uncloaked[0].name}: taken as clean photos of the people in them.")
        result.notes.append(note)
        yield Event(len(pairs), len(pairs), "reading photos", note=note)
    if (copied := sum(p.copied for p in pairs)) < manifest.get("copied", 0):
        result.notes.append(f"The gallery holds {copied} of the {manifest['copied']} photos "
                            "copied without a cloak, spread over the album.")
    result.visibility = most_visible(qualities)
    # the cloak run's reference photos are clean photos of the protected person
    theirs = reference_faces(manifest.get("references", []), faces, detector, ensemble,
                             job.limit, result.notes)
    gallery_faces += theirs
    references = [photo for photo, *_ in theirs]

    # 2. who is who: cluster the clean faces; each cloaked face takes its original's label
    gallery = label_people(ensemble, gallery_faces, faces, names, references,
                           result.protected_people[0] if len(result.protected_people) == 1
                           else None)
    if job.gallery is not None:
        called = list(gallery.people)
        # FaceGuard's names ("the person in a.jpg", "person-1") give way to a folder's
        made_up = {n for n in called if n not in names or named_by_faceguard(n)}
        for event in add_gallery(job.gallery, detector, ensemble, gallery, result.notes,
                                 made_up):
            result.errors += [event.error] if event.error else []
            yield event
        renamed = dict(zip(called, gallery.people, strict=False))  # a folder's name lent
        for f in faces:
            f.person = renamed.get(f.person, f.person)
        result.protected_people = [renamed.get(n, n) for n in result.protected_people]
        result.other_photos = holds_photos_of(gallery, job.gallery, {f.person for f in faces},
                                              [*references, *(p.original for p in pairs)])
    result.notes += against_other_photos(faces, manifest.get("reference_photos", 0))
    result.faces = len(faces)
    result.people = len(set(gallery.people))
    result.unmeasured = unmeasured_people(gallery, faces)
    if result.people < TOP1_PEOPLE:  # nearest among a few people says little
        known = ("Only one person is known" if result.people < 2 else
                 f"Only {result.people} people are known, under {TOP1_PEOPLE}")
        result.notes.append(f"{known}, so top-1 identification is not counted; add other "
                            f"people {GIVE_GALLERY}. Protection is measured by verification "
                            "(distance beyond the threshold).")

    # 3. protection per defense and recognizer, the learning defenses trained first
    if trained := [n for n, d in defenses.items() if hasattr(d, "fit")]:
        from faceguard.audit.defenses.adaptive import fit_trained, protected_filter

        avoid = protected_filter(ensemble, gallery, {f.person for f in faces})
        yield from fit_trained(defenses, trained, training_pairs, result.cloak_settings, ensemble,
                               avoid, result.notes, job.attacker_seconds)
    thresholds, how = audit_thresholds(ensemble, gallery)
    result.notes.append(how)
    for event in protection_table(faces, gallery, ensemble, defenses, cloak_families,
                                  thresholds):
        if event.result is not None:
            result.protection = [asdict(r) for r in event.result]
        yield event

    if needed(result.protection, cloak_families):
        yield from _held_out(job, faces, gallery, ensemble, thresholds, check_cloak, result)

    # 4. detection
    stand_ins: list[AuditFace] = []
    if job.detectors and len(faces) < MIN_FACES:
        stand_ins = yield from _stand_ins(job, manifest.get("settings", {}), detector,
                                          load_ensemble, ensemble, make_stand_ins, result)
    # the defense the protection table used (trained, where it learns), else a new one
    after = job.detect_after
    before = defenses.get(after) or (make_defenses([after])[after] if after else None)
    if hasattr(before, "fit") and after not in defenses:  # left out untrained (a note says)
        result.notes.append(f"The detectors ran on the photos as published, not after "
                            f"{defense_label(after)}, which was left out.")
        after = before = None
    yield from detect_cloaks(job.detectors, faces, stand_ins, result, ensemble,
                             after, before, job.trajectory_model)
    result.examples = examples(faces, defenses, job.examples)
    yield Event(1, 1, "done", result=result)


def _as_published(quality: dict) -> bool:
    """Whether the cloak run's figures of a face are those of its file: measured (a face
    too small to be, or a manifest from before SSIMULACRA2, has none, and none is
    measured here either), and not taken half a point or more lower by the file's
    compression."""
    if "ssimulacra2" not in quality:
        return bool(quality)
    return quality.get("saved_ssimulacra2", 100.0) >= quality["ssimulacra2"] - 0.5


def _held_out(job: AuditJob, faces: list[AuditFace], gallery: Gallery, ensemble: Ensemble,
              thresholds: dict, check_cloak: CheckCloak | None, result: AuditResult
              ) -> Iterator[Event]:
    """The held-out check into ``result.held_out_check``, or a note on why it did not run."""
    if check_cloak is None or not job.held_out_check:
        result.notes.append("The cloak was made on every recognizer checked, and the check "
                            "that re-makes it without one of them was turned off.")
        return
    for event in held_out_check(faces, gallery, ensemble, result.cloak_settings, check_cloak,
                                thresholds, job.held_out_check):
        if event.result is not None:
            result.held_out_check = event.result
        yield event
    n = max((r["faces"] for r in result.held_out_check), default=0)
    result.notes.append(f"Recognizers it was not made on: checked by re-making the cloak "
                        f"without each one's family on {plural(n, 'face')} (aligned at "
                        "112 px, at most 20 steps) and asking that family to recognise "
                        "them.")


def _stand_ins(job: AuditJob, settings: dict, detector: FaceDetector, load_ensemble,
              ensemble: Ensemble, make_stand_ins: StandIns | None, result: AuditResult
              ) -> Generator[Event, None, list[AuditFace]]:
    """Cloaked stand-in faces as audit crops (their person: the stand-in's name), or []
    with ``result.detection_problem`` saying why there are none."""
    if not job.stand_ins or make_stand_ins is None:
        result.detection_problem = too_few(result.faces, "stand-in faces were turned off")
        return []
    folder = None
    try:
        for event in make_stand_ins(settings, detector, load_ensemble):
            if isinstance(event.result, Path):
                folder = event.result
            yield replace(event, error=None, result=None)
        pairs, _ = find_pairs(AuditJob(cloaked=folder, outdir=folder))
    except Exception as exc:  # noqa: BLE001 - any failure: the check says why, the audit goes on
        result.detection_problem = too_few(result.faces, f"no stand-in face could be cloaked "
                                                         f"({exc})")
        return []
    out = []
    for pair in pairs:
        orig, clk = (tensor_view(load_photo(p).pixels) for p in (pair.original, pair.cloaked))
        for face in pair.faces or []:
            crop_o, marks = audit_crop(orig, face, ensemble)
            crop_c, _ = audit_crop(clk, face, ensemble)
            out.append(AuditFace(pair.original.stem.split("-")[0], str(pair.original),
                                 crop_o, crop_c, marks))
    return out
