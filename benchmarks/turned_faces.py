"""Faces on their side: photos whose rotation tag was lost, and what looking turned costs.

For every album photo with a face (``album/`` with ``_unlabelled_extras``), the photo is
turned a quarter each way and upside down (``np.rot90``, no tag), and detected with the
default :class:`faceguard.detect.FaceDetector` (which looks turned when no face is found
upright and sure) and with ``turned=False`` (MTCNN as before). A turned photo counts as
found when every face of the upright photo is found, in the turned photo's pixels, with
its 5 landmarks within 5% of the face's width of where they are.

On photos without faces (scikit-image's and scikit-learn's sample photos without people,
and a strip of each album photo beside its faces, at least 300 px on each side) it counts
the false faces and times detection both ways. It also checks that no upright photo's
faces change (the album's, and the face crops of ``att/`` and ``celeb24/``, where faces
are small and scored lower), and times a 12-megapixel photo without faces.

Run from the repository root::

    .venv/bin/python benchmarks/turned_faces.py

Writes ``benchmarks/results/turned-faces.json`` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import common
import numpy as np
import torch

FACELESS_SAMPLES = ("brick", "cell", "chelsea", "coffee", "coins", "color", "grass", "gravel",
                    "horse", "hubble_deep_field", "ihc", "moon", "motorcycle_left", "page",
                    "retina", "rocket", "text", "clock_motion", "logo", "chessboard_RGB",
                    "microaneurysms")


def quarter_turned(points: np.ndarray, turns: int, width: int, height: int) -> np.ndarray:
    """(N, 2) x, y of a (height, width) photo, in the photo as ``np.rot90(., turns)``."""
    for _ in range(turns):  # one anticlockwise quarter: (x, y) -> (y, width - x)
        points = np.stack([points[:, 1], width - points[:, 0]], axis=1)
        width, height = height, width
    return points


def same_faces(found: list, upright: list, turns: int, width: int, height: int) -> bool:
    """Every upright face found again on the turned photo, landmarks within 5% of its width."""
    if len(found) != len(upright):
        return False
    left = list(found)
    for face in upright:
        want = quarter_turned(face.landmarks, turns, width, height)
        errors = [np.abs(f.landmarks - want).max() for f in left]
        if not errors or min(errors) > 0.05 * face.width:
            return False
        left.pop(int(np.argmin(errors)))
    return True


def timed(detector, pixels: np.ndarray) -> tuple[list, float]:
    start = time.perf_counter()
    faces = detector(pixels)
    return faces, time.perf_counter() - start


def faceless_photos(album_photos: dict[str, tuple[np.ndarray, list]]) -> dict[str, np.ndarray]:
    """Sample photos without people, and each album photo's widest strip beside its faces."""
    import skimage.data
    import skimage.io
    from sklearn.datasets import load_sample_images

    root = Path(skimage.data.__file__).parent
    photos = {}
    for name in FACELESS_SAMPLES:
        pixels = skimage.io.imread(next(root.glob(name + ".*")))
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        photos[f"skimage {name}"] = np.ascontiguousarray(pixels[..., :3].astype(np.uint8))
    for i, pixels in enumerate(load_sample_images().images):
        photos[f"sklearn sample {i}"] = pixels
    for rel, (pixels, faces) in album_photos.items():
        h, w = pixels.shape[:2]
        margin = 0.3 * max(f.width for f in faces)
        left = int(min(f.box[0] for f in faces) - margin)
        right = int(max(f.box[2] for f in faces) + margin)
        below = int(max(f.box[3] for f in faces) + margin)
        strips = [pixels[:, :max(0, left)], pixels[:, min(w, right):], pixels[min(h, below):]]
        strip = max(strips, key=lambda s: s.size)
        if min(strip.shape[:2]) >= 300:
            photos[f"album {rel} beside its faces"] = np.ascontiguousarray(strip)
    return photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    started = time.perf_counter()

    import cv2

    from faceguard.detect import SURE, TURNS, FaceDetector
    from faceguard.face import UPRIGHT_DEGREES
    from faceguard.io import find_photos, load_photo, uint8_pixels

    torch.set_num_threads(args.threads)
    looking = FaceDetector(device="cpu")
    plain = FaceDetector(device="cpu", turned=False)
    album = common.data_dir("album")
    with_faces, upright_changed = {}, []
    found = {turns: {"looking turned": 0, "upright only": 0} for turns in TURNS}
    missed = []
    for path in find_photos([album]):
        rel = path.relative_to(album).as_posix()
        pixels = uint8_pixels(load_photo(path).pixels)
        h, w = pixels.shape[:2]
        upright = plain(pixels)
        if not upright:
            continue
        with_faces[rel] = (pixels, upright)
        if not same_faces(looking(pixels), upright, 0, w, h):
            upright_changed.append(rel)
        for turns in TURNS:
            turned = np.ascontiguousarray(np.rot90(pixels, turns))
            for label, detector in (("looking turned", looking), ("upright only", plain)):
                ok = same_faces(detector(turned), upright, turns, w, h)
                found[turns][label] += ok
                if label == "looking turned" and not ok:
                    missed.append(f"{rel} turned {turns}")
        print(f"{rel}: {len(upright)} faces; missed so far {missed}", flush=True)

    crops_changed = {}  # upright face crops whose faces looking turned would change
    for name in ("att", "celeb24"):
        paths = find_photos([common.data_dir(name)])
        changed = []
        for path in paths:
            pixels = uint8_pixels(load_photo(path).pixels)
            before = plain(pixels)
            if not same_faces(looking(pixels), before, 0, *pixels.shape[1::-1]):
                changed.append(path.name)
        crops_changed[name] = {"photos": len(paths), "changed": changed}
        print(f"{name}: {len(changed)} of {len(paths)} upright crops changed", flush=True)

    faceless = faceless_photos(with_faces)
    rows = []
    for name, pixels in faceless.items():
        before, before_s = timed(plain, pixels)
        after, after_s = timed(looking, pixels)
        rows.append({"photo": name, "megapixels": pixels.shape[0] * pixels.shape[1] / 1e6,
                     "false_faces_upright_only": len(before), "false_faces_looking_turned":
                     len(after), "upright_only_s": before_s, "looking_turned_s": after_s})
    import skimage.data

    big = cv2.resize(skimage.data.coffee(), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    twelve = {label: common.time_call(lambda d=detector: d(big), 3, warmup=1)
              for label, detector in (("upright_only_s", plain), ("looking_turned_s", looking))}

    settings = {
        "album": str(album), "photos_with_faces": len(with_faces),
        "detector": repr(looking), "sure": SURE, "upright_degrees": UPRIGHT_DEGREES,
        "turns": "np.rot90's k: 1 a quarter anticlockwise, 3 clockwise, 2 upside down",
        "found": "every upright face found on the turned photo, its 5 landmarks within 5% of "
                 "its width of where they are",
        "faceless": "scikit-image and scikit-learn sample photos without people, and each "
                    "album photo's widest strip beside its faces (margin 0.3 face widths, "
                    "at least 300 px each side)",
        "torch_threads": args.threads,
    }
    results = {
        "turned_photos_found": {str(t): v for t, v in found.items()},
        "turned_photos_missed": missed,
        "upright_photos_whose_faces_changed": upright_changed,
        "upright_face_crops_whose_faces_changed": crops_changed,
        "faceless": {
            "photos": len(rows),
            "false_faces_upright_only": sum(r["false_faces_upright_only"] for r in rows),
            "false_faces_looking_turned": sum(r["false_faces_looking_turned"] for r in rows),
            "median_upright_only_s": common.median([r["upright_only_s"] for r in rows]),
            "median_looking_turned_s": common.median([r["looking_turned_s"] for r in rows]),
            "twelve_megapixels_without_faces": twelve,
            "rows": rows,
        },
        "note": "looking turned costs nothing on a photo with a sure upright face and up to "
                "three more detections on one without",
    }
    out = common.write_results("turned-faces", settings, results, started=started)
    print(f"wrote {out}: found {results['turned_photos_found']}, faceless "
          f"{ {k: v for k, v in results['faceless'].items() if k != 'rows'} }")


if __name__ == "__main__":
    main()
