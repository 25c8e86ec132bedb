"""MTCNN detection on real photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceguard.detect import FaceDetector, iou
from faceguard.face import Face


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu")


def _inside(face: Face, slack: float = 0.1) -> bool:
    x0, y0, x1, y1 = face.box
    dx, dy = slack * face.width, slack * face.height
    xs, ys = face.landmarks[:, 0], face.landmarks[:, 1]
    return bool(((xs > x0 - dx) & (xs < x1 + dx) & (ys > y0 - dy) & (ys < y1 + dy)).all())


def _cut(face: Face, pixels: np.ndarray) -> bool:
    """Whether the photo's edge cuts ``face`` (its landmarks may then lie beyond it)."""
    x0, y0, x1, y1 = face.box
    return min(x0, y0) <= 0 or x1 >= pixels.shape[1] or y1 >= pixels.shape[0]


def test_astronaut_has_one_face_with_landmarks_inside(detector, astronaut):
    faces = detector(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.99
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float64
    assert _inside(face, slack=0)
    left_eye, right_eye, nose, mouth_l, mouth_r = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


def test_float_and_uint8_inputs_agree(detector, astronaut):
    a = detector(astronaut)[0]
    b = detector(astronaut.astype(np.float32) / 255)[0]
    assert np.allclose(a.box, b.box, atol=1) and np.allclose(a.landmarks, b.landmarks, atol=1)


def test_downscaled_detection_maps_boxes_back(astronaut):
    big = np.asarray(Image.fromarray(astronaut).resize((2048, 2048), Image.BICUBIC))
    full = FaceDetector(max_side=4096)(big)[0]
    small = FaceDetector(max_side=512)(big)[0]
    # the 4x downscale costs a few pixels of precision, not the face
    assert np.allclose(full.box, small.box, atol=24)
    assert np.allclose(full.landmarks, small.landmarks, atol=16)


def test_no_face_in_a_photo_without_faces(detector):
    import skimage.data

    assert detector(skimage.data.coffee()) == []


def test_rejects_wrong_shape(detector):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        detector(np.zeros((10, 10), np.uint8))


def test_bad_thresholds_are_said_one_at_a_time_in_the_users_words():
    with pytest.raises(ValueError, match="^the detector's confidence threshold must be 0-1, "
                                         "not 2$"):
        FaceDetector(min_score=2)
    with pytest.raises(ValueError, match="^the smallest face must be at least 1 pixel, not 0$"):
        FaceDetector(min_face_size=0)


def test_face_dict_round_trip(detector, astronaut):
    face = detector(astronaut)[0]
    assert face.to_dict()["orientation"] == "upright"  # as the table says it (detect --json)
    again = Face.from_dict(face.to_dict())
    assert np.allclose(again.box, face.box, atol=0.06)
    assert np.allclose(again.landmarks, face.landmarks, atol=0.06)


def test_every_album_photo_has_a_face(detector, album_by_person):
    from faceguard.io import load_photo

    photos = [path for paths in album_by_person.values() for path in paths]
    assert len(photos) >= 60
    for path in photos:
        pixels = load_photo(path).pixels
        faces = detector(pixels)
        assert faces, f"no face found in {path.name}"
        assert all(_inside(f) for f in faces if not _cut(f, pixels)), path.name
        assert faces[0].score > 0.95


# the selfie's seven include three faces its edge cuts (FaceDetector's ``edges``)
@pytest.mark.parametrize("name, at_least", [("couple.jpg", 2), ("selfie-many-people.jpg", 7)])
def test_multi_face_photos(detector, album_dir, name, at_least):
    from faceguard.io import load_photo

    faces = detector(load_photo(album_dir / "_unlabelled_extras" / name).pixels)
    assert len(faces) >= at_least
    boxes = np.array([f.box for f in faces])
    # distinct faces, not duplicates of one
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(len(faces)) * 1e9
    assert gaps.min() > 20


def test_exif_rotated_copy_gives_the_same_faces(detector, album_dir, tmp_path):
    """A photo stored sideways with an EXIF Orientation tag is detected as upright."""
    from faceguard.io import load_photo

    src = album_dir / "person_img1" / "img10.jpg"
    upright = load_photo(src).pixels
    stored = Image.fromarray((upright * 255).round().astype(np.uint8)).transpose(Image.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": undoes the ROTATE_90 above
    path = tmp_path / "sideways.jpg"
    stored.save(path, quality=95, exif=exif)
    rotated = load_photo(path).pixels
    assert rotated.shape == upright.shape
    a, b = detector(upright)[0], detector(rotated)[0]
    assert np.allclose(a.box, b.box, atol=6)
    assert np.allclose(a.landmarks, b.landmarks, atol=4)


def _quarter_turned(points: np.ndarray, turns: int, width: int, height: int) -> np.ndarray:
    """(N, 2) x, y of an (height, width) photo, in the photo turned by np.rot90(., turns)."""
    for _ in range(turns):  # one anticlockwise quarter: (x, y) -> (y, width - x)
        points = np.stack([points[:, 1], width - points[:, 0]], axis=1)
        width, height = height, width
    return points


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_photo_turned_without_its_tag_gives_its_faces_upright(detector, album_dir, turns):
    """A photo whose rotation tag was lost shows its face on its side: the face is found
    on the photo turned upright, and its box and landmarks come back in the photo's own
    pixels, landmarks in the face's own order (aligning turns the face upright)."""
    from faceguard.io import load_photo

    upright = load_photo(album_dir / "person_img1" / "img10.jpg").pixels
    h, w = upright.shape[:2]
    turned = np.ascontiguousarray(np.rot90(upright, turns))
    want = detector(upright)[0]
    got = detector(turned)
    assert len(got) == 1
    marks = _quarter_turned(want.landmarks, turns, w, h)
    corners = _quarter_turned(np.reshape(want.box, (2, 2)), turns, w, h)
    assert np.allclose(got[0].landmarks, marks, atol=2)
    assert np.allclose(got[0].box, [*corners.min(axis=0), *corners.max(axis=0)], atol=2)
    # without looking turned, MTCNN misses the face or misplaces its landmarks
    plain = FaceDetector(device="cpu", turned=False)(turned)
    assert not plain or np.abs(plain[0].landmarks - marks).max() > 0.1 * want.width


def test_a_face_on_its_side_is_cloaked_over_its_own_shape(detector, album_dir):
    """The cloak's ellipse follows the face: on a photo turned a quarter, the face's
    ellipse is the upright one's, turned (forehead and chin left and right)."""
    from faceguard.cloak.budget import face_weight
    from faceguard.io import load_photo

    upright = load_photo(album_dir / "person_img1" / "img10.jpg").pixels
    h, w = upright.shape[:2]
    face = detector(upright)[0]
    side = detector(np.ascontiguousarray(np.rot90(upright, 1)))[0]
    assert side.orientation == "on its side" and face.orientation == "upright"
    assert abs(side.tilt) > 80
    want = np.rot90(face_weight(face, (0, 0, w, h))[0, 0].numpy(), 1)
    got = face_weight(side, (0, 0, h, w))[0, 0].numpy()
    assert np.abs(got - want).max() < 0.1  # 0.58 with the upright face's ellipse


def test_a_turn_is_taken_only_over_less_sure_or_fewer_faces():
    from faceguard.detect import _turn_beats

    def faces(*scores: float) -> list[Face]:
        upright = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], float)
        return [Face((0, 0, 100, 100), upright + 100 * i, s) for i, s in enumerate(scores)]

    assert _turn_beats(faces(0.9999), faces(0.99))  # a false face on the photo as it is
    assert _turn_beats(faces(0.9999), faces(0.97, 0.95, 0.96))
    assert not _turn_beats(faces(0.975), faces())  # not sure enough to turn the photo
    assert not _turn_beats(faces(0.99), faces(0.994))  # no surer than the upright face
    # a crowd of faces, each a little unsure, is not given up for one face turned
    assert not _turn_beats(faces(0.999), faces(0.99, 0.99, 0.98, 0.985))
    assert _turn_beats(faces(0.999, 0.99, 0.99, 0.98), faces(0.99, 0.99, 0.98, 0.985))


