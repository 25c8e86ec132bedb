"""The run manifest: a JSON record in the output folder of what a cloak run did.

It is rewritten atomically after every photo, so after Ctrl-C it describes exactly
the complete files on disk, and ``--resume`` can skip what is already done.

Nothing private next to the photos: the output folder is what people select and
upload, so the manifest has a hidden name (:data:`MANIFEST_NAME`), universal masks
go into a hidden folder beside it (:data:`PRIVATE_FOLDER`), and it records no
absolute path. Each photo's ``input`` is its path below its input folder (``root``,
an index into ``inputs``), and the input folders, reference photos and mask are
recorded relative to the output folder, or not at all when that relative path would
climb through the user's home folder or the file-system root (the audit then asks
for the originals' folder). Manifests of earlier versions (the visible name, absolute
paths) still load and are rewritten in this form on the next save.

Each photo entry lists its faces as :class:`FaceRecord` dictionaries: per recognizer,
whether it still recognises the face and whether the cloak was made on it, and the
visibility figures. The CLI, the app and the audit read these facts from the record
(:meth:`FaceRecord.from_dict`, :func:`fooled`) instead of deriving them again.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path

from faceguard import __version__
from faceguard.atomic import write_json

MANIFEST_NAME = ".faceguard-manifest.json"
#: the visible name of earlier versions (still read; replaced on the next save)
OLD_MANIFEST_NAME = "faceguard-manifest.json"
#: the hidden folder, next to the manifest, for the run's files that are not photos and
#: must not be uploaded with them (universal masks: they let anyone re-make the cloak)
PRIVATE_FOLDER = ".faceguard"
NOBODY = "self"  #: whom a face cloaked with protect-all is recorded as: nobody's name


def find_mask(path: Path) -> Path:
    """A mask file as the user named it: where it is, else where a later run moved it
    (earlier versions saved masks next to the photos; now they are in
    :data:`PRIVATE_FOLDER`)."""
    path = Path(path)
    moved = path.parent / PRIVATE_FOLDER / path.name
    return moved if not path.exists() and moved.is_file() else path


def manifest_file(folder: Path) -> Path | None:
    """The manifest file of ``folder`` (either name), or None when it has none."""
    for name in (MANIFEST_NAME, OLD_MANIFEST_NAME):
        if (path := Path(folder) / name).is_file():
            return path
    return None


def private_place(target: Path, folder: Path) -> str | None:
    """``target`` as a path relative to ``folder``, when that names nothing private.

    None when the two share no folder below the user's home folder's parent (the relative
    path would then spell out the home folder, i.e. the user's name) or lie on different drives.

    >>> private_place(Path.home() / "Pictures" / "trip", Path.home() / "trip-protected")
    '../Pictures/trip'
    """
    target, folder = Path(target).resolve(), Path(folder).resolve()
    try:
        common = Path(os.path.commonpath([target, folder]))
    except ValueError:  # different drives
        return None
    if common == Path(common.anchor) or common in Path.home().resolve().parents:
        return None
    return Path(os.path.relpath(target, folder)).as_posix()


def split_input(path: Path, rel: str) -> tuple[Path, str]:
    """(input folder, path below it) of a photo whose output-relative key is ``rel``."""
    path, parts = Path(path), Path(rel).parts
    if len(path.parts) > len(parts) and path.parts[-len(parts):] == parts:
        return Path(*path.parts[:-len(parts)]), Path(rel).as_posix()
    return path.parent, path.name


def versions() -> dict[str, str]:
    """Versions of FaceGuard and the libraries that decide the numbers."""
    import numpy
    import PIL
    import torch

    return {"faceguard": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__, "pillow": PIL.__version__}


@dataclass
class FaceRecord:
    """One face of a photo, as the manifest records it (``photos[rel]["faces"][i]``).

    Attributes:
        box, landmarks: where the face is, in photo pixels.
        protected: whether it was cloaked.
        person: whom it was cloaked as (:data:`NOBODY` with protect-all); method: how.
        quality: the visibility figures measured on the written file, as the pipeline
            measured them (e.g. ``ssim``, ``psnr``, ``linf``): stored as given.
        distance_before, distance_after: recognizer -> distance of the clean face and of
            the written face to the person, in the recognizer's own metric.
        thresholds: recognizer -> its same-person threshold (below it: recognised).
        made_on: recognizer -> True when the cloak was computed against it (the
            white-box threat), False when it is only measured (transfer).
        recognised: recognizer -> whether it still recognises the written face
            (``distance_after < threshold``; see :meth:`measured`).
        seconds: time spent on the face.
    """

    box: list[float]
    landmarks: list[list[float]]
    protected: bool
    person: str | None = None
    method: str | None = None
    quality: dict[str, float] = field(default_factory=dict)
    distance_before: dict[str, float] = field(default_factory=dict)
    distance_after: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    made_on: dict[str, bool] = field(default_factory=dict)
    recognised: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0

    def measured(self, distance_after: dict[str, float], thresholds: dict[str, float],
                 made_on: dict[str, bool], quality: dict[str, float]) -> None:
        """Record what was measured on the written file; ``recognised`` follows from it."""
        self.distance_after = distance_after
        self.thresholds = thresholds
        self.made_on = made_on
        self.quality = quality
        self.recognised = {m: d < thresholds[m] for m, d in distance_after.items()
                           if m in thresholds}

    def matched_before(self, model: str) -> bool:
        """Whether ``model`` took the clean face for the person (True when not known)."""
        if model in self.distance_before and model in self.thresholds:
            return self.distance_before[model] < self.thresholds[model]
        return True

    def took(self, model: str) -> bool:
        """Whether ``model`` took the face for the person, clean or cloaked (True when
        not known): one that never did says nothing about the cloak."""
        return self.matched_before(model) or self.recognised.get(model, True)

    def distance_words(self, model: str, arrow: str = "->") -> str:
        """How far ``model`` sees the face moved from its person, and what that means:
        "0.29 -> 0.54 (same person below 0.60: still recognised)". The distances alone
        say nothing to a user: each recognizer has its own scale."""
        before, after = self.distance_before[model], self.distance_after.get(model)
        threshold = self.thresholds.get(model)
        # two decimals, or three where two would show a distance equal to its threshold
        # ("0.45 (same person below 0.45: not recognised)" read as a contradiction)
        places = 3 if threshold is not None and any(
            d is not None and f"{d:.2f}" == f"{threshold:.2f}" for d in (before, after)) else 2
        text = f"{before:.{places}f}" + (f" {arrow} {after:.{places}f}" if after is not None
                                         else "")
        if threshold is not None and model in self.recognised:
            text += (f" (same person below {threshold:.{places}f}: "
                     + ("still recognised)" if self.recognised[model] else "not recognised)"))
        return text

    def distances_words(self) -> str:
        """:meth:`distance_words` of every recognizer measured after the cloak, each
        named: "dlib 0.29 -> 0.54 (...); faceres ..." (the CLI's and the demo's line)."""
        return "; ".join(f"{m} {self.distance_words(m)}" for m in self.distance_after)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FaceRecord:
        """A record from the manifest's JSON (older manifests lack the newer keys)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def why_copied(entry: dict) -> str:
    """Why a photo's manifest entry was copied without a cloak, in words: no face was
    found in it at all (a face in profile, or smaller than the detector's least size, is
    not found: the user should know to look), or none of its faces is one to
    protect."""
    return "no face found" if not entry.get("faces") else "no protected face"


def _visible_files(folder: Path) -> Iterator[Path]:
    """The files in ``folder`` and below, hidden files and folders left out."""
    for root, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if not f.startswith(".")]
        yield from (Path(root, name) for name in files if not name.startswith("."))


