"""The run manifest: a JSON record in the output folder of what a cloak run did.

It is rewritten atomically after every photo, so after Ctrl-C it describes exactly
the complete files on disk, and ``--resume`` can skip what is already done.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from faceguard import __version__
from faceguard.atomic import write_json

MANIFEST_NAME = "faceguard-manifest.json"


def versions() -> dict[str, str]:
    """Versions of FaceGuard and the libraries that decide the numbers."""
    import numpy
    import PIL
    import torch

    return {"faceguard": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__, "pillow": PIL.__version__}


class Manifest:
    """A run manifest bound to an output folder.

    Attributes:
        data: the JSON content: ``settings``, ``versions``, ``seed``, ``people``,
            ``photos`` (output-relative path -> entry) and timing.
    """

    def __init__(self, folder: Path, data: dict | None = None) -> None:
        self.folder = Path(folder)
        self.data = data if data is not None else {"photos": {}}

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST_NAME

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        """The manifest of ``folder``, or an empty one when there is none."""
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            return cls(folder)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: unreadable manifest ({exc})") from None
        data.setdefault("photos", {})
        return cls(folder, data)

    def start(self, settings: dict, digest: str, extra: dict | None = None) -> None:
        self.data.update({"format": "faceguard-manifest/1", "settings": settings,
                          "settings_digest": digest, "versions": versions(),
                          "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra or {})})

    def is_done(self, rel: str, digest: str) -> bool:
        """True when ``rel`` was completed with the same settings and its output exists."""
        entry = self.data["photos"].get(rel)
        return bool(entry and entry.get("settings_digest") == digest
                    and entry.get("status") in ("cloaked", "copied")
                    and (self.folder / entry["output"]).is_file())

    def record(self, rel: str, entry: dict) -> None:
        """Record a photo's outcome; a failure never replaces an earlier complete entry."""
        old = self.data["photos"].get(rel)
        if entry.get("status") == "failed" and old and old.get("status") != "failed":
            old["last_error"] = entry.get("error")
        else:
            self.data["photos"][rel] = entry
        self.save()

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(self.path, self.data)
