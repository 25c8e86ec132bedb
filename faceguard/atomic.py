"""Atomic JSON files: a temporary file in the same folder, then a rename, so that a
crash or Ctrl-C never leaves half a file (the run manifest, the app's settings); and
:func:`ctrl_c_deferred` for files that must be written together."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_json(path: Path, data, indent: int = 1) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (its folder is created if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=indent)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


@contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Hold Ctrl-C back while files that belong together are written (a photo and its
    manifest entry), so that an interrupted run never leaves an output the manifest
    does not know."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals (the GUI cancels by closing the job)
        return
    caught: list = []
    previous = signal.signal(signal.SIGINT, lambda *args: caught.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt
