"""Visibility: the torch SSIMULACRA2 against the reference package on real album faces,
the JPEG equivalent, the plain words, and the colour-aware budgets of every cloak."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from faceguard.cloak.base import CHROMA, TINT_PX, project, to_ycc
from faceguard.cloak.budget import LIGHTNESS_HEADROOM, keep_visible, lightness_weight
from faceguard.visibility import FaceLook, describe, face_box, jpeg_equivalent, measure_face, score
from faceguard.visibility.differentiable import changed_box, prepare, ssimulacra2


def _reference(a: np.ndarray, b: np.ndarray) -> float:
    """The ``ssimulacra2`` package's score of two uint8 (H, W, 3) images (via PNG files)."""
    from ssimulacra2 import compute_ssimulacra2

    files = []
    for image in (a, b):
        f = io.BytesIO()
        Image.fromarray(image).save(f, "PNG")
        f.seek(0)
        files.append(f)
    return compute_ssimulacra2(*files)


def _distort(face: np.ndarray, kind: int, rng: np.random.Generator) -> np.ndarray:
    """One of five distortions people meet: a colour-guarded sign cloak, JPEG, noise,
    blur, a colour cast; strengths drawn at random."""
    img = Image.fromarray(face)
    if kind == 0:  # a PGD-like +-eps pattern through the colour guard
        x = torch.from_numpy(face / 255.0).permute(2, 0, 1)[None]
        sign = torch.from_numpy(rng.choice([-1.0, 1.0], x.shape))
        eps = rng.uniform(2, 12) / 255
        out = project(x + eps * sign, x, torch.full_like(x[:, :1], eps), CHROMA)
        return (out[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    if kind == 1:
        f = io.BytesIO()
        img.save(f, "JPEG", quality=int(rng.integers(20, 96)))
        f.seek(0)
        return np.asarray(Image.open(f).convert("RGB"))
    if kind == 2:
        noise = rng.normal(0, rng.uniform(1, 8), face.shape)
        return np.clip(face + noise, 0, 255).astype(np.uint8)
    if kind == 3:
        return np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5))))
    cast = rng.uniform(-10, 10, 3)
    return np.clip(face + cast, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def album_faces(album_by_person, detector) -> list[np.ndarray]:
    """At least 30 real faces from the album (face box grown 1.3x, at most 160 px)."""
    faces = []
    for paths in album_by_person.values():
        for path in paths:
            photo = Image.open(path).convert("RGB")
            photo.thumbnail((800, 800))
            pixels = np.asarray(photo)
            for face in detector(pixels)[:2]:
                x0, y0, x1, y1 = face_box(face.box, photo.width, photo.height)
                crop = Image.fromarray(pixels[y0:y1, x0:x1])
                crop.thumbnail((160, 160))
                if min(crop.size) >= 16:
                    faces.append(np.asarray(crop))
            if len(faces) >= 32:
                return faces
    return faces


def test_torch_ssimulacra2_matches_the_reference_package(album_faces):
    assert len(album_faces) >= 30
    rng = np.random.default_rng(0)
    ours, ref = [], []
    for i, face in enumerate(album_faces):
        distorted = _distort(face, i % 5, rng)
        ref.append(_reference(face, distorted))
        a, b = (torch.from_numpy(x / 255.0).permute(2, 0, 1)[None] for x in (face, distorted))
        ours.append(float(ssimulacra2(a, b, aligned=False)))  # float64: the reference's precision
        # float32, as the optimiser runs it, agrees almost as well
        assert float(ssimulacra2(a.float(), b.float(), aligned=False)) == pytest.approx(ref[-1],
                                                                        abs=0.25)
    ours, ref = np.array(ours), np.array(ref)
    assert np.abs(ours - ref).max() < 0.01, list(zip(ours, ref, strict=True))
    assert ref.max() - ref.min() > 30  # the distortions span the scale


def test_ssimulacra2_is_differentiable_and_finite_at_identity(astronaut):
    a = torch.from_numpy(astronaut[60:180, 170:280] / 255.0).permute(2, 0, 1)[None].float()
    b = a.clone().requires_grad_(True)
    s = ssimulacra2(a, b)
    s.sum().backward()
    assert float(s.detach()) == pytest.approx(100, abs=1e-3)
    assert torch.isfinite(b.grad).all()
    c = (a + 0.02 * torch.randn_like(a)).clamp(0, 1).requires_grad_(True)
    ssimulacra2(a, c).sum().backward()
    assert torch.isfinite(c.grad).all() and c.grad.abs().sum() > 0


def test_the_gpus_layout_of_the_blurs_gives_the_same_score_and_gradient(astronaut, monkeypatch):
    """A GPU blurs the metric's planes in the default layout (cuDNN plans each new shape
    of a channels-last one): run that layout here, where the CPU's is channels-last."""
    from faceguard.visibility import differentiable

    assert differentiable.layout(torch.zeros(1, 3, 8, 8)) == torch.channels_last
    a = torch.from_numpy(astronaut[60:180, 170:280] / 255.0).permute(2, 0, 1)[None].double()
    b = (a + 0.03 * torch.randn_like(a)).clamp(0, 1)

    def scored() -> tuple[torch.Tensor, torch.Tensor]:
        x = b.clone().requires_grad_(True)
        s = ssimulacra2(a, x, changed=(10, 20, 90, 100))
        s.sum().backward()
        return s.detach(), x.grad

    cpu = scored()
    monkeypatch.setattr(differentiable, "layout", lambda x: torch.contiguous_format)
    gpu = scored()
    assert torch.allclose(cpu[0], gpu[0], atol=1e-9) and torch.allclose(cpu[1], gpu[1], atol=1e-12)
    assert cpu[1].abs().sum() > 0


def test_a_prepared_reference_scores_the_same(astronaut):
    a = torch.from_numpy(astronaut[60:180, 170:280] / 255.0).permute(2, 0, 1)[None].double()
    others = [(a + 0.03 * torch.randn_like(a)).clamp(0, 1), a.flip(-1), a * 0.9]
    ref = prepare(a)
    for b in others:
        assert float(ssimulacra2(ref, b)) == pytest.approx(float(ssimulacra2(a, b)), abs=1e-9)
    with pytest.raises(ValueError, match="one shape"):
        ssimulacra2(ref, a[..., :-1])


@pytest.mark.parametrize("box", [(0.2, 0.13, 0.67, 0.83), (0, 0, 0.17, 1), (0.01, 0.97, 0.99, 1),
                                 (0.43, 0.4, 0.44, 0.41)])  # in shares of the side
@pytest.mark.parametrize("side", [300, 120])  # 6 scales and 4
def test_scoring_only_around_the_changed_box_gives_the_same_score_and_gradient(astronaut,
                                                                               box, side):
    """A change confined to a box (at the image's edges too) scores the same, and has the
    same gradient in the box, whether the maps are computed everywhere or only within
    the blur's reach of the box."""
    a = torch.from_numpy(astronaut[:side, 100:100 + side] / 255.0).permute(2, 0, 1)[None]
    x0, y0, x1, y1 = (round(v * side) for v in box)
    g = torch.Generator().manual_seed(0)
    b = a.clone()
    b[..., y0:y1, x0:x1] += 0.03 * torch.randn(b[..., y0:y1, x0:x1].shape, generator=g,
                                               dtype=b.dtype)
    b = b.clamp(0, 1)
    changed = changed_box(a, b)
    assert changed == (x0, y0, x1, y1)
    whole, cropped = b.clone().requires_grad_(True), b.clone().requires_grad_(True)
    s_whole = ssimulacra2(a, whole)
    s_cropped = ssimulacra2(a, cropped, changed=changed)
    assert s_whole.item() < 99.9  # the change is seen
    assert s_cropped.item() == pytest.approx(s_whole.item(), abs=1e-9)
    # a reference prepared for the box, as the visibility guard prepares it
    assert ssimulacra2(prepare(a, changed), b).item() == pytest.approx(s_whole.item(), abs=1e-9)
    s_whole.sum().backward()
    s_cropped.sum().backward()
    inside = np.s_[..., y0:y1, x0:x1]
    assert whole.grad[inside].abs().max() > 0
    assert torch.allclose(cropped.grad[inside], whole.grad[inside], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("changed", [None, (30, 0, 200, 140), (10, 37, 150, 203)])
def test_scoring_band_by_band_gives_the_same_score(astronaut, monkeypatch, changed):
    """Without gradients a large face is scored in bands of rows, each band's maps summed:
    the same score (and CIEDE2000 map) as in one band, with the changed box at the
    image's edges or inside it, and the band edges anywhere."""
    from faceguard.visibility import differentiable
    from faceguard.visibility.colour import colour_difference

    a = torch.from_numpy(astronaut[:240, 100:310] / 255.0).permute(2, 0, 1)[None]
    g = torch.Generator().manual_seed(0)
    b = (a + 0.03 * torch.randn(a.shape, generator=g, dtype=a.dtype)).clamp(0, 1)
    if changed:
        x0, y0, x1, y1 = changed
        b = a.clone()  # unchanged outside the box
        b[..., y0:y1, x0:x1] = (a[..., y0:y1, x0:x1] + 0.03).clamp(0, 1)
    whole = ssimulacra2(a, b, changed=changed)  # gradients on: one band
    colours = colour_difference(a, b)
    calls = []
    blur = differentiable._blur
    monkeypatch.setattr(differentiable, "_blur", lambda x: calls.append(x.shape) or blur(x))
    monkeypatch.setattr(differentiable, "BAND_PIXELS", 997)  # bands of 4-5 rows
    with torch.no_grad():
        banded = ssimulacra2(prepare(a, changed), b, changed=changed)
        assert len(calls) > 50  # it did score band by band
        assert banded.item() == pytest.approx(whole.item(), abs=1e-9)
        assert torch.allclose(colour_difference(a, b), colours, atol=1e-9)


def test_changed_box_and_a_reference_prepared_for_one(astronaut):
    a = torch.from_numpy(astronaut[:64, :64] / 255.0).permute(2, 0, 1)[None]
    assert changed_box(a, a.clone()) == (0, 0, 0, 0)
    assert ssimulacra2(a, a.clone(), changed=(0, 0, 0, 0)).item() == pytest.approx(100, abs=1e-3)
    for prepared in (prepare(a, (0, 0, 10, 10)), prepare(a)):  # for another box, for none
        with pytest.raises(ValueError, match="another changed box"):
            ssimulacra2(prepared, a, changed=(5, 5, 20, 20))


def test_aligned_weights_score_as_the_reference_at_six_scales_and_do_not_jump_below(astronaut):
    """Below 225 px (5 scales) the reference reads its weights as if there were 6; with
    each feature weighed as its channel and scale, the score of one change does not jump
    when the square scored loses a scale."""
    x = torch.from_numpy(astronaut / 255.0).permute(2, 0, 1)[None].double()
    g = torch.Generator().manual_seed(0)
    smooth = F.interpolate(torch.randn(1, 1, 64, 64, generator=g, dtype=x.dtype), size=512,
                           mode="bicubic", align_corners=False)
    y = (x + 0.008 * smooth).clamp(0, 1)  # brightness only, smooth: a cloak-like change

    def both(side: int) -> tuple[float, float]:
        a, b = (v[..., 40:40 + side, 150:150 + side] for v in (x, y))
        return float(ssimulacra2(a, b, aligned=False)), float(ssimulacra2(a, b))

    (ref_232, aligned_232), (ref_224, aligned_224) = both(232), both(224)
    assert aligned_232 == pytest.approx(ref_232, abs=1e-9)  # 6 scales: the reference's
    assert ref_224 - ref_232 > 8  # 72 -> 86: the reference jumps as the square loses a scale
    assert abs(aligned_224 - aligned_232) < 2  # 72 -> 74


def test_ssimulacra2_rejects_bad_shapes():
    with pytest.raises(ValueError, match="8x8"):
        ssimulacra2(torch.zeros(1, 3, 7, 20), torch.zeros(1, 3, 7, 20))
    with pytest.raises(ValueError, match="one shape"):
        ssimulacra2(torch.zeros(1, 3, 9, 9), torch.zeros(1, 3, 9, 10))


def test_jpeg_equivalent_finds_the_quality_that_was_used(astronaut):
    face = astronaut[50:190, 160:290] / 255.0
    for quality in (60, 85, 95):
        f = io.BytesIO()
        Image.fromarray(astronaut[50:190, 160:290]).save(f, "JPEG", quality=quality)
        f.seek(0)
        saved = np.asarray(Image.open(f).convert("RGB")) / 255.0
        assert abs(jpeg_equivalent(face, score(face, saved)) - quality) <= 2
    assert jpeg_equivalent(face, 100.0) == 100


def test_words_follow_the_score():
    assert describe(92) == "invisible, even up close"
    assert describe(78) == "invisible at normal size, faint up close"
    assert describe(70) == "faint at normal size, visible up close"
    assert describe(40) == "visible"


def test_a_noticeable_colour_change_is_never_invisible_up_close():
    """A small face scored 90.3 with its colour shifted 2.9 (2.3 is just noticeable), and
    the words said "invisible, even up close" beside that figure; the file's colour
    counts (JPEG's chroma subsampling adds to it)."""
    from faceguard.visibility import face_words, summary

    assert face_words({"ssimulacra2": 90.3, "ciede2000_p95": 1.9}) == "invisible, even up close"
    shifted = {"ssimulacra2": 90.3, "ciede2000_p95": 2.9}
    assert face_words(shifted) == "invisible at normal size, faint up close"
    assert summary(shifted).startswith("invisible at normal size, faint up close")
    in_file = {"ssimulacra2": 90.3, "ciede2000_p95": 2.0, "saved_ciede2000_p95": 2.5}
    assert face_words(in_file) == "invisible at normal size, faint up close"
    assert "colour shift p95 2.5" in summary(in_file)
    assert face_words({"ssimulacra2": 70.0, "ciede2000_p95": 2.9}) == describe(70)
    # of a photo's faces, the one whose words are worst
    from faceguard.visibility import most_visible

    faces = [{"ssimulacra2": 86.0, "ciede2000_p95": 1.0}, shifted]
    assert face_words(most_visible(faces)) == "invisible at normal size, faint up close"


def test_measure_face_reports_colour_and_the_old_figures(astronaut):
    original = astronaut / 255.0
    cloaked = original.copy()
    cloaked[80:160, 190:260, 0] = np.clip(cloaked[80:160, 190:260, 0] + 0.06, 0, 1)  # redder
    q = measure_face(original, cloaked, (181, 62, 268, 172))
    assert q["ssimulacra2"] < 90 and q["ciede2000_p95"] > 2.3
    assert q["linf"] == pytest.approx(0.06 * 255, abs=0.6)
    assert {"jpeg_equivalent", "ciede2000_mean", "psnr", "ssim"} <= set(q)
    assert measure_face(original, original, (181, 62, 268, 172))["ssimulacra2"] == 100


def test_a_face_look_measures_the_saved_photo_as_the_cloak(astronaut):
    """The saved photo is scored against the same original: a lossless save scores as
    the cloak did, a JPEG of it as scoring its face region from scratch."""
    original, box = astronaut / 255.0, (181, 62, 268, 172)
    cloaked = original.copy()
    cloaked[80:160, 190:260, 0] = np.clip(cloaked[80:160, 190:260, 0] + 0.03, 0, 1)
    look = FaceLook(original, box)
    q = look.cloak(cloaked)
    assert q == measure_face(original, cloaked, box)
    assert look.saved(cloaked) == {"saved_linf": q["linf"], "saved_ssimulacra2": q["ssimulacra2"],
                                   "saved_ciede2000_p95": q["ciede2000_p95"]}
    jpeg = np.asarray(Image.open(_jpeg_file(cloaked, 75)), dtype=np.float32) / 255
    x0, y0, x1, y1 = face_box(box, 512, 512)
    face = np.s_[y0:y1, x0:x1]
    again = round(score(original[face], jpeg[face]), 2)
    assert look.saved(jpeg)["saved_ssimulacra2"] == again < q["ssimulacra2"]
    # JPEG's chroma subsampling shifts colour further: the file's figure, not the cloak's
    assert look.saved(jpeg)["saved_ciede2000_p95"] > q["ciede2000_p95"]


def test_measuring_a_face_can_be_stopped_between_its_scorings(astronaut):
    """Measuring a face (its score, its JPEG equivalent's several scorings, its colour)
    took 9.4 s on a 14 MP photo's face, and Cancel waited it out: each scoring is a point
    where a job stops."""
    from faceguard.progress import Cancelled

    original, box = astronaut / 255.0, (181, 62, 268, 172)
    cloaked = original.copy()
    cloaked[80:160, 190:260, 0] = np.clip(cloaked[80:160, 190:260, 0] + 0.03, 0, 1)
    calls = []
    assert FaceLook(original, box).cloak(cloaked, on_step=lambda *step: calls.append(step))
    assert len(calls) >= 3

    def stop(*step):
        raise Cancelled

    with pytest.raises(Cancelled):
        FaceLook(original, box).cloak(cloaked, on_step=stop)


def test_a_scoring_can_be_stopped_between_its_scales(astronaut):
    """One scoring of a 14 MP photo's face takes about 2 s, and Cancel waited it out (2.2 s
    from the click): each scale after the first is a point where a job stops."""
    from faceguard.progress import Cancelled

    x = torch.from_numpy(astronaut / 255.0).permute(2, 0, 1)[None].float()
    y = (x + 0.02).clamp(0, 1)
    calls = []
    assert float(ssimulacra2(x, y, between=lambda: calls.append(1))) == pytest.approx(
        float(ssimulacra2(x, y)))
    assert len(calls) == 5  # six scales at 512 px

    def stop():
        raise Cancelled

    with pytest.raises(Cancelled):
        ssimulacra2(x, y, between=stop)
    with pytest.raises(Cancelled):  # the original's side too: as long again
        prepare(x, between=stop)


def _jpeg_file(image: np.ndarray, quality: int) -> io.BytesIO:
    f = io.BytesIO()
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(f, "JPEG", quality=quality)
    f.seek(0)
    return f


@pytest.mark.parametrize("chroma", [CHROMA, 0.25])  # the default (none) and a share
def test_colour_guard_holds_the_chroma_budget(chroma):
    """Whatever the optimiser asks, Cb and Cr move at most chroma * budget per pixel,
    and L-inf and the [0, 1] range hold."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=gen)
    budget = 8 / 255 * torch.rand(2, 1, 32, 32, generator=gen)
    wild = x + torch.randn(x.shape, generator=gen) * 0.2
    out = project(wild, x, budget, chroma)
    ycc = to_ycc(out - x)
    assert (ycc[:, 1:].abs() <= chroma * budget + 1e-6).all()
    assert ((out - x).abs() <= budget + 1e-6).all()
    assert out.min() >= 0 and out.max() <= 1
    assert (ycc[:, 0].abs() > 1e-3).any()  # the brightness still moves
    # with no guard, the colour moves as much as the brightness
    free = to_ycc(project(wild, x, budget) - x)
    assert (free[:, 1:].abs() > chroma * budget + 1e-3).any()


def test_colour_guard_takes_out_a_tint_and_keeps_colour_detail():
    """With tint_px, a change of colour over the whole face (a tint) is taken out, while
    colour detail a few pixels wide and the brightness change stay."""
    x = torch.full((1, 3, 64, 64), 0.5)
    budget = torch.full_like(x[:, :1], 16 / 255)
    stripes = (torch.arange(64) % 4 < 2).float() * 2 - 1  # 4 px period, 1 or -1
    tint = torch.tensor([0.02, -0.01, -0.02]).view(1, 3, 1, 1)  # yellow-ish
    detail = tint.abs().sum() * stripes.view(1, 1, 1, -1) * torch.tensor([0, 1, -1.0]).view(
        1, 3, 1, 1) / 3
    bright = 0.03
    for change, colour_kept in ((tint, False), (detail, True)):
        out = project(x + change + bright, x, budget, 0.25, TINT_PX)
        ycc = to_ycc(out - x)[..., 16:48, 16:48]  # away from the reflected border
        asked = to_ycc((change + bright).expand_as(x))[..., 16:48, 16:48]
        assert torch.allclose(ycc[:, 0], asked[:, 0], atol=1e-4)  # brightness as asked
        kept = ycc[:, 1:].abs().mean() / asked[:, 1:].abs().clamp(max=0.25 * 16 / 255).mean()
        assert (kept > 0.5) if colour_kept else (kept < 0.05)
    # without tint_px the tint stays
    out = project(x + tint, x, budget, 0.25)
    assert to_ycc(out - x)[:, 1:].abs().mean() > 0.004


def test_lightness_cap_matches_ciede2000():
    """A grey change of the allowed size moves CIEDE2000 by about the headroom times
    delta_e."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    for grey in (0.15, 0.5, 0.85):
        x = torch.full((1, 3, 1, 1), grey)
        step = float(lightness_weight(x, 1.0, 2.5))  # the share of eps = 1
        a = np.full((1, 1, 3), grey)
        de = deltaE_ciede2000(rgb2lab(a), rgb2lab(a + step))
        assert float(de.item()) == pytest.approx(2.5 * LIGHTNESS_HEADROOM, abs=0.25)


def test_torch_ciede2000_matches_scikit_image(astronaut):
    """Lab and CIEDE2000 in torch agree with scikit-image's on a real face with noise,
    greys, black and white, and where nothing changed."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    from faceguard.visibility import ciede2000
    from faceguard.visibility.colour import colour_difference, srgb_to_lab

    rng = np.random.default_rng(0)
    a = astronaut[20:220, 140:320] / 255.0
    b = np.clip(a + rng.normal(0, 0.03, a.shape), 0, 1)
    a[:20], b[:20] = a[:20].mean(-1, keepdims=True), a[:20].mean(-1, keepdims=True)  # grey
    b[20:40] = b[20:40].mean(-1, keepdims=True)  # colour against grey
    a[40:50], b[50:60] = 0.0, 1.0
    b[60:80] = a[60:80]  # unchanged

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(2, 0, 1)[None]

    reference = deltaE_ciede2000(rgb2lab(a), rgb2lab(b))
    assert np.abs(srgb_to_lab(tensor(a))[0].permute(1, 2, 0).numpy() - rgb2lab(a)).max() < 1e-9
    assert np.abs(colour_difference(tensor(a), tensor(b))[0].numpy() - reference).max() < 1e-9
    assert np.abs(ciede2000(a, b) - reference).max() < 0.01  # the metric's float32
    assert (ciede2000(a, a) == 0).all()


def test_keep_visible_scales_a_visible_change_down_to_the_floor(astronaut):
    x = torch.from_numpy(astronaut[40:200, 150:300] / 255.0).permute(2, 0, 1)[None].float()
    noisy = (x + 12 / 255 * torch.randn_like(x)).clamp(0, 1)

    def seen(y: torch.Tensor) -> float:
        eight = (y * 255).round() / 255
        return float(ssimulacra2(x.double(), eight.double()))

    assert seen(noisy) < 70
    kept, saw = keep_visible(x, noisy, 80.0)
    assert 80 <= seen(kept) < 84  # as much as the floor allows, within a bisection step
    # what the guard saw is the face as kept, rounded to 8 bits, with its score
    assert saw.box == (0, 0, 150, 160)
    assert np.array_equal(saw.pixels, ((kept[0].permute(1, 2, 0) * 255).round() / 255).numpy())
    assert saw.ssimulacra2 == pytest.approx(seen(kept), abs=0.05)  # float32 against float64
    assert keep_visible(x, noisy, 1.0)[0] is noisy  # already within the floor


def test_keep_visible_keeps_the_colour_limit_at_the_95th_percentile(astronaut):
    """A change that shifts colour by about 4 CIEDE2000 units is scaled until the face's
    95th percentile, as measure_face reports it, is within the limit, and not far below."""
    from faceguard.visibility import ciede2000

    x = torch.from_numpy(astronaut[40:200, 150:300] / 255.0).permute(2, 0, 1)[None].float()
    changed = (x + 6 / 255 * torch.randn_like(x)).clamp(0, 1)

    def p95(y: torch.Tensor) -> float:
        def image(t: torch.Tensor) -> np.ndarray:
            return ((t[0].permute(1, 2, 0) * 255).round() / 255).double().numpy()

        return float(np.percentile(ciede2000(image(x), image(y)), 95))

    assert p95(changed) > 3.5
    kept, _ = keep_visible(x, changed, 1.0, colour=2.5)
    assert 2.2 <= p95(kept) <= 2.5
    assert keep_visible(x, changed, 1.0, colour=50.0)[0] is changed  # already within it


def test_jpeg_equivalent_search_brackets_the_score(astronaut):
    """The interpolating search against scoring all 19 qualities, for scores just either
    side of several qualities' own: the quality found scores at most the score, the next
    one more (the score is not quite monotonic in the quality, so that is what "the"
    quality means); at most 3 scorings near the first guess, where the default cloak
    lands."""
    from faceguard.visibility import _FIRST_GUESS, _jpeg_equivalent, jpeg_copy, scorer

    face = astronaut[50:190, 160:290] / 255.0
    seen = scorer(face)
    qualities = list(range(10, 101, 5))
    every = {q: seen(jpeg_copy(face, q)) for q in qualities}
    calls: list = []

    def counted(image):
        calls.append(1)
        return seen(image)

    near = (_FIRST_GUESS - 5, _FIRST_GUESS, _FIRST_GUESS + 5)
    for q in (10, 25, 50, *near, 90, 100):
        for target in (every[q] - 0.01, every[q] + 0.01):
            calls.clear()
            found = _jpeg_equivalent(face, target, counted)
            assert found == 10 or every[found] <= target
            assert found == 100 or every[found + 5] > target
            if q in near:
                assert len(calls) <= 3


def test_faces_side_by_side_keep_their_limits_together(astronaut):
    """Two faces so close that each one's change reaches into the other's measured
    region: each change kept its own face at the floor, so together they take the first
    face below it; keep_faces_visible brings both back, and nothing else moves."""
    from faceguard.cloak.budget import face_weight
    from faceguard.cloak.photo import keep_faces_visible, reached_by_others
    from faceguard.face import Face
    from faceguard.regions import face_region

    x = torch.from_numpy(astronaut / 255.0).permute(2, 0, 1)[None].float()
    faces = [Face((150.0, 60.0, 250.0, 200.0), np.zeros((5, 2)), 1.0),
             Face((235.0, 60.0, 335.0, 200.0), np.zeros((5, 2)), 1.0)]
    regions = [face_region(f, 512, 512) for f in faces]
    torch.manual_seed(0)
    image = x
    for f, (x0, y0, x1, y1) in zip(faces, regions, strict=True):
        crop = image[..., y0:y1, x0:x1]
        changed = (crop + 16 / 255 * face_weight(f, (x0, y0, x1, y1))
                   * torch.randn_like(crop)).clamp(0, 1)
        fx0, fy0, fx1, fy1 = face_box(f.box, 512, 512)
        image = image.clone()
        image[..., y0:y1, x0:x1] = keep_visible(crop, changed, 75.0,
                                                (fx0 - x0, fy0 - y0, fx1 - x0, fy1 - y0))[0]

    def scores(y: torch.Tensor) -> list[float]:
        saved = ((y[0].permute(1, 2, 0) * 255).round() / 255).double().numpy()
        return [measure_face(astronaut / 255.0, saved, f.box, jpeg=False)["ssimulacra2"]
                for f in faces]

    assert min(scores(image)) < 74.8  # each alone kept 75: together they do not
    # what each face's own guard scored is not what the photo shows of it
    assert reached_by_others(faces, regions, (512, 512)) == [0, 1]
    assert reached_by_others(faces, regions[:1] + [(400, 300, 500, 500)], (512, 512)) == []
    kept = keep_faces_visible(x, image, faces, regions, 75.0)
    assert all(75.0 <= s < 78 for s in scores(kept))
    x0, y0, x1, y1 = (min(r[0] for r in regions), min(r[1] for r in regions),
                      max(r[2] for r in regions), max(r[3] for r in regions))
    outside = torch.ones(512, 512, dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert torch.equal(kept[..., outside], x[..., outside])


def test_face_look_reuses_the_guards_score_only_for_what_it_scored():
    """The guard's score of a region is taken as it is only when the region and its
    pixels are the same and the original is 8-bit (the guard rounds the original)."""
    from faceguard.cloak.budget import Seen

    rng = np.random.default_rng(0)
    original = (rng.integers(0, 256, (48, 48, 3)) / 255).astype(np.float32)
    cloaked = np.clip(original + rng.choice([-2, 2], original.shape) / 255, 0, 1
                      ).astype(np.float32)
    box = (12, 12, 36, 36)
    x0, y0, x1, y1 = face_box(box, 48, 48)
    made_up = Seen((x0, y0, x1, y1), cloaked[y0:y1, x0:x1].copy(), 12.5)
    assert FaceLook(original, box, made_up).ssimulacra2(cloaked) == 12.5
    assert FaceLook(original, box, made_up).ssimulacra2(original) == 100.0  # other pixels
    sixteen_bit = original + np.float32(0.3 / 255)  # between 8-bit levels
    assert FaceLook(sixteen_bit, box, made_up).ssimulacra2(cloaked) != 12.5


def test_a_face_line_gives_the_written_files_score_where_its_compression_lowers_it():
    """The cloak keeps the floor; a JPEG written at quality 95 took one face from 88.6 to
    84.3, under the 85 the line had promised."""
    from faceguard.visibility import summary

    cloak = {"ssimulacra2": 88.6, "jpeg_equivalent": 75, "ciede2000_p95": 1.0}
    line = summary(cloak | {"saved_ssimulacra2": 84.29})
    assert line.endswith(
        "2.3 is just noticeable; 84.3 in the file written, its compression included)")
    assert line.startswith("invisible at normal size, faint up close")  # the file's words
    assert "file written" not in summary(cloak | {"saved_ssimulacra2": 88.4})
    assert "file written" not in summary(cloak)


def test_the_audits_words_and_most_visible_face_are_the_files():
    """The audit called a face "invisible at normal size" by its cloak's 75.17 where its
    file, 74.71, reads "faint at normal size" in the Protect step and without a manifest."""
    from faceguard.visibility import describe, in_words, most_visible

    face = {"ssimulacra2": 75.17, "saved_ssimulacra2": 74.71}
    assert in_words(face) == describe(74.71) == "faint at normal size, visible up close"
    other = {"ssimulacra2": 74.9}
    assert most_visible([other, face]) == face
    # another face reads as a lower JPEG quality at a higher score: the verdict gives both
    # (it said "like JPEG quality 70" where a face's own line said 60)
    faces = [{"ssimulacra2": 75.2, "jpeg_equivalent": 70},
             {"ssimulacra2": 77.6, "jpeg_equivalent": 60}]
    assert in_words(most_visible(faces)).endswith("(like JPEG quality 60-70)")
    assert in_words(most_visible(faces[:1])).endswith("(like JPEG quality 70)")


def test_the_guard_keeps_the_colour_limit_in_a_jpeg_file_or_else_before_saving(astronaut):
    """The colour limit was kept on the pixels before saving, and the file's compression
    took the face past it (5.1-5.9 against 5): it is kept as the file shows the face,
    close under the limit. At quality 50 the compression alone changes the colour by
    more (5.8), so the limit is the cloak's own, before saving, as for the floor."""
    from faceguard.cloak.budget import visible_scale
    from faceguard.io import Photo
    from faceguard.io.lossy import lossy_saving
    from faceguard.visibility import ciede2000

    x = torch.from_numpy(astronaut / 255.0).permute(2, 0, 1)[None].float()
    part = np.s_[..., 20:300, 100:360]  # a crop at (100, 20) in the photo
    box = (60, 20, 200, 200)  # the face, in the crop's pixels
    face = np.s_[20 + box[1]:20 + box[3], 100 + box[0]:100 + box[2]]
    torch.manual_seed(0)
    cloaked = x.clone()
    cloaked[part] = (x[part] + 8 / 255 * torch.randn_like(x[part])).clamp(0, 1)

    def p95(quality: int, saved) -> tuple[float, float]:
        """The face's colour change p95 in the file, and before saving."""
        a, _ = visible_scale(x[part], cloaked[part], 1.0, box, colour=5.0, saved=saved,
                             origin=(100, 20))
        kept = ((x + a * (cloaked - x))[0].permute(1, 2, 0).numpy() * 255).round()
        file = io.BytesIO()
        Image.fromarray(kept.astype(np.uint8)).save(file, "JPEG", quality=quality,
                                                    subsampling=0)
        shown = np.asarray(Image.open(file), dtype=np.float32) / 255
        return tuple(float(np.percentile(ciede2000(astronaut[face] / 255.0, y[face]), 95))
                     for y in (shown, kept / 255))

    for quality in (98, 95):
        saved = lossy_saving(Photo(pixels=astronaut / 255.0), "jpeg", quality)
        assert 4.5 < p95(quality, saved)[0] <= 5.0
        assert p95(quality, None)[0] > 5.0  # kept before saving alone
    saved = lossy_saving(Photo(pixels=astronaut / 255.0), "jpeg", 50)
    in_file, before = p95(50, saved)
    assert 4.5 < before <= 5.0 < in_file


def test_the_guard_keeps_the_floor_in_a_jpeg_file_or_else_before_saving(astronaut):
    """At quality 95 the face keeps the floor as the whole JPEG file shows it; at quality
    30 the compression alone breaks it, and the floor is the cloak's own before saving
    (the cloak was removed); either way what it saw is of the face box it was given."""
    from faceguard.cloak.budget import visible_scale
    from faceguard.io import Photo
    from faceguard.io.lossy import lossy_saving

    x = torch.from_numpy(astronaut / 255.0).permute(2, 0, 1)[None].float()
    part = np.s_[..., 20:300, 100:360]  # a crop at (100, 20) in the photo
    box = (60, 20, 200, 200)  # the face, in the crop's pixels
    torch.manual_seed(0)
    cloaked = x.clone()
    cloaked[part] = (x[part] + 10 / 255 * torch.randn_like(x[part])).clamp(0, 1)
    floor = 86.0
    for quality in (95, 30):
        saved = lossy_saving(Photo(pixels=astronaut / 255.0), "jpeg", quality)
        a, seen = visible_scale(x[part], cloaked[part], floor, box, saved=saved,
                                origin=(100, 20))
        assert 0 < a < 1 and seen.box == box and seen.ssimulacra2 >= floor
        kept = x + a * (cloaked - x)
        file = io.BytesIO()
        Image.fromarray((kept[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                        ).save(file, "JPEG", quality=quality, subsampling=0)
        shown = np.asarray(Image.open(file), dtype=np.float32) / 255
        face = np.s_[20 + box[1]:20 + box[3], 100 + box[0]:100 + box[2]]
        in_file = score(astronaut[face] / 255.0, shown[face])
        if quality == 95:
            assert in_file == pytest.approx(seen.ssimulacra2, abs=1e-3)
        else:  # kept before saving; the file's own loss on top
            before = (kept[0].permute(1, 2, 0).numpy() * 255).round() / 255
            assert score(astronaut[face] / 255.0, before[face]) >= floor > in_file
