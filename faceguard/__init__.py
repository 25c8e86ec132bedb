"""FaceGuard: cloak faces in photos against face recognition, and audit the cloak.

The public surface is small; heavy modules (torch, MTCNN) load only when used::

    from faceguard import load_photo, detect_faces, load_recognizer
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_photo": "faceguard.io",
    "save_photo": "faceguard.io",
    "Photo": "faceguard.io",
    "Face": "faceguard.face",
    "FaceDetector": "faceguard.detect",
    "detect_faces": "faceguard.detect",
    "load_recognizer": "faceguard.models",
    "Recognizer": "faceguard.models.base",
}


def __getattr__(name: str):
    # Lazy imports keep `faceguard --version` fast and torch out of light commands.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'faceguard' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
