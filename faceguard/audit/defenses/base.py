"""What every defense shares: the :data:`Defense` type and the per-image helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Defense = Callable[[Tensor], Tensor]


# ITU-R BT.601 luma weights, the grey conversion of the restoration paper's Algorithm 1.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def defend_face(defend: Defense, images: Tensor, landmarks: np.ndarray) -> Tensor:
    """``defend(images)``; a defense that aligns faces itself (``aligns``, e.g. A-VAE)
    also gets the face's landmarks ((5, 2) in the images' pixels)."""
    if getattr(defend, "aligns", False):
        return defend(images, landmarks)
    return defend(images)


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"a defense takes a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"a defense takes (B, 3, H, W) images, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"a defense takes float images in [0, 1], got dtype {images.dtype}")


def _per_image(images: Tensor, fn: Callable[[np.ndarray], np.ndarray]) -> Tensor:
    """Apply ``fn`` ((H, W, 3) float32 in [0, 1] -> same) to each image of the batch."""
    _check_images(images)
    arrays = images.detach().to("cpu", torch.float32).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    out = np.stack([np.asarray(fn(np.ascontiguousarray(a)), np.float32) for a in arrays])
    result = torch.from_numpy(np.clip(out, 0.0, 1.0)).permute(0, 3, 1, 2)
    return result.to(images.device, images.dtype).contiguous()


def _check_range(
    name: str,
    value: Any,
    low: float,
    high: float | None = None,
    *,
    integer: bool = False,
    low_inclusive: bool = True,
) -> None:
    """ValueError unless ``low <= value <= high`` (``low < value`` if not inclusive)."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or (high is not None and value > high):
        low_txt = f"{low} <= " if low_inclusive else f"{low} < "
        high_txt = f" <= {high}" if high is not None else ""
        raise ValueError(f"{name} must satisfy {low_txt}{name}{high_txt}, got {value!r}")


def _resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic resize with antialiasing when shrinking; (B, 3, H, W) -> (B, 3, *size)."""
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(
        images, size=size, mode="bicubic", antialias=True, align_corners=False
    ).clamp(0, 1)


def _bilateral(
    channel: np.ndarray, diameter: int, sigma_color: float, sigma_space: float
) -> np.ndarray:
    """OpenCV bilateral filter of one (H, W) float32 channel in [0, 1].

    The channel is scaled to 0..255 (kept float) so ``sigma_color`` has the usual 8-bit
    meaning without rounding the image to integers.
    """
    out = cv2.bilateralFilter(channel * 255.0, diameter, sigma_color, sigma_space)
    return out / 255.0
