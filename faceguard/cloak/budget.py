"""Where the cloak may change pixels, and how much: the per-pixel budget weight.

The weight (1, 1, h, w) in [0, 1] multiplies the L-inf budget eps. It is a feathered
ellipse over the face (nothing outside the face changes, and there is no visible
seam), optionally shaped by local texture: more of the budget where the eye does not
see it (hair, beard, skin texture), less on flat smooth areas.

:func:`keep_visible` is the last word on any cloak: it scales the change down until the
face, rounded to 8 bits as it will be saved, keeps its visibility floor and its colour
limit, both as a JPEG or WebP file shows it (:mod:`faceguard.io.lossy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from faceguard.align import feather_mask
from faceguard.cloak.transforms import Box
from faceguard.face import Face
from faceguard.io.lossy import Lossy
from faceguard.regions import Region


def face_weight(face: Face, region: Region, feather: float = 0.2,
                grow: tuple[float, float] = (1.05, 1.15)) -> torch.Tensor:
    """(1, 1, h, w) feathered ellipse over the face, in region pixels.

    Args:
        feather: soft-edge width as a fraction of the ellipse's half-size.
        grow: ellipse half-axes relative to the half box (x, y): a little wider than
            the box, and taller to include forehead and chin (wider for a face on its
            side, :attr:`Face.orientation`).
    """
    rx0, ry0, rx1, ry1 = region
    x0, y0, x1, y1 = face.box
    if face.orientation == "on its side":  # the forehead and chin lie left and right
        grow = grow[::-1]
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


@dataclass(frozen=True)
class Seen:
    """The face region as the visibility guard scored it at the change it keeps: whoever
    measures the same pixels later need not score them again (a 12-megapixel photo's face
    takes about a second a scoring).

    Attributes:
        box: (x0, y0, x1, y1) the region scored, in the pixels of the images the guard was
            given (:meth:`moved` puts it in a photo's).
        pixels: (h, w, 3) float32, the region as scored (rounded to 8 bits).
        ssimulacra2: its score against the original.
    """

    box: tuple[int, int, int, int]
    pixels: np.ndarray
    ssimulacra2: float

    def moved(self, dx: int, dy: int) -> Seen:
        x0, y0, x1, y1 = self.box
        return replace(self, box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy))


def keep_visible(original: torch.Tensor, cloaked: torch.Tensor, floor: float,
                 face: tuple[int, int, int, int] | None = None, colour: float | None = None,
                 on_try: Callable[[], None] | None = None, saved: Lossy | None = None,
                 origin: tuple[int, int] = (0, 0)) -> tuple[torch.Tensor, Seen | None]:
    """``original + a * (cloaked - original)`` with :func:`visible_scale`'s ``a``: the
    change as large as the face's visibility limits allow; ``cloaked`` itself when it
    keeps them. Shape: (1, C, h, w) in [0, 1] (C = 1 or 3). Also returns what the guard
    saw of the face at that ``a`` (None when it scored nothing there)."""
    a, seen = visible_scale(original, cloaked, floor, face, colour, on_try, saved=saved,
                            origin=origin)
    return _scaled(original, cloaked, a), seen


def _scaled(original: torch.Tensor, cloaked: torch.Tensor, a: float) -> torch.Tensor:
    """The change scaled by ``a``; the guard scores exactly these pixels."""
    return cloaked if a == 1 else original + a * (cloaked - original)


def visible_scale(original: torch.Tensor, cloaked: torch.Tensor, floor: float,
                  face: tuple[int, int, int, int] | None = None, colour: float | None = None,
                  on_try: Callable[[], None] | None = None, tries: int = 7,
                  tolerance: float = 0.5, saved: Lossy | None = None,
                  origin: tuple[int, int] = (0, 0)) -> tuple[float, Seen | None]:
    """The largest ``a`` in [0, 1] found for which ``original + a * (cloaked - original)``,
    rounded to 8 bits, keeps the face's SSIMULACRA2 >= ``floor`` (a bracketed search on
    ``a``: it stops once the score is within ``tolerance`` points above the floor) and,
    with ``colour``, its colour change within it (:func:`within_colour`, in the file too
    with ``saved``); with it the face as scored at that ``a`` (:class:`Seen`; None where
    it was not scored).

    Args:
        original, cloaked: (1, C, h, w) in [0, 1] (C = 1 or 3).
        floor: the least SSIMULACRA2 (see :mod:`faceguard.visibility`).
        face: (x0, y0, x1, y1) the region scored, in these pixels; all of it if None.
        colour: the most the face's colour may change at its 95th percentile, in
            CIEDE2000 units (what :func:`faceguard.visibility.measure_face` reports).
        on_try: called before each scoring and between its scales (a large face takes
            seconds a scoring): a point where a cancelled job stops.
        tries: the most scorings of the search, after the full change (and, with
            ``saved``, the compression alone) scored too visible.
        saved: how the photo is saved, when that loses detail (JPEG, lossy WebP): the
            face is scored as the file will show it, its compression's loss included
            (the part around it cut on the format's block grid, which ``origin``, the
            images' top-left (x, y) in the photo, places, with its alpha). Where the
            compression alone leaves the face less than ``tolerance`` above the floor,
            no cloak could be kept there: the floor is then the cloak's own, before
            saving (the caller says the file's score).
    """
    from faceguard.visibility.differentiable import changed_box, prepare, ssimulacra2

    x0, y0, x1, y1 = box = face or (0, 0, original.shape[-1], original.shape[-2])
    if min(x1 - x0, y1 - y0) < 8:
        return 1.0, None
    # the part scaled: the face, or around it the whole blocks its file codes it in
    gx0, gy0, gx1, gy1 = (box if saved is None else
                          saved.grid_box(box, origin, (original.shape[-1], original.shape[-2])))
    part = (slice(gy0, gy1), slice(gx0, gx1))
    if saved is not None:  # the part's place in the photo (its alpha)
        saved = saved.part_at(origin[0] + gx0, origin[1] + gy0)
    face_in_part = (slice(y0 - gy0, y1 - gy0), slice(x0 - gx0, x1 - gx0))
    original, cloaked = original[..., part[0], part[1]], cloaked[..., part[0], part[1]]
    face_only = original[..., face_in_part[0], face_in_part[1]]
    delta = cloaked - original
    tried = on_try or (lambda: None)
    tried()  # a huge face's colour measure and scoring take seconds each: a stop before
    top = 1.0 if colour is None else within_colour(original, delta, colour, face_in_part,
                                                   saved)
    tried()
    with torch.no_grad():  # the original's side of the score, once for every try, and
        # only around the pixels the cloak changed (a large face's change covers ~70% of
        # the face region scored: a scoring in 0.6 of the time, the same score); a lossy
        # file changes every pixel
        ref = prepare(eight_bit(face_only).expand(-1, 3, -1, -1), None if saved else
                      changed_box(face_only, cloaked[..., face_in_part[0], face_in_part[1]]),
                      between=tried)
    kept: list[Seen] = []  # the last change that kept the floor, as scored
    least = floor + (saved.margin if saved else 0.0)  # the score that keeps the floor
    ceiling = 100.0  # the score without the cloak

    def seen(a: float) -> float:
        tried()
        x = eight_bit(_scaled(original, cloaked, a * top))
        if saved is not None:
            x = _as_saved(x, saved)
        x = x[..., face_in_part[0], face_in_part[1]].expand(-1, 3, -1, -1)
        with torch.no_grad():
            s = float(ssimulacra2(ref, x, between=tried))
        if s >= least:
            kept[:] = [Seen(box, x[0].permute(1, 2, 0).cpu().numpy(), s)]
        return s

    s_hi = seen(1.0)
    if s_hi >= least:
        return top, kept[0]
    if saved is not None:
        ceiling = seen(0.0)  # what the file's compression alone leaves
        if ceiling < least + tolerance:  # no room for a cloak in the file: the floor is
            saved, least, ceiling = None, floor, 100.0  # the cloak's own, before saving
            kept.clear()
            s_hi = seen(1.0)
            if s_hi >= least:
                return top, kept[0]
    lo, s_lo, hi = 0.0, ceiling, 1.0
    for _ in range(tries):
        # ceiling - score grows about as a^p (SSIMULACRA2 ends by raising its error sum
        # to the power 0.63): solving that model for the floor (plus half the tolerance)
        # finds it in 1-2 scorings where halving takes 7, and a large face costs seconds
        # per scoring. The guess stays inside the bracket, so the bracket always shrinks.
        p = 0.63
        if 0 < lo and s_lo < ceiling and s_hi < s_lo:
            p = math.log((ceiling - s_hi) / (ceiling - s_lo)) / math.log(hi / lo)
        target = min(least + tolerance / 2, ceiling - 0.01)
        mid = hi * ((ceiling - target) / max(ceiling - s_hi, 1e-9)) ** (1 / max(p, 0.1))
        mid = min(max(mid, lo + (hi - lo) / 16), hi - (hi - lo) / 16)
        s = seen(mid)
        if s < least:
            hi, s_hi = mid, s
        else:
            lo, s_lo = mid, s
            if s - least < tolerance:
                break
    return lo * top, kept[0] if kept else None


def within_colour(original: torch.Tensor, delta: torch.Tensor, colour: float,
                  face: tuple[slice, slice] | None = None, saved: Lossy | None = None,
                  tries: int = 6) -> float:
    """The largest scale ``a`` in [0, 1] found for which the 95th percentile of the
    CIEDE2000 colour change from ``original`` to ``original + a * delta``, both rounded
    to 8 bits, is at most ``colour`` over the ``face`` (rows, cols; all of it if None),
    and with ``saved`` in the file as well, its compression's loss included.

    The per-pixel lightness cap (:func:`lightness_weight`) lets a pixel go a little past
    ``colour`` (see :data:`LIGHTNESS_HEADROOM`); this keeps the face as a whole within
    it. The change grows about linearly with ``a``, so each try scales ``a`` by the ratio
    of the limit to what was measured (one or two tries); 0 if that never gets there.
    In the file, the compression adds a change of its own that ``a`` does not scale, and
    the two add about as independent noises do (their squares): the ratio is of what
    is left of the limit that way. Where the compression alone leaves less than
    :data:`COLOUR_ROOM` of it, or no ``a`` is found there, the limit is the cloak's own,
    before saving (the face's line then says the file's figure), as for the floor.

    Shape: original, delta (1, C, h, w), C = 1 or 3: with ``saved``, the part of the
    photo cut on its block grid around the face.
    """
    from faceguard.visibility.colour import ciede2000, face_change, srgb_to_lab

    face = face or (slice(None), slice(None))
    with torch.no_grad():  # the original's side, once for every try
        base = srgb_to_lab(eight_bit(original[..., face[0], face[1]]).expand(-1, 3, -1, -1))

    def p95(a: float, file: bool) -> float:
        x = eight_bit(original + a * delta)
        x = (_as_saved(x, saved) if file else x)[..., face[0], face[1]]
        with torch.no_grad():
            return face_change(ciede2000(base, srgb_to_lab(x.expand(-1, 3, -1, -1))))

    def largest(start: float, file: bool) -> float | None:
        own = p95(0.0, True) if file else 0.0  # what the compression alone changes
        if colour ** 2 - own ** 2 < (COLOUR_ROOM * colour) ** 2:
            return None
        a = start
        for _ in range(tries):
            seen = p95(a, file)
            if seen <= colour:
                return a
            a *= 0.99 * math.sqrt((colour ** 2 - own ** 2) / (seen ** 2 - own ** 2))
        return None

    before = largest(1.0, False) or 0.0
    if saved is None or before == 0:
        return before
    return largest(before, True) or before


#: the share of the colour limit the file's compression must leave for the cloak (the
#: two added as their squares), for the limit to be kept as the file shows the face
#: (else it is kept before saving): a compression that changes the colour by 97% of the
#: limit leaves a quarter of it
COLOUR_ROOM = 0.25


def eight_bit(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


def _as_saved(x: torch.Tensor, saved: Lossy) -> torch.Tensor:
    """(1, C, h, w) on 8-bit levels -> (1, 3, h, w) as a file ``saved`` so shows them."""
    pixels = (x[0].detach().expand(3, -1, -1).permute(1, 2, 0) * 255).round().byte()
    shown = saved(pixels.cpu().numpy())
    return torch.from_numpy(shown).permute(2, 0, 1)[None].to(x)


#: a pixel's lightness may change by this many times the face's colour limit, which holds
#: at the face's 95th percentile (:func:`within_colour` has the last word). On 117 celeb24
#: probes at ``balanced`` (limit 3.0), white-box protection at FAR 1% went from 97 / 97 / 97%
#: with a hard per-pixel cap of 2.8 to 100 / 99 / 98%, and faceres never seen from 42 to 56%
#: (benchmarks/results/protection-colour.json against protection-default.json)
LIGHTNESS_HEADROOM = 1.13


def changing_box(weight: torch.Tensor) -> Box | None:
    """The rows and columns of the smallest box holding every pixel where ``weight``
    ((B, 1, H, W), any face) is non-zero: the only pixels a cloak may change; None when
    there are none."""
    from faceguard.visibility.differentiable import bounding_box

    box = bounding_box(weight > 0)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return slice(y0, y1), slice(x0, x1)


def limit_lightness(weight: torch.Tensor, image: torch.Tensor, eps: float, delta_e: float
                    ) -> torch.Tensor:
    """``weight`` (B, 1, H, W) times :func:`lightness_weight` of ``image`` (B, C, H, W),
    computed only in :func:`changing_box`: it is per pixel, and on a 12-megapixel photo's
    face region (4 megapixels, 40% of them in the box) each pass costs seconds."""
    box = changing_box(weight)
    if box is None:
        return weight
    out = torch.zeros_like(weight)
    out[..., box[0], box[1]] = (weight[..., box[0], box[1]]
                                * lightness_weight(image[..., box[0], box[1]], eps, delta_e))
    return out


def lightness_weight(image: torch.Tensor, eps: float, delta_e: float) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1]: the share of ``eps`` a pixel may change so that a change
    of its brightness (luma: the same step on R, G and B) moves its colour by at most
    :data:`LIGHTNESS_HEADROOM` times ``delta_e``, the face's colour limit in CIEDE2000
    units (2.3 is just noticeable side by side).

    The slope of CIEDE2000 along the luma direction is measured per pixel, in its own
    colour (a step of 2 grey levels up and down, the steeper one counts): mid-greys
    allow about 7 grey levels at 2.5 units, lights and darks more. A chroma budget of the
    colour guard (none by default: :data:`faceguard.cloak.base.CHROMA`) would add on top.
    """
    from faceguard.visibility.colour import ciede2000, srgb_to_lab

    with torch.no_grad():
        rgb = image[:, :3].detach().clamp(0, 1)
        lab = srgb_to_lab(rgb)
        step = 2 / 255
        slope = torch.maximum(ciede2000(lab, srgb_to_lab((rgb + step).clamp(0, 1))),
                              ciede2000(lab, srgb_to_lab((rgb - step).clamp(0, 1)))) / step
    cap = LIGHTNESS_HEADROOM * delta_e
    return (cap / slope.clamp_min(1e-6) / eps).clamp(0, 1)[:, None].to(image)
