"""Face recognizers as differentiable torch modules, behind one registry.

    >>> from faceguard.models import load_recognizer
    >>> dlib = load_recognizer("dlib")
"""

from faceguard.models.base import Recognizer
from faceguard.models.catalogue import ModelError, is_installed
from faceguard.models.install import install
from faceguard.models.registry import available_models, load_recognizer

__all__ = ["ModelError", "Recognizer", "available_models", "install", "is_installed",
           "load_recognizer"]
