"""Preview: the original and the protected photo side by side, at full resolution.

A split line divides the view: the original on its left, the protected photo (or the
amplified difference) on its right. Zoom with the wheel or the buttons, drag to pan,
drag the line to compare. Below, per face: how much it changed (SSIM, PSNR, largest
pixel change) and how far each recognizer now places it from the person.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceguard.manifest import FaceRecord
from faceguard_gui.images import DIFFERENCE_GAIN, FACE_COLOUR, PROTECTED_COLOUR
from faceguard_gui.jobs import PreviewData
from faceguard_gui.widgets import note

MIN_ZOOM, MAX_ZOOM = 0.02, 16.0


class CompareView(QWidget):
    """Before/after view with a draggable split line, zoom and pan.

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
        self.boxes: list[tuple[list[float], bool]] = []  # (box, protected)
        self.show_boxes = True
        self.zoom = 1.0
        self.split = 0.5
        self._centre = QPointF(0, 0)  # photo point at the middle of the view
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

    # ----------------------------------------------------------------- zoom and split

    def fit(self) -> None:
        """Show the whole photo."""
        self._fit = True
        self._apply_fit()
        self.update()

    def _apply_fit(self) -> None:
        if self.before.isNull() or self.width() < 2:
            return
        zoom = min(self.width() / self.before.width(), self.height() / self.before.height())
        zoom *= self.devicePixelRatioF()
        self._centre = QPointF(self.before.width() / 2, self.before.height() / 2)
        self._set_zoom(zoom)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom around ``anchor`` (a point of the view; its middle by default)."""
        self._fit = False
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        fixed = self.to_photo(anchor)
        self._set_zoom(zoom)
        # keep the photo point under the anchor where it was
        self._centre = fixed - (anchor - QPointF(self.width() / 2, self.height() / 2)) / self.scale
        self.update()

    def _set_zoom(self, zoom: float) -> None:
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        if zoom != self.zoom:
            self.zoom = zoom
            self.zoom_changed.emit(zoom)

    def zoom_to(self, box: list[float], fill: float = 0.5) -> None:
        """Centre on a photo region (x0, y0, x1, y1) and zoom so it fills ``fill`` of the view."""
        x0, y0, x1, y1 = box
        zoom = fill * min(self.width() / max(x1 - x0, 1), self.height() / max(y1 - y0, 1))
        zoom *= self.devicePixelRatioF()
        self._fit = False
        self._set_zoom(zoom)
        self._centre = QPointF((x0 + x1) / 2, (y0 + y1) / 2)
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

    def to_photo(self, point: QPointF) -> QPointF:
        """A view point in photo pixels."""
        return self._centre + (point - QPointF(self.width() / 2, self.height() / 2)) / self.scale

    def _photo_rect(self) -> QRectF:
        """Where the whole photo lies in the view."""
        top_left = QPointF(self.width() / 2, self.height() / 2) - self._centre * self.scale
        return QRectF(top_left.x(), top_left.y(), self.before.width() * self.scale,
                      self.before.height() * self.scale)

    # ------------------------------------------------------------------------ drawing

    def resizeEvent(self, event) -> None:
        if self._fit:
            self._apply_fit()
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(40, 40, 40))  # dark, so mid-grey stands out
        if self.before.isNull():
            painter.end()
            return
        # smooth when shrinking; whole pixels when enlarging, so the cloak can be inspected
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1.5)
        target = self._photo_rect()
        x_split = self.split * self.width()
        right = self.difference if self.show_difference else self.after
        for image, clip in ((self.before, QRectF(0, 0, x_split, self.height())),
                            (right, QRectF(x_split, 0, self.width() - x_split, self.height()))):
            painter.save()
            painter.setClipRect(clip)
            painter.drawImage(target, image)
            painter.restore()
        if self.show_boxes:
            for box, protected in self.boxes:
                painter.setPen(QPen(PROTECTED_COLOUR if protected else FACE_COLOUR, 2))
                x0, y0, x1, y1 = box
                k = self.scale
                painter.drawRect(QRectF(target.x() + x0 * k, target.y() + y0 * k,
                                        (x1 - x0) * k, (y1 - y0) * k))
        # the split line, its handle and what is on each side
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(QPointF(x_split, 0), QPointF(x_split, self.height()))
        painter.setBrush(QColor(255, 255, 255))
        painter.drawEllipse(QPointF(x_split, self.height() / 2), 7, 7)
        right_label = f"Difference ×{DIFFERENCE_GAIN}" if self.show_difference else "Protected"
        self._label(painter, "Original", QPointF(x_split - 8, 8), Qt.AlignmentFlag.AlignRight)
        self._label(painter, right_label, QPointF(x_split + 8, 8), Qt.AlignmentFlag.AlignLeft)
        painter.end()

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

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        self.set_zoom(self.zoom * 1.25 ** steps, event.position())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        near_line = abs(event.position().x() - self.split * self.width()) < 10
        self._drag = "split" if near_line else "pan"
        self._last = event.position()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag == "split":
            self.set_split(pos.x() / max(self.width(), 1))
        elif self._drag == "pan":
            self._fit = False
            self._centre -= (pos - self._last) / self.scale
            self._last = pos
            self.update()
        near_line = abs(pos.x() - self.split * self.width()) < 10
        self.setCursor(Qt.CursorShape.SplitHCursor if near_line or self._drag == "split"
                       else Qt.CursorShape.OpenHandCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag = None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._fit:
            self.set_zoom(1.0, event.position())
        else:
            self.fit()


def face_rows(data: PreviewData) -> list[dict[str, str]]:
    """The figures table, one row per face (column title -> text)."""
    rows = []
    for k, face in enumerate(data.entry.get("faces", []), 1):
        row = {"Face": f"face {k}", "Protected": "yes" if face["protected"] else "no"}
        q = face.get("quality") or {}
        row["SSIM (1 = identical)"] = f"{q['ssim']:.3f}" if "ssim" in q else "–"
        row["PSNR"] = f"{q['psnr']:.1f} dB" if "psnr" in q else "–"
        row["Largest change"] = f"{q['linf']:.0f} / 255" if "linf" in q else "–"
        record = FaceRecord.from_dict(face)
        for model, before in record.distance_before.items():
            after = record.distance_after.get(model)
            threshold = record.thresholds.get(model)
            text = f"{before:.2f} → {after:.2f}" if after is not None else f"{before:.2f}"
            if threshold is not None and model in record.recognised:
                text += f"  (same person below {threshold:.2f}: "
                text += ("still recognised" if record.recognised[model] else "not recognised")
                text += ")"
            row[f"{model}: distance before → after"] = text
        rows.append(row)
    return rows


class PreviewWindow(QWidget):
    """A window with the before/after view and the per-face figures of one photo."""

    def __init__(self, data: PreviewData, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.data = data
        self.setWindowTitle(f"Preview: {data.original.name}")
        self.resize(1180, 780)

        self.view = CompareView()
        self.view.set_images(data.before, data.after, data.difference)
        self.view.boxes = [(f["box"], f["protected"]) for f in data.entry.get("faces", [])]

        fit = QPushButton("Fit")
        fit.clicked.connect(self.view.fit)
        actual = QPushButton("100 %")
        actual.setToolTip("One photo pixel per screen pixel (double-click the photo too)")
        actual.clicked.connect(lambda: self.view.set_zoom(1.0))
        self.face_button = QPushButton("Zoom to face")
        self.face_button.setToolTip("Show the first protected face up close")
        self.face_button.clicked.connect(self.zoom_to_face)
        faces = [f["box"] for f in data.entry.get("faces", []) if f["protected"]]
        self.face_button.setEnabled(bool(faces))
        zoom_in = QPushButton("+")
        zoom_in.clicked.connect(lambda: self.view.set_zoom(self.view.zoom * 1.5))
        zoom_out = QPushButton("−")
        zoom_out.clicked.connect(lambda: self.view.set_zoom(self.view.zoom / 1.5))
        for b in (zoom_in, zoom_out):
            b.setFixedWidth(b.sizeHint().height() + 8)
        self.zoom_label = QLabel()
        self.view.zoom_changed.connect(self._show_zoom)
        self.difference_box = QCheckBox(f"Amplified difference (×{DIFFERENCE_GAIN})")
        self.difference_box.setToolTip("Show what the cloak changed, made ten times stronger "
                                       "around mid-grey: the cloak itself is too faint to see")
        self.difference_box.toggled.connect(self._set_difference)
        self.boxes_box = QCheckBox("Face boxes")
        self.boxes_box.setChecked(True)
        self.boxes_box.toggled.connect(self._set_boxes)
        tools = QHBoxLayout()
        for w in (fit, actual, self.face_button, zoom_out, zoom_in, self.zoom_label):
            tools.addWidget(w)
        tools.addStretch(1)
        tools.addWidget(self.boxes_box)
        tools.addWidget(self.difference_box)

        self.split_slider = QSlider(Qt.Orientation.Horizontal)
        self.split_slider.setRange(0, 1000)
        self.split_slider.setValue(500)
        self.split_slider.setToolTip("Move the split line (or drag it on the photo)")
        self.split_slider.valueChanged.connect(lambda v: self.view.set_split(v / 1000))
        self.view.split_changed.connect(lambda s: self.split_slider.setValue(round(s * 1000)))
        split_row = QHBoxLayout()
        split_row.addWidget(QLabel("Original"))
        split_row.addWidget(self.split_slider, 1)
        split_row.addWidget(QLabel("Protected"))

        rows = face_rows(data)
        columns = list(dict.fromkeys(k for r in rows for k in r))
        self.figures = QTableWidget(len(rows), len(columns))
        self.figures.setHorizontalHeaderLabels(columns)
        self.figures.verticalHeader().hide()
        self.figures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, column in enumerate(columns):
                self.figures.setItem(r, c, QTableWidgetItem(row.get(column, "")))
        self.figures.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        height = self.figures.horizontalHeader().height() + 6
        height += sum(self.figures.rowHeight(r) for r in range(len(rows)))
        self.figures.setMaximumHeight(min(height + 4, 220))
        self.explanation = note(self._explain(data))

        layout = QVBoxLayout(self)
        layout.addLayout(tools)
        layout.addWidget(self.view, 1)
        layout.addLayout(split_row)
        layout.addWidget(self.figures)
        layout.addWidget(self.explanation)

    def _explain(self, data: PreviewData) -> str:
        faces = data.entry.get("faces", [])
        protected = [f for f in faces if f["protected"]]
        if not protected:
            return ("No face in this photo belongs to the people you chose, so it was copied "
                    "unchanged. Pick another photo, or tick other people.")
        return (f"{len(protected)} of {len(faces)} faces protected, written to "
                f"{data.output.name}. SSIM near 1 and PSNR above about 35 dB mean the change "
                "is hard to see. A distance above the recognizer's threshold means it no "
                "longer takes the face for the person.")

    def zoom_to_face(self) -> None:
        faces = [f["box"] for f in self.data.entry.get("faces", []) if f["protected"]]
        if faces:
            self.view.zoom_to(faces[0])

    def _show_zoom(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f} %")

    def _set_difference(self, on: bool) -> None:
        self.view.show_difference = on
        self.view.update()

    def _set_boxes(self, on: bool) -> None:
        self.view.show_boxes = on
        self.view.update()
