"""The Photos step's grid of thumbnails: drop photos on it, double-click one to choose
its faces, Delete to take photos out of the album."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence, QPainter
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

THUMB = 176  # thumbnail side in the grid, device-independent pixels
PATH_ROLE = Qt.ItemDataRole.UserRole


def _path(item: QListWidgetItem) -> Path:
    return Path(item.data(PATH_ROLE))


class PhotoGrid(QListWidget):
    """Thumbnails of the album; accepts photos and folders dropped from a file manager.

    Double-click a photo (or Enter) to choose its faces; Delete, or the context menu,
    takes the selected photos out of the album.

    Signals:
        dropped(list[Path]): files or folders were dropped.
        remove_requested(list[Path]): the user wants these photos out of the album.
        faces_requested(Path): the user wants to choose this photo's faces.
    """

    dropped = Signal(list)
    remove_requested = Signal(list)
    faces_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 28, THUMB + 52))
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setSpacing(4)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.itemActivated.connect(lambda item: self.faces_requested.emit(_path(item)))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        faces = QAction("Choose faces…", self)
        faces.triggered.connect(lambda: self.currentItem() and self.faces_requested.emit(
            _path(self.currentItem())))
        remove = QAction("Remove from the album", self)
        remove.setShortcut(QKeySequence.StandardKey.Delete)
        remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        remove.triggered.connect(self.remove_selected)
        self.addActions([faces, remove])

    def selected_paths(self) -> list[Path]:
        return [_path(item) for item in self.selectedItems()]

    def remove_selected(self) -> None:
        if paths := self.selected_paths():
            self.remove_requested.emit(paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(paths)

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.count() == 0:  # the empty album says what to do
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() * 1.3)
            painter.setFont(font)
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                             "Drop photos or folders here\n\nor use Add photos… / Add folder…")
            painter.end()
