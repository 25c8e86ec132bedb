"""Step 1, Photos: add photos or folders, see the faces found, see what needs attention."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from faceguard.io import skipped_lines
from faceguard.words import plural
from faceguard_gui.album_state import AlbumPhoto
from faceguard_gui.context import AppContext
from faceguard_gui.images import (
    FACE_COLOUR,
    PROBLEM_COLOUR,
    PROTECTED_COLOUR,
    placeholder,
    with_boxes,
)
from faceguard_gui.jobs import scan_photos
from faceguard_gui.models_dialog import missing_models
from faceguard_gui.photo_grid import PATH_ROLE, THUMB, PhotoGrid
from faceguard_gui.widgets import PHOTO_FILTER, StepHeader, note


class PhotosView(QWidget):
    """The Photos step.

    Signals:
        next_requested(): the user wants to go on to Protect.
    """

    next_requested = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._items: dict[Path, QListWidgetItem] = {}
        self._scan_stopped = False
        self.picker = None  # the face picker shown last (FacePicker)

        header = StepHeader("1  Photos", "Add the photos you want to protect. FaceGuard finds "
                            "the faces in them; your photos never leave this computer and "
                            "are never changed.")
        self.add_files_button = QPushButton("Add photos…")
        self.add_files_button.clicked.connect(self.choose_files)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.recent_button = QToolButton()
        self.recent_button.setText("Recent folders")
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.recent_button.setMenu(self.recent_menu)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.scan_button = QPushButton("Find faces")  # shown when a look was stopped
        self.scan_button.setToolTip("Look for the faces of the photos not scanned yet")
        self.scan_button.clicked.connect(self.scan)
        self.scan_button.hide()
        self.small_faces = QCheckBox("Small faces too")
        self.small_faces.setToolTip(
            "Also look for faces down to 20 pixels wide in large photos (crowds, group "
            "photos taken from afar); finding faces takes longer. Without it, in photos "
            "over 1024 pixels, faces narrower than about 1.2% of the longer side (47 "
            "pixels at 4000) may be missed.")
        self.small_faces.setChecked(ctx.settings.small_faces)
        self.small_faces.toggled.connect(self.set_small_faces)
        self.summary = note()
        bar = QHBoxLayout()
        for w in (self.add_files_button, self.add_folder_button, self.recent_button,
                  self.small_faces):
            bar.addWidget(w)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.scan_button)
        bar.addWidget(self.clear_button)

        self.grid = PhotoGrid()
        self.grid.dropped.connect(self.add_paths)
        self.grid.remove_requested.connect(self.remove_photos)
        self.grid.faces_requested.connect(self.pick_faces)
        self.problems = QTableWidget(0, 2)
        self.problems.setHorizontalHeaderLabels(["Photo", "Needs attention because"])
        self.problems.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.problems.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents)
        self.problems.verticalHeader().hide()
        self.problems.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.problems.itemSelectionChanged.connect(self._show_problem_photo)
        self.problems.hide()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.grid)
        split.addWidget(self.problems)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)

        self.next_button = QPushButton("Next: choose who to protect  →")
        self.next_button.setDefault(True)
        self.next_button.clicked.connect(self.next_requested)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.next_button)

        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)

        ctx.album.photos_changed.connect(self._sync_items)
        ctx.album.photo_scanned.connect(self._update_item)
        ctx.album.people_changed.connect(self._update_summary)
        ctx.album.choice_changed.connect(self.refresh_boxes)
        ctx.jobs.finished.connect(self._scan_when_idle)
        # not while a job runs: its faces are of the other look
        ctx.jobs.started.connect(lambda _: self.small_faces.setEnabled(False))
        ctx.jobs.finished.connect(lambda *_: self.small_faces.setEnabled(not ctx.jobs.busy))
        self._sync_items()

    # -------------------------------------------------------------- adding photos

    def choose_files(self) -> None:
        start = self.ctx.settings.recent_folders[0] if self.ctx.settings.recent_folders else ""
        files, _ = QFileDialog.getOpenFileNames(self, "Add photos", start, PHOTO_FILTER)
        self.add_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        start = self.ctx.settings.recent_folders[0] if self.ctx.settings.recent_folders else ""
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos", start)
        if folder:
            self.add_paths([Path(folder)])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.ctx.settings.recent_folders:
            action = QAction(folder, self.recent_menu)
            action.triggered.connect(lambda _=False, f=folder: self.add_paths([Path(f)]))
            action.setEnabled(Path(folder).is_dir())
            self.recent_menu.addAction(action)
        if not self.ctx.settings.recent_folders:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def add_paths(self, paths: list[Path]) -> None:
        """Add photos or folders to the album and find their faces."""
        if not paths:
            return
        known = len(self.ctx.album.skipped)
        new = self.ctx.album.add(paths)
        for p in paths:
            self.ctx.settings.add_recent(p if p.is_dir() else p.parent)
        self.ctx.settings.save()
        self._update_summary()
        if not new and not self.ctx.album.unscanned():
            skipped = skipped_lines(self.ctx.album.skipped[known:])
            self.ctx.tell("Nothing new", "These photos are already in the album (or the "
                          "folders hold no photos FaceGuard can read)."
                          + "".join(f"\n{line}" for line in skipped))
        self.scan()

    def remove_photos(self, paths: list[Path]) -> None:
        """Take photos out of the album (their files stay where they are)."""
        for path in paths:
            self.ctx.album.remove(path)

    def pick_faces(self, path: Path) -> None:
        """Show one photo large: a click on a face's box cloaks that face or leaves it."""
        from faceguard_gui.face_picker import FacePicker

        photo = self.ctx.album.photos.get(path)
        if photo is None or not photo.face_count:
            return
        self.picker = FacePicker(self.ctx.album, path, self.ctx.settings.protect_everyone,
                                 self)
        self.picker.show()

    def clear(self) -> None:
        if self.ctx.jobs.busy:
            self.ctx.tell("Please wait", "Clear the album when the current run has finished.")
            return
        self.ctx.album.clear()

    # -------------------------------------------------------------------- scanning

    def scan(self) -> None:
        """Find the faces of the photos not scanned yet, then group the album into people."""
        album = self.ctx.album
        # the album keeps the recognizers of its first scan, so that new photos group
        # with the old ones; cloaking re-reads the chosen people with the cloak's models
        models = album.scan_models or tuple(self.ctx.settings.models)
        if self.ctx.jobs.busy:
            return  # _scan_when_idle picks it up
        paths = album.unscanned()
        if not paths:
            return
        self._scan_stopped = False
        self.scan_button.hide()
        earlier = album.scanned_faces()
        cache = self.ctx.models

        def on_event(event) -> None:
            if event.stage == "scanning":
                album.record(event.result)
            elif event.stage == "grouping":
                album.scan_models = models
                album.set_people(event.result)

        def on_finished(outcome: str, message: str) -> None:
            # stopped or failed: the photos left say so, and Find faces looks again
            self._scan_stopped = outcome != "done"
            if outcome == "failed":
                if missing := missing_models(models):
                    message = (f"The face recognizer{'s' * (len(missing) > 1)} "
                               f"{', '.join(missing)} must be installed first: use "
                               "Install now at the top of the window.")
                self.ctx.tell("Could not find the faces", message)
            for path in album.unscanned():
                self._update_item(path)
            self._update_scan_button()
            self._update_summary()

        n = len(paths)
        self.ctx.jobs.start(f"Finding faces in {n} photo{'s' if n > 1 else ''}",
                            lambda: scan_photos(paths, earlier, cache, models),
                            on_event, on_finished)

    def set_small_faces(self, on: bool) -> None:
        """Look for small faces too (or not), in every photo again."""
        self.ctx.settings.small_faces = on
        self.ctx.settings.save()
        self.ctx.models.small_faces = on
        if self.picker is not None:  # it shows the faces of the look before
            self.picker.close()
        self.ctx.album.look_again()
        for path in self.ctx.album.photos:
            self._update_item(path)
        self.scan()

    def _scan_when_idle(self, outcome: str, message: str) -> None:
        if outcome == "done" and self.ctx.album.unscanned():
            self.scan()

    # --------------------------------------------------------------------- display

    def _sync_items(self) -> None:
        album = self.ctx.album
        for path in list(self._items):
            if path not in album.photos:
                self.grid.takeItem(self.grid.row(self._items.pop(path)))
        for path in album.photos:
            if path not in self._items:
                item = QListWidgetItem(path.name)
                item.setData(PATH_ROLE, str(path))
                item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
                self.grid.addItem(item)
                self._items[path] = item
                self._update_item(path)
        self._update_problems()
        self._update_summary()
        self._update_scan_button()

    def _update_scan_button(self) -> None:
        """Find faces shows while photos wait for a look that was stopped or failed."""
        self.scan_button.setVisible(self._scan_stopped and bool(self.ctx.album.unscanned())
                                    and not self.ctx.jobs.busy)

    def _update_item(self, path: Path) -> None:
        item = self._items.get(path)
        photo = self.ctx.album.photos.get(path)
        if item is None or photo is None:
            return
        item.setIcon(QIcon(self._picture(photo)))
        if not photo.scanned:
            status = "not scanned yet" if self._scan_stopped else "looking for faces…"
        elif photo.error:
            status = "⚠ cannot be read"
        elif not photo.face_count:
            status = "⚠ no face found"
        else:
            status = f"{photo.face_count} face{'s' if photo.face_count > 1 else ''}"
        item.setText(f"{path.name}\n{status}")
        item.setToolTip(f"{path}\n{photo.problem or status}")
        if photo.problem:
            item.setForeground(PROBLEM_COLOUR)
        else:
            item.setData(Qt.ItemDataRole.ForegroundRole, None)
        self._update_problems()
        self._update_summary()

    def _picture(self, photo: AlbumPhoto) -> QPixmap:
        ratio = self.devicePixelRatioF()
        side = int(THUMB * ratio)
        if photo.thumbnail is None or photo.thumbnail.isNull():
            text = "cannot be read" if photo.scanned else "…"
            return placeholder(THUMB, text)
        image = photo.thumbnail.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation)
        if photo.faces is not None and photo.faces.faces:
            # boxes drawn at display size, so their lines stay crisp
            chosen = self._chosen_boxes(photo)
            colours = [PROTECTED_COLOUR if k in chosen else FACE_COLOUR
                       for k in range(len(photo.faces.faces))]
            image = with_boxes(image, [f.box for f in photo.faces.faces],
                               image.width() / photo.faces.width, colours, width=2 * ratio)
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(ratio)
        if photo.problem:  # an orange frame flags photos that need attention
            painter = QPainter(pixmap)
            painter.setPen(PROBLEM_COLOUR)
            painter.drawRect(pixmap.rect().adjusted(0, 0, -1, -1))
            painter.end()
        return pixmap

    def _chosen_boxes(self, photo: AlbumPhoto) -> set[int]:
        """Indices of the faces of this photo that will be cloaked (their person ticked,
        or their box clicked on)."""
        everyone = self.ctx.settings.protect_everyone
        return {k for k in range(photo.face_count)
                if self.ctx.album.is_cloaked(photo.path, k, everyone)}

    def refresh_boxes(self) -> None:
        """Redraw every thumbnail (the ticked people changed colour)."""
        for path in self._items:
            photo = self.ctx.album.photos[path]
            if photo.faces is not None and photo.faces.faces:
                self._items[path].setIcon(QIcon(self._picture(photo)))

    def _update_problems(self) -> None:
        problems = self.ctx.album.problems
        self.problems.setRowCount(len(problems))
        for row, photo in enumerate(problems):
            name = QTableWidgetItem(photo.path.name)
            name.setToolTip(str(photo.path))
            name.setData(PATH_ROLE, str(photo.path))
            reason = QTableWidgetItem(photo.problem)
            reason.setToolTip(photo.problem)
            self.problems.setItem(row, 0, name)
            self.problems.setItem(row, 1, reason)
        self.problems.setVisible(bool(problems))

    def _show_problem_photo(self) -> None:
        rows = self.problems.selectionModel().selectedRows()
        if rows:
            path = Path(self.problems.item(rows[0].row(), 0).data(PATH_ROLE))
            if path in self._items:
                self.grid.setCurrentItem(self._items[path])
                self.grid.scrollToItem(self._items[path])

    def _update_summary(self) -> None:
        album = self.ctx.album
        if not album.photos:
            self.summary.setText("  ·  ".join(skipped_lines(album.skipped)))
            self.next_button.setEnabled(False)
            return
        faces = sum(p.face_count for p in album.photos.values())
        parts = [plural(len(album.photos), "photo"), plural(faces, "face")]
        if (waiting := len(album.unscanned())) and not self.ctx.jobs.busy:  # a look stopped
            parts.append(f"{waiting} not scanned yet")
        if album.people:
            parts.append(plural(len(album.people), "person", "people"))
        if album.problems:
            parts.append(f"{len(album.problems)} need attention")
        self.summary.setText("  ·  ".join(parts + skipped_lines(album.skipped)))
        self.next_button.setEnabled(bool(album.people) or not album.unscanned())
