"""Shared fixtures: real photos only (skimage's public-domain astronaut, ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FACEGUARD_TEST_DATA", REPO.parent / "shared" / "data"))


def shared_data_dir(sub: str) -> Path:
    """Path to ``../shared/data/<sub>``; skips the test with the reason when absent."""
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"test data {path} is absent (set FACEGUARD_TEST_DATA to the data folder)")
    return path


@pytest.fixture(scope="session")
def album_dir() -> Path:
    return shared_data_dir("album")


@pytest.fixture(scope="session")
def celeb24_dir() -> Path:
    return shared_data_dir("celeb24")


@pytest.fixture(scope="session")
def celeb24_crops(celeb24_dir: Path):
    """All celeb24 crops as (N, 3, 112, 112) float in [0, 1] and (N,) identity indices."""
    import torch
    from PIL import Image

    people = sorted(p for p in celeb24_dir.iterdir() if p.is_dir())
    images, labels = [], []
    for i, person in enumerate(people):
        for f in sorted(person.glob("*.png")):
            images.append(np.asarray(Image.open(f).convert("RGB")))
            labels.append(i)
    x = torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 255)
    return x, np.array(labels)


@pytest.fixture(scope="session")
def att_dir() -> Path:
    return shared_data_dir("att")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's public-domain astronaut photo: (512, 512, 3) uint8 RGB, one face."""
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def load_model():
    """load_model(name) -> the installed recognizer (cached for the session)."""
    from faceguard.models import load_recognizer

    cache: dict = {}

    def load(name: str):
        if name not in cache:
            cache[name] = load_recognizer(name, device="cpu")
        return cache[name]

    return load


@pytest.fixture(scope="session")
def detector():
    from faceguard.detect import FaceDetector

    return FaceDetector(device="cpu")


@pytest.fixture(scope="session")
def album_by_person(album_dir: Path) -> dict[str, list[Path]]:
    """identity -> its photos, from the album's labels.csv."""
    from faceguard.album import labelled_photos

    return labelled_photos(album_dir)
