"""The desktop app driven as a user would: real photos, real models, offscreen Qt."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import FAST, JOB_TIMEOUT, wait_idle
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from faceguard.io import load_photo
from faceguard.manifest import MANIFEST_NAME, FaceRecord
from faceguard.settings import preset_values
from faceguard.verdict import tally
from faceguard.visibility import describe
from faceguard_gui.images import FACE_COLOUR, PROTECTED_COLOUR


def drop_files(widget, paths: list[Path]) -> None:
    """Drag and drop files onto a list widget, as from a file manager."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = QPointF(widget.viewport().rect().center())
    enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget.viewport(), enter)
    assert enter.isAccepted()
    drop = QDropEvent(centre, Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget.viewport(), drop)


def count_colour(pixmap, colour, tolerance: int = 40) -> int:
    """Pixels of ``pixmap`` close to ``colour`` (face boxes are drawn in known colours)."""
    image = pixmap.toImage().convertToFormat(pixmap.toImage().Format.Format_RGB888)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())
    rgb = data[:, : w * 3].reshape(h, w, 3).astype(int)
    target = np.array([colour.red(), colour.green(), colour.blue()])
    return int((np.abs(rgb - target).sum(-1) < tolerance).sum())


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_NAME).read_text())


@pytest.mark.slow
def test_protect_one_person_preview_audit_and_export(make_window, copy_photos, qtbot,
                                                      tmp_path):
    window = make_window()
    photos = copy_photos("a1", "a2")

    # 1. Photos: drop two album photos, see their faces
    drop_files(window.photos.grid, photos)
    wait_idle(qtbot, window)
    album = window.ctx.album
    assert [p.name for p in album.photos] == [p.name for p in photos]
    assert window.photos.grid.count() == 2
    for path in album.photos:
        photo = album.photos[path]
        assert photo.face_count == 1 and photo.problem is None
        assert "1 face" in window.photos._items[path].text()
        assert count_colour(window.photos._picture(photo), FACE_COLOUR) > 20  # its box
    assert window.photos.problems.isHidden()
    assert len(album.people) >= 1

    # 2. Protect: the person appears as a face chip with counts; tick them
    window.photos.next_button.click()
    assert window.current_page() is window.protect
    people = window.protect.people_list
    assert people.count() == len(album.people)
    assert not window.protect.protect_button.isEnabled()  # nobody chosen yet
    first = album.people[0]
    assert f"{len(first.person.faces)} face" in people.item(0).text()
    assert not people.item(0).icon().isNull()  # the face chip
    people.item(0).setCheckState(Qt.CheckState.Checked)
    assert album.chosen == [first.person]
    assert window.protect.protect_button.isEnabled()
    chosen_photo = album.photos[first.person.faces[0][0]]  # its box turned green
    assert count_colour(window.photos._picture(chosen_photo), PROTECTED_COLOUR) > 20

    # preview one photo in seconds: before/after view and per-face figures
    qtbot.mouseClick(window.protect.preview_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.protect.preview_window is not None, timeout=JOB_TIMEOUT)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    preview = window.protect.preview_window
    assert preview.isVisible()
    assert preview.view.before.size() == preview.view.after.size()
    assert preview.view.before.width() == Image.open(photos[0]).width  # full resolution
    figures = preview.figures
    headers = [figures.horizontalHeaderItem(c).text() for c in range(figures.columnCount())]
    assert figures.rowCount() == 1
    row = {h: figures.item(0, c).text() for c, h in enumerate(headers)}
    # the recognizers it was not made on measured too (from the person's album faces)
    assert row["Cloaked"] == "yes" and re.fullmatch(r"\d of \d; others \d of [1-9]",
                                                    row["Recognizers fooled"])
    # how visible, in the core's words, from the measured SSIMULACRA2 (not grey SSIM/PSNR)
    score = row["SSIMULACRA2 (100 = identical)"]
    assert row["How visible"] == describe(float(score.split()[0]))
    assert "like JPEG quality" in score
    assert re.fullmatch(r"\d+ / 255 \(cap 8\)(; after saving as JPEG: \d+ / 255)?",
                        row["Largest change"])
    assert "2.3 is just noticeable" in row["Colour change"]
    assert not {"PSNR", "SSIM (1 = identical)"} & set(headers)
    assert "→" in row["dlib: distance before → after"]
    assert "same person below 0.60" in row["dlib: distance before → after"]
    preview.difference_box.setChecked(True)  # amplified difference
    assert preview.view.show_difference
    preview.split_slider.setValue(250)
    assert preview.view.split == pytest.approx(0.25)
    preview.zoom_to_face()
    assert preview.view.zoom > 1  # a small face fills half the view
    preview.side_box.setChecked(True)  # two panes showing the same place
    left, right = preview.view.panes()
    assert preview.view.to_photo(left.center()) == preview.view.to_photo(right.center())
    preview.close()

    # protect the album
    qtbot.mouseClick(window.protect.protect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    outdir = tmp_path / "protected"
    manifest = manifest_of(outdir)
    entries = manifest["photos"]
    assert sorted(entries) == sorted(p.name for p in photos)
    for name, entry in entries.items():
        out = outdir / entry["output"]
        assert out.is_file() and load_photo(out).pixels.shape == load_photo(
            photos[0].parent / name).pixels.shape
    protected = [f for e in entries.values() for f in e["faces"] if f["protected"]]
    assert len(protected) == len(first.person.faces)
    assert window.protect.results.rowCount() == 2
    assert window.protect.results.item(0, 1).text() in ("cloaked", "copied (no protected face)")
    assert window.protect.results.horizontalHeaderItem(3).text() == "How visible"
    scores = {e["output"]: min(f["quality"]["ssimulacra2"] for f in e["faces"]
                               if f["protected"]) for e in entries.values()
              if any(f["protected"] for f in e["faces"])}
    shown = {window.protect.results.item(r, 3).text()
             for r in range(window.protect.results.rowCount())}
    assert {describe(s) for s in scores.values()} <= shown
    assert manifest["settings"]["models"] == FAST["models"]

    # 3. Audit: quick audit of the output folder, see the table and the plot
    window.protect.next_button.click()
    assert window.current_page() is window.audit
    assert Path(window.audit.cloaked.text()) == outdir
    qtbot.mouseClick(window.audit.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.audit.outcome is not None, timeout=JOB_TIMEOUT)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    table = window.audit.results.protection_table
    assert table.rowCount() == len(FAST["audit_defenses"]) * len(FAST["audit_models"])
    # plain names in the table, the technical ones in the tooltips
    assert {table.item(r, 0).text() for r in range(table.rowCount())} == {
        "nothing (as published)", "re-upload (JPEG 75)"}
    assert {table.item(r, 0).toolTip() for r in range(table.rowCount())} == {"none", "jpeg75"}
    assert table.item(0, 4).text().endswith("%")
    heatmap = window.audit.results.heatmap.pixmap()
    assert heatmap is not None and not heatmap.isNull()
    assert "protected" in window.audit.results.summary.toPlainText()
    # the verdict comes first, in plain words, above the tabs
    verdict = window.audit.results.verdict.text()
    assert "recognizer it was made on" in verdict and "How visible:" in verdict

    # export the report
    report = tmp_path / "report"
    window.audit.export(report)
    qtbot.waitUntil(lambda: window.audit.exported is not None, timeout=JOB_TIMEOUT)
    assert (report / "report.html").is_file()
    data = json.loads((report / "report.json").read_text())
    assert len(data["protection"]) == table.rowCount()

    # an audit run again and cancelled leaves the last one's results
    shown = window.audit.outcome
    window.jobs.progressed.connect(lambda event: window.cancel_button.click())
    window.audit.run_button.click()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    assert window.audit.outcome is shown and window.audit.results.verdict.text() == verdict
    assert window.messages == []  # nothing went wrong along the way

    # not into the folder to upload: the report shows the uncloaked faces
    window.audit.export(outdir / "report")
    assert window.messages[-1][0] == "Choose another folder"
    assert not (outdir / "report").exists()


@pytest.mark.slow
def test_cancel_midway_leaves_only_complete_files(make_window, copy_photos, qtbot, tmp_path):
    window = make_window(protect_everyone=True)
    photos = copy_photos("a1", "b1", "a2")
    window.photos.add_paths(photos)
    wait_idle(qtbot, window)
    window.go_to(1)

    seen = []

    def cancel_on_first_photo(event) -> None:
        if event.stage == "cloaking" and not event.under_way:
            seen.append(event.path)
            if len(seen) == 1:
                window.cancel_button.click()

    window.jobs.progressed.connect(cancel_on_first_photo)
    window.protect.protect_button.click()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)

    outdir = tmp_path / "protected"
    entries = manifest_of(outdir)["photos"]
    assert seen and 1 <= len(entries) < len(photos)  # stopped between photos
    written = sorted(p.name for p in outdir.iterdir() if p.name != MANIFEST_NAME)
    assert written == sorted(e["output"] for e in entries.values())  # no partial or temp file
    for entry in entries.values():
        assert load_photo(outdir / entry["output"]).pixels.shape[2] == 3  # complete, readable
    assert "stopped" in window.status_text.text()
    assert "Stopped" in window.protect.results_note.text()

    # running again finishes the rest and keeps what was done
    done_before = len(entries)
    window.jobs.progressed.disconnect(cancel_on_first_photo)
    window.protect.protect_button.click()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    entries = manifest_of(outdir)["photos"]
    assert len(entries) == len(photos)
    skipped = [window.protect.results.item(r, 1).text()
               for r in range(window.protect.results.rowCount())]
    assert skipped.count("already done (kept)") == done_before
    assert f", {done_before} done by an earlier run (kept). " in window.protect.results_note.text()
    # a kept photo compares with its original as a new one does
    kept = skipped.index("already done (kept)")
    window.protect.results.cellDoubleClicked.emit(kept, 0)
    assert window.protect.preview_window is not None and window.messages == []
    view = window.protect.preview_window.view
    assert view.after.size() == view.before.size() and view.after.width() > 0


