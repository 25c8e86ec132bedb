"""Preview: the original and the protected photo, compared at full resolution.

Two ways to compare: a split line (the original on its left, the protected photo or the
amplified difference on its right; drag it, or use the slider) or side by side (two
panes that zoom and pan together). B, or backslash, puts the original in the protected
photo's place and back, so the change blinks; Esc closes the window. Zoom with the wheel
or the buttons, drag to pan, double-click for 100 %. Below, per face: how visible the
cloak is (the core's words, SSIMULACRA2 and its JPEG equivalent), the colour change
(CIEDE2000), the largest pixel change against its cap, and how far each recognizer now
places the face from the person.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPen,
    QShortcut,
    QWheelEvent,
)
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
from faceguard.visibility import describe, summary
from faceguard_gui.images import DIFFERENCE_GAIN, FACE_COLOUR, PROTECTED_COLOUR
from faceguard_gui.jobs import PreviewData
from faceguard_gui.widgets import note

MIN_ZOOM, MAX_ZOOM = 0.02, 16.0


class CompareView(QWidget):
    """Before/after view: a draggable split line, or two panes side by side; zoom and pan.

    In split mode the original lies left of the line, the protected photo (or the
    amplified difference) right of it. Side by side, the original fills the left pane
    and the protected photo the right one; both panes show the same part of the photo
    at the same zoom, so zooming or panning either moves both. ``show_original`` puts the
    original in the protected photo's place (the B key), to see the change blink.

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
        """Show the original where the protected photo (or difference) is shown."""
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
        """What is shown in the protected photo's place, and its label."""
        if self.show_original:
            return self.before, "Original (B)"
        if self.show_difference:
            return self.difference, f"Difference ×{DIFFERENCE_GAIN}"
        return self.after, "Protected"

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


#: a saved file's suffix -> the format's name, for "after saving as JPEG"
FORMAT_NAMES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WebP",
                ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}

#: the figures' visibility columns (the distance columns follow, one per recognizer)
VISIBLE = "How visible"
SCORE = "SSIMULACRA2 (100 = identical)"
COLOUR = "Colour change"
LARGEST = "Largest change"


def _known(quality: dict, key: str) -> bool:
    return quality.get(key) is not None


def face_rows(data: PreviewData, cap: float | None = None,
              floor: float | None = None) -> list[dict[str, str]]:
    """The figures table, one row per face (column title -> text).

    ``cap`` is the largest change the user allowed (eps, grey levels) and ``floor`` the
    least SSIMULACRA2, when known; the figures say them beside what was measured. Faces
    measured before the core knew SSIMULACRA2 (older manifests) read "–".
    """
    saved_as = FORMAT_NAMES.get(data.output.suffix.lower(),
                                data.output.suffix.lstrip(".").upper() or "a file")
    rows = []
    for k, face in enumerate(data.entry.get("faces", []), 1):
        row = {"Face": f"face {k}", "Protected": "yes" if face["protected"] else "no"}
        q = face.get("quality") or {}
        if _known(q, "ssimulacra2"):
            s = q["ssimulacra2"]
            row[VISIBLE] = describe(s)
            text = f"{s:.1f}" + (f" (floor {floor:.0f})" if floor is not None else "")
            if _known(q, "jpeg_equivalent"):
                text += f", like JPEG quality {q['jpeg_equivalent']:.0f}"
            row[SCORE] = text
        else:
            row[VISIBLE] = row[SCORE] = "–"
        row[COLOUR] = (f"{q['ciede2000_p95']:.1f} ΔE (2.3 is just noticeable)"
                       if _known(q, "ciede2000_p95") else "–")
        if _known(q, "linf"):
            text = f"{q['linf']:.0f} / 255" + (f" (cap {cap:.0f})" if cap is not None else "")
            if _known(q, "saved_linf") and round(q["saved_linf"]) != round(q["linf"]):
                text += f"; after saving as {saved_as}: {q['saved_linf']:.0f} / 255"
            row[LARGEST] = text
        else:
            row[LARGEST] = "–"
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


