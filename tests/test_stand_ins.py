"""Stand-in faces for the detectors: the user's settings, made fast, on faces FaceGuard ships."""

from __future__ import annotations

import numpy as np

from faceguard.settings import CloakSettings
from faceguard.stand_ins import STEPS, bundled_photos, stand_in_settings


def test_stand_ins_keep_the_users_settings_but_cloak_fast():
    recorded = CloakSettings(preset="high", models=("dlib", "faceres")).to_dict()
    s = stand_in_settings(recorded)
    assert s.method == "perceptual" and s.models == ("dlib", "faceres")
    assert s.eps == recorded["eps"] and s.floor == recorded["floor"]
    assert s.steps == STEPS < recorded["steps"] and s.robust is False
    # a method that needs other people falls back to the default method
    assert stand_in_settings({"method": "universal", "objective": "classifier"}).method == \
        "perceptual"
    # unknown settings (no manifest): the defaults, made fast
    assert stand_in_settings({}).digest() == stand_in_settings(
        CloakSettings().to_dict()).digest()


def test_bundled_stand_ins_are_six_different_colour_photos():
    photos = bundled_photos()
    assert len(photos) == 6
    for image in photos.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert not np.array_equal(photos["astronaut"], photos["astronaut-mirrored"])
    assert photos["camera-small"].shape[0] < photos["camera"].shape[0]
