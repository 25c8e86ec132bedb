"""The recipe: every method of the settings is built in one place, from the settings."""

from __future__ import annotations

import pytest

from faceguard.cloak import recipe
from faceguard.settings import METHODS, PRESETS, CloakSettings


def test_every_method_has_one_entry_in_the_recipe():
    assert set(recipe.PER_PHOTO) | set(recipe.UNIVERSAL) == set(METHODS)
    assert not set(recipe.PER_PHOTO) & set(recipe.UNIVERSAL)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("method", sorted(set(METHODS) - {"universal", "universal-sgd"}))
def test_every_preset_becomes_a_cloak_with_its_budget(method, preset):
    s = CloakSettings(method=method, preset=preset)
    cloak = recipe.make_cloak(s)
    assert cloak.eps == pytest.approx(s.resolved().eps / 255)
    assert type(cloak).__name__ in repr(cloak)


def test_universal_methods_are_fitted_not_made():
    with pytest.raises(ValueError, match="universal mask"):
        recipe.make_cloak(CloakSettings(method="universal-sgd"))
    s = CloakSettings(method="universal", preset="high").resolved()
    fitter = recipe.UNIVERSAL[s.method](s, recipe.budget(s))
    assert fitter.xi == pytest.approx(s.eps / 255) and fitter.max_passes == s.steps // 4


def test_robustness_follows_the_settings():
    transform, samples, jitter = recipe.eot(CloakSettings(method="fgsm", preset="low"), 0)
    assert transform is None and samples == 1 and jitter is False
    transform, samples, jitter = recipe.eot(CloakSettings(eot_samples=3, robust=True), 0)
    assert transform is not None and samples == 3 and jitter is True
