"""Cloaking an album: a generator of progress events (see :mod:`faceguard.progress`).

The CLI and the GUI both drive :func:`cloak_album`. Every optimisation step reports its
progress as an event, so stopping the iteration cancels within a step; every output
file and the manifest are written atomically, so a cancelled run leaves only complete
files, and ``resume`` picks up where it stopped. Each photo's own work (cloak, write,
measure) is :mod:`faceguard.one_photo`. On the CPU two photos to optimise are cloaked
side by side (:mod:`faceguard.side_by_side`), and said and recorded in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from functools import partial
from pathlib import Path

from faceguard import side_by_side
from faceguard.album import (
    AlbumError,
    DecodedPhotos,
    PhotoFaces,
    detect_photos,
    gallery_people,
    photo_jobs,
    reference_person,
    slug,
)
from faceguard.atomic import remove_temporaries
from faceguard.detect import FaceDetector
from faceguard.identity import Person, split_people
from faceguard.io import PhotoError, find_photos
from faceguard.job import CloakJob
from faceguard.manifest import Manifest, file_stat, find_mask
from faceguard.models.ensemble import Ensemble
from faceguard.one_photo import cloak_photo, shared_names
from faceguard.output_folder import check_outdir, hold, make_outdir
from faceguard.planning import (
    SELF,
    UNNAMED,
    Plan,
    everyone_as_people,
    make_plan,
    needs_others,
    other_people,
    reference_groups,
    whose_faces,
)
from faceguard.progress import Event, stepwise
from faceguard.unseen import load_unseen


def cloak_album(job: CloakJob, detector: FaceDetector | None = None,
                load_ensemble: Callable[[Sequence[str]], Ensemble] = Ensemble.load
                ) -> Iterator[Event]:
    """Cloak the protected faces of every photo of the job.

    Stages (each a run of events): loading models, reading the people, scanning the
    album (detect and embed), learning (classifier, decoys or universal masks, when
    the method needs them), then one "cloaking" event per photo whose ``result`` is
    the photo's manifest entry (or ``error``, or ``skipped``). Learning and cloaking
    also report each optimisation step (events with ``part`` set).

    Raises:
        AlbumError: a problem with the whole job (no references, bad mask file, ...).
    """
    s = job.settings.resolved()
    jobs = job.photos if job.photos is not None else photo_jobs(job.inputs, job.recursive)
    if not jobs:
        raise AlbumError("no photos found in " + ", ".join(map(str, job.inputs)))
    check_outdir(job.outdir, [*job.inputs, *(job.protect or [])])
    held = None  # the output folder, held for this run from when it exists
    if job.outdir.is_dir():  # said now, not after the scan
        make_outdir(job.outdir)
        held = hold(job.outdir)
        _manifest(job.outdir)
    detector = detector or FaceDetector()
    mask_path = find_mask(job.mask) if job.mask else None
    mask = _load_mask(mask_path) if mask_path else None
    chosen_faces = any(any(c.values()) for c in (job.face_choices or {}).values())
    if not (job.protect or job.protect_people or job.protect_all or mask or chosen_faces):
        raise AlbumError("say whom to protect: reference photos (--protect), "
                         "--protect-all, or a universal mask (--mask)")
    references = find_photos(job.protect) if job.protect else []
    if job.protect and not references and mask is None:
        raise AlbumError("no reference photos found in " + ", ".join(map(str, job.protect)))
    ensemble = load_ensemble(mask.models if mask else s.models)
    yield Event(0, 0, "loading models", result=ensemble)
    made_at = mask.settings.get("floor") if mask else None  # masks since 5 Dec say it
    if made_at is not None and made_at != s.floor:
        yield Event(0, 0, "loading models", note=(
            f"the mask was made keeping faces at SSIMULACRA2 {made_at:g} (preset "
            f"{mask.settings.get('preset')}); it is applied keeping them at {s.floor:g}: "
            f"give that preset, or floor, to apply it as it was made"))

    protected: list[Person] = list(job.protect_people or [])
    if mask is not None:
        protected = [Person(mask.person, {m: c[None].to(ensemble.device) for m, c in
                                          mask.settings["centroids"].items()})]
    for name, photos in reference_groups(job.protect or []) if mask is None else []:
        read: list[Person] = []
        yield from _collect(reference_person(name, photos, detector, ensemble), read.append)
        groups = split_people(ensemble, read[0])
        protected += groups
        if len(groups) > 1:  # a blend of several people protects none of them
            yield Event(0, 0, "reading the person to protect", note=(
                f"the reference photos{'' if name == UNNAMED else f' of {name}'} show "
                f"{len(groups)} different people ("
                + "; ".join(f"{p.name}: {p.faces[0][0]}" + (" ..." if len(p) > 1 else "")
                            for p in groups)
                + "); each is protected from their own photos. Give one person's photos "
                  "to protect only them"))

    scanned: list[PhotoFaces | None] = []
    errors: dict[int, str] = {}
    decoded = DecodedPhotos(job.limit)  # each photo decoded once: by the scan
    for event in _scan([p for p, _ in jobs], detector, ensemble, job, decoded):
        if event.error:
            errors[event.done - 1] = event.error
        scanned.append(event.result)
        yield event
    if turned := [p.path.name for p in scanned if p and p.faces
                  and all(f.orientation != "upright" for f in p.faces)]:
        more = f" and {len(turned) - 3} more" if len(turned) > 3 else ""
        yield Event(0, 0, "scanning", note=(
            f"faces on their side or upside down in {', '.join(turned[:3])}{more}: a photo's "
            "rotation tag may have been lost. Cloaked and saved as stored (turn such a photo "
            "upright in a photo editor if it shows sideways)"))
    who = [whose_faces(p, protected, ensemble, job.protect_all, job.match_threshold)
           if p else [] for p in scanned]
    for (path, _), owners in zip(jobs, who, strict=True):
        for j, cloak in (job.face_choices or {}).get(path, {}).items():
            if j < len(owners):
                owners[j] = (SELF if owners[j] is None else owners[j]) if cloak else None
    found = {k for owners in who for k in owners}
    for k, person in enumerate(protected):
        if k not in found:  # else the album is copied through, and the user may not see why
            yield Event(0, 0, "finding the people to protect", note=(
                f"no face in the photos matched {person.name}: no photo is cloaked for "
                "them. " + ("Is the mask theirs?" if mask else "Check the reference photos")))
    named = [p.name for p in protected]  # the people the user named (the manifest's)
    if mask is None and not s.universal and s.person_mask is None:  # not a mask per person
        everyone_as_people(scanned, who, ensemble, protected, job.scanned or {})
    others: list[Person] = []
    if mask is None and needs_others(s):  # clustering the album takes a second or more
        others = other_people(scanned, who, ensemble)
        if job.gallery:
            yield from _collect(gallery_people(job.gallery, detector, ensemble), others.extend)

    if mask is not None:
        plan = Plan(protected, masks={0: mask})
    else:
        yield Event(0, 1, "learning")
        plan = yield from stepwise(
            partial(make_plan, s, ensemble, protected, others, scanned, who, decoded.load),
            lambda n, steps: Event(0, 1, "learning", part=n / steps,
                                   detail=f"step {n} of {steps}"))
        yield Event(1, 1, "learning")

    # the recognizers the cloak is not made on measure each written face too
    in_album = {}  # person -> their faces in the album
    for p, owners in zip(scanned, who, strict=True):
        for face, k in zip(p.faces if p else [], owners, strict=True):
            in_album.setdefault(k, []).append((p.path, face))
    unseen = load_unseen(ensemble, load_ensemble, protected, in_album, decoded.load)
    make_outdir(job.outdir)  # not before: a refused job leaves none
    held = held or hold(job.outdir)  # let go at the end, or when the run is dropped
    remove_temporaries(job.outdir)  # a killed run's: held, no other run writes them now
    manifest = _manifest(job.outdir)  # earlier runs' entries stay on record
    if mask is None:
        recorded, digest = s.to_dict(), s.digest()
    else:  # the mask's settings minus its centroids (tensors: they stay in the mask file)
        recorded = {"mask": manifest.place(mask_path),
                    **{k: v for k, v in mask.settings.items() if k != "centroids"}}
        # and the floor, colour limit and texture it is applied with, from this run's
        # settings (another preset applies the same mask otherwise)
        digest = f"{_file_digest(mask_path)} {s.digest()}"
    # how the photos are written decides the files as much as the cloak
    how = [digest, job.format, job.quality, job.metadata] + ([job.max_side] if job.max_side else [])
    digest = hashlib.sha256(" ".join(map(str, how)).encode()).hexdigest()[:16]
    earlier = manifest.wrote() if job.resume else frozenset()  # what --resume may replace
    # how the folder's photos were made, as the audit reads it: kept by a run that writes
    # none (all refused, or done before), which read as the folder's people and references
    before = {k: manifest.data[k] for k in _DESCRIBES if k in manifest.data}
    run_started = time.time_ns()
    manifest.start(recorded, digest, {"seed": s.seed, "models": ensemble.names,
                                      "protected": named,
                                      "references": manifest.places(references),
                                      "reference_photos": len(references),
                                      "protect_all": job.protect_all})
    if mask is None and plan.masks:
        manifest.private_folder.mkdir(exist_ok=True)  # not uploaded, and not shared:
        manifest.private_folder.chmod(0o700)  # its owner's alone, one made before too
        names = [slug(protected[k].name) for k in sorted(plan.masks)]
        names = [n if names[:i].count(n) == 0 else f"{n}-{names[:i].count(n) + 1}"
                 for i, n in enumerate(names)]  # "x/alice" and "x-alice": two files
        files = [plan.masks[k].save(manifest.private_folder / f"{name}.mask.pt")
                 for k, name in zip(sorted(plan.masks), names, strict=True)]
        manifest.data["masks"] = [f.relative_to(job.outdir).as_posix() for f in files]
    manifest.save()

    total = len(jobs)
    shared = shared_names([rel for _, rel in jobs])  # a.jpg and a.png: two outputs

    def cloaking(i: int, record: Callable[[dict], None]) -> Generator[Event, None, dict]:
        """Photo ``i`` read (PhotoError here), to be cloaked, written and ``record``-ed."""
        path, rel = jobs[i]
        faces = scanned[i].shrunk(job.max_side)  # where they are in the photo written
        # a photo with no face to protect is copied: its pixels are needed only to shrink it
        photo = decoded.take(path, decode=faces is not scanned[i]
                             or any(k is not None for k in who[i]))
        return cloak_photo(photo.shrunk(job.max_side), rel, faces, who[i], plan, ensemble, s,
                           job, record,
                           lambda part, detail: Event(i, total, "cloaking", path, part=part,
                                                      detail=detail), unseen, rel in shared,
                           earlier)

    def record(key: str, entry: dict) -> None:
        manifest.record(key, entry | {"settings_digest": digest,  # input_stat: as read
                                      "output_stat": file_stat(job.outdir / entry["output"])})

    def failed(i: int, error: str) -> Event:
        manifest.record(str(jobs[i][1]), {"input": str(jobs[i][0]), "status": "failed",
                                          "error": error})
        return Event(i + 1, total, "cloaking", jobs[i][0], error=error)

    def skipped(i: int) -> bool:
        return job.resume and manifest.is_done(str(jobs[i][1]), digest, jobs[i][0],
                                               plan.whom(who[i]))

    def optimised(i: int) -> bool:  # a photo whose faces take many steps, not too large
        return (i < total and i not in errors and scanned[i] is not None and not skipped(i)
                and scanned[i].width * scanned[i].height <= side_by_side.MAX_MEGAPIXELS * 1e6
                and any(k is not None and k not in plan.masks for k in who[i]))

    try:
        i = 0
        while i < total:
            path, key = jobs[i][0], str(jobs[i][1])
            if i in errors:
                yield failed(i, errors[i])
                i += 1
                continue
            if skipped(i):  # with the earlier run's entry, its input as read now
                decoded.forget(path)
                yield Event(i + 1, total, "cloaking", path, skipped=True,
                            result=manifest.photos[key] | {"input": str(path)})
                i += 1
                continue
            partner, j = None, i + 1
            if ensemble.device.type == "cpu" and optimised(i) and optimised(j):
                with contextlib.suppress(PhotoError):  # said when its turn comes
                    partner = side_by_side.Aside(cloaking(j, side_by_side.kept_by_caller))
            try:
                try:
                    own = cloaking(i, partial(record, key))
                    entry = yield from (partner.beside(own) if partner else own)
                except PhotoError as exc:
                    yield failed(i, str(exc))
                else:
                    yield Event(i + 1, total, "cloaking", path, result=entry)
                if partner is not None:
                    try:
                        yield from partner.steps()
                        entry = partner.result()
                    except PhotoError as exc:
                        yield failed(j, str(exc))
                    else:
                        record(str(jobs[j][1]), entry)
                        yield Event(j + 1, total, "cloaking", jobs[j][0], result=entry)
            finally:
                if partner is not None:  # stopped meanwhile: wait for it, keep it if written
                    partner.close(partial(record, str(jobs[j][1])))
            i = j + 1 if partner is not None else j
    finally:  # done, stopped or failed: every photo written is recorded
        if not manifest.written_since(run_started):
            manifest.data.update(before)
        manifest.end()
        held.close()


#: the manifest's keys that say how the folder's photos were made (the last run's that
#: wrote one)
_DESCRIBES = ("settings", "settings_digest", "seed", "models", "protected", "references",
              "protect_all", "reference_photos")


def _manifest(outdir: Path) -> Manifest:
    """The output folder's manifest; :class:`AlbumError` when it cannot be read."""
    try:
        return Manifest.load(outdir)
    except ValueError as exc:
        raise AlbumError(str(exc)) from None


