"""Step 3, Audit: does the cloak hold after what platforms do to photos, can it be spotted?

Runs :func:`faceguard.audit.run.run_audit` on a folder of protected photos and shows
its findings in plain words, its tables and its plots; exports the HTML/JSON report.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from faceguard.audit.cloak_detection import DETECTORS, detector_label
from faceguard.audit.defenses import defense_label, list_defenses
from faceguard.audit.run import QUICK_DEFENSES, QUICK_DETECTORS, AuditJob
from faceguard.models.catalogue import is_installed, model_info, model_names
from faceguard.words import plural
from faceguard_gui.context import AppContext
from faceguard_gui.images import to_qimage
from faceguard_gui.jobs import AuditOutcome, audit, export_report
from faceguard_gui.widgets import StepHeader, TickList, note

PROTECTION_COLUMNS = [  # (key, title)
    ("defense", "What the platform does"),
    ("model", "Recognizer"),
    ("held_out", "Not made on"),
    ("faces", "Faces"),
    ("protected", "Protected"),
    ("mean_distance", "Distance / threshold"),
    ("clean_verify", "Clean faces still recognised"),
]
DETECTION_COLUMNS = [
    ("detector", "Detector"),
    ("flagged_cloaked", "Cloaked faces flagged"),
    ("flagged_clean", "Clean faces wrongly flagged"),
    ("roc_auc", "ROC AUC (0.5 = cannot tell)"),
    ("accuracy", "Accuracy"),
    ("split", "Tested on other"),
]


RATIO_KEYS = {"mean_distance", "roc_auc"}  # plain numbers, not shares


def protected_share(row: dict) -> float | None:
    """The row's protection figure: top-1 identification when measured, else verification."""
    return row["protected_top1"] if row["protected_top1"] is not None else row["protected_verify"]


