"""The manifest's face record: the facts every reader takes from it."""

from __future__ import annotations

from faceguard.manifest import FaceRecord, Manifest, fooled


def _face(after: dict[str, float], made_on: bool = True) -> FaceRecord:
    face = FaceRecord([0, 0, 10, 10], [[0, 0]] * 5, True, distance_before=dict.fromkeys(after, 0.2))
    face.measured(after, {"dlib": 0.6, "mobileface": 0.5}, dict.fromkeys(after, made_on),
                  {"ssim": 0.97, "ssimulacra2": 80.0})
    return face


def test_recognised_follows_the_threshold_and_visibility_is_kept_as_given():
    face = _face({"dlib": 0.7, "mobileface": 0.3})
    assert face.recognised == {"dlib": False, "mobileface": True}
    assert face.quality == {"ssim": 0.97, "ssimulacra2": 80.0}


def test_fooled_counts_recognizers_that_match_no_face_per_threat():
    faces = [_face({"dlib": 0.7, "mobileface": 0.3}), _face({"dlib": 0.9, "mobileface": 0.8})]
    assert fooled(faces) == (1, 2)
    assert fooled(faces, made_on=True) == (1, 2)
    assert fooled(faces, made_on=False) == (0, 0)
    assert fooled([]) == (0, 0)


def test_records_round_trip_through_the_manifest(tmp_path):
    manifest = Manifest(tmp_path)
    face = _face({"dlib": 0.7})
    manifest.record("a.jpg", {"status": "cloaked", "faces": [face.to_dict()]})
    again = Manifest.load(tmp_path)
    assert again.faces("a.jpg") == [face]
    # an older manifest without the newer keys still reads
    old = {k: v for k, v in face.to_dict().items() if k not in ("thresholds", "recognised")}
    assert FaceRecord.from_dict(old).recognised == {}
