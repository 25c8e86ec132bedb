"""The plain-words verdict never calls a face protected on the recognizers it was made on alone."""

from __future__ import annotations

from faceguard.manifest import FaceRecord
from faceguard.verdict import tally, verdict
from faceguard.words import AGAINST_OWN_PHOTOS


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


# ------------------------------------------------------------------ a batch's tally

def test_a_batch_tally_counts_faces_per_recognizer_against_those_it_recognised_before():
    made_on = {"dlib": True, "sface": False, "facenet": False}
    faces = [
        # past every recognizer
        FaceRecord(box=[0, 0, 10, 10], landmarks=[], protected=True, made_on=made_on,
                   recognised={"dlib": False, "sface": False, "facenet": False},
                   distance_before={"facenet": 0.6}, thresholds={"facenet": 0.46}),
        # still taken by sface; facenet missed it clean as well
        FaceRecord(box=[0, 0, 10, 10], landmarks=[], protected=True, made_on=made_on,
                   recognised={"dlib": False, "sface": True, "facenet": False},
                   distance_before={"facenet": 0.6}, thresholds={"facenet": 0.46}),
        # not cloaked: not counted
        FaceRecord(box=[0, 0, 10, 10], landmarks=[], protected=False,
                   recognised={"dlib": True}),
    ]
    t = tally(faces)
    assert (t.faces, t.unrecognised) == (2, 1)
    assert t.still == (("dlib", 0, 2, True), ("sface", 1, 2, False), ("facenet", 0, 0, False))
    words = t.words("high")
    assert words.startswith("Of 2 faces cloaked, 1 got past every recognizer.")
    assert "dlib 0 of 2 (made on); sface 1 of 2 (not made on)." in words
    assert "Not counted: facenet, which did not recognise these faces before" in words
    assert "A stronger cloak (high) shows more and fools more" in words
    # no stronger preset to offer (the strongest, or the user's own knobs), or nothing to
    # offer it for: every face got past
    assert "stronger" not in t.words()
    assert "stronger" not in tally(faces[:1]).words("high")
    assert tally(faces[:1]).words().startswith("Of 1 face cloaked, 1 got past")
    # a face past every recognizer is past the photos it was pushed from, not a platform's
    assert AGAINST_OWN_PHOTOS in words


def test_a_tally_of_everyone_quotes_what_the_stronger_preset_measured_cloaking_everyone():
    """A face cloaked with no photos of its person given (protect-all) is fooled less
    often than the presets' figures, measured with them, say."""
    from faceguard.measured import measured_protection

    made_on = {"dlib": True, "sface": False}
    faces = [FaceRecord(box=[0, 0, 10, 10], landmarks=[], protected=True, person=person,
                        made_on=made_on, recognised={"dlib": False, "sface": True})
             for person in ("self", "self")]
    assert tally(faces).everyone
    words = tally(faces).words("high")
    assert measured_protection("high", everyone=True) in words
    assert "with every face cloaked and no photos of the person given" in words
    faces[1].person = "Ann"  # one of them from Ann's own photos
    assert not tally(faces).everyone
    assert measured_protection("high") in tally(faces).words("high")


def test_a_face_no_recognizer_measured_did_not_get_past_them():
    t = tally([FaceRecord(box=[0, 0, 10, 10], landmarks=[], protected=True)])
    assert (t.faces, t.unrecognised, t.still) == (1, 0, ())
    assert t.words() == "Of 1 face cloaked, none got past every recognizer."
    assert tally([]).words() == "No face was cloaked."


# ------------------------------------------------------------------ an audit's verdict

def _row(defense: str, model: str, share: float, held_out: bool = False) -> dict:
    return {"defense": defense, "model": model, "held_out": held_out, "faces": 5,
            "protected_top1": None, "protected_verify": share, "protected": share,
            "clean_recognised": 1.0}


