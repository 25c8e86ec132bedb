"""One photo of a cloak run (:func:`faceguard.pipeline.cloak_album`): its protected faces
cloaked (or a person's mask applied), the photo written (a photo with no face to protect
is copied as it was read), and its manifest entry measured on the file as written."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from faceguard.album import PhotoFaces, embed_faces
from faceguard.atomic import ctrl_c_deferred
from faceguard.identity import centroids_apart_from
from faceguard.io import (
    NO_LIMIT,
    Photo,
    PhotoError,
    as_shown,
    check_writable,
    copy_photo,
    load_photo,
    name_file,
    output_suffix,
    save_photo,
    tensor_view,
)
from faceguard.io.lossy import lossy_saving
from faceguard.manifest import FaceRecord
from faceguard.models.ensemble import Ensemble
from faceguard.output_folder import make_photo_folder
from faceguard.planning import SELF, Plan
from faceguard.progress import Event, stepwise
from faceguard.settings import CloakSettings
from faceguard.unseen import Unseen
from faceguard.visibility import FaceLook

if TYPE_CHECKING:
    from faceguard.job import CloakJob


def _face_seed(seed: int, rel: Path, index: int) -> int:
    # per face, so a resumed run draws what an uninterrupted one would (the same pixels
    # where torch sums in the same order: on some CPUs two threads alone vary a little)
    text = f"{seed}:{rel.as_posix()}:{index}"
    # a name that is not UTF-8 (an old camera's, a Windows zip's) holds lone surrogates
    text = text.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


def shared_names(rels: Sequence[Path]) -> frozenset[Path]:
    """The photos of a run whose name, less its suffix, another photo of the same folder
    has too, in any case (``a.jpg`` and ``a.png``; relative paths)."""
    seen: dict[tuple[Path, str], list[Path]] = {}
    for rel in rels:
        seen.setdefault((rel.parent, rel.stem.casefold()), []).append(rel)
    return frozenset(r for group in seen.values() if len(group) > 1 for r in group)


def output_path(outdir: Path, photo: Photo, rel: Path, format: str, shared: bool) -> Path:
    """Where ``photo`` (``rel`` in its album) is written in ``format``: ``rel`` with the
    format's suffix. A photo whose name another photo of its folder shares (``shared``,
    :func:`shared_names`) keeps its whole name when its suffix changes (``a.webp`` ->
    ``a.webp.png``), so that ``a.jpg``, ``a.png`` and ``a.webp`` written as PNG are three
    files, not one written three times."""
    suffix = output_suffix(photo, format)
    name = rel.name if shared and suffix != rel.suffix else rel.stem
    return outdir / rel.parent / (name + suffix)


#: the share of a photo's progress its faces' optimisation shows; measuring, saving and
#: measuring the file take the rest (seconds on a huge photo, which read 100% all along)
OPTIMISED = 0.9


def cloak_photo(photo: Photo, rel: Path, scanned: PhotoFaces, owners: list[int | None],
                plan: Plan, ensemble: Ensemble, s: CloakSettings, job: CloakJob,
                record: Callable[[dict], None], step_event: Callable[[float, str], Event],
                unseen: Unseen | None = None, shared_name: bool = False,
                replaceable: frozenset[Path] = frozenset()) -> Generator[Event, None, dict]:
    """Cloak the protected faces of one photo (or copy it through), write it and
    ``record`` its manifest entry (which it returns); yields ``step_event(share of the
    photo done, detail)`` after each optimisation step. ``unseen``: recognizers the
    cloak is not made on, which measure the written faces too. ``shared_name``: another
    photo of the run has the same name less its suffix (:func:`output_path`).
    ``replaceable``: earlier runs' outputs, which ``--resume`` may write over (a file
    FaceGuard did not write never is, without ``--overwrite``)."""
    from faceguard.cloak.photo import cloak_face, keep_faces_visible, mask_face, reached_by_others
    from faceguard.cloak.recipe import make_cloak

    started = time.perf_counter()
    if None not in (photo.stat, scanned.stat) and photo.stat != scanned.stat:
        # read again since the scan (not kept in memory), and replaced meanwhile
        raise PhotoError(photo.path, "changed since it was scanned: run again to cloak it "
                                     "as it is now")
    out_path = output_path(job.outdir, photo, rel, job.format, shared_name)
    make_photo_folder(out_path, job.outdir)
    how = {"format": job.format, "quality": job.quality, "metadata": job.metadata,
           "overwrite": job.overwrite or (job.resume and out_path in replaceable)}
    # what the write would refuse (an output already there) is said before the cloak's
    # seconds or minutes, not after them
    check_writable(photo, out_path, **how)
    # a photo with no face to protect is written as it was read; else the faces' cloaks
    # are pasted into one copy of it, which is written (a 120-megapixel photo is 1.4 GB)
    protected = any(k is not None for k in owners)
    cloaked = photo.pixels.copy() if protected else None
    saved = lossy_saving(photo, job.format, job.quality)  # faces kept visible as filed
    if protected:
        original, image = tensor_view(photo.pixels), tensor_view(cloaked)
    reports, centroids, regions, seen = [], {}, [], {}
    others = {}  # face -> the person's centroids for the ``unseen`` recognizers
    optimised = [j for j, k in enumerate(owners) if k is not None and k not in plan.masks]
    whom = plan.whom(owners)
    for j, (face, k) in enumerate(zip(scanned.faces, owners, strict=True)):
        d = face.to_dict()
        report = FaceRecord(d["box"], d["landmarks"], k is not None)
        reports.append(report)
        if k is None:
            continue
        t0 = time.perf_counter()
        own = {m: e[j] for m, e in scanned.embeddings.items()}
        centroids[j] = (own if k == SELF else
                        centroids_apart_from(ensemble, plan.protected[k], own))
        report.person = whom[j]
        if k in plan.masks:
            _, crop = mask_face(image, face, plan.masks[k], ensemble, s.texture,
                                photo.is_grey, s.floor, s.delta_e, in_place=True, saved=saved)
            report.method = f"{plan.masks[k].settings.get('method', 'universal')} mask"
        else:
            gen = torch.Generator().manual_seed(_face_seed(s.seed, rel, j))
            objective_for = _objective_for(s, ensemble, centroids[j], own, k, plan, gen)
            start = plan.starts.get(k)  # the person's mask, refined for a few steps
            _, crop = yield from stepwise(
                partial(cloak_face, image, face,
                        make_cloak(replace(s, steps=s.person_mask) if start else s),
                        ensemble, objective_for, texture=s.texture, generator=gen,
                        grey=photo.is_grey, floor=s.floor, delta_e=s.delta_e,
                        start_for=start.apply_to if start else None, in_place=True,
                        saved=saved),
                partial(_face_step, step_event, optimised.index(j), len(optimised)))
            report.method = s.method + (" from the person's mask" if start else "")
        regions.append(crop.region)
        seen[j] = crop.seen
        report.seconds = round(time.perf_counter() - t0, 3)
        report.distance_before = _distances(ensemble, own, centroids[j])
        if unseen is not None and (k == SELF or k in unseen.people):
            clean = {m: e[0] for m, e in
                     embed_faces(unseen.ensemble, original, [face]).items()}
            others[j] = clean if k == SELF else unseen.centroids(k, clean)
            report.distance_before |= _distances(unseen.ensemble, clean, others[j])
    written, looks = photo, {}
    if protected:
        cloaked_faces = [scanned.faces[j] for j in centroids]
        keep_faces_visible(original, image, cloaked_faces, regions, s.floor, s.delta_e,
                           saved)  # into ``cloaked``
        for i in reached_by_others(cloaked_faces, regions, photo.size):
            seen[list(centroids)[i]] = None  # its guard's score is not the photo's
        del image, original
        _on_eight_bit_levels(cloaked, photo.pixels, [np.s_[y0:y1, x0:x1]
                                                     for x0, y0, x1, y1 in regions])
        measured = {j: FaceLook(photo.pixels, scanned.faces[j].box, seen[j])
                    for j in sorted(centroids)}
        # measured before saving (Ctrl-C and Cancel stop it here), on the pixels written
        for n, (j, look) in enumerate(measured.items()):
            said = partial(step_event, OPTIMISED + (1 - OPTIMISED) / 2 * n / len(measured),
                           f"measuring how visible face {n + 1} of {len(centroids)} is")
            yield said()
            quality = yield from stepwise(partial(look.cloak, cloaked),
                                          lambda done, total, said=said: said())
            looks[j] = look, quality
        written = photo.with_pixels(cloaked)
        del cloaked  # the cloaked pixels are the written photo's now
    write = save_photo if protected else copy_photo  # a JPEG copied is not re-encoded
    # measured under a temporary name, then named and recorded together: Ctrl-C and
    # Cancel stopped a huge photo only after seconds of saving and measuring it
    written_at = write(written, out_path, **how, named=False)
    del written  # freed before the saved photo is read back to be measured
    try:
        if centroids:
            yield step_event((1 + OPTIMISED) / 2, "measuring the photo written")
        entry = _measure(photo, out_path, written_at, scanned, reports, centroids, looks,
                         ensemble, job, started, unseen, others)
        with ctrl_c_deferred():
            name_file(written_at, out_path, how["overwrite"])
            record(entry)
    finally:
        written_at.unlink(missing_ok=True)
    return entry


def _on_eight_bit_levels(cloaked: np.ndarray, pixels: np.ndarray,
                         parts: Sequence[tuple[slice, slice]]) -> None:
    """Round the pixels the cloak changed (where ``cloaked`` differs from ``pixels``, both
    (H, W, 3)) in each part (rows, columns; parts may overlap) to the 8-bit levels the
    guard measured them on, in place: in a 16-bit file too, where the pixels the cloak
    left alone keep their 16 bits (unrounded, the file showed more of the cloak than was
    measured). Only the parts are looked at: a 12 MP photo whole took 0.3 s more
    (benchmarks/results/speed-measure-copy-ab.json)."""
    from faceguard.cloak.budget import eight_bit

    for part in parts:
        taken = cloaked[part]  # a view: written through
        changed = taken != pixels[part]
        taken[changed] = eight_bit(torch.from_numpy(taken[changed])).numpy()


def _face_step(step_event: Callable[[float, str], Event], n: int, of: int, done: int,
               steps: int) -> Event:
    """The event of an optimisation step of face ``n`` (from 0) of the ``of`` faces of a
    photo that are optimised."""
    return step_event(OPTIMISED * (n + done / steps) / of,
                      f"face {n + 1} of {of}: step {done} of {steps}")


def _measure(photo: Photo, out_path: Path, written_at: Path, scanned: PhotoFaces,
             reports: list[FaceRecord], centroids: dict,
             looks: dict[int, tuple[FaceLook, dict]], ensemble: Ensemble, job: CloakJob,
             started: float, unseen: Unseen | None = None, others: dict | None = None
             ) -> dict:
    """The photo's manifest entry, the file to be ``out_path`` (now ``written_at``):
    distances measured on the file as written, by the
    cloak's recognizers and (faces in ``others``: face index -> centroids) by those it is
    not made on; visibility of the cloak itself (``looks``: face index -> its
    :class:`FaceLook` and what :meth:`FaceLook.cloak` measured), plus its SSIMULACRA2
    and L-inf after saving (``saved_``: JPEG adds its own loss)."""
    if centroids:
        # measure what was actually written: quantised to 8 bits, maybe JPEG-compressed
        saved = load_photo(written_at, limit=NO_LIMIT)
        image = tensor_view(saved.pixels)
        hit = sorted(centroids)
        after = embed_faces(ensemble, image, [scanned.faces[j] for j in hit])
        thresholds = {m: float(ensemble[m].threshold) for m in ensemble.names}
        made_on = dict.fromkeys(ensemble.names, True)
        asked = sorted(others or {})  # the faces the unseen recognizers measure too
        if asked:
            seen_after = embed_faces(unseen.ensemble, image, [scanned.faces[j] for j in asked])
            thresholds |= {m: float(unseen.ensemble[m].threshold)
                           for m in unseen.ensemble.names}
            with_unseen = made_on | dict.fromkeys(unseen.ensemble.names, False)
        # as viewers show them: a file that drops the alpha or the grey profile shows the
        # photo over white or in sRGB, which is no part of the cloak
        shown, shown_saved = as_shown(photo), as_shown(saved)
        for n, j in enumerate(hit):
            look, quality = looks[j]
            if shown is not photo.pixels:
                look = FaceLook(shown, scanned.faces[j].box)
            quality = quality | look.saved(shown_saved)
            distances = _distances(ensemble, {m: e[n] for m, e in after.items()}, centroids[j])
            if j in asked:
                i = asked.index(j)
                distances |= _distances(unseen.ensemble,
                                        {m: e[i] for m, e in seen_after.items()}, others[j])
            reports[j].measured(distances, thresholds,
                                with_unseen if j in asked else made_on, quality)
    return {
        "input": str(photo.path), "input_stat": photo.stat,
        "output": str(out_path.relative_to(job.outdir)),
        "status": "cloaked" if centroids else "copied",
        "width": scanned.width, "height": scanned.height,
        "seconds": round(time.perf_counter() - started, 3),
        "faces": [r.to_dict() for r in reports],
    }


def _objective_for(s: CloakSettings, ensemble: Ensemble, centroids, own, k: int,
                   plan: Plan, generator: torch.Generator):
    """landmarks -> the objective for one face (``own``: its clean embeddings)."""
    from faceguard.cloak.recipe import classes, objective_factory

    seed = int(torch.randint(2**31, (1,), generator=generator))
    make = objective_factory(s, ensemble, centroids, plan.decoys.get(k), plan.classifier,
                             seed, None if k == SELF else plan.protected[k].embeddings)
    if s.objective != "classifier":
        return make
    label, target = classes(s, plan.classifier, own, None if k == SELF else k)
    return partial(make, label=label, target=target)


def _distances(ensemble: Ensemble, embeddings: dict[str, torch.Tensor],
               centroids: dict[str, torch.Tensor]) -> dict[str, float]:
    """model -> distance of a face to the centroid, in the model's own metric (never
    negative: a face that is its own centroid reads 0, not the -0.00 of cosine's rounding)."""
    return {m: max(0.0, round(float(ensemble[m].compare(embeddings[m], centroids[m])), 4))
            for m in ensemble.names}
