"""Render each step's screen to PNG, offscreen, driving the real app as a user would.

``python -m faceguard_gui --screenshot DIR [--size WxH ...] [PHOTO ...]``: adds the
photos (default:
skimage's public-domain astronaut and a mirrored copy), finds the faces, ticks the
first person, previews one photo, protects the album with a quick setting and runs a
quick audit, saving ``1-photos.png``, ``2-protect.png``, ``2-preview.png``,
``3-audit.png`` and ``3-audit-protection.png``. Settings go to a temporary folder
unless ``FACEGUARD_CONFIG`` is set.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtWidgets import QApplication, QWidget

from faceguard.models.catalogue import is_installed
from faceguard.settings import DEFAULT_MODELS, LOOKS

#: the quick settings used for the screenshots (seconds, not minutes, on a laptop CPU)
QUICK_AUDIT_SETTINGS = {"audit_defenses": ["none", "jpeg75", "mirror", "bilateral", "resize"],
                        "audit_detectors": ["wlmp-linear"]}


def wait_until(condition: Callable[[], bool], timeout: float = 600) -> None:
    """Process Qt events until ``condition()`` holds (raises TimeoutError after ``timeout`` s)."""
    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the app did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def demo_photos(folder: Path) -> list[Path]:
    """The astronaut photo and a mirrored copy, written as PNG into ``folder``."""
    import numpy as np
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    image = skimage.data.astronaut()
    paths = [folder / "astronaut.png", folder / "astronaut-mirrored.png"]
    Image.fromarray(image).save(paths[0])
    Image.fromarray(np.ascontiguousarray(image[:, ::-1])).save(paths[1])
    return paths


def save(widget: QWidget, path: Path) -> Path:
    QApplication.processEvents()
    widget.grab().save(str(path))
    return path


def save_sizes(window: QWidget, path: Path, sizes: Sequence[tuple[int, int]]) -> list[Path]:
    """The window at each size (``name-WxH.png``), or as it is when ``sizes`` is empty."""
    if not sizes:
        return [save(window, path)]
    out = []
    for w, h in sizes:
        window.resize(w, h)
        for _ in range(3):  # the resize, then the layouts it sets off, then the scroll areas
            QApplication.processEvents()
        out.append(save(window, path.with_name(f"{path.stem}-{w}x{h}{path.suffix}")))
    return out


def take_screenshots(outdir: Path, photos: Sequence[Path] = (),
                     sizes: Sequence[tuple[int, int]] = ()) -> list[Path]:
    """Drive the app through its three steps and save one PNG per screen (and per size
    of ``sizes``)."""
    outdir.mkdir(parents=True, exist_ok=True)
    # the album, its cloaked copies and the settings: removed at the end (the user's own
    # photos given here are cloaked into it)
    with tempfile.TemporaryDirectory(prefix="faceguard-screens-") as scratch:
        return _take(outdir, Path(scratch), photos, sizes)


def _take(outdir: Path, scratch: Path, photos: Sequence[Path],
          sizes: Sequence[tuple[int, int]]) -> list[Path]:
    from faceguard_gui.main_window import MainWindow
    from faceguard_gui.settings import AppSettings

    config = os.environ.get("FACEGUARD_CONFIG")
    os.environ.setdefault("FACEGUARD_CONFIG", str(scratch / "config"))
    photos = [Path(p).resolve() for p in photos] or demo_photos(scratch / "album")
    models = [m for m in DEFAULT_MODELS if is_installed(m)] or list(DEFAULT_MODELS)
    # the Light preset's looks (the screens show them beside its name), fewer steps
    settings = AppSettings(preset="low", eps=8.0, steps=10, robust=False, **LOOKS["low"],
                           models=models,
                           output_folder=str(scratch / "protected"), **QUICK_AUDIT_SETTINGS)
    window = MainWindow(settings)
    window.resize(1280, 800)
    window.show()
    shots = []

    window.photos.add_paths(photos)
    wait_until(lambda: not window.jobs.busy and not window.ctx.album.unscanned())
    shots += save_sizes(window, outdir / "1-photos.png", sizes)

    window.go_to(1)
    if window.ctx.album.people:
        window.protect.set_person_ticked(0)
    else:
        window.protect.everyone.setChecked(True)
    window.protect.preview()
    wait_until(lambda: not window.jobs.busy)
    if window.protect.preview_window is not None:
        preview = window.protect.preview_window
        preview.resize(1200, 800)
        preview.zoom_to_face()  # the cloak up close
        shots.append(save(preview, outdir / "2-preview.png"))
        preview.difference_box.setChecked(True)
        shots.append(save(preview, outdir / "2-preview-difference.png"))
        preview.close()
    window.protect.protect()
    wait_until(lambda: not window.jobs.busy)
    shots += save_sizes(window, outdir / "2-protect.png", sizes)

    window.protect.next_button.click()
    window.audit.run()
    wait_until(lambda: not window.jobs.busy)
    shots += save_sizes(window, outdir / "3-audit.png", sizes)
    window.audit.results.tabs.setCurrentIndex(1)
    shots += save_sizes(window, outdir / "3-audit-protection.png", sizes)
    window.close()
    if config is None:  # the scratch folder's config goes with it
        os.environ.pop("FACEGUARD_CONFIG", None)
    return shots
