"""Colour difference in torch: sRGB to CIELAB, and CIEDE2000.

CIEDE2000 (CIE 142-2001; the formulas as Sharma, Wu and Dalal state them, "The
CIEDE2000 color-difference formula: implementation notes", Color Research &
Application 30(1), 2005) says how different two colours look: about 2.3 is just
noticeable side by side. FaceGuard measures every cloak with it and caps how much a
pixel's lightness may change by it (:func:`faceguard.cloak.budget.lightness_weight`),
both on a large face's million pixels: in torch it runs on every core (and a GPU), where
scikit-image's numpy version took seconds per face. The conversion follows
scikit-image's ``rgb2lab`` (D65 white, 2-degree observer), and a test keeps the two
together.

Shape: images (B, 3, H, W) sRGB in [0, 1]; Lab (B, 3, H, W); differences (B, H, W).
"""

from __future__ import annotations

import math

import torch

from faceguard.device import constant_like
from faceguard.visibility.differentiable import by_bands, srgb_to_linear


def _xyz_from_rgb() -> torch.Tensor:
    """(3, 3) linear sRGB -> CIE XYZ (D65), as scikit-image uses it."""
    return torch.tensor(((0.412453, 0.357580, 0.180423),
                         (0.212671, 0.715160, 0.072169),
                         (0.019334, 0.119193, 0.950227)), dtype=torch.float64)


def _white() -> torch.Tensor:
    """(1, 3, 1, 1) the D65 white point (2-degree observer) in XYZ."""
    return torch.tensor((0.95047, 1.0, 1.08883), dtype=torch.float64).view(1, 3, 1, 1)


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> CIELAB (L in 0-100; a, b about -128-127)."""
    matrix, white = constant_like(_xyz_from_rgb, rgb), constant_like(_white, rgb)
    xyz = torch.einsum("ij,bjhw->bihw", matrix, srgb_to_linear(rgb)) / white
    # the cube root, with the linear segment near black that keeps its slope finite
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0.008856) ** (1 / 3), 7.787 * xyz + 16 / 116)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 of two (B, 3, H, W) CIELAB images -> (B, H, W)
    (kL = kC = kH = 1); without gradients, band by band
    (:func:`faceguard.visibility.differentiable.by_bands`)."""
    return by_bands(_ciede2000, lab1, lab2)


def _ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    (l1, a1, b1), (l2, a2, b2) = lab1.unbind(1), lab2.unbind(1)
    # a* stretched for near-neutral colours (the G factor), then chroma and hue
    c_bar7 = ((torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - torch.sqrt(c_bar7 / (c_bar7 + 25.0**7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)
    c1, c2 = torch.hypot(a1, b1), torch.hypot(a2, b2)
    h1 = torch.atan2(b1, a1) % (2 * math.pi)
    h2 = torch.atan2(b2, a2) % (2 * math.pi)
    neutral = (c1 * c2) == 0  # a hue is undefined for a grey: it adds nothing

    dl, dc = l2 - l1, c2 - c1
    dh = h2 - h1
    dh = (dh + math.pi) % (2 * math.pi) - math.pi  # the shorter way round the hue circle
    dh = torch.where(neutral, torch.zeros_like(dh), dh)
    dh_big = 2 * torch.sqrt(c1 * c2) * torch.sin(dh / 2)

    l_bar, c_bar = (l1 + l2) / 2, (c1 + c2) / 2
    h_sum = h1 + h2
    h_bar = torch.where((h1 - h2).abs() <= math.pi, h_sum / 2,
                        torch.where(h_sum < 2 * math.pi, (h_sum + 2 * math.pi) / 2,
                                    (h_sum - 2 * math.pi) / 2))
    h_bar = torch.where(neutral, h_sum, h_bar)

    deg = math.pi / 180
    t = (1 - 0.17 * torch.cos(h_bar - 30 * deg) + 0.24 * torch.cos(2 * h_bar)
         + 0.32 * torch.cos(3 * h_bar + 6 * deg) - 0.20 * torch.cos(4 * h_bar - 63 * deg))
    rotation = 30 * deg * torch.exp(-(((h_bar / deg) - 275) / 25) ** 2)
    c_bar7 = c_bar**7
    r_t = -2 * torch.sqrt(c_bar7 / (c_bar7 + 25.0**7)) * torch.sin(2 * rotation)
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / torch.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * c_bar
    s_h = 1 + 0.015 * c_bar * t
    l_term, c_term, h_term = dl / s_l, dc / s_c, dh_big / s_h
    return torch.sqrt((l_term**2 + c_term**2 + h_term**2 + r_t * c_term * h_term).clamp_min(0))


#: the face's colour change is the CIEDE2000 of its pixels at this quantile: what the
#: manifest reports and the colour limit holds (a few pixels may go past it)
PERCENTILE = 0.95


def face_change(differences: torch.Tensor) -> float:
    """The face's colour change: per-pixel CIEDE2000 ``differences`` (any shape) at their
    95th percentile (linear interpolation), one figure for the manifest and the limit."""
    return float(torch.quantile(differences.flatten().float(), PERCENTILE))


def colour_difference(original: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 of two (B, 3, H, W) sRGB images in [0, 1] -> (B, H, W);
    without gradients, band by band (the two CIELAB images and the thirty-odd maps of
    a 99-megapixel photo's face took 2.5 GB at once)."""
    return by_bands(lambda a, b: _ciede2000(srgb_to_lab(a), srgb_to_lab(b)), original, changed)
