"""A CMYK photo's inks and the RGB pixels FaceGuard works on, both ways.

Naive CMYK, as Pillow and uncalibrated viewers show it: R = (1 - C)(1 - K), and so on.
Reading keeps the inks (:attr:`faceguard.io.Photo.inks`); writing inverts the formula
with the original black, so that the black channel survives and unchanged pixels get
their very inks back. The saving (:mod:`faceguard.io.write`) and the lossy guard
(:mod:`faceguard.io.lossy`, which codes a part of the photo as its file will) share it.
"""

from __future__ import annotations

import numpy as np

from faceguard.io.tensors import float_pixels, uint8_pixels


def rgb_of_inks(inks: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 C, M, Y, K -> (H, W, 3) float32 RGB in [0, 1]."""
    black = float_pixels(inks[..., 3], 255)
    pixels = float_pixels(inks[..., :3], 255)
    np.subtract(1, pixels, out=pixels)
    pixels *= (1 - black)[..., None]
    return pixels


def inks_of_rgb(rgb: np.ndarray, inks: np.ndarray | None) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] -> (H, W, 4) uint8 inks, with the black of the
    original ``inks`` (None: no black), and those very inks where a pixel is unchanged
    (under K 100% the division cannot find C, M and Y: a rich black lost them)."""
    if inks is None:
        inks = np.zeros((*rgb.shape[:2], 4), np.uint8)
    k = inks[..., 3].astype(np.float32) / 255
    room = (1 - k)[..., None]
    cmy = 1 - np.divide(rgb, room, out=np.ones_like(rgb), where=room > 1e-6)
    cmyk = uint8_pixels(np.concatenate([cmy, k[..., None]], axis=2))
    unchanged = (uint8_pixels(rgb) == uint8_pixels(rgb_of_inks(inks))).all(axis=2)
    cmyk[unchanged] = inks[unchanged]
    return cmyk
