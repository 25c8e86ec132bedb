"""One photo, large, with its faces: click a face's box to cloak that face or leave it.

Opened by double-clicking a photo in the Photos step. Green boxes are faces that will
be cloaked (their person is ticked, everyone is, or the box was clicked on), blue ones
faces left as they are. Esc closes it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QDialog, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from faceguard.words import plural
from faceguard_gui.album_state import AlbumState
from faceguard_gui.images import FACE_COLOUR, PROTECTED_COLOUR, thumbnail
from faceguard_gui.widgets import note

SIDE = 720  # the photo's longest side as loaded for the picker


class FaceCanvas(QWidget):
    """The photo scaled to fit, its face boxes on top; a click on a box toggles it."""

    def __init__(self, album: AlbumState, path: Path, everyone: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.album, self.path, self.everyone = album, path, everyone
        self.image = thumbnail(path, SIDE) or QImage()
        photo = album.photos[path]
        self.faces = photo.faces.faces if photo.faces is not None else []
        self.photo_width = photo.faces.width if photo.faces is not None else 1
        self.setMinimumSize(320, 240)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def _frame(self) -> tuple[QRectF, float]:
        """Where the photo is drawn, and photo pixels -> screen pixels."""
        if self.image.isNull():
            return QRectF(), 1.0
        scale = min(self.width() / self.image.width(), self.height() / self.image.height())
        w, h = self.image.width() * scale, self.image.height() * scale
        rect = QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)
        return rect, w / self.photo_width

    def box_rect(self, index: int) -> QRectF:
        """Face ``index``'s box on screen."""
        rect, scale = self._frame()
        x0, y0, x1, y1 = self.faces[index].box
        return QRectF(rect.x() + x0 * scale, rect.y() + y0 * scale, (x1 - x0) * scale,
                      (y1 - y0) * scale)

    def face_at(self, point: QPointF) -> int | None:
        """The face whose box holds ``point`` (the smallest, where boxes overlap)."""
        hits = [k for k in range(len(self.faces)) if self.box_rect(k).contains(point)]
        return min(hits, key=lambda k: self.box_rect(k).width()) if hits else None

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        index = self.face_at(event.position())
        if index is not None:
            self.album.toggle_face(self.path, index, self.everyone)
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        rect, _ = self._frame()
        if not self.image.isNull():
            painter.drawImage(rect, self.image)
        for k in range(len(self.faces)):
            cloaked = self.album.is_cloaked(self.path, k, self.everyone)
            painter.setPen(QPen(PROTECTED_COLOUR if cloaked else FACE_COLOUR, 3))
            painter.drawRect(self.box_rect(k))
        painter.end()


class FacePicker(QDialog):
    """A dialog around :class:`FaceCanvas`, with a line saying what will happen."""

    def __init__(self, album: AlbumState, path: Path, everyone: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Faces in {path.name}")
        self.canvas = FaceCanvas(album, path, everyone)
        self.note = note()
        done = QPushButton("Done")
        done.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addWidget(self.note, 1)
        row.addWidget(done)
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(row)
        self.album, self.path, self.everyone = album, path, everyone
        album.choice_changed.connect(self._say)
        self._say()
        self.resize(820, 640)

    def _say(self) -> None:
        n = len(self.canvas.faces)
        cloaked = sum(self.album.is_cloaked(self.path, k, self.everyone) for k in range(n))
        self.note.setText(f"{cloaked} of {plural(n, 'face')} will be cloaked (green). "
                          "Click a face's box to cloak it or leave it as it is.")

    def done(self, result: int) -> None:
        self.album.choice_changed.disconnect(self._say)
        super().done(result)
