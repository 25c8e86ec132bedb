"""Speed benchmark: seconds per photo for cloaking, on this machine (CUDA when present).

1. Stages (``--stages-only`` stops here: ``speed-stages.json``): where the time of one
   12.6-megapixel photo with one face (the album's ``person_img8/img49.jpg``) and of one
   250x250 portrait of that face goes, stage by stage, and one optimisation step taken apart.
2. The 12 MP photo end to end through ``cloak_album`` (load, detect, embed, cloak,
   measure, save) at ``--presets``, as a ratio to the floor measured in the same run
   (decode + detect + encode, nothing cloaked). Target: <= 3 s at ``balanced``. With
   ``--max-side PX ...`` also at ``balanced`` written at most PX on its longest side
   (``faceguard cloak --max-side``). Each run is made twice in turn and the second kept.
3. Cancel: seconds from the cancel flag (the app's button, Ctrl-C) to the job's end,
   asked mid-face. Target: <= 2 s.
4. The album (``../shared/data/album``, one person protected by two reference photos,
   default settings) per photo and by the person mask (``PERSON_MASK_STEPS``); the album
   repeated to ``--album-size`` photos by the person mask and by a saved universal mask
   (``--mask``): photos/s, each job's stages (scanning every photo, learning, cloaking)
   and every photo's seconds. Target: >= 5 photos/s.

Usage: .venv/bin/python benchmarks/speed.py [--quick] [--threads N] [--album-size N]
       [--parts P ...] (a subset writes speed-<parts>.json) [--max-side PX ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, median, write_results  # noqa: E402

from faceguard.album import labelled_photos  # noqa: E402
from faceguard.detect import FaceDetector  # noqa: E402
from faceguard.manifest import PRIVATE_FOLDER  # noqa: E402
from faceguard.memory import keep_freed_memory  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.pipeline import CloakJob, cloak_album  # noqa: E402
from faceguard.settings import DEFAULT_MODELS, PERSON_MASK_STEPS, CloakSettings  # noqa: E402


def run_job(job: CloakJob, detector: FaceDetector, ensembles: dict,
            stages: dict | None = None) -> tuple[float, list[dict]]:
    """(wall seconds, manifest entries) of a cloak run; ``stages`` (when given) is filled
    with each of the run's stages and its seconds, from its first event to the next
    stage's first event (a photo's first "cloaking" event comes at its first
    optimisation step: what comes before it counts to "learning")."""
    def load(names):
        key = tuple(names)
        if key not in ensembles:
            ensembles[key] = Ensemble.load(names)
        return ensembles[key]

    started = time.perf_counter()
    entries, begun = [], []  # (stage, when its first event came)
    for e in cloak_album(job, detector, load):
        if not begun or begun[-1][0] != e.stage:
            begun.append((e.stage, time.perf_counter()))
        if e.stage == "cloaking" and e.result:
            entries.append(e.result)
    ended = time.perf_counter()
    if stages is not None:
        ends = [t for _, t in begun[1:]] + [ended]
        stages["before the first event"] = round(begun[0][1] - started, 3)
        stages |= {stage: round(end - t, 3) for (stage, t), end in zip(begun, ends, strict=True)}
    return ended - started, entries


def big_photo(album: Path) -> Path:
    """The album's 12.6-megapixel photo (4352x2903, one face 1080 px wide). An upscaled
    small photo would do for timing but not for protection: it has no skin texture, so
    texture shaping leaves the cloak little room."""
    return album / "person_img8" / "img49.jpg"


def reference(album: Path) -> Path:
    """Another photo of the 12 MP photo's person: the protected person's reference."""
    return album / "person_img8" / "img47.jpg"


def small_portrait(album: Path, tmp: Path) -> Path:
    """The 12 MP photo's person as a 250x250 portrait (the face fills most of it)."""
    from faceguard.visibility import face_box

    src = big_photo(album)
    image = Image.open(src).convert("RGB")
    face = FaceDetector()(np.asarray(image))[0]
    x0, y0, x1, y1 = face_box(face.box, image.width, image.height)
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    box = (cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2)
    path = tmp / "portrait-250.jpg"
    image.crop(box).resize((250, 250), Image.BICUBIC).save(path, quality=92)
    return path


