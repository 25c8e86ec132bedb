"""Face recognizers as differentiable torch modules, behind one registry.

    >>> from faceguard.models import load_recognizer
    >>> dlib = load_recognizer("dlib")

The names below are imported when first asked for, so that ``faceguard models list``
reads the catalogue without importing torch (0.18 s instead of 1.7 s on 2 cores).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faceguard.models.base import Recognizer
    from faceguard.models.catalogue import ModelError, is_installed
    from faceguard.models.install import install
    from faceguard.models.registry import available_models, load_recognizer

#: name -> the module it lives in
_WHERE = {"Recognizer": "base", "ModelError": "catalogue", "is_installed": "catalogue",
          "install": "install", "available_models": "registry", "load_recognizer": "registry"}

__all__ = ["ModelError", "Recognizer", "available_models", "install", "is_installed",
           "load_recognizer"]


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"faceguard.models.{_WHERE[name]}"), name)