def file_stat(path: Path) -> list[int]:
    """[size in bytes, modification time in ns] of a photo as read or written: a photo
    changed (or replaced by another of the same name) since a run, or its output, is not
    done (:meth:`Manifest.is_done`)."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


class Manifest:
    """A run manifest bound to an output folder.

    Attributes:
        data: the JSON content: ``settings``, ``versions``, ``seed``, ``people``,
            ``photos`` (output-relative path -> entry) and timing.
    """

    def __init__(self, folder: Path, data: dict | None = None) -> None:
        self.folder = Path(folder)
        self.data = data if data is not None else {"photos": {}}
        self.data.setdefault("inputs", [])

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST_NAME

    @property
    def private_folder(self) -> Path:
        """Where the run keeps files that are not to be uploaded (:data:`PRIVATE_FOLDER`)."""
        return self.folder / PRIVATE_FOLDER

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        """The manifest of ``folder`` (an older one migrated), or an empty one."""
        path = manifest_file(folder)
        if path is None:
            return cls(folder)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: unreadable manifest ({exc}); move it away to start "
                             "the folder's record anew, or choose another output folder"
                             ) from None
        data.setdefault("photos", {})
        manifest = cls(folder, data)
        manifest._migrate()
        return manifest

    def _migrate(self) -> None:
        """Absolute paths of earlier versions -> the private form (see the module doc)."""
        for rel, entry in self.photos.items():
            if "root" not in entry and "input" in entry:
                entry.update(self._input(Path(entry["input"]), rel))
        if refs := self.data.get("references"):  # relative ones are relative to the folder
            self.data["references"] = self.places([self.folder / r for r in refs])
        settings = self.data.get("settings", {})
        if isinstance(settings.get("mask"), str):
            settings["mask"] = self.place(self.folder / settings["mask"])

    def place(self, path: Path) -> str:
        """A file's path as recorded: relative to the output folder, else its name only."""
        return private_place(path, self.folder) or Path(path).name

    def places(self, paths: Sequence[Path | str]) -> list[str]:
        """Paths relative to the output folder; those that would name private folders
        are left out."""
        return [p for p in (private_place(Path(x), self.folder) for x in paths) if p]

    def _input(self, path: Path, rel: str) -> dict:
        """``{"input": path below its input folder, "root": that folder's index}``."""
        root, below = split_input(path, rel)
        place = private_place(root, self.folder)
        inputs = self.data["inputs"]  # None: a folder whose place would name private ones
        if place not in inputs:
            inputs.append(place)
        return {"input": below, "root": inputs.index(place)}

    def input_path(self, entry: dict) -> Path | None:
        """Where a photo entry's original is, or None when its folder is not recorded."""
        roots = self.data["inputs"]
        root = roots[entry["root"]] if "root" in entry and entry["root"] < len(roots) else "."
        return None if root is None else self.folder / root / entry["input"]

    @property
    def photos(self) -> dict[str, dict]:
        """Output-relative path -> the photo's entry."""
        return self.data["photos"]

    def faces(self, rel: str) -> list[FaceRecord]:
        """The faces of a photo's entry as records."""
        return [FaceRecord.from_dict(f) for f in self.photos[rel].get("faces", [])]

    def wrote(self) -> frozenset[Path]:
        """The outputs earlier runs wrote, which ``--resume`` may write over: those
        recorded, and, when the last run never ended (killed between writing a photo and
        recording it), those written after it started. Call before :meth:`start`."""
        outputs = {self.folder / e["output"] for e in self.photos.values() if "output" in e}
        try:
            since = datetime.strptime(self.data["started"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
        except (KeyError, ValueError):
            return frozenset(outputs)
        if self.data.get("ended", True):  # it ended (or is too old to say): newer files
            return frozenset(outputs)  # are the user's
        for path in _visible_files(self.folder):
            with contextlib.suppress(OSError):  # "started" is to the second: a file of that
                # second may be older than the run, which writes none so soon
                if path.stat().st_mtime >= since + 1:
                    outputs.add(path)
        return frozenset(outputs)

    def written_since(self, started_ns: int) -> int:
        """How many photos it records as written since ``started_ns`` (``time.time_ns()``
        at a run's start): one kept as the run was stopped may have had no event."""
        return sum(e.get("output_stat", [0, 0])[1] >= started_ns for e in self.photos.values())

    def others(self) -> list[Path]:
        """The files in the folder no run wrote (the user's own), hidden ones left out."""
        wrote = self.wrote()
        return [path for path in _visible_files(self.folder) if path not in wrote]

    def start(self, settings: dict, digest: str, extra: dict | None = None) -> None:
        self.data.update({"format": "faceguard-manifest/1", "settings": settings,
                          "settings_digest": digest, "versions": versions(),
                          "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "ended": None,
                          **(extra or {})})

    def end(self) -> None:
        """Record that the run ended (done, stopped or failed: no photo of it is written
        and not recorded), so that a file put in the folder later is not taken for one
        of its outputs (:meth:`wrote`)."""
        self.data["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.save()

    def is_done(self, rel: str, digest: str, source: Path | None = None,
                whom: Sequence[str | None] | None = None) -> bool:
        """True when ``rel`` was completed with the same settings (``digest``) and its
        output exists, unchanged since (:func:`file_stat`); where given, from the same
        ``source`` photo, unchanged since, and with the same faces cloaked as the same
        people (``whom``: per face, :meth:`faceguard.planning.Plan.whom`). A run that
        protects one more person, or reads another album's photo of the same name, redoes
        it, and so does one whose output was replaced (by its original, say)."""
        entry = self.data["photos"].get(rel)
        output = self.folder / entry["output"] if entry and "output" in entry else None
        if not (entry and entry.get("settings_digest") == digest
                and entry.get("status") in ("cloaked", "copied") and output.is_file()):
            return False
        if "output_stat" in entry and entry["output_stat"] != file_stat(output):
            return False
        if source is not None:
            read = self.input_path(entry)
            if read is not None and read.resolve() != source.resolve():
                return False
            try:
                if "input_stat" in entry and entry["input_stat"] != file_stat(source):
                    return False
            except OSError:  # gone since the scan: redone, and said when it is read
                return False
        return whom is None or [f.person if f.protected else None
                                for f in self.faces(rel)] == list(whom)

    def record(self, rel: str, entry: dict) -> None:
        """Record a photo's outcome; a failure never replaces an earlier complete entry.

        The entry's ``input`` (the photo's path as read) is recorded in the private form,
        and so is an ``error`` that names it or the output folder (the user's home).
        """
        if "error" in entry:  # "/home/them/album/a.jpg: file is empty" -> "a.jpg: ..."
            error = entry["error"].replace(os.fspath(self.folder), ".")
            if "input" in entry:
                error = error.replace(os.fspath(entry["input"]), rel)
            entry = entry | {"error": error}
        if "input" in entry:
            entry = entry | self._input(Path(entry["input"]), rel)
        old = self.data["photos"].get(rel)
        if entry.get("status") == "failed" and old and old.get("status") != "failed":
            old["last_error"] = entry.get("error")
        else:
            self.data["photos"][rel] = entry
        self.save()

    def _move_masks(self) -> None:
        """Masks that earlier versions saved next to the photos -> the private folder."""
        moved = []
        for name in self.data.get("masks", []):
            if "/" not in name:
                old, new = self.folder / name, self.private_folder / name
                if old.is_file():
                    new.parent.mkdir(mode=0o700, exist_ok=True)
                    os.replace(old, new)
                name = f"{PRIVATE_FOLDER}/{name}"
            moved.append(name)
        if moved:
            self.data["masks"] = moved

    def save(self) -> None:
        """Write the manifest (atomically); one of an earlier version's name goes, and
        masks saved next to the photos by earlier versions move to the private folder."""
        self._move_masks()
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(self.path, self.data, one_per_line="photos")  # a photo per line
        (self.folder / OLD_MANIFEST_NAME).unlink(missing_ok=True)
