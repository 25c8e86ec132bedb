"""The figures the CLI's help, the app and the audit quote (faceguard.measured) are the
benchmarks' own: each read from its result file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceguard.measured import (
    COLOUR_SHARE_MEASURED,
    MEASURED_EVERYONE,
    MEASURED_PROTECTION,
    PERSON_MASK_MEASURED,
)
from faceguard.settings import DEFAULT_MODELS

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
MADE_ON = DEFAULT_MODELS  # the families the default cloak is made on


def _turned(name: str, made_on: tuple[str, ...] = MADE_ON,
            poisoning: bool = False) -> dict[str, int]:
    """recognizer -> % of the album faces it matched uncloaked that the cloak made on
    ``made_on`` turned, at FAR 1%, in a protection_album.py result file (in evasion, or
    with the person's gallery built from cloaked photos)."""
    runs = json.loads((RESULTS / name).read_text())["results"]["runs"]
    run = next(r for r in runs if tuple(r["models"]) == made_on)
    figures = run["poisoning"] if poisoning else run["evasion"]["none"]
    return {m: round(100 * v["turned_far_0.01"]) for m, v in figures.items()}


def _each(figures: dict[str, int]) -> str:
    """"80 / 57 / 69": the figures of the families the default cloak is made on."""
    return " / ".join(str(figures[m]) for m in MADE_ON)


def _span(values: list[int]) -> str:
    return f"{min(values)}-{max(values)}%"


@pytest.mark.parametrize("table, preset, name", [
    (MEASURED_PROTECTION, "low", "protection-album-low-colour-after.json"),
    (MEASURED_PROTECTION, "balanced", "protection-album-balanced-12-06-b.json"),
    (MEASURED_PROTECTION, "high", "protection-album-high-12-06-b.json"),
    # every face cloaked with no photos of the person given (--protect-all)
    (MEASURED_EVERYONE, "balanced", "protection-album-everyone-grouped-12-06.json"),
    (MEASURED_EVERYONE, "high", "protection-album-everyone-grouped-high-12-06.json")])
def test_quoted_protection_is_measured(table: dict, preset: str, name: str) -> None:
    turned = _turned(name)
    assert table[preset] == (_span([turned[m] for m in MADE_ON]),
                             f"{turned['sface']}%", f"{turned['facenet']}%")


def test_quoted_person_mask_is_measured() -> None:
    mask = _turned("protection-album-person-mask15-12-06.json")
    each = _turned("protection-album-12-06-file-floor.json")
    assert _each(mask) in PERSON_MASK_MEASURED and _each(each) in PERSON_MASK_MEASURED


def test_quoted_colour_share_is_measured() -> None:
    two = ("dlib", "mobileface")  # faceres left out of the cloak
    for name in ("protection-album-colour-share-12-06.json",
                 "protection-album-12-06-file-floor.json"):
        evasion, poisoning = _turned(name), _turned(name, poisoning=True)
        assert f"{_each(evasion)}%" in COLOUR_SHARE_MEASURED
        assert f"{_each(poisoning)}%" in COLOUR_SHARE_MEASURED
        assert f"{_turned(name, two)['faceres']}%" in COLOUR_SHARE_MEASURED
