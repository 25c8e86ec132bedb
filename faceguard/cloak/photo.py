"""Cloaking the faces of one photo at full resolution.

The cloak is optimised in the photo's own pixels: a region around the face is cut
from the full-resolution photo, the objective aligns it for each recognizer through
the differentiable warp, and the cloak method changes the region's pixels within
``eps * weight`` (feathered face ellipse, optionally texture-shaped). Nothing is
computed at model resolution and upscaled into the photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from faceguard.align import face_transform, source_region
from faceguard.cloak.base import Cloak, Objective
from faceguard.cloak.budget import Region, face_region, face_weight, texture_weight
from faceguard.detect import Face
from faceguard.models.ensemble import Ensemble


@dataclass
class FaceCrop:
    """A face's region of the photo, with its landmarks in region pixels."""

    region: Region
    pixels: torch.Tensor  # (1, 3, h, w)
    landmarks: np.ndarray  # (5, 2) in region pixels
    weight: torch.Tensor  # (1, 1, h, w) budget weight in [0, 1]


def crop_face(photo: torch.Tensor, face: Face, ensemble: Ensemble | None = None,
              texture: float = 0.0) -> FaceCrop:
    """Cut the region a face is cloaked in from a (1, 3, H, W) photo.

    The region covers all that the ``ensemble``'s recognizers see of the face.
    """
    h, w = photo.shape[-2:]
    views = [source_region(face_transform(face.landmarks, r.template), r.input_size)
             for r in (ensemble or [])]
    region = face_region(face, w, h, views)
    x0, y0, x1, y1 = region
    pixels = photo[..., y0:y1, x0:x1]
    weight = face_weight(face, region).to(photo)
    if texture > 0:
        weight = weight * texture_weight(pixels, texture)
    return FaceCrop(region, pixels, face.landmarks - np.array([x0, y0]), weight)


def paste(photo: torch.Tensor, crop: FaceCrop, pixels: torch.Tensor) -> torch.Tensor:
    """A copy of ``photo`` with the crop's region replaced by ``pixels``."""
    x0, y0, x1, y1 = crop.region
    out = photo.clone()
    out[..., y0:y1, x0:x1] = pixels
    return out


def cloak_face(
    photo: torch.Tensor,
    face: Face,
    cloak: Cloak,
    ensemble: Ensemble,
    objective_for: Callable[[np.ndarray], Objective],
    texture: float = 0.0,
    generator: torch.Generator | None = None,
    grey: bool = False,
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

    Returns:
        (the cloaked photo, the face's crop of the original photo).
    """
    crop = crop_face(photo, face, ensemble, texture)
    objective = objective_for(crop.landmarks)
    if grey:
        cloaked = cloak(crop.pixels[:, :1], lambda x: objective(x.expand(-1, 3, -1, -1)),
                        crop.weight, generator).expand_as(crop.pixels)
    else:
        cloaked = cloak(crop.pixels, objective, crop.weight, generator)
    return paste(photo, crop, cloaked), crop