def _scan(paths: list[Path], detector: FaceDetector, ensemble: Ensemble,
          job: CloakJob, decoded: DecodedPhotos) -> Iterator[Event]:
    """Detect and embed each photo, reusing the job's earlier detections where given."""
    known = job.scanned or {}
    reuse = {p: old for p in paths if (old := known.get(p)) is not None
             and (not old.faces or set(old.embeddings) == set(ensemble.names))
             and _unchanged(p, old)}
    fresh = detect_photos([p for p in paths if p not in reuse], detector, ensemble,
                          job.limit, "scanning", decoded)
    for i, path in enumerate(paths, 1):
        if path in reuse:
            yield Event(i, len(paths), "scanning", path, result=reuse[path])
            continue
        event = next(fresh)  # the photos are scanned a few ahead (album.detect_photos)
        event.done, event.total = i, len(paths)
        yield event


def _unchanged(path: Path, scanned: PhotoFaces) -> bool:
    """Whether the photo is still the file ``scanned`` read (the app's Photos step may
    have scanned it long before; a photo edited since is scanned again)."""
    try:
        return scanned.stat is None or file_stat(path) == scanned.stat
    except OSError:
        return False


def _collect(events: Iterator[Event], take: Callable) -> Iterator[Event]:
    """Pass events through; hand the final result (a Person or a list) to ``take``."""
    for event in events:
        if isinstance(event.result, Person | list):
            take(event.result)
        yield event


def _load_mask(path: Path):
    from faceguard.cloak.universal import UniversalMask

    try:
        mask = UniversalMask.load(path)
    except (OSError, ValueError) as exc:
        raise AlbumError(str(exc)) from None
    if "centroids" not in mask.settings:
        raise AlbumError(f"{path}: the mask does not say whose face it protects")
    return mask


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
