"""Choosing the torch device: CUDA when present, else CPU."""

from __future__ import annotations


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else "cuda" when available, else "cpu"."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