def twelve_megapixels(path: Path, ref: Path, detector, ensembles, tmp: Path, presets,
                      sides: Sequence[int] = ()) -> dict:
    """The 12 MP photo end to end through ``cloak_album`` at each preset, then at
    ``balanced`` written at most each of ``sides`` px on its longest side, and the floor
    measured in the same run: decoding, detecting and encoding it with nothing cloaked."""
    from faceguard.io import load_photo, save_photo

    for _ in range(2):  # the first time warms up the detector; the second is timed
        t0 = time.perf_counter()
        photo = load_photo(path)
        t1 = time.perf_counter()
        detector(photo.pixels)
        t2 = time.perf_counter()
        save_photo(photo, tmp / "floor.jpg", quality=95, overwrite=True)
        t3 = time.perf_counter()
    floor = {"decode_s": t1 - t0, "detect_s": t2 - t1, "encode_jpeg_q95_s": t3 - t2,
             "total_s": t3 - t0}
    out = {"floor": floor}
    runs = [(p, None, p) for p in presets] + [("balanced", side, f"balanced, max_side {side}")
                                               for side in sides]
    # each run twice, in turn, and the second kept: the first run in a process is slower
    # (allocator, caches), which would favour whichever came later
    for time_round in ("first", "kept"):
        for preset, side, name in runs:
            job = CloakJob(inputs=[path], outdir=tmp / f"big-{preset}-{side}-{time_round}",
                           protect=[ref], settings=CloakSettings(preset=preset), max_side=side)
            job_stages: dict[str, float] = {}
            seconds, entries = run_job(job, detector, ensembles, job_stages)
            if time_round == "first":
                out[name] = {"first_end_to_end_s": seconds}
                continue
            face = next(f for f in entries[0]["faces"] if f["protected"])
            out[name] |= {"end_to_end_s": seconds, "ratio_to_floor": seconds / floor["total_s"],
                          "job_stages_s": job_stages,
                          "photo_s": entries[0]["seconds"], "cloak_s": face["seconds"],
                          "ssimulacra2": face["quality"]["ssimulacra2"],
                          "distance_before": face["distance_before"],
                          "distance_after": face["distance_after"]}
    return out


def cancel_latency(path: Path, ref: Path, detector, ensembles, tmp: Path) -> dict:
    """Seconds from a cancel (another thread sets a flag, as the app's button and
    Ctrl-C do) to the job's end, asked while the 12 MP photo's face is optimised."""
    job = CloakJob(inputs=[path], outdir=tmp / "cancelled", protect=[ref])
    cancel, stopped, seen = threading.Event(), [], []

    def worker() -> None:
        events = cloak_album(job, detector, lambda names: ensembles[tuple(names)])
        for event in events:
            seen.append(event.detail)
            if cancel.is_set():
                break
        events.close()
        stopped.append(time.perf_counter())

    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive() and not any("step 5 of" in d for d in seen):
        time.sleep(0.01)
    asked = time.perf_counter()
    cancel.set()
    thread.join()
    return {"seconds_to_stop": stopped[0] - asked, "asked_during": seen[-1],
            "files_left": sorted(p.name for p in job.outdir.iterdir())}


def album_run(job: CloakJob, detector: FaceDetector, ensembles: dict) -> dict:
    """An album job run (:func:`run_job`): its figures (:func:`_summary`) and its stages
    (scanning every photo, learning, cloaking) in ``stages_s``."""
    stages: dict = {}
    return _summary(*run_job(job, detector, ensembles, stages)) | {"stages_s": stages}


def _summary(seconds: float, entries: list[dict]) -> dict:
    """Album figures from a run's manifest entries: throughput and every photo's."""
    cloaked = [e for e in entries if e["status"] == "cloaked"]
    faces = [f for e in cloaked for f in e["faces"] if f["protected"]]
    return {"photos": len(entries), "total_s": seconds, "photos_per_s": len(entries) / seconds,
            "cloaked_photos": len(cloaked),
            "median_cloaked_photo_s": median([e["seconds"] for e in cloaked]),
            "median_copied_photo_s": median([e["seconds"] for e in entries
                                             if e["status"] == "copied"]),
            "protected_faces": [{"seconds": f["seconds"],
                                 "ssimulacra2": f["quality"]["ssimulacra2"],
                                 "distance_after": f["distance_after"]} for f in faces],
            "per_photo_s": {Path(e["input"]).name: e["seconds"] for e in entries}}


