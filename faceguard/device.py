"""Choosing the torch device (CUDA when present, else CPU), and constants kept there."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else "cuda" when available, else "cpu"; ValueError for a
    device that is not a CPU or an available GPU.

    Picking a GPU turns cuDNN off for the process. cuDNN plans each convolution shape
    once per thread, and every job cloaks in a new thread (the app's), so every job paid
    for the planning: 29.4 s for benchmarks/job_timeline.py's 12 MP job on an H200, 7.7 s
    when the same thread runs it again. Torch's own kernels plan nothing: 9.9 s the first
    time, 8.4-9.2 s again (job-timeline-*-cuda.json).
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}: choose cpu or cuda") from None
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: choose cpu or cuda")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA GPU is available here (choose cpu)")
    if device.startswith("cuda"):
        torch.backends.cudnn.enabled = False
    return device


def constant_like(make: Callable[..., torch.Tensor], like: torch.Tensor,
                  *args: Hashable) -> torch.Tensor:
    """``make(*args)``, a constant tensor, in ``like``'s dtype on its device: copied there
    once per device, dtype and ``args``, then kept.

    A copy from the CPU to a GPU waits for all the work queued on the GPU before it (a
    copy from pageable memory synchronises the stream): a cloak's step made about 70 of
    them, one per metric and filter constant, where a step's own GPU work is a few
    milliseconds (the H200's profile in benchmarks/RESULTS.md). ``make`` must be a
    module-level function and ``args`` few (a quality, say): each one is kept for good.
    """
    return _copy(make, args, like.device, like.dtype)


@cache
def _copy(make: Callable[..., torch.Tensor], args: tuple, device, dtype) -> torch.Tensor:
    import torch

    with torch.inference_mode(False):  # kept for good: usable where gradients are
        return make(*args).to(device, dtype)
