"""Entry point of the bundled ``faceguard`` command (PyInstaller runs this as __main__)."""

import multiprocessing

from faceguard.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen program must do this before any pool starts
    raise SystemExit(main())
