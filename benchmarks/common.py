"""Small helpers shared by the benchmark scripts: data path, timing, JSON with machine info.

The benchmarks are plain scripts run from the repository root, e.g.
``.venv/bin/python benchmarks/detect.py``; they import this file as ``common``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

if str(REPO) not in sys.path:  # run as a script from anywhere: find the package
    sys.path.insert(0, str(REPO))


def data_dir(sub: str) -> Path:
    """``$FACEGUARD_TEST_DATA/<sub>`` (default ``<repo>/../shared/data/<sub>``).

    Exits with one clear line when the folder is absent.
    """
    root = Path(os.environ.get("FACEGUARD_TEST_DATA", REPO.parent / "shared" / "data"))
    path = root / sub
    if not path.is_dir():
        sys.exit(f"benchmark data {path} is absent (set FACEGUARD_TEST_DATA to the data folder)")
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Where the numbers come from: CPU, thread counts, library versions, load."""
    import numpy as np
    import torch

    info = {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda_available": torch.cuda.is_available(),
    }
    if hasattr(os, "getloadavg"):
        # other processes share the CPU: a high load means noisy timings
        info["load_average_1_5_15min"] = [round(x, 2) for x in os.getloadavg()]
    return info


def time_call(fn: Callable[[], object], repeats: int = 3, warmup: int = 0) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls, seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median(values: Sequence[float]) -> float | None:
    """Median, or None for an empty sequence (JSON null)."""
    return statistics.median(values) if values else None


def rounded(value: object, digits: int = 4) -> object:
    """``value`` with every float (also inside dicts and lists) rounded to ``digits``
    decimals (``digits`` significant ones below 0.01), for readable JSON."""
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.01:
            return float(f"{value:.{digits}g}")
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def write_results(name: str, settings: dict, results: dict, quick: bool = False,
                  started: float | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` (``<name>-quick.json`` for a smoke run).

    The file records the date, the machine (:func:`machine_info`), the exact settings
    and the results, floats rounded by :func:`rounded`.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-quick' if quick else ''}.json"
    doc = {
        "benchmark": name,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": quick,
        "machine": machine_info(),
        "settings": settings,
        "results": rounded(results),
    }
    if started is not None:
        doc["wall_time_s"] = round(time.perf_counter() - started, 1)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path