@pytest.mark.slow
def test_progress_moves_within_a_face_and_cancel_stops_it_at_once(make_window, copy_photos,
                                                                 qtbot, tmp_path):
    window = make_window(protect_everyone=True, steps=40)
    window.photos.add_paths(copy_photos("a1"))
    wait_idle(qtbot, window)
    window.go_to(1)
    values, clicked, finished = [], [], []

    def watch(event) -> None:  # after the window has shown the event
        if event.stage == "cloaking" and event.under_way:
            values.append(window.progress.value())
            if event.part >= 0.25 and not clicked:
                clicked.append(time.perf_counter())
                window.cancel_button.click()

    window.jobs.progressed.connect(watch)
    window.jobs.finished.connect(lambda *end: finished.append(time.perf_counter()))
    window.protect.protect_button.click()
    qtbot.waitUntil(lambda: bool(finished), timeout=JOB_TIMEOUT)
    assert len(set(values)) >= 5 and values == sorted(values)  # the bar moves, face 1 of 1
    assert 0 < values[0] and values[-1] < window.progress.maximum()
    assert finished[0] - clicked[0] < 2.0  # stopped within a step or two of the click
    assert "stopped" in window.status_text.text()
    outdir = tmp_path / "protected"
    assert [p.name for p in outdir.iterdir()] in ([], [MANIFEST_NAME])  # nothing half-made


