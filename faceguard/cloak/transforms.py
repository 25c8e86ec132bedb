"""Differentiable image transforms for expectation over transformation (``--robust``).

Athalye et al., "Synthesizing Robust Adversarial Examples" (2018): optimise the cloak
for the average over random transforms a photo meets on its way to a recognizer
(re-encoding, resizing, smoothing), so that it survives them. Every transform here
takes (B, 3, H, W) in [0, 1] and returns the same shape, differentiably.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from faceguard.device import constant_like

# JPEG's standard luminance and chrominance quantisation tables (ITU-T T.81, Annex K).
_Q_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
_Q_CHROMA = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
] + [99] * 32


@cache
def dct_matrix(size: int = 8) -> torch.Tensor:
    """(size, size) orthonormal DCT-II basis: ``d @ x`` transforms a column, ``d.T @ y``
    inverts it."""
    k = torch.arange(size, dtype=torch.float64)[:, None]
    n = torch.arange(size, dtype=torch.float64)[None]
    m = torch.cos(math.pi * (2 * n + 1) * k / (2 * size)) * math.sqrt(2 / size)
    m[0] /= math.sqrt(2)
    return m.float()


def _quant_table(quality: int, chroma: bool) -> torch.Tensor:
    """(8, 8) JPEG quantisation table of luma (or ``chroma``) at ``quality``, scaled as
    libjpeg scales it."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    q = torch.tensor(_Q_CHROMA if chroma else _Q_LUMA, dtype=torch.float32).view(8, 8)
    return ((q * scale + 50) / 100).floor().clamp(1, 255)


def _soft_round(x: torch.Tensor) -> torch.Tensor:
    """Rounding with a useful gradient: round(x) + (x - round(x))^3 (Shin & Song 2017)."""
    r = torch.round(x)
    return r + (x - r) ** 3


def jpeg(images: torch.Tensor, quality: int = 75) -> torch.Tensor:
    """Differentiable approximation of JPEG compression (4:2:0 chroma, standard tables).

    Shin & Song, "JPEG-resistant Adversarial Images" (2017). Close to a real encoder
    (PSNR to Pillow's output typically above 35 dB), with gradients.

    Args:
        images: (B, 3, H, W) RGB in [0, 1].
        quality: 1..100 as in libjpeg.
    """
    b, _, h, w = images.shape
    ph, pw = (-h) % 16, (-w) % 16
    x = F.pad(images, (0, pw, 0, ph), mode="replicate") * 255
    r, g, bl = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl
    y = _block_quantise(y - 128, constant_like(_quant_table, x, quality, False))
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
    chroma = _block_quantise(chroma.flatten(0, 1),
                             constant_like(_quant_table, x, quality, True)).view_as(chroma)
    cb, cr = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False).unbind(1)
    y = y + 128
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return (out[..., :h, :w] / 255).clamp(0, 1)


