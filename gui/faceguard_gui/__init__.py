"""FaceGuard desktop app: a thin PySide6 shell over the :mod:`faceguard` core.

Three steps a person follows: *Photos* (add an album, see its faces), *Protect*
(pick who, preview, cloak) and *Audit* (test the cloak, export a report). All heavy
work runs in worker threads over the core's progress-event generators.
"""

from __future__ import annotations

from faceguard import __version__

__all__ = ["__version__"]
