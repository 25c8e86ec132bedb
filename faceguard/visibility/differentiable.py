"""SSIMULACRA2 in torch: differentiable, batched, matching the reference to ~1e-6 (from
225 px; below, its weights laid out per scale).

SSIMULACRA2 (Jon Sneyers, Cloudinary, 2022; libjxl ``tools/ssimulacra2.cc``) scores
how visible a distortion is, in colour, on a 100-point scale: 90 is visually lossless
at 1:1, about 80 is JPEG quality 90-95, 70 high quality, 50 medium. Pipeline:

1. sRGB -> linear RGB -> XYB (the opsin colour space of JPEG XL), shifted positive.
2. Six scales, each half the size of the last (2x2 box average in linear RGB).
3. Per scale and XYB channel, with a Gaussian blur (sigma 1.5): an SSIM map without
   the luminance denominator (XYB is already perceptual), and an edge map comparing
   ``|x - blur(x)|`` of the two images: positive ratios are artifacts (ringing,
   blocking, added noise), negative ones lost detail (blur).
4. The mean and the 4-norm of each map: 108 features, weighted (the published weights,
   read from the reference package), then a fixed polynomial to the 0-100 scale.

This port follows the ``ssimulacra2`` PyPI package (BSD-3), the reference FaceGuard
validates against, down to its boundary handling: that package works on the image
transposed, so its blur pads the image's columns with zeros and mirrors its rows.
Scores below 0 are possible for severe distortions, as in the reference. One
departure, on images under 225 px only: the weights are laid out per scale (see
:func:`ssimulacra2`'s ``aligned``).

Shape:
    reference, distorted: (B, 3, H, W) sRGB in [0, 1], H and W >= 8.
    returns: (B,) scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import torch
import torch.nn.functional as F

from faceguard.device import constant_like

SCALES = 6
_C2 = 0.0009
_SIGMA = 1.5
_RADIUS = 5  # scipy's gaussian_filter at truncate 3.33, sigma 1.5
#: the most pixels a band of a scale's maps holds per plane, scored without gradients
#: (a 99-megapixel photo's face took 2.4 GB more to score in one band)
BAND_PIXELS = 2**21


@cache
def _constants() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(opsin matrix (3, 3), bias (3,), feature weights (108,)) in float64."""
    from ssimulacra2 import ssimulacra2 as reference

    return (torch.as_tensor(reference.kOpsinAbsorbanceMatrix, dtype=torch.float64).view(3, 3),
            torch.as_tensor(reference.kOpsinAbsorbanceBias, dtype=torch.float64),
            torch.as_tensor(reference.weights, dtype=torch.float64))


def _opsin_matrix() -> torch.Tensor:
    return _constants()[0]


def _opsin_bias() -> torch.Tensor:
    return _constants()[1].view(1, 3, 1, 1)


def _weights() -> torch.Tensor:
    return _constants()[2]


@cache
def _kernel() -> torch.Tensor:
    t = torch.arange(-_RADIUS, _RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * t**2 / _SIGMA**2)
    return g / g.sum()


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """The sRGB transfer curve, inverted: (..., 3, H, W) in [0, 1] -> linear light."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(1e-12) ** 2.4)


def linear_to_xyb(rgb: torch.Tensor) -> torch.Tensor:
    """Linear RGB (B, 3, H, W) -> positive XYB as SSIMULACRA2 uses it (X*14+0.42, Y+0.01,
    B-Y+0.55)."""
    bias = constant_like(_opsin_bias, rgb)
    mixed = torch.einsum("ij,bjhw->bihw", constant_like(_opsin_matrix, rgb), rgb) + bias
    # mixed >= bias > 0 for rgb >= 0, so the cube root's gradient stays finite
    mixed = mixed.clamp_min(float(_constants()[1][0])) ** (1 / 3) - bias ** (1 / 3)
    x, y = 0.5 * (mixed[:, 0] - mixed[:, 1]), 0.5 * (mixed[:, 0] + mixed[:, 1])
    return torch.stack([x * 14 + 0.42, y + 0.01, mixed[:, 2] - y + 0.55], 1)


def layout(x: torch.Tensor) -> torch.memory_format:
    """The memory layout the metric's planes are blurred in, on ``x``'s device.

    On a CPU, channels-last: the grouped convolutions of :func:`_blur` are 2-6x faster
    than in the default layout, and 3-6x faster than 11 shifted, weighted sums, forward
    and backward (torch 2.14, 2 cores, at 1400 and 481 px). On a GPU, the default: there
    a channels-last grouped convolution goes to cuDNN, which plans each new shape anew,
    and the optimiser scores a window of a new shape every step: on an H200 the penalty
    took 161 ms for a new shape in channels-last and 35 ms in the default layout, where
    torch runs its own depthwise kernel; 35 ms too with cuDNN off, as
    :func:`faceguard.device.pick_device` now leaves it (benchmarks/results/
    blur-shapes-cuda.json).
    """
    return torch.contiguous_format if x.is_cuda else torch.channels_last


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Gaussian blur, sigma 1.5: zero padding across columns, mirrored rows (see above).
    One grouped convolution per axis, in :func:`layout`."""
    top, bottom = x[..., :_RADIUS, :].flip(-2), x[..., -_RADIUS:, :].flip(-2)
    x = torch.cat([top, x, bottom], -2)  # scipy "reflect": the edge pixel repeats
    x = x.contiguous(memory_format=layout(x))
    k, c = constant_like(_kernel, x), x.shape[1]
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    # the convolution's own zero padding: no padded copy of the planes
    return F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, _RADIUS), groups=c)


