"""What a new window shape costs the differentiable SSIMULACRA2, per memory layout.

The optimiser scores a window of a new shape every step (``cloak/perceptual.py``,
``_window``). Here, a cloak-sized face (a batch of 2, up to 506x386 px) is scored forward and
backward in 40 windows of new shapes (``fresh``) and then in the same 40 again
(``repeated``), for each layout of the metric's blurs:

- ``channels_last``: the CPU's layout (until 4 Dec 15:45, the GPU's too);
- ``contiguous``: the default layout (the GPU's since then);
- ``contiguous_no_cudnn``: the same, with cuDNN switched off around the metric.

``backend`` names the convolution torch picks for the blur in each layout. Writes
``blur-shapes.json`` (``blur-shapes-cuda.json`` on a GPU).

Usage: .venv/bin/python benchmarks/blur_shapes.py [--windows N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from faceguard.device import pick_device  # noqa: E402
from faceguard.visibility import differentiable  # noqa: E402

LAYOUTS = {"channels_last": (torch.channels_last, True),
           "contiguous": (torch.contiguous_format, True),
           "contiguous_no_cudnn": (torch.contiguous_format, False)}


def shapes(count: int, seed: int) -> list[tuple[int, int]]:
    """``count`` window shapes (h, w) as the optimiser draws them: a 380x260 face grown
    by 0-63 px on each side."""
    g = torch.Generator().manual_seed(seed)
    return [(380 + int(torch.randint(0, 127, (1,), generator=g)),
             260 + int(torch.randint(0, 127, (1,), generator=g))) for _ in range(count)]


def score_seconds(windows: list[tuple[int, int]], device: str) -> float:
    """Seconds to score a (2, 3, h, w) pair forward and backward in each window."""
    g = torch.Generator().manual_seed(0)
    full = torch.rand(2, 3, 520, 400, generator=g).to(device)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for h, w in windows:
        ref = full[..., :h, :w]
        x = (ref + 0.01).requires_grad_(True)
        differentiable.ssimulacra2(ref, x).sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def backend(fmt: torch.memory_format, cudnn: bool, device: str) -> str:
    """The convolution torch picks for one blur axis of a (2, 6, 400, 300) plane."""
    x = torch.rand(2, 6, 400, 300, device=device).contiguous(memory_format=fmt)
    k = torch.rand(6, 1, 11, 1, device=device)
    with torch.backends.cudnn.flags(enabled=cudnn):
        try:
            return str(torch._C._select_conv_backend(x, k, None, [1, 1], [0, 0], [1, 1],
                                                     False, [0, 0], 6, None))
        except (AttributeError, RuntimeError, TypeError) as error:
            return f"unknown ({error})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=40)
    args = parser.parse_args()
    started, device = time.perf_counter(), pick_device()
    score_seconds([(200, 150)], device)  # the libraries start (cuDNN, cuBLAS) off the clock
    results, chosen = {}, differentiable.layout
    for seed, (name, (fmt, cudnn)) in enumerate(LAYOUTS.items(), 1):
        windows = shapes(args.windows, seed)  # new shapes for each layout
        differentiable.layout = lambda x, fmt=fmt: fmt
        try:  # cuDNN as the layout says (pick_device turns it off for the product)
            with torch.backends.cudnn.flags(enabled=cudnn):
                fresh, repeated = score_seconds(windows, device), score_seconds(windows, device)
        finally:
            differentiable.layout = chosen
        results[name] = {"backend": backend(fmt, cudnn, device),
                         "fresh_ms_per_window": 1000 * fresh / len(windows),
                         "repeated_ms_per_window": 1000 * repeated / len(windows)}
        print(name, results[name], flush=True)
    name = "blur-shapes" + ("-cuda" if device == "cuda" else "")
    settings = {"windows": args.windows, "batch": 2,
                "chosen_now": str(chosen(torch.empty(0, device=device)))}
    print(write_results(name, settings, results, False, started))


if __name__ == "__main__":
    main()
