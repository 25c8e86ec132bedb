"""Where one photo's time goes, call by call: ``speed.py``'s stage profile of the 12 MP
photo, run under three profilers (CUDA when present).

1. Plain, twice: the process's first photo (``cold``: cuDNN starts, every convolution
   shape is planned) and the same photo again (``warm``: the optimiser's random windows
   recur with the seed, so their shapes are planned already).
2. Under CUDA's sync debug mode (GPU only): every call that makes the CPU wait for the
   GPU, counted by the line of code that made it.
3. Under cProfile: the Python functions with the most cumulative and own time.
4. Under torch.profiler: the operators with the most CPU and GPU time, and how busy the
   GPU was in all.

Writes ``stage-profile.json`` (``stage-profile-cuda.json`` on a GPU). A profiler slows
what it watches: compare the stage times of step 1 only.

Usage: .venv/bin/python benchmarks/stage_profile.py [--threads N] [--portrait]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402
from common import write_results  # noqa: E402

from faceguard.settings import DEFAULT_MODELS  # noqa: E402

#: rows kept of each profiler's table
TOP = 30


def sync_sites(run) -> dict[str, int]:
    """{"file:line": calls} of every synchronising CUDA call made by ``run()``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    sites = collections.Counter(f"{Path(w.filename).name}:{w.lineno}" for w in caught
                                if "synchroniz" in str(w.message))
    return dict(sites.most_common())


def python_profile(run) -> dict[str, list[dict]]:
    """The functions with the most cumulative and the most own seconds in ``run()``."""
    profile = cProfile.Profile()
    profile.enable()
    run()
    profile.disable()
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (cc, calls, own, cumulative, _)

    def top(column: int) -> list[dict]:
        rows = sorted(stats.items(), key=lambda kv: -kv[1][column])[:TOP]
        return [{"function": f"{Path(file).name}:{line}({name})", "calls": calls,
                 "own_s": round(own, 3), "cumulative_s": round(cum, 3)}
                for (file, line, name), (_, calls, own, cum, _) in rows]

    return {"by_cumulative": top(3), "by_own": top(2)}


def operator_profile(run) -> dict:
    """The operators with the most CPU (and GPU) time in ``run()``, and the totals."""
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as p:
        run()
    events = p.key_averages()

    def gpu_s(e) -> float:
        return getattr(e, "self_device_time_total", 0.0) / 1e6

    def rows(key) -> list[dict]:
        return [{"operator": e.key, "calls": e.count,
                 "self_cpu_s": round(e.self_cpu_time_total / 1e6, 4),
                 "self_gpu_s": round(gpu_s(e), 4)}
                for e in sorted(events, key=key, reverse=True)[:TOP]]

    out = {"self_cpu_s": round(sum(e.self_cpu_time_total for e in events) / 1e6, 3),
           "operator_calls": sum(e.count for e in events),
           "by_cpu": rows(lambda e: e.self_cpu_time_total)}
    if cuda:
        out |= {"self_gpu_s": round(sum(gpu_s(e) for e in events), 3),
                "by_gpu": rows(gpu_s)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--portrait", action="store_true",
                        help="the 250-px portrait instead of the 12 MP photo")
    args = parser.parse_args()
    started, album, detector, ensemble = speed.start(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        photo = speed.small_portrait(album, tmp) if args.portrait else speed.big_photo(album)

        def run() -> dict:
            return speed.stages(photo, speed.reference(album), detector, ensemble, tmp)

        results["cold"] = run()
        results["warm"] = run()
        print("stages", results["cold"]["total_s"], results["warm"]["total_s"], flush=True)
        if torch.cuda.is_available():
            results["synchronising_calls"] = sync_sites(run)
        results["python"] = python_profile(run)
        results["operators"] = operator_profile(run)
    name = "stage-profile" + ("-portrait" if args.portrait else "")
    name += "-cuda" if torch.cuda.is_available() else ""
    settings = {"threads": args.threads, "models": list(DEFAULT_MODELS),
                "photo": "250-px portrait" if args.portrait else "12.6 MP"}
    print(write_results(name, settings, results, False, started))


if __name__ == "__main__":
    main()
