"""Layout at 1024x680, also with fonts twice as large: nothing cut, long paths elided."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QAbstractButton, QApplication, QGroupBox, QLabel

from faceguard.audit.run import AuditResult


def _cut(window) -> list[str]:
    """Visible labels and buttons of the current step narrower (or, wrapped, lower) than
    their text needs."""
    out = []
    page = window.current_page()
    for w in page.findChildren(QLabel) + page.findChildren(QAbstractButton):
        if not w.isVisible() or not w.text():
            continue
        if isinstance(w, QLabel) and w.wordWrap():
            if w.heightForWidth(w.width()) > w.height():
                out.append(f"{w.text()[:50]!r}: {w.heightForWidth(w.width())} > {w.height()} high")
        elif w.sizeHint().width() > w.width():
            out.append(f"{w.text()[:50]!r}: {w.sizeHint().width()} > {w.width()} wide")
    for box in page.findChildren(QGroupBox):  # a squeezed box overlaps its own rows
        if box.isVisible() and box.height() < box.minimumSizeHint().height():
            out.append(f"{box.title()!r}: {box.height()} < {box.minimumSizeHint().height()} high")
    return out


def _show_an_audit(window) -> None:
    from faceguard_gui.jobs import AuditOutcome

    rows = [{"defense": d, "model": m, "held_out": m == "faceres", "faces": 3,
             "protected_top1": None, "protected_verify": 0.5, "mean_distance": 1.1,
             "clean_top1": None, "clean_verify": 1.0, "protected": 0.5,
             "clean_recognised": 1.0}
            for d in ("none", "jpeg75", "bl+sr") for m in ("dlib", "faceres")]
    result = AuditResult(protection=rows, faces=3, photos=3, people=1,
                         visibility={"ssimulacra2": 77.0, "jpeg_equivalent": 91},
                         detection_problem="The cloak-detection check could not run: it "
                                           "needs at least 8 cloaked faces, this set has 3.")
    window.audit.show_outcome(AuditOutcome(result, None, None, ["A finding."] * 6))


@pytest.mark.parametrize("scale", [1, 2])
def test_nothing_is_cut_at_1024x680(make_window, scale):
    app = QApplication.instance()
    font = app.font()
    bigger = app.font()
    bigger.setPointSizeF(font.pointSizeF() * scale)
    app.setFont(bigger)
    try:
        window = make_window()
        window.resize(1024, 680)
        _show_an_audit(window)  # the verdict and its detail take room too
        for step in range(3):
            window.go_to(step)
            QApplication.processEvents()
            assert (window.width(), window.height()) == (1024, 680)
            assert _cut(window) == [], f"step {step + 1} at {scale}x fonts"
            if scale == 1:  # at normal size every step fits without scrolling
                page = window.current_page()
                assert page.minimumSizeHint().width() <= window.pages.width()
                assert page.minimumSizeHint().height() <= window.pages.height()
    finally:
        app.setFont(font)


def test_long_folder_paths_are_elided_in_the_middle(make_window):
    window = make_window()
    window.resize(1024, 680)
    window.go_to(2)
    field = window.audit.cloaked
    path = "/home/someone/" + "very-long-folder-name/" * 8 + "trip-protected"
    seen = []
    field.textChanged.connect(seen.append)
    field.setText(path)
    QApplication.processEvents()
    shown = field.displayText()
    assert field.text() == path and field.toolTip() == path
    head, _, tail = shown.partition("…")
    assert tail and path.startswith(head) and path.endswith(tail)
    assert shown.endswith("/trip-protected")  # the folder's own name, whole
    assert field.fontMetrics().horizontalAdvance(shown) <= field.width()
    window.resize(1400, 680)  # a new width: elided again, no change reported
    QApplication.processEvents()
    assert seen == [path]
    field.setFocus()  # editing shows the whole path
    QApplication.processEvents()
    if field.hasFocus():  # offscreen windows may not take focus
        assert field.displayText() == path


def test_the_protection_plot_fits_the_window_whole(make_window):
    """One column per recognizer (five installed families) makes the heat map wider than
    the tab: it is scaled down whole, aspect kept, instead of being cut at the edge."""
    from faceguard_gui.jobs import AuditOutcome, report_plots

    models = ("dlib", "faceres", "mobileface", "sface", "facenet")
    rows = [{"defense": d, "model": m, "held_out": m in ("sface", "facenet"), "faces": 3,
             "protected_top1": None, "protected_verify": 0.5, "mean_distance": 1.1,
             "clean_top1": None, "clean_verify": 1.0, "protected": 0.5,
             "clean_recognised": 1.0}
            for d in ("none", "jpeg75", "bl+sr") for m in models]
    result = AuditResult(protection=rows, faces=3, photos=3, people=1)
    heatmap, roc = report_plots(result)
    window = make_window()
    window.resize(1024, 680)
    window.go_to(2)
    window.audit.results.show_outcome(AuditOutcome(result, heatmap, roc, []))
    window.audit.results.tabs.setCurrentIndex(1)
    QApplication.processEvents()
    label = window.audit.results.heatmap
    shown = label.pixmap()
    assert heatmap.width() > label.width()  # the plot is wider than the room it has
    assert shown.width() <= label.width()
    assert abs(shown.height() / shown.width() - heatmap.height() / heatmap.width()) < 0.01
    window.resize(1800, 680)  # room enough: the plot at its own size, never enlarged
    QApplication.processEvents()
    assert label.pixmap().width() == heatmap.width()


def test_reference_photos_and_a_mask_chosen_keep_the_protect_step_within_the_window(
        make_window, tmp_path):
    """Each with its name and a Remove button beside its button widened the step past a
    1024 px window (both scroll bars, the How panel and Protect off screen)."""
    import torch

    from faceguard.cloak.universal import CANONICAL_SIZE, UniversalMask

    window = make_window()
    window.resize(1024, 680)
    window.go_to(1)
    view = window.protect
    view.set_reference_photos([tmp_path / "a.jpg", tmp_path / "b.jpg"])
    mask = UniversalMask(torch.zeros(1, 3, CANONICAL_SIZE, CANONICAL_SIZE), "Someone Long-Named",
                         ["dlib"], {"eps": 4.0, "centroids": {"dlib": torch.zeros(128)}})
    view.set_mask(mask.save(tmp_path / "a-rather-long-name-for-a-mask.mask.pt"))
    QApplication.processEvents()
    assert view.minimumSizeHint().width() <= window.pages.width()
    assert _cut(window) == []


def test_the_protection_table_shows_every_row_under_the_plot(make_window):
    """At 1024x680 the table under the plot showed four rows in a box of its own: the
    tab now scrolls as one page, the table as tall as its rows."""
    window = make_window()
    window.resize(1024, 680)
    window.go_to(2)
    _show_an_audit(window)
    window.audit.results.tabs.setCurrentIndex(1)
    QApplication.processEvents()
    table = window.audit.results.protection_table
    assert table.rowCount() == 6
    assert table.viewport().height() >= sum(table.rowHeight(r) for r in range(6))
    header = table.horizontalHeader()  # the last column, stretched, was cut to the room left
    assert all(table.columnWidth(c) >= header.sectionSizeHint(c)
               for c in range(table.columnCount()))


def test_a_runs_words_make_the_protect_step_scroll_down_not_sideways(make_window):
    """Once a run's words showed under its photos, the Protect step scrolled 6 px
    sideways at 1024x680: its least width beside the vertical scroll bar."""
    window = make_window()
    window.resize(1024, 680)
    window.go_to(1)
    window.protect.say("2 photos cloaked in /tmp/protected. " * 8)
    QApplication.processEvents()
    area = window.pages.currentWidget()
    assert area.verticalScrollBar().maximum() > 0  # the words take room
    assert area.horizontalScrollBar().maximum() == 0
