"""Entry point of the bundled ``faceguard-gui`` program (PyInstaller runs this as __main__)."""

import multiprocessing

from faceguard_gui.app import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen program must do this before any pool starts
    raise SystemExit(main())
