"""FLM, the geometric cloak (faceguard.cloak.flm), on a real face with the real dlib."""

from __future__ import annotations

import pytest
import torch

from faceguard.album import embed_faces
from faceguard.cloak.flm import FLM, warp_by
from faceguard.cloak.objectives import FeatureObjective
from faceguard.cloak.photo import cloak_face


def test_zero_displacement_leaves_the_image_unchanged():
    images = torch.randint(0, 256, (2, 3, 40, 50)) / 255  # an 8-bit photo
    same = warp_by(images, torch.zeros(2, 2, 40, 50))
    assert torch.equal((same * 255).round(), (images * 255).round())


def test_a_whole_pixel_shift_moves_the_image_by_one_pixel():
    images = torch.rand(1, 3, 20, 20)
    field = torch.zeros(1, 2, 20, 20)
    field[:, 0] = 1.0  # sample one pixel to the right
    # (float32 resampling is exact to about 1e-5)
    assert torch.allclose(warp_by(images, field)[..., :-1], images[..., 1:], atol=1e-5)


def test_the_field_stays_within_its_bound_and_inside_the_face():
    flm = FLM(shift=0.02, grid=4)
    budget = torch.zeros(1, 1, 60, 60)
    budget[..., 10:50, 10:50] = 8 / 255
    field = flm.field(torch.randn(1, 2, 4, 4) * 10, budget, limit=0.8)
    assert field.abs().max() <= 0.8 + 1e-6
    assert not field[..., :10].any() and not field[..., 50:, :].any()


@pytest.mark.parametrize("additive", [False, True], ids=["flm", "hybrid"])
def test_flm_moves_the_face_beyond_the_threshold(astronaut_scene, additive):
    photo, face, ensemble, centroids = astronaut_scene
    cloak = FLM(8 / 255, shift=0.03, steps=20, grid=10, additive=additive)

    def objective_for(landmarks):
        return FeatureObjective(ensemble, landmarks, centroids)

    out, crop = cloak_face(photo, face, cloak, ensemble, objective_for,
                           generator=torch.Generator().manual_seed(0))
    after = embed_faces(ensemble, out, [face])["dlib"][0]
    assert float(ensemble["dlib"].compare(after, centroids["dlib"])) > ensemble["dlib"].threshold
    delta = (out - photo).abs()
    x0, y0, x1, y1 = crop.region
    outside = delta.sum(1)[0].clone()
    outside[y0:y1, x0:x1] = 0
    assert not outside.any()
