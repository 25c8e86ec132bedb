"""The plain-words verdict never calls a face protected on the recognizers it was made on alone."""

from __future__ import annotations

from faceguard.manifest import FaceRecord
from faceguard.verdict import verdict


def _face(recognised: dict[str, bool], made_on: dict[str, bool]) -> FaceRecord:
    return FaceRecord(box=[0, 0, 10, 10], landmarks=[], protected=True, recognised=recognised,
                      made_on=made_on)


def test_made_on_only_is_not_called_protected():
    v = verdict([_face({"dlib": False, "faceres": False}, {"dlib": True, "faceres": True})])
    assert v.made_on == (2, 2) and v.not_made_on == (0, 0)
    assert not v.protected
    assert "Fooled 2 of 2 recognizers it was made on" in v.words()
    assert "Not checked on a recognizer it was not made on" in v.words()
    assert v.short() == "2 of 2; others not checked"


def test_a_recognizer_it_was_not_made_on_that_still_matches_is_named():
    v = verdict([_face({"dlib": False, "faceres": True}, {"dlib": True, "faceres": False}),
                 _face({"dlib": False, "faceres": False}, {"dlib": True, "faceres": False})])
    assert v.made_on == (1, 1) and v.not_made_on == (0, 1)
    assert not v.protected
    assert "Fooled 0 of 1 recognizer it was not made on" in v.words()
    assert "Still recognised by faceres: not protected" in v.words()


def test_fooled_everywhere_is_protected():
    v = verdict([_face({"dlib": False, "faceres": False}, {"dlib": True, "faceres": False})])
    assert v.protected
    assert "not protected" not in v.words()


def test_no_cloaked_face():
    assert verdict([]).words() == "No face was cloaked."
    assert verdict([]).short() == "–"
