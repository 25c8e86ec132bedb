"""Preview: the original and the cloaked photo, compared at full resolution.

Two ways to compare: a split line (the original on its left, the cloaked photo or the
amplified difference on its right; drag it, or use the slider) or side by side (two
panes that zoom and pan together). B, or backslash, puts the original in the cloaked
photo's place and back, so the change blinks; Esc closes the window. Zoom with the wheel
or the buttons, drag to pan, double-click for 100 %. Below, per face: how visible the
cloak is (the core's words, SSIMULACRA2 and its JPEG equivalent), the colour change
(CIEDE2000), the largest pixel change against its cap, and how far each recognizer now
places the face from the person.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
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
from faceguard.verdict import verdict
from faceguard.visibility import SCALE, face_words, summary
from faceguard.words import plural
from faceguard_gui.compare_view import CompareView
from faceguard_gui.images import DIFFERENCE_GAIN
from faceguard_gui.jobs import PreviewData
from faceguard_gui.widgets import note

#: a saved file's suffix -> the format's name, for "after saving as JPEG"
FORMAT_NAMES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WebP",
                ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}

#: the figures' first columns (the distance columns follow, one per recognizer)
CLOAKED = "Cloaked"
FOOLED = "Recognizers fooled"
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
        record = FaceRecord.from_dict(face)
        # cloaked is not protected: that is for the recognizers to say, face by face
        row = {"Face": f"face {k}", CLOAKED: "yes" if face["protected"] else "no",
               FOOLED: verdict([record]).short()}
        q = face.get("quality") or {}
        if _known(q, "ssimulacra2"):
            s = q["ssimulacra2"]
            row[VISIBLE] = face_words(q)  # the file's words, as the CLI's
            text = f"{s:.1f}" + (f" (floor {floor:.0f})" if floor is not None else "")
            if _known(q, "jpeg_equivalent"):
                text += f", like JPEG quality {q['jpeg_equivalent']:.0f}"
            if _known(q, "saved_ssimulacra2") and q["saved_ssimulacra2"] < s - 0.5:
                text += f"; {q['saved_ssimulacra2']:.1f} in the file"  # as the CLI says it
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
        for model in record.distance_before:
            row[f"{model}: distance before → after"] = record.distance_words(model, "→")
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

    Keys: B (or backslash) shows the original in the cloaked photo's place and back;
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
        self.face_button.setToolTip("Show the first cloaked face up close")
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
            "Show the original in place of the cloaked photo, and back, to see what "
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
        self.side_box.setToolTip("The original on the left and the cloaked photo on the "
                                 "right, in two panes that zoom and pan together")
        self.side_box.toggled.connect(self._set_side_by_side)
        split_row = QHBoxLayout()
        split_row.addWidget(QLabel("Original"))
        split_row.addWidget(self.split_slider, 1)
        split_row.addWidget(QLabel("Cloaked"))
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
        found = verdict([FaceRecord.from_dict(f) for f in faces])
        return (f"{len(protected)} of {plural(len(faces), 'face')} cloaked, written to "
                f"{data.output.name}. {found.words()} {SCALE} Colour change is the "
                "CIEDE2000 difference most of the face stays under (2.3 is just noticeable "
                "side by side). A distance above the recognizer's threshold means it no "
                "longer takes the face for the person. Press B to swap the cloaked photo "
                "for the original and back; Esc closes.")

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