def _cell(value, key: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if key in RATIO_KEYS:
            return f"{value:.2f}"
        return f"{value:.0%}" if 0 <= value <= 1 else f"{value:.2f}"
    return str(value)


def _red_to_green(share: float) -> QColor:
    """A soft background colour: red (0, unprotected) to green (1, protected)."""
    hue = 120 * min(max(share, 0.0), 1.0) / 360
    return QColor.fromHslF(hue, 0.55, 0.82)


class AuditView(QWidget):
    """The Audit step."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.outcome: AuditOutcome | None = None
        header = StepHeader("3  Audit", "Check the protection the way a platform would try to "
                            "break it: recompression, filters, purifiers, other recognizers, and "
                            "detectors that look for cloaks. Then export the report.")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self._choices())
        split.addWidget(self._results())
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 5)
        split.setSizes([360, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addWidget(split, 1)
        ctx.jobs.started.connect(lambda _: self._update_actions())
        ctx.jobs.finished.connect(lambda *_: self._update_actions())
        self._update_actions()

    # ----------------------------------------------------------------------- choices

    def _choices(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.cloaked = QLineEdit()
        self.cloaked.setPlaceholderText("folder of protected photos")
        self.cloaked.textChanged.connect(self._update_actions)
        self.originals = QLineEdit()
        self.originals.setPlaceholderText("only needed without a FaceGuard manifest")
        folders = QGroupBox("Photos")
        grid = QGridLayout(folders)
        for row, (label, edit) in enumerate((("Protected", self.cloaked),
                                             ("Originals", self.originals))):
            button = QPushButton("Choose…")
            button.clicked.connect(lambda _=False, e=edit: self._choose_folder(e))
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(edit, row, 1)
            grid.addWidget(button, row, 2)
        layout.addWidget(folders)

        s = self.ctx.settings
        self.defenses = TickList()
        self.defenses.set_choices([(d.name, d.label,
                                    f"{d.name}: {d.description}\n{d.citation}".strip())
                                   for d in list_defenses()], s.audit_defenses)
        self.recognizers = TickList()
        self.refresh_models()
        self.detectors = TickList()
        self.detectors.set_choices([(k, v.label, f"{k}: {v.description}")
                                    for k, v in DETECTORS.items()], s.audit_detectors)
        for title, tick_list in (("What a platform might do to the photo", self.defenses),
                                 ("Recognizers that try to find the person", self.recognizers),
                                 ("Detectors that look for a cloak", self.detectors)):
            group = QGroupBox(title)
            QVBoxLayout(group).addWidget(tick_list)
            tick_list.itemChanged.connect(self._save_ticks)
            layout.addWidget(group, 1)

        self.quick_button = QPushButton("Quick choice")
        self.quick_button.setToolTip("The usual defenses and detectors, every recognizer")
        self.quick_button.clicked.connect(self.quick_choice)
        self.run_button = QPushButton("Run the audit")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        row = QHBoxLayout()
        row.addWidget(self.quick_button)
        row.addStretch(1)
        row.addWidget(self.run_button)
        layout.addLayout(row)
        self.run_note = note()
        layout.addWidget(self.run_note)
        return box

    def refresh_models(self) -> None:
        names = model_names()
        installed = [n for n in names if is_installed(n)]
        ticked = self.ctx.settings.audit_models or installed
        self.recognizers.set_choices(
            [(n, n if n in installed else f"{n} (not installed)",
              model_info(n).get("description", "")) for n in names],
            ticked, disabled=[n for n in names if n not in installed])

    def _choose_folder(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        if folder:
            edit.setText(folder)

    def set_cloaked_folder(self, folder: Path | None) -> None:
        if folder is not None:
            self.cloaked.setText(str(folder))
            self.cloaked.setToolTip(str(folder))

    def quick_choice(self) -> None:
        self.defenses.set_ticked(QUICK_DEFENSES)
        self.detectors.set_ticked(QUICK_DETECTORS)
        self.recognizers.set_ticked([n for n in model_names() if is_installed(n)])
        self._save_ticks()

    def _save_ticks(self) -> None:
        s = self.ctx.settings
        s.audit_defenses = self.defenses.ticked()
        s.audit_detectors = self.detectors.ticked()
        ticked = self.recognizers.ticked()
        installed = [n for n in model_names() if is_installed(n)]
        s.audit_models = [] if set(ticked) == set(installed) else ticked
        s.save()
        self._update_actions()

    def _update_actions(self) -> None:
        problem = None
        if not self.cloaked.text().strip():
            problem = "Protect photos in step 2, or choose a folder of protected photos."
        elif not self.defenses.ticked():
            problem = "Tick at least one defense (\"nothing\" is the photo as published)."
        elif not self.recognizers.ticked():
            problem = "Tick at least one installed recognizer."
        self.run_note.setText(problem or "")
        busy = self.ctx.jobs.busy
        self.run_button.setEnabled(problem is None and not busy)
        self.export_button.setEnabled(self.outcome is not None and not busy)

    # ------------------------------------------------------------------------ results

    def _results(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        self.summary = QTextBrowser()
        self.summary.setOpenExternalLinks(True)
        self.summary.setPlaceholderText("Run the audit to see how well the protection holds.")
        self.tabs.addTab(self.summary, "Summary")

        self.protection_table = self._table([t for _, t in PROTECTION_COLUMNS])
        self.heatmap = QLabel()
        self.heatmap.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.tabs.addTab(self._scrolling(self.heatmap, self.protection_table), "Protection")

        self.detection_table = self._table([t for _, t in DETECTION_COLUMNS])
        self.roc = QLabel()
        self.roc.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.tabs.addTab(self._scrolling(self.roc, self.detection_table), "Detection")

        self.examples = QWidget()
        self.examples_layout = QGridLayout(self.examples)
        self.tabs.addTab(self._scrolling(self.examples), "Examples")

        self.export_button = QPushButton("Export report (HTML + JSON)…")
        self.export_button.clicked.connect(self.choose_export_folder)
        self.export_note = note()
        row = QHBoxLayout()
        row.addWidget(self.export_note, 1)
        row.addWidget(self.export_button)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(row)
        return box

    @staticmethod
    def _table(titles: list[str]) -> QTableWidget:
        table = QTableWidget(0, len(titles))
        table.setHorizontalHeaderLabels(titles)
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        table.setMinimumHeight(160)
        return table

    @staticmethod
    def _scrolling(*widgets: QWidget) -> QScrollArea:
        inner = QWidget()
        layout = QVBoxLayout(inner)
        for w in widgets:
            layout.addWidget(w)
        layout.addStretch(1)
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setWidget(inner)
        return area

    # --------------------------------------------------------------------------- run

    def run(self) -> None:
        """Run the audit with the ticked choices."""
        cloaked = Path(self.cloaked.text().strip()).expanduser()
        originals = self.originals.text().strip()
        job = AuditJob(cloaked=cloaked, outdir=self.ctx.scratch / "audit",
                       originals=Path(originals).expanduser() if originals else None,
                       models=self.recognizers.ticked(), defenses=self.defenses.ticked(),
                       detectors=self.detectors.ticked())
        cache = self.ctx.models
        self.export_note.setText("")

        def on_event(event) -> None:
            if event.stage == "done":
                self.show_outcome(event.result)

        def on_finished(outcome: str, message: str) -> None:
            if outcome == "failed":
                self.ctx.tell("The audit could not run", message)

        self.ctx.jobs.start(f"Audit of {cloaked.name}", lambda: audit(job, cache),
                            on_event, on_finished)

    def show_outcome(self, outcome: AuditOutcome) -> None:
        """Fill the summary, the tables, the plots and the examples."""
        self.outcome = outcome
        result = outcome.result
        html = [f"<h3>{plural(result.photos, 'photo')}, "
                f"{plural(result.faces, 'protected face')}, "
                f"{plural(result.people, 'person', 'people')} known</h3><ul>"]
        html += [f"<li>{_escape(line)}</li>" for line in outcome.summary]
        html.append("</ul>")
        if result.notes or result.errors:
            html.append("<h4>Notes</h4><ul>")
            html += [f"<li>{_escape(x)}</li>" for x in result.notes + result.errors]
            html.append("</ul>")
        self.summary.setHtml("".join(html))

        rows = result.protection
        self.protection_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            values = dict(row, protected=protected_share(row))
            for c, (key, _) in enumerate(PROTECTION_COLUMNS):
                item = QTableWidgetItem(_cell(values.get(key), key))
                if key == "defense":
                    item = QTableWidgetItem(defense_label(row["defense"]))
                    item.setToolTip(row["defense"])
                if key == "protected" and values[key] is not None:
                    item.setBackground(_red_to_green(values[key]))
                    item.setForeground(QColor(20, 20, 20))
                self.protection_table.setItem(r, c, item)
        self.detection_table.setRowCount(len(result.detection))
        for r, row in enumerate(result.detection):
            for c, (key, _) in enumerate(DETECTION_COLUMNS):
                text = detector_label(row[key]) if key == "detector" else _cell(row.get(key), key)
                item = QTableWidgetItem(text)
                item.setToolTip(f"{row['detector']}: {row.get('sentence', '')}")
                self.detection_table.setItem(r, c, item)
        self._set_plot(self.heatmap, outcome.heatmap, "No protection plot (no face measured).")
        self._set_plot(self.roc, outcome.roc, "No detection plot (detection was skipped; "
                       "see the notes in the summary).")
        self._show_examples(result.examples)
        self._update_actions()

    def _set_plot(self, label: QLabel, image: QImage | None, missing: str) -> None:
        if image is None or image.isNull():
            label.setText(missing)
            label.setPixmap(QPixmap())
        else:
            label.setPixmap(QPixmap.fromImage(image))

    def _show_examples(self, examples: list[dict]) -> None:
        while self.examples_layout.count():
            item = self.examples_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        titles = ["original", "protected", "purified", "difference ×10"]
        keys = ["original", "cloaked", "purified", "difference"]
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

    # ------------------------------------------------------------------------ export

    def choose_export_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the report to",
                                                  self.cloaked.text())
        if folder:
            self.export(Path(folder))

    def export(self, folder: Path) -> None:
        """Write report.json and report.html into ``folder`` (in a worker)."""
        if self.outcome is None:
            return
        result = self.outcome.result

        def on_event(event) -> None:
            json_path, html_path = event.result
            self.exported = (json_path, html_path)
            url = QUrl.fromLocalFile(str(html_path)).toString()
            self.export_note.setText(f"Report written: <a href='{url}'>{html_path}</a> "
                                     f"and {json_path.name}")

        def on_finished(outcome: str, message: str) -> None:
            if outcome == "failed":
                self.ctx.tell("The report could not be written", message)

        self.export_note.setTextFormat(Qt.TextFormat.RichText)
        self.export_note.setOpenExternalLinks(True)
        self.ctx.jobs.start("Writing the report", lambda: export_report(result, folder),
                            on_event, on_finished)

    exported: tuple[Path, Path] | None = None


def _escape(text: str) -> str:
    import html

    return html.escape(text)
