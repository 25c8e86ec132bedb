"""The preview window on small made-up images: the figures' words, side by side, keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from faceguard.visibility import SCALE, describe
from faceguard_gui.jobs import PreviewData
from faceguard_gui.preview import (
    CLOAKED,
    COLOUR,
    FOOLED,
    LARGEST,
    SCORE,
    VISIBLE,
    PreviewWindow,
    face_rows,
)

RED, BLUE, GREY = QColor(220, 30, 30), QColor(30, 30, 220), QColor(128, 128, 128)


def image(colour: QColor, w: int = 200, h: int = 150) -> QImage:
    out = QImage(w, h, QImage.Format.Format_RGB32)
    out.fill(colour)
    return out


def preview_data(*qualities: dict | None, output: str = "out.jpg") -> PreviewData:
    faces = [{"box": [40 + 10 * k, 30, 90 + 10 * k, 90], "landmarks": [[0, 0]] * 5,
              "protected": q is not None,
              "quality": q or {}, "distance_before": {"dlib": 0.3},
              "distance_after": {"dlib": 0.7}, "thresholds": {"dlib": 0.6},
              "recognised": {"dlib": False}, "made_on": {"dlib": True}}
             for k, q in enumerate(qualities)]
    return PreviewData(Path("photo.jpg"), Path(output), {"faces": faces}, image(RED),
                       image(BLUE), image(GREY))


def measured(score: float, **more) -> dict:
    return {"ssimulacra2": score, "jpeg_equivalent": 91, "ciede2000_mean": 0.8,
            "ciede2000_p95": 1.9, "linf": 12.0, "psnr": 41.2, "ssim": 0.987,
            "saved_ssimulacra2": score - 1, "saved_linf": 12.0, **more}


def pixel(widget, point: QPointF) -> QColor:
    return widget.grab().toImage().pixelColor(point.toPoint())


@pytest.fixture
def open_preview(qtbot):
    def make(data: PreviewData, **limits) -> PreviewWindow:
        window = PreviewWindow(data, **limits)
        qtbot.addWidget(window)
        window.resize(900, 700)
        window.show()
        qtbot.waitExposed(window)
        return window

    return make


def test_visibility_words_follow_the_measured_score(open_preview):
    data = preview_data(measured(90), measured(78), measured(60), None)
    rows = face_rows(data, cap=16, floor=75)
    assert [r[VISIBLE] for r in rows[:3]] == ["invisible, even up close",
                                              "invisible at normal size, faint up close",
                                              "visible"]
    assert [r[VISIBLE] for r in rows[:3]] == [describe(s) for s in (90, 78, 60)]  # the core's
    assert rows[1][SCORE] == "78.0 (floor 75), like JPEG quality 91; 77.0 in the file"
    assert rows[1][COLOUR].startswith("1.9 ")
    assert rows[1][LARGEST] == "12 / 255 (cap 16)"  # saved as measured: said once
    assert rows[3][CLOAKED] == "no" and rows[3][VISIBLE] == "–"
    # cloaked is not protected: the recognizers say so, face by face (the core's verdict)
    assert rows[1][FOOLED] == "1 of 1; others not checked" and rows[3][FOOLED] == "–"
    assert not any("SSIM (" in c or c == "PSNR" for r in rows for c in r)  # not headlines

    # the window shows the same words in its table, PSNR and grey SSIM only in a tooltip
    window = open_preview(data, cap=16, floor=75)
    figures = window.figures
    headers = [figures.horizontalHeaderItem(c).text() for c in range(figures.columnCount())]
    assert figures.rowCount() == 4
    shown = [{h: figures.item(r, c).text() for c, h in enumerate(headers)} for r in range(4)]
    assert [s[VISIBLE] for s in shown] == [r[VISIBLE] for r in rows]
    tip = figures.item(0, headers.index(SCORE)).toolTip()
    assert "PSNR 41.2 dB" in tip and "After saving: 89.0" in tip
    assert "SSIMULACRA2 90.0" in figures.item(0, headers.index(VISIBLE)).toolTip()
    assert SCALE in window.explanation.text()  # the core's scale, as the CLI's help says it
    assert "3 of 4 faces cloaked" in window.explanation.text()
    assert "Fooled 1 of 1 recognizer it was made on." in window.explanation.text()
    assert "35 dB" not in window.explanation.text()


def test_visibility_words_are_the_files_where_its_compression_took_it_lower():
    """The app said "invisible at normal size" of a face its JPEG took to 74.8, where the
    CLI said "faint at normal size, visible up close"."""
    from faceguard.visibility import summary

    q = measured(75.2, saved_ssimulacra2=74.75)
    [row] = face_rows(preview_data(q), floor=75)
    assert row[VISIBLE] == describe(74.75) == "faint at normal size, visible up close"
    assert summary(q).startswith(row[VISIBLE])  # the CLI's words
    [lower] = face_rows(preview_data(measured(78.0, saved_ssimulacra2=74.0)), floor=75)
    assert lower[SCORE] == "78.0 (floor 75), like JPEG quality 91; 74.0 in the file"


def test_largest_change_after_saving_and_old_manifests(open_preview):
    jpeg = face_rows(preview_data(measured(80, saved_linf=15.4)), cap=16)
    assert jpeg[0][LARGEST] == "12 / 255 (cap 16); after saving as JPEG: 15 / 255"
    png = face_rows(preview_data(measured(80, saved_linf=14.0), output="out.png"))
    assert png[0][LARGEST] == "12 / 255; after saving as PNG: 14 / 255"
    # a manifest from before SSIMULACRA2 (grey SSIM, PSNR, L-inf only): dashes, no crash
    old = preview_data({"ssim": 0.98, "psnr": 40.0, "linf": 8.0}, {"saved_linf": None})
    rows = face_rows(old)
    assert rows[0][VISIBLE] == rows[0][SCORE] == rows[0][COLOUR] == "–"
    assert rows[0][LARGEST] == "8 / 255"
    assert rows[1][LARGEST] == "–"
    window = open_preview(old)
    assert window.figures.rowCount() == 2


def test_side_by_side_panes_zoom_and_pan_together(open_preview, qtbot):
    window = open_preview(preview_data(measured(80)))
    view = window.view
    assert pixel(view, QPointF(view.width() * 0.25, view.height() / 2)) == RED  # original
    assert pixel(view, QPointF(view.width() * 0.75, view.height() / 2)) == BLUE  # protected

    window.side_box.setChecked(True)
    assert view.side_by_side and not window.split_slider.isEnabled()
    left, right = view.panes()
    assert left.width() == pytest.approx(right.width())
    assert pixel(view, left.center()) == RED and pixel(view, right.center()) == BLUE
    # fitted to a pane: the whole photo fits in half the view
    assert view.from_photo(QPointF(200, 150), 0).x() <= left.right() + 1

    def same_point_in_both() -> None:
        # the photo point in the middle of the left pane is in the middle of the right one
        a, b = view.to_photo(left.center()), view.to_photo(right.center())
        assert (a.x(), a.y()) == pytest.approx((b.x(), b.y()))

    # zoom with the wheel over the right pane: the point under the cursor stays put
    at = right.center() + QPointF(40, -25)
    under = view.to_photo(at)
    zoom = view.zoom
    wheel = QWheelEvent(at, view.mapToGlobal(at), QPoint(), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, wheel)
    assert view.zoom == pytest.approx(zoom * 1.25 ** 2)
    assert view.to_photo(at).x() == pytest.approx(under.x())
    assert view.to_photo(at).y() == pytest.approx(under.y())
    # ... and in the left pane that point sits at the same place
    twin = view.from_photo(under, 0)
    assert (twin.x(), twin.y()) == pytest.approx((at.x() - right.left(), at.y()))
    same_point_in_both()

    # drag in the left pane: both panes move by the same amount
    start = left.center().toPoint()
    before = view.to_photo(right.center())
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, start + QPoint(30, 20))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=start + QPoint(30, 20))
    moved = view.to_photo(right.center())
    assert (before.x() - moved.x(), before.y() - moved.y()) == pytest.approx(
        (30 / view.scale, 20 / view.scale))
    same_point_in_both()

    # the buttons zoom both too, and leaving side by side keeps the place
    window.zoom_to_face()
    same_point_in_both()
    window.side_box.setChecked(False)
    assert not view.side_by_side and window.split_slider.isEnabled()
    assert len(view.panes()) == 1


def test_b_toggles_before_after_and_esc_closes(open_preview, qtbot):
    window = open_preview(preview_data(measured(80)))
    with qtbot.waitActive(window):  # shortcuts work in the active window
        window.activateWindow()
    view = window.view
    right = QPointF(view.width() * 0.75, view.height() / 2)
    assert pixel(view, right) == BLUE
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert window.original_button.isChecked() and view.show_original
    assert pixel(view, right) == RED  # the original in the protected photo's place
    window.side_box.setChecked(True)
    assert pixel(view, view.panes()[1].center()) == RED
    qtbot.keyClick(window.figures, Qt.Key.Key_B)  # wherever the focus is
    assert not view.show_original
    assert pixel(view, view.panes()[1].center()) == BLUE
    qtbot.keyClick(window, Qt.Key.Key_Backslash)
    assert view.show_original
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.isVisible()
