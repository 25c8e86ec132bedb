"""Speed benchmark: end-to-end seconds per photo for cloaking, on this CPU.

1. The album (``../shared/data/album``, labelled photos): ``faceguard cloak`` as a
   user runs it (protect one person by two reference photos, balanced preset, default
   models): total and per-photo seconds from the run's own manifest, split into
   photos with a protected face and photos copied through.
2. One 12-megapixel photo with one face (an album photo upscaled to 4000x3000):
   end to end (load, detect, embed, cloak, save, measure) at each preset, and the
   same stages timed separately. Target: <= 3 s at ``balanced``.
3. Album throughput with a universal mask vs per-photo cloaking: one person's photos
   cloaked per photo, then the same photos with the person's saved universal mask
   (``--mask``). Target: >= 5x.

Usage: .venv/bin/python benchmarks/speed.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, median, write_results  # noqa: E402

from faceguard.album import labelled_photos  # noqa: E402
from faceguard.detect import FaceDetector  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.pipeline import CloakJob, cloak_album  # noqa: E402
from faceguard.settings import DEFAULT_MODELS, CloakSettings  # noqa: E402


def run_job(job: CloakJob, detector: FaceDetector, ensembles: dict) -> tuple[float, list[dict]]:
    """(wall seconds, manifest entries) of a cloak run."""
    def load(names):
        key = tuple(names)
        if key not in ensembles:
            ensembles[key] = Ensemble.load(names)
        return ensembles[key]

    started = time.perf_counter()
    entries = [e.result for e in cloak_album(job, detector, load)
               if e.stage == "cloaking" and e.result]
    return time.perf_counter() - started, entries


def album_speed(album: Path, quick: bool, detector, ensembles, tmp: Path) -> dict:
    people = labelled_photos(album)
    photos = [p for ps in people.values() for p in ps]
    if quick:
        photos = photos[:8]
    refs = people["person_img26"][:2]
    inputs = tmp / "album"
    inputs.mkdir()
    for p in photos:
        if p not in refs:
            shutil.copy(p, inputs / f"{p.parent.name}-{p.name}")
    seconds, entries = run_job(CloakJob(inputs=[inputs], outdir=tmp / "album-out",
                                        protect=refs), detector, ensembles)
    cloaked = [e["seconds"] for e in entries if e["status"] == "cloaked"]
    copied = [e["seconds"] for e in entries if e["status"] == "copied"]
    return {"photos": len(entries), "total_s": seconds, "per_photo_s": seconds / len(entries),
            "cloaked_photos": len(cloaked), "median_cloaked_photo_s": median(cloaked),
            "median_copied_photo_s": median(copied),
            "note": "includes model loading, scanning every photo once and learning; the "
                    "per-photo figures are each photo's own cloak + save + measure time"}


def big_photo(album: Path, tmp: Path) -> Path:
    src = labelled_photos(album)["person_img1"][3]  # img2.jpg, one face
    path = tmp / "twelve-megapixel.jpg"
    Image.open(src).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(path, quality=92)
    return path


def small_portrait(album: Path, tmp: Path) -> Path:
    """The 12 MP photo's person as a 250x250 portrait (the face fills most of it)."""
    from faceguard.visibility import face_box

    src = labelled_photos(album)["person_img1"][3]
    image = Image.open(src).convert("RGB")
    face = FaceDetector()(np.asarray(image))[0]
    x0, y0, x1, y1 = face_box(face.box, image.width, image.height)
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    box = (cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2)
    path = tmp / "portrait-250.jpg"
    image.crop(box).resize((250, 250), Image.BICUBIC).save(path, quality=92)
    return path


