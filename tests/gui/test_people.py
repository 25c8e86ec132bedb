"""People in the app: rename a person, click a face's box to cloak it or not, remove a photo."""

from __future__ import annotations

import json

from gui_helpers import JOB_TIMEOUT, wait_idle
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from faceguard.manifest import MANIFEST_NAME


def _protect(window, qtbot) -> dict:
    """Protect the album; the run's manifest."""
    window.protect.protect()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=JOB_TIMEOUT)
    return json.loads((window.protect.last_output / MANIFEST_NAME).read_text())


def test_a_renamed_person_is_protected_under_their_name(make_window, copy_photos, qtbot):
    window = make_window()
    window.photos.add_paths(copy_photos("a1", "a2"))
    wait_idle(qtbot, window)
    album = window.ctx.album
    window.go_to(1)
    window.protect.set_person_ticked(0)
    faces = list(album.people[0].person.faces)
    window.protect.rename_person(0, "Me")
    assert album.people[0].person.name == "Me" and album.people[0].person.person.name == "Me"
    assert window.protect.people_list.item(0).text().startswith("Me\n")
    assert album.chosen == [album.people[0].person]  # still ticked
    assert album.chosen[0].faces == faces
    manifest = _protect(window, qtbot)
    assert manifest["protected"] == ["Me"]
    people = {f["person"] for e in manifest["photos"].values() for f in e["faces"]
              if f["protected"]}
    assert people == {"Me"}
    # the name survives a new grouping (adding photos groups the album again)
    window.photos.add_paths(copy_photos("b1"))
    wait_idle(qtbot, window)
    assert "Me" in [p.person.name for p in album.people]
    # a second person may not take the name: the manifest and the audit tell people by it
    other = next(i for i, p in enumerate(album.people) if p.person.name != "Me")
    window.protect.set_person_ticked(other)
    window.protect.rename_person(other, "Me")
    assert [p.person.name for p in album.people].count("Me") == 1
    assert window.messages and "Another person is already called Me" in window.messages[-1][1]
    assert window.protect.people_list.count() == len(album.people)  # the list is whole


def test_clicking_a_face_box_cloaks_it_and_clicking_again_leaves_it(make_window, copy_photos,
                                                                     qtbot):
    window = make_window()
    [path] = copy_photos("b1")
    window.photos.add_paths([path])
    wait_idle(qtbot, window)
    album = window.ctx.album
    window.photos.pick_faces(path)
    picker = window.photos.picker
    qtbot.waitExposed(picker)
    canvas = picker.canvas
    centre = canvas.box_rect(0).center().toPoint()
    assert "0 of 1 face will be cloaked" in picker.note.text()
    assert not window.protect.protect_button.isEnabled()  # nobody chosen yet
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=centre)
    assert album.face_choices == {path: {0: True}}
    assert "1 of 1 face will be cloaked" in picker.note.text()
    assert window.protect.protect_button.isEnabled()  # a clicked face is enough
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(2, 2))  # not on a face
    assert album.face_choices == {path: {0: True}}
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=centre)
    assert album.face_choices == {path: {0: False}}
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.keyClick(picker, Qt.Key.Key_Escape)  # Esc closes it
    assert not picker.isVisible()
    manifest = _protect(window, qtbot)
    [entry] = manifest["photos"].values()
    assert entry["status"] == "cloaked" and entry["faces"][0]["person"] == "self"


def test_a_single_photo_can_be_removed(make_window, copy_photos, qtbot):
    window = make_window()
    first, second = copy_photos("a1", "a2")
    window.photos.add_paths([first, second])
    wait_idle(qtbot, window)
    album = window.ctx.album
    before = sum(len(p.person.faces) for p in album.people)
    grid = window.photos.grid
    grid.setCurrentItem(window.photos._items[first])
    grid.setFocus()
    grid.remove_selected()
    QApplication.processEvents()
    assert list(album.photos) == [second] and grid.count() == 1
    assert sum(len(p.person.faces) for p in album.people) == before - 1
    assert all(path == second for p in album.people for path, _ in p.person.faces)
    assert [p for p, _ in album.photo_jobs()] == [second]  # what Protect will cloak
