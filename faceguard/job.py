"""A cloak run as the shells describe it (:class:`CloakJob`): what to read, whom to
protect, how, and where to write; :func:`faceguard.pipeline.cloak_album` runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faceguard.album import PhotoFaces
from faceguard.identity import Person
from faceguard.io import DEFAULT_LIMIT, PixelLimit
from faceguard.settings import DEFAULT_FORMAT, DEFAULT_QUALITY, CloakSettings


@dataclass
class CloakJob:
    """A cloak run: what to read, whom to protect, how, and where to write.

    Attributes:
        inputs: photos or folders.
        photos: (photo, output-relative path) pairs already found from the inputs (e.g.
            by the CLI's checks, with :func:`faceguard.album.photo_jobs`); None: found here.
        outdir: the output folder (created if needed; never inside an input folder).
        settings: how to cloak.
        protect: reference photos (or folders, walked) of one person to protect.
        protect_people: people to protect given directly (e.g. picked among
            :func:`faceguard.album.find_people`'s clusters).
        protect_all: cloak every face.
        gallery: a folder of other people (one sub-folder each) for the local classifier
            and decoys.
        mask: a universal mask file to apply instead of optimising.
        format, quality, metadata: how outputs are written (see :func:`faceguard.io.save_photo`).
        max_side: photos shrunk to this long side (px), cloaked and written so.
        resume: skip photos the manifest says are done with identical settings.
        overwrite: replace existing output files.
        recursive, limit: how inputs are read (folders walked; the pixel limit).
        match_threshold: a face is a protected person when its mean normalised
            distance to them is below this (1.0 = each model's own threshold; 0.9, the
            album clustering's cut, keeps look-alikes out).
        scanned: faces already detected and embedded per photo path (e.g. by the GUI's
            Photos step, with the same models): reused instead of detecting again.
        face_choices: photo path -> face index (in ``scanned``'s order) -> True to cloak
            that face whoever it is, False to leave it as it is, whatever the people say.
    """

    inputs: list[Path]
    outdir: Path
    settings: CloakSettings = field(default_factory=CloakSettings)
    photos: list[tuple[Path, Path]] | None = None
    protect: list[Path] | None = None
    protect_people: list[Person] | None = None
    protect_all: bool = False
    gallery: Path | None = None
    mask: Path | None = None
    format: str = DEFAULT_FORMAT
    quality: int = DEFAULT_QUALITY
    metadata: str = "strip"
    max_side: int | None = None
    resume: bool = False
    overwrite: bool = False
    recursive: bool = True
    limit: PixelLimit = DEFAULT_LIMIT
    match_threshold: float = 0.9
    scanned: dict[Path, PhotoFaces] | None = None
    face_choices: dict[Path, dict[int, bool]] | None = None
