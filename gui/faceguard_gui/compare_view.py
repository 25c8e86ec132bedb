"""The compare view: the original and the cloaked photo, by a split line or side by
side (two panes that zoom and pan together), with zoom, pan and face boxes."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPen,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QWidget,
)

from faceguard_gui.images import DIFFERENCE_GAIN, FACE_COLOUR, PROTECTED_COLOUR

MIN_ZOOM, MAX_ZOOM = 0.02, 16.0


class CompareView(QWidget):
    """Before/after view: a draggable split line, or two panes side by side; zoom and pan.

    In split mode the original lies left of the line, the cloaked photo (or the
    amplified difference) right of it. Side by side, the original fills the left pane
    and the cloaked photo the right one; both panes show the same part of the photo
    at the same zoom, so zooming or panning either moves both. ``show_original`` puts the
    original in the cloaked photo's place (the B key), to see the change blink.

    Signals:
        zoom_changed(float): the zoom (1.0 = one photo pixel per device pixel).
        split_changed(float): the split line's place, 0 (left edge) to 1 (right edge).
    """

    zoom_changed = Signal(float)
    split_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before = QImage()
        self.after = QImage()
        self.difference = QImage()
        self.show_difference = False
        self.show_original = False
        self.side_by_side = False
        self.boxes: list[tuple[list[float], bool]] = []  # (box, protected)
        self.show_boxes = True
        self.zoom = 1.0
        self.split = 0.5
        self._centre = QPointF(0, 0)  # photo point at the middle of each pane
        self._fit = True
        self._drag: str | None = None
        self._last = QPointF()
        self.setMouseTracking(True)
        self.setMinimumSize(320, 240)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def set_images(self, before: QImage, after: QImage, difference: QImage) -> None:
        self.before, self.after, self.difference = before, after, difference
        self._centre = QPointF(before.width() / 2, before.height() / 2)
        self.fit()

    def set_side_by_side(self, on: bool) -> None:
        """Two panes (original, protected) instead of the split line."""
        if on != self.side_by_side:
            self.side_by_side = on
            if self._fit:  # the panes are half as wide: fit the photo again
                self._apply_fit()
            self.update()

    def set_show_original(self, on: bool) -> None:
        """Show the original where the cloaked photo (or difference) is shown."""
        self.show_original = on
        self.update()

    # ------------------------------------------------------------------------- panes

    def panes(self) -> list[QRectF]:
        """Where the photo is drawn: the whole view, or its left and right halves."""
        w, h = self.width(), self.height()
        if not self.side_by_side:
            return [QRectF(0, 0, w, h)]
        return [QRectF(0, 0, w / 2, h), QRectF(w / 2, 0, w - w / 2, h)]

    def pane_at(self, point: QPointF) -> int:
        """The pane (0 left or only, 1 right) holding a view point."""
        return 1 if self.side_by_side and point.x() >= self.width() / 2 else 0

    def to_photo(self, point: QPointF) -> QPointF:
        """A view point in photo pixels (in the pane it lies in)."""
        pane = self.panes()[self.pane_at(point)]
        return self._centre + (point - pane.center()) / self.scale

    def from_photo(self, point: QPointF, pane: int = 0) -> QPointF:
        """Where a photo point (photo pixels) lies in the view, in pane ``pane``."""
        return self.panes()[pane].center() + (point - self._centre) * self.scale

    def _photo_rect(self, pane: QRectF) -> QRectF:
        """Where the whole photo lies in the view, drawn in ``pane``."""
        top_left = pane.center() - self._centre * self.scale
        return QRectF(top_left.x(), top_left.y(), self.before.width() * self.scale,
                      self.before.height() * self.scale)

    # ----------------------------------------------------------------- zoom and split

    def fit(self) -> None:
        """Show the whole photo."""
        self._fit = True
        self._apply_fit()
        self.update()

    def _apply_fit(self) -> None:
        if self.before.isNull() or self.width() < 2:
            return
        pane = self.panes()[0]
        zoom = min(pane.width() / self.before.width(), pane.height() / self.before.height())
        zoom *= self.devicePixelRatioF()
        self._centre = QPointF(self.before.width() / 2, self.before.height() / 2)
        self._set_zoom(zoom)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom around ``anchor`` (a point of the view; the middle of a pane by default)."""
        self._fit = False
        pane = self.panes()[0 if anchor is None else self.pane_at(anchor)]
        anchor = anchor if anchor is not None else pane.center()
        fixed = self.to_photo(anchor)
        self._set_zoom(zoom)
        # keep the photo point under the anchor where it was (in every pane)
        self._centre = fixed - (anchor - pane.center()) / self.scale
        self.update()

    def _set_zoom(self, zoom: float) -> None:
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        if zoom != self.zoom:
            self.zoom = zoom
            self.zoom_changed.emit(zoom)

    def zoom_to(self, box: list[float], fill: float = 0.5) -> None:
        """Centre on a photo region (x0, y0, x1, y1) and zoom so it fills ``fill`` of a pane."""
        x0, y0, x1, y1 = box
        pane = self.panes()[0]
        zoom = fill * min(pane.width() / max(x1 - x0, 1), pane.height() / max(y1 - y0, 1))
        zoom *= self.devicePixelRatioF()
        self._fit = False
        self._set_zoom(zoom)
        self._centre = QPointF((x0 + x1) / 2, (y0 + y1) / 2)
        self.update()

    def pan(self, delta: QPointF) -> None:
        """Move the photo by ``delta`` view pixels (in every pane)."""
        self._fit = False
        self._centre -= delta / self.scale
        self.update()

    def set_split(self, split: float) -> None:
        split = min(max(split, 0.0), 1.0)
        if split != self.split:
            self.split = split
            self.split_changed.emit(split)
            self.update()

    @property
    def scale(self) -> float:
        """View (logical) pixels per photo pixel: zoom 1.0 is one photo pixel per device
        pixel, so "100 %" shows every pixel of the photo on high-DPI screens too."""
        return self.zoom / self.devicePixelRatioF()

    # ------------------------------------------------------------------------ drawing

    def resizeEvent(self, event) -> None:
        if self._fit:
            self._apply_fit()
        super().resizeEvent(event)

    def right_image(self) -> tuple[QImage, str]:
        """What is shown in the cloaked photo's place, and its label."""
        if self.show_original:
            return self.before, "Original (B)"
        if self.show_difference:
            return self.difference, f"Difference ×{DIFFERENCE_GAIN}"
        return self.after, "Cloaked"

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(40, 40, 40))  # dark, so mid-grey stands out
        if self.before.isNull():
            painter.end()
            return
        # smooth when shrinking; whole pixels when enlarging, so the cloak can be inspected
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1.5)
        right, right_label = self.right_image()
        if self.side_by_side:
            self._paint_panes(painter, right, right_label)
        else:
            self._paint_split(painter, right, right_label)
        painter.end()

    def _paint_split(self, painter: QPainter, right: QImage, right_label: str) -> None:
        view = self.panes()[0]
        target = self._photo_rect(view)
        x_split = self.split * self.width()
        for image, clip in ((self.before, QRectF(0, 0, x_split, self.height())),
                            (right, QRectF(x_split, 0, self.width() - x_split, self.height()))):
            painter.save()
            painter.setClipRect(clip)
            painter.drawImage(target, image)
            painter.restore()
        self._paint_boxes(painter, target)
        # the split line, its handle and what is on each side
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(QPointF(x_split, 0), QPointF(x_split, self.height()))
        painter.setBrush(QColor(255, 255, 255))
        painter.drawEllipse(QPointF(x_split, self.height() / 2), 7, 7)
        self._label(painter, "Original", QPointF(x_split - 8, 8), Qt.AlignmentFlag.AlignRight)
        self._label(painter, right_label, QPointF(x_split + 8, 8), Qt.AlignmentFlag.AlignLeft)

    def _paint_panes(self, painter: QPainter, right: QImage, right_label: str) -> None:
        for pane, image, label in zip(self.panes(), (self.before, right),
                                      ("Original", right_label), strict=True):
            painter.save()
            painter.setClipRect(pane)
            target = self._photo_rect(pane)
            painter.drawImage(target, image)
            self._paint_boxes(painter, target)
            self._label(painter, label, pane.topLeft() + QPointF(8, 8),
                        Qt.AlignmentFlag.AlignLeft)
            painter.restore()
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        x = self.width() / 2
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))

    def _paint_boxes(self, painter: QPainter, target: QRectF) -> None:
        if not self.show_boxes:
            return
        painter.setBrush(Qt.BrushStyle.NoBrush)
        k = self.scale
        for box, protected in self.boxes:
            painter.setPen(QPen(PROTECTED_COLOUR if protected else FACE_COLOUR, 2))
            x0, y0, x1, y1 = box
            painter.drawRect(QRectF(target.x() + x0 * k, target.y() + y0 * k,
                                    (x1 - x0) * k, (y1 - y0) * k))

    def _label(self, painter: QPainter, text: str, at: QPointF,
               align: Qt.AlignmentFlag) -> None:
        metrics = painter.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 12, metrics.height() + 6
        x = at.x() - w if align == Qt.AlignmentFlag.AlignRight else at.x()
        rect = QRectF(x, at.y(), w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    # -------------------------------------------------------------------- interaction

    def _near_line(self, point: QPointF) -> bool:
        return not self.side_by_side and abs(point.x() - self.split * self.width()) < 10

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        self.set_zoom(self.zoom * 1.25 ** steps, event.position())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._drag = "split" if self._near_line(event.position()) else "pan"
        self._last = event.position()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag == "split":
            self.set_split(pos.x() / max(self.width(), 1))
        elif self._drag == "pan":
            self.pan(pos - self._last)
            self._last = pos
        self.setCursor(Qt.CursorShape.SplitHCursor
                       if self._near_line(pos) or self._drag == "split"
                       else Qt.CursorShape.OpenHandCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag = None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._fit:
            self.set_zoom(1.0, event.position())
        else:
            self.fit()
