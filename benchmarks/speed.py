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
from pathlib import Path

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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    album = data_dir("album")
    detector, ensembles = FaceDetector(), {}
    ensembles[tuple(DEFAULT_MODELS)] = Ensemble.load(DEFAULT_MODELS)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        presets = ("balanced",) if args.quick else ("low", "balanced", "high")
        results = {"twelve_megapixels": twelve_megapixels(big_photo(album, tmp), detector,
                                                          ensembles, tmp, presets)}
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