def test_unreadable_and_faceless_photos_show_error_rows(make_window, copy_photos, qtbot,
                                                        tmp_path):
    window = make_window()
    good = copy_photos("b1")[0]
    broken = good.parent / "broken.jpg"
    broken.write_bytes(b"this is not a photo")
    blank = good.parent / "blank.png"
    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(blank)

    window.photos.add_paths([good, broken, blank])
    wait_idle(qtbot, window)
    problems = window.photos.problems
    assert problems.isVisible()
    rows = {problems.item(r, 0).text(): problems.item(r, 1).text()
            for r in range(problems.rowCount())}
    assert set(rows) == {"broken.jpg", "blank.png"}
    assert "broken.jpg" in rows["broken.jpg"]  # the core's message names the file
    assert "no face" in rows["blank.png"]
    assert "cannot be read" in window.photos._items[broken.resolve()].text()
    assert "1 face" in window.photos._items[good.resolve()].text()
    assert "2 need attention" in window.photos.summary.text()
    assert window.isVisible() and window.messages == []  # an error row, not a crash
    # protected all the same: the good photo is cloaked, and the note counts the failure
    window.protect.everyone.setChecked(True)
    window.go_to(1)
    preview = window.protect.preview_photo  # nothing to preview in the other two
    assert [preview.itemText(i) for i in range(preview.count())] == [good.name]
    window.protect.protect_button.click()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    assert window.protect.results_note.text().startswith("1 photo cloaked in ")
    assert ", 1 failed (see their rows). " in window.protect.results_note.text()
    results = window.protect.results
    [failed] = [results.item(r, 1).text() for r in range(results.rowCount())
                if results.item(r, 0).text() == "broken.jpg"]
    assert failed.startswith("failed: ") and str(broken.parent) not in failed  # the row names it


def test_the_people_note_says_photos_are_there_while_their_faces_are_not(make_window,
                                                                        copy_photos, qtbot):
    """"Add photos in step 1 first." showed beside "Protect 2 photos" during the scan."""
    window = make_window()
    window.ctx.album.add([*copy_photos("a1", "b1")])  # added, not scanned
    note = window.protect.people_note.text()
    assert note != "Add photos in step 1 first." and "step 1" in note, note
    window.photos.scan()
    assert window.protect.people_note.text() == "Looking for faces…"
    wait_idle(qtbot, window)
    assert window.protect.people_note.text().startswith("Tick the people to protect")


def test_the_photos_to_try_on_follow_the_faces_clicked(make_window, copy_photos, qtbot):
    """Try on listed the ticked person's photos whatever faces were clicked: a photo
    whose face was clicked off stayed, one whose face was clicked on never came."""
    window = make_window()
    window.photos.add_paths(copy_photos("a1", "b1", "a2"))
    wait_idle(qtbot, window)
    album, preview = window.ctx.album, window.protect.preview_photo
    window.protect.set_person_ticked(0)

    def listed() -> set[str]:
        return {preview.itemText(i) for i in range(preview.count())}

    mine = album.photos_of(album.chosen)
    assert listed() == {p.name for p in mine}
    other = next(p for p in album.photos if p not in mine)
    album.toggle_face(other, 0)  # clicked on
    album.toggle_face(mine[0], 0)  # clicked off
    assert listed() == {p.name for p in [*mine[1:], other]}
    for path in mine[1:]:  # none left: nothing to preview, and the button says so
        album.toggle_face(path, 0)
    album.toggle_face(other, 0)
    assert listed() == set() and not window.protect.preview_button.isEnabled()
    # reference photos: the person is whoever matches them, in any photo
    window.protect.set_person_ticked(0, False)
    window.protect.set_reference_photos([mine[0]])
    assert listed() == {p.name for p in album.photos}


@pytest.mark.slow
def test_closing_during_a_run_asks_then_stops_cleanly(make_window, copy_photos, qtbot,
                                                      tmp_path):
    window = make_window(protect_everyone=True)
    photos = copy_photos("a1", "b1", "a2")
    window.photos.add_paths(photos)
    wait_idle(qtbot, window)
    questions = []

    def confirm(title: str, text: str) -> bool:
        questions.append(title)
        return True

    window.confirm = confirm

    def close_on_first_photo(event) -> None:
        if event.stage == "cloaking" and not event.under_way and not questions:
            window.close()

    window.jobs.progressed.connect(close_on_first_photo)
    window.protect.protect_button.click()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=JOB_TIMEOUT)
    assert questions == ["Stop and quit?"]
    assert not window.jobs.busy  # the window closed only after the worker stopped
    outdir = tmp_path / "protected"
    entries = manifest_of(outdir)["photos"]
    assert 1 <= len(entries) < len(photos)
    written = sorted(p.name for p in outdir.iterdir() if p.name != MANIFEST_NAME)
    assert written == sorted(e["output"] for e in entries.values())


