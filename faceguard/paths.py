"""Where FaceGuard keeps things: bundled resources, the model cache, user settings."""

from __future__ import annotations

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


def config_dir() -> Path:
    """Per-user settings folder (GUI settings, recent folders)."""
    if env := os.environ.get("FACEGUARD_CONFIG"):
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("faceguard", appauthor=False))
