"""WLMP detector: features against a plain per-pixel reference, detection on real crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceguard.audit.detectors import NotFittedError, WLMPDetector, describe, evaluate
from faceguard.audit.detectors.wlmp import (
    CLASSIFIERS,
    make_classifier,
    rgb_to_grey,
    wlmp_codes,
    wlmp_features,
)
from faceguard.io import to_tensor


def slow_wlmp(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Section 3.3 written plainly, pixel by pixel: (codes (H-2, W-2), histogram (256,))."""
    h, w, _ = rgb.shape
    grey = [[0] * w for _ in range(h)]
    for y in range(h):
        for x in range(w):
            r, g, b = (int(v) for v in rgb[y, x])
            grey[y][x] = int(0.299 * r + 0.587 * g + 0.114 * b + 0.5)  # BT.601, rounded
    codes = np.zeros((h - 2, w - 2), np.uint8)
    hist = np.zeros(256)
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            diffs = sorted(
                abs(grey[y + dy][x + dx] - grey[y][x])
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
                if (dy, dx) != (0, 0)
            )
            value = min(255, sum(d * 2**p for p, d in enumerate(diffs)))
            codes[y - 1, x - 1] = value
            hist[value] += 1
    return codes, hist / hist.sum()


@pytest.fixture(scope="module")
def celeb24(celeb24_crops) -> dict:
    """Clean crops, the same + random sign noise of 8/255, WLMP features, identity split."""
    x, labels = celeb24_crops
    sign = np.random.default_rng(0).integers(0, 2, x.shape, dtype=np.int8) * 2 - 1
    noisy = (x + torch.from_numpy(sign.astype(np.float32) * (8 / 255))).clamp(0, 1)
    train = labels < 12  # split by identity: 12 people to train on, 12 others to test on
    return {
        "x": x,
        "noisy": noisy,
        "labels": labels,
        "train": train,
        "test": ~train,
        "f_clean": wlmp_features(x),
        "f_noisy": wlmp_features(noisy),
    }


@pytest.fixture(scope="module")
def fitted(celeb24: dict) -> WLMPDetector:
    d = celeb24
    return WLMPDetector().fit(d["x"][d["train"]], d["noisy"][d["train"]])


# -- features ---------------------------------------------------------------------------


@pytest.mark.parametrize("rows, cols", [((30, 90), (150, 210)), ((0, 60), (0, 60))])
def test_codes_match_slow_reference_on_astronaut(astronaut: np.ndarray, rows, cols) -> None:
    patch = astronaut[slice(*rows), slice(*cols)]  # her face; the wall behind her
    codes, hist = slow_wlmp(patch)
    got_codes = wlmp_codes(rgb_to_grey(to_tensor(patch)))[0]
    np.testing.assert_array_equal(got_codes, codes)
    np.testing.assert_allclose(wlmp_features(to_tensor(patch))[0], hist, rtol=0, atol=1e-12)
    assert len(np.unique(codes)) >= 3  # not all saturated: the comparison means something


def test_codes_match_slow_reference_on_celeb24_crop(celeb24_dir: Path) -> None:
    rgb = np.asarray(Image.open(sorted(sorted(celeb24_dir.iterdir())[0].glob("*.png"))[0]))
    rgb = rgb[..., :3]
    codes, hist = slow_wlmp(rgb)
    np.testing.assert_array_equal(wlmp_codes(rgb_to_grey(to_tensor(rgb)))[0], codes)
    np.testing.assert_allclose(wlmp_features(to_tensor(rgb))[0], hist, rtol=0, atol=1e-12)


def test_codes_on_low_contrast_patch_match_reference() -> None:
    # Grey levels 0..2 reach every unsaturated code, which real photos rarely do.
    rng = np.random.default_rng(0)
    rgb = np.repeat(rng.integers(100, 103, (40, 40, 1), dtype=np.uint8), 3, axis=2)
    codes, _ = slow_wlmp(rgb)
    np.testing.assert_array_equal(wlmp_codes(rgb_to_grey(to_tensor(rgb)))[0], codes)
    assert {0, 128, 192, 255} <= set(np.unique(codes).tolist())


def test_features_are_normalised_histograms_of_any_size(astronaut: np.ndarray) -> None:
    a, b = to_tensor(astronaut[0:112, 0:112]), to_tensor(astronaut[30:130, 160:250])
    feats = wlmp_features([a, b[0], a])  # a list with different sizes and ranks
    assert feats.shape == (3, 256)
    np.testing.assert_allclose(feats.sum(1), 1.0)
    np.testing.assert_array_equal(feats[0], feats[2])
    np.testing.assert_array_equal(feats[1], wlmp_features(b)[0])


# -- detection --------------------------------------------------------------------------


