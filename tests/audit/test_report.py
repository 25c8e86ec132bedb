"""The audit report in plain words: names people understand, grammar, the weakest case."""

from __future__ import annotations

import json

from faceguard.audit.report import summary, write_report
from faceguard.audit.run import AuditResult


def _row(defense: str, protected: float, model: str = "dlib", held_out: bool = False) -> dict:
    return {"defense": defense, "model": model, "held_out": held_out, "faces": 4,
            "protected_top1": protected, "protected_verify": protected, "mean_distance": 1.2,
            "clean_top1": 1.0, "clean_verify": 1.0, "protected": protected,
            "clean_recognised": 1.0, "among": 12}


def _result(rows: list[dict], **kw) -> AuditResult:
    return AuditResult(protection=rows, cloak_models=["dlib"], faces=4, photos=1, people=1,
                       cloak_settings={"method": "perceptual"}, **{"other_photos": True, **kw})


def test_weakest_case_names_a_defense_in_plain_words_even_on_ties():
    lines = summary(_result([_row("none", 0.5), _row("jpeg75", 0.5), _row("bl+sr", 0.75)]))
    weakest = [line for line in lines if line.startswith("Weakest case")]
    assert weakest == ["Weakest case for the recognizers the cloak was made on: 50% protected "
                       "after re-upload (JPEG 75) on dlib (beyond threshold and nearest "
                       "someone else)."]
    assert not any("'none'" in line or "nothing" in line for line in lines)


def test_only_the_photo_as_published_gives_no_weakest_case():
    lines = summary(_result([_row("none", 0.25)]))
    assert lines[0] == ("Against the recognizers the cloak was made on: 25% of the faces "
                        "recognised without the cloak protected as published (beyond "
                        "threshold and nearest someone else).")
    assert not any(line.startswith("Weakest case") for line in lines)
    # and no recognizer it was not made on was checked: the report says so
    assert "none it was not made on was tested" in lines[1]
    # a share over several recognizers says so, and names the least
    two = summary(_result([_row("none", 0.0), _row("none", 1.0, "mobileface")]))
    assert two[0] == ("Against the recognizers the cloak was made on: 50% of the faces "
                      "recognised without the cloak protected as published (beyond threshold "
                      "and nearest someone else), on average over 2 recognizers; least: "
                      "dlib, 0%.")


def test_a_recognizer_it_was_not_made_on_gets_its_own_line():
    lines = summary(_result([_row("none", 1.0), _row("none", 0.5, "faceres", held_out=True)]))
    assert ("Against recognizers the cloak was not made on: 50% of the faces recognised "
            "without the cloak protected as published (beyond threshold and nearest someone "
            "else).") in lines
    assert not any("none it was not made on was tested" in line for line in lines)


def test_unmeasured_faces_say_how_to_add_a_gallery():
    """The hint names whom photos are missing of ("them" named no one), and the folder the
    protected person is found under (or by their faces); a sub-folder of any name is taken
    as the person its faces show, so FaceGuard's own names are no folder names to give."""
    unmeasured = _row("none", 0.0) | {"faces": 0}
    named = summary(_result([unmeasured], protected_people=["Sam"], unmeasured=["Sam"]))
    assert named == ["No protected face could be measured: each person needs another photo "
                     "to be recognised by. Add other clean photos of Sam (--gallery DIR; in the "
                     'app, Known people), one sub-folder per person: a sub-folder named "Sam", '
                     "or whose faces match theirs, is taken as them."]
    for own_name in ("self", "the person to protect"):
        unnamed = summary(_result([unmeasured], protected_people=[own_name]))
        assert unnamed[0].endswith("photos of them (--gallery DIR; in the app, Known people), "
                                   "one sub-folder per person.")
    some = summary(_result([_row("none", 1.0) | {"faces": 2}], protected_people=["Sam", "Jo"],
                           unmeasured=["Jo", "the person in b.jpg"]))
    assert some[0] == ("Measured on 2 of 4 cloaked faces: a face can only be tested when its "
                       "person has another photo to be recognised by. Add other clean photos "
                       "of Jo and the person in b.jpg (--gallery DIR; in the app, Known "
                       'people), one sub-folder per person: a sub-folder named "Jo", or whose '
                       "faces match theirs, is taken as them.")  # Sam is measured


