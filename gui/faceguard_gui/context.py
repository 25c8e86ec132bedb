"""What every step of the app shares: the album, the settings, the job runner, the models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faceguard_gui.album_state import AlbumState
from faceguard_gui.settings import AppSettings
from faceguard_gui.workers import JobController, ModelCache


@dataclass
class AppContext:
    """Shared state, handed to each view by the main window.

    Attributes:
        album: the photos and people being worked on.
        settings: the remembered choices (saved by the window on change and on close).
        jobs: runs one long job at a time off the GUI thread.
        models: the detector and recognizers, loaded once.
        scratch: a temporary folder for previews (removed when the app quits).
        tell: show a message without blocking: (title, text).
        confirm: ask a yes/no question: (title, text) -> yes.
    """

    album: AlbumState
    settings: AppSettings
    jobs: JobController
    models: ModelCache
    scratch: Path
    tell: Callable[[str, str], None]
    confirm: Callable[[str, str], bool]
