"""Alignment warps: geometry, differentiability, paste-back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceguard import align
from faceguard.detect import FaceDetector
from faceguard.io import to_tensor


@pytest.fixture(scope="module")
def astronaut_face(astronaut):
    return FaceDetector()(astronaut)[0]


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rot).T + shift
    t = align.similarity_transform(src, dst)
    assert np.allclose(align.transform_points(t, src), dst, atol=1e-9)
    assert np.allclose(align.compose(align.invert(t), t), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_warp_matches_opencv(astronaut, astronaut_face):
    import cv2

    t = align.face_transform(astronaut_face.landmarks, align.ARCFACE_112)
    ours = align.warp(to_tensor(astronaut), t, 112, antialias=False)[0]
    ours = ours.permute(1, 2, 0).numpy() * 255
    ref = cv2.warpAffine(astronaut.astype(np.float32), t, (112, 112), flags=cv2.INTER_LINEAR)
    assert np.abs(ours - ref)[2:-2, 2:-2].mean() < 0.5


def test_landmarks_land_on_the_template(astronaut, astronaut_face):
    t = align.face_transform(astronaut_face.landmarks, align.ARCFACE_112)
    moved = align.transform_points(t, astronaut_face.landmarks)
    # 5 points, 4 degrees of freedom: a residual of a few pixels is her face shape (a wide smile)
    assert np.abs(moved - align.ARCFACE_112).max() < 7
    assert np.abs(moved - align.ARCFACE_112)[:2].max() < 3  # eyes


def test_antialiased_warp_gives_gradient_to_every_face_pixel(astronaut):
    big = torch.nn.functional.interpolate(to_tensor(astronaut), scale_factor=4,
                                          mode="bilinear")
    face = FaceDetector()(big[0].permute(1, 2, 0).numpy())[0]
    t = align.face_transform(face.landmarks, align.ARCFACE_112)
    x = big.clone().requires_grad_(True)
    align.warp(x, t, 112).sum().backward()
    x0, y0, x1, y1 = (int(v) for v in align.source_region(t, 112, margin=-20))
    covered = (x.grad[0, 0, y0:y1, x0:x1] != 0).float().mean()
    assert covered > 0.99
    # without antialiasing, bilinear sampling touches only about (112 / face size)^2
    x.grad = None
    align.warp(x, t, 112, antialias=False).sum().backward()
    assert (x.grad[0, 0, y0:y1, x0:x1] != 0).float().mean() < 0.5


def test_align_then_paste_back_reproduces_the_face(astronaut, astronaut_face):
    photo = to_tensor(astronaut)
    t = align.face_transform(astronaut_face.landmarks, align.ARCFACE_112)
    size = 224  # finer than the face (about 90 px), so the round trip is nearly lossless
    t2 = align.compose(np.diag([2.0, 2.0, 1.0])[:2] @ np.eye(3), t)
    face = align.warp(photo, t2, size)
    back = align.paste_back(photo, face, t2)
    x0, y0, x1, y1 = (int(v) for v in astronaut_face.box)
    diff = (back - photo)[..., y0:y1, x0:x1].abs()
    # two bilinear resamplings soften the sharpest edges (eye highlights) only
    assert diff.mean() < 2 / 255 and diff.quantile(0.99) < 0.05
    # outside the face's square, the photo is untouched
    far = align.source_region(t2, size, margin=4)
    assert torch.equal(back[..., : int(far[1]) - 1, :], photo[..., : int(far[1]) - 1, :])


def test_paste_back_of_a_changed_face_changes_only_the_face(astronaut, astronaut_face):
    photo = to_tensor(astronaut)
    t = align.face_transform(astronaut_face.landmarks, align.ARCFACE_112)
    grey = torch.full((1, 3, 112, 112), 0.5)
    out = align.paste_back(photo, grey, t)
    cx, cy = align.transform_points(align.invert(t), [[56, 60]])[0].round().astype(int)
    assert torch.allclose(out[0, :, cy, cx], torch.full((3,), 0.5), atol=0.02)
    changed = (out - photo).abs().sum(1)[0] > 1e-6
    region = align.source_region(t, 112)
    ys, xs = torch.nonzero(changed, as_tuple=True)
    assert xs.min() >= region[0] - 1 and xs.max() <= region[2] + 1
    assert ys.min() >= region[1] - 1 and ys.max() <= region[3] + 1


def test_feather_mask_is_soft_and_bounded():
    m = align.feather_mask(64, 64)
    assert m.shape == (1, 1, 64, 64)
    assert m.max() == 1 and m.min() == 0
    assert m[0, 0, 32, 32] == 1 and m[0, 0, 0, 0] == 0
    assert 0 < m[0, 0, 32, 2] < 1
