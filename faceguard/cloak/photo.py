"""Cloaking the faces of one photo at full resolution.

The cloak is optimised in the photo's own pixels: a region around the face is cut
from the full-resolution photo, the objective aligns it for each recognizer through
the differentiable warp, and the cloak method changes the region's pixels within
``eps * weight`` (feathered face ellipse, optionally texture-shaped).

Faces much larger than any recognizer's input (a 1000 px face in a 12 MP photo;
models see 112-224 px) are optimised at a working scale where the face is
:data:`WORK_PX` wide, about 1.5x finer than the face in the finest model input. The
change is brought back to full resolution with a smooth bilinear upsampling, blurred
more the more it was enlarged (:func:`enlarged_blur`), then clipped to the
full-resolution budget. Optimising every full-resolution pixel would cost ~10x more per
step and, with sign or Adam steps, leave blocky or grainy patterns instead of a smooth
one. Nothing is computed at model resolution (112 px) and pasted back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from faceguard import regions
from faceguard.cloak.base import Cloak, Objective, cloak_grey, project
from faceguard.cloak.budget import (
    Seen,
    changing_box,
    face_weight,
    keep_visible,
    limit_lightness,
    texture_weight,
    visible_scale,
)
from faceguard.cloak.transforms import Box, blur_radius, filtered_in, gaussian_blur
from faceguard.face import Face
from faceguard.models.ensemble import Ensemble
from faceguard.progress import StepCallback, no_steps
from faceguard.regions import FaceRegion, Region, paste

if TYPE_CHECKING:
    from faceguard.cloak.universal import UniversalMask
    from faceguard.io.lossy import Lossy

__all__ = ["WORK_PX", "FaceCrop", "cloak_face", "crop_face", "face_in", "keep_faces_visible",
           "mask_face", "paste", "reached_by_others", "working_view"]

#: faces wider than this (pixels) are optimised at a scale where they are this wide (336
#: before: every per-pixel part of a step, the visibility penalty and the purification levers'
#: filters, costs in proportion to its square; benchmarks/results/speed-stages.json)
WORK_PX = 224


#: about the face's width in the finest recognizer input (faceres's 224 px crop): no
#: recognizer sees detail finer than ``face width / MODEL_FACE_PX`` full-resolution
#: pixels, the most an enlarged change is blurred by (:func:`enlarged_blur`)
MODEL_FACE_PX = 150


def enlarged_blur(face_px: float, work_px: int = WORK_PX) -> float:
    """The Gaussian sigma, in full-resolution pixels, that smooths the change of a face
    ``face_px`` wide optimised where it is ``work_px`` wide: a third of the finest
    recognizer's pixel (``face_px / MODEL_FACE_PX``) for a face enlarged up to 1.5x,
    growing to one such pixel at 2.5x and beyond (at the default working scale, 0.5 and
    1.5 working pixels).

    Enlarged, the working scale's pixel-to-pixel grain becomes blobs that SSIMULACRA2 at
    full resolution sees on smooth skin: on the album's 1080-px face (benchmarks/
    large_face.py) a blur of one recognizer pixel took the full-resolution score before
    the floor from 54 to 72, so that keeping the floor scaled the change by 0.88 instead
    of 0.58. Blurred as much, a face enlarged a little (the album's 250-300 px faces) lost
    a fifth of the distance the cloak had reached at the working scale (faceres 0.93 ->
    0.74 threshold units on one) while its score stayed above the floor; at a third it
    keeps almost all of it (0.89), and the floor still holds. On the album's photos
    white-box protection went from 71 / 60 / 37% to 80 / 66 / 49%
    (benchmarks/results/protection-album-blur.json).
    """
    share = (face_px / work_px - 1) / 1.5
    return min(1.0, max(1 / 3, share)) * face_px / MODEL_FACE_PX


@dataclass
class FaceCrop(FaceRegion):
    """A face's region (:class:`faceguard.regions.FaceRegion`) with the cloak's budget."""

    weight: torch.Tensor  # (1, 1, h, w) budget weight in [0, 1]
    seen: Seen | None = None  # the face as the visibility guard last scored it, in photo pixels


def crop_face(photo: torch.Tensor, face: Face, ensemble: Ensemble | None = None,
              texture: float = 0.0) -> FaceCrop:
    """Cut the region a face is cloaked in from a (1, 3, H, W) photo, with its budget
    weight (feathered face ellipse, texture-shaped when ``texture`` > 0)."""
    crop = regions.crop_face(photo, face, ensemble)
    weight = face_weight(face, crop.region).to(photo)
    if texture > 0:
        weight = weight * texture_weight(crop.pixels, texture)
    return FaceCrop(crop.region, crop.pixels, crop.landmarks, weight)


def cloak_face(
    photo: torch.Tensor,
    face: Face,
    cloak: Cloak,
    ensemble: Ensemble,
    objective_for: Callable[[np.ndarray], Objective],
    texture: float = 0.0,
    generator: torch.Generator | None = None,
    grey: bool = False,
    work_px: int = WORK_PX,
    floor: float | None = None,
    delta_e: float | None = None,
    on_step: StepCallback | None = None,
    start_for: Callable[[FaceCrop], torch.Tensor] | None = None,
    in_place: bool = False,
    saved: Lossy | None = None,
) -> tuple[torch.Tensor, FaceCrop]:
    """Cloak one face of a photo.

    Args:
        photo: (1, 3, H, W) in [0, 1], full resolution.
        face: the face to cloak.
        cloak: the method (FGSM, PGD, ...).
        ensemble: the recognizers the objective uses (they fix the region's extent).
        objective_for: landmarks in region pixels (5, 2) -> the objective to increase.
        texture: strength of texture shaping of the budget (0 = flat budget).
        grey: the photo is greyscale: the cloak changes all channels alike, so it
            survives writing the photo back as grey.
        work_px: a face wider than this is optimised at a working scale where it is
            this wide, and the change is brought back to full resolution smoothly.
        floor: the least face SSIMULACRA2 (of the face box grown 1.3x, at full
            resolution, rounded to 8 bits): the change is scaled down until it holds
            (:func:`faceguard.cloak.budget.keep_visible`), whatever the method.
        delta_e: how much the face's colour may change, in CIEDE2000 units (at its
            95th percentile over the face region, rounded to 8 bits): the budget shrinks
            where eps would change a pixel's lightness more than a little over it
            (:func:`faceguard.cloak.budget.lightness_weight`), and with ``floor`` the
            change is scaled down until the face keeps it.
        on_step: the cloak's step callback (see :class:`faceguard.cloak.base.Cloak`);
            the visibility guard calls it again with the last step before each of its
            scorings (no progress, but a point where a cancelled job stops).
        start_for: the region the cloak is optimised in (at the working scale) -> a
            warm start for it (e.g. the person's universal mask applied), for methods
            with ``warm_start``.
        in_place: the cloaked face is pasted into ``photo`` itself, not into a copy.
        saved: how the photo will be saved, when that loses detail: ``floor`` is kept as
            the file shows the face (:mod:`faceguard.io.lossy`).

    Returns:
        (the cloaked photo, the face's crop of the original photo, with what the
        visibility guard saw of the face when ``floor`` is given).
    """
    region = crop_face(photo, face, ensemble, texture)
    # optimise where the recognizers are (a GPU when there is one); the photo stays put
    crop = replace(region, pixels=region.pixels.to(ensemble.device),
                   weight=region.weight.to(ensemble.device))
    if delta_e is not None:
        crop = replace(crop, weight=limit_lightness(crop.weight, crop.pixels, cloak.eps, delta_e))
    work = working_view(crop, face, work_px)
    objective = objective_for(work.landmarks)
    last = [(0, 1)]  # the cloak's last step

    def step(done: int, total: int) -> None:
        last[0] = (done, total)
        (on_step or no_steps)(done, total)

    start = start_for(work) if start_for is not None else None
    scored = face_in(crop, face)  # where the visibility guard scores the face
    judged = _judged(scored, crop, work) if floor is not None else None
    if grey:  # one change for all three channels: the photo is saved grey
        cloaked = cloak_grey(cloak, work.pixels, objective, work.weight, generator, step, start,
                             judged)
    else:
        cloaked = cloak(work.pixels, objective, work.weight, generator, step, start, judged)
    if work is not crop:  # seconds on a huge face: a stop after it
        cloaked = _enlarged(cloaked - work.pixels, crop, cloak,
                            enlarged_blur(face.width, work_px))
        step(*last[0])
    seen = None
    if floor is not None:
        cloaked, seen = keep_visible(crop.pixels, cloaked, floor, scored, delta_e,
                                     on_try=lambda: step(*last[0]), saved=saved,
                                     origin=crop.region[:2])
    return (paste(photo, region, cloaked.to(photo.device), in_place),
            _with_seen(region, seen))


def _judged(box: tuple[int, int, int, int], crop: FaceCrop, work: FaceCrop) -> Box:
    """The region the visibility guard scores (``box`` (x0, y0, x1, y1) in the crop's
    pixels) as (rows, cols) of the working view, grown to whole pixels."""
    (h, w), (wh, ww) = crop.pixels.shape[-2:], work.pixels.shape[-2:]
    x0, y0, x1, y1 = box
    return (slice(math.floor(y0 * wh / h), min(wh, math.ceil(y1 * wh / h))),
            slice(math.floor(x0 * ww / w), min(ww, math.ceil(x1 * ww / w))))


def _with_seen(crop: FaceCrop, seen: Seen | None) -> FaceCrop:
    """The crop with what the guard saw of its face, moved to photo pixels."""
    return replace(crop, seen=seen.moved(*crop.region[:2]) if seen is not None else None)


def _enlarged(change: torch.Tensor, crop: FaceCrop, cloak: Cloak, sigma: float) -> torch.Tensor:
    """The crop with a working-scale ``change`` (1, C, h, w) brought back to full
    resolution: a smooth change (bilinear, then blurred by ``sigma`` pixels), clipped to
    the full-resolution budget, so the L-inf bound and the feathered edge hold per pixel.

    Only the box where the budget is non-zero is blurred and clipped (with the margin the
    blur reads): the same pixels as blurring the whole region, for 40% of the work on a
    large face.
    """
    delta = F.interpolate(change, size=crop.pixels.shape[-2:], mode="bilinear",
                          align_corners=False)
    box = changing_box(crop.weight)
    if box is None:
        return crop.pixels
    blur = partial(gaussian_blur, sigma=sigma)
    smooth = filtered_in(blur, delta, box, blur_radius(sigma))
    if smooth is None:  # a box too thin to pad: the whole region
        smooth = blur(delta)[..., box[0], box[1]]
    original, weight = crop.pixels[..., box[0], box[1]], crop.weight[..., box[0], box[1]]
    if cloak.pixel_bounded:
        tint = cloak.tint_px and cloak.tint_px * delta.shape[-1] / change.shape[-1]
        inside = project(original + smooth, original, cloak.eps * weight, cloak.chroma, tint)
    else:
        inside = (original + smooth * (weight > 0)).clamp(0, 1)
    out = crop.pixels.clone()
    out[..., box[0], box[1]] = inside
    return out


def mask_face(photo: torch.Tensor, face: Face, mask: UniversalMask, ensemble: Ensemble,
              texture: float = 0.0, grey: bool = False, floor: float | None = None,
              delta_e: float | None = None, in_place: bool = False, saved: Lossy | None = None
              ) -> tuple[torch.Tensor, FaceCrop]:
    """Cloak one face of a (1, 3, H, W) photo with a person's universal mask, within the
    same looks limits as :func:`cloak_face` (texture and lightness shaping, the floor and
    the colour limit; ``in_place`` and ``saved`` as there). Returns (the cloaked photo,
    the face's crop of the original)."""
    crop = crop_face(photo, face, ensemble, texture)
    weight = crop.weight
    if delta_e is not None:
        weight = limit_lightness(weight, crop.pixels, float(mask.perturbation.abs().max()),
                                 delta_e)
    cloaked = mask.apply(crop.pixels[:, :1] if grey else crop.pixels, crop.landmarks, weight)
    cloaked = cloaked.expand_as(crop.pixels)
    seen = None
    if floor is not None:
        cloaked, seen = keep_visible(crop.pixels, cloaked, floor, face_in(crop, face), delta_e,
                                     saved=saved, origin=crop.region[:2])
    return paste(photo, crop, cloaked, in_place), _with_seen(crop, seen)


def keep_faces_visible(original: torch.Tensor, cloaked: torch.Tensor, faces: Sequence[Face],
                       regions: Sequence[Region], floor: float, delta_e: float | None = None,
                       saved: Lossy | None = None) -> torch.Tensor:
    """``cloaked`` with every cloaked face within its looks limits as measured on the
    whole photo, scaled in place (a copy of a huge photo is gigabytes).

    Each face's cloak keeps its face's limits on its own; where it reaches into another
    cloaked face's measured region (people side by side), the two changes add up there.
    Such a face's limits are then kept by scaling down together every change that
    reaches it, each whole (the smallest box holding every region that meets it), so no
    seam appears.

    Args:
        original, cloaked: (1, C, H, W) the photo before and after its faces were cloaked.
        faces: the cloaked faces; regions: the region each face's cloak changed.
        floor, delta_e, saved: the looks limits and the file (see :func:`cloak_face`).
    """
    from faceguard.visibility import face_box

    h, w = original.shape[-2:]
    out = cloaked
    for i in reached_by_others(faces, regions, (w, h)):  # else already kept by its own
        box = face_box(faces[i].box, w, h)
        group = box
        while True:  # grow to every region that meets it, so each change is scaled whole
            grown = _union([group, *(r for r in regions if _meet(group, r))])
            if grown == group:
                break
            group = grown
        x0, y0, x1, y1 = group
        before, after = original[..., y0:y1, x0:x1], out[..., y0:y1, x0:x1]
        a, _ = visible_scale(before, after, floor, (box[0] - x0, box[1] - y0, box[2] - x0,
                                                     box[3] - y0), delta_e, saved=saved,
                             origin=(x0, y0))
        if a < 1:
            out[..., y0:y1, x0:x1] = before + a * (after - before)
    return out


def reached_by_others(faces: Sequence[Face], regions: Sequence[Region], size: tuple[int, int]
                      ) -> list[int]:
    """The positions of the ``faces`` whose measured region (in a photo of ``size`` (w,
    h)) more than one of the cloaked ``regions`` reaches: another face's cloak adds to
    theirs there, and what their own guard scored is not what the photo shows."""
    from faceguard.visibility import face_box

    return [i for i, face in enumerate(faces)
            if sum(_meet(face_box(face.box, *size), r) for r in regions) >= 2]


def _meet(a: Region, b: Region) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _union(boxes: Sequence[Region]) -> Region:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def face_in(crop: FaceCrop, face: Face) -> tuple[int, int, int, int]:
    """The face region visibility is measured on, in the crop's pixels."""
    from faceguard.visibility import face_box

    x0, y0, x1, y1 = crop.region
    fx0, fy0, fx1, fy1 = face_box(face.box, x1, y1)  # clipped to the region's far edges
    return max(0, fx0 - x0), max(0, fy0 - y0), fx1 - x0, fy1 - y0


def working_view(crop: FaceCrop, face: Face, work_px: int) -> FaceCrop:
    """The crop itself, or, for a face wider than ``work_px``, the crop shrunk so that
    the face is ``work_px`` wide (antialiased), with its landmarks and weight."""
    scale = work_px / max(face.width, 1.0)
    if scale >= 1:
        return crop
    h, w = crop.pixels.shape[-2:]
    size = (max(2, round(h * scale)), max(2, round(w * scale)))

    def shrink(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)

    sx, sy = size[1] / w, size[0] / h
    landmarks = (crop.landmarks + 0.5) * np.array([sx, sy]) - 0.5  # pixel centres
    return FaceCrop(crop.region, shrink(crop.pixels).clamp(0, 1), landmarks,
                    shrink(crop.weight).clamp(0, 1))
