"""The Audit step says its verdict first, in plain words, forgets stale results and
knows the album's originals."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceguard.audit.run import AuditResult


def _row(defense: str, model: str, share: float, held_out: bool = False) -> dict:
    return {"defense": defense, "model": model, "held_out": held_out, "faces": 3,
            "protected_top1": None, "protected_verify": share, "mean_distance": 1.3,
            "clean_top1": None, "clean_verify": 1.0, "protected": share,
            "clean_recognised": 1.0}


def _show(window, rows: list[dict], visibility: dict | None = None) -> str:
    from faceguard_gui.jobs import AuditOutcome

    result = AuditResult(protection=rows, cloak_models=["dlib"], faces=3, photos=3, people=1,
                         visibility=visibility or {}, other_photos=True)
    window.audit.show_outcome(AuditOutcome(result, None, None, ["a finding"]))
    return window.audit.results.verdict.text()


@pytest.mark.parametrize("shares, headline, detail", [
    ((1.0, 1.0, 1.0), "Protected.", "After re-upload: still protected."),
    ((1.0, 0.0, 1.0), "Partly protected.", "it was made on; 0 of 1 it was not. After"),
    ((0.0, 0.2, 0.0), "Not protected.", "Protected against 0 of 1 recognizer it was made on"),
])
def test_verdict_wording(make_window, shares, headline, detail):
    window = make_window()
    made_on, other, reupload = shares
    text = _show(window, [_row("none", "dlib", made_on), _row("none", "faceres", other, True),
                          _row("jpeg75", "dlib", reupload), _row("jpeg75", "faceres", other,
                                                                 True)],
                 {"ssimulacra2": 80.0, "jpeg_equivalent": 92})
    assert f"<b>{headline}</b>" in text
    assert detail in text
    assert "How visible: invisible at normal size, faint up close (like JPEG quality 92)." in text
    assert window.audit.export_button.isEnabled()


def test_changing_the_folder_clears_stale_results(make_window, tmp_path):
    window = make_window()
    window.audit.cloaked.setText(str(tmp_path / "one"))
    _show(window, [_row("none", "dlib", 1.0)])
    assert window.audit.results.protection_table.rowCount() == 1
    window.audit.cloaked.setText(str(tmp_path / "two"))
    assert window.audit.outcome is None
    assert window.audit.results.protection_table.rowCount() == 0
    assert "Run the audit" in window.audit.results.verdict.text()
    assert not window.audit.export_button.isEnabled()


def test_protecting_the_same_folder_again_clears_its_audit(make_window, tmp_path):
    window = make_window()
    window.audit.set_cloaked_folder(tmp_path / "protected")
    _show(window, [_row("none", "dlib", 1.0)])
    window.audit.set_cloaked_folder(tmp_path / "protected")  # written again: same text
    assert window.audit.outcome is None
    assert not window.audit.export_button.isEnabled()


def test_few_faces_show_no_roc_auc_and_the_plot_message_stays(make_window):
    from faceguard_gui.jobs import AuditOutcome

    window = make_window()
    detection = {"detector": "wlmp-linear", "faces": 4, "roc_auc": 0.38, "accuracy": 0.5,
                 "precision": 0.5, "recall": 0.5, "f1": 0.5, "flagged_clean": 0.5,
                 "split": "stand-ins", "after_defense": None, "sentence": "too few"}
    result = AuditResult(protection=[_row("none", "dlib", 1.0)], faces=4, photos=4, people=1,
                         detection=[detection])
    window.audit.show_outcome(AuditOutcome(result, None, None, []))
    table = window.audit.results.detection_table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    auc = next(c for c, h in enumerate(headers) if "AUC" in h)
    assert table.item(0, auc).text() == "too few faces"
    roc = window.audit.results.roc
    message = roc.text()
    assert message.startswith("No detection plot")
    roc.resize(roc.width() + 40, roc.height())  # a resize wiped the message before
    roc._fit()
    assert roc.text() == message


def test_a_detection_check_that_cannot_run_says_why_in_one_sentence(make_window):
    from faceguard.audit.detection_step import too_few
    from faceguard_gui.jobs import AuditOutcome

    window = make_window()
    problem = too_few(3, "stand-in faces were turned off")
    result = AuditResult(protection=[_row("none", "dlib", 1.0)], faces=3, photos=3, people=1,
                         detection_problem=problem)
    window.audit.show_outcome(AuditOutcome(result, None, None, []))
    assert problem in window.audit.results.verdict.text()
    assert window.audit.results.roc.text() == f"No detection plot: {problem}"
    assert window.audit.results.detection_table.rowCount() == 0


def test_new_results_forget_the_report_written_of_the_last_and_show_no_empty_column(
        make_window, tmp_path):
    """After a re-run the note still linked to the last results' report; with no clean-up
    tried, the examples showed a "purified" column that was the cloaked face again."""
    import numpy as np

    from faceguard_gui.jobs import AuditOutcome

    window = make_window()
    window.audit.export_note.setText("Report written: old/report.html")
    face = np.zeros((8, 8, 3), np.uint8)
    example = {"person": "p", "photo": "a.jpg", "purified_by": None, "original": face,
               "cloaked": face, "purified": face, "difference": face}
    result = AuditResult(protection=[_row("none", "dlib", 1.0)], cloak_models=["dlib"],
                         faces=1, photos=1, people=1, examples=[example])
    window.audit.show_outcome(AuditOutcome(result, None, None, []))
    assert window.audit.export_note.text() == ""
    layout = window.audit.results.examples_layout
    titles = [layout.itemAtPosition(0, c).widget().text() for c in range(layout.columnCount())
              if layout.itemAtPosition(0, c) is not None]
    assert "<b>purified</b>" not in titles and len(titles) == 3


def test_the_audit_is_handed_the_album_s_photos_as_originals(make_window, tmp_path,
                                                            monkeypatch):
    """An album the manifest cannot place (on another drive than its output, say): the
    audit takes the photos the app protected as their originals, so nobody has to find
    their folder again (:func:`faceguard.audit.pairs.find_pairs` checks each is unchanged)."""
    import faceguard_gui.audit_view as audit_view

    photo = tmp_path / "album" / "trip" / "a.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"a photo")
    window = make_window()
    window.ctx.album.add([tmp_path / "album"])
    jobs = []
    monkeypatch.setattr(audit_view, "audit", lambda job, cache: jobs.append(job) or iter(()))
    monkeypatch.setattr(window.ctx.jobs, "start", lambda title, work, *_: work())
    window.audit.cloaked.setText(str(tmp_path / "protected"))
    window.audit.run()
    assert jobs[0].original_photos == {Path("trip/a.jpg"): photo.resolve()}
    assert jobs[0].originals is None  # the field is left for the user