def test_an_upright_photo_is_not_looked_at_turned(detector, astronaut, monkeypatch):
    turned = []
    original = np.rot90
    monkeypatch.setattr(np, "rot90", lambda *a, **k: turned.append(1) or original(*a, **k))
    assert len(detector(astronaut)) == 1 and not turned
    assert detector(np.ascontiguousarray(original(astronaut, 1)))
    assert turned  # the same detector does look turned when the face is on its side


@pytest.mark.parametrize("side", ["left", "bottom"])
def test_a_face_the_photos_edge_cuts_in_half_is_found(astronaut, side):
    """MTCNN misses a face cut in half by the edge; the look with the edges mirrored finds
    it, its box in the photo and its landmarks where the whole face has them."""
    whole = FaceDetector(edges=False)(astronaut)[0]
    x0, y0, x1, y1 = whole.box
    middle_x, middle_y = int((x0 + x1) / 2), int((y0 + y1) / 2)
    left, bottom = (middle_x, astronaut.shape[0]) if side == "left" else (0, middle_y)
    cut = np.ascontiguousarray(astronaut[:bottom, left:])
    assert FaceDetector(edges=False)(cut) == []
    faces = FaceDetector()(cut)
    assert len(faces) == 1
    found = faces[0]
    expected = (max(0.0, x0 - left), y0, x1 - left, min(float(bottom), y1))
    assert iou(found.box, expected) > 0.6
    assert 0 <= found.box[0] and found.box[2] <= cut.shape[1] and found.box[3] <= cut.shape[0]
    eye_gap = np.linalg.norm(whole.landmarks[1] - whole.landmarks[0])
    shown = [1] if side == "left" else [0, 1]  # the eyes the cut photo still shows
    error = np.linalg.norm(found.landmarks[shown] + (left, 0) - whole.landmarks[shown], axis=1)
    assert error.max() < 0.15 * eye_gap


