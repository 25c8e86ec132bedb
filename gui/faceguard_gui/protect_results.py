"""The Protect step's results panel: one row per photo, double-click to compare."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from faceguard.manifest import FaceRecord, why_copied
from faceguard.verdict import tally, verdict
from faceguard.visibility import face_words, most_visible, seen_score
from faceguard.words import plural
from faceguard_gui.jobs import load_preview
from faceguard_gui.protect_how import PRESET_LABELS
from faceguard_gui.widgets import note


class ResultsPanel:
    """The results of a run: status, faces, visibility and recognizers fooled.

    A part of :class:`faceguard_gui.protect_view.ProtectView` (it relies on the view's
    ``ctx`` and on the other panels' methods).
    """

    def _results_box(self) -> QGroupBox:
        box = QGroupBox("Cloaked photos")
        self.results = QTableWidget(0, 5)
        self.results.setHorizontalHeaderLabels(
            ["Photo", "Result", "Faces cloaked", "How visible", "Recognizers fooled"])
        self.results.verticalHeader().hide()
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.results.horizontalHeader().setStretchLastSection(True)
        self.results.cellDoubleClicked.connect(self._open_result)
        self.results_note = note()  # shown with a run's words (:meth:`say`)
        self.results_note.hide()
        self.open_folder = QPushButton("Open folder")
        self.open_folder.clicked.connect(self._open_output_folder)
        self.next_button = QPushButton("Next: audit the protection  →")
        self.next_button.clicked.connect(lambda: self.next_requested.emit(self.last_output))
        # the note on a row of its own: beside the buttons its few words a line, it made
        # the step wider than a 1024-px window, and its last lines were cut off
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.open_folder)
        row.addWidget(self.next_button)
        inner = QVBoxLayout(box)
        inner.addWidget(self.results, 1)
        inner.addWidget(self.results_note)
        inner.addLayout(row)
        self.open_folder.setEnabled(False)
        self.next_button.setEnabled(False)
        return box

    def say(self, words: str) -> None:
        """Put a run's words under its photos (none: the note takes no room)."""
        self.results_note.setText(words)
        self.results_note.setVisible(bool(words))

    def _add_result(self, event) -> None:
        row = self.results.rowCount()
        self.results.insertRow(row)
        # as in the output folder: two photos of one name in two sub-folders differ
        name = QTableWidgetItem(self._shown_names.get(event.path, event.path.name)
                                if event.path else "")
        name.setToolTip(str(event.path))
        self.results.setItem(row, 0, name)
        if event.error:
            # the row names the photo: the core's "path: reason" says the reason
            reason = event.error.removeprefix(f"{event.path}: ")
            failed = QTableWidgetItem(f"failed: {reason}")
            failed.setToolTip(event.error)
            self.results.setItem(row, 1, failed)
            self._not_written["failed"] += 1
            return
        entry = event.result
        name.setData(Qt.ItemDataRole.UserRole, entry)  # what a double-click compares
        if event.skipped:
            self.results.setItem(row, 1, QTableWidgetItem("already done (kept)"))
            self._not_written["kept"] += 1
            return
        self._results[str(event.path)] = entry
        faces = entry["faces"]
        protected = [f for f in faces if f["protected"]]
        # "cloaked", not "protected": whether the cloak protects is the last column's say
        status = "cloaked" if entry["status"] == "cloaked" else f"copied ({why_copied(entry)})"
        self.results.setItem(row, 1, QTableWidgetItem(status))
        self.results.setItem(row, 2, QTableWidgetItem(f"{len(protected)} of {len(faces)}"))
        scores = [s for f in protected if (s := seen_score(f.get("quality") or {})) is not None]
        visible = QTableWidgetItem(face_words(most_visible([f.get("quality") or {}
                                                            for f in protected]))
                                   if scores else "–")
        if scores:  # as the file shows them: its compression included, as the CLI says
            visible.setToolTip(f"Least SSIMULACRA2 of its protected faces in the file: "
                               f"{min(scores):.1f} (100 = identical)")
        self.results.setItem(row, 3, visible)
        self.results.setItem(row, 4, self._fooled(protected))
        self.results.scrollToBottom()

    @staticmethod
    def _fooled(faces: list[dict]) -> QTableWidgetItem:
        """E.g. "3 of 3; others not checked": recognizers that no longer match any
        protected face, made on and not (the verdict's words in the tooltip)."""
        found = verdict([FaceRecord.from_dict(f) for f in faces])
        item = QTableWidgetItem(found.short())
        item.setToolTip(found.words())
        return item

    def cloaked_count(self) -> int:
        """Photos this run cloaked (not copied, kept or failed)."""
        return sum(1 for r in self._results.values() if r.get("status") == "cloaked")

    def run_words(self, outdir: Path, stronger: str | None) -> str:
        """What a finished run did, in words: photos cloaked, kept and failed, then the
        faces' tally (:meth:`tally_words`) and what to do next."""
        kept, failed = self._not_written["kept"], self._not_written["failed"]
        words = f"{plural(self.cloaked_count(), 'photo')} cloaked in {outdir}"
        if kept:
            words += f", {kept} done by an earlier run (kept)"
        if failed:
            words += f", {failed} failed (see their rows)"
        if self._results or not kept:  # all kept: nothing was cloaked this time, nor said
            words += f". {self.tally_words(stronger)}"
        else:
            words += "."
        if self._results:
            words += " Step 3's audit checks further. Double-click a photo to compare."
        return words

    def tally_words(self, stronger: str | None) -> str:
        """The run's cloaked faces, recognizer by recognizer, in words (the CLI's last
        line): each row says one photo, this says the album."""
        return tally([FaceRecord.from_dict(f) for entry in self._results.values()
                      for f in entry["faces"]]).words(
            stronger, lambda preset: f'preset "{PRESET_LABELS[preset].split(":")[0]}"',
            "the size in the Format row")

    def _open_result(self, row: int, _column: int) -> None:
        item = self.results.item(row, 0)
        entry = item.data(Qt.ItemDataRole.UserRole) if item else None
        if entry is None or self.last_output is None:
            return
        self.setCursor(Qt.CursorShape.WaitCursor)
        try:
            data = load_preview(Path(entry["input"]), self.last_output / entry["output"],
                                entry)
        except Exception as exc:  # a file removed meanwhile: say so
            self.ctx.tell("Cannot open the photo", str(exc))
            return
        finally:
            self.unsetCursor()
        self.show_preview(data, *self._run_limits)

    def _open_output_folder(self) -> None:
        if self.last_output is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_output)))
