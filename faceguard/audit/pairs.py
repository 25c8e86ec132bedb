"""Which cloaked photo goes with which original, for the audit: from the cloak run's
manifest (which also records the cloaked faces, their visibility and names), or by
relative path when there is none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from faceguard.face import Face
from faceguard.io import find_photos
from faceguard.manifest import MANIFEST_NAME, Manifest, file_stat, manifest_file


class AuditError(Exception):
    """A problem with the whole audit: one line for the user."""


class Folders(Protocol):
    """The two folders an audit pairs (an :class:`~faceguard.audit.run.AuditJob`), and
    the originals as a shell that protected them knows them (output-relative path ->
    photo), for a manifest that keeps their folder private."""

    cloaked: Path
    originals: Path | None
    original_photos: Mapping[Path, Path] | None


#: the most photos copied without a cloak that an audit reads for its gallery, spread
#: over the album: enough people to pick from, at a bounded cost (about 0.3 s a photo)
MOST_COPIED = 200

#: how to say where the originals are, in the command line's words and the app's
GIVE_ORIGINALS = "(--originals DIR; in the app, Originals)"


@dataclass
class Pair:
    """An original photo, its cloaked version, the cloaked faces (None: find them), and
    as the cloak run recorded them (empty when unknown) their visibility figures and
    whom each was protected as. A photo the run copied without a cloak is its own pair
    with no cloaked face: its faces are clean faces of the album's people."""

    original: Path
    cloaked: Path
    faces: list[Face] | None = None
    quality: list[dict] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)

    @property
    def copied(self) -> bool:
        """Whether the photo was copied without a cloak (one file, clean faces only)."""
        return self.original == self.cloaked


#: said when the audit does not know which recognizers the cloak was made on
MODELS_UNKNOWN = ("The cloak's models are unknown (no manifest): no recognizer is marked as "
                  "not made on.")


