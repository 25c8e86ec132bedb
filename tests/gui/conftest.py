"""GUI test fixtures: offscreen Qt, a private settings folder, a fast-settings window."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported anywhere

import pytest  # noqa: E402
from gui_helpers import FAST, JOB_TIMEOUT, SMALL  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture
def copy_photos(album_dir: Path, tmp_path: Path):
    """copy_photos(*keys) -> paths of copies of SMALL photos in tmp_path/album."""

    def copy(*keys: str) -> list[Path]:
        folder = tmp_path / "album"
        folder.mkdir(exist_ok=True)
        out = []
        for key in keys:
            src = album_dir / SMALL[key]
            dst = folder / src.name
            shutil.copyfile(src, dst)
            out.append(dst)
        return out

    return copy


@pytest.fixture
def make_window(qtbot, tmp_path: Path, monkeypatch):
    """make_window(**settings) -> a shown MainWindow with FAST settings, output in tmp_path.

    Questions are answered yes (tests that care replace ``window.confirm``); at the end
    any running job is cancelled and waited for.
    """
    from faceguard_gui.main_window import MainWindow
    from faceguard_gui.settings import AppSettings

    monkeypatch.setenv("FACEGUARD_CONFIG", str(tmp_path / "config"))
    windows = []

    def make(**overrides) -> MainWindow:
        values = {**FAST, "output_folder": str(tmp_path / "protected"), **overrides}
        window = MainWindow(AppSettings(**values))
        window.confirm = lambda title, text: True
        window.ctx.confirm = lambda title, text: window.confirm(title, text)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.jobs.cancel()
        qtbot.waitUntil(lambda w=window: not w.jobs.busy, timeout=JOB_TIMEOUT)