def twelve_megapixels(path: Path, detector, ensembles, tmp: Path, presets) -> dict:
    from faceguard.album import embed_faces
    from faceguard.io import load_photo, save_photo, to_tensor

    out = {}
    refs = tmp / "ref"
    refs.mkdir(exist_ok=True)
    # the reference: the original (smaller) photo of the same person
    Image.open(path).resize((800, 600)).save(refs / "me.jpg", quality=90)
    for preset in presets:
        job = CloakJob(inputs=[path], outdir=tmp / f"big-{preset}", protect=[refs / "me.jpg"],
                       settings=CloakSettings(preset=preset))
        run_job(job, detector, ensembles)  # warm-up (model load, first calls)
        shutil.rmtree(tmp / f"big-{preset}")
        seconds, entries = run_job(job, detector, ensembles)
        face = next(f for f in entries[0]["faces"] if f["protected"])
        out[preset] = {"end_to_end_s": seconds, "photo_s": entries[0]["seconds"],
                       "cloak_s": face["seconds"], "ssim": face["quality"]["ssim"],
                       "distance_before": face["distance_before"],
                       "distance_after": face["distance_after"]}
    # the stages on their own
    t0 = time.perf_counter()
    photo = load_photo(path)
    t1 = time.perf_counter()
    faces = detector(photo.pixels)
    t2 = time.perf_counter()
    ens = ensembles[tuple(DEFAULT_MODELS)]
    embed_faces(ens, to_tensor(photo.pixels), faces)
    t3 = time.perf_counter()
    save_photo(photo, tmp / "saved.jpg", quality=95)
    t4 = time.perf_counter()
    out["stages_s"] = {"load": t1 - t0, "detect": t2 - t1, "embed": t3 - t2,
                       "save_jpeg_q95": t4 - t3}
    return out


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


def stages(path: Path, reference: Path, detector, ensemble, tmp: Path) -> dict:
    """Where one photo's time goes, stage by stage, at ``balanced``: load, detect, embed
    the reference and the face, the optimisation (timed whole, with its steps counted),
    the visibility guard, paste and save, and the manifest's measurement; then one
    optimisation step taken apart: the objective's forward and backward pass per
    recognizer (all EOT draws batched, alignment included), the visibility penalty's
    and the purify lever's bilateral filter's, each timed on its own."""
    from faceguard.album import embed_faces
    from faceguard.cloak.budget import keep_floor
    from faceguard.cloak.photo import WORK_PX, cloak_face, face_in, paste, working_view
    from faceguard.cloak.recipe import make_cloak, objective_factory
    from faceguard.cloak.transforms import bilateral
    from faceguard.io import from_tensor, load_photo, save_photo, to_tensor
    from faceguard.models.ensemble import Ensemble
    from faceguard.visibility import measure_face
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
    steps = []
    cloak = make_cloak(s)
    make = objective_factory(s, ensemble, centroids, seed=s.seed)
    cloaked, crop = cloak_face(image, face, cloak, ensemble, make, texture=s.texture,
                               delta_e=s.delta_e, on_step=lambda k, n: steps.append(k))
    lap("optimise (with cutting the region and its budget)")
    region = cloaked[..., crop.region[1]:crop.region[3], crop.region[0]:crop.region[2]]
    region = keep_floor(crop.pixels, region, s.floor, face_in(crop, face))
    image = paste(image, crop, region)
    lap("visibility guard (keep the floor)")
    saved = tmp / "stages.jpg"
    save_photo(photo.with_pixels(from_tensor(image)), saved, quality=95, overwrite=True)
    lap("save (JPEG q95)")
    measure_face(photo.pixels, from_tensor(image), face.box)
    lap("measure (manifest)")
    # one step taken apart, on the region as the optimiser sees it
    work = working_view(crop, face, WORK_PX)
    work = replace(work, pixels=work.pixels.to(ensemble.device))  # where cloak_face works
    x = work.pixels.clone().requires_grad_(True)
    per_model = {}
    plain = replace(s, transfer=())  # the bilateral filter of "purify" is timed apart
    for m in ensemble.names:
        alone = objective_factory(plain, Ensemble([ensemble[m]]), {m: centroids[m]},
                                  seed=s.seed)(work.landmarks)
        per_model[m] = round(_seconds(lambda o=alone: o(x).sum().backward()), 4)

    def penalty() -> None:  # scored on the whole working region (the loop's window is
        ssimulacra2(work.pixels, x.clamp(0, 1)).sum().backward()  # 0-63 px larger)

    def purify() -> None:
        bilateral(x).sum().backward()

    return {"device": str(ensemble.device), "photo": "x".join(map(str, photo.size)),
            "face_px": round(face.width),
            "working_px": list(work.pixels.shape[-2:]), "steps_run": len(steps),
            "steps_planned": s.steps, "eot_draws": s.eot_samples, "stages_s": out,
            "total_s": round(sum(out.values()), 3),
            "one_step_s": {"objective_per_recognizer": per_model,
                           "visibility_penalty": round(_seconds(penalty), 4),
                           "bilateral_of_the_purify_lever": round(_seconds(purify), 4)},
            "note": "stages run one after another in this process (not through the "
                    "pipeline's worker thread); one_step_s times each part of a step "
                    "alone, forward and backward, at the working scale"}


