"""Where the cloak may change pixels, and how much: the per-pixel budget weight.

The weight (1, 1, h, w) in [0, 1] multiplies the L-inf budget eps. It is a feathered
ellipse over the face (nothing outside the face changes, and there is no visible
seam), optionally shaped by local texture: more of the budget where the eye does not
see it (hair, beard, skin texture), less on flat smooth areas.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faceguard.align import feather_mask
from faceguard.detect import Face
from faceguard.regions import Region


def face_weight(face: Face, region: Region, feather: float = 0.2,
                grow: tuple[float, float] = (1.05, 1.15)) -> torch.Tensor:
    """(1, 1, h, w) feathered ellipse over the face, in region pixels.

    Args:
        feather: soft-edge width as a fraction of the ellipse's half-size.
        grow: ellipse half-axes relative to the half box (x, y): a little wider than
            the box, and taller to include forehead and chin.
    """
    rx0, ry0, rx1, ry1 = region
    x0, y0, x1, y1 = face.box
    cx, cy = (x0 + x1) / 2 - rx0, (y0 + y1) / 2 - ry0
    ax, ay = grow[0] * (x1 - x0) / 2, grow[1] * (y1 - y0) / 2
    h, w = ry1 - ry0, rx1 - rx0
    # an ellipse mask on its bounding square, pasted at the face centre
    mask = feather_mask(max(2, round(2 * ay)), max(2, round(2 * ax)), feather=feather / 2)
    out = torch.zeros(1, 1, h, w)
    top, left = round(cy - ay), round(cx - ax)
    mh, mw = mask.shape[-2:]
    ys, xs = slice(max(0, top), min(h, top + mh)), slice(max(0, left), min(w, left + mw))
    out[..., ys, xs] = mask[..., ys.start - top: ys.stop - top, xs.start - left: xs.stop - left]
    return out


def texture_weight(image: torch.Tensor, strength: float = 0.5, size: int = 7) -> torch.Tensor:
    """(B, 1, H, W) in [1 - strength, 1]: lower where the image is locally flat.

    Local contrast is the standard deviation of luminance in a ``size`` window,
    relative to its 75th percentile over the image; flat areas (cheeks, forehead)
    get ``1 - strength``, textured ones (hair, eyes, beard) 1.
    """
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    grey = (0.299 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2])[:, None]
    pad = size // 2
    mean = F.avg_pool2d(F.pad(grey, [pad] * 4, mode="reflect"), size, stride=1)
    sq = F.avg_pool2d(F.pad(grey**2, [pad] * 4, mode="reflect"), size, stride=1)
    std = (sq - mean**2).clamp_min(0).sqrt()
    ref = torch.quantile(std.flatten(1), 0.75, dim=1).clamp_min(1e-3)[:, None, None, None]
    return 1 - strength + strength * (std / ref).clamp(0, 1)
