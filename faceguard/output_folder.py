"""The output folder a run writes into: where it may be (:func:`check_outdir`), and
making it (:func:`make_outdir`), each refusal one line for the user."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from faceguard.album import AlbumError
from faceguard.io import PhotoError, resolved


def check_outdir(outdir: Path, inputs: Sequence[Path], uploaded: bool = True) -> None:
    """Raise :class:`AlbumError` when ``outdir`` cannot be a folder (it, or a folder above
    it, is a file), or is an input folder (``inputs``: the photos and folders read, the
    album's and the reference photos), inside one, or the folder of a photo given by
    itself: what is written there (cloaked photos, face chips) would be read as new photos
    next time, uploaded with the album, or written over the originals. Nor may it hold an
    input when it is ``uploaded`` (a cloak run's): it would upload the originals too."""
    existing = next(p for p in (outdir, *outdir.parents) if p.exists() or p == Path(p.anchor))
    if existing.exists() and not existing.is_dir():
        raise AlbumError(f"the output folder {outdir} cannot be made: {existing} is a file")
    out = resolved(outdir)
    for given in inputs:
        src = resolved(given)
        if src.is_dir() and (out == src or src in out.parents):
            raise AlbumError(f"the output folder {outdir} must not be inside the input "
                             f"folder {given} (originals are never touched)")
        if src.is_file() and out == src.parent:
            raise AlbumError(f"the output folder {outdir} must not be the folder of the "
                             f"photo {given}: choose another (originals are never touched)")
        if uploaded and out in src.parents:
            raise AlbumError(f"the output folder {outdir} must not hold {given}: uploaded, "
                             "it would upload the originals too; choose another")


def check_kept_private(outdir: Path, why: str) -> None:
    """Raise :class:`AlbumError` when ``outdir`` is, or is inside, a cloak run's output
    folder (it holds a manifest): the folder to upload, which must not take along what is
    written here (``why``: what it shows, e.g. the uncloaked faces)."""
    from faceguard.manifest import manifest_file

    out = resolved(outdir)
    for folder in (out, *out.parents):
        if manifest_file(folder) is not None:  # an earlier version's name too
            raise AlbumError(f"the output folder {outdir} must not be inside {folder}, the "
                             f"cloaked photos' folder to upload: {why}")


def make_outdir(outdir: Path) -> None:
    """Make ``outdir`` and the folders above it; :class:`AlbumError` where the system
    refuses (a read-only disk, a folder such as /proc), or it cannot be written into."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AlbumError(f"the output folder {outdir} cannot be made "
                         f"({e.strerror or e})") from None
    try:  # a read-only folder failed on the manifest's temporary file, named instead
        tempfile.TemporaryFile(dir=outdir).close()
    except OSError as e:
        raise AlbumError(f"the output folder {outdir} cannot be written into "
                         f"({e.strerror or e})") from None


def make_photo_folder(out_path: Path, outdir: Path) -> None:
    """Make the folder of one output photo, below ``outdir``; :class:`PhotoError` naming
    the photo where a link leads out of ``outdir`` (its writes would land wherever the
    link points: into the originals, once) or a file stands where a folder goes."""
    folder = out_path.parent
    for part in [folder, *folder.parents]:
        if part == outdir or outdir not in part.parents:
            break
        if part.is_symlink():
            raise PhotoError(out_path, f"not written: {part} is a link, and the output "
                                       "folder's photos are written only inside it")
        if part.exists() and not part.is_dir():
            raise PhotoError(out_path, f"not written: {part} is a file, where its folder goes")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PhotoError(out_path, f"its folder cannot be made ({e.strerror or e})") from None


class Held:
    """An output folder held by this run (:func:`hold`): let go when closed, or when the
    run's generator that holds it ends."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with the descriptor
            self._fd = None

    def __del__(self) -> None:
        self.close()


def hold(outdir: Path) -> Held:
    """Hold ``outdir`` for one run: :class:`AlbumError` when another run holds it. Two
    runs into one folder each kept their own manifest and wrote it whole after every
    photo: the last one's won, and could call another run's plain copies "cloaked".
    (Not held where the system or the disk has no ``flock``, as on Windows.)"""
    try:
        import fcntl
    except ImportError:
        return Held(None)
    try:
        fd = os.open(outdir, os.O_RDONLY)
    except OSError:  # a folder that can be written into but not read: not held
        return Held(None)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlbumError(f"another FaceGuard run is writing into {outdir}: wait for it to "
                         "finish, or choose another output folder") from None
    except OSError:  # no locks there (an NFS mount without them): not held
        os.close(fd)
        return Held(None)
    return Held(fd)
