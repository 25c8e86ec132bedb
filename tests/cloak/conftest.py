"""Fixtures shared by the cloak tests: a real face and the real dlib recognizer."""

from __future__ import annotations

import pytest
import torch

from faceguard.album import embed_faces
from faceguard.io import to_tensor
from faceguard.models.ensemble import Ensemble


@pytest.fixture(scope="session")
def astronaut_scene(astronaut, detector, load_model):
    """The astronaut (1, 3, 512, 512), her face, dlib, and her centroid (model -> (D,))
    from a half-size copy (at the face's own embedding every distance gradient is zero)."""
    photo = to_tensor(astronaut / 255.0)
    face = detector(astronaut)[0]
    ensemble = Ensemble([load_model("dlib")])
    small = torch.nn.functional.interpolate(photo, scale_factor=0.5, mode="bilinear",
                                            antialias=True)
    ref = detector((small[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8"))[0]
    centroids = {m: e[0] for m, e in embed_faces(ensemble, small, [ref]).items()}
    return photo, face, ensemble, centroids
