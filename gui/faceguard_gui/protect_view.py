"""Step 2, Protect: who to protect, how strongly, where to write; preview; run."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceguard.manifest import MANIFEST_NAME
from faceguard.models.catalogue import is_installed, model_info, model_names
from faceguard.pipeline import CloakJob
from faceguard.settings import METHODS, PRESETS, preset_values
from faceguard_gui.context import AppContext
from faceguard_gui.jobs import load_preview, preview_photo, protect_album
from faceguard_gui.preview import PreviewWindow
from faceguard_gui.settings import FORMATS
from faceguard_gui.widgets import StepHeader, note

CHIP = 96
PRESET_LABELS = {
    "low": "Light: quick, the faintest change",
    "balanced": "Balanced: recommended",
    "high": "Strong: slower, may show a faint grain",
}
METHOD_LABELS = {  # the methods that need no other people come first
    "perceptual": "Keeps the look (recommended)",
    "pgd": "Standard (PGD)",
    "mifgsm": "Transfers to other recognizers (MI-FGSM)",
    "bim": "Without random start (BIM)",
    "fgsm": "Fastest, weakest (FGSM)",
    "pfgsm": "Towards a decoy person (P-FGSM)",
    "universal": "One mask per person (universal)",
    "universal-sgd": "One mask per person, fast (universal SGD)",
}
WRITTEN_AS = {"keep": "in their own format", "png": "as PNG", "jpeg": "as JPEG",
              "webp": "as WebP"}


def strength_words(eps: float, ssim: float | None = None) -> str:
    """How visible a budget of ``eps`` grey levels is, in plain words.

    With an SSIM floor (the perceptual method) the look is set by the floor, not eps.
    """
    if ssim is not None:
        return ("invisible to the eye" if ssim >= 0.98 else "hard to see" if ssim >= 0.95
                else "a faint grain up close")
    if eps <= 4:
        return "invisible to the eye"
    if eps <= 8:
        return "hard to see"
    if eps <= 12:
        return "a faint grain up close"
    if eps <= 16:
        return "visible grain up close"
    return "clearly visible"


class ProtectView(QWidget):
    """The Protect step.

    Signals:
        next_requested(Path): go on to Audit with this output folder.
        models_requested(): the user wants to manage models.
        album_protected(Path): a run wrote protected photos into this folder.
    """

    next_requested = Signal(object)
    models_requested = Signal()
    album_protected = Signal(object)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.reference_photos: list[Path] = []
        self.preview_window: PreviewWindow | None = None
        self.last_output: Path | None = None
        self._results: dict[str, dict] = {}
        self._preview_count = 0
        self._loading = True

        header = StepHeader("2  Protect", "Tick the people to protect (or give reference "
                            "photos of someone), choose how strongly, try it on one photo, "
                            "then protect the whole album. The originals are never changed.")
        layout = QVBoxLayout(self)
        layout.addWidget(header)
        top = QHBoxLayout()
        top.addWidget(self._who_box(), 5)
        top.addWidget(self._how_box(), 6)
        layout.addLayout(top, 3)
        layout.addLayout(self._action_row())
        layout.addWidget(self._results_box(), 2)

        ctx.album.people_changed.connect(self._fill_people)
        ctx.album.photos_changed.connect(self._update_actions)
        ctx.jobs.started.connect(lambda _: self._update_actions())
        ctx.jobs.finished.connect(lambda *_: self._update_actions())
        self._load_settings()
        self._fill_people()
        self.set_reference_photos([])

    # ------------------------------------------------------------------- the layout

    def _who_box(self) -> QGroupBox:
        box = QGroupBox("Who to protect")
        self.people_list = QListWidget()
        self.people_list.setViewMode(QListView.ViewMode.IconMode)
        self.people_list.setIconSize(QSize(CHIP, CHIP))
        self.people_list.setGridSize(QSize(CHIP + 40, CHIP + 52))
        self.people_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.people_list.setMovement(QListView.Movement.Static)
        self.people_list.setWordWrap(True)
        self.people_list.itemChanged.connect(self._people_ticked)
        self.people_note = note()
        self.everyone = QCheckBox("Everyone in the photos")
        self.everyone.setToolTip("Cloak every face found, whoever it is")
        self.everyone.toggled.connect(self._save_settings)
        self.everyone.toggled.connect(self._update_actions)
        self.reference_button = QPushButton("Add reference photos…")
        self.reference_button.setToolTip("Photos of one person to protect, e.g. yourself: "
                                         "their face is protected wherever it appears")
        self.reference_button.clicked.connect(self.choose_reference_photos)
        self.reference_label = note()
        self.clear_reference = QPushButton("Remove")
        self.clear_reference.clicked.connect(lambda: self.set_reference_photos([]))
        row = QHBoxLayout()
        row.addWidget(self.reference_button)
        row.addWidget(self.reference_label, 1)
        row.addWidget(self.clear_reference)
        inner = QVBoxLayout(box)
        inner.addWidget(self.people_list, 1)
        inner.addWidget(self.people_note)
        inner.addWidget(self.everyone)
        inner.addLayout(row)
        return box

    def _how_box(self) -> QGroupBox:
        box = QGroupBox("How")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.preset = QComboBox()
        for key in PRESETS:
            self.preset.addItem(PRESET_LABELS.get(key, key), key)
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        form.addRow("Preset", self.preset)

        self.eps = QSlider(Qt.Orientation.Horizontal)
        self.eps.setRange(1, 32)
        self.eps.setToolTip("The largest change of any pixel, in grey levels out of 255")
        self.eps_label = QLabel()
        self.eps_label.setMinimumWidth(180)
        self.eps.valueChanged.connect(self._eps_changed)
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

        self.ssim = QDoubleSpinBox()
        self.ssim.setRange(0.80, 1.0)
        self.ssim.setSingleStep(0.01)
        self.ssim.setDecimals(2)
        self.ssim.setToolTip("How alike the protected face must stay (SSIM; 1 = identical). "
                             "Used by the 'keeps the look' method.")
        self.ssim.valueChanged.connect(self._save_settings)
        form.addRow("Looks (SSIM)", self.ssim)

        self.method = QComboBox()
        for key in METHOD_LABELS:
            if key in METHODS:
                self.method.addItem(METHOD_LABELS[key], key)
                self.method.setItemData(self.method.count() - 1, METHODS[key],
                                        Qt.ItemDataRole.ToolTipRole)
        self.method.currentIndexChanged.connect(self._preset_chosen)
        form.addRow("Method", self.method)

        self.model_boxes: dict[str, QCheckBox] = {}
        row = QHBoxLayout()
        for name in model_names():
            check = QCheckBox(name)
            check.setToolTip(model_info(name).get("description", ""))
            check.toggled.connect(self._save_settings)
            self.model_boxes[name] = check
            row.addWidget(check)
        self.models_button = QPushButton("Models…")
        self.models_button.clicked.connect(self.models_requested)
        row.addStretch(1)
        row.addWidget(self.models_button)
        form.addRow("Against", row)

        self.output = QLineEdit()
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
        self.keep_metadata = QCheckBox("Keep camera details")
        self.keep_metadata.setToolTip("Keep camera make, model and exposure. Place, date, "
                                      "names and the embedded thumbnail are always removed.")
        self.keep_metadata.toggled.connect(self._save_settings)
        row = QHBoxLayout()
        row.addWidget(self.format, 1)
        row.addWidget(self.quality)
        row.addWidget(self.keep_metadata)
        form.addRow("Format", row)
        self.how_note = note()
        form.addRow(self.how_note)
        return box

    def _action_row(self) -> QHBoxLayout:
        self.preview_photo = QComboBox()
        self.preview_photo.setMinimumWidth(220)
        self.preview_photo.setToolTip("The photo to try the cloak on")
        self.preview_button = QPushButton("Preview on one photo")
        self.preview_button.setToolTip("Protect just this photo and compare it with the "
                                       "original, in seconds")
        self.preview_button.clicked.connect(self.preview)
        self.protect_button = QPushButton("Protect the album")
        self.protect_button.setDefault(True)
        self.protect_button.clicked.connect(self.protect)
        self.action_note = note()
        row = QHBoxLayout()
        row.addWidget(QLabel("Try on"))
        row.addWidget(self.preview_photo)
        row.addWidget(self.preview_button)
        row.addWidget(self.action_note, 1)
        row.addWidget(self.protect_button)
        return row

    def _results_box(self) -> QGroupBox:
        box = QGroupBox("Protected photos")
        self.results = QTableWidget(0, 5)
        self.results.setHorizontalHeaderLabels(
            ["Photo", "Result", "Faces protected", "Looks (SSIM)", "Recognizers fooled"])
        self.results.verticalHeader().hide()
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.results.horizontalHeader().setStretchLastSection(True)
        self.results.cellDoubleClicked.connect(self._open_result)
        self.results_note = note("Double-click a photo to compare it with the original.")
        self.open_folder = QPushButton("Open folder")
        self.open_folder.clicked.connect(self._open_output_folder)
        self.next_button = QPushButton("Next: audit the protection  →")
        self.next_button.clicked.connect(lambda: self.next_requested.emit(self.last_output))
        row = QHBoxLayout()
        row.addWidget(self.results_note, 1)
        row.addWidget(self.open_folder)
        row.addWidget(self.next_button)
        inner = QVBoxLayout(box)
        inner.addWidget(self.results, 1)
        inner.addLayout(row)
        self.open_folder.setEnabled(False)
        self.next_button.setEnabled(False)
        return box

    # ---------------------------------------------------------------------- settings

    def _load_settings(self) -> None:
        s = self.ctx.settings
        self._loading = True
        self.preset.setCurrentIndex(max(self.preset.findData(s.preset), 0))
        self.eps.setValue(round(s.eps))
        self._eps_changed(self.eps.value())
        self.steps.setValue(s.steps)
        self.robust.setChecked(s.robust)
        self.ssim.setValue(s.ssim)
        self.method.setCurrentIndex(max(self.method.findData(s.method), 0))
        self.ssim.setEnabled(s.method == "perceptual")
        self.output.setText(s.output_folder)
        self.format.setCurrentIndex(max(self.format.findData(s.format), 0))
        self.quality.setValue(s.quality)
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

    def _save_settings(self) -> None:
        if self._loading:
            return
        s = self.ctx.settings
        s.preset = self.preset.currentData()
        s.eps = float(self.eps.value())
        s.steps = self.steps.value()
        s.robust = self.robust.isChecked()
        s.ssim = self.ssim.value()
        s.method = self.method.currentData()
        self.ssim.setEnabled(s.method == "perceptual")
        self._eps_label()
        models = [n for n, c in self.model_boxes.items() if c.isChecked()]
        if models:
            s.models = models
        s.output_folder = self.output.text().strip()
        s.format = self.format.currentData()
        s.quality = self.quality.value()
        s.keep_metadata = self.keep_metadata.isChecked()
        s.protect_everyone = self.everyone.isChecked()
        s.save()
        self.quality.setEnabled(s.format in ("jpeg", "webp", "keep"))
        self._explain_choice()
        self._update_actions()

    def _explain_choice(self) -> None:
        """The chosen method and its cost, in plain words, under the form."""
        s = self.ctx.settings
        text = f"{METHOD_LABELS.get(s.method, s.method)}: {METHODS.get(s.method, '')}. "
        text += (f"Every pixel of a protected face changes by at most {s.eps:.0f} of 255 "
                 f"grey levels, refined in {s.steps} steps against {', '.join(s.models)}")
        if s.method == "perceptual":
            text += f", keeping the face's SSIM at {s.ssim:.2f} or more"
        text += (", with random compression, blur and resizing so the cloak survives them."
                 if s.robust else ".")
        text += " Photos are written " + WRITTEN_AS.get(s.format, s.format)
        if s.format in ("keep", "jpeg", "webp"):
            text += f" (JPEG and WebP at quality {s.quality} add a little compression noise)"
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
        if "ssim" in p:
            self.ssim.setValue(p["ssim"])
        self._loading = False
        self._save_settings()

    def _eps_changed(self, value: int) -> None:
        self._eps_label()
        self._save_settings()

    def _eps_label(self) -> None:
        perceptual = self.method.currentData() == "perceptual"
        words = strength_words(self.eps.value(), self.ssim.value() if perceptual else None)
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

    # ------------------------------------------------------------------------- people

    def _fill_people(self) -> None:
        self.people_list.blockSignals(True)
        self.people_list.clear()
        ratio = self.devicePixelRatioF()
        for k, found in enumerate(self.ctx.album.people):
            n, photos = len(found.person.faces), found.photos
            item = QListWidgetItem(f"{found.person.name}\n{n} face{'s' * (n > 1)} · "
                                   f"{photos} photo{'s' * (photos > 1)}")
            if found.chip is not None:
                pixmap = QPixmap.fromImage(found.chip.scaled(
                    int(CHIP * ratio), int(CHIP * ratio), Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation))
                pixmap.setDevicePixelRatio(ratio)
                item.setIcon(QIcon(pixmap))
            item.setData(Qt.ItemDataRole.UserRole, k)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
                          | Qt.ItemFlag.ItemIsSelectable)
            chosen = found.person in self.ctx.album.chosen
            item.setCheckState(Qt.CheckState.Checked if chosen else Qt.CheckState.Unchecked)
            item.setToolTip("Tick to protect this person in every photo")
            self.people_list.addItem(item)
        self.people_list.blockSignals(False)
        album = self.ctx.album
        if album.people:
            self.people_note.setText("Tick the people to protect.")
        elif album.photos and album.unscanned():
            self.people_note.setText("Looking for faces…")
        elif album.photos:
            self.people_note.setText("No faces found in the album.")
        else:
            self.people_note.setText("Add photos in step 1 first.")
        self._people_ticked()

    def try_on(self, photo: Path) -> None:
        """Make ``photo`` the one to preview, when it is in the list."""
        if (i := self.preview_photo.findData(str(photo))) >= 0:
            self.preview_photo.setCurrentIndex(i)

    def set_person_ticked(self, index: int, ticked: bool = True) -> None:
        """Tick (or untick) the person at ``index`` of the album's people."""
        item = self.people_list.item(index)
        item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)

    def _people_ticked(self, item: QListWidgetItem | None = None) -> None:
        people = self.ctx.album.people
        chosen = [people[self.people_list.item(i).data(Qt.ItemDataRole.UserRole)].person
                  for i in range(self.people_list.count())
                  if self.people_list.item(i).checkState() == Qt.CheckState.Checked]
        self.ctx.album.choose(chosen)
        photos = self.ctx.album.photos_of(chosen) if chosen else list(self.ctx.album.photos)
        current = self.preview_photo.currentData()
        self.preview_photo.clear()
        for path in photos:
            self.preview_photo.addItem(path.name, str(path))
        if current is not None and (i := self.preview_photo.findData(current)) >= 0:
            self.preview_photo.setCurrentIndex(i)
        self._update_actions()

    def choose_reference_photos(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Reference photos of the person to "
                                                "protect", "", "Photos (*.jpg *.jpeg *.png "
                                                "*.webp *.tif *.tiff *.bmp);;All files (*)")
        if files:
            self.set_reference_photos([Path(f) for f in files])

    def set_reference_photos(self, paths: list[Path]) -> None:
        self.reference_photos = list(paths)
        n = len(paths)
        self.reference_label.setText(f"{n} reference photo{'s' * (n > 1)}" if n else "")
        self.clear_reference.setVisible(bool(n))
        self._update_actions()

    # ---------------------------------------------------------------------------- jobs

    def _whom(self) -> str | None:
        """Why nothing can be protected yet (None when something can)."""
        album = self.ctx.album
        if not album.photos:
            return "Add photos in step 1."
        if not [n for n, c in self.model_boxes.items() if c.isChecked()]:
            return "Choose at least one installed recognizer (Models…)."
        if not (album.chosen or self.reference_photos or self.everyone.isChecked()):
            return "Tick a person, add reference photos, or choose everyone."
        return None

    def _update_actions(self) -> None:
        problem = self._whom()
        busy = self.ctx.jobs.busy
        self.action_note.setText(problem or "")
        self.protect_button.setEnabled(problem is None and not busy)
        self.preview_button.setEnabled(problem is None and not busy
                                       and self.preview_photo.count() > 0)
        n = len(self.ctx.album.photos)
        self.protect_button.setText(f"Protect {n} photo{'s' * (n != 1)}" if n else
                                    "Protect the album")

    def _job(self, inputs: list[Path], outdir: Path, **extra) -> CloakJob | None:
        """The core's job for these choices (None, after saying why, when they clash)."""
        s = self.ctx.settings
        try:
            settings = s.cloak_settings()
        except ValueError as exc:
            self.ctx.tell("These settings do not go together", str(exc))
            return None
        return CloakJob(inputs=inputs, outdir=outdir, settings=settings,
                        protect=list(self.reference_photos) or None,
                        protect_all=self.everyone.isChecked(), format=s.format,
                        quality=s.quality, metadata="keep" if s.keep_metadata else "strip",
                        # the Photos step's detections: the core re-detects only photos
                        # scanned with other models
                        scanned={p.path: p.faces for p in self.ctx.album.photos.values()
                                 if p.faces is not None},
                        **extra)

    def preview(self) -> None:
        """Protect the chosen photo alone, into a scratch folder, and show it."""
        photo = self.preview_photo.currentData()
        if not photo or self._whom():
            return
        self._preview_count += 1
        outdir = self.ctx.scratch / f"preview-{self._preview_count}"
        job = self._job([Path(photo)], outdir)
        if job is None:
            return
        people, cache = list(self.ctx.album.chosen), self.ctx.models

        def on_event(event) -> None:
            if event.stage == "preparing preview":
                if event.error:
                    self.ctx.tell("No preview", event.error)
                else:
                    self.show_preview(event.result)

        def on_finished(outcome: str, message: str) -> None:
            if outcome == "failed":
                self.ctx.tell("The preview failed", message)

        self.ctx.jobs.start(f"Previewing {Path(photo).name}",
                            lambda: preview_photo(job, people, cache), on_event, on_finished)

    def show_preview(self, data) -> None:
        if self.preview_window is not None:
            self.preview_window.close()
        self.preview_window = PreviewWindow(data, self)
        self.preview_window.show()

    def protect(self) -> None:
        """Protect every photo of the album into the output folder."""
        outdir = self.output_folder()
        if outdir is None or self._whom():
            return
        if outdir.is_dir() and any(outdir.iterdir()) and not (outdir / MANIFEST_NAME).exists():
            if not self.ctx.confirm("Folder not empty", f"{outdir} already holds files. Photos "
                                    "with the same names will be replaced. Go on?"):
                return
        # resume: photos already protected there with the same settings are skipped
        job = self._job(list(self.ctx.album.inputs), outdir, resume=True)
        if job is None:
            return
        people, cache = list(self.ctx.album.chosen), self.ctx.models
        self.last_output = outdir
        self._results = {}
        self.results.setRowCount(0)

        def on_event(event) -> None:
            if event.stage == "cloaking":
                self._add_result(event)

        def on_finished(outcome: str, message: str) -> None:
            self.open_folder.setEnabled(outdir.is_dir())
            self.next_button.setEnabled((outdir / MANIFEST_NAME).is_file())
            if (outdir / MANIFEST_NAME).is_file():
                self.album_protected.emit(outdir)
            done = sum(1 for r in self._results.values() if r.get("status") == "cloaked")
            if outcome == "failed":
                self.ctx.tell("Protection stopped", message)
            elif outcome == "cancelled":
                self.results_note.setText(f"Stopped: {done} photos protected so far; the "
                                          "files in the folder are all complete. Run again "
                                          "to finish the rest.")
            else:
                self.results_note.setText(f"{done} photos protected in {outdir}. "
                                          "Double-click a photo to compare.")

        n = len(self.ctx.album.photos)
        self.ctx.jobs.start(f"Protecting {n} photo{'s' * (n != 1)}",
                            lambda: protect_album(job, people, cache), on_event, on_finished)

    def _add_result(self, event) -> None:
        row = self.results.rowCount()
        self.results.insertRow(row)
        name = QTableWidgetItem(event.path.name if event.path else "")
        name.setToolTip(str(event.path))
        self.results.setItem(row, 0, name)
        if event.error:
            self.results.setItem(row, 1, QTableWidgetItem(f"failed: {event.error}"))
            return
        if event.skipped:
            self.results.setItem(row, 1, QTableWidgetItem("already done (kept)"))
            return
        entry = event.result
        self._results[str(event.path)] = entry
        name.setData(Qt.ItemDataRole.UserRole, str(event.path))
        faces = entry["faces"]
        protected = [f for f in faces if f["protected"]]
        status = "protected" if entry["status"] == "cloaked" else "copied (no chosen face)"
        self.results.setItem(row, 1, QTableWidgetItem(status))
        self.results.setItem(row, 2, QTableWidgetItem(f"{len(protected)} of {len(faces)}"))
        ssim = [f["quality"]["ssim"] for f in protected if f.get("quality")]
        self.results.setItem(row, 3, QTableWidgetItem(f"{min(ssim):.3f}" if ssim else "–"))
        self.results.setItem(row, 4, QTableWidgetItem(self._fooled(protected)))
        self.results.scrollToBottom()

    def _fooled(self, faces: list[dict]) -> str:
        """E.g. "2 of 2": recognizers that no longer match any protected face."""
        if not faces:
            return "–"
        models = list(faces[0].get("distance_after", {}))
        fooled = 0
        for m in models:
            t = self.ctx.models.threshold(m)
            if t is not None and all(f["distance_after"].get(m, 0) >= t for f in faces):
                fooled += 1
        return f"{fooled} of {len(models)}"

    def _open_result(self, row: int, _column: int) -> None:
        item = self.results.item(row, 0)
        key = item.data(Qt.ItemDataRole.UserRole) if item else None
        entry = self._results.get(key) if key else None
        if entry is None or self.last_output is None:
            return
        thresholds = {m: t for m in self.ctx.settings.models
                      if (t := self.ctx.models.threshold(m)) is not None}
        self.setCursor(Qt.CursorShape.WaitCursor)
        try:
            data = load_preview(Path(entry["input"]), self.last_output / entry["output"],
                                entry, thresholds)
        except Exception as exc:  # a file removed meanwhile: say so
            self.ctx.tell("Cannot open the photo", str(exc))
            return
        finally:
            self.unsetCursor()
        self.show_preview(data)

    def _open_output_folder(self) -> None:
        if self.last_output is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_output)))