def test_closing_during_a_run_can_be_refused(make_window, copy_photos, qtbot):
    window = make_window()
    window.photos.add_paths(copy_photos("b1"))  # scanning starts
    assert window.jobs.busy
    window.confirm = lambda title, text: False
    window.close()
    assert window.isVisible()  # the user said no: nothing stops
    wait_idle(qtbot, window)
    assert window.ctx.album.people


def test_missing_model_is_named_and_installed_with_progress(make_window, copy_photos, qtbot,
                                                            tmp_path, monkeypatch):
    from faceguard.models.catalogue import is_installed

    monkeypatch.setenv("FACEGUARD_MODELS", str(tmp_path / "models"))  # nothing installed
    window = make_window(models=["dlib"])
    qtbot.waitUntil(lambda: window.banner.isVisible())
    assert "dlib" in window.banner_text.text() and "not installed" in window.banner_text.text()
    assert not window.protect.model_boxes["dlib"].isEnabled()

    # a first photo cannot be scanned yet: the app says which model is missing
    photo = copy_photos("b1")[0].resolve()
    window.photos.add_paths([photo])
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    title, text = window.messages[-1]
    assert title == "Could not find the faces" and "dlib" in text and "Install now" in text
    assert "not scanned yet" in window.photos._items[photo].text()

    qtbot.mouseClick(window.install_button, Qt.MouseButton.LeftButton)
    dialog = window._models_dialog
    assert dialog.isVisible() and dialog.progress.isVisible()
    wait_idle(qtbot, window)  # installs, then scans the waiting photo
    assert is_installed("dlib")
    assert "converting dlib" in dialog.log.toPlainText()
    assert not window.banner.isVisible()
    assert window.protect.model_boxes["dlib"].isEnabled()
    assert window.protect.model_boxes["dlib"].isChecked()
    assert window.ctx.album.photos[photo].face_count == 1


def test_settings_and_recent_folders_persist(make_window, tmp_path):
    from faceguard_gui.settings import AppSettings

    window = make_window()
    window.protect.method.setCurrentIndex(window.protect.method.findData("pgd"))
    assert window.protect.floor.isEnabled()  # the floor holds for every method
    window.protect.floor.setValue(85)
    window.protect.eps.setValue(12)
    window.protect.robust.setChecked(True)
    window.protect.format.setCurrentIndex(window.protect.format.findData("png"))
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    window.photos.add_paths([empty])
    assert window.messages and window.messages[-1][0] == "Nothing new"

    saved = AppSettings.load()
    assert (saved.eps, saved.robust, saved.format) == (12.0, True, "png")
    assert (saved.method, saved.floor) == ("pgd", 85.0)
    assert saved.cloak_settings().resolved().floor == 85.0
    assert saved.recent_folders[0] == str(empty.resolve())

    again = make_window(**{k: getattr(saved, k) for k in ("eps", "robust", "format", "floor",
                                                           "recent_folders", "steps")})
    assert again.protect.eps.value() == 12 and again.protect.floor.value() == 85
    assert again.protect.eps_label.text() == f"12 / 255: {describe(85)}"
    assert "SSIMULACRA2 at 85 or more" in again.protect.how_note.text()
    again.photos._fill_recent()
    assert [a.text() for a in again.photos.recent_menu.actions()][0] == str(empty.resolve())


def test_strength_words_follow_every_change_of_the_floor(make_window):
    how = make_window().protect
    for floor in (90, 75, 60):
        how.floor.setValue(floor)
        assert how.eps_label.text() == f"{how.eps.value()} / 255: {describe(floor)}"
    assert len({describe(f) for f in (90, 75, 60)}) == 3  # three different words


def test_each_preset_says_how_protective_it_measured(make_window):
    from faceguard.measured import measured_protection

    how = make_window().protect
    for i in range(how.preset.count()):
        tip = how.preset.itemData(i, Qt.ItemDataRole.ToolTipRole)
        assert measured_protection(how.preset.itemData(i)) in tip and "never saw" in tip


def test_colour_limit_colour_share_and_person_mask_reach_the_core(make_window):
    from faceguard_gui.settings import AppSettings

    how = make_window().protect
    how.method.setCurrentIndex(how.method.findData("perceptual"))
    assert how.colour_share.text() == "brightness only"
    assert "brightness only, so eyes, lips and skin keep their colour" in how.how_note.text()
    how.delta_e.setValue(2.5)
    how.colour_share.setValue(25)
    how.person_mask.setValue(10)
    s = AppSettings.load().cloak_settings().resolved()
    assert (s.delta_e, s.chroma, s.person_mask) == (2.5, 0.25, 10)
    note = how.how_note.text()
    assert "colour change at 2.5 or less" in note and "25% of the change may be colour" in note
    assert "started from its person's mask and refined in 10 steps" in note

    for check in how.model_boxes.values():  # no recognizer: the note asks for one
        check.setChecked(False)
    assert how.how_note.text().endswith("Tick at least one recognizer to make the cloak on "
                                        "(Models… installs more).")
    assert not how.protect_button.isEnabled()
    how.model_boxes["dlib"].setChecked(True)
    assert "against dlib" in how.how_note.text()

    how.method.setCurrentIndex(how.method.findData("pgd"))  # no mask to start from
    assert not how.person_mask.isEnabled()
    assert AppSettings.load().cloak_settings().person_mask is None
    assert how.delta_e.value() == preset_values("pgd", how.preset.currentData())["delta_e"]

    again = make_window(**{k: getattr(AppSettings.load(), k)
                           for k in ("colour_share", "person_mask_steps", "method")})
    assert again.protect.colour_share.value() == 25
    assert again.protect.person_mask.value() == 10
    assert not again.protect.person_mask.isEnabled()