def universal_vs_per_photo(album: Path, detector, ensembles, tmp: Path) -> dict:
    person = labelled_photos(album)["person_img26"]
    refs, photos = person[:2], person[2:]
    inputs = tmp / "person"
    inputs.mkdir()
    for p in photos:
        shutil.copy(p, inputs / p.name)
    per_photo_s, _ = run_job(CloakJob(inputs=[inputs], outdir=tmp / "per-photo",
                                      protect=refs), detector, ensembles)
    made_s, _ = run_job(CloakJob(inputs=[inputs], outdir=tmp / "mask-made", protect=refs,
                                 settings=CloakSettings(method="universal-sgd")),
                        detector, ensembles)
    mask = next((tmp / "mask-made").glob("*.mask.pt"))
    with_mask_s, entries = run_job(CloakJob(inputs=[inputs], outdir=tmp / "with-mask",
                                            mask=mask), detector, ensembles)
    after = [f["distance_after"] for e in entries for f in e["faces"] if f["protected"]]
    return {"photos": len(photos), "per_photo_total_s": per_photo_s,
            "make_mask_total_s": made_s, "apply_mask_total_s": with_mask_s,
            "speedup_apply_vs_per_photo": per_photo_s / with_mask_s,
            "mask_face_cloak_s": median([f["seconds"] for e in entries for f in e["faces"]
                                         if f["protected"]]),
            "mask_distance_after": after,
            "note": "both runs include model loading and detection of every photo"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 album photos, balanced only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stages-only", action="store_true",
                        help="only the stage-by-stage profile (speed-stages.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    album = data_dir("album")
    detector, ensembles = FaceDetector(), {}
    ensembles[tuple(DEFAULT_MODELS)] = Ensemble.load(DEFAULT_MODELS)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        presets = ("balanced",) if args.quick else ("low", "balanced", "high")
        big = big_photo(album, tmp)
        portrait = small_portrait(album, tmp)
        ens = ensembles[tuple(DEFAULT_MODELS)]
        results = {"stages": {"twelve_megapixels": stages(big, portrait, detector, ens, tmp),
                              "portrait_250px": stages(portrait, big, detector, ens, tmp)}}
        print(json.dumps(results["stages"]), flush=True)
        if args.stages_only:
            print(write_results("speed-stages", {"threads": args.threads,
                                                 "models": list(DEFAULT_MODELS)},
                                results, args.quick, started))
            return
        results["twelve_megapixels"] = twelve_megapixels(big, detector, ensembles, tmp, presets)
        print(json.dumps(results["twelve_megapixels"]), flush=True)
        results["universal_vs_per_photo"] = universal_vs_per_photo(album, detector,
                                                                   ensembles, tmp)
        print(json.dumps(results["universal_vs_per_photo"]), flush=True)
        results["album"] = album_speed(album, args.quick, detector, ensembles, tmp)
        print(json.dumps(results["album"]), flush=True)
    settings = {"threads": args.threads, "models": list(DEFAULT_MODELS),
                "method": CloakSettings().method, "presets": presets,
                "targets": {"twelve_megapixels_balanced_s": 3.0, "mask_speedup": 5.0}}
    print(write_results("speed", settings, results, args.quick, started))


if __name__ == "__main__":
    main()
