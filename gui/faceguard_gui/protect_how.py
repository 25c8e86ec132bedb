"""The Protect step's "how" panel: method, strength, recognizers, output (saved choices)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
)

from faceguard.measured import (
    COLOUR_SHARE_MEASURED,
    LARGE_FACES_MEASURED,
    MEASURED_LOOKS,
    MORE_FAMILIES_MEASURED,
    PERSON_MASK_MEASURED,
    measured_protection,
)
from faceguard.models.catalogue import is_installed, model_info, model_names
from faceguard.settings import METHODS, PERSON_MASK_METHODS, PRESETS, preset_values
from faceguard.visibility import SCALE, describe
from faceguard_gui.settings import FORMATS, SIDES
from faceguard_gui.widgets import FolderField, note

PRESET_LABELS = {
    "low": "Light: quick, the faintest change",
    "balanced": "Balanced: recommended",
    "high": "Strong: slower, may show a faint grain",
}
WRITTEN_AS = {"keep": "in their own format", "png": "as PNG", "jpeg": "as JPEG",
              "webp": "as WebP"}


def strength_words(eps: float, floor: float | None = None) -> str:
    """How visible a budget of ``eps`` grey levels is, in plain words.

    With a visibility floor (the least face SSIMULACRA2, which every method keeps) the
    look is set by the floor, in the core's words.
    """
    if floor is not None:
        return describe(floor)
    if eps <= 4:
        return "invisible to the eye"
    if eps <= 8:
        return "hard to see"
    if eps <= 12:
        return "a faint grain up close"
    if eps <= 16:
        return "visible grain up close"
    return "clearly visible"


class HowPanel:
    """How to protect: the method and its strength, recognizers and output.

    A part of :class:`faceguard_gui.protect_view.ProtectView` (it relies on the view's
    ``ctx`` and on the other panels' methods).
    """

    def _how_box(self) -> QGroupBox:
        box = QGroupBox("How")
        outer = QVBoxLayout(box)  # the note below the form: a form cuts wrapped text
        form = QFormLayout()
        outer.addLayout(form)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.preset = QComboBox()
        for key in PRESETS:
            self.preset.addItem(PRESET_LABELS.get(key, key), key)
            self.preset.setItemData(
                self.preset.count() - 1,
                f"{MEASURED_LOOKS[key].capitalize()}; {measured_protection(key)}",
                Qt.ItemDataRole.ToolTipRole)
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        form.addRow("Preset", self.preset)

        self.eps = QSlider(Qt.Orientation.Horizontal)
        self.eps.setRange(1, 32)
        self.eps.setToolTip("The largest change of any pixel, in grey levels out of 255")
        self.eps_label = QLabel()
        self.eps_label.setMinimumWidth(180)
        self.eps.valueChanged.connect(self._look_changed)
        row = QHBoxLayout()
        row.addWidget(self.eps, 1)
        row.addWidget(self.eps_label)
        form.addRow("Strength", row)

        self.steps = QSpinBox()
        self.steps.setRange(1, 500)
        self.steps.setSuffix(" steps")
        self.steps.setToolTip("More steps: a stronger cloak, more time per face")
        self.steps.valueChanged.connect(self._save_settings)
        self.robust = QCheckBox("Survive compression, blur and resizing (slower)")
        self.robust.toggled.connect(self._save_settings)
        row = QHBoxLayout()
        row.addWidget(self.steps)
        row.addWidget(self.robust, 1)
        form.addRow("Effort", row)

        self.floor = QSpinBox()
        self.floor.setRange(50, 95)
        self.floor.setToolTip(
            "How invisible each protected face must stay: the least score it keeps, "
            f"whatever the method. {SCALE} Higher hides the cloak better but weakens it.")
        self.floor.valueChanged.connect(self._look_changed)  # the words follow the floor
        self.delta_e = QDoubleSpinBox()
        self.delta_e.setRange(0.5, 10.0)
        self.delta_e.setSingleStep(0.5)
        self.delta_e.setDecimals(1)
        self.delta_e.setPrefix("colour change ≤ ")
        self.delta_e.setToolTip(
            "How much each protected face's colour may change: CIEDE2000 at the 95th "
            "percentile of its pixels. About 2.3 is just noticeable side by side; 3 at "
            "Balanced. Lower keeps eyes, lips and skin truer but weakens the cloak.")
        self.delta_e.valueChanged.connect(self._save_settings)
        self.colour_share = QSpinBox()
        self.colour_share.setRange(0, 100)
        self.colour_share.setSingleStep(5)
        self.colour_share.setSuffix("% may be colour")
        self.colour_share.setSpecialValueText("brightness only")
        self.colour_share.setToolTip(
            "How much of the change may be colour rather than brightness: "
            + COLOUR_SHARE_MEASURED.replace("0.25", "25%") + ".")
        self.colour_share.valueChanged.connect(self._save_settings)
        row = QHBoxLayout()  # one row: the page fits 1024x680 without scrolling
        row.addWidget(self.floor)
        row.addWidget(self.delta_e, 1)
        row.addWidget(self.colour_share, 1)
        form.addRow("Invisibility", row)

        self.method = QComboBox()
        for key, named in METHODS.items():
            self.method.addItem(named.label, key)
            self.method.setItemData(self.method.count() - 1, f"{key}: {named.description}",
                                    Qt.ItemDataRole.ToolTipRole)
        self.method.currentIndexChanged.connect(self._preset_chosen)

        self.person_mask = QSpinBox()
        self.person_mask.setRange(0, 100)
        self.person_mask.setPrefix("person's mask + ")
        self.person_mask.setSuffix(" steps")
        self.person_mask.setSpecialValueText("each photo from scratch")
        self.person_mask.setToolTip(
            "For albums (Perceptual method): fit one mask per protected person on all "
            "their faces, then start each photo from it and refine it for a few steps; "
            + PERSON_MASK_MEASURED + ".")
        self.person_mask.valueChanged.connect(self._save_settings)
        row = QHBoxLayout()
        row.addWidget(self.method, 1)
        row.addWidget(self.person_mask, 1)
        form.addRow("Method", row)

        self.model_boxes: dict[str, QCheckBox] = {}
        row = QHBoxLayout()
        row.setSpacing(4)  # one row for six recognizers: the page fits 1024x680 unscrolled
        for name in model_names():
            check = QCheckBox(name)
            check.setToolTip(f"{model_info(name).get('description', '')}\n\nMore recognizers "
                             f"ticked: {MORE_FAMILIES_MEASURED}.")
            check.toggled.connect(self._save_settings)
            self.model_boxes[name] = check
            row.addWidget(check)
        self.models_button = QPushButton("Models…")
        self.models_button.clicked.connect(self.models_requested)
        row.addStretch(1)
        row.addWidget(self.models_button)
        form.addRow("Against", row)

        self.output = FolderField()
        self.output.setPlaceholderText("a new folder next to the album")
        self.output.editingFinished.connect(self._save_settings)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self.choose_output)
        row = QHBoxLayout()
        row.addWidget(self.output, 1)
        row.addWidget(browse)
        form.addRow("Save to", row)

        self.format = QComboBox()
        for key, label in FORMATS.items():
            self.format.addItem(label, key)
        self.format.currentIndexChanged.connect(self._save_settings)
        self.quality = QSpinBox()
        self.quality.setRange(50, 100)
        self.quality.setPrefix("quality ")
        self.quality.setToolTip("JPEG / WebP quality: below 90 the compression starts to "
                                "wear the cloak down")
        self.quality.valueChanged.connect(self._save_settings)
        self.max_side = QComboBox()
        for side, label in SIDES.items():
            self.max_side.addItem(label, side)
        self.max_side.setToolTip("Shrink larger photos to this longest side before they are "
                                 "protected, as platforms serve them. A large face is fooled "
                                 "less often at the same visibility: "
                                 f"{LARGE_FACES_MEASURED}.")
        self.max_side.currentIndexChanged.connect(self._save_settings)
        self.keep_metadata = QCheckBox("Keep camera details")
        self.keep_metadata.setToolTip("Keep camera make, model and exposure. Place, date, "
                                      "names and the embedded thumbnail are always removed.")
        self.keep_metadata.toggled.connect(self._save_settings)
        row = QHBoxLayout()
        row.addWidget(self.format, 1)
        row.addWidget(self.quality)
        row.addWidget(self.max_side)
        row.addWidget(self.keep_metadata)
        form.addRow("Format", row)
        self.how_note = note()
        outer.addWidget(self.how_note)
        outer.addStretch(1)
        return box

    def _load_settings(self) -> None:
        s = self.ctx.settings
        self._loading = True
        self.preset.setCurrentIndex(max(self.preset.findData(s.preset), 0))
        self.eps.setValue(round(s.eps))
        self.steps.setValue(s.steps)
        self.robust.setChecked(s.robust)
        self.floor.setValue(round(s.floor))
        self.delta_e.setValue(s.delta_e)
        self.colour_share.setValue(round(s.colour_share * 100))
        self.person_mask.setValue(s.person_mask_steps)
        self.method.setCurrentIndex(max(self.method.findData(s.method), 0))
        self.person_mask.setEnabled(s.method in PERSON_MASK_METHODS)
        self._eps_label()  # its words come from the floor: once both are set
        self.output.setText(s.output_folder)
        self.format.setCurrentIndex(max(self.format.findData(s.format), 0))
        self.quality.setValue(s.quality)
        self.max_side.setCurrentIndex(max(self.max_side.findData(s.max_side), 0))
        self.keep_metadata.setChecked(s.keep_metadata)
        self.everyone.setChecked(s.protect_everyone)
        self._loading = False
        self.refresh_models()
        self._explain_choice()

    def refresh_models(self) -> None:
        """Tick the chosen recognizers; grey out those not installed."""
        self._loading = True
        for name, check in self.model_boxes.items():
            installed = is_installed(name)
            check.setEnabled(installed)
            check.setChecked(installed and name in self.ctx.settings.models)
            check.setText(name if installed else f"{name} (not installed)")
        self._loading = False
        self._update_actions()

    def ticked_models(self) -> list[str]:
        """The recognizers ticked to make the cloak on."""
        return [n for n, c in self.model_boxes.items() if c.isChecked()]

    def _save_settings(self) -> None:
        if self._loading:
            return
        s = self.ctx.settings
        s.preset = self.preset.currentData()
        s.eps = float(self.eps.value())
        s.steps = self.steps.value()
        s.robust = self.robust.isChecked()
        s.floor = float(self.floor.value())
        s.delta_e = float(self.delta_e.value())
        s.colour_share = self.colour_share.value() / 100
        s.method = self.method.currentData()
        s.person_mask_steps = self.person_mask.value()
        self.person_mask.setEnabled(s.method in PERSON_MASK_METHODS)
        self._eps_label()
        models = self.ticked_models()
        if models:  # none ticked: Protect waits, and the last choice is kept
            s.models = models
        s.output_folder = self.output.text().strip()
        s.format = self.format.currentData()
        s.quality = self.quality.value()
        s.max_side = self.max_side.currentData()
        s.keep_metadata = self.keep_metadata.isChecked()
        s.protect_everyone = self.everyone.isChecked()
        s.save()
        self.quality.setEnabled(s.format in ("jpeg", "webp", "keep"))
        self._explain_choice()
        self._update_actions()

    def _explain_choice(self) -> None:
        """The chosen method and its cost, in plain words, under the form."""
        s = self.ctx.settings
        named = METHODS.get(s.method)
        text = f"{named.label}: {named.description}. " if named else ""
        kept = (f", keeping each face's SSIMULACRA2 at {s.floor:.0f} or more "
                f"({describe(s.floor)}) and its colour change at {s.delta_e:.1f} or less")
        if self.saved_mask is not None:  # method, strength and recognizers: the mask's
            text = (f"The saved mask {self.saved_mask.name} is added to its person's faces "
                    f"as it was made (at most {self.saved_mask_eps:.0f} of 255 grey levels, "
                    f"against {', '.join(self.saved_mask_models)}), with no learning{kept}.")
        elif not self.ticked_models():  # not the last recognizers ticked, kept in settings
            self.how_note.setText(text + "Tick at least one recognizer to make the cloak "
                                  "on (Models… installs more).")
            return
        else:
            masked = s.person_mask_steps and s.method in PERSON_MASK_METHODS
            refined = (f"started from its person's mask and refined in {s.person_mask_steps} "
                       "steps" if masked else f"refined in {s.steps} steps")
            text += (f"Every pixel of a protected face changes by at most {s.eps:.0f} of 255 "
                     f"grey levels, {refined} against {', '.join(s.models)}{kept}")
            text += (f"; {s.colour_share:.0%} of the change may be colour" if s.colour_share
                     else "; brightness only, so eyes, lips and skin keep their colour")
            text += (", with random compression, blur and resizing so the cloak survives "
                     "them." if s.robust else ".")
        text += " Photos are written " + WRITTEN_AS.get(s.format, s.format)
        if s.max_side:
            text += f", larger ones shrunk to {s.max_side} px on their longest side"
        if s.format in ("keep", "jpeg", "webp"):
            text += (f" (JPEG and WebP at quality {s.quality} add a little compression "
                     "noise; a JPEG saved finer keeps its own)")
        text += ("; camera make and exposure are kept, place, date and names removed."
                 if s.keep_metadata else "; all metadata (place, date, camera) is removed.")
        self.how_note.setText(text)

    def _preset_chosen(self) -> None:
        if self._loading:
            return
        p = preset_values(self.method.currentData(), self.preset.currentData())
        self._loading = True
        self.eps.setValue(round(p["eps"]))
        self.steps.setValue(p["steps"])
        self.robust.setChecked(p["robust"])
        if "floor" in p:
            self.floor.setValue(round(p["floor"]))
        if "delta_e" in p:
            self.delta_e.setValue(p["delta_e"])
        self._loading = False
        self._save_settings()

    def _look_changed(self, value: int) -> None:
        self._eps_label()
        self._save_settings()

    def _eps_label(self) -> None:
        words = strength_words(self.eps.value(), self.floor.value())
        self.eps_label.setText(f"{self.eps.value()} / 255: {words}")

    def choose_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save protected photos to",
                                                  self.output.text())
        if folder:
            self.output.setText(folder)
            self._save_settings()

    def output_folder(self) -> Path | None:
        """The chosen output folder, or a new one next to the album's first input."""
        if text := self.output.text().strip():
            return Path(text).expanduser()
        if not self.ctx.album.inputs:
            return None
        first = self.ctx.album.inputs[0]
        base = first if first.is_dir() else first.parent
        return base.parent / f"{base.name}-protected"
