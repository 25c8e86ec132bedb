"""Two photos cloaked side by side: the album (``../shared/data/album``, one person
protected by two reference photos, 6 of its 59 photos theirs, at ``balanced``) photo
by photo and by the person mask (``--person-mask 15``), each run with photos cloaked
two at a time, torch on one thread each (the default), and one at a time on every
thread (``side_by_side.MAX_MEGAPIXELS`` set to 0), alternately in one process.
Records every job's seconds and every protected face's seconds, SSIMULACRA2 and
distances (the cloak itself may differ in the last digits: one thread sums in another
order than two).

Usage: .venv/bin/python benchmarks/side_by_side.py [--rounds N] [--threads N] [--quick]
       -> benchmarks/results/side-by-side.json (about 10 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, median, write_results  # noqa: E402
from speed import album_folders, album_run  # noqa: E402

from faceguard import side_by_side  # noqa: E402
from faceguard.detect import FaceDetector  # noqa: E402
from faceguard.pipeline import CloakJob  # noqa: E402
from faceguard.settings import PERSON_MASK_STEPS, CloakSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="10 photos, 1 round")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp())
    refs, inputs, _ = album_folders(data_dir("album"), tmp, args.quick, 0)
    detector, ensembles = FaceDetector(), {}
    paired = side_by_side.MAX_MEGAPIXELS
    paths = {"album, per photo": {},
             f"album, person mask + {PERSON_MASK_STEPS} steps": {
                 "person_mask": PERSON_MASK_STEPS}}
    runs: dict = {path: {"side by side": [], "one at a time": []} for path in paths}
    n = 0
    try:
        for r in range(rounds):
            for path, how in paths.items():
                ways = ["one at a time", "side by side"]
                for way in ways if r % 2 == 0 else ways[::-1]:
                    side_by_side.MAX_MEGAPIXELS = paired if way == "side by side" else 0.0
                    n += 1
                    job = CloakJob(inputs=[inputs], outdir=tmp / f"out-{n}", protect=refs,
                                   settings=CloakSettings(**how))
                    summary = album_run(job, detector, ensembles)
                    summary.pop("per_photo_s")
                    runs[path][way].append(summary)
                    print(path, way, round(summary["total_s"], 1), flush=True)
    finally:
        side_by_side.MAX_MEGAPIXELS = paired
        shutil.rmtree(tmp, ignore_errors=True)
    medians = {path: {way: {"total_s": median([s["total_s"] for s in rs]),
                            "photos_per_s": median([s["photos_per_s"] for s in rs])}
                      for way, rs in ways.items()} for path, ways in runs.items()}
    path = write_results("side-by-side", {"rounds": rounds, "threads": args.threads,
                                          "album": "59 photos, person_img26 in 6",
                                          "side_by_side_megapixels": paired},
                         {"medians": medians, "runs": runs}, args.quick, started)
    print(path)


if __name__ == "__main__":
    main()
