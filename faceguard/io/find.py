"""Finding the photos in folders, and saying which files were skipped and why."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from faceguard.io.photo import SUPPORTED_SUFFIXES
from faceguard.words import plural


@dataclass(frozen=True)
class Skipped:
    """A file (or folder) a search left out, and why, in plain words."""

    path: Path
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "reason": self.reason}


@dataclass
class Found:
    """What a search found: the photos, and everything else it left out."""

    photos: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def search(paths: Iterable[str | os.PathLike[str]], recursive: bool = True) -> Found:
    """The photos to process, in a stable order, without duplicates, and the skipped files.

    Files named explicitly are always taken, whatever their suffix (and even if
    missing), so that :func:`~faceguard.io.load_photo` can report them. Folders are
    walked (into sub-folders if ``recursive``) for :data:`SUPPORTED_SUFFIXES`,
    case-insensitively, sorted; every other file, hidden file or folder (names starting
    with ".") and, without ``recursive``, sub-folder is skipped with its reason.
    """
    found = Found()
    candidates: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            candidates.append(path)
            continue
        in_folder: list[Path] = []

        def unreadable(error: OSError) -> None:  # os.walk left it out without a word
            found.skipped.append(Skipped(Path(error.filename),
                                         f"cannot be read ({error.strerror or error})"))

        for root, dirs, files in os.walk(path, onerror=unreadable):
            dirs.sort()
            for d in dirs:
                if Path(root, d).is_symlink():  # os.walk does not follow it: say so
                    found.skipped.append(Skipped(Path(root, d), "a link to a folder, not "
                                                 "followed (give the folder itself)"))
                elif d.startswith(".") or not recursive:
                    why = "hidden" if d.startswith(".") else "not searched"
                    found.skipped.append(Skipped(Path(root, d), why))
            dirs[:] = ([d for d in dirs if not d.startswith(".")
                        and not Path(root, d).is_symlink()] if recursive else [])
            for f in sorted(files):
                reason = _skip_reason(Path(root, f))
                if reason is None:
                    in_folder.append(Path(root, f))
                else:
                    found.skipped.append(Skipped(Path(root, f), reason))
        candidates += sorted(in_folder)
    seen: set[Path] = set()
    for path in candidates:
        key = resolved(path)
        if key not in seen:
            seen.add(key)
            found.photos.append(path)
    return found


def resolved(path: str | os.PathLike[str]) -> Path:
    """``path`` with its links followed; where a link loops (``resolve`` raises on it),
    its absolute path, to fail as one photo rather than stop the run."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(path).absolute()


def find_photos(paths: Iterable[str | os.PathLike[str]], recursive: bool = True) -> list[Path]:
    """The photos of :func:`search`, without the skipped files."""
    return search(paths, recursive).photos


def _skip_reason(path: Path) -> str | None:
    """Why a file in a folder is not a photo to protect (None: it is one)."""
    if path.name.startswith("."):
        return "hidden"
    suffix = path.suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return None
    if suffix == ".gif":
        return "animated GIF" if _frames(path) > 1 else "GIF (256 colours cannot hold a cloak)"
    return "not a photo FaceGuard reads"


def _frames(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    except (OSError, ValueError):
        return 1


def skipped_lines(skipped: Iterable[Skipped]) -> list[str]:
    """One line per reason, naming every file: "skipped 2 files: animated GIF (a.gif, b.gif)"."""
    by_reason: dict[str, list[str]] = {}
    for s in skipped:
        by_reason.setdefault(s.reason, []).append(s.path.name + ("/" if s.path.is_dir() else ""))
    lines = []
    for reason, names in by_reason.items():
        noun = "folder" if all(n.endswith("/") for n in names) else "file"
        lines.append(f"skipped {plural(len(names), noun)}: {reason} ({', '.join(names)})")
    return lines
