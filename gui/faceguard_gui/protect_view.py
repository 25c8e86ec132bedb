"""Step 2, Protect: who to protect, how strongly, where to write; preview; run."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from faceguard.album import AlbumError
from faceguard.manifest import Manifest, manifest_file
from faceguard.output_folder import check_outdir
from faceguard.pipeline import CloakJob
from faceguard.words import plural
from faceguard_gui.context import AppContext
from faceguard_gui.jobs import preview_photo, protect_album
from faceguard_gui.preview import PreviewWindow
from faceguard_gui.protect_how import HowPanel, strength_words
from faceguard_gui.protect_results import ResultsPanel
from faceguard_gui.protect_who import WhoPanel
from faceguard_gui.widgets import StepHeader, note

__all__ = ["ProtectView", "strength_words"]


class ProtectView(WhoPanel, HowPanel, ResultsPanel, QWidget):
    """The Protect step: its panels (who, how, results) are in ``protect_who``,
    ``protect_how`` and ``protect_results``; the view lays them out and runs the jobs.

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
        self.saved_mask: Path | None = None
        self.saved_mask_eps = 0.0  # its cap on any pixel's change, in grey levels
        self.saved_mask_models: list[str] = []  # the recognizers it was made on
        self.preview_window: PreviewWindow | None = None
        self._run_limits: tuple[float | None, float | None] = (None, None)
        self.last_output: Path | None = None
        self._results: dict[str, dict] = {}
        self._not_written: Counter[str] = Counter()
        self._shown_names: dict[Path, str] = {}  # photo -> its path in the album
        self._preview_count = 0
        self._loading = True

        header = StepHeader("2  Protect", "Tick the people to protect (or give reference "
                            "photos of someone), choose how strongly, try it on one photo, "
                            "then protect the whole album. The originals are never changed.")
        layout = QVBoxLayout(self)
        # 8 px narrower than the style's margins and spacing: once a run's words make the
        # step scroll, it fits beside the scroll bar at 1024 px (it scrolled 6 px sideways)
        layout.setContentsMargins(6, 9, 6, 9)
        layout.addWidget(header)
        top = QHBoxLayout()
        top.setSpacing(4)
        top.addWidget(self._who_box(), 5)
        top.addWidget(self._how_box(), 6)
        layout.addLayout(top, 3)
        layout.addLayout(self._action_row())
        layout.addWidget(self._results_box(), 2)

        ctx.album.people_changed.connect(self._fill_people)
        # the photos to try on, then the buttons (_fill_try_on ends with _update_actions)
        ctx.album.choice_changed.connect(self._fill_try_on)  # e.g. a face clicked
        ctx.album.photos_changed.connect(self._fill_try_on)
        ctx.album.photos_changed.connect(self._people_note)  # "Looking for faces…"
        ctx.jobs.started.connect(lambda _: self._update_actions())
        ctx.jobs.finished.connect(lambda *_: self._update_actions())
        ctx.jobs.started.connect(lambda _: self._people_note())
        ctx.jobs.finished.connect(lambda *_: self._people_note())
        self._load_settings()
        self._fill_people()
        self.set_reference_photos([])
        self.set_mask(None)

    # ------------------------------------------------------------------- the layout

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

    # ---------------------------------------------------------------------------- jobs

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
                        protect=list(self.reference_photos) or None, mask=self.saved_mask,
                        protect_all=self.everyone.isChecked(), format=s.format,
                        quality=s.quality, metadata="keep" if s.keep_metadata else "strip",
                        max_side=s.max_side or None,
                        # the Photos step's detections: the core re-detects only photos
                        # scanned with other models
                        scanned={p.path: p.faces for p in self.ctx.album.photos.values()
                                 if p.faces is not None},
                        face_choices=dict(self.ctx.album.face_choices) or None,
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
        limits = self._limits()

        def on_event(event) -> None:
            if event.stage == "preparing preview":
                if event.error:
                    self.ctx.tell("No preview", event.error)
                else:
                    self.show_preview(event.result, *limits)

        def on_finished(outcome: str, message: str) -> None:
            if outcome == "failed":
                self.ctx.tell("The preview failed", message)

        self.ctx.jobs.start(f"Previewing {Path(photo).name}",
                            lambda: preview_photo(job, people, cache), on_event, on_finished)

    def _limits(self) -> tuple[float, float]:
        """The cap on any pixel's change (grey levels: a saved mask's own) and the
        SSIMULACRA2 floor chosen."""
        cap = self.saved_mask_eps if self.saved_mask is not None else self.ctx.settings.eps
        return cap, self.ctx.settings.floor

    def show_preview(self, data, cap: float | None = None, floor: float | None = None) -> None:
        """Show ``data`` (a PreviewData); ``cap`` and ``floor`` are the limits it was
        protected with, said beside the figures measured."""
        if self.preview_window is not None:
            self.preview_window.close()
        self.preview_window = PreviewWindow(data, self, cap=cap, floor=floor)
        self.preview_window.show()

    def protect(self) -> None:
        """Protect every photo of the album into the output folder."""
        outdir = self.output_folder()
        if outdir is None or self._whom():
            return
        try:  # a folder it may not be at all is said before asking about its files
            check_outdir(outdir, [*self.ctx.album.inputs, *self.reference_photos])
        except AlbumError as exc:
            self.ctx.tell("Choose another folder", str(exc))
            return
        # files FaceGuard did not write there are replaced only when the user says so
        replace = outdir.is_dir() and bool(_manifest_or_empty(outdir).others())
        if replace and not self.ctx.confirm(
                "Folder not empty", f"{outdir} already holds files FaceGuard did not write. "
                "Photos with the same names will be replaced. Go on?"):
            return
        # resume: photos already protected there with the same settings are skipped
        job = self._job(list(self.ctx.album.inputs), outdir, resume=True, overwrite=replace,
                        photos=self.ctx.album.photo_jobs())  # as found when added
        if job is None:
            return
        people, cache = list(self.ctx.album.chosen), self.ctx.models
        self.last_output = outdir
        self._run_limits = self._limits()
        self._results = {}
        self._not_written = Counter()  # photos kept from an earlier run, and failed
        self._shown_names = {path: rel.as_posix() for path, rel in job.photos or []}
        self.results.setRowCount(0)
        self.say("")  # the last run's words are not this one's
        notes: list[str] = []  # what the user should know, under the results at the end

        def on_event(event) -> None:
            if event.note:
                notes.append(event.note)
            if event.stage == "cloaking" and not event.under_way:  # a photo is done
                self._add_result(event)

        def on_finished(outcome: str, message: str) -> None:
            self.open_folder.setEnabled(outdir.is_dir())
            self.next_button.setEnabled(manifest_file(outdir) is not None)
            if manifest_file(outdir) is not None:
                self.album_protected.emit(outdir)
            if outcome == "failed":
                self.ctx.tell("Protection stopped", message)
                self.say(f"Stopped: {message}")
            elif outcome == "cancelled":
                # counted in the manifest: a photo cloaked beside the last one has no row
                written = _manifest_or_empty(outdir).written_since(started)
                self.say(f"Stopped: {plural(written, 'photo')} written so "
                                          "far; the files in the folder are all complete. "
                                          "Run again to finish the rest.")
            else:
                # a stronger preset does not change a saved mask
                stronger = None if job.mask else job.settings.stronger
                self.say(self.run_words(outdir, stronger)
                                          + "".join(f"\nNote: {n}." for n in notes))

        n = len(self.ctx.album.photos)
        started = time.time_ns()  # the photos written since are this run's
        self.ctx.jobs.start(f"Protecting {plural(n, 'photo')}",
                            lambda: protect_album(job, people, cache), on_event, on_finished)


def _manifest_or_empty(outdir: Path) -> Manifest:
    """The folder's manifest, or an empty one where it cannot be read (the run says why)."""
    try:
        return Manifest.load(outdir)
    except ValueError:
        return Manifest(outdir)