def album_folders(album: Path, tmp: Path, quick: bool, size: int
                  ) -> tuple[list[Path], Path, Path]:
    """(the protected person's two reference photos, a folder of the album's other
    photos, a folder of those repeated to ``size`` photos), made once in ``tmp``."""
    people = labelled_photos(album)
    refs = people["person_img26"][:2]
    photos = [p for ps in people.values() for p in ps if p not in refs]
    if quick:
        photos = photos[:8] + people["person_img26"][2:4]
        size = 2 * len(photos)
    inputs, repeated = tmp / "album", tmp / "album-repeated"
    if not inputs.exists():
        inputs.mkdir()
        repeated.mkdir()
        for p in photos:
            shutil.copy(p, inputs / f"{p.parent.name}-{p.name}")
        for i in range(size):
            p = photos[i % len(photos)]
            shutil.copy(p, repeated / f"{i:03d}-{p.parent.name}-{p.name}")
    return refs, inputs, repeated


def album_paths(album: Path, detector, ensembles, tmp: Path, quick: bool,
                size: int) -> dict:
    """The album (one person protected by two reference photos) cloaked per photo and
    by the person mask (``PERSON_MASK_STEPS``), then the album repeated to ``size`` photos
    by the person mask."""
    refs, inputs, repeated = album_folders(album, tmp, quick, size)
    out = {}
    runs = [("album, per photo", inputs, {}),
            (f"album, person mask + {PERSON_MASK_STEPS} steps", inputs,
             {"person_mask": PERSON_MASK_STEPS}),
            (f"album repeated, person mask + {PERSON_MASK_STEPS} steps", repeated,
             {"person_mask": PERSON_MASK_STEPS})]
    for name, folder, how in runs:
        job = CloakJob(inputs=[folder], outdir=tmp / f"out-{len(out)}", protect=refs,
                       settings=CloakSettings(**how))
        out[name] = album_run(job, detector, ensembles)
        print(name, {k: v for k, v in out[name].items() if k != "per_photo_s"}, flush=True)
    return out


def saved_mask(album: Path, detector, ensembles, tmp: Path, quick: bool, size: int) -> dict:
    """The album repeated to ``size`` photos cloaked by a saved universal mask (``--mask``)
    made beforehand on the album (the making timed apart)."""
    refs, inputs, repeated = album_folders(album, tmp, quick, size)
    made_s, _ = run_job(CloakJob(inputs=[inputs], outdir=tmp / "mask-made", protect=refs,
                                 settings=CloakSettings(method="universal-sgd")),
                        detector, ensembles)
    mask = next((tmp / "mask-made" / PRIVATE_FOLDER).glob("*.mask.pt"))
    out = album_run(CloakJob(inputs=[repeated], outdir=tmp / "with-mask", mask=mask),
                    detector, ensembles)
    return out | {"making_the_mask_s": made_s}


