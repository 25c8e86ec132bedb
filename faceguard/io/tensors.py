"""Photo pixels <-> torch tensors (torch is imported only when they are called)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (N, H, W, 3) numpy -> (1 or N, 3, H, W) float32 torch tensor (a copy).

    Floats are taken as [0, 1] (a photo's pixels); uint8 as 0..255, divided by 255.
    """
    import torch

    arr = np.asarray(pixels)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255
    arr = np.asarray(arr, dtype=np.float32)
    batch = arr if arr.ndim == 4 else arr[None]
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))


def from_tensor(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) torch tensor -> (H, W, 3) float32 numpy (values as is)."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    import torch

    arr = image.detach().to("cpu", torch.float32).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(arr)
