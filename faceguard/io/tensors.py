"""Photo pixels <-> torch tensors and 8-bit pixels (torch is imported only when it is
called)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def float_pixels(arr: np.ndarray, scale: float) -> np.ndarray:
    """Integer levels (any shape) -> float32 in [0, 1], ``scale`` the top level (255,
    65535): one C-ordered copy, divided in place (no second photo-sized array)."""
    out = arr.astype(np.float32, order="C")
    out /= scale
    return out


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


def tensor_view(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float32 numpy -> (1, 3, H, W) torch tensor sharing its memory (writes go
    to ``pixels``). Not a copy: a 120-megapixel photo is 1.4 GB a copy; the crops cut from
    it (:func:`faceguard.regions.crop_face`) are copied, small and contiguous."""
    import torch

    if pixels.dtype != np.float32 or pixels.ndim != 3:
        raise ValueError(f"expected (H, W, 3) float32 pixels, got {pixels.dtype} {pixels.shape}")
    return torch.from_numpy(pixels).permute(2, 0, 1)[None]


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


def uint8_pixels(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) float pixels in [0, 1] (values outside are clipped) -> uint8,
    rounded to nearest (halves to even, as ``np.rint``), computed in float32.

    OpenCV's saturating conversion: numpy's scale, clip, round and cast took 2.2x as long
    (42 against 19 ms on a 3.6-megapixel photo, one core). The one conversion of
    detection, saving and the JPEG equivalent's copies."""
    import cv2

    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    out = np.empty(pixels.shape, np.uint8)
    for top in range(0, len(pixels), _BAND_ROWS):  # no float copy of a whole huge photo
        band = np.s_[top:top + _BAND_ROWS]
        # numpy's max: OpenCV's takes an array of up to 4 values (a 1x1 photo) as a scalar
        out[band] = cv2.convertScaleAbs(np.maximum(pixels[band], 0.0), alpha=255)
    return out


#: rows converted at a time by :func:`uint8_pixels`
_BAND_ROWS = 512
