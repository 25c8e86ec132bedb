"""Starting the app: ``faceguard-gui [PHOTO_OR_FOLDER ...]``.

``faceguard-gui --screenshot DIR [PHOTO ...]`` renders each step's screen to a PNG
offscreen instead (see :mod:`faceguard_gui.screenshot`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from faceguard import __version__
from faceguard.memory import keep_freed_memory
from faceguard.paths import RESOURCES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="faceguard-gui", description="FaceGuard desktop app")
    p.add_argument("paths", nargs="*", type=Path, metavar="PHOTO_OR_FOLDER",
                   help="photos or folders to open")
    p.add_argument("--screenshot", type=Path, metavar="DIR",
                   help="render each step's screen to DIR/*.png offscreen and quit")
    p.add_argument("--size", action="append", metavar="WxH",
                   help="window size of the screenshots, e.g. 1024x680; repeat for several "
                        "(names get a -WxH suffix; default 1280x800)")
    p.add_argument("--version", action="version", version=f"faceguard-gui {__version__}")
    return p.parse_args(argv)


def app_icon():
    """The app icon (``faceguard/resources/icon.svg``, PNG as fallback)."""
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for name in ("icon.svg", "icon.png"):
        if (RESOURCES / name).is_file():
            icon.addFile(str(RESOURCES / name))
    return icon


def make_app(argv: list[str] | None = None):
    """The QApplication (created once), named and with the app icon."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("FaceGuard")
    app.setApplicationDisplayName("FaceGuard")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(app_icon())
    return app


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    keep_freed_memory()  # before Qt starts its threads: one heap for all of them
    app = make_app()
    if args.screenshot is not None:
        from faceguard_gui.screenshot import take_screenshots

        try:
            sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.size or []]
        except ValueError:
            print("faceguard-gui: --size must look like 1024x680", file=sys.stderr)
            return 2
        for path in take_screenshots(args.screenshot, args.paths, sizes):
            print(path)
        return 0
    from faceguard_gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    if args.paths:
        window.photos.add_paths([p.resolve() for p in args.paths])
    return app.exec()
