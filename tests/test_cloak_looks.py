"""How cloaks look on real photos, through the whole pipeline: every preset keeps its
visibility floor in the saved file, colours stay put, grey stays grey."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceguard.io import load_photo
from faceguard.models.ensemble import Ensemble
from faceguard.pipeline import CloakJob, cloak_album
from faceguard.settings import LOOKS, CloakSettings
from faceguard.visibility import measure_face


def _cloak(photo_dir, out, settings, detector, load_model) -> dict:
    job = CloakJob(inputs=[photo_dir], outdir=out, settings=settings, protect_all=True,
                   format="png")
    events = list(cloak_album(job, detector, lambda names: Ensemble(
        [load_model(n) for n in names])))
    done = [e for e in events if e.stage == "cloaking" and not e.under_way]
    assert len(done) == 1 and not done[0].error, done[0].error
    return done[0].result


@pytest.mark.parametrize("preset", list(LOOKS))
def test_every_preset_keeps_its_limits_in_the_saved_photo(preset, astronaut, detector,
                                                          load_model, tmp_path):
    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(astronaut).save(photos / "astronaut.png")
    # PGD pushes every pixel to the cap: the floor must come from the final guard
    settings = CloakSettings(method="pgd", preset=preset, eps=16, models=("dlib",), steps=5)
    entry = _cloak(photos, tmp_path / "out", settings, detector, load_model)
    face = entry["faces"][0]
    saved = load_photo(tmp_path / "out" / entry["output"]).pixels
    measured = measure_face(astronaut / 255.0, saved, face["box"])
    floor = LOOKS[preset]["floor"]
    assert measured["ssimulacra2"] >= floor - 0.5
    assert face["quality"]["ssimulacra2"] == pytest.approx(measured["ssimulacra2"], abs=0.05)
    assert face["distance_after"]["dlib"] > face["distance_before"]["dlib"] + 0.1  # it cloaks
    # the colour limit, as the manifest measures it (on the face box before rounding)
    assert face["quality"]["ciede2000_p95"] <= LOOKS[preset]["delta_e"]
    assert measured["ciede2000_p95"] <= LOOKS[preset]["delta_e"] + 0.05


def test_balanced_default_keeps_colours(astronaut, detector, load_model, tmp_path):
    """The default cloak moves brightness, not hue: the irises and lips keep their colour."""
    from skimage.color import rgb2lab

    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(astronaut).save(photos / "astronaut.png")
    settings = CloakSettings(models=("dlib",), steps=10)
    entry = _cloak(photos, tmp_path / "out", settings, detector, load_model)
    q = entry["faces"][0]["quality"]
    assert q["ssimulacra2"] >= 75 - 0.5 and q["ciede2000_p95"] <= 3.0
    saved = load_photo(tmp_path / "out" / entry["output"]).pixels
    x0, y0, x1, y1 = (int(v) for v in entry["faces"][0]["box"])
    a, b = rgb2lab(astronaut[y0:y1, x0:x1] / 255.0), rgb2lab(saved[y0:y1, x0:x1])
    hue_shift = np.hypot(b[..., 1] - a[..., 1], b[..., 2] - a[..., 2])  # a*, b* only
    assert np.percentile(hue_shift, 95) < 2.0


def test_a_grey_photo_stays_grey(att_dir, detector, load_model, tmp_path):
    photos = tmp_path / "in"
    photos.mkdir()
    src = sorted((att_dir / "s1").glob("*.pgm"))[0]
    grey = Image.open(src)
    grey.resize((grey.width * 3, grey.height * 3), Image.BICUBIC).save(photos / "face.png")
    settings = CloakSettings(method="pgd", models=("dlib",), steps=5)
    entry = _cloak(photos, tmp_path / "out", settings, detector, load_model)
    out = Image.open(tmp_path / "out" / entry["output"])
    assert out.mode == "L"
    before = np.asarray(Image.open(photos / "face.png"), dtype=float)
    assert np.abs(np.asarray(out, dtype=float) - before).max() > 0  # it was cloaked

