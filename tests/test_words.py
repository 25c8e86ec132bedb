"""Plain words: counts, and a plain name for every defense, detector and method."""

from __future__ import annotations

import pytest

from faceguard.audit.cloak_detection import DETECTORS
from faceguard.audit.defenses import DEFENSES, defense_label
from faceguard.settings import METHODS
from faceguard.words import listed, plural


@pytest.mark.parametrize(("n", "text"), [(0, "0 photos"), (1, "1 photo"), (2, "2 photos")])
def test_plural_agrees_with_the_count(n, text):
    assert plural(n, "photo") == text
    assert plural(1, "person", "people") == "1 person"
    assert plural(3, "person", "people") == "3 people"


def test_every_defense_detector_and_method_has_its_own_plain_name():
    labels = {
        "defenses": {name: spec.label for name, spec in DEFENSES.items()},
        "detectors": {name: named.label for name, named in DETECTORS.items()},
        "methods": {name: named.label for name, named in METHODS.items()},
    }
    for table in labels.values():
        assert all(label.strip() for label in table.values())
        assert len(set(table.values())) == len(table)  # no two share a name
    assert labels["defenses"]["jpeg75"] == "re-upload (JPEG 75)"
    assert labels["defenses"]["bl+sr"] == "strong filter + upscaling (BL+SR)"
    assert labels["defenses"]["purifier"] == "learned clean-up"
    assert labels["detectors"]["wlmp-rbf"].startswith("texture check")
    assert labels["detectors"]["trajectory-lstm"].startswith("deep-feature check")
    assert labels["methods"]["perceptual"].startswith("Recommended")
    assert labels["methods"]["pgd"] == "Classic (PGD)"


def test_defense_label_reads_the_cli_syntax():
    assert defense_label("jpeg:quality=60") == "re-upload (JPEG), quality=60"
    assert defense_label("unknown") == "unknown"


def test_listed_names_a_few_and_counts_the_rest():
    assert listed([]) == "" and listed(["Sam"]) == "Sam"
    assert listed(["Sam", "Jo"]) == "Sam and Jo"
    assert listed(["Sam", "Jo", "Ann", "Bo"]) == "Sam, Jo, Ann and Bo"
    many = [f"{k}.jpg" for k in range(15)]
    assert listed(many) == "0.jpg, 1.jpg, 2.jpg and 12 others"


def test_the_names_faceguard_gives_people_are_told_from_the_users():
    from faceguard.planning import named_by_faceguard

    for name in ("the person to protect", "person 2", "person-12", "album/person-1"):
        assert named_by_faceguard(name), name
    for name in ("Ann", "person", "personal-1", "Ann/person-1x", "the person in a.jpg"):
        assert not named_by_faceguard(name), name
