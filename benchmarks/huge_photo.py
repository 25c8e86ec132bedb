"""Time and peak memory of ``faceguard cloak`` on one photo at several sizes, up to huge.

The photo is the album's 12.6-megapixel one (:func:`speed.big_photo`), enlarged by each
``--scales`` factor (bilinear, saved at JPEG quality 90: 2.8 gives 99 megapixels), and
the person's reference is :func:`speed.reference`. Each run is the ``faceguard`` console
script, as a user runs it, in a process of its own; its wall time, CPU times, page faults
and peak resident memory come from the kernel (``os.wait4``). With ``--code`` the runs
alternate between versions of FaceGuard (each a checkout put first on PYTHONPATH, e.g. a
git worktree of an older commit), and the written photos are compared byte for byte.

Usage: .venv/bin/python benchmarks/huge_photo.py [--scales 1 2.8] [--runs 2]
       [--code /path/to/old-checkout .] [--name huge-photo]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, write_results  # noqa: E402
from speed import big_photo, reference  # noqa: E402

FACEGUARD = Path(sys.executable).with_name("faceguard")
Image.MAX_IMAGE_PIXELS = None  # the enlarged photos are this benchmark's own


def enlarged(photo: Path, scale: float, folder: Path) -> Path:
    """``photo`` enlarged ``scale`` times (bilinear), saved at JPEG quality 90."""
    if scale == 1:
        return photo
    image = Image.open(photo).convert("RGB")
    size = (round(image.width * scale), round(image.height * scale))
    out = folder / f"{photo.stem}-x{scale:g}.jpg"
    image.resize(size, Image.BILINEAR).save(out, quality=90)
    return out


def one_run(photo: Path, protect: Path, code: Path, out: Path) -> dict:
    """``faceguard cloak photo --protect protect -o out`` with ``code`` first on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=str(code.resolve()), OMP_NUM_THREADS="2")
    log = out.with_suffix(".log")  # a file, not a pipe: a full pipe would stall the child
    started = time.perf_counter()
    with log.open("wb") as errors:
        child = subprocess.Popen([str(FACEGUARD), "cloak", str(photo), "--protect",
                                  str(protect), "-o", str(out)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)  # the child's own times, faults and peak
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"faceguard failed on {photo}: {log.read_text()[-2000:]}")
    written = next(out.glob(f"{photo.stem}.*"))
    return {"wall_s": wall, "user_s": usage.ru_utime, "system_s": usage.ru_stime,
            "minor_page_faults": usage.ru_minflt, "peak_gb": usage.ru_maxrss / 2**20,
            "output_sha256": hashlib.sha256(written.read_bytes()).hexdigest()[:16]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.8])
    parser.add_argument("--runs", type=int, default=2, help="runs of each version and size")
    parser.add_argument("--code", type=Path, nargs="+", default=[Path(".")],
                        help="FaceGuard checkouts to alternate between")
    parser.add_argument("--name", default="huge-photo", help="the results file's name")
    args = parser.parse_args()
    started = time.perf_counter()
    album = data_dir("album")
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            photo = enlarged(big_photo(album), scale, Path(tmp))
            with Image.open(photo) as image:
                key = f"{image.width}x{image.height} ({image.width * image.height / 1e6:.0f} MP)"
            runs: dict = {str(code): [] for code in args.code}
            for r in range(args.runs):
                for i, code in enumerate(args.code):  # alternating: the hour's drift
                    out = Path(tmp) / f"out-{scale:g}-{r}-{i}"  # falls on each
                    run = one_run(photo, reference(album), code, out)
                    runs[str(code)].append(run)
                    print(f"{key} {code}: {run['wall_s']:.1f} s, peak {run['peak_gb']:.2f} GB",
                          flush=True)
            results[key] = runs
    write_results(args.name, {
        "scales": args.scales, "runs": args.runs, "code": [str(c) for c in args.code],
        "threads": 2,
        "note": "each run is the faceguard console script in a process of its own; "
                "peak_gb: the kernel's maximum resident set of that process; "
                "output_sha256: the first 16 hex digits of the written photo's hash",
    }, results, started=started)


if __name__ == "__main__":
    main()