def find_pairs(job: Folders) -> tuple[list[Pair], dict]:
    """Pairs of (original, cloaked) photos and the cloak run's manifest, or without one
    ``{"unmatched": [one line per cloaked photo no original was found for]}``; either
    with ``"notes"`` on what the manifest says, or lacks, that the audit should say."""
    for folder in (job.cloaked, job.originals):
        if folder is not None and not folder.exists():
            raise AuditError(f"no such folder: {folder}")
    if manifest_file(job.cloaked) is not None:
        try:
            manifest = Manifest.load(job.cloaked)
        except ValueError as exc:
            raise AuditError(str(exc)) from None
        pairs, copied = [], []
        made_on = set(manifest.data.get("models", []))  # the last run's, and each face's:
        # a folder resumed with other recognizers holds faces made on either
        for rel, entry in manifest.photos.items():
            if entry.get("status") != "cloaked":
                # a copied photo's clean faces widen the gallery: without them top-1 picks
                # between the protected person and whatever else their photos hold (a
                # photo that failed wrote nothing)
                written = job.cloaked / entry["output"] if "output" in entry else None
                if entry.get("faces") and written is not None and written.is_file():
                    copied.append(Pair(written, written, []))
                continue
            records = [f for f in manifest.faces(rel) if f.protected]
            made_on.update(m for f in records for m, on in f.made_on.items() if on)
            faces = [Face(tuple(f.box), np.asarray(f.landmarks), 1.0) for f in records]
            cloaked = job.cloaked / entry["output"]
            # the run's figures, unless the file was changed since (then measured again)
            kept = "output_stat" not in entry or not cloaked.is_file() \
                or entry["output_stat"] == file_stat(cloaked)
            pairs.append(Pair(_original(manifest, rel, entry, job), cloaked, faces,
                              [f.quality for f in records] if kept else [],
                              [f.person for f in records]))
        data = dict(manifest.data, references=[str(job.cloaked / r) for r in
                                               manifest.data.get("references", [])])
        data["copied"], data["models"] = len(copied), sorted(made_on)
        # a folder resumed with other settings: the settings recorded are the last run's
        last = manifest.data.get("settings_digest")
        other = sum(e.get("status") == "cloaked" and e.get("settings_digest") != last
                    for e in manifest.photos.values())
        data["notes"] = ([] if made_on else [MODELS_UNKNOWN]) + (
            [f"{other} of the {len(pairs)} cloaked photos {'was' if other == 1 else 'were'} "
             "cloaked by an earlier run with other settings: the method, preset and steps "
             "said are the last run's."]
            if other else [])
        if pairs and job.originals is None and not any(p.original.is_file() for p in pairs):
            raise AuditError(f"the originals are no longer where the cloak run read them "
                             f"(such as {os.path.normpath(pairs[0].original)}): give their "
                             f"folder {GIVE_ORIGINALS}")
        if not pairs:
            raise AuditError(f"no cloaked photo in {job.cloaked}: its cloak run cloaked no "
                             "face (it copied, or could not read, every photo)")
        step = max(1, -(-len(copied) // MOST_COPIED))
        return pairs + copied[::step], data
    if job.originals is None:
        raise AuditError(f"{job.cloaked} has no {MANIFEST_NAME}: give the originals' folder "
                         f"{GIVE_ORIGINALS}")
    # by name (a.png, or a.webp for a.webp.png written where a.png was too), else by the
    # name less its suffix (a.jpg written as a.png)
    by_name, by_stem = {}, {}
    for p in find_photos([job.originals]):
        rel = _relative(p, job.originals)
        by_name[rel.as_posix()] = p
        by_stem.setdefault(rel.with_suffix("").as_posix(), p)
    pairs, unmatched = [], []
    for path in find_photos([job.cloaked]):
        rel = _relative(path, job.cloaked)
        stem = rel.with_suffix("").as_posix()
        original = by_name.get(rel.as_posix()) or by_name.get(stem) or by_stem.get(stem)
        if original is not None:
            pairs.append(Pair(original, path))
        else:
            unmatched.append(f"{path}: no original of its name in {job.originals}")
    return pairs, {"unmatched": unmatched, "notes": [MODELS_UNKNOWN]}


def _original(manifest: Manifest, rel: str, entry: dict, job: Folders) -> Path:
    """Where a manifest entry's original is: as recorded, else as the shell knows it (if
    unchanged since the run read it), else in ``job.originals``."""
    recorded = manifest.input_path(entry)
    if recorded is not None and recorded.is_file():
        return recorded
    known = (job.original_photos or {}).get(Path(rel))
    if known is not None and _as_read(known, entry):
        return known
    if job.originals is not None:
        below = job.originals / entry["input"]
        return below if below.is_file() else job.originals / Path(entry["input"]).name
    if recorded is not None:  # gone since: said once for every photo (find_pairs)
        return recorded
    raise AuditError(f"{manifest.path.name} does not say where the originals are (their "
                     f"folder is kept private): give it {GIVE_ORIGINALS}")


def _as_read(photo: Path, entry: dict) -> bool:
    """Whether ``photo`` is the file the cloak run read (same size and time), as far as
    the entry recorded it: a photo replaced since is not its original."""
    try:
        stat = file_stat(photo)
    except OSError:
        return False
    return entry.get("input_stat", stat) == stat


def _relative(path: Path, root: Path) -> Path:
    return path.relative_to(root) if root.is_dir() else Path(path.name)


def changed_faces(original: np.ndarray, cloaked: np.ndarray, faces: list[Face]) -> list[Face]:
    """The faces whose pixels differ (the cloaked ones), by mean absolute change."""
    out = []
    for f in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in f.box)
        diff = np.abs(original[y0:y1, x0:x1] - cloaked[y0:y1, x0:x1]).mean()
        if diff > 0.5 / 255:
            out.append(f)
    return out