def test_audit_verdict_protected_in_the_issues_words():
    from faceguard.audit.verdict import audit_verdict

    rows = [_row(d, m, 1.0, held_out=m == "faceres")
            for d in ("none", "jpeg75") for m in ("dlib", "mobileface", "faceres")]
    rows += [_row("bilateral", m, 1.0) for m in ("dlib", "faceres")]
    rows += [_row("bl+sr", "dlib", 1.0), _row("bl+sr", "faceres", 0.2),
             _row("purifier", "dlib", 0.4), _row("resize", "dlib", 0.95)]
    v = audit_verdict(rows, {"ssimulacra2": 78.0, "jpeg_equivalent": 90})
    assert v.status == "protected"
    assert v.words() == (
        "Protected. Protected against 2 of 2 recognizers it was made on; 1 of 1 it was not. "
        "After re-upload: still protected. After deliberate clean-up: not protected. "
        "How visible: invisible at normal size, faint up close (like "
        "JPEG quality 90). A recognizer counts as fooled when 90% or more of each protected "
        "person's faces it recognised without the cloak are beyond its match threshold.")


def test_a_recognizer_it_was_not_made_on_matching_one_face_in_ten_is_not_protected():
    """SFace and FaceNet, never seen, each still matching 1 face of 10 counted as fooled
    (90%), and the audit said "Protected."; the issue: never while a recognizer the cloak
    was not made on still matches."""
    from faceguard.audit.verdict import audit_verdict

    rows = [_row("none", m, 1.0, held_out=False) | {"faces": 10}
            for m in ("dlib", "mobileface")]
    rows += [_row("none", m, 0.9, held_out=True) | {"faces": 10} for m in ("sface", "facenet")]
    v = audit_verdict(rows, {"ssimulacra2": 78.0, "jpeg_equivalent": 90})
    assert v.not_made_on == (2, 2) and v.status == "partly"
    assert ("Not every face: sface still recognises 1 of the 10 faces it recognised without "
            "the cloak; facenet still recognises 1 of the 10 faces") in v.words()
    rows[-1]["protected"] = rows[-2]["protected"] = 1.0
    assert audit_verdict(rows).status == "protected"
    # after the re-upload every platform does, too (it counted as fooled at 90%)
    rows += [_row("jpeg75", m, 1.0, held_out=False) | {"faces": 10}
             for m in ("dlib", "mobileface")]
    rows += [_row("jpeg75", "sface", 0.9, held_out=True) | {"faces": 10}]
    v = audit_verdict(rows)
    assert v.status == "partly"
    assert ("Not every face: sface still recognises 1 of the 10 faces it recognised without "
            "the cloak after re-upload (JPEG 75).") in v.words()


def test_after_clean_up_counts_recognizers_as_after_re_upload():
    """A clean-up that changed nothing read "not protected" (counted per clean-up, every
    recognizer needed) where re-upload read "protected against 1 of 2 recognizers"."""
    from faceguard.audit.verdict import audit_verdict

    rows = [_row(d, m, 1.0 if m == "dlib" else 0.0)
            for d in ("none", "jpeg75", "bitdepth") for m in ("dlib", "faceres")]
    v = audit_verdict(rows)
    assert v.reupload == v.cleanup == (1, 2)
    assert ("After re-upload: protected against 1 of 2 recognizers. After deliberate "
            "clean-up: protected against 1 of 2 recognizers.") in v.details()


def test_not_measured_says_why_when_no_face_was_recognised_clean():
    """"Not measured" read "No recognizer the cloak was made on was checked" where every
    recognizer ran but none recognised the faces even uncloaked."""
    from faceguard.audit.verdict import audit_verdict

    rows = [dict(_row("none", m, 0.0), protected=None, clean_recognised=0.0)
            for m in ("dlib", "faceres")]
    v = audit_verdict(rows)
    assert v.status == "unmeasured" and v.unrecognised
    assert v.words().startswith("Not measured. No recognizer recognised the faces even "
                                "without the cloak")
    assert "was checked" not in v.words()
    assert not audit_verdict([]).unrecognised