def test_detects_sign_noise_on_held_out_people(celeb24: dict, fitted: WLMPDetector) -> None:
    d = celeb24
    result = evaluate(fitted, d["x"][d["test"]], d["noisy"][d["test"]])
    print(
        f"\nWLMP linear, 8/255 sign noise, held-out people: {result['roc_auc']:.3f} AUC,",
        describe(result),
    )
    assert result["roc_auc"] > 0.95
    assert result["accuracy"] > 0.9
    assert len(result["roc"]["fpr"]) == len(result["roc"]["tpr"]) >= 3


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_separates_noise(celeb24: dict, name: str) -> None:
    from sklearn.metrics import roc_auc_score

    d = celeb24
    x = np.concatenate([d["f_clean"][d["train"]], d["f_noisy"][d["train"]]])
    y = np.repeat([0, 1], d["train"].sum())
    xt = np.concatenate([d["f_clean"][d["test"]], d["f_noisy"][d["test"]]])
    yt = np.repeat([0, 1], d["test"].sum())
    auc = roc_auc_score(yt, make_classifier(name).fit(x, y).predict_proba(xt)[:, 1])
    print(f"\nWLMP {name}: AUC {auc:.3f}")
    assert auc > 0.9


@pytest.mark.parametrize("name", ["linear", "rbf", "random_forest"])
def test_near_chance_on_two_clean_halves(celeb24: dict, name: str) -> None:
    from sklearn.metrics import roc_auc_score

    d = celeb24
    rng = np.random.default_rng(1)
    tr, te = rng.permutation(np.flatnonzero(d["train"])), rng.permutation(np.flatnonzero(d["test"]))
    x, y = d["f_clean"][tr], np.arange(len(tr)) < len(tr) // 2
    xt, yt = d["f_clean"][te], np.arange(len(te)) < len(te) // 2
    auc = roc_auc_score(yt, make_classifier(name).fit(x, y).predict_proba(xt)[:, 1])
    print(f"\nWLMP {name}, clean vs clean: AUC {auc:.3f}")
    assert abs(auc - 0.5) < 0.15


def test_detector_near_chance_on_two_clean_halves(celeb24: dict) -> None:
    d = celeb24
    rng = np.random.default_rng(2)
    tr, te = rng.permutation(np.flatnonzero(d["train"])), rng.permutation(np.flatnonzero(d["test"]))
    h, k = len(tr) // 2, len(te) // 2
    det = WLMPDetector("rbf").fit(d["x"][tr[:h]], d["x"][tr[h:]])
    result = evaluate(det, d["x"][te[:k]], d["x"][te[k:]])
    assert abs(result["roc_auc"] - 0.5) < 0.15


# -- interface --------------------------------------------------------------------------


def test_predict_agrees_with_score(celeb24: dict, fitted: WLMPDetector) -> None:
    faces = celeb24["noisy"][celeb24["test"]][:20]
    scores = fitted.score(faces)
    assert scores.shape == (20,) and scores.dtype == np.float64
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_array_equal(fitted.predict(faces), scores >= 0.5)


def test_save_load_round_trip(celeb24: dict, fitted: WLMPDetector, tmp_path: Path) -> None:
    faces = torch.cat([celeb24["x"][-10:], celeb24["noisy"][-10:]])
    fitted.save(tmp_path / "wlmp.pkl")
    loaded = WLMPDetector.load(tmp_path / "wlmp.pkl")
    assert repr(loaded) == repr(fitted)
    np.testing.assert_array_equal(loaded.score(faces), fitted.score(faces))


def test_errors(astronaut: np.ndarray, tmp_path: Path) -> None:
    face = to_tensor(astronaut[0:112, 0:112])
    with pytest.raises(NotFittedError, match="not fitted"):
        WLMPDetector().score(face)
    with pytest.raises(NotFittedError, match="not fitted"):
        WLMPDetector().save(tmp_path / "x.pkl")
    with pytest.raises(ValueError, match="unknown classifier"):
        WLMPDetector("svm")
    with pytest.raises(ValueError, match="cloaked is empty"):
        WLMPDetector().fit(face, [])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        WLMPDetector().fit(face[:, :1], face)  # one channel
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        wlmp_features(face[0, 0])  # no channel axis
    with pytest.raises(ValueError, match="divide 0..255"):
        wlmp_features(face * 255)
    with pytest.raises(TypeError, match="torch tensor"):
        wlmp_features(astronaut)
    (tmp_path / "bad.pkl").write_bytes(b"\x80\x04K\x01.")  # a pickled int
    with pytest.raises(ValueError, match="not a saved WLMPDetector"):
        WLMPDetector.load(tmp_path / "bad.pkl")


def test_describe_says_it_plainly() -> None:
    text = describe({"flagged_cloaked": 0.934, "flagged_clean": 0.021, "roc_auc": 0.97})
    assert text.startswith("A platform could flag 93% of your cloaked photos")
    assert "wrongly flagging 2% of clean ones" in text


def test_fits_on_fewer_than_five_faces_of_a_kind(celeb24: dict) -> None:
    """An audit fold that trains on one person's 4 faces failed: scikit-learn's 5-fold
    Platt scaling needs 5 of each kind, and the check was dropped with its raw message."""
    d = celeb24
    det = WLMPDetector().fit(d["x"][:4], d["noisy"][:4])
    assert det.score(d["noisy"][4:6]).shape == (2,)
