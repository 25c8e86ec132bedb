"""The Protect step's "who" panel: the album's people to tick, or reference photos."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QToolButton,
    QVBoxLayout,
)

from faceguard.cloak.universal import UniversalMask
from faceguard.manifest import PRIVATE_FOLDER
from faceguard.words import plural
from faceguard_gui.models_dialog import missing_models
from faceguard_gui.widgets import PHOTO_FILTER, note

CHIP = 96


class WhoPanel:
    """Whom to protect: ticked people of the album or reference photos.

    A part of :class:`faceguard_gui.protect_view.ProtectView` (it relies on the view's
    ``ctx`` and on the other panels' methods).
    """

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
        self.people_list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        rename = QAction("Rename…", self.people_list)
        rename.setShortcut(QKeySequence(Qt.Key.Key_F2))
        rename.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        rename.triggered.connect(lambda: self.rename_person(self.people_list.currentRow()))
        self.people_list.addAction(rename)
        self.people_note = note()
        self.everyone = QCheckBox("Everyone in the photos")
        self.everyone.setToolTip("Cloak every face found, whoever it is: each is pushed "
                                 "from its person's other faces in these photos, or from "
                                 "itself when it has none there, which fools the "
                                 "recognizers less often")
        self.everyone.toggled.connect(self._save_settings)
        self.everyone.toggled.connect(self._update_actions)
        self.everyone.toggled.connect(lambda _: self.ctx.album.choice_changed.emit())
        self.reference_button = QPushButton("Add reference photos…")
        self.reference_button.setToolTip("Photos of one person to protect, e.g. yourself: "
                                         "their face is protected wherever it appears")
        self.reference_button.clicked.connect(self.choose_reference_photos)
        self.reference_label = note()
        self.reference_label.setMinimumWidth(60)  # wraps, not widening the panel
        self.clear_reference = _remove_button("Remove the reference photos")
        self.clear_reference.clicked.connect(lambda: self.set_reference_photos([]))
        row = QHBoxLayout()  # under the button, once there are some (else too wide)
        row.addWidget(self.reference_label, 1)
        row.addWidget(self.clear_reference)
        # the CLI's --mask: a person's universal mask, made by an earlier run
        self.mask_button = QPushButton("Use a saved mask…")
        self.mask_button.setToolTip(
            "The mask an earlier run made for one person (a one-mask-per-person method "
            f"keeps it in the output folder's {PRIVATE_FOLDER} folder): their face is "
            "protected wherever it appears in these photos, without learning again")
        self.mask_button.clicked.connect(self.choose_mask)
        self.mask_label = note()
        self.mask_label.setMinimumWidth(60)
        self.clear_mask = _remove_button("Remove the mask")
        self.clear_mask.clicked.connect(lambda: self.set_mask(None))
        mask_row = QHBoxLayout()
        mask_row.addWidget(self.mask_label, 1)
        mask_row.addWidget(self.clear_mask)
        inner = QVBoxLayout(box)
        inner.addWidget(self.people_list, 1)
        inner.addWidget(self.people_note)
        inner.addWidget(self.everyone)
        for button, chosen in ((self.reference_button, row), (self.mask_button, mask_row)):
            line = QHBoxLayout()
            line.addWidget(button)
            line.addStretch(1)
            inner.addLayout(line)
            inner.addLayout(chosen)
        return box

    def _fill_people(self) -> None:
        self.people_list.blockSignals(True)
        self.people_list.clear()
        ratio = self.devicePixelRatioF()
        for k, found in enumerate(self.ctx.album.people):
            n, photos = len(found.person.faces), found.photos
            item = QListWidgetItem(f"{found.person.name}\n{plural(n, 'face')} · "
                                   f"{plural(photos, 'photo')}")
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
        self._people_note()
        self._people_ticked()

    def _people_note(self) -> None:
        """What the people list says of itself, as the album's photos and scan stand."""
        album = self.ctx.album
        if album.people:
            self.people_note.setText("Tick the people to protect; right-click (or F2) to "
                                     "give one a name.")
        elif album.photos and album.unscanned():
            self.people_note.setText("Looking for faces…" if self.ctx.jobs.busy else
                                     "Faces not looked for yet in some photos: “Find "
                                     "faces” in step 1.")
        elif album.photos:
            self.people_note.setText("No faces found in the album.")
        else:
            self.people_note.setText("Add photos in step 1 first.")

    def try_on(self, photo: Path) -> None:
        """Make ``photo`` the one to preview, when it is in the list."""
        if (i := self.preview_photo.findData(str(photo))) >= 0:
            self.preview_photo.setCurrentIndex(i)

    def set_person_ticked(self, index: int, ticked: bool = True) -> None:
        """Tick (or untick) the person at ``index`` of the album's people."""
        item = self.people_list.item(index)
        item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)

    def rename_person(self, index: int, name: str | None = None) -> None:
        """Give the person at ``index`` a name (asked for when None): the manifest and
        the report use it."""
        if not 0 <= index < len(self.ctx.album.people):
            return
        person = self.ctx.album.people[index].person
        if name is None:
            name, ok = QInputDialog.getText(self, "Rename", "Name of this person:",
                                            text=person.name)
            if not ok:
                return
        others = {p.person.name for p in self.ctx.album.people if p.person is not person}
        if name.strip() in others:  # the manifest and the audit tell people by their names
            self.ctx.tell("Name taken", f"Another person is already called {name.strip()}: "
                          "give each person a name of their own.")
            return
        self.ctx.album.rename(person, name)

    def _people_ticked(self, item: QListWidgetItem | None = None) -> None:
        people = self.ctx.album.people
        chosen = [people[self.people_list.item(i).data(Qt.ItemDataRole.UserRole)].person
                  for i in range(self.people_list.count())
                  if self.people_list.item(i).checkState() == Qt.CheckState.Checked]
        self.ctx.album.choose(chosen)  # the photos to try on and the buttons follow

    def _fill_try_on(self) -> None:
        """The photos to try the cloak on: those with a face to cloak, as people are
        ticked and faces clicked (every photo where the person is whoever matches
        reference photos or a mask, or everyone is); a photo that cannot be read, or has
        no face, has nothing to show."""
        album = self.ctx.album
        photos = [p for p, photo in album.photos.items() if not photo.problem]
        anyone = self.everyone.isChecked() or self.reference_photos or self.saved_mask
        if not anyone and (album.chosen or album.face_choices):
            photos = [p for p in photos
                      if any(album.is_cloaked(p, j) for j in range(album.photos[p].face_count))]
        current = self.preview_photo.currentData()
        self.preview_photo.clear()
        for path in photos:
            self.preview_photo.addItem(path.name, str(path))
        if current is not None and (i := self.preview_photo.findData(current)) >= 0:
            self.preview_photo.setCurrentIndex(i)
        self._update_actions()  # "Preview on one photo" needs a photo to try

    def choose_reference_photos(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Reference photos of the person to "
                                                "protect", "", PHOTO_FILTER)
        if files:
            self.set_reference_photos([Path(f) for f in files])

    def set_reference_photos(self, paths: list[Path]) -> None:
        self.reference_photos = list(paths)
        n = len(paths)
        self.reference_label.setText(f"{n} reference photo{'s' * (n > 1)}" if n else "")
        self.reference_label.setVisible(bool(n))
        self.clear_reference.setVisible(bool(n))
        self._fill_try_on()

    def choose_mask(self) -> None:
        start = self.last_output / PRIVATE_FOLDER if self.last_output else Path()
        file, _ = QFileDialog.getOpenFileName(self, "A saved mask", str(start),
                                              "FaceGuard masks (*.mask.pt)")
        if file:
            self.set_mask(Path(file))

    def set_mask(self, path: Path | None) -> None:
        """Protect with the mask saved at ``path`` (None: with the choices above)."""
        if path is not None:
            try:
                mask = UniversalMask.load(path)
            except ValueError as exc:
                self.ctx.tell("Not a mask", str(exc))
                return
            if missing := missing_models(mask.models):  # else Protect fails at the start
                self.ctx.tell("Install the recognizers first", f"This mask was made on "
                              f"{', '.join(mask.models)}; {', '.join(missing)} must be "
                              "installed to apply it (Models…).")
                return
            self.mask_label.setText(f"a mask for {mask.person}")  # the How note names the file
            self.mask_label.setToolTip(str(path))
            self.saved_mask_eps = float(mask.settings.get("eps", 0.0))
            self.saved_mask_models = list(mask.models)
        else:
            self.mask_label.setText("")
        self.saved_mask = path
        self.mask_label.setVisible(path is not None)
        self.clear_mask.setVisible(path is not None)
        self._explain_choice()
        self._fill_try_on()

    def _whom(self) -> str | None:
        """Why nothing can be protected yet (None when something can)."""
        album = self.ctx.album
        if not album.photos:
            return "Add photos in step 1."
        if not self.ticked_models() and self.saved_mask is None:  # a mask has its own
            return "Choose at least one installed recognizer (Models…)."
        clicked = any(any(c.values()) for c in album.face_choices.values())
        chosen = album.chosen or self.reference_photos or self.everyone.isChecked() or clicked
        if self.saved_mask is not None and chosen:  # as the CLI: exactly one of them
            return ("A saved mask protects the person it was made for: untick the people, "
                    "faces and Everyone, remove the reference photos, or remove the mask.")
        if not (chosen or self.saved_mask):
            return "Tick a person, add reference photos, or choose everyone."
        return None


def _remove_button(tip: str) -> QToolButton:
    """A small × that takes a choice back (a "Remove" button widened the panel past a
    1024 px window)."""
    button = QToolButton()
    button.setText("×")
    button.setToolTip(tip)
    return button
