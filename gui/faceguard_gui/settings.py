"""What the app remembers between runs: cloak choices, output folder, recent folders.

Stored as JSON in :func:`faceguard.paths.config_dir` (``FACEGUARD_CONFIG`` overrides
it, which the tests use). A damaged or outdated file never stops the app: unknown
keys are ignored and bad values fall back to the defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from faceguard.atomic import write_json
from faceguard.audit import QUICK_DEFENSES, QUICK_DETECTORS
from faceguard.paths import config_dir
from faceguard.settings import (
    DEFAULT_CHROMA,
    DEFAULT_FORMAT,
    DEFAULT_METHOD,
    DEFAULT_MODELS,
    DEFAULT_PRESET,
    DEFAULT_QUALITY,
    OUTPUT_FORMATS,
    PERSON_MASK_METHODS,
    CloakSettings,
    build_settings,
    preset_values,
)

SETTINGS_NAME = "gui-settings.json"
MAX_RECENT = 8

FORMATS = OUTPUT_FORMATS  # output format choice -> what the user reads (the core's)
#: the written photos' longest side (px; 0: as they are) -> what the user reads: the
#: sizes platforms serve photos at (the CLI's ``--max-side`` takes any)
SIDES = {0: "full size", 4096: "≤ 4096 px", 2048: "≤ 2048 px", 1080: "≤ 1080 px"}
_FIRST = preset_values(DEFAULT_METHOD, DEFAULT_PRESET)  # the first run's sliders


@dataclass
class AppSettings:
    """The app's remembered choices (one JSON file).

    Attributes:
        method, preset, eps, steps, robust, floor, delta_e, models: the cloak (see
            :class:`faceguard.settings.CloakSettings`); eps in grey levels (0-255),
            floor the least face SSIMULACRA2 (0-100) of every method, delta_e the most
            a face's colour may change (CIEDE2000 at its 95th percentile).
        colour_share: the share of the budget that may change colour (0-1; 0 changes
            brightness only), the CLI's ``--colour-share``.
        person_mask_steps: the album path (perceptual method): 0 cloaks every photo from
            scratch; N starts each from one mask per person, refined for N steps (the
            CLI's ``--person-mask N``).
        output_folder: where protected photos go ("" = next to the album).
        format, quality, keep_metadata: how protected photos are written.
        max_side: protected photos shrunk to this long side (px; 0: as they are), the
            CLI's ``--max-side``.
        protect_everyone: cloak every face instead of chosen people.
        small_faces: look for faces down to 20 px in any photo (the CLI's
            ``--min-face 20``), slower; else from about 1/50 of the photo's longer side.
        audit_defenses, audit_detectors, audit_models: the audit's ticks
            (audit_models empty = every installed recognizer).
        recent_folders: most recent first.
        geometry: the main window's saved geometry (hex), "" for the default.
    """

    method: str = DEFAULT_METHOD
    preset: str = DEFAULT_PRESET
    eps: float = _FIRST["eps"]
    steps: int = _FIRST["steps"]
    robust: bool = _FIRST["robust"]
    floor: float = _FIRST["floor"]
    delta_e: float = _FIRST["delta_e"]
    colour_share: float = DEFAULT_CHROMA
    person_mask_steps: int = 0
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    output_folder: str = ""
    format: str = DEFAULT_FORMAT
    quality: int = DEFAULT_QUALITY
    keep_metadata: bool = False
    max_side: int = 0
    protect_everyone: bool = False
    small_faces: bool = False
    audit_defenses: list[str] = field(default_factory=lambda: list(QUICK_DEFENSES))
    audit_detectors: list[str] = field(default_factory=lambda: list(QUICK_DETECTORS))
    audit_models: list[str] = field(default_factory=list)
    recent_folders: list[str] = field(default_factory=list)
    geometry: str = ""

    @staticmethod
    def path() -> Path:
        return config_dir() / SETTINGS_NAME

    @classmethod
    def load(cls) -> AppSettings:
        """The saved settings, or the defaults when there are none (or they are damaged)."""
        try:
            data = json.loads(cls.path().read_text())
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        default = cls()
        kept = {}
        for f in fields(cls):
            value = data.get(f.name)
            if value is not None and type(value) is type(getattr(default, f.name)):
                kept[f.name] = value
        settings = cls(**kept)
        if "delta_e" not in kept:  # a file from before the app chose it: the preset's
            settings.delta_e = preset_values(settings.method, settings.preset).get(
                "delta_e", settings.delta_e)
        try:
            settings.cloak_settings()
        except ValueError:  # e.g. a method that no longer exists
            return cls(recent_folders=settings.recent_folders)
        return settings

    def save(self) -> None:
        """Write atomically (a crash never leaves half a file)."""
        write_json(self.path(), asdict(self))

    def add_recent(self, folder: Path) -> None:
        """Put ``folder`` first in the recent folders."""
        text = str(Path(folder).resolve())
        self.recent_folders = [text] + [f for f in self.recent_folders if f != text]
        del self.recent_folders[MAX_RECENT:]

    def cloak_settings(self) -> CloakSettings:
        """The core's settings for these choices (raises ValueError when invalid), built
        as the CLI builds them (:func:`faceguard.settings.build_settings`)."""
        mask = self.person_mask_steps if self.method in PERSON_MASK_METHODS else 0
        return build_settings(self.method, self.preset, eps=float(self.eps),
                              steps=int(self.steps), robust=bool(self.robust),
                              floor=float(self.floor), delta_e=float(self.delta_e),
                              models=self.models, chroma=float(self.colour_share),
                              person_mask=mask or None)
