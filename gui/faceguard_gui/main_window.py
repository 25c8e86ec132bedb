"""The main window: the three steps, the progress bar with Cancel, messages, first run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from faceguard import __version__
from faceguard_gui.album_state import AlbumState
from faceguard_gui.audit_view import AuditView
from faceguard_gui.context import AppContext
from faceguard_gui.models_dialog import ModelsDialog, missing_models
from faceguard_gui.photos_view import PhotosView
from faceguard_gui.protect_view import ProtectView
from faceguard_gui.settings import AppSettings
from faceguard_gui.widgets import StepArea
from faceguard_gui.workers import CANCELLED, FAILED, JobController, ModelCache

STEPS = ("1   Photos", "2   Protect", "3   Audit")


class MainWindow(QMainWindow):
    """FaceGuard's window: a step list on the left, the step's page on the right.

    Attributes:
        photos, protect, audit: the three step views.
        messages: every (title, text) message shown, newest last (tests read it).
    """

    def __init__(self, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("FaceGuard")
        self.messages: list[tuple[str, str]] = []
        self._scratch = tempfile.TemporaryDirectory(prefix="faceguard-gui-")
        self._close_when_idle = False
        self._job_title = ""
        self._job_notes: list[str] = []  # what the user should know, said when the job ends
        self._models_dialog: ModelsDialog | None = None
        self.jobs = JobController(self)
        self.ctx = AppContext(album=AlbumState(self), settings=settings or AppSettings.load(),
                              jobs=self.jobs, models=ModelCache(),
                              scratch=Path(self._scratch.name), tell=self.tell,
                              confirm=self.confirm)
        self.ctx.models.small_faces = self.ctx.settings.small_faces

        self.photos = PhotosView(self.ctx)
        self.protect = ProtectView(self.ctx)
        self.audit = AuditView(self.ctx)
        self.pages = QStackedWidget()
        for page in (self.photos, self.protect, self.audit):
            self.pages.addWidget(StepArea(page))  # scrolls rather than being cut
        self.steps = QListWidget()
        self.steps.setObjectName("steps")
        for title in STEPS:
            self.steps.addItem(QListWidgetItem(title))
        self.steps.setFixedWidth(150)
        self.steps.setStyleSheet("QListWidget#steps { font-size: 12pt; border: none; }"
                                 "QListWidget#steps::item { padding: 12px 8px; }")
        self.steps.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.steps.setCurrentRow(0)

        self.banner = self._make_banner()
        right = QVBoxLayout()
        right.addWidget(self.banner)
        right.addWidget(self.pages, 1)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.addWidget(self.steps)
        layout.addLayout(right, 1)
        self.setCentralWidget(central)
        self._make_status_bar()
        self._make_menus()

        self.photos.next_requested.connect(lambda: self.go_to(1))
        self.protect.next_requested.connect(self._audit_folder)
        self.protect.album_protected.connect(self.audit.set_cloaked_folder)
        self.photos.grid.currentItemChanged.connect(
            lambda item, _: item is not None and self.protect.try_on(
                Path(item.data(Qt.ItemDataRole.UserRole))))
        self.protect.models_requested.connect(self.show_models)
        self.jobs.started.connect(self._job_started)
        self.jobs.progressed.connect(self._job_progressed)
        self.jobs.finished.connect(self._job_finished)
        self.resize(1280, 800)
        if geometry := self.ctx.settings.geometry:
            self.restoreGeometry(QByteArray.fromHex(geometry.encode()))
        QTimer.singleShot(0, self.check_models)

    def current_page(self) -> QWidget:
        """The step on screen (its view, not the scroll area around it)."""
        return self.pages.currentWidget().widget()

    # ---------------------------------------------------------------------- building

    def _make_banner(self) -> QFrame:
        banner = QFrame()
        banner.setObjectName("banner")
        banner.setStyleSheet("QFrame#banner { background: #fff4e5; border: 1px solid #f0b45a;"
                             " border-radius: 4px; } QFrame#banner QLabel { color: #5a3b00; }")
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.install_button = QPushButton("Install now")
        self.install_button.clicked.connect(self.install_missing)
        details = QPushButton("Details…")
        details.clicked.connect(self.show_models)
        row = QHBoxLayout(banner)
        row.addWidget(self.banner_text, 1)
        row.addWidget(self.install_button)
        row.addWidget(details)
        banner.hide()
        return banner

    def _make_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_text = QLabel("Ready")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(320)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop now; finished photos are kept")
        self.cancel_button.clicked.connect(self.cancel)
        bar.addWidget(self.status_text, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, slot, key in (("Add photos…", self.photos.choose_files, QKeySequence.Open),
                                ("Add folder…", self.photos.choose_folder, None)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            if key is not None:
                action.setShortcut(key)
            file_menu.addAction(action)
        file_menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        tools = self.menuBar().addMenu("&Tools")
        models = QAction("Face recognizers…", self)
        models.triggered.connect(self.show_models)
        tools.addAction(models)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("About FaceGuard", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    # ------------------------------------------------------------------------ steps

    def go_to(self, step: int) -> None:
        self.steps.setCurrentRow(step)

    def _audit_folder(self, folder: Path | None) -> None:
        self.audit.set_cloaked_folder(folder)
        self.go_to(2)

    # --------------------------------------------------------------------- messages

    def tell(self, title: str, text: str) -> None:
        """Show a message without blocking (and remember it)."""
        self.messages.append((title, text))
        box = QMessageBox(QMessageBox.Icon.Information, title, text,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.status_text.setText(f"{title}: {text}")

    def confirm(self, title: str, text: str) -> bool:
        """Ask a yes/no question (blocks until answered)."""
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _about(self) -> None:
        QMessageBox.about(self, "About FaceGuard",
                          f"FaceGuard {__version__}\n\nAdds a faint cloak to faces in your "
                          "photos so that face recognition fails, and audits whether the "
                          "cloak holds. Everything runs on this computer.")

    # -------------------------------------------------------------------------- jobs

    def _job_started(self, title: str) -> None:
        self._job_title = title
        self._job_notes = []
        self.status_text.setText(f"{title}…")
        self.progress.setRange(0, 0)  # busy until the first event says how many
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()

    def _job_progressed(self, event) -> None:
        clock = self.jobs.clock
        if event.total > 0:  # in hundredths of a step, so the bar moves within a photo
            self.progress.setRange(0, event.total * 100)
            self.progress.setValue(round(event.position * 100))
        else:
            self.progress.setRange(0, 0)
        text = f"{self.jobs.title}: {clock.text()}"
        if event.note:
            self._job_notes.append(event.note)
        if event.error:
            text += f"  (problem with {Path(event.path).name if event.path else 'a step'})"
        if self.jobs.cancelling:
            text = "Stopping…"
        self.status_text.setText(text)

    def _job_finished(self, outcome: str, message: str) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        words = {CANCELLED: "stopped", FAILED: "failed"}.get(outcome, "done")
        self.status_text.setText(f"{self._job_title}: {words}"
                                 + (f" ({message})" if message else "")
                                 + "".join(f"; note: {n}" for n in self._job_notes))
        # a long note runs past the window's edge: the whole line shows on hovering
        self.status_text.setToolTip(self.status_text.text())
        if self._close_when_idle:
            self.close()

    def cancel(self) -> None:
        """Stop the running job at its next step (finished photos are kept)."""
        if self.jobs.busy:
            self.jobs.cancel()
            self.cancel_button.setEnabled(False)
            self.status_text.setText("Stopping…")

    # ----------------------------------------------------------------------- models

    def check_models(self) -> list[str]:
        """Show the banner when a chosen recognizer is missing; returns the missing ones."""
        missing = missing_models(self.ctx.settings.models)
        if missing:
            many = len(missing) > 1
            it = "them" if many else "it"
            self.banner_text.setText(
                f"<b>The face recognizer{'s' * many} {', '.join(missing)} "
                f"{'are' if many else 'is'} not installed.</b> FaceGuard needs {it} to find "
                f"people and protect them. Installing fetches {it} through the package "
                f"manager and checks {it}, once; nothing else is ever downloaded.")
        self.banner.setVisible(bool(missing))
        return missing

    def install_missing(self) -> None:
        dialog = self.show_models()
        dialog.install(missing_models(self.ctx.settings.models))

    def show_models(self) -> ModelsDialog:
        if self._models_dialog is None:
            self._models_dialog = ModelsDialog(self.ctx, self)
            self._models_dialog.installed.connect(self._models_installed)
        self._models_dialog.refresh()
        self._models_dialog.show()
        self._models_dialog.raise_()
        return self._models_dialog

    def _models_installed(self) -> None:
        self.protect.refresh_models()
        self.audit.refresh_models()
        self.check_models()

    # ------------------------------------------------------------------------ close

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.jobs.busy:
            if not self._close_when_idle and not self.confirm(
                    "Stop and quit?", f"{self.jobs.title} is still running. Stop it and "
                    "quit? Photos finished so far are kept; the one being cloaked is not "
                    "written."):
                event.ignore()
                return
            # stop cleanly: quit once the worker has stopped (its current photo dropped)
            self._close_when_idle = True
            self.cancel()
            event.ignore()
            return
        self.ctx.settings.geometry = bytes(self.saveGeometry().toHex()).decode()
        self.ctx.settings.save()
        for child in self.findChildren(QWidget):
            if child.isWindow() and child is not self:
                child.close()
        self._scratch.cleanup()
        event.accept()