@pytest.mark.parametrize("share", [-0.05, 0.2, 0.4])
def test_a_face_at_the_edge_is_found_once_not_with_its_mirror(astronaut, share):
    """A face whole at the edge, or with a share of it cut off, which MTCNN finds as it is:
    the look with the edges mirrored finds it and its mirror again, and adds neither."""
    whole = FaceDetector(edges=False)(astronaut)[0]
    x0, y0, x1, y1 = whole.box
    left, top = int(x0 + share * (x1 - x0)), int(y0 + share * (y1 - y0))
    for cut in (astronaut[:, left:], astronaut[top:]):
        assert len(FaceDetector()(np.ascontiguousarray(cut))) == 1


def test_the_edge_look_judges_only_boxes_near_the_edge_and_finds_the_same_face(astronaut):
    """The look for faces the edge cuts sends to R-Net only the boxes that may cross the
    photo's edge in its mirrored view, and finds the same face."""
    import torch

    from faceguard.mtcnn import Mtcnn, _near_edge

    photo = (10, 10, 110, 90)
    boxes = torch.tensor([[0.0, 30, 20, 50],  # crosses the left edge
                          [40, 30, 60, 50],  # well inside
                          [15, 30, 35, 50],  # inside, within half its side of the edge
                          [-40, -40, -20, -20]])  # well outside, in the mirrored margin
    assert _near_edge(boxes, photo).tolist() == [True, False, True, False]

    x0, _, x1, _ = FaceDetector(edges=False)(astronaut)[0].box
    cut = np.ascontiguousarray(astronaut[:, int((x0 + x1) / 2):])  # half the face cut off
    h, w, pad = *cut.shape[:2], 40
    mirrored = np.pad(cut, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    mtcnn, judged = Mtcnn("cpu"), []
    rnet = mtcnn.rnet
    mtcnn.rnet = lambda crops: judged.append(len(crops)) or rnet(crops)
    everywhere = mtcnn(mirrored, 40)
    near = mtcnn(mirrored, 40, crossing=(pad, pad, pad + w, pad + h))
    assert judged[1] < judged[0]
    crosses = everywhere[0][:, 0] < pad
    assert crosses.sum() == len(near[0]) == 1
    np.testing.assert_allclose(near[0], everywhere[0][crosses], atol=1e-3)
    np.testing.assert_allclose(near[2], everywhere[2][crosses], atol=1e-3)


def test_a_small_face_in_a_huge_photo_gets_its_full_resolution_landmarks(astronaut,
                                                                         monkeypatch):
    """Detected on the photo shrunk to 1024 px, then found again on a full-resolution
    crop: the landmarks of a 55 px face land where a full-resolution detection puts
    them, closer than the shrunk detection alone."""
    canvas = np.full((2400, 3200, 3), 128, np.uint8)
    canvas[1500:1820, 2100:2420] = np.asarray(Image.fromarray(astronaut).resize((320, 320),
                                                                                Image.LANCZOS))
    full = FaceDetector(max_side=4096)(canvas)[0]
    refined = FaceDetector()(canvas)[0]
    monkeypatch.setattr(FaceDetector, "_refine", lambda self, pixels, face: face)
    coarse = FaceDetector()(canvas)[0]
    error = np.abs(refined.landmarks - full.landmarks).max()
    assert error <= 1.5 and refined.score == coarse.score
    assert error < np.abs(coarse.landmarks - full.landmarks).max()


def test_a_face_smaller_than_the_default_finds_is_found_when_asked_for(astronaut):
    """In a 4000 px photo the default misses a face of 27 px (it finds faces from about
    47 px); asked for faces of 20 px, the detector finds it, shrinking the photo less."""
    canvas = np.full((3000, 4000, 3), 128, np.uint8)
    # the astronaut's face is 88 px of her photo's 512: a 27 px face at 160
    canvas[1500:1660, 2000:2160] = np.asarray(Image.fromarray(astronaut).resize(
        (160, 160), Image.LANCZOS))
    assert FaceDetector()(canvas) == []
    asked = FaceDetector(min_face_size=20)
    [face] = asked(canvas)
    assert 20 <= face.width <= 35 and 2000 <= face.box[0] < face.box[2] <= 2160
    assert "min_face_size=20" in repr(asked) and "min_face_size=None" in repr(FaceDetector())


def test_the_cascade_finds_what_facenet_pytorch_finds(album_dir):
    """Our driver of the MTCNN networks (OpenCV resampling) against facenet-pytorch's own
    ``detect_face`` on album photos: the same confident faces, boxes and landmarks
    within a few percent of the face's width (the resampling differs, not the nets)."""
    from facenet_pytorch import MTCNN

    from faceguard.io import load_photo
    from faceguard.mtcnn import Mtcnn

    ours, theirs = Mtcnn("cpu"), MTCNN(keep_all=True, min_face_size=20, device="cpu")
    names = ["couple.jpg", "selfie-many-people.jpg"]
    paths = [p for p in sorted(album_dir.rglob("*.jpg")) if p.name in names]
    paths += sorted(album_dir.glob("person_img1/*.jpg"))[:3]
    compared = 0
    for path in paths:
        pixels = (load_photo(path).pixels * 255).round().astype(np.uint8)
        if max(pixels.shape) > 1200:
            continue
        boxes, scores, landmarks = ours(pixels, 20)
        their_boxes, their_scores, their_landmarks = theirs.detect(pixels, landmarks=True)
        sure = np.asarray(their_scores, dtype=float) > 0.95
        assert (scores > 0.95).sum() == sure.sum(), path.name
        for box, points in zip(np.asarray(their_boxes[sure], float),
                               np.asarray(their_landmarks[sure], float), strict=True):
            k = np.argmin(np.abs(boxes - box).sum(axis=1))
            width = box[2] - box[0]
            assert np.abs(boxes[k] - box).max() < 0.1 * width, path.name
            assert np.abs(landmarks[k] - points).max() < 0.06 * width, path.name
            compared += 1
    assert compared >= 6


def test_a_photo_smaller_than_the_smallest_face_has_none():
    from faceguard.mtcnn import Mtcnn

    boxes, scores, landmarks = Mtcnn("cpu")(np.zeros((10, 16, 3), np.uint8), 12)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and landmarks.shape == (0, 5, 2)


def test_the_weights_come_from_a_bundle_when_frozen(tmp_path, monkeypatch):
    """In a PyInstaller bundle the MTCNN weights are a copy inside it (packaging/)."""
    import sys

    from faceguard.mtcnn import weights_folder

    installed = weights_folder()
    assert (installed / "pnet.pt").is_file()
    copy = tmp_path / "facenet_pytorch" / "data"
    copy.mkdir(parents=True)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert weights_folder() == copy


def test_detecting_does_not_import_torchvision():
    """facenet-pytorch's package imports torchvision, a second of start-up; the cascade
    reads its weights without it (a fresh interpreter: the test session imports more)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from faceguard.detect import FaceDetector; "
            "FaceDetector()(np.zeros((64, 64, 3), np.uint8)); "
            "print(sorted(m for m in ('torchvision', 'facenet_pytorch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"