def _block_quantise(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(N, H, W) plane, H and W multiples of 8 -> DCT, quantise, dequantise, inverse DCT."""
    n, h, w = plane.shape
    d = constant_like(dct_matrix, plane)
    blocks = plane.view(n, h // 8, 8, w // 8, 8).transpose(2, 3)  # (n, hb, wb, 8, 8)
    coeffs = d @ blocks @ d.T
    coeffs = _soft_round(coeffs / table) * table
    return (d.T @ coeffs @ d).transpose(2, 3).reshape(n, h, w)


def blur_radius(sigma: float) -> int:
    """How far (pixels) :func:`gaussian_blur` reads around each pixel."""
    return max(1, math.ceil(3 * sigma))


Box = tuple[slice, slice]  # rows, cols


def grown(box: Box, reach: int, size: tuple[int, int]) -> Box:
    """``box`` grown by ``reach`` pixels on each side, within an image of ``size`` (h, w)."""
    return tuple(slice(max(0, part.start - reach), min(n, part.stop + reach))
                 for part, n in zip(box, size, strict=True))


def filtered_in(local: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                box: Box, reach: int) -> torch.Tensor | None:
    """``local(images)[..., box]`` from the pixels within ``reach`` of ``box`` alone: the
    same values for a filter that reads no farther than ``reach`` and reflects or pads at
    the image's edges (the window's other edges only touch what is cut away). None when
    the window is too thin to pad."""
    read = grown(box, reach, images.shape[-2:])
    if min(part.stop - part.start for part in read) <= reach:
        return None
    out = local(images[..., read[0], read[1]])
    return out[..., box[0].start - read[0].start:box[0].stop - read[0].start,
               box[1].start - read[1].start:box[1].stop - read[1].start]


#: images of at least this many pixels (per channel) are blurred by OpenCV on a CPU, when
#: no gradient is wanted: a huge face's change enlarged to full resolution took 1.9 s in
#: torch's convolution, 0.18 s in OpenCV's (a 4629x3409 crop, 2 cores; the same values
#: to 1e-9), and Cancel waited it out
OPENCV_BLUR_PIXELS = 1_000_000


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, reflect-padded; sigma in pixels."""
    radius = blur_radius(sigma)
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    if (images.device.type == "cpu" and images.dtype == torch.float32
            and images.shape[-2] * images.shape[-1] >= OPENCV_BLUR_PIXELS
            and not (torch.is_grad_enabled() and images.requires_grad)):
        import cv2

        kernel = k.numpy()
        return torch.stack([torch.from_numpy(np.atleast_3d(cv2.sepFilter2D(
            image.permute(1, 2, 0).contiguous().numpy(), -1, kernel, kernel,
            borderType=cv2.BORDER_REFLECT_101))).permute(2, 0, 1) for image in images])
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def resize_down_up(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Downscale by ``factor`` (< 1) with antialiasing, then back up (bilinear)."""
    h, w = images.shape[-2:]
    small = F.interpolate(images, size=(max(1, round(h * factor)), max(1, round(w * factor))),
                          mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def _luma() -> torch.Tensor:
    """(3,) BT.601 luma weights (as the audit's grey bilateral defense)."""
    return torch.tensor((0.299, 0.587, 0.114), dtype=torch.float64)


#: how far (pixels) :func:`bilateral` reads around each pixel, at its default diameter
BILATERAL_RADIUS = 4


def bilateral(images: torch.Tensor, diameter: int = 2 * BILATERAL_RADIUS + 1,
              sigma_color: float = 75 / 255, sigma_space: float = 75.0) -> torch.Tensor:
    """Differentiable bilateral filter of the luma, colour restored: the audit's
    ``bilateral`` defense (the restoration paper's Algorithm 1 with OpenCV's parameters)
    as a torch function, so a cloak can be optimised through it.

    Each pixel's luma becomes the mean of its disc of ``diameter`` pixels, weighted by
    distance (``sigma_space``, pixels) and by luma difference (``sigma_color``, in [0, 1]
    units); the change of luma is added to R, G and B alike (Tomasi and Manduchi 1998).
    Shape: (B, 3, H, W) -> (B, 3, H, W).
    """
    r = diameter // 2
    luma = constant_like(_luma, images)
    y = torch.einsum("bchw,c->bhw", images, luma)[:, None]
    padded = F.pad(y, (r, r, r, r), mode="reflect")
    filtered = _BilateralLuma.apply(padded, r, 1 / (2 * sigma_color**2), sigma_space)
    return (images + (filtered - y)).clamp(0, 1)


def _disc(r: int, sigma_space: float) -> list[tuple[int, int, float]]:
    """(dy, dx, spatial weight) of each neighbour in OpenCV's disc of radius ``r``."""
    return [(dy, dx, math.exp(-(dy * dy + dx * dx) / (2 * sigma_space**2)))
            for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= r * r]


class _BilateralLuma(torch.autograd.Function):
    """The bilateral mean of a luma plane, from the plane padded by ``r`` on each side:
    (B, 1, H + 2r, W + 2r) -> (B, 1, H, W).

    One shifted neighbour at a time, summed as it goes (on a CPU 12x faster than unfolding
    every neighbour into one tensor), and a backward pass of its own that computes each
    neighbour's weight again instead of keeping it: 1.6-1.9x faster, forward and
    backward, than torch's autograd through the same loop (2 cores, a 380 x 260 face),
    with the same gradient to 1e-15 in float64. With f = sum w s / sum w and
    w = c exp(-k (s - y)^2): df/ds = w (1 - 2k (s - f)(s - y)) / sum w for each
    neighbour s, and df/dy = sum 2k w (s - f)(s - y) / sum w for the centre y.
    """

    @staticmethod
    def forward(ctx, padded: torch.Tensor, r: int, k: float, sigma_space: float) -> torch.Tensor:
        h, w = padded.shape[-2] - 2 * r, padded.shape[-1] - 2 * r
        y = padded[..., r:r + h, r:r + w]
        num, den = torch.zeros_like(y), torch.zeros_like(y)
        for dy, dx, space in _disc(r, sigma_space):
            s = padded[..., r + dy:r + dy + h, r + dx:r + dx + w]
            d = s - y
            weight = torch.exp(d * d * -k).mul_(space)
            num.addcmul_(weight, s)
            den.add_(weight)
        filtered = num / den
        ctx.save_for_backward(padded, filtered, den)
        ctx.constants = r, k, sigma_space
        return filtered

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        padded, filtered, den = ctx.saved_tensors
        r, k, sigma_space = ctx.constants
        h, w = filtered.shape[-2:]
        y = padded[..., r:r + h, r:r + w]
        per_den = grad / den
        out, centre = torch.zeros_like(padded), torch.zeros_like(y)
        for dy, dx, space in _disc(r, sigma_space):
            s = padded[..., r + dy:r + dy + h, r + dx:r + dx + w]
            d = s - y
            a = torch.exp(d * d * -k).mul_(space).mul_(per_den)  # w / sum w, times grad
            t = (s - filtered).mul_(d).mul_(2 * k).mul_(a)
            out[..., r + dy:r + dy + h, r + dx:r + dx + w].add_(a - t)
            centre.add_(t)
        out[..., r:r + h, r:r + w].add_(centre)
        return out, None, None, None


def bilateral_sr(images: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Differentiable copy of the audit's strongest defense, BL+SR (the restoration
    paper's Algorithm 1): :func:`bilateral`, a shrink by ``scale`` (bicubic, antialiased),
    then Real-ESRGAN's compact network back up (:mod:`faceguard.audit.compact_sr`, the
    same function as the audit's ncnn one) and a bicubic resize to the exact size.
    Shape: (B, 3, H, W) -> (B, 3, H, W)."""
    from faceguard.audit.compact_sr import super_resolve

    h, w = images.shape[-2:]
    small = F.interpolate(bilateral(images), size=(max(1, round(h / scale)),
                                                   max(1, round(w / scale))),
                          mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    up = super_resolve(small, scale)
    if up.shape[-2:] == (h, w):
        return up
    return F.interpolate(up, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


class RandomTransform:
    """One random transform per call: JPEG q 60-90, blur sigma 0.3-0.7, resize 0.7-0.95,
    or none.

    Milder than the guide's first mix (q 50-90, blur up to 1.0, resize down to 0.5):
    on celeb24 the strong mix cost white-box protection of the 112 px mobileface
    (83% vs 96%) without helping after JPEG q75; this one keeps both (see
    benchmarks/results/protection.json). ``seed`` makes it reproducible.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def __repr__(self) -> str:
        return "RandomTransform(jpeg q60-90 | blur 0.3-0.7 | resize 0.7-0.95 | none)"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        kind = self.rng.randrange(4)
        if kind == 0:
            return jpeg(images, self.rng.randint(60, 90))
        if kind == 1:
            return gaussian_blur(images, self.rng.uniform(0.3, 0.7))
        if kind == 2:
            return resize_down_up(images, self.rng.uniform(0.7, 0.95))
        return images
