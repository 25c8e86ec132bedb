"""The Audit step's results: the verdict first, in plain words, then the findings, the
tables, the plots and example faces (technical detail one click away)."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from faceguard.audit.cloak_detection import detector_label, shown_auc
from faceguard.audit.defenses import defense_label
from faceguard.audit.report import DETECTION_COLUMNS, PROTECTION_COLUMNS, protection_rows
from faceguard.words import figure_text, plural
from faceguard_gui.images import to_qimage
from faceguard_gui.jobs import AuditOutcome
from faceguard_gui.widgets import FittingImage, FittingLabel, scrolling

#: what the verdict line shows before any audit has run
NO_VERDICT = "Run the audit to see how well the protection holds."


def _red_to_green(share: float) -> QColor:
    """A soft background colour: red (0, unprotected) to green (1, protected)."""
    hue = 120 * min(max(share, 0.0), 1.0) / 360
    return QColor.fromHslF(hue, 0.55, 0.82)


def _table(titles: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(titles))
    table.setHorizontalHeaderLabels(titles)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    # each column as wide as its words (the last one, stretched, was cut to the room left)
    table.horizontalHeader().setStretchLastSection(False)
    # as tall as its rows (:func:`_show_all_rows`): the tab scrolls as one page, plot and
    # table, instead of a few rows scrolling in a box under the plot
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return table


def _show_all_rows(table: QTableWidget) -> None:
    """Make ``table`` tall enough to show every row (and its horizontal scroll bar)."""
    table.resizeRowsToContents()
    rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
    height = (table.horizontalHeader().sizeHint().height() + rows + 2 * table.frameWidth()
              + table.horizontalScrollBar().sizeHint().height())
    table.setFixedHeight(height)


class AuditResults(QWidget):
    """The verdict above tabs of detail: summary, protection, detection, examples."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.verdict = FittingLabel(NO_VERDICT)  # never cut: it is what people read first
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tabs = QTabWidget()
        self.summary = QTextBrowser()
        self.summary.setOpenExternalLinks(True)
        self.summary.setPlaceholderText("The findings in detail appear here.")
        self.tabs.addTab(self.summary, "In detail")
        self.protection_table = _table([t for _, t in PROTECTION_COLUMNS])
        protected = [k for k, _ in PROTECTION_COLUMNS].index("protected")
        self.protection_table.horizontalHeaderItem(protected).setToolTip(
            "Of the faces this recognizer recognised without the cloak (the next column), "
            "the share it no longer recognises")
        self.heatmap = FittingImage()
        self.tabs.addTab(scrolling(self.heatmap, self.protection_table), "Protection")
        self.detection_table = _table([t for _, t in DETECTION_COLUMNS])
        self.roc = FittingImage()
        self.tabs.addTab(scrolling(self.roc, self.detection_table), "Detection")
        self.examples = QWidget()
        self.examples_layout = QGridLayout(self.examples)
        self.tabs.addTab(scrolling(self.examples), "Examples")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.verdict)
        layout.addWidget(self.tabs, 1)

    def clear(self) -> None:
        """Forget the results shown (their input changed)."""
        self.verdict.setText(NO_VERDICT)
        self.summary.clear()
        for table in (self.protection_table, self.detection_table):
            table.setRowCount(0)
            _show_all_rows(table)
        for label in (self.heatmap, self.roc):
            label.clear()
        self._show_examples([])

    def show_outcome(self, outcome: AuditOutcome) -> None:
        """Fill the verdict, the findings, the tables, the plots and the examples."""
        result = outcome.result
        v = result.verdict()
        problem = (f"<p>{html.escape(result.detection_problem)}</p>"
                   if result.detection_problem else "")
        self.verdict.setText(f"<p style='font-size:large'><b>{html.escape(v.headline)}</b> "
                             f"{html.escape(v.details())}</p>{problem}")
        lines = [f"<h3>{plural(result.photos, 'photo')}, "
                 f"{plural(result.faces, 'cloaked face')}, "
                 f"{plural(result.people, 'person', 'people')} known</h3><ul>"]
        lines += [f"<li>{html.escape(line)}</li>" for line in outcome.summary]
        lines.append("</ul>")
        if result.notes or result.errors:
            lines.append("<h4>Notes</h4><ul>")
            lines += [f"<li>{html.escape(x)}</li>" for x in result.notes + result.errors]
            lines.append("</ul>")
        self.summary.setHtml("".join(lines))
        self._fill_protection(protection_rows(result))
        self._fill_detection(result.detection)
        self._set_plot(self.heatmap, outcome.heatmap, "No protection plot (no face measured).")
        self._set_plot(self.roc, outcome.roc, "No detection plot: "
                       + (result.detection_problem or "see the notes under “In detail”."))
        self._show_examples(result.examples)

    def _fill_protection(self, rows: list[dict]) -> None:
        self.protection_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (key, _) in enumerate(PROTECTION_COLUMNS):
                item = QTableWidgetItem(figure_text(row.get(key), key))
                if key == "what":
                    item.setToolTip(row["defense"])
                if key == "protected" and row[key] is not None:
                    item.setBackground(_red_to_green(row[key]))
                    item.setForeground(QColor(20, 20, 20))
                self.protection_table.setItem(r, c, item)
        _show_all_rows(self.protection_table)

    def _fill_detection(self, rows: list[dict]) -> None:
        self.detection_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (key, _) in enumerate(DETECTION_COLUMNS):
                if key == "detector":
                    text = detector_label(row[key])
                elif key == "roc_auc":
                    text = figure_text(shown_auc(row), key)
                else:
                    text = figure_text(row.get(key), key)
                item = QTableWidgetItem(text)
                item.setToolTip(f"{row['detector']}: {row.get('sentence', '')}")
                self.detection_table.setItem(r, c, item)
        _show_all_rows(self.detection_table)

    @staticmethod
    def _set_plot(label: QLabel, image: QImage | None, missing: str) -> None:
        if image is None or image.isNull():
            label.setPixmap(QPixmap())
            label.setText(missing)
        else:
            label.setPixmap(QPixmap.fromImage(image))

    def _show_examples(self, examples: list[dict]) -> None:
        while self.examples_layout.count():
            item = self.examples_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        if not examples:
            return
        columns = [("original", "original"), ("protected", "cloaked"),
                   ("purified", "purified"), ("difference ×10", "difference")]
        if examples[0]["purified_by"] is None:  # no clean-up tried: nothing purified to show
            columns.remove(("purified", "purified"))
        titles, keys = zip(*columns, strict=True)
        for c, title in enumerate(titles):
            self.examples_layout.addWidget(QLabel(f"<b>{title}</b>"), 0, c)
        for r, example in enumerate(examples, 1):
            for c, key in enumerate(keys):
                label = QLabel()
                label.setPixmap(QPixmap.fromImage(to_qimage(example[key])))
                purified = defense_label(example["purified_by"] or "none")
                label.setToolTip(f"{example['person']}: {Path(example['photo']).name}"
                                 + (f", purified by {purified}" if key == "purified" else ""))
                self.examples_layout.addWidget(label, r, c)