def _sync() -> None:
    """Wait for the GPU's queued work (timings on CUDA are otherwise launch times)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _seconds(fn, reps: int = 3) -> float:
    """Mean wall seconds of ``fn()`` over ``reps`` calls, after one warm-up call."""
    fn()
    _sync()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    _sync()
    return (time.perf_counter() - t) / reps


def _step_seconds(ends: list[float]) -> dict:
    """The seconds of steps 2-6, and the median and largest over every step after the
    first, from the times the steps ended (the first step's start is not seen)."""
    took = [b - a for a, b in pairwise(ends)]
    if not took:
        return {}
    return {"steps_2_to_6": [round(t, 3) for t in took[:5]], "median": round(median(took), 3),
            "largest": round(max(took), 3)}


def stages(path: Path, reference: Path, detector, ensemble, tmp: Path) -> dict:
    """Where one photo's time goes, stage by stage, at ``balanced``: load, detect, embed
    the reference and the face, the optimisation (timed whole and step by step, in
    ``step_s``), the visibility guard, paste and save, and the manifest's measurement;
    then one optimisation step taken apart: the objective's forward and backward pass per
    recognizer (all EOT draws batched, alignment included), the visibility penalty's
    and the purification levers' filters' (bilateral; BL+SR), each timed on its own."""
    from faceguard.album import embed_faces
    from faceguard.audit.superres import SuperResolutionUnavailable
    from faceguard.cloak.budget import changing_box, eight_bit, keep_visible
    from faceguard.cloak.photo import WORK_PX, cloak_face, face_in, paste, working_view
    from faceguard.cloak.recipe import make_cloak, objective_factory
    from faceguard.cloak.transforms import bilateral, bilateral_sr
    from faceguard.io import from_tensor, load_photo, save_photo, to_tensor
    from faceguard.models.ensemble import Ensemble
    from faceguard.visibility import FaceLook
    from faceguard.visibility.differentiable import ssimulacra2

    s = CloakSettings().resolved()
    out, t = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        _sync()
        now = time.perf_counter()
        out[name] = round(now - t, 3)
        t = now

    photo = load_photo(path)
    lap("load")
    faces = detector(photo.pixels)
    lap("detect")
    ref = load_photo(reference)
    centroids = {m: e[0] for m, e in embed_faces(ensemble, to_tensor(ref.pixels),
                                                 detector(ref.pixels)[:1]).items()}
    image = to_tensor(photo.pixels)
    embed_faces(ensemble, image, faces[:1])
    lap("embed (reference detected and embedded, then the face)")
    face = faces[0]
    steps: dict[int, float] = {}  # step -> when it ended (its first report: the guard
    # reports the last step again as its points to stop at)
    cloak = make_cloak(s)
    make = objective_factory(s, ensemble, centroids, seed=s.seed)
    cloaked, crop = cloak_face(image, face, cloak, ensemble, make, texture=s.texture,
                               floor=s.floor, delta_e=s.delta_e,  # as the pipeline cloaks
                               on_step=lambda k, n: steps.setdefault(k, time.perf_counter()))
    lap("optimise (with cutting the region and its budget)")
    region = cloaked[..., crop.region[1]:crop.region[3], crop.region[0]:crop.region[2]]
    region, seen = keep_visible(crop.pixels, region, s.floor, face_in(crop, face),
                                s.delta_e)
    image = paste(image, crop, region)
    lap("visibility guard (keep the floor and the colour limit)")
    saved = tmp / "stages.jpg"
    save_photo(photo.with_pixels(from_tensor(image)), saved, quality=95, overwrite=True)
    lap("save (JPEG q95)")
    # as the pipeline measures: the cloak (the guard scored it already), then the saved
    # photo against the same original
    look = FaceLook(photo.pixels, face.box, seen.moved(*crop.region[:2]) if seen else None)
    look.cloak(from_tensor(eight_bit(image)))
    look.saved(load_photo(saved).pixels)
    lap("measure (manifest: the cloak, its JPEG equivalent, the saved photo)")
    # one step taken apart, on the region as the optimiser sees it
    work = working_view(crop, face, WORK_PX)
    work = replace(work, pixels=work.pixels.to(ensemble.device))  # where cloak_face works
    x = work.pixels.clone().requires_grad_(True)
    per_model = {}
    plain = replace(s, transfer=())  # the purification levers' filters are timed apart
    for m in ensemble.names:
        alone = objective_factory(plain, Ensemble([ensemble[m]]), {m: centroids[m]},
                                  seed=s.seed)(work.landmarks)
        per_model[m] = round(_seconds(lambda o=alone: o(x).sum().backward()), 4)

    # the penalty scores the whole working region (the loop's window is the change grown
    # by 0-63 px) and maps it only around the change, as the loop does
    rows, cols = changing_box(work.weight)
    changed = (cols.start, rows.start, cols.stop, rows.stop)

    def penalty() -> None:
        ssimulacra2(work.pixels, x.clamp(0, 1), changed=changed).sum().backward()

    def purify() -> None:
        bilateral(x).sum().backward()

    def restore() -> float | None:  # None without the Real-ESRGAN weights (optional)
        try:
            return round(_seconds(lambda: bilateral_sr(x).sum().backward()), 4)
        except SuperResolutionUnavailable:
            return None

    return {"device": str(ensemble.device), "photo": "x".join(map(str, photo.size)),
            "face_px": round(face.width),
            "working_px": list(work.pixels.shape[-2:]), "steps_run": max(steps, default=0),
            "steps_planned": s.steps, "eot_draws": s.eot_samples,
            # each step from the end of the one before: whether a slow first photo is slow
            # in a few early steps (starting up) or in every step (new shapes each step)
            "step_s": _step_seconds(list(steps.values())), "stages_s": out,
            "total_s": round(sum(out.values()), 3),
            "one_step_s": {"objective_per_recognizer": per_model,
                           "visibility_penalty": round(_seconds(penalty), 4),
                           "bilateral_of_the_purify_lever": round(_seconds(purify), 4),
                           "bl_sr_of_the_restore_lever": restore()},
            "note": "stages run one after another in this process (not through the "
                    "pipeline's worker thread); one_step_s times each part of a step "
                    "alone, forward and backward, at the working scale"}


PARTS = ["stages", "twelve_megapixels", "cancel", "album", "saved_mask"]


def start(threads: int) -> tuple[float, Path, FaceDetector, Ensemble]:
    """A speed benchmark's start (this one's, ``stage_profile.py``'s, ``job_timeline.py``'s):
    freed memory kept and torch on ``threads`` threads, as the CLI runs, then (the clock,
    the album, the detector, the default ensemble)."""
    keep_freed_memory()
    torch.set_num_threads(threads)
    started = time.perf_counter()
    return started, data_dir("album"), FaceDetector(), Ensemble.load(DEFAULT_MODELS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 album photos, balanced only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["balanced"],
                        choices=["low", "balanced", "high"], help="for the 12 MP photo")
    parser.add_argument("--album-size", type=int, default=200,
                        help="photos in the synthetic album (the album repeated)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS,
                        help="what to run (default: all)")
    parser.add_argument("--stages-only", action="store_true",
                        help="only the stage-by-stage profile (speed-stages.json)")
    parser.add_argument("--max-side", type=int, nargs="+", default=[], metavar="PX",
                        help="the 12 MP photo also written at most PX on its longest side")
    args = parser.parse_args()
    started, album, detector, ensemble = start(args.threads)
    ensembles = {tuple(DEFAULT_MODELS): ensemble}
    parts = ["stages"] if args.stages_only else args.parts
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        big, ref = big_photo(album), reference(album)
        run = {"stages": lambda: {
                   "twelve_megapixels": stages(big, ref, detector, ensemble, tmp),
                   "portrait_250px": stages(small_portrait(album, tmp), ref, detector,
                                            ensemble, tmp)},
               "twelve_megapixels": lambda: twelve_megapixels(big, ref, detector, ensembles,
                                                              tmp, args.presets,
                                                              args.max_side),
               "cancel": lambda: cancel_latency(big, ref, detector, ensembles, tmp),
               "album": lambda: album_paths(album, detector, ensembles, tmp, args.quick,
                                            args.album_size),
               "saved_mask": lambda: saved_mask(album, detector, ensembles, tmp, args.quick,
                                                args.album_size)}
        results = {}
        for part in parts:
            results[part] = run[part]()
            print(part, json.dumps(results[part]), flush=True)
    # a subset of the parts is written apart (speed-stages.json for the stages alone)
    name = "-".join(["speed"] + ([] if parts == PARTS else [p.replace("_", "-") for p in parts]))
    settings = {"threads": args.threads, "models": list(DEFAULT_MODELS),
                "method": CloakSettings().method, "presets": args.presets, "parts": parts,
                "max_side": args.max_side,
                "album_size": args.album_size,
                "targets": {"twelve_megapixels_balanced_s": 3.0, "album_photos_per_s": 5.0,
                            "cancel_s": 2.0},
                "note": "each album run includes loading the models, scanning every photo "
                        "(detect and embed every face) and learning what the method needs; "
                        "per_photo_s is each photo's own cloak + save + measure time"}
    print(write_results(name, settings, results, args.quick, started))


if __name__ == "__main__":
    main()