def face_tips(data: PreviewData) -> list[dict[str, str]]:
    """Tooltips for the figures, one dict per face (column title -> text): the core's
    summary, the score after saving, and grey SSIM / PSNR, kept for continuity."""
    tips = []
    for face in data.entry.get("faces", []):
        q = face.get("quality") or {}
        tip: dict[str, str] = {}
        if q:
            tip[VISIBLE] = summary(q)
        if _known(q, "saved_ssimulacra2"):
            tip[SCORE] = f"After saving: {q['saved_ssimulacra2']:.1f}"
        grey = []
        if _known(q, "ssim"):
            grey.append(f"grey SSIM {q['ssim']:.3f}")
        if _known(q, "psnr"):
            grey.append(f"PSNR {q['psnr']:.1f} dB")
        if grey:
            old = ", ".join(grey) + " (kept for comparison with older runs; they do not see colour)"
            tip[SCORE] = f"{tip[SCORE]}\n{old}" if SCORE in tip else old
        if _known(q, "ciede2000_mean"):
            tip[COLOUR] = (f"CIEDE2000 colour difference over the face: 95 % of its pixels "
                           f"change less than {q.get('ciede2000_p95', 0):.1f}, "
                           f"{q['ciede2000_mean']:.2f} on average")
        if _known(q, "linf"):
            tip[LARGEST] = ("The largest change of any pixel of the face, in grey levels, "
                            "measured on the cloak before saving")
        tips.append(tip)
    return tips


class PreviewWindow(QWidget):
    """A window with the before/after view and the per-face figures of one photo.

    Keys: B (or backslash) shows the original in the protected photo's place and back;
    Esc closes the window.
    """

    def __init__(self, data: PreviewData, parent: QWidget | None = None,
                 cap: float | None = None, floor: float | None = None) -> None:
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
        self.original_button = QPushButton("Show original (B)")
        self.original_button.setCheckable(True)
        self.original_button.setToolTip(
            "Show the original in place of the protected photo, and back, to see what "
            "changed blink. Key: B (or \\). Esc closes the preview.")
        self.original_button.toggled.connect(self.view.set_show_original)
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
        tools.addWidget(self.original_button)

        self.split_slider = QSlider(Qt.Orientation.Horizontal)
        self.split_slider.setRange(0, 1000)
        self.split_slider.setValue(500)
        self.split_slider.setToolTip("Move the split line (or drag it on the photo)")
        self.split_slider.valueChanged.connect(lambda v: self.view.set_split(v / 1000))
        self.view.split_changed.connect(lambda s: self.split_slider.setValue(round(s * 1000)))
        self.side_box = QCheckBox("Side by side")
        self.side_box.setToolTip("The original on the left and the protected photo on the "
                                 "right, in two panes that zoom and pan together")
        self.side_box.toggled.connect(self._set_side_by_side)
        split_row = QHBoxLayout()
        split_row.addWidget(QLabel("Original"))
        split_row.addWidget(self.split_slider, 1)
        split_row.addWidget(QLabel("Protected"))
        split_row.addSpacing(12)
        split_row.addWidget(self.side_box)

        rows, tips = face_rows(data, cap, floor), face_tips(data)
        columns = list(dict.fromkeys(k for r in rows for k in r))
        self.figures = QTableWidget(len(rows), len(columns))
        self.figures.setHorizontalHeaderLabels(columns)
        self.figures.verticalHeader().hide()
        self.figures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, (row, tip) in enumerate(zip(rows, tips, strict=True)):
            for c, column in enumerate(columns):
                item = QTableWidgetItem(row.get(column, ""))
                if column in tip:
                    item.setToolTip(tip[column])
                self.figures.setItem(r, c, item)
        self.figures.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        height = self.figures.horizontalHeader().height() + 6
        height += sum(self.figures.rowHeight(r) for r in range(len(rows)))
        height += self.figures.horizontalScrollBar().sizeHint().height()  # wide tables
        self.figures.setMaximumHeight(min(height + 4, 240))
        self.explanation = note(self._explain(data))

        # B toggles before/after (backslash too, as in Lightroom); Esc closes
        self.shortcuts = []
        for key, action in ((Qt.Key.Key_B, self.original_button.toggle),
                            (Qt.Key.Key_Backslash, self.original_button.toggle),
                            (Qt.Key.Key_Escape, self.close)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.activated.connect(action)
            self.shortcuts.append(shortcut)

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
                f"{data.output.name}. SSIMULACRA2 scores how visible the change is to people, "
                "colour included: 100 is identical, 90 or more cannot be told apart even up "
                "close, and about 75 is as visible as saving the face as a JPEG at quality "
                "90. Colour change is the CIEDE2000 difference most of the face stays under "
                "(2.3 is just noticeable side by side). A distance above the recognizer's "
                "threshold means it no longer takes the face for the person. Press B to "
                "swap the protected photo for the original and back; Esc closes.")

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

    def _set_side_by_side(self, on: bool) -> None:
        self.view.set_side_by_side(on)
        self.split_slider.setEnabled(not on)
