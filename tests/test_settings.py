"""One source of settings: the CLI and the app build the same settings from the same
choices, with the core's defaults."""

from __future__ import annotations

import pytest

from faceguard.cli import build_parser
from faceguard.cli.cloak import settings_from_args
from faceguard.settings import (
    DEFAULT_FORMAT,
    DEFAULT_METHOD,
    DEFAULT_PRESET,
    DEFAULT_QUALITY,
    METHODS,
    PRESETS,
    build_settings,
    preset_values,
)
from faceguard_gui.settings import AppSettings


def _cli(*options: str):
    args = build_parser().parse_args(["cloak", "x.jpg", "-o", "out", "--protect-all", *options])
    return args, settings_from_args(args)


def _app(method: str, preset: str, **changed) -> AppSettings:
    """The app's choices after picking a method and a preset (sliders at the preset)."""
    fields = AppSettings().__dict__  # the app has no control for every knob (delta_e)
    knobs = {k: v for k, v in preset_values(method, preset).items() if k in fields}
    return AppSettings(**{**fields, **knobs, "method": method, "preset": preset, **changed})


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("method", METHODS)
def test_the_app_and_the_cli_make_the_same_settings(method, preset):
    _, cli = _cli("--method", method, "--preset", preset)
    app = _app(method, preset).cloak_settings()
    assert app.digest() == cli.digest()
    assert app.to_dict() == cli.to_dict()


def test_changed_knobs_match_too():
    _, cli = _cli("--method", "pgd", "--preset", "high", "--eps", "10", "--steps", "7",
                  "--no-robust", "--models", "dlib")
    app = _app("pgd", "high", eps=10.0, steps=7, robust=False, models=["dlib"])
    assert app.cloak_settings().digest() == cli.digest()


def test_both_shells_start_from_the_core_defaults():
    args, cli = _cli()
    app = AppSettings()
    assert (args.method, cli.preset, app.method, app.preset) == (
        DEFAULT_METHOD, DEFAULT_PRESET, DEFAULT_METHOD, DEFAULT_PRESET)
    assert args.preset is None  # not given: the default, or a saved mask's own
    assert (args.format, args.quality, app.format, app.quality) == (
        DEFAULT_FORMAT, DEFAULT_QUALITY, DEFAULT_FORMAT, DEFAULT_QUALITY)
    assert cli.digest() == app.cloak_settings().digest() == build_settings().digest()


def test_the_album_path_is_an_option_of_the_perceptual_method_only():
    _, cli = _cli("--person-mask", "8")
    assert cli.person_mask == 8 and cli.digest() != build_settings().digest()
    # left off, it is not in the settings at all: runs from before it existed resume
    assert "person_mask" not in build_settings().to_dict()
    with pytest.raises(ValueError, match="perceptual"):
        build_settings("pgd", person_mask=8)
    with pytest.raises(ValueError, match="1 to"):
        build_settings(person_mask=0)


def test_colour_share_reaches_the_cloak_and_is_kept_out_of_older_runs_digests():
    from faceguard.cloak.recipe import make_cloak

    _, cli = _cli("--colour-share", "0.25")
    assert cli.chroma == 0.25 and make_cloak(cli).chroma == 0.25
    assert cli.digest() != build_settings().digest()
    # brightness only (the default) is not in the settings: runs from before it resume
    assert "chroma" not in build_settings().to_dict()
    assert make_cloak(build_settings()).chroma == 0.0
    with pytest.raises(ValueError, match="colour share"):
        build_settings(chroma=1.5)


def test_robust_cloaks_need_a_random_transform_per_step():
    for samples in (0, -2):  # a crash deep in the optimiser before
        with pytest.raises(ValueError, match="eot_samples .* >= 1"):
            build_settings(robust=True, eot_samples=samples)


def test_a_stronger_preset_is_offered_only_for_a_preset_as_measured():
    from faceguard.settings import build_settings

    assert build_settings().stronger == "high"
    assert build_settings(preset="low").stronger == "balanced"
    assert build_settings(preset="high").stronger is None
    # the preset's own value is no change of it; another value is the user's own cloak
    assert build_settings(floor=75.0).stronger == "high"
    assert build_settings(floor=55.0).stronger is None
    assert build_settings("pgd").stronger is None


def test_the_album_path_takes_one_draw_per_step_unless_told(monkeypatch):
    import faceguard.planning as planning
    from faceguard.identity import Person
    from faceguard.settings import DEFAULT_EOT_SAMPLES, PERSON_MASK_EOT_SAMPLES

    assert build_settings().resolved().eot_samples == DEFAULT_EOT_SAMPLES == 2
    assert build_settings(person_mask=15).resolved().eot_samples == PERSON_MASK_EOT_SAMPLES == 1
    assert build_settings(person_mask=15, eot_samples=2).resolved().eot_samples == 2
    # the per-photo cloak is what it was: earlier runs still resume
    assert build_settings().digest() == build_settings(eot_samples=2).digest()
    # the person's mask is fitted on the path's draws too, not the per-photo default
    fitted = []
    monkeypatch.setattr(planning, "_fit_mask", lambda fit, *rest: fitted.append(fit))
    for told, draws in ((None, 1), (3, 3)):
        planning.make_plan(build_settings(person_mask=15, eot_samples=told), None,
                           [Person("me")], [], [None], [[0]], lambda path: None)
        assert fitted[-1].method == "universal-sgd" and fitted[-1].eot_samples == draws

