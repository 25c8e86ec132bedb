"""Which of torch's speed knobs help a cloak's step on this CPU (issue: cheaper steps).

One optimisation step's costly part is each recognizer's forward and backward pass on
the EOT batch of aligned faces (2 draws at ``balanced``). This times that pass per
recognizer of the default ensemble, gradient to the input as the cloak takes it, with:

- ``threads``: torch's intra-op threads, 1 and 2 (this machine has 2 cores);
- ``channels_last``: weights and input in NHWC memory order;
- ``compile``: ``torch.compile`` of the recognizer (its one-off compile time is
  recorded too, paid again in every new process).

Usage: .venv/bin/python benchmarks/speed_knobs.py [--reps N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from faceguard.models.registry import load_recognizer  # noqa: E402
from faceguard.settings import DEFAULT_MODELS  # noqa: E402


def step_seconds(net, faces: torch.Tensor, reps: int) -> float:
    """Mean seconds of one forward + backward to ``faces`` (B, 3, s, s), after a warm-up."""
    def once() -> None:
        x = faces.detach().clone().requires_grad_(True)
        net(x).sum().backward()

    once()
    started = time.perf_counter()
    for _ in range(reps):
        once()
    return (time.perf_counter() - started) / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=2, help="EOT draws in one pass")
    args = parser.parse_args()
    started = time.perf_counter()
    results = {}
    for name in DEFAULT_MODELS:
        rec = load_recognizer(name, "cpu").eval()
        for p in rec.parameters():
            p.requires_grad_(False)
        faces = torch.rand(args.batch, 3, rec.input_size, rec.input_size,
                           generator=torch.Generator().manual_seed(0))
        row = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            row[f"plain, {threads} thread(s)"] = step_seconds(rec, faces, args.reps)
        torch.set_num_threads(2)
        last = load_recognizer(name, "cpu").eval().to(memory_format=torch.channels_last)
        row["channels_last, 2 threads"] = step_seconds(
            last, faces.contiguous(memory_format=torch.channels_last), args.reps)
        t0 = time.perf_counter()
        try:
            compiled = torch.compile(rec)
            step_seconds(compiled, faces, 1)  # compiles
            row["compile_once_s"] = time.perf_counter() - t0
            row["compile, 2 threads"] = step_seconds(compiled, faces, args.reps)
        except Exception as exc:  # noqa: BLE001 - a missing compiler is a result too
            row["compile, 2 threads"] = f"failed: {type(exc).__name__}: {exc}"[:300]
        results[name] = {k: round(v, 4) if isinstance(v, float) else v
                         for k, v in row.items()}
        print(name, results[name], flush=True)
    print(write_results("speed-knobs", {"models": list(DEFAULT_MODELS), "batch": args.batch,
                                        "reps": args.reps}, results, False, started))


if __name__ == "__main__":
    main()