def test_detection_sentence_uses_the_plain_detector_name():
    from faceguard.audit.cloak_detection import DetectionResult

    r = DetectionResult("trajectory-lstm", 1, 1, 1, 1, 0.9, 0.8, 0.1, 2, "person", {})
    assert r.sentence().startswith("Deep-feature check (LSTM): a platform could flag 80%")


def test_a_detector_that_flags_clean_faces_as_often_cannot_tell_them_apart():
    """"could flag 100% of your cloaked faces while wrongly flagging 100% of clean ones"
    read as a detection."""
    from faceguard.audit.cloak_detection import DetectionResult

    r = DetectionResult("trajectory-lstm", 1, 1, 1, 1, 0.5, 1.0, 0.97, 2, "person", {})
    assert r.sentence() == ("Deep-feature check (LSTM): cannot tell your cloaked faces from "
                            "clean ones (it flags 100% of them and 97% of clean ones) "
                            "(ROC AUC 0.50; 0.5 = cannot tell them apart)")
    # scores that do tell them apart, a threshold misplaced: not "cannot tell"
    misplaced = DetectionResult("wlmp-linear", 0.9, 1, 0.9, 0.5, 0.95, 1.0, 1.0, 1,
                                "stand-ins", {}, faces=12)
    assert misplaced.sentence().startswith("Texture check (linear SVM): its scores tell your "
                                           "12 cloaked faces from clean ones, though at its "
                                           "threshold it flags 100% of them and 100% of clean")


def test_detection_on_a_few_faces_says_how_many_and_gives_no_auc():
    from faceguard.audit.cloak_detection import STAND_INS, DetectionResult

    one = DetectionResult("wlmp-linear", 1, 1, 1, 1, 0.0, 1.0, 0.0, 1, STAND_INS, {}, faces=1)
    assert one.sentence() == ("Texture check (linear SVM): a platform could flag 100% of your "
                              "1 cloaked face while wrongly flagging 0% of clean ones when "
                              "trained on stand-in faces FaceGuard cloaked itself (too few "
                              "faces for a ROC AUC, which needs 8)")
    many = DetectionResult("wlmp-linear", 1, 1, 1, 1, 0.91, 0.8, 0.1, 1, STAND_INS, {}, faces=8)
    assert many.sentence().endswith("your 8 cloaked faces while wrongly flagging 10% of clean "
                                    "ones when trained on stand-in faces FaceGuard cloaked "
                                    "itself (ROC AUC 0.91; 0.5 = cannot tell them apart)")


def test_report_says_one_person_and_keeps_technical_names_in_json(tmp_path):
    result = _result([_row("none", 1.0), _row("bl+sr", 0.5)])
    json_path, html_path = write_report(result, tmp_path)
    page = html_path.read_text()
    assert "1 photo, 4 cloaked faces, 1 person known" in page
    assert "<span title='bl+sr'>strong filter + upscaling (BL+SR)</span>" in page
    assert "<span title='perceptual'>Recommended (keeps the look)</span>" in page
    data = json.loads(json_path.read_text())
    assert [r["defense"] for r in data["protection"]] == ["none", "bl+sr"]
    assert data["names"]["defenses"]["bl+sr"] == "strong filter + upscaling (BL+SR)"


def test_report_shows_a_distance_as_a_number_and_a_share_as_a_percentage(tmp_path):
    """0.95 thresholds is a face still matched: it reads 0.95, never 95%, as in the app
    (the report read 1.565 where the app read 1.56)."""
    result = _result([_row("none", 0.25) | {"mean_distance": 0.953}])
    page = write_report(result, tmp_path)[1].read_text()
    assert "<td>0.95</td>" in page and "<td>95%</td>" not in page
    assert "<td>25%</td>" in page  # protected: a share