def test_the_album_path_runs_from_the_app(make_window, copy_photos, qtbot, tmp_path):
    """Chosen in the app, the person's mask is fitted and each photo refined from it."""
    window = make_window(method="perceptual", person_mask_steps=2)
    drop_files(window.photos.grid, copy_photos("a1", "a2"))
    wait_idle(qtbot, window)
    window.photos.next_button.click()
    window.protect.people_list.item(0).setCheckState(Qt.CheckState.Checked)
    qtbot.mouseClick(window.protect.protect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    faces = [f for entry in manifest_of(tmp_path / "protected")["photos"].values()
             for f in entry["faces"] if f["protected"]]
    assert len(faces) == 2
    assert {f["method"] for f in faces} == {"perceptual from the person's mask"}


def test_a_photo_on_its_side_is_protected_and_said_under_the_results(make_window, copy_photos,
                                                                     qtbot, tmp_path):
    """A photo whose rotation tag was lost: its face is found and cloaked, and the note
    that says so is under the results, where it wraps (the status line cuts it off)."""
    window = make_window()
    upright, other = copy_photos("b2", "b1")
    side = upright.with_name("side.png")
    Image.open(upright).transpose(Image.ROTATE_90).save(side)  # no rotation tag
    upright.unlink()
    window.photos.add_paths([side, other])
    wait_idle(qtbot, window)
    assert "1 face" in window.photos._items[side.resolve()].text()
    window.photos.next_button.click()
    window.protect.people_list.item(0).setCheckState(Qt.CheckState.Checked)
    qtbot.mouseClick(window.protect.protect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    entry = manifest_of(tmp_path / "protected")["photos"]["side.png"]
    assert entry["status"] == "cloaked"
    said = window.protect.results_note.text()
    assert "Note: faces on their side or upside down in side.png" in said
    # the album's outcome face by face, as the CLI's last line says it
    records = [FaceRecord.from_dict(f) for e in manifest_of(tmp_path / "protected")["photos"]
               .values() for f in e["faces"]]
    assert tally(records).words() in said and " got past every recognizer." in said
    assert "side.png" in window.status_text.toolTip()


def test_the_tally_under_the_results_names_the_stronger_preset_as_the_app_does(make_window):
    window = make_window()
    face = FaceRecord(box=[0, 0, 10, 10], landmarks=[], protected=True,
                      recognised={"dlib": True}, made_on={"dlib": True})
    window.protect._results = {"a.jpg": {"faces": [face.to_dict()]}}
    said = window.protect.tally_words("high")
    assert said.startswith("Of 1 face cloaked, none got past every recognizer.")
    assert 'A stronger cloak (preset "Strong") shows more' in said
    assert "stronger" not in window.protect.tally_words(None)


def test_damaged_settings_file_falls_back_to_defaults(tmp_path, monkeypatch):
    from faceguard_gui.settings import AppSettings

    monkeypatch.setenv("FACEGUARD_CONFIG", str(tmp_path))
    AppSettings.path().write_text('{"eps": "loud", "method": "nonsense", "quality": 80}')
    settings = AppSettings.load()
    assert settings.method == AppSettings().method and settings.eps == AppSettings().eps
    AppSettings.path().write_text("{not json")
    assert AppSettings.load() == AppSettings()


def test_a_settings_file_without_a_colour_limit_keeps_its_presets(tmp_path, monkeypatch):
    from faceguard_gui.settings import AppSettings

    monkeypatch.setenv("FACEGUARD_CONFIG", str(tmp_path))
    AppSettings.path().write_text('{"method": "perceptual", "preset": "low", "floor": 85.0}')
    settings = AppSettings.load()
    assert settings.delta_e == preset_values("perceptual", "low")["delta_e"] == 2.0
    assert settings.cloak_settings().resolved().delta_e == 2.0
    assert (settings.colour_share, settings.person_mask_steps) == (0.0, 0)


def test_progress_clock_says_photos_done_and_time_left(monkeypatch):
    from faceguard.progress import Event
    from faceguard_gui import workers

    now = [100.0]
    monkeypatch.setattr(workers.time, "monotonic", lambda: now[0])
    clock = workers.ProgressClock()
    clock.update(Event(1, 10, "cloaking"))
    assert clock.text() == "cloaking: 1 of 10 photos"
    now[0] += 6.0
    clock.update(Event(4, 10, "cloaking"))  # 3 photos in 6 s: 2 s each, 6 left
    assert clock.seconds_left() == pytest.approx(12.0)
    assert clock.text() == "cloaking: 4 of 10 photos, about 12 s left"
    clock.update(Event(4, 10, "cloaking", part=0.5, detail="face 1 of 1: step 30 of 60"))
    assert clock.text().startswith("cloaking: 4 of 10 photos (face 1 of 1: step 30 of 60), ")
    clock = workers.ProgressClock()
    clock.update(Event(0, 1, "learning", part=0.25, detail="step 25 of 100"))
    assert clock.text() == "learning: step 25 of 100"
    assert workers.format_seconds(95) == "1 min 35 s"
    clock.update(Event(1, 1, "trying defenses"))  # each stage counts its own things
    assert clock.text() == "trying defenses: 1 of 1 defense"


def test_worker_reports_a_failing_job_as_a_message(qtbot):
    from faceguard.album import AlbumError
    from faceguard.progress import Event
    from faceguard_gui.workers import FAILED, JobController

    def broken():
        yield Event(1, 2, "cloaking", Path("a.jpg"))
        raise AlbumError("no photos found in /nowhere")

    jobs = JobController()
    seen, ends = [], []
    jobs.start("Testing", broken, seen.append, lambda *end: ends.append(end))
    qtbot.waitUntil(lambda: not jobs.busy, timeout=10_000)
    assert [e.done for e in seen] == [1]
    assert ends == [(FAILED, "no photos found in /nowhere")]


def test_cancel_closes_the_generator_in_its_worker_thread(qtbot):
    import threading

    from faceguard.progress import Event
    from faceguard_gui.workers import CANCELLED, JobController

    closed_in = []
    gate = threading.Event()

    def job():
        try:
            for i in range(1, 100):
                yield Event(i, 99, "cloaking")
                gate.wait(5)  # the next step starts only once the test has pressed cancel
        finally:
            closed_in.append(threading.current_thread())

    jobs = JobController()
    ends, seen = [], []

    def on_event(event) -> None:
        seen.append(event.done)
        jobs.cancel()
        gate.set()

    jobs.start("Testing", job, on_event, lambda *end: ends.append(end))
    qtbot.waitUntil(lambda: not jobs.busy, timeout=10_000)
    assert ends == [(CANCELLED, "")]
    assert seen in ([1], [1, 2])  # stopped between steps, at most one step after cancel
    assert closed_in and closed_in[0] is not threading.main_thread()


def test_screen_fits_1280x800(make_window):
    window = make_window()
    window.resize(1280, 800)
    for step in range(3):
        window.go_to(step)
        QApplication.processEvents()
        page = window.current_page()
        assert page.minimumSizeHint().width() <= window.pages.width()
        assert page.minimumSizeHint().height() <= window.pages.height()
    assert window.minimumSizeHint().width() <= 1280


def test_a_stopped_look_for_faces_is_said_and_taken_up_again(make_window, copy_photos,
                                                            qtbot, monkeypatch):
    import threading

    from faceguard_gui import photos_view

    window = make_window()
    photos = copy_photos("a1", "b1", "a2")
    seen, gate, scan = [], threading.Event(), photos_view.scan_photos

    def gated(*args, **kwargs):
        # the scan waits after its first photo until Cancel is pressed: photos are
        # scanned a few ahead, so it would otherwise finish before the click lands
        events = scan(*args, **kwargs)
        yield next(events)
        gate.wait(30)
        yield from events

    monkeypatch.setattr(photos_view, "scan_photos", gated)

    def cancel_on_first_photo(event) -> None:
        if event.stage == "scanning":
            seen.append(event.path)
            if len(seen) == 1:
                window.cancel_button.click()
                gate.set()

    window.jobs.progressed.connect(cancel_on_first_photo)
    window.photos.add_paths(photos)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    window.jobs.progressed.disconnect(cancel_on_first_photo)
    monkeypatch.setattr(photos_view, "scan_photos", scan)
    waiting = window.ctx.album.unscanned()
    assert waiting  # stopped before the last photo
    assert all("not scanned yet" in window.photos._items[p].text() for p in waiting)
    assert f"{len(waiting)} not scanned yet" in window.photos.summary.text()
    assert window.photos.scan_button.isVisibleTo(window)
    window.photos.scan_button.click()
    wait_idle(qtbot, window)
    assert not window.ctx.album.unscanned() and window.ctx.album.people
    assert not window.photos.scan_button.isVisibleTo(window)


def test_people_stay_chosen_when_the_album_is_grouped_again(qtbot):
    from faceguard.album import AlbumPerson
    from faceguard.face import Face
    from faceguard.identity import Person
    from faceguard_gui.album_state import AlbumPhoto, AlbumState
    from faceguard_gui.jobs import FoundPerson

    def person(name: str, *faces: tuple[str, float]) -> FoundPerson:
        return FoundPerson(AlbumPerson(name, Person(name), [
            (Path(p), Face((x, 0.0, x + 50, 50), np.zeros((5, 2)), 1.0)) for p, x in faces]),
            None)

    album = AlbumState()
    album.photos = {Path(p): AlbumPhoto(Path(p), scanned=True) for p in ("a.jpg", "b.jpg")}
    album.set_people([person("person 1", ("a.jpg", 0)), person("person 2", ("b.jpg", 0))])
    album.choose([album.people[1].person])
    # a new photo of person 2 makes them the largest group: renumbered "person 1"
    album.photos[Path("c.jpg")] = AlbumPhoto(Path("c.jpg"), scanned=True)
    album.set_people([person("person 1", ("b.jpg", 0), ("c.jpg", 10)),
                      person("person 2", ("a.jpg", 0))])
    assert [p.name for p in album.chosen] == ["person 1"]
    assert album.chosen[0].faces[1][0] == Path("c.jpg")
    # a photo taken out while the album was grouped is out of its people too
    album.remove(Path("a.jpg"))
    album.set_people([person("person 1", ("b.jpg", 0), ("c.jpg", 10)),
                      person("person 2", ("a.jpg", 0))])
    assert [p.person.name for p in album.people] == ["person 1"]


def test_the_app_shows_plain_names_with_technical_ones_in_tooltips(make_window):
    window = make_window()
    defenses = window.audit.defenses
    items = {defenses.item(r).data(Qt.ItemDataRole.UserRole): defenses.item(r)
             for r in range(defenses.count())}
    assert items["bl+sr"].text() == "strong filter + upscaling (BL+SR)"
    assert items["bl+sr"].toolTip().startswith("bl+sr: ")
    assert items["purifier"].text() == "learned clean-up"
    detectors = window.audit.detectors
    texts = [detectors.item(r).text() for r in range(detectors.count())]
    assert "texture check (RBF SVM)" in texts and "deep-feature check (LSTM)" in texts
    method = window.protect.method
    shown = {method.itemData(i): method.itemText(i) for i in range(method.count())}
    assert shown["perceptual"].startswith("Recommended") and shown["pgd"] == "Classic (PGD)"
    assert method.itemData(0, Qt.ItemDataRole.ToolTipRole).startswith("perceptual: ")


def test_a_folder_says_which_files_it_skipped(make_window, tmp_path):
    window = make_window()
    folder = tmp_path / "gifs"
    folder.mkdir()
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    frames[0].save(folder / "party.gif", save_all=True, append_images=frames[1:])
    (folder / "notes.txt").write_text("x")
    window.photos.add_paths([folder])
    text = window.photos.summary.text()
    assert "skipped 1 file: animated GIF (party.gif)" in text
    assert "skipped 1 file: not a photo FaceGuard reads (notes.txt)" in text
    assert window.messages[-1][0] == "Nothing new"
    assert "skipped 1 file: animated GIF (party.gif)" in window.messages[-1][1]
    # a path that is not there (given on the command line): said, not dropped in silence
    window.photos.add_paths([tmp_path / "gone.jpg"])
    assert "skipped 1 file: no such file or folder (gone.jpg)" in window.photos.summary.text()


def test_a_jobs_notes_are_said_when_it_ends(make_window):
    from faceguard.progress import Event
    from faceguard_gui.workers import DONE

    window = make_window()
    window.jobs.started.emit("Protecting")
    window.jobs.progressed.emit(Event(1, 2, "reading the person to protect", Path("both.jpg"),
                                      note="both.jpg: 2 faces; took the largest"))
    window.jobs.finished.emit(DONE, "")
    assert window.status_text.text() == ("Protecting: done; note: both.jpg: 2 faces; "
                                         "took the largest")
    window.jobs.started.emit("Protecting")  # the next job starts with none
    window.jobs.finished.emit(DONE, "")
    assert window.status_text.text() == "Protecting: done"


def test_the_audit_reads_known_people_from_the_folder_given(make_window, qtbot, monkeypatch,
                                                            tmp_path):
    """The app's Known people is the CLI's --gallery."""
    import faceguard_gui.audit_view as audit_view

    asked = []
    monkeypatch.setattr(audit_view, "audit", lambda job, cache: iter(asked.append(job) or ()))
    view = make_window().audit
    view.cloaked.setText(str(tmp_path))
    view.gallery.setText(str(tmp_path / "known"))
    view.run_button.click()
    qtbot.waitUntil(lambda: bool(asked), timeout=JOB_TIMEOUT)
    assert asked[0].gallery == tmp_path / "known" and asked[0].cloaked == tmp_path


def test_a_saved_mask_protects_its_person_as_the_cli_does(make_window, copy_photos, qtbot,
                                                          tmp_path):
    """The CLI's --mask: a person's mask from an earlier run, in place of the choices
    of whom to protect (the two together are refused, as in the CLI)."""
    import torch

    from faceguard.cloak.universal import CANONICAL_SIZE, UniversalMask

    window = make_window()
    photos = copy_photos("a1", "b1")
    window.photos.add_paths(photos)
    wait_idle(qtbot, window)
    window.go_to(1)
    view, album = window.protect, window.ctx.album
    theirs = album.photos[photos[0]].faces.embeddings["dlib"][0]
    mask = UniversalMask(torch.full((1, 3, CANONICAL_SIZE, CANONICAL_SIZE), 4 / 255), "Sam",
                         ["dlib"], {"method": "universal-sgd", "eps": 4.0,
                                    "centroids": {"dlib": theirs}})
    path = mask.save(tmp_path / "sam.mask.pt")

    view.set_mask(path)
    assert view.mask_label.text() == "a mask for Sam"
    assert view.how_note.text().startswith("The saved mask sam.mask.pt is added to its "
                                           "person's faces as it was made (at most 4 of 255 "
                                           "grey levels, against dlib)")
    assert view._limits()[0] == 4.0  # the preview's cap: the mask's, not the slider's
    assert view.protect_button.isEnabled()
    view.set_person_ticked(0)
    assert view.action_note.text().startswith("A saved mask protects the person it was made "
                                              "for") and not view.protect_button.isEnabled()
    view.set_person_ticked(0, False)
    view.protect()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    manifest = json.loads((tmp_path / "protected" / MANIFEST_NAME).read_text())
    assert manifest["settings"]["mask"].endswith("sam.mask.pt")
    whom = {Path(e["input"]).name: [f["person"] for f in e["faces"] if f["protected"]]
            for e in manifest["photos"].values()}
    assert whom == {photos[0].name: ["Sam"], photos[1].name: []}
    assert "stronger" not in view.results_note.text()  # a preset does not change a mask
    assert window.messages == []
    view.protect()  # again: every photo kept, and no "No face was cloaked."
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    assert view.results_note.text().endswith(", 2 done by an earlier run (kept).")

    view.set_mask(tmp_path / "nothing.mask.pt")  # not a mask: said, the last one kept
    assert window.messages and view.saved_mask == path


def test_small_faces_too_looks_again_and_keeps_the_people_chosen(make_window, copy_photos,
                                                                 qtbot):
    """The CLI's --min-face 20: every photo is looked at again with it, the person
    ticked stays ticked (their faces known again by their boxes) and it is remembered."""
    from faceguard_gui.settings import AppSettings

    window = make_window()
    window.photos.add_paths(copy_photos("a1", "a2", "b1"))
    wait_idle(qtbot, window)
    album = window.ctx.album
    assert not window.ctx.models.detector().min_face_asked
    window.protect.set_person_ticked(0)
    chosen = {p for p, _ in album.chosen[0].faces}
    first = {path: photo.faces for path, photo in album.photos.items()}

    clicked = next(p for p in album.photos if p not in chosen)  # someone else's face
    album.toggle_face(clicked, 0)
    window.photos.pick_faces(clicked)  # the picker shows the look before: closed
    window.photos.small_faces.setChecked(True)
    assert not window.photos.picker.isVisible()
    assert not window.photos.small_faces.isEnabled()  # not while the look runs
    wait_idle(qtbot, window)
    assert window.photos.small_faces.isEnabled()
    assert window.ctx.models.detector().min_face_asked and AppSettings.load().small_faces
    assert all(photo.faces is not first[path] and photo.face_count == 1
               for path, photo in album.photos.items())  # looked at again
    assert len(album.chosen) == 1 and {p for p, _ in album.chosen[0].faces} == chosen
    assert album.face_choices == {clicked: {0: True}}  # the face clicked, known again
    assert window.protect.protect_button.isEnabled()


def test_an_output_folder_holding_the_album_is_refused_before_any_question(
        make_window, copy_photos, qtbot, tmp_path):
    """The app asked "Folder not empty... photos with the same names will be replaced. Go
    on?" of the folder holding the album, then refused it whatever the answer."""
    window = make_window(protect_everyone=True)
    window.photos.add_paths(copy_photos("b1"))
    wait_idle(qtbot, window)
    window.protect.output.setText(str(tmp_path))  # it holds album/
    asked = []
    window.confirm = lambda title, text: asked.append(title) or True
    window.protect.protect()
    assert not asked and not window.jobs.busy
    title, text = window.messages[-1]
    assert title == "Choose another folder" and "must not hold" in text


def test_a_folder_not_empty_has_its_photos_replaced_when_the_user_says_so(
        make_window, copy_photos, qtbot, tmp_path):
    """The app asks before writing into a folder FaceGuard did not write ("photos with the
    same names will be replaced"): told yes, it replaced them (since --resume replaces
    only what a run recorded, it failed them with the CLI's --overwrite advice)."""
    window = make_window(protect_everyone=True)
    photos = copy_photos("b1")
    window.photos.add_paths(photos)
    wait_idle(qtbot, window)
    outdir = tmp_path / "protected"
    outdir.mkdir()
    (outdir / photos[0].name).write_bytes(b"mine")
    asked = []
    window.confirm = lambda title, text: asked.append(title) or True
    window.protect.protect()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    assert asked == ["Folder not empty"]
    assert (outdir / photos[0].name).read_bytes() != b"mine"
    assert manifest_of(outdir)["photos"][photos[0].name]["status"] == "cloaked"
    # a file the user puts there after the run is theirs: asked about again, not replaced
    (outdir / "notes.txt").write_text("mine")
    window.confirm = lambda title, text: asked.append(title) and False
    window.protect.protect()
    assert asked == ["Folder not empty"] * 2 and not window.jobs.busy


def test_photos_shrunk_to_a_longest_side_reach_the_core_and_the_preview(
        make_window, copy_photos, qtbot, tmp_path, monkeypatch):
    """The size in the Format row: the photo is protected and written smaller, its faces
    where the Photos step found them, shrunk alike, and the preview compares it with
    its original shrunk as it was."""
    from faceguard_gui import protect_how
    from faceguard_gui.jobs import load_preview
    from faceguard_gui.settings import AppSettings

    monkeypatch.setattr(protect_how, "SIDES", {0: "full size", 350: "≤ 350 px"})
    window = make_window()
    how = window.protect
    how.max_side.setCurrentIndex(how.max_side.findData(350))
    assert AppSettings.load().max_side == 350
    assert "larger ones shrunk to 350 px on their longest side" in how.how_note.text()
    photo, = copy_photos("a1")
    drop_files(window.photos.grid, [photo])
    wait_idle(qtbot, window)
    window.photos.next_button.click()
    how.people_list.item(0).setCheckState(Qt.CheckState.Checked)
    qtbot.mouseClick(how.protect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    entry, = manifest_of(tmp_path / "protected")["photos"].values()
    out = tmp_path / "protected" / entry["output"]
    assert load_photo(out).size == (entry["width"], entry["height"]) == (233, 350)
    assert [f["protected"] for f in entry["faces"]] == [True]
    x0, y0, x1, y1 = entry["faces"][0]["box"]
    assert 0 <= x0 < x1 <= 233 and 0 <= y0 < y1 <= 350
    data = load_preview(photo, out, entry)
    assert data.before.size() == data.after.size() and data.after.width() == 233
