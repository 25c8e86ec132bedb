"""Face detection speed on the album, and what the detector's ``max_side`` costs and buys.

Measures, on this CPU, for every photo of ``album/`` (including ``_unlabelled_extras``):
the time to load it (:func:`faceguard.io.load_photo`) and, separately, to detect its
faces (:class:`faceguard.detect.FaceDetector`, default settings, float input as the
pipeline passes it); medians overall and by photo size; a synthetic 12-megapixel case
(an album photo upscaled to 4000x3000 and saved as JPEG), since the cloak speed target
is for 12 MP camera photos; and a ``max_side`` sweep on the photos whose longer side
exceeds the smallest setting: time, faces found, and how those faces compare (IoU >= 0.5
match, landmark error) with detection at full resolution (no downscaling). Each photo is
also detected without the look for faces its edge cuts (``edges=False``), the two timed
in turn, with the faces only that look finds. Small faces (20-80 px) pasted into a 12 MP
photo, found by default and with ``min_face_size=20`` asked for (:func:`small_faces`).

Run from the repository root::

    .venv/bin/python benchmarks/detect.py [--quick]

Writes ``benchmarks/results/detect.json`` (``detect-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import common
import numpy as np
import torch

from faceguard.detect import iou
from faceguard.io import uint8_pixels

BUCKETS = ((0.0, 0.5, "<0.5 MP"), (0.5, 2.0, "0.5-2 MP"), (2.0, 5.0, "2-5 MP"),
           (5.0, float("inf"), ">5 MP"))
FULL = 1_000_000  # a max_side no photo reaches: detection at full resolution
SYNTHETIC_SOURCE = "person_img1/img2.jpg"  # 1536x1152, exactly 4:3, one face
SYNTHETIC_SIZE = (4000, 3000)  # width, height: 12.0 MP


def bucket(mp: float) -> str:
    return next(label for lo, hi, label in BUCKETS if lo <= mp < hi)


def prebuild(detector) -> float:
    """Build the detector's MTCNN networks (on first use otherwise); returns seconds, so
    that this one-off cost stays out of the per-photo times (it is reported separately).
    """
    start = time.perf_counter()
    detector.networks  # noqa: B018 (built on first access)
    return time.perf_counter() - start


def compare_faces(found: list, reference: list, min_iou: float = 0.5) -> dict:
    """Greedy IoU matching of ``found`` faces to the ``reference`` (full-resolution) faces.

    Returns matched / missed / extra counts, the sizes of missed reference faces (box
    width, px) and, per matched face, the landmark error: mean distance of the 5 points
    as a fraction of the reference inter-ocular distance.
    """
    pairs = sorted(((iou(f.box, r.box), i, j) for i, f in enumerate(found)
                    for j, r in enumerate(reference)), reverse=True)
    used_f, used_r, errors = set(), set(), []
    for overlap, i, j in pairs:
        if overlap < min_iou or i in used_f or j in used_r:
            continue
        used_f.add(i)
        used_r.add(j)
        ref = reference[j].landmarks
        eyes = float(np.linalg.norm(ref[1] - ref[0]))
        err = float(np.linalg.norm(found[i].landmarks - ref, axis=1).mean())
        errors.append(err / max(eyes, 1e-6))
    missed = [round(reference[j].width) for j in range(len(reference)) if j not in used_r]
    return {"matched": len(used_r), "missed": len(missed), "extra": len(found) - len(used_f),
            "missed_face_widths_px": missed, "landmark_errors": errors}


def face_summary(faces: list) -> dict:
    widths = [f.width for f in faces]
    return {"faces": len(faces),
            "face_widths_px": [round(w) for w in widths],
            "min_score": min((f.score for f in faces), default=None)}


def measure_photo(path: Path, rel: str, detector, repeats: int) -> tuple[dict, object]:
    """Load and detect one photo; returns the row and the loaded photo."""
    from faceguard.io import load_photo

    start = time.perf_counter()
    photo = load_photo(path)
    load_s = time.perf_counter() - start
    h, w = photo.pixels.shape[:2]
    start = time.perf_counter()
    faces = detector(photo.pixels)  # the photo's first pass: what a single run costs
    first_s = time.perf_counter() - start
    detect_s = common.time_call(lambda: detector(photo.pixels), repeats)
    mp = w * h / 1e6
    row = {"photo": rel, "width": w, "height": h, "megapixels": mp, "bucket": bucket(mp),
           "load_s": load_s, "first_detect_s": first_s, "detect_s": detect_s,
           **face_summary(faces)}
    return row, photo


def edges_photo(row: dict, pixels: np.ndarray, detector, without, repeats: int) -> None:
    """Adds to ``row`` the time without the look for faces the edge cuts (timed in turn
    with the default, whose time replaces ``detect_s``) and the faces only it finds."""
    times: dict[str, list[float]] = {"with": [], "without": []}
    found = {}
    for _ in range(repeats):
        for label, det in (("with", detector), ("without", without)):
            start = time.perf_counter()
            found[label] = det(pixels)  # the last timed look's faces are compared below
            times[label].append(time.perf_counter() - start)
    faces, plain = found["with"], found["without"]
    row["detect_s"] = common.median(times["with"])
    row["detect_without_edges_s"] = common.median(times["without"])
    row["faces_cut_by_edge"] = [
        {"box": [round(v) for v in f.box], "score": round(f.score, 4)}
        for f in faces if all(iou(f.box, g.box) < 0.5 for g in plain)]


def summarise(rows: list[dict]) -> dict:
    def stats(sel: list[dict]) -> dict:
        return {"photos": len(sel),
                "median_megapixels": common.median([r["megapixels"] for r in sel]),
                "median_load_s": common.median([r["load_s"] for r in sel]),
                "median_first_detect_s": common.median([r["first_detect_s"] for r in sel]),
                "median_detect_s": common.median([r["detect_s"] for r in sel]),
                "median_detect_without_edges_s": common.median(
                    [r["detect_without_edges_s"] for r in sel if "detect_without_edges_s" in r]),
                "total_detect_s": sum(r["detect_s"] for r in sel),
                "total_detect_without_edges_s": sum(r.get("detect_without_edges_s", 0)
                                                    for r in sel),
                "faces_cut_by_edge": sum(len(r.get("faces_cut_by_edge", ())) for r in sel),
                "median_total_s": common.median([r["load_s"] + r["detect_s"] for r in sel]),
                "max_detect_s": max((r["detect_s"] for r in sel), default=None),
                "faces": sum(r["faces"] for r in sel),
                "photos_without_face": sum(r["faces"] == 0 for r in sel)}

    by_bucket = {label: stats([r for r in rows if r["bucket"] == label])
                 for _, _, label in BUCKETS}
    return {"overall": stats(rows), "by_size": by_bucket}


def synthetic_12mp(album: Path, detector, without_edges, repeats: int
                   ) -> tuple[dict, object]:
    """The 12 MP case: an album photo upscaled (bicubic) to 4000x3000, saved as JPEG q92
    and loaded back, with a breakdown of where detection time goes."""
    import cv2
    from PIL import Image


    src = np.asarray(Image.open(album / SYNTHETIC_SOURCE).convert("RGB"))
    big = cv2.resize(src, SYNTHETIC_SIZE, interpolation=cv2.INTER_CUBIC)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_12mp.jpg"
        Image.fromarray(big).save(path, quality=92)
        row, photo = measure_photo(path, f"synthetic 4000x3000 from {SYNTHETIC_SOURCE}",
                                   detector, repeats)
    pixels = photo.pixels
    edges_photo(row, pixels, detector, without_edges, repeats)
    # the steps FaceDetector takes, timed one by one; MTCNN's pyramid starts at
    # max(12, min_face_size * scale) px of the downscaled photo, as in FaceDetector
    as_uint8 = uint8_pixels(pixels)
    scale = min(1.0, detector.max_side / max(pixels.shape[:2]))
    size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
    small = cv2.resize(as_uint8, size, interpolation=cv2.INTER_AREA)
    min_size = max(12, math.floor(detector.min_face_size * scale))

    def mtcnn() -> None:
        detector.networks(small, min_size)

    row["breakdown_s"] = {
        "float_to_uint8": common.time_call(lambda: uint8_pixels(pixels), repeats),
        "resize_to_max_side": common.time_call(
            lambda: cv2.resize(as_uint8, size, interpolation=cv2.INTER_AREA), repeats),
        "mtcnn_on_downscaled": common.time_call(mtcnn, repeats),
    }
    return row, photo


def sweep_photo(rel: str, pixels: np.ndarray, detectors: dict, repeats: int) -> dict:
    """Every ``max_side`` setting on one photo, compared with full resolution."""
    runs = {}
    for label, det in detectors.items():
        faces = det(pixels)  # untimed first pass (new pyramid shapes)
        runs[label] = (common.time_call(lambda det=det: det(pixels), repeats), faces)
    reference = runs["full"][1]
    out = {"photo": rel, "megapixels": pixels.shape[0] * pixels.shape[1] / 1e6,
           "longer_side": max(pixels.shape[:2]), "settings": {}}
    for label, (seconds, faces) in runs.items():
        out["settings"][label] = {"detect_s": seconds, **face_summary(faces),
                                  **compare_faces(faces, reference)}
    return out


def summarise_sweep(rows: list[dict], labels: list[str], min_side: int = 0) -> dict:
    """Per setting, totals over the sweep photos whose longer side exceeds ``min_side``."""
    rows = [r for r in rows if r["longer_side"] > min_side]
    summary = {}
    for label in labels:
        runs = [r["settings"][label] for r in rows]
        errors = [e for run in runs for e in run["landmark_errors"]]
        summary[label] = {
            "photos": len(runs),
            "median_detect_s": common.median([run["detect_s"] for run in runs]),
            "total_detect_s": sum(run["detect_s"] for run in runs),
            "faces": sum(run["faces"] for run in runs),
            "matched_full_res": sum(run["matched"] for run in runs),
            "missed_vs_full_res": sum(run["missed"] for run in runs),
            "extra_vs_full_res": sum(run["extra"] for run in runs),
            "missed_face_widths_px": sorted(w for run in runs
                                            for w in run["missed_face_widths_px"]),
            "landmark_error_mean_interocular": float(np.mean(errors)) if errors else None,
            "landmark_error_max_interocular": float(np.max(errors)) if errors else None,
        }
    return summary


def smallest_face(detector, longer_side: int) -> float:
    """Smallest face (px of the original photo) the detector looks for on a photo with this
    longer side: MTCNN's 12 px minimum in the downscaled photo, or ``min_face_size``
    (which, when asked for, the photo is downscaled no further than to keep)."""
    if detector.min_face_asked:
        return detector.min_face_size
    scale = min(1.0, detector.max_side / longer_side)
    return max(detector.min_face_size, 12 / scale)


SMALL_WIDTHS = (20, 25, 30, 35, 40, 50, 60, 80)  # px: faces pasted into a 12 MP photo
SMALL_PEOPLE = ("person_img1/img2.jpg", "person_img13/img13.jpg", "person_img26/img28.jpg",
                "person_img29/img29.jpg")
BIG_PHOTO = "person_img8/img49.jpg"  # the speed benchmark's 12.6 MP photo, one face


def small_faces(album: Path, detectors: dict, repeats: int) -> dict:
    """Small faces in a 12 MP photo: four album faces pasted at each of
    :data:`SMALL_WIDTHS` into a 4000x3000 photo (another album photo upscaled and blurred),
    detected by each of ``detectors``: how many of the four are found per width, other
    boxes, and the time; and the time on :data:`BIG_PHOTO`, a real 12 MP photo."""
    from PIL import Image, ImageFilter

    from faceguard.detect import FaceDetector
    from faceguard.io import load_photo

    full = FaceDetector(device="cpu", max_side=FULL)
    width, height = SYNTHETIC_SIZE
    canvas = (Image.open(album / SYNTHETIC_SOURCE).convert("RGB").resize(SYNTHETIC_SIZE)
              .filter(ImageFilter.GaussianBlur(8)))
    placed = []  # (face width, centre x, centre y)
    for j, rel in enumerate(SMALL_PEOPLE):
        photo = Image.open(album / rel).convert("RGB")
        x0, y0, x1, y1 = full(np.asarray(photo))[0].box
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * max(x1 - x0, y1 - y0)
        crop = photo.crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half)))
        share = (x1 - x0) / crop.width  # the face's width over the crop's
        for k, face_px in enumerate(SMALL_WIDTHS):
            side = round(face_px / share)
            x = 100 + j * (width - 200) // len(SMALL_PEOPLE)
            y = 100 + k * (height - 200) // len(SMALL_WIDTHS)
            canvas.paste(crop.resize((side, side), Image.LANCZOS), (x, y))
            placed.append((face_px, x + side / 2, y + side / 2))
    pixels = np.asarray(canvas)
    big = load_photo(album / BIG_PHOTO).pixels
    out = {"photo": f"{SYNTHETIC_SIZE[0]}x{SYNTHETIC_SIZE[1]}, {len(SMALL_PEOPLE)} faces "
                    f"at each width pasted on {SYNTHETIC_SOURCE} upscaled and blurred",
           "detectors": {}}
    for label, det in detectors.items():
        faces = det(pixels)
        found = {str(w): 0 for w in SMALL_WIDTHS}
        matched = set()
        for face_px, cx, cy in placed:
            hits = [i for i, f in enumerate(faces)
                    if abs((f.box[0] + f.box[2]) / 2 - cx) < face_px
                    and abs((f.box[1] + f.box[3]) / 2 - cy) < face_px]
            found[str(face_px)] += bool(hits)
            matched.update(hits)
        out["detectors"][label] = {
            "detector": repr(det), "found_of_4_by_width_px": found,
            "other_boxes": len(faces) - len(matched),
            "detect_s": common.time_call(lambda det=det: det(pixels), repeats),
            "real_12mp_detect_s": common.time_call(lambda det=det: det(big), repeats)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 8 photos spread over the sizes, one timing each")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed detections per photo, median kept (default 3, quick 1)")
    parser.add_argument("--max-sides", default="1024,1600,2048",
                        help="max_side settings to sweep (comma separated)")
    args = parser.parse_args()
    started = time.perf_counter()

    from faceguard.detect import FaceDetector
    from faceguard.io import find_photos, load_photo

    torch.set_num_threads(args.threads)
    repeats = args.repeats or (1 if args.quick else 3)
    max_sides = [int(s) for s in args.max_sides.split(",")]
    album = common.data_dir("album")
    photos = find_photos([album])
    if args.quick:  # a spread of sizes: every 8th photo by pixel count
        from PIL import Image

        by_size = sorted(photos, key=lambda p: np.prod(Image.open(p).size))
        photos = by_size[::8][:7] + by_size[-1:]

    detector = FaceDetector(device="cpu")
    without_edges = FaceDetector(device="cpu", edges=False)
    build_s = prebuild(detector)
    prebuild(without_edges)
    warm = load_photo(photos[0])
    start = time.perf_counter()
    detector(warm.pixels)  # warm-up: first-call allocations, oneDNN kernels
    warmup_s = time.perf_counter() - start

    rows, sweep_rows = [], []
    sweep_detectors = {str(s): FaceDetector(device="cpu", max_side=s) for s in max_sides}
    sweep_detectors["full"] = FaceDetector(device="cpu", max_side=FULL)
    for det in sweep_detectors.values():
        prebuild(det)
    for i, path in enumerate(photos):
        rel = path.relative_to(album).as_posix()
        row, photo = measure_photo(path, rel, detector, repeats)
        edges_photo(row, photo.pixels, detector, without_edges, repeats)
        rows.append(row)
        print(f"[{i + 1}/{len(photos)}] {rel}: {row['megapixels']:.2f} MP, load "
              f"{row['load_s']:.3f} s, detect {row['detect_s']:.3f} s "
              f"({row['detect_without_edges_s']:.3f} s without the edges' look), "
              f"{row['faces']} faces ({len(row['faces_cut_by_edge'])} cut by the edge)",
              flush=True)
        if max(photo.pixels.shape[:2]) > min(max_sides):
            sweep_rows.append(sweep_photo(rel, photo.pixels, sweep_detectors, repeats))
        del photo

    synth, photo = synthetic_12mp(album, detector, without_edges, repeats)
    print(f"synthetic 12 MP: load {synth['load_s']:.3f} s, detect {synth['detect_s']:.3f} s "
          f"({synth['detect_without_edges_s']:.3f} s without the edges' look), "
          f"{synth['faces']} faces; {synth['breakdown_s']}", flush=True)
    synth_sweep = sweep_photo(synth["photo"], photo.pixels, sweep_detectors, repeats)
    sweep_rows.append(synth_sweep)
    del photo

    small = small_faces(album, {"default": detector, "min_face_size=20 asked": FaceDetector(
        device="cpu", min_face_size=20)}, repeats)
    for label, row in small["detectors"].items():
        print(f"small faces, {label}: found {row['found_of_4_by_width_px']}, "
              f"{row['other_boxes']} other boxes, {row['detect_s']:.2f} s; the real 12 MP "
              f"photo {row['real_12mp_detect_s']:.2f} s", flush=True)

    labels = list(sweep_detectors)
    sweep_summary = summarise_sweep(sweep_rows, labels)
    # where every setting downscales, the settings really differ
    sweep_large = summarise_sweep(sweep_rows, labels, max(max_sides))
    smallest = {label: {str(side): smallest_face(det, side) for side in (2048, 4000, 6000)}
                for label, det in sweep_detectors.items()}
    for label in labels:
        s = sweep_summary[label]
        big = sweep_large[label]
        print(f"max_side {label}: median {s['median_detect_s']:.3f} s (longer side > "
              f"{max(max_sides)}: {big['photos']} photos, total {big['total_detect_s']:.1f} s), "
              f"faces {s['faces']}, "
              f"missed {s['missed_vs_full_res']} {s['missed_face_widths_px']}, "
              f"extra {s['extra_vs_full_res']}, landmark error "
              f"{s['landmark_error_mean_interocular']}", flush=True)

    settings = {
        "album": str(album),
        "photos": len(photos),
        "detector": repr(detector),
        "input": "Photo.pixels from load_photo: (H, W, 3) float32 in [0, 1], as the pipeline",
        "torch_threads": args.threads,
        "repeats": repeats,
        "timing": "first_detect_s: the photo's first detection (what one pass over an album "
                  "costs: new image shapes); detect_s: median of `repeats` further detections, "
                  "each timed in turn with one without the look for faces the edge cuts "
                  "(detect_without_edges_s)",
        "load_timing": "one call, cold OS file cache not guaranteed",
        "max_side_sweep": max_sides + ["full"],
        "sweep_photos": f"album photos with longer side > {min(max_sides)} px, plus the "
                        "synthetic 12 MP photo",
        "face_match": "greedy IoU >= 0.5 with the full-resolution detections; landmark "
                      "error = mean of the 5 point distances / reference inter-ocular distance",
        "synthetic_12mp": f"{SYNTHETIC_SOURCE} upscaled bicubic to {SYNTHETIC_SIZE}, JPEG q92",
    }
    results = {
        "mtcnn_build_s": build_s,
        "warmup_s": warmup_s,
        **summarise(rows),
        "synthetic_12mp": synth,
        "small_faces": small,
        "max_side_sweep": {
            "summary": sweep_summary,
            f"summary_longer_side_over_{max(max_sides)}": sweep_large,
            "smallest_findable_face_px_by_longer_side": smallest,
            "photos": sweep_rows},
        "photos": rows,
    }
    out = common.write_results("detect", settings, results, quick=args.quick, started=started)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