def test_the_held_out_checks_rows_are_in_the_table_in_plain_words(tmp_path):
    """The held-out check's figures made the verdict's "1 of 1 it was not", yet no row of
    the report's table or the app's showed them; and the detection table's headers were
    "precision", "recall", "F1"."""
    from dataclasses import asdict

    from faceguard.audit.cloak_detection import DetectionResult
    from faceguard.audit.report import CHECK_ROW, protection_rows

    detected = DetectionResult("wlmp-linear", 0.9, 0.8, 0.85, 0.8, 0.9, 0.8, 0.1, 5, "person",
                               {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.8, 1.0]}, faces=12)
    result = _result([_row("none", 1.0)], detection=[
        asdict(detected) | {"sentence": detected.sentence(), "after_defense": None}])
    result.held_out_check = [_row("none", 0.5, "faceres", held_out=True) | {"check": True}]
    rows = protection_rows(result)
    assert [r["what"] for r in rows] == ["nothing (as published)",
                                         "nothing (as published)" + CHECK_ROW]
    # among few people nearest-person figures are not counted: blank, not read as results
    result.people = 4
    assert {r["protected_top1"] for r in protection_rows(result)} == {None}
    result.people = 10
    assert protection_rows(result)[0]["protected_top1"] == 1.0
    page = write_report(result, tmp_path)[1].read_text()
    assert "re-made without this recognizer" in page
    assert "<th>Cloaked faces flagged</th>" in page
    assert "<th>precision</th>" not in page and "<th>F1</th>" not in page


def test_the_verdict_comes_first_in_the_report(tmp_path):
    result = _result([_row("none", 1.0), _row("none", 1.0, "faceres", held_out=True),
                      _row("jpeg75", 0.5), _row("jpeg75", 1.0, "faceres", held_out=True)],
                     visibility={"ssimulacra2": 70.0, "jpeg_equivalent": 80})
    json_path, html_path = write_report(result, tmp_path)
    body = html_path.read_text().split("<body>", 1)[1]
    first = body.split("</p>", 1)[0]
    assert first == ("<h1>FaceGuard audit</h1><p class=verdict><b>Partly protected.</b> "
                     "Protected against 1 of 1 recognizer it was made on; 1 of 1 it was not. "
                     "After re-upload: protected against 1 of 2 recognizers. After deliberate "
                     "clean-up: not checked. How visible: faint at normal size, visible up "
                     "close (like JPEG quality 80). A recognizer counts as fooled when 90% or "
                     "more of each protected person&#x27;s faces it recognised without the cloak "
                     "are beyond its match threshold.")
    verdict = json.loads(json_path.read_text())["verdict"]
    assert verdict["status"] == "partly" and verdict["reupload"] == [1, 2]
    assert "<h2>In detail</h2>" in body  # the findings follow the verdict
    # and give the figures the verdict's words rest on (the terminal's --details too)
    assert ("How visible, the most visible of 4 cloaked faces: faint at normal size, visible "
            "up close (SSIMULACRA2 70.0, like JPEG quality 80).") in summary(result)


def test_the_report_names_the_people_as_the_user_named_them(tmp_path):
    result = _result([_row("none", 1.0)], protected_people=["Me", "self"])
    _, html_path = write_report(result, tmp_path)
    assert "Protected: Me. " in html_path.read_text()


def test_named_cloaked_faces_name_their_cluster():
    """Unnamed clusters were "person N", as the app calls the people it finds: a
    bystander's cluster "person 1" was taken as the protected "person 1" of the app."""
    import numpy as np

    from faceguard.audit.people import cluster_names

    labels = np.array([0, 1, 0, 2, 3, 4])
    photos = ["x/a.jpg", "x/b.jpg", "x/c.jpg", "x/b.jpg", "2019/d.jpg", "2020/d.jpg"]
    # cloaked faces: a.jpg's, named "person 1" (by the app); d.jpg's and b.jpg's, unnamed
    called = cluster_names(labels, photos, [0, 4, 1], ["person 1", "self", None])
    assert called == {0: "person 1", 3: "the person in 2019/d.jpg",
                      1: "the person in b.jpg", 2: "a second person in b.jpg",
                      4: "the person in 2020/d.jpg"}
    # one folder's name was not enough: two photos, one name
    from faceguard.audit.people import shown_names

    assert shown_names(["2019/trip/a.jpg", "2020/trip/a.jpg", "trip/b.jpg"]) == {
        "2019/trip/a.jpg": "2019/trip/a.jpg", "2020/trip/a.jpg": "2020/trip/a.jpg",
        "trip/b.jpg": "b.jpg"}