def bands(inside: slice, height: int, width: int) -> list[tuple[int, int]]:
    """The bands of rows [lo, hi) that a scale's maps are computed in, splitting ``inside``
    (rows of a plane ``height`` rows tall and ``width`` pixels wide, over its images):
    one band when gradients are recorded, else bands of about :data:`BAND_PIXELS`."""
    lo, hi, _ = inside.indices(height)
    n = 1 if torch.is_grad_enabled() else max(1, -(-(hi - lo) * width // BAND_PIXELS))
    edges = [lo + (hi - lo) * i // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def by_bands(per_pixel: Callable[..., torch.Tensor], *images: torch.Tensor) -> torch.Tensor:
    """``per_pixel`` of (B, C, H, W) ``images``, a function of each pixel alone that
    returns (B, ..., H, W): without gradients, band by band of rows (:func:`bands`),
    so that its intermediate maps of a huge face take the memory of a small one's."""
    h, w = images[0].shape[-2:]
    parts = [per_pixel(*(x[..., lo:hi, :] for x in images))
             for lo, hi in bands(slice(None), h, images[0].shape[0] * w)]
    return parts[0] if len(parts) == 1 else torch.cat(parts, -2)


def _row_bands(crop: _Crop, plane: torch.Tensor) -> Iterator[tuple[slice, tuple, slice]]:
    """The bands of rows of ``crop.inner`` (:func:`bands`) on a scale's ``plane`` (its
    (B, C, h, w) XYB planes in ``crop.outer``), each as (the rows its blur reads in
    ``plane``, the band in those rows (..., rows, columns), the band's rows in
    ``crop.inner``). At the plane's edge the rows read stop at it, so the blur mirrors
    the same rows as on the whole plane; inside, the rows it reads are all there."""
    rows, cols = crop.inside[-2:]
    height = plane.shape[-2]
    top = rows.indices(height)[0]
    for lo, hi in bands(rows, height, plane.shape[0] * plane.shape[-1]):
        read = slice(max(lo - _RADIUS, 0), min(hi + _RADIUS, height))
        yield read, (..., slice(lo - read.start, hi - read.start), cols), slice(lo - top, hi - top)


def _sums(d: torch.Tensor) -> torch.Tensor:
    """(sum, sum of 4th powers) over the pixels of ``d`` (B, C, h, w): (2, B, C)."""
    d2 = d * d  # two squares: cheaper than a 4th power
    return torch.stack([d.sum((-2, -1)), (d2 * d2).sum((-2, -1))])


def _norms(sums: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, 4-norm) over ``count`` pixels from :func:`_sums` of every non-zero one:
    two (B, C)."""
    # the 4th root's gradient is infinite at 0 (identical images): keep it finite
    return sums[0] / count, (sums[1] / count + 1e-36) ** 0.25


def _features(a: torch.Tensor, mu_a: torch.Tensor, s_aa: torch.Tensor, lin_b: torch.Tensor,
              crop: _Crop) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One scale's 18 features per image, in the reference's order: per channel c,
    (ssim mean, ssim 4-norm), (artifact mean, artifact 4-norm), (lost mean, lost 4-norm).
    ``a``: the reference's XYB planes in ``crop.outer``; ``mu_a`` and ``s_aa``: their
    blurred mean and variance in ``crop.inner``; ``lin_b``: the distorted image's linear
    RGB in ``crop.outer``. The maps are summed band by band (:func:`bands`): a huge
    face scored without gradients needs the memory of a small one."""
    sums = 0
    for read, band, inner in _row_bands(crop, a):
        b, a_read = linear_to_xyb(lin_b[..., read, :]), a[..., read, :]
        # one blur call for the three planes: fewer, larger convolutions are faster on CPU
        mu_b, s_bb, s_ab = _blur(torch.cat([b, b * b, a_read * b], 1))[band].chunk(3, 1)
        a_band, b = a_read[band], b[band]
        mu, s = mu_a[..., inner, :], s_aa[..., inner, :]
        s_bb, s_ab = s_bb - mu_b**2, s_ab - mu * mu_b
        ssim = 1 - (1 - (mu - mu_b) ** 2) * (2 * s_ab + _C2) / (s + s_bb + _C2)
        edge = (1 + (b - mu_b).abs()) / (1 + (a_band - mu).abs()) - 1
        sums = sums + torch.stack([_sums(ssim.clamp_min(0)), _sums(edge.clamp_min(0)),
                                   _sums((-edge).clamp_min(0))])
    return [_norms(m, crop.pixels) for m in sums]


def _downsample(rgb: torch.Tensor) -> torch.Tensor:
    """2x2 box average; an odd last row or column averages what is there."""
    return F.avg_pool2d(rgb, 2, ceil_mode=True)


#: (x0, y0, x1, y1) in pixels: the box outside which a distorted image equals its reference
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class _Crop:
    """Where one scale's maps are computed. Every map is zero at a pixel whose blur sees
    no changed pixel, so only ``inner`` (the changed pixels grown by the blur's radius)
    is mapped, from ``outer`` (grown by twice that: what the blur of ``inner`` reads);
    ``inside`` is ``inner`` in ``outer``'s pixels and ``pixels`` the scale's whole count,
    over which the maps are averaged. At an image edge the crops stop at it, so the
    blur's padding is the same as on the whole image."""

    outer: tuple
    inner: tuple
    inside: tuple
    pixels: int


_WHOLE = (..., slice(None), slice(None))


def _crop(changed: Box | None, scale: int, size: tuple[int, int]) -> _Crop:
    """The crops of a scale of ``size`` (h, w) where an image changed in ``changed`` (in
    full-size pixels; the whole image when None)."""
    h, w = size
    if changed is None:
        return _Crop(_WHOLE, _WHOLE, _WHOLE, h * w)
    f = 2**scale  # a pixel of this scale averages f x f pixels from the top left
    x0, y0, x1, y1 = changed[0] // f, changed[1] // f, -(-changed[2] // f), -(-changed[3] // f)

    def grown(lo: int, hi: int, n: int, by: int) -> slice:
        return slice(max(lo - by, 0), min(hi + by, n))

    rows, cols = grown(y0, y1, h, _RADIUS), grown(x0, x1, w, _RADIUS)
    rows_out, cols_out = grown(y0, y1, h, 2 * _RADIUS), grown(x0, x1, w, 2 * _RADIUS)
    inside = (..., slice(rows.start - rows_out.start, rows.stop - rows_out.start),
              slice(cols.start - cols_out.start, cols.stop - cols_out.start))
    return _Crop((..., rows_out, cols_out), (..., rows, cols), inside, h * w)


def _clipped(changed: Box | None, shape: torch.Size) -> Box | None:
    if changed is None:
        return None
    h, w = shape[-2:]
    x0, y0 = min(max(int(changed[0]), 0), w), min(max(int(changed[1]), 0), h)
    return x0, y0, min(max(int(changed[2]), x0), w), min(max(int(changed[3]), y0), h)


def bounding_box(where: torch.Tensor) -> Box | None:
    """The smallest box (x0, y0, x1, y1) holding every true pixel of ``where`` (B, C, H, W)
    in any image and channel; None when there is none."""
    where = where.flatten(0, 1).any(0)  # (H, W)
    rows, cols = where.any(1).nonzero()[:, 0], where.any(0).nonzero()[:, 0]
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def changed_box(reference: torch.Tensor, distorted: torch.Tensor) -> Box:
    """The smallest box (x0, y0, x1, y1) holding every pixel where the two images
    (B, C, H, W) differ; an empty box at the origin when they are equal."""
    return bounding_box(reference != distorted) or (0, 0, 0, 0)


@dataclass
class Reference:
    """A reference image made ready for scoring: per scale, its XYB planes with their
    blurred means and variances. Scoring several distortions of one image (a bisection
    on how much change to keep, the JPEG equivalent) computes these once.

    Attributes:
        shape: the reference's (B, 3, H, W).
        scales: per scale, (XYB planes in the scale's outer crop, blurred mean and
            blurred variance in its inner crop: see :class:`_Crop`).
        changed: the box every image scored against it may change (None: anywhere).
    """

    shape: torch.Size
    scales: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    changed: Box | None = None


def prepare(reference: torch.Tensor, changed: Box | None = None,
            between: Callable[[], None] | None = None) -> Reference:
    """The reference side of :func:`ssimulacra2`, computed once; (B, 3, H, W) in [0, 1].
    With ``changed`` (x0, y0, x1, y1), only for images that differ from it in that box
    (e.g. the box a cloak may change), and only as far as their maps reach. ``between``
    as in :func:`ssimulacra2`."""
    if reference.ndim != 4 or reference.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) images, got {tuple(reference.shape)}")
    if min(reference.shape[-2:]) < 8:
        raise ValueError(f"SSIMULACRA2 needs at least 8x8 pixels, got {tuple(reference.shape)}")
    changed = _clipped(changed, reference.shape)
    lin, scales = srgb_to_linear(reference), []
    lin = lin.contiguous(memory_format=layout(lin))
    for scale in range(SCALES):
        if scale:
            if between is not None:
                between()
            lin = _downsample(lin)
        if min(lin.shape[-2:]) < 8:
            break
        crop = _crop(changed, scale, lin.shape[-2:])
        a = linear_to_xyb(lin[crop.outer])
        blurred = []  # mean and variance, band by band as in _features
        for read, band, _ in _row_bands(crop, a):
            part = a[..., read, :]
            mu, sq = _blur(torch.cat([part, part * part], 1))[band].chunk(2, 1)
            blurred.append(torch.cat([mu, sq - mu**2], 1))
        mu, var = (blurred[0] if len(blurred) == 1 else torch.cat(blurred, -2)).chunk(2, 1)
        scales.append((a, mu, var))
    return Reference(reference.shape, scales, changed)


def ssimulacra2(reference: torch.Tensor | Reference, distorted: torch.Tensor,
                aligned: bool = True, changed: Box | None = None,
                between: Callable[[], None] | None = None) -> torch.Tensor:
    """SSIMULACRA2 score of ``distorted`` against ``reference`` (see the module docstring).

    ``reference`` may be :func:`prepare`'s result, to score many images against one.
    Differentiable in both arguments; computed in the images' dtype (float64 agrees
    with the reference package to ~1e-6, float32 to ~1e-3 and is twice as fast).

    An image under 225 px on its short side has fewer than 6 scales, and the reference
    (libjxl and the package alike) then reads the weights in order as if it had 6: every
    channel's and scale's features take another's weight. The same cloaked face scored
    72 on a 232 px square and 84 on the 224 px square inside it; 112 px squares of three
    cloaked faces scored 89-92 where their features weighed as at 6 scales give 60-64
    (benchmarks/results/ssimulacra2-scales.json). With ``aligned`` (the default) each
    feature is weighed as its channel and scale are at 6 scales: the same score when
    there are 6, and one that does not jump with the region's size below (JPEG q90 of
    those faces scores 86-95 at every size, where the reference's weighing gives 46-82 at
    112 px while it gives the cloak 89-92). ``aligned=False`` is the reference's score.

    ``changed`` (x0, y0, x1, y1), or a reference prepared with it (not with another):
    ``distorted`` equals the reference outside that box (e.g. the box a cloak may
    change). Each scale's maps are then computed only within the blur's reach of it,
    since they are zero beyond: the same score to float rounding, in a fraction of the
    time when the box is a part of the image, and the same gradient on the pixels in the
    box (those outside get none).

    ``between`` is called before each scale after the first: a point where a cancelled
    job stops (a large face's scoring takes seconds, three quarters of it at scale 0).
    """
    ref = reference if isinstance(reference, Reference) else prepare(reference, changed)
    if changed is not None and _clipped(changed, ref.shape) != ref.changed:
        raise ValueError("this reference is prepared for another changed box: prepare it "
                         "with this one")
    if ref.shape != distorted.shape:
        raise ValueError(f"expected two (B, 3, H, W) images of one shape, got "
                         f"{tuple(ref.shape)} and {tuple(distorted.shape)}")
    weights = constant_like(_weights, distorted)
    lin_b = srgb_to_linear(distorted)
    lin_b = lin_b.contiguous(memory_format=layout(lin_b))
    per_scale = []
    for scale, (a, mu_a, s_aa) in enumerate(ref.scales):
        if scale:
            if between is not None:
                between()
            lin_b = _downsample(lin_b)
        crop = _crop(ref.changed, scale, lin_b.shape[-2:])
        per_scale.append(_features(a, mu_a, s_aa, lin_b[crop.outer], crop))
    # the reference's order: channel, scale, norm (mean / 4-norm), map (ssim, artifact, lost)
    terms = [per_scale[s][m][n][:, c] for c in range(3) for s in range(len(per_scale))
             for n in range(2) for m in range(3)]
    if aligned:  # the weights of these scales, laid out (channel, scale, norm, map)
        weights = weights.view(3, SCALES, 6)[:, : len(per_scale)].reshape(-1)
    total = (torch.stack(terms, -1).abs() * weights[: len(terms)]).sum(-1)
    total = total * 0.9562382616834844
    total = (2.326765642916932 * total - 0.020884521182843837 * total**2
             + 6.248496625763138e-05 * total**3)
    score = 100 - 10 * total.clamp_min(1e-12) ** 0.6276336467831387
    return score
