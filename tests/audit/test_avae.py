"""The A-VAE purifier (Zhou, Liang and Chen, ECCV 2020): its parts, its inference, its
shipped weights and the defense that pastes the redrawn face back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from faceguard.audit.avae import (
    AVAE_PATH,
    Discriminator,
    Generator,
    clip_codes,
    kl_divergence,
    load_avae,
    project,
    save_avae,
)
from faceguard.audit.defenses import DEFENSES, defend_face, make_defense, parse_defense
from faceguard.io import to_tensor
from faceguard.training_pairs import ALIGNED_FACE

# the validation people of scripts/train_avae.py (never seen in training)
UNSEEN = ["Barack_Obama", "James_Spader", "Leonardo_DiCaprio", "Miley_Cyrus"]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def test_clipped_codes_keep_the_kl_threshold() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 16, generator=g) * torch.linspace(0.01, 2, 64)[:, None]
    logvar = torch.randn(16, generator=g) * 0.1
    tau = 0.05
    clipped = clip_codes(z, logvar, tau)
    kl = kl_divergence(clipped, logvar.expand_as(clipped))
    assert (kl <= tau + 1e-6).all()
    inside = kl_divergence(z, logvar.expand_as(z)) <= tau
    assert inside.any() and (~inside).any()
    assert torch.allclose(clipped[inside], z[inside])  # codes within the threshold stay
    # shrunk along their own direction, never flipped
    assert (torch.nn.functional.cosine_similarity(clipped[~inside], z[~inside]) > 0.999).all()


def test_parts_have_the_papers_shapes() -> None:
    torch.manual_seed(0)
    g, d = Generator(width=4, z_dim=8, skip=2), Discriminator(width=4)
    x32 = torch.rand(3, 3, 32, 32)
    faces, mean, logvar = g(x32)
    assert faces.shape == (3, 3, 128, 128) and mean.shape == logvar.shape == (3, 8)
    assert 0 <= float(faces.detach().min()) and float(faces.detach().max()) <= 1
    assert len([m for m in g.mapping if isinstance(m, torch.nn.Linear)]) == 4
    assert d(faces, x32).shape == (3,)


def test_projection_keeps_the_nearest_drawing() -> None:
    torch.manual_seed(0)
    net = Generator(width=4, z_dim=8, skip=2).eval()
    faces = torch.rand(2, 3, 112, 112)
    one = project(net, faces, samples=6, generator=torch.Generator().manual_seed(1))
    more = project(net, faces, samples=24, generator=torch.Generator().manual_seed(1))
    target = torch.nn.functional.interpolate(faces, size=(128, 128), mode="bilinear",
                                             antialias=True, align_corners=False)
    assert one.shape == (2, 3, 128, 128)
    # the first 6 draws are among the 24: the nearest of 24 is at least as near
    err = lambda y: ((y - target) ** 2).flatten(1).mean(1)  # noqa: E731
    assert (err(more) <= err(one) + 1e-7).all()


def test_save_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    net = Generator(width=4, z_dim=8, skip=2).eval()
    path = tmp_path / "a.pt"
    save_avae(net, path, {"data": "random"})
    loaded = load_avae(path)
    assert (loaded.width, loaded.z_dim, loaded.skip) == (4, 8, 2)
    z, skip = torch.randn(1, 8), torch.randn(1, 2, 8, 8)
    assert torch.allclose(loaded.decode(z, skip), net.decode(z, skip), atol=1e-2)


def test_shipped_weights_are_documented() -> None:
    assert AVAE_PATH.stat().st_size < 2_097_152  # int8 weights: a repository file under 2 MB
    doc = AVAE_PATH.with_suffix(".md").read_text()
    assert "scripts/train_avae.py" in doc and "sha256" in doc
    ckpt = torch.load(AVAE_PATH, weights_only=True)
    assert ckpt["info"]["validation_people"] == ", ".join(UNSEEN)
    dtypes = {v.dtype for v in ckpt["state_dict"].values()}
    assert dtypes == {torch.int8, torch.float16}


def test_avae_redraws_unseen_faces_and_ignores_a_cloak_sized_pattern(celeb24_dir) -> None:
    files = [f for p in UNSEEN for f in sorted((celeb24_dir / p).glob("*.png"))[:3]]
    faces = torch.cat([to_tensor(np.asarray(Image.open(f).convert("RGB"))) for f in files])
    g = torch.Generator().manual_seed(0)
    sign = torch.randint(0, 2, faces.shape, generator=g) * 2 - 1
    noisy = (faces + sign * (8 / 255)).clamp(0, 1)
    avae = make_defense("avae", samples=8)
    clean_out, noisy_out = avae(faces), avae(noisy)
    # a faithful-enough redrawing (a 4x shrink and bicubic enlargement gives ~24 dB)...
    assert _psnr(clean_out, faces) > 18
    # ...that does not carry the fine pattern through: the noisy face comes out as the
    # clean one does, far nearer to it than the noisy input was
    assert _psnr(noisy_out, clean_out) > _psnr(noisy, faces) + 3


def test_defense_pastes_the_face_back_and_leaves_the_rest(celeb24_dir) -> None:
    face = to_tensor(np.asarray(Image.open(
        sorted((celeb24_dir / UNSEEN[0]).glob("*.png"))[0]).convert("RGB")))
    photo = torch.nn.functional.pad(face, (40, 40, 40, 40), value=0.5)  # 192x192
    landmarks = ALIGNED_FACE.landmarks + 40
    out = defend_face(make_defense("avae", samples=4), photo, landmarks)
    assert out.shape == photo.shape
    assert torch.equal(out[..., :20, :], photo[..., :20, :])  # far from the face: untouched
    centre = (slice(None), slice(None), slice(90, 130), slice(80, 112))
    assert not torch.allclose(out[centre], photo[centre], atol=1e-2)  # the face is redrawn


def test_registry_lists_avae_with_its_paper() -> None:
    spec = DEFENSES["avae"]
    assert "ECCV 2020" in spec.citation and spec.limits
    assert spec.defaults == {"samples": 32, "tau": 0.03, "seed": 0, "weights": ""}
    assert parse_defense("avae:samples=4") == make_defense("avae", samples=4)
    with pytest.raises(ValueError, match="samples must satisfy"):
        make_defense("avae", samples=0)
