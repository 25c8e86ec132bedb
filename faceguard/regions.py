"""A face's region of a photo: the pixels every recognizer sees of it.

Region maths only (where, which pixels, landmarks in region pixels); how much the
cloak may change inside it is :mod:`faceguard.cloak.budget`'s business. The album
scan, the audit and the cloak all cut faces the same way through :func:`crop_face`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from faceguard.align import face_transform, source_region
from faceguard.face import Face

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in photo pixels, end-exclusive


def face_region(face: Face, width: int, height: int, views: Sequence[np.ndarray] = (),
                margin: float = 0.35) -> Region:
    """The photo region around a face, clipped to the photo.

    It holds the face box grown by ``margin`` (a fraction of the box size) and every
    area a recognizer sees (``views``: (x0, y0, x1, y1) boxes from
    :func:`faceguard.align.source_region`), so the recognizers see the region and its
    surroundings exactly as in the saved photo.
    """
    x0, y0, x1, y1 = face.box
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    boxes = np.array([[x0 - mx, y0 - my, x1 + mx, y1 + my], *views])
    lo, hi = boxes[:, :2].min(0), boxes[:, 2:].max(0)
    return (max(0, int(np.floor(lo[0]))) , max(0, int(np.floor(lo[1]))),
            min(width, int(np.ceil(hi[0])) + 1), min(height, int(np.ceil(hi[1])) + 1))


@dataclass
class FaceRegion:
    """A face's region of the photo, with its landmarks in region pixels."""

    region: Region
    pixels: torch.Tensor  # (1, 3, h, w)
    landmarks: np.ndarray  # (5, 2) in region pixels


def crop_face(photo: torch.Tensor, face: Face, recognizers: Iterable | None = None
              ) -> FaceRegion:
    """Cut a face's region from a (1, 3, H, W) photo.

    The region covers all that the ``recognizers`` (an ensemble, or any iterable of
    recognizers with ``template`` and ``input_size``) see of the face.
    """
    h, w = photo.shape[-2:]
    views = [source_region(face_transform(face.landmarks, r.template), r.input_size)
             for r in (recognizers or [])]
    region = face_region(face, w, h, views)
    x0, y0, x1, y1 = region
    # a copy, contiguous: the photo may be a view of (H, W, 3) pixels, or pasted into later
    pixels = photo[..., y0:y1, x0:x1].clone(memory_format=torch.contiguous_format)
    return FaceRegion(region, pixels, face.landmarks - np.array([x0, y0]))


def paste(photo: torch.Tensor, crop: FaceRegion, pixels: torch.Tensor,
          in_place: bool = False) -> torch.Tensor:
    """A copy of ``photo`` with the crop's region replaced by ``pixels``; with
    ``in_place``, ``photo`` itself (no copy of a huge photo)."""
    x0, y0, x1, y1 = crop.region
    out = photo if in_place else photo.clone()
    out[..., y0:y1, x0:x1] = pixels
    return out
