"""JPEG saving benchmark: what writing a JPEG again does to a face, on its own and with
the cloak, for originals saved finer than the output quality (a camera's 97-100).

1. Every album JPEG (``../shared/data/album``), without a cloak: its largest face's
   SSIMULACRA2 and colour change (CIEDE2000 p95) once its pixels are written as
   :func:`faceguard.io.save_photo` writes them (its own tables where they are finer
   than quality 95: :func:`faceguard.io.jpeg.finer_tables`) and at quality 95 whatever
   the original, with the files' sizes.
2. ``--cloak``: the album JPEGs saved finer than 95 cloaked as a user would
   (``--protect-all``, ``balanced``, the photo's own format) twice, with their own
   tables and, as before 6 Dec, at quality 95 (``finer_tables`` switched off): each
   face's figures in the file, as the manifest records them, and its distance from its
   clean face on each recognizer.

Usage: .venv/bin/python benchmarks/jpeg_saving.py [--cloak]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, write_results  # noqa: E402

from faceguard.detect import FaceDetector  # noqa: E402
from faceguard.io import load_photo, save_photo  # noqa: E402
from faceguard.io.jpeg import finer_tables  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.pipeline import CloakJob, cloak_album  # noqa: E402
from faceguard.settings import CloakSettings  # noqa: E402
from faceguard.visibility import measure_face  # noqa: E402

QUALITY = 95


def album_jpegs() -> list[Path]:
    """The album's JPEG files, in order."""
    found = []
    for path in sorted(data_dir("album").glob("person_*/*")):
        try:
            with Image.open(path) as image:
                if image.format == "JPEG":
                    found.append(path)
        except OSError:
            continue
    return found


def saved_alone(path: Path, detector: FaceDetector, scratch: Path) -> dict | None:
    """The largest face's figures in the file written as today, and at quality 95."""
    photo = load_photo(path)
    faces = detector(photo.pixels)
    if not faces:
        return None
    box = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])).box
    row = {"photo": f"{path.parent.name}/{path.name}", "size_kb": path.stat().st_size // 1000,
           "own_tables_kept": finer_tables(photo.jpeg_tables, "RGB", QUALITY) is not None}
    for arm, written in (("written", photo),
                         ("at_95", dataclasses.replace(photo, jpeg_tables=None))):
        out = save_photo(written, scratch / f"{arm}.jpg", quality=QUALITY, overwrite=True)
        q = measure_face(photo.pixels, load_photo(out).pixels, box, jpeg=False)
        row[arm] = {"size_kb": out.stat().st_size // 1000, "ssimulacra2": q["ssimulacra2"],
                    "ciede2000_p95": q["ciede2000_p95"]}
    print(row, flush=True)
    return row


def cloaked(photos: list[Path], out: Path, detector: FaceDetector) -> list[dict]:
    """The photos cloaked as a user would; per protected face, its figures in the file."""
    job = CloakJob(inputs=photos, outdir=out, settings=CloakSettings(), format="keep",
                   protect_all=True)
    rows = []
    for event in cloak_album(job, detector, Ensemble.load):
        if event.stage == "cloaking" and event.result:
            for face in event.result["faces"]:
                if face["protected"]:
                    q = face["quality"]
                    rows.append({"photo": event.path.name,
                                 "size_kb": (out / event.result["output"]).stat().st_size
                                 // 1000,
                                 **{k: q.get(k) for k in ("ssimulacra2", "saved_ssimulacra2",
                                                          "ciede2000_p95",
                                                          "saved_ciede2000_p95")},
                                 "distance_after": face.get("distance_after", {})})
                    print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cloak", action="store_true",
                        help="also cloak the photos saved finer than 95, both ways")
    args = parser.parse_args()
    started = time.perf_counter()
    detector = FaceDetector()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        rows = [r for p in album_jpegs() if (r := saved_alone(p, detector, scratch))]
        results["saved_alone"] = rows
        finer = [r for r in rows if r["own_tables_kept"]]
        for name, group in (("finer_than_95", finer),
                            ("others", [r for r in rows if not r["own_tables_kept"]])):
            results[f"summary_{name}"] = {
                "photos": len(group),
                **{f"{arm}_{k}_{how.__name__}": how(r[arm][k] for r in group)
                   for arm in ("written", "at_95") for k in ("ssimulacra2", "ciede2000_p95")
                   for how in (min, max) if group}}
        if args.cloak:
            photos = [data_dir("album") / r["photo"] for r in finer]
            results["cloaked_own_tables"] = cloaked(photos, scratch / "own", detector)
            with mock.patch("faceguard.io.write.finer_tables", lambda *a: None):
                results["cloaked_at_95"] = cloaked(photos, scratch / "at95", detector)
    path = write_results("jpeg-saving", {"quality": QUALITY, "cloak": args.cloak}, results,
                         started=started)
    print(path)


if __name__ == "__main__":
    main()
