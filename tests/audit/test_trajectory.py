"""Trajectory detector: mechanics on a tiny random-weight recognizer, real celeb24 faces.

The tiny network only exercises the machinery (hooks, prototypes, heads, save/load); it
says nothing about how detectable real cloaks are on real recognizers.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from faceguard.audit.detectors import NotFittedError, TrajectoryDetector, evaluate
from faceguard.models.base import Recognizer

SIZE = 96  # the tiny recognizer's input; celeb24 crops are 112 and get resized
EPOCHS = 60  # the paper trains 150; fewer keep the tests quick and suffice here


class TinyRecognizer(Recognizer):
    """Three strided conv blocks and a linear embedding, random weights (seeded)."""

    name = "tiny-random"
    input_size = SIZE
    template = np.zeros((5, 2))

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.block1 = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
        self.block3 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
        self.head = nn.Linear(32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block3(self.block2(self.block1(x))).mean((2, 3)))

    def layers(self) -> dict[str, nn.Module]:
        return OrderedDict(
            block1=self.block1, block2=self.block2, block3=self.block3, head=self.head
        )


def resize(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True).clamp(0, 1)


def pgd_cloak(rec: Recognizer, x: torch.Tensor, eps: float = 8 / 255) -> torch.Tensor:
    """A cloak on the tiny network: 3 PGD steps pushing each embedding away from its own."""
    with torch.no_grad():
        start = rec.embed(x)
    gen = torch.Generator().manual_seed(0)
    delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    for _ in range(3):
        delta.requires_grad_(True)
        loss = (rec.embed((x + delta).clamp(0, 1)) - start).norm(dim=1).sum()
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + eps / 2 * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Two cores shared with other jobs: one torch thread avoids oversubscription stalls.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(celeb24_crops) -> dict:
    """Reference faces (5 per person, all 24 people); the rest split by identity."""
    x112, labels = celeb24_crops
    rec = TinyRecognizer()
    ref = np.zeros(len(labels), bool)
    for person in np.unique(labels):
        ref[np.flatnonzero(labels == person)[:5]] = True
    train, test = ~ref & (labels < 12), ~ref & (labels >= 12)
    x = resize(x112)
    rest = ~ref
    cloaked = torch.zeros_like(x)
    cloaked[rest] = pgd_cloak(rec, x[rest])
    return {
        "rec": rec, "x112": x112, "x": x, "cloaked": cloaked, "labels": labels,
        "ref": ref, "train": train, "test": test,
    }  # fmt: skip


@pytest.fixture(scope="module")
def fitted(data: dict) -> TrajectoryDetector:
    d = data
    det = TrajectoryDetector(d["rec"], epochs=EPOCHS)  # LSTM + medoids + cosine
    return det.fit(
        d["x"][d["train"]], d["cloaked"][d["train"]], d["x"][d["ref"]], d["labels"][d["ref"]]
    )


def test_trajectories_have_one_step_per_block_and_one_distance_per_person(data: dict) -> None:
    d = data
    det = TrajectoryDetector(d["rec"]).set_reference(d["x"][d["ref"]], d["labels"][d["ref"]])
    t = det.trajectories(d["x"][:7])
    assert t.shape == (7, 4, 24)
    assert det.classes_ == list(range(24))
    # a reference face that is its person's medoid sits at distance 0 at every block
    first = d["x"][d["ref"]][:5]  # person 0's five reference faces
    assert t.min() >= -1e-6
    assert det.trajectories(first)[:, :, 0].min(0).values.abs().max() < 1e-5


def test_faces_are_resized_to_the_recognizer_input(data: dict) -> None:
    d = data
    det = TrajectoryDetector(d["rec"], prototypes="centroid", distance="l2")
    det.set_reference(d["x"][d["ref"]], d["labels"][d["ref"]])
    from_112 = det.trajectories(d["x112"][:4])
    torch.testing.assert_close(from_112, det.trajectories(d["x"][:4]), atol=1e-5, rtol=1e-4)
    mixed = det.trajectories([d["x112"][0], d["x"][1:3]])  # a list of different sizes
    torch.testing.assert_close(mixed, from_112[:3], atol=1e-5, rtol=1e-4)


def test_lstm_detects_cloak_on_held_out_people(data: dict, fitted: TrajectoryDetector) -> None:
    d = data
    result = evaluate(fitted, d["x"][d["test"]], d["cloaked"][d["test"]])
    print(f"\ntrajectory LSTM+medoid+cos, tiny-net PGD 8/255: AUC {result['roc_auc']:.3f}")
    assert result["roc_auc"] > 0.9
    assert result["accuracy"] > 0.8


def test_mlp_detects_cloak_on_held_out_people(data: dict) -> None:
    d = data
    det = TrajectoryDetector(
        d["rec"], prototypes="centroid", distance="l2", head="mlp", epochs=EPOCHS
    )
    det.fit(d["x"][d["train"]], d["cloaked"][d["train"]], d["x"][d["ref"]], d["labels"][d["ref"]])
    result = evaluate(det, d["x"][d["test"]], d["cloaked"][d["test"]])
    print(f"\ntrajectory MLP+centroid+L2, tiny-net PGD 8/255: AUC {result['roc_auc']:.3f}")
    assert result["roc_auc"] > 0.9


def test_near_chance_on_two_clean_halves(data: dict) -> None:
    d = data
    rng = np.random.default_rng(0)
    tr, te = rng.permutation(np.flatnonzero(d["train"])), rng.permutation(np.flatnonzero(d["test"]))
    h, k = len(tr) // 2, len(te) // 2
    det = TrajectoryDetector(d["rec"], epochs=EPOCHS)
    det.fit(d["x"][tr[:h]], d["x"][tr[h:]], d["x"][d["ref"]], d["labels"][d["ref"]])
    result = evaluate(det, d["x"][te[:k]], d["x"][te[k:]])
    print(f"\ntrajectory LSTM, clean vs clean: AUC {result['roc_auc']:.3f}")
    assert abs(result["roc_auc"] - 0.5) < 0.15


def test_save_load_round_trip(data: dict, fitted: TrajectoryDetector, tmp_path: Path) -> None:
    d = data
    faces = torch.cat([d["x"][d["test"]][:8], d["cloaked"][d["test"]][:8]])
    path = tmp_path / "trajectory.pt"
    fitted.save(path)
    assert TrajectoryDetector.recognizer_name(path) == "tiny-random"
    loaded = TrajectoryDetector.load(path, d["rec"])
    assert repr(loaded) == repr(fitted)
    np.testing.assert_array_equal(loaded.score(faces), fitted.score(faces))
    scores = fitted.score(faces)
    assert scores.shape == (16,) and ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_array_equal(fitted.predict(faces), scores >= 0.5)

    other = TinyRecognizer()
    other.name = "someone-else"
    with pytest.raises(ValueError, match="trained on recognizer 'tiny-random'"):
        TrajectoryDetector.load(path, other)


def test_errors(data: dict, tmp_path: Path) -> None:
    d = data
    faces, labels = d["x"][:10], d["labels"][:10]
    det = TrajectoryDetector(d["rec"], epochs=1)
    with pytest.raises(NotFittedError, match="not fitted"):
        det.score(faces)
    with pytest.raises(NotFittedError, match="no reference identities"):
        det.trajectories(faces)
    with pytest.raises(ValueError, match="no reference identities"):
        det.fit(faces, faces)
    with pytest.raises(ValueError, match="10 reference faces but 9 labels"):
        det.set_reference(faces, labels[:9])
    with pytest.raises(ValueError, match="both reference_faces and reference_labels"):
        det.fit(faces, faces, reference_faces=faces)
    with pytest.raises(ValueError, match="clean is empty"):
        det.fit([], faces, faces, labels)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        det.fit(faces[:, :2], faces, faces, labels)
    with pytest.raises(ValueError, match="prototypes must be"):
        TrajectoryDetector(d["rec"], prototypes="mean")
    with pytest.raises(ValueError, match="not among"):
        TrajectoryDetector(d["rec"], layers=["block9"])
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a saved TrajectoryDetector"):
        TrajectoryDetector.load(tmp_path / "bad.pt", d["rec"])
    # a fitted detector forgets its head when the reference people change
    det.fit(faces, faces.flip(-1), faces, labels)
    assert det.is_fitted
    det.set_reference(faces, labels)
    assert not det.is_fitted


def _dlib_recognizer() -> Recognizer:
    """The real dlib ResNet: installed through the registry, else read from the local pip
    package ``face_recognition_models`` (no download either way); skips when absent."""
    from faceguard.models import ModelError, load_recognizer

    try:
        return load_recognizer("dlib", device="cpu")
    except ModelError:
        pass
    try:
        from faceguard.models.dlib_resnet import load_dlib

        return load_dlib()
    except Exception as exc:  # model file absent on this machine
        pytest.skip(f"dlib recognizer unavailable: {exc}")


def test_real_recognizer_trajectories(data: dict) -> None:
    d = data
    rec = _dlib_recognizer()
    ref = np.flatnonzero(d["ref"] & (d["labels"] < 6))  # 6 people, 5 faces each
    det = TrajectoryDetector(rec).set_reference(d["x112"][ref], d["labels"][ref])
    t = det.trajectories(d["x112"][ref])  # 112 crops resized to dlib's 150
    assert t.shape == (30, len(rec.layers()), 6)
    assert torch.isfinite(t).all()
    # each person's medoid is one of their reference faces: distance 0 at every block
    own = t[torch.arange(30), :, torch.from_numpy(d["labels"][ref])]  # (30, L)
    for person in range(6):
        assert own[person * 5 : person * 5 + 5].min(0).values.abs().max() < 1e-5
    # the embedding knows who is who: other faces of these people (not in the reference)
    # are nearer their own person's medoid than the average other person's
    probes = np.concatenate([np.flatnonzero(~d["ref"] & (d["labels"] == p))[:5] for p in range(6)])
    last = det.trajectories(d["x112"][probes])[:, -1, :]
    mine = last[torch.arange(30), torch.from_numpy(d["labels"][probes])]
    assert (mine < last.mean(1)).float().mean() > 0.8