def test_measured_only_against_the_photos_the_cloak_knew_is_never_protected():
    """Without a Known people folder's photos of the person, each face was measured
    against the photos the cloak was made to move away from: "Protected." there, 0% once
    two people's other photos were added."""
    from faceguard.audit.verdict import audit_verdict

    rows = [_row(d, m, 1.0, held_out=m == "faceres")
            for d in ("none", "jpeg75") for m in ("dlib", "faceres")]
    assert audit_verdict(rows).status == "protected"
    own = audit_verdict(rows, other_photos=False)
    assert own.status == "unchecked"
    assert "Measured against the photos the cloak was made to move away from" in own.words()
    assert "Measured against" not in audit_verdict(rows).words()


def test_a_recognizer_is_fooled_only_when_each_protected_person_is():
    """90% of ten faces over four people read "Protected." while one person's only face
    was still matched by faceres."""
    from faceguard.audit.verdict import audit_verdict

    rows = [_row(d, m, 1.0, held_out=m == "faceres")
            for d in ("none", "jpeg75") for m in ("dlib", "faceres")]
    rows[1] |= {"protected": 0.9, "least_person": "Ann", "least_person_protected": 0.0}
    v = audit_verdict(rows)
    assert v.not_made_on == (0, 1) and v.status != "protected"
    assert "Not for everyone: Ann is still recognised by faceres (0% of their faces " \
           "protected)." in v.words()
    rows[1] |= {"least_person_protected": 0.95}
    assert audit_verdict(rows).not_made_on == (1, 1)


def test_audit_verdict_partly_and_unprotected_and_unchecked():
    from faceguard.audit.verdict import audit_verdict

    partly = audit_verdict([_row("none", "dlib", 1.0), _row("none", "faceres", 0.5, True),
                            _row("jpeg75", "dlib", 0.8), _row("jpeg75", "faceres", 0.0, True)])
    assert partly.status == "partly" and partly.headline == "Partly protected."
    assert "it was made on; 0 of 1 it was not. After" in partly.details()
    assert "After re-upload: not protected." in partly.details()
    assert "After deliberate clean-up: not checked." in partly.details()
    assert "How visible: not measured." in partly.details()
    # a share just under the bar does not count: one face in ten still recognised is allowed
    assert audit_verdict([_row("none", "dlib", 0.89)]).made_on == (0, 1)
    none = audit_verdict([_row("none", "dlib", 0.0), _row("none", "faceres", 0.1, True)])
    assert none.status == "unprotected" and none.words().startswith("Not protected.")
    made_on_only = audit_verdict([_row("none", "dlib", 1.0)])
    assert made_on_only.status == "unchecked"
    assert "none it was not made on was checked, so it cannot be called protected" in \
        made_on_only.details()
    assert audit_verdict([]).headline == "Not measured."


def test_the_audit_verdict_says_how_a_recognizer_was_judged():
    """Picked out among the people known (top-1) or by its match threshold: the two can
    differ, as a face past the threshold may still be nearer its person than anyone else."""
    from faceguard.audit.verdict import audit_verdict

    top1 = dict(_row("none", "dlib", 1.0), protected_top1=0.75, protected=0.75)
    v = audit_verdict([top1, _row("none", "faceres", 1.0, True)], people=12)
    assert v.made_on == (0, 1) and v.among == 12
    assert v.details().endswith(
        "A recognizer counts as fooled when 90% or more of each protected person's faces it "
        "recognised without the cloak are beyond its match threshold and nearer someone "
        "else than to them, "
        "among the 12 people known.")
    assert audit_verdict([top1], people=4).among == 0  # among a few, the threshold alone
    v = audit_verdict([_row("none", "dlib", 1.0)], people=12)
    assert v.among == 0 and v.details().endswith("are beyond its match threshold.")


