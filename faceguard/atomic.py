"""Atomic JSON files: a temporary file in the same folder, then a rename, so that a
crash or Ctrl-C never leaves half a file (the run manifest, the app's settings)."""

from __future__ import annotations

import json
import os
import tempfile
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
