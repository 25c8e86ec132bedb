"""Where a cloak job's time goes between its events: the 12 MP photo cloaked through
``cloak_album`` (``speed.py``'s end-to-end run) ``--runs`` times in one process, every
event's time kept, and the longest gaps between consecutive events named by the two
events around them (CUDA when present).

``speed.py`` splits a job by its stages; this names what a long stage was doing: the
gap before the first optimisation step, each step, the guard, saving and measuring.
The first run in the process is ``cold`` (models first used, kernels first planned).

Writes ``job-timeline.json`` (``job-timeline-cuda.json`` on a GPU).

``--profile`` runs the job once more under cProfile and keeps the functions with the
most cumulative and own seconds (the profiler slows what it watches: read its shares only).

Usage: .venv/bin/python benchmarks/job_timeline.py [--threads N] [--runs N] [--profile]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402
from common import median, write_results  # noqa: E402
from stage_profile import python_profile  # noqa: E402

from faceguard.detect import FaceDetector  # noqa: E402
from faceguard.models.ensemble import Ensemble  # noqa: E402
from faceguard.pipeline import CloakJob, cloak_album  # noqa: E402
from faceguard.settings import DEFAULT_MODELS  # noqa: E402

#: gaps kept per run, longest first
TOP = 12


def _label(event) -> str:
    return f"{event.stage}: {event.detail}" if event.detail else event.stage


def timeline(job: CloakJob, detector: FaceDetector, ensemble: Ensemble) -> dict:
    """The job's total seconds, its longest gaps between events (each named by the event
    before and after it) and the optimisation's step times."""
    started = time.perf_counter()
    marks = [("start", started)]
    for event in cloak_album(job, detector, lambda names: ensemble):
        marks.append((_label(event), time.perf_counter()))
    total = marks[-1][1] - started
    gaps = [{"seconds": round(b[1] - a[1], 3), "after": a[0], "before": b[0]}
            for a, b in pairwise(marks)]
    steps = [g["seconds"] for g in gaps if "step" in g["after"] and "step" in g["before"]]
    return {"total_s": round(total, 3), "events": len(marks) - 1,
            "longest_gaps": sorted(gaps, key=lambda g: -g["seconds"])[:TOP],
            "step_s": {"count": len(steps), "sum": round(sum(steps), 3),
                       "median": round(median(steps), 3) if steps else None,
                       "first_5": steps[:5]},
            "outside_steps_s": round(total - sum(steps), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    started, album, detector, ensemble = speed.start(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)

        def job(out: str) -> CloakJob:
            return CloakJob(inputs=[speed.big_photo(album)], outdir=tmp / out,
                            protect=[speed.reference(album)])

        for run in range(args.runs):
            name = "cold" if run == 0 else f"warm_{run}"
            results[name] = timeline(job(name), detector, ensemble)
            print(name, results[name]["total_s"], results[name]["longest_gaps"][:4], flush=True)
        if args.profile:
            results["python"] = python_profile(
                lambda: timeline(job("profiled"), detector, ensemble))
    name = "job-timeline" + ("-cuda" if torch.cuda.is_available() else "")
    settings = {"threads": args.threads, "models": list(DEFAULT_MODELS), "runs": args.runs,
                "photo": "12.6 MP", "note": "a gap is named by the events before and after "
                "it: the work between them is what the later event reports"}
    print(write_results(name, settings, results, False, started))


if __name__ == "__main__":
    main()
