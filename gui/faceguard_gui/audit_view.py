"""Step 3, Audit: does the cloak hold after what platforms do to photos, can it be spotted?

Runs :func:`faceguard.audit.run.run_audit` on a folder of protected photos and shows
its findings in plain words, its tables and its plots; exports the HTML/JSON report.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from faceguard.album import AlbumError
from faceguard.audit import QUICK_DEFENSES, QUICK_DETECTORS
from faceguard.audit.cloak_detection import DETECTORS
from faceguard.audit.defenses import list_defenses
from faceguard.audit.report import PRIVATE, check_report_folder
from faceguard.audit.run import AuditJob
from faceguard.models.catalogue import is_installed, model_info, model_names, one_per_family
from faceguard_gui.audit_results import AuditResults
from faceguard_gui.context import AppContext
from faceguard_gui.jobs import AuditOutcome, audit, export_report
from faceguard_gui.widgets import FolderField, StepHeader, TickList, note


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
        self.cloaked = FolderField()
        self.cloaked.setPlaceholderText("folder of cloaked photos")
        self.cloaked.textChanged.connect(self._update_actions)
        self.cloaked.textChanged.connect(self.clear_results)
        self.originals = FolderField()
        self.originals.setPlaceholderText("if no manifest")
        self.originals.textChanged.connect(self.clear_results)
        self.gallery = FolderField()  # the CLI's --gallery
        self.gallery.setPlaceholderText("optional")
        self.gallery.setToolTip("Clean photos of people, one sub-folder each, for the "
                                "recognizers to find the cloaked faces among, as a platform "
                                "would: a sub-folder whose faces match a protected person is "
                                "taken as them.")
        self.gallery.textChanged.connect(self.clear_results)
        folders = QGroupBox("Photos")
        grid = QGridLayout(folders)
        for row, (label, edit) in enumerate((("Cloaked", self.cloaked),
                                             ("Originals", self.originals),
                                             ("Known people", self.gallery))):
            button = QToolButton()  # one row each: the step fits a 1024x680 window
            button.setText("…")
            button.setToolTip(f"Choose the folder of {label.lower()} photos")
            button.clicked.connect(lambda _=False, e=edit: self._choose_folder(e))
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(edit, row, 1)
            grid.addWidget(button, row, 2)
        layout.addWidget(folders)

        s = self.ctx.settings
        self.defenses = TickList()
        self.defenses.set_choices([(d.name, d.label,
                                    f"{d.name}: {d.description}\n{d.citation}".strip())
                                   for d in list_defenses() if d.name != "none"],
                                  s.audit_defenses)  # the photo as published: always tried
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
        ticked = self.ctx.settings.audit_models or one_per_family()
        self.recognizers.set_choices(
            [(n, n if n in installed else f"{n} (not installed)",
              model_info(n).get("description", "")) for n in names],
            ticked, disabled=[n for n in names if n not in installed])

    def _choose_folder(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        if folder:
            edit.setText(folder)

    def set_cloaked_folder(self, folder: Path | None) -> None:
        """The folder a protect run just wrote: an audit shown of it no longer holds."""
        if folder is not None:
            self.cloaked.setText(str(folder))
            self.clear_results()  # the same folder, written again: no textChanged

    def quick_choice(self) -> None:
        self.defenses.set_ticked(QUICK_DEFENSES)
        self.detectors.set_ticked(QUICK_DETECTORS)
        self.recognizers.set_ticked(one_per_family())
        self._save_ticks()

    def _save_ticks(self) -> None:
        s = self.ctx.settings
        s.audit_defenses = self.defenses.ticked()
        s.audit_detectors = self.detectors.ticked()
        ticked = self.recognizers.ticked()
        s.audit_models = [] if set(ticked) == set(one_per_family()) else ticked
        s.save()
        self._update_actions()

    def _update_actions(self) -> None:
        problem = None
        if not self.cloaked.text().strip():
            problem = "Protect photos in step 2, or choose a folder of cloaked photos."
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
        self.results = AuditResults()
        self.export_button = QPushButton("Export report (HTML + JSON)…")
        self.export_button.clicked.connect(self.choose_export_folder)
        self.export_note = note()
        row = QHBoxLayout()
        row.addWidget(self.export_note, 1)
        row.addWidget(self.export_button)
        layout.addWidget(self.results, 1)
        layout.addLayout(row)
        return box

    def clear_results(self) -> None:
        """Forget the results on screen: their input changed, so they no longer hold."""
        if self.outcome is None:
            return
        self.outcome = None
        self.results.clear()
        self.export_note.setText("")
        self._update_actions()

    # --------------------------------------------------------------------------- run

    def run(self) -> None:
        """Run the audit with the ticked choices."""
        cloaked = Path(self.cloaked.text().strip()).expanduser()
        originals, gallery = self.originals.text().strip(), self.gallery.text().strip()
        job = AuditJob(cloaked=cloaked, outdir=self.ctx.scratch / "audit",
                       originals=Path(originals).expanduser() if originals else None,
                       # where the manifest keeps the originals' folder private, the
                       # album's photos are its originals (those unchanged since)
                       original_photos={rel: photo for photo, rel
                                        in self.ctx.album.photo_jobs()},
                       gallery=Path(gallery).expanduser() if gallery else None,
                       models=self.recognizers.ticked(), defenses=self.defenses.ticked(),
                       detectors=self.detectors.ticked())
        cache = self.ctx.models
        # the last audit's results stay until this one's replace them: a cancelled or
        # failed run leaves them, as they still hold for their folders and choices
        asked = self._folders()

        def on_event(event) -> None:
            # not if the folders were changed meanwhile: the outcome is of the others
            if event.stage == "done" and self._folders() == asked:
                self.show_outcome(event.result)

        def on_finished(outcome: str, message: str) -> None:
            if outcome == "failed":
                self.ctx.tell("The audit could not run", message)

        self.ctx.jobs.start(f"Audit of {cloaked.name}", lambda: audit(job, cache),
                            on_event, on_finished)

    def _folders(self) -> tuple[str, str, str]:
        return self.cloaked.text(), self.originals.text(), self.gallery.text()

    def show_outcome(self, outcome: AuditOutcome) -> None:
        """Show an audit's outcome (the verdict first)."""
        self.outcome = outcome
        self.results.show_outcome(outcome)
        self.export_note.setText("")  # a report written before is not of these results
        self._update_actions()

    # ------------------------------------------------------------------------ export

    def choose_export_folder(self) -> None:
        cloaked = Path(self.cloaked.text()).expanduser()
        folder = QFileDialog.getExistingDirectory(self, "Export the report to",
                                                  str(cloaked.parent))  # not into it
        if folder:
            self.export(Path(folder))

    def export(self, folder: Path) -> None:
        """Write report.json and report.html into ``folder`` (in a worker)."""
        if self.outcome is None:
            return
        try:
            # the results shown are of the folders shown (they are cleared when those change)
            check_report_folder(folder, Path(self.cloaked.text()).expanduser())
        except AlbumError as exc:
            self.ctx.tell("Choose another folder", str(exc))
            return
        result = self.outcome.result

        def on_event(event) -> None:
            json_path, html_path = event.result
            self.exported = (json_path, html_path)
            url = QUrl.fromLocalFile(str(html_path)).toString()
            self.export_note.setText(f"Report written: <a href='{url}'>{html_path}</a> "
                                     f"and {json_path.name}. {PRIVATE}")

        def on_finished(outcome: str, message: str) -> None:
            if outcome == "failed":
                self.ctx.tell("The report could not be written", message)

        self.export_note.setTextFormat(Qt.TextFormat.RichText)
        self.export_note.setOpenExternalLinks(True)
        self.ctx.jobs.start("Writing the report", lambda: export_report(result, folder),
                            on_event, on_finished)

    exported: tuple[Path, Path] | None = None
