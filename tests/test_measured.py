"""The figures the CLI's help, the app and the audit quote (faceguard.measured) are the
benchmarks' own: each read from its result file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceguard.measured import (
    COLOUR_SHARE_MEASURED,
    LARGE_FACE_PX,
    LARGE_FACES_MEASURED,
    MEASURED_ALONE,
    MEASURED_EVERYONE,
    MEASURED_PROTECTION,
    MORE_FAMILIES_MEASURED,
    PERSON_MASK_MEASURED,
    ROBUST_HEAD_MEASURED,
    TARGETED_MEASURED,
)
from faceguard.settings import DEFAULT_MODELS

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
MADE_ON = DEFAULT_MODELS  # the families the default cloak is made on


def _turned(name: str, made_on: tuple[str, ...] = MADE_ON, poisoning: bool = False,
            other_photos: bool = False) -> dict[str, int]:
    """recognizer -> % of the album faces it matched uncloaked that the cloak made on
    ``made_on`` turned, at FAR 1%, in a protection_album.py result file (in evasion, or
    with the person's gallery built from cloaked photos; ``other_photos``: the person's
    entry made of other photos than the cloak's references)."""
    runs = json.loads((RESULTS / name).read_text())["results"]["runs"]
    run = next(r for r in runs if tuple(r["models"]) == made_on)
    if other_photos:
        run = run["other_photos"]
    figures = run["poisoning"] if poisoning else run["evasion"]["none"]
    return {m: round(100 * v["turned_far_0.01"]) for m, v in figures.items()}


def _each(figures: dict[str, int]) -> str:
    """"80 / 57 / 69": the figures of the families the default cloak is made on."""
    return " / ".join(str(figures[m]) for m in MADE_ON)


def _span(values: list[int]) -> str:
    return f"{min(values)}-{max(values)}%"


@pytest.mark.parametrize("table, preset, name, other_photos", [
    # the person's entry made of other photos than the references the cloak was given
    (MEASURED_PROTECTION, "low", "protection-album-other-photos-low-12-07.json", True),
    (MEASURED_PROTECTION, "balanced", "protection-album-other-photos-12-07.json", True),
    (MEASURED_PROTECTION, "high", "protection-album-other-photos-high-12-07.json", True),
    # every face cloaked with no photos of the person given (--protect-all): the entry,
    # the person's reference photos, is photos the cloak never saw
    (MEASURED_EVERYONE, "balanced", "protection-album-everyone-grouped-12-06.json", False),
    (MEASURED_EVERYONE, "high", "protection-album-everyone-grouped-high-12-06.json", False),
    # the same, each photo cloaked in a run of its own
    (MEASURED_ALONE, "balanced", "protection-album-everyone-alone-12-07.json", False),
    (MEASURED_ALONE, "high", "protection-album-everyone-alone-high-12-07.json", False)])
def test_quoted_protection_is_measured(table: dict, preset: str, name: str,
                                       other_photos: bool) -> None:
    turned = _turned(name, other_photos=other_photos)
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


def test_quoted_large_faces_are_measured() -> None:
    """The album's faces LARGE_FACE_PX wide or more, cloaked as they were and shrunk:
    of those each recognizer matched uncloaked against the person's other photos, the
    share beyond its threshold after."""
    def turned(name: str, variant: str) -> dict[str, int]:
        faces = json.loads((RESULTS / name).read_text())["results"][variant]["faces"]
        return {m: round(100 * sum(f["other_photos"][m] > 1 for f in kept) / len(kept))
                for m in ("dlib", "mobileface", "faceres", "facenet")
                for kept in [[f for f in faces if f["photo"] in large
                              and f["clean_other_photos"][m] < 1]]}

    full = json.loads((RESULTS / "album-distances-own-12-07.json").read_text())
    large = {f["photo"] for f in full["results"]["default"]["faces"]
             if f["face_px"] >= LARGE_FACE_PX}
    before = turned("album-distances-own-12-07.json", "default")
    after = turned("album-distances-shrink-12-07.json", "shrink250")
    assert len(large) == 10
    assert f"{_each(after)}% of those faces against {_each(before)}%" in LARGE_FACES_MEASURED
    assert f"{after['facenet']} against {before['facenet']}%" in LARGE_FACES_MEASURED


def test_quoted_more_families_are_measured() -> None:
    """Dlib, then mobileface, left out of the cloak made on more and more families: its
    mean move from clean against the person's other photos, in threshold units; dlib
    past it on no face."""
    def faces(name: str, variant: str) -> list[dict]:
        runs = json.loads((RESULTS / name).read_text())["results"]
        return [f for f in runs[variant]["faces"] if f["other_photos"] is not None]

    def moves(runs: list[list[dict]], model: str) -> str:
        """"+0.20 / +0.26": each run's mean move of ``model``."""
        means = [sum(f["other_photos"][model] - f["clean_other_photos"][model] for f in run)
                 / len(run) for run in runs]
        return " / ".join(f"+{m:.2f}" for m in means)

    dlib = [faces("album-distances-cwa-12-07.json", "base"),
            faces("album-distances-more-families-12-07.json", "lofo-dlib-sface"),
            faces("album-distances-more-families-12-07.json", "lofo-dlib-sface-facenet")]
    assert f"{moves(dlib, 'dlib')} of its threshold made on 2 / 3 / 4" in MORE_FAMILIES_MEASURED
    assert all(f["other_photos"]["dlib"] < 1 for run in dlib for f in run)
    assert "past its threshold on none" in MORE_FAMILIES_MEASURED
    name = "album-distances-more-families-mobileface-12-07.json"
    mobileface = [faces(name, "lofo-mobileface"), faces(name, "lofo-mobileface-sface-facenet")]
    assert f"({moves(mobileface, 'mobileface')} made on 2 / 4)" in MORE_FAMILIES_MEASURED


def test_quoted_targeted_cloak_is_measured() -> None:
    """Dlib against the person's other photos, the cloak made on dlib and mobileface
    pulled towards a decoy and pushed away from the person (the default)."""
    def dlib(name: str, poisoning: bool) -> int:
        return _turned(name, ("dlib", "mobileface"), poisoning, other_photos=True)["dlib"]

    pulled, pushed = ("protection-album-targeted-faceres-unseen-12-07.json",
                      "protection-album-other-photos-12-07.json")
    assert (f"({dlib(pulled, False)}% missed against {dlib(pushed, False)}% pushed away, "
            f"the default; with a gallery of cloaked photos {dlib(pulled, True)} against "
            f"{dlib(pushed, True)}%)") in TARGETED_MEASURED


def test_quoted_robust_head_is_measured() -> None:
    """The album faces each recognizer matched uncloaked against the person's other photos:
    the share beyond its FAR 1% threshold as published and through the head trained on
    other people's cloaked photos."""
    results = json.loads((RESULTS / "album-distances-learned-attackers-12-07.json").read_text())
    faces = results["results"]["default"]["faces"]

    def beyond(view: str, model: str) -> int:
        seen = [f for f in faces if f["clean_other_photos"] and f["clean_other_photos"][model] < 1]
        return round(100 * sum(f[view][model] > 1 for f in seen) / len(seen))

    def each(view: str) -> str:
        return " / ".join(str(beyond(view, m)) for m in MADE_ON)

    assert (f"from {each('other_photos')}% to {each('robust_head')}% (dlib / mobileface / "
            f"faceres), by FaceNet (never seen) from {beyond('other_photos', 'facenet')} to "
            f"{beyond('robust_head', 'facenet')}%") in ROBUST_HEAD_MEASURED