def test_without_the_cloaks_recognizers_known_none_counts_as_a_platforms_own():
    """No manifest: every recognizer was counted as one the cloak was not made on, so a
    cloak fooling the very recognizers it was made on was called "Protected."."""
    from faceguard.audit.verdict import audit_verdict

    v = audit_verdict([_row(d, m, 1.0, held_out=None)
                       for d in ("none", "jpeg75") for m in ("dlib", "faceres")])
    assert v.status == "unchecked" and v.unknown == (2, 2) and v.not_made_on == (0, 0)
    assert v.details().startswith(
        "Protected against 2 of 2 recognizers; which of them the cloak was made on is not "
        "known (no FaceGuard manifest), so none counts as a platform's own. After")
    assert audit_verdict([_row("none", "dlib", 0.5, held_out=None),
                          _row("none", "faceres", 1.0, held_out=None)]).status == "partly"


def test_a_recognizer_that_misses_the_clean_faces_too_is_not_counted_as_fooled():
    from faceguard.audit.verdict import audit_verdict

    # protection_table's row of a recognizer that recognised no clean face
    blind = dict(_row("none", "facenet", 1.0, held_out=True), clean_recognised=0.0,
                 protected=None)
    v = audit_verdict([_row("none", "dlib", 1.0), blind])
    assert v.not_made_on == (0, 0) and v.status == "unchecked"
    seeing = dict(blind, clean_recognised=0.6, protected=1.0)
    assert audit_verdict([_row("none", "dlib", 1.0), seeing]).status == "protected"


def test_the_held_out_check_alone_never_makes_a_cloak_protected():
    """Its cloaks, re-made on face crops, transfer far better than a cloak on whole
    photos (faceres never seen: 50% of crops, 11% of real photos)."""
    from faceguard.audit.verdict import audit_verdict

    check = dict(_row("none", "faceres", 1.0, held_out=True), check=True)
    v = audit_verdict([_row("none", "dlib", 1.0), check])
    assert v.not_made_on == (1, 1) and v.check_faces == 5
    assert v.status == "unchecked" and "at best an upper bound" in v.words()


def test_an_audit_that_measured_no_face_says_why_and_whom_to_add():
    """With no other photo of anyone, the verdict read "No recognizer the cloak was made on
    was checked", though dlib ran: it had nothing to match the faces against."""
    from faceguard.audit.verdict import audit_verdict

    rows = [dict(_row("none", m, 0.0), faces=0) for m in ("dlib", "faceres")]
    v = audit_verdict(rows, unmeasured=["Ann", "the person in b.jpg"])
    assert v.status == "unmeasured"
    assert v.words() == ("Not measured. No face could be measured: a face is measured against "
                         "other photos of its person, and there are none of Ann and the "
                         "person in b.jpg. Add some (--gallery DIR; in the app, Known people), "
                         "one sub-folder per person.")
    assert audit_verdict(rows).words().startswith("Not measured. No recognizer")  # no names
    measured = [_row("none", "dlib", 1.0, held_out=True)]  # one measured: not said
    assert audit_verdict(measured, unmeasured=["Ann"]).unmeasured == ()


def test_a_tally_says_what_shrinking_buys_for_a_large_face_still_recognised():
    """A face 500 px wide or more is fooled less often at the same visibility: while one
    is still recognised, the tally says what shrinking its photo measured."""
    from faceguard.measured import LARGE_FACE_PX, LARGE_FACES_MEASURED

    def face(width: float, still: bool) -> FaceRecord:
        return FaceRecord(box=[10, 10, 10 + width, 20 + width], landmarks=[],
                          protected=True, made_on={"dlib": True}, recognised={"dlib": still})

    assert tally([face(LARGE_FACE_PX, True), face(100, True)]).large == 1
    words = tally([face(LARGE_FACE_PX, True), face(100, True)]).words()
    assert f"1 of the faces still recognised is {LARGE_FACE_PX} px wide or more" in words
    assert LARGE_FACES_MEASURED in words and "writes a smaller copy" not in words
    assert ("which the same visibility protects less (--max-side writes a smaller copy): "
            in tally([face(LARGE_FACE_PX, True)]).words(shrink="--max-side"))
    for faces in ([face(LARGE_FACE_PX - 1, True)], [face(900, False)]):  # small; fooled
        assert tally(faces).large == 0 and LARGE_FACES_MEASURED not in tally(faces).words()
