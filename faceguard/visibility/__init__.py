"""How visible a cloak is, as people see it: in colour, on the face, in plain words.

The headline is SSIMULACRA2 of the face region (the face box grown 1.3x, clipped to
the photo), with its *JPEG equivalent*: the JPEG quality at which re-encoding the
original face scores the same, so "75" reads "about as visible as saving it at JPEG
quality 65". CIEDE2000 (the CIE's colour difference; about 2.3 is just noticeable)
says whether colours shifted. Grey SSIM, PSNR and L-inf stay for continuity.

SSIMULACRA2 is computed with :mod:`faceguard.visibility.differentiable`, a torch port
that matches the ``ssimulacra2`` reference package (a test keeps them together) on
regions from 225 px; on smaller ones it weighs each scale's features as the reference
does at full size, where the reference's own score is far too kind to a cloak.
Images are (H, W, 3) float arrays in [0, 1] unless said otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from faceguard.cloak.budget import Seen

from faceguard.visibility.words import (
    NOTICEABLE_COLOUR,
    SCALE,
    describe,
    face_words,
    in_words,
    most_visible,
    seen_colour,
    seen_score,
    summary,
)

# torch is imported where it is used: the CLI reads the words at start-up
__all__ = ["FACE_GROWTH", "NOTICEABLE_COLOUR", "SCALE", "FaceLook", "describe", "face_box",
           "face_words", "in_words", "jpeg_copy", "jpeg_equivalent", "linf", "measure_face",
           "most_visible", "psnr", "score", "scorer", "seen_colour", "seen_score", "ssim",
           "summary"]

#: the face region visibility is measured on: the face box grown by this factor
FACE_GROWTH = 1.3

def face_box(box: Sequence[float], width: int, height: int,
             growth: float = FACE_GROWTH) -> tuple[int, int, int, int]:
    """The face box (x0, y0, x1, y1) grown ``growth`` times about its centre, in whole
    pixels clipped to a ``width`` x ``height`` photo (end-exclusive)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, growth * (x1 - x0) / 2, growth * (y1 - y0) / 2
    return (max(0, int(np.floor(cx - hw))), max(0, int(np.floor(cy - hh))),
            min(width, int(np.ceil(cx + hw))), min(height, int(np.ceil(cy + hh))))


def _tensor(image: np.ndarray):
    """(H, W, C) in [0, 1] -> (1, 3, H, W) float32 tensor (grey repeated to three
    channels), on the GPU when there is one. float32 agrees with float64 to about 1e-3
    points and takes half the time: a 12-megapixel photo's face is a million pixels."""
    import torch

    from faceguard.device import pick_device

    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    t = t[..., None] if t.ndim == 2 else t
    return t.permute(2, 0, 1)[None].expand(1, 3, -1, -1).to(pick_device())


def scorer(original: np.ndarray, between: Callable[[], None] | None = None
           ) -> Callable[..., float]:
    """SSIMULACRA2 against ``original`` ((H, W, 3) in [0, 1]) as a function of the other
    image (and ``between``, see :func:`~faceguard.visibility.differentiable.ssimulacra2`):
    the original's side is computed once for all the images it scores (``between`` is
    called between its scales too)."""
    import torch

    from faceguard.visibility.differentiable import prepare, ssimulacra2

    with torch.no_grad():
        ref = prepare(_tensor(original), between=between)

    def seen(other: np.ndarray, between: Callable[[], None] | None = None) -> float:
        if np.array_equal(original, other):
            return 100.0
        with torch.no_grad():
            return float(ssimulacra2(ref, _tensor(other), between=between))

    return seen


def score(original: np.ndarray, cloaked: np.ndarray) -> float:
    """SSIMULACRA2 of two (H, W, 3) images in [0, 1] (100 = identical)."""
    return 100.0 if np.array_equal(original, cloaked) else scorer(original)(cloaked)


def jpeg_copy(image: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) in [0, 1] as saved at JPEG ``quality`` (Pillow) and read back, float64."""
    from PIL import Image

    from faceguard.io import uint8_pixels

    buffer = io.BytesIO()
    Image.fromarray(uint8_pixels(image)).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float64) / 255


def jpeg_equivalent(original: np.ndarray, score_: float, step: int = 5) -> int:
    """The JPEG quality (10-100 in steps of ``step``, Pillow's defaults) at which
    re-encoding ``original`` scores ``score_``: the cloak is "about as visible as saving
    at JPEG quality N".

    The highest quality scoring at most ``score_`` (the score rises with the quality);
    100 when the cloak is less visible than even quality 100, 10 when more visible than
    quality 10. Steps of 5 are as fine as "about" needs. Each scoring costs seconds on a
    large face, so the search starts at :data:`_FIRST_GUESS` and inter- or extrapolates
    where the score crosses ``score_``: 2-3 scorings near the first guess where bisection
    took 5-6. Quality 100 is scored only when the answer may be 100 (scored first before:
    over the astronaut's face and 57 scores around every quality's, 232 scorings against
    294).
    """
    return _jpeg_equivalent(original, score_, scorer(original), step)


#: the quality the JPEG-equivalent search scores first: where the default cloak lands
#: (`balanced`: like quality 65, measured.MEASURED_LOOKS). From 90, where cloaks
#: landed before small faces were scored per scale, 35 scores of 62-80 on 5 album
#: faces took 149 scorings; from 65, 128, with the same answers.
_FIRST_GUESS = 65


def _jpeg_equivalent(original: np.ndarray, score_: float,
                     seen: Callable[[np.ndarray], float], step: int = 5) -> int:
    qualities = list(range(10, 101, step))
    if qualities[-1] != 100:
        qualities.append(100)
    scores: dict[int, float] = {}  # index -> score of that quality

    def below(i: int) -> bool:
        scores[i] = seen(jpeg_copy(original, qualities[i]))
        return scores[i] <= score_

    # the answer's index is in [lo, hi); lo = 0 may be unscored, and hi starts past the
    # last quality (the answer may be 100 itself)
    lo, hi = 0, len(qualities)
    guess = min(range(hi), key=lambda i: abs(qualities[i] - _FIRST_GUESS))
    while hi - lo > 1:
        mid = min(max(guess, lo + 1), hi - 1)
        if below(mid):
            lo = mid
        else:
            hi = mid
        guess = _crossing(scores, score_, lo, hi)
    return qualities[lo]


#: how many points the score rises from one quality to the next (5 up) near the first
#: guess: 2.5 on 11 album faces (1.8-3.2 from 60 to 70). From the first scoring alone the
#: search extrapolates with it; halving the bracket there instead took 3.6 scorings for
#: scores of 74-78 (where the default cloak lands) against 2.6 with it, for the same
#: qualities (a simulation on those faces' scores, not kept).
_RISE = 2.5


def _crossing(scores: dict[int, float], score_: float, lo: int, hi: int) -> int:
    """The index where the score crosses ``score_``, inter- or extrapolated linearly from
    two scored indices: the bracket's ends when both are scored, else the two nearest it
    on its scored side; from one scored index with the typical rise (:data:`_RISE`); the
    bracket's middle when there is none."""
    if lo in scores and hi in scores:
        pair = [lo, hi]
    elif hi in scores:
        pair = sorted(k for k in scores if k >= hi)[:2]
    else:
        pair = sorted(k for k in scores if k <= lo)[-2:]
    if len(pair) == 1:
        return pair[0] + int(np.floor((score_ - scores[pair[0]]) / _RISE))
    if len(pair) < 2 or scores[pair[1]] <= scores[pair[0]]:
        return (lo + hi) // 2
    a, b = pair
    return a + int(np.floor((score_ - scores[a]) * (b - a) / (scores[b] - scores[a])))


def linf(original: np.ndarray, cloaked: np.ndarray) -> float:
    """Largest per-pixel change, in grey levels (0-255)."""
    return float(np.abs(cloaked.astype(np.float64) - original).max() * 255)


def psnr(original: np.ndarray, cloaked: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (inf when identical)."""
    mse = float(np.mean((cloaked.astype(np.float64) - original) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def ssim(original: np.ndarray, cloaked: np.ndarray) -> float:
    """Grey-level structural similarity (Wang et al. 2004; scikit-image, 7x7 window),
    averaged over channels. Kept for continuity only: it cannot see colour."""
    from skimage.metrics import structural_similarity

    h, w = original.shape[:2]
    win = min(7, h, w)
    win -= 1 - win % 2  # odd window, as SSIM needs
    return float(structural_similarity(original, cloaked, data_range=1.0, channel_axis=2,
                                       win_size=max(win, 3)))


def ciede2000(original: np.ndarray, cloaked: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 colour difference (H, W) of two sRGB images in [0, 1]
    (:mod:`faceguard.visibility.colour`, in float32: within 0.003 of float64)."""
    import torch

    from faceguard.visibility.colour import colour_difference

    with torch.no_grad():
        return colour_difference(_tensor(original), _tensor(cloaked))[0].cpu().numpy()


class FaceLook:
    """How visible the change is on one face of a photo, for each version of the photo
    measured against the one original: the original's side of SSIMULACRA2 is computed
    once (on a 12-megapixel photo's face, most of a scoring's second or two).

    Args:
        original: (H, W, 3) or (H, W) the full-resolution photo in [0, 1].
        box: the face box (x0, y0, x1, y1) in its pixels; the region measured is the box
            grown :data:`FACE_GROWTH` times, clipped to the photo.
        seen: what the cloak's visibility guard scored on this photo
            (:class:`faceguard.cloak.budget.Seen`, in its pixels): when it is this
            region of an 8-bit original and a version's region has its pixels (the cloak's,
            or a JPEG file's as the guard saw it, :mod:`faceguard.io.lossy`), its score
            is not computed again.
    """

    def __init__(self, original: np.ndarray, box: Sequence[float],
                 seen: Seen | None = None) -> None:
        h, w = original.shape[:2]
        x0, y0, x1, y1 = face_box(box, w, h)
        self.region = np.s_[y0:y1, x0:x1]
        bx0, by0 = (max(0, int(round(v))) for v in box[:2])
        self.box = np.s_[by0:min(h, int(round(box[3]))), bx0:min(w, int(round(box[2])))]
        self.original = original
        self.face = _rgb(original[self.region])
        self._scorer: Callable[[np.ndarray], float] | None = None  # made when first needed
        # regions scored, in float32 (the scorer sees nothing finer): the guard's (or the
        # first scored), and the last
        self._known: list[tuple[np.ndarray, float]] = []
        # the guard scored against the original rounded to 8 bits: the same only if it is
        if (seen is not None and seen.box == (x0, y0, x1, y1)
                and np.array_equal(np.round(self.face * 255) / 255, self.face)):
            self._known.append((seen.pixels, seen.ssimulacra2))

    def ssimulacra2(self, other: np.ndarray, between: Callable[[], None] | None = None
                    ) -> float | None:
        """SSIMULACRA2 of ``other``'s face region (a photo like the original); None
        when the region is under 8 pixels. ``between``: called between its scales."""
        if min(self.face.shape[:2]) < 8:
            return None
        b = np.array(_rgb(other[self.region]), dtype=np.float32)  # a copy: ``other`` may change
        for pixels, score in self._known:
            if np.array_equal(pixels, b):
                return score  # e.g. a lossless save of the measured cloak
        self._known = [*self._known[:1], (b, self._seen(b, between))][-2:]
        return self._known[-1][1]

    def _seen(self, other_face: np.ndarray, between: Callable[[], None] | None = None
              ) -> float:
        if self._scorer is None:
            self._scorer = scorer(self.face, between)
        return self._scorer(other_face, between)

    def cloak(self, cloaked: np.ndarray, jpeg: bool = True,
              on_step: Callable[[int, int], None] | None = None) -> dict[str, float]:
        """The cloak's own visibility (rounded): ``ssimulacra2`` of the face region,
        ``jpeg_equivalent`` (when ``jpeg``), ``ciede2000_mean`` and ``ciede2000_p95``
        over the region, and, for continuity, ``linf`` (grey levels), ``psnr`` (dB)
        and ``ssim`` (grey) of the face box. ``on_step(0, 1)`` is called before each
        scoring, between its scales, and before the colour measure (seconds each on a
        huge face): points where a cancelled job stops."""
        import torch

        from faceguard.visibility.colour import face_change

        stop = None if on_step is None else partial(on_step, 0, 1)  # a scoring takes seconds

        def scored(face: np.ndarray) -> float:
            if stop is not None:
                stop()
            return self._seen(face, stop)

        out: dict[str, float] = {}
        s = self.ssimulacra2(cloaked, stop)
        if s is not None:
            out["ssimulacra2"] = round(s, 2)
            if jpeg:
                out["jpeg_equivalent"] = _jpeg_equivalent(self.face, s, scored)
        if on_step is not None:
            on_step(0, 1)
        delta_e = ciede2000(self.face, _rgb(cloaked[self.region]))
        out["ciede2000_mean"] = round(float(delta_e.mean()), 3)
        out["ciede2000_p95"] = round(face_change(torch.from_numpy(delta_e)), 3)
        a, b = self.original[self.box], cloaked[self.box]  # the figures kept from before
        out |= {"linf": round(linf(a, b), 2), "psnr": round(psnr(a, b), 2),
                "ssim": round(ssim(a, b), 4)}
        return out

    def saved(self, saved: np.ndarray) -> dict[str, float]:
        """The face after saving (JPEG adds its own loss): ``saved_ssimulacra2`` and
        ``saved_ciede2000_p95`` of the face region and ``saved_linf`` (grey levels) of
        the face box."""
        import torch

        from faceguard.visibility.colour import face_change

        delta_e = ciede2000(self.face, _rgb(saved[self.region]))
        out = {"saved_linf": round(linf(self.original[self.box], saved[self.box]), 2),
               "saved_ciede2000_p95": round(face_change(torch.from_numpy(delta_e)), 3)}
        s = self.ssimulacra2(saved)
        if s is not None:
            out["saved_ssimulacra2"] = round(s, 2)
        return out


def measure_face(original: np.ndarray, cloaked: np.ndarray, box: Sequence[float],
                 jpeg: bool = True) -> dict[str, float]:
    """How visible the change is on one face of two full-resolution photos (H, W, 3):
    :meth:`FaceLook.cloak`."""
    return FaceLook(original, box).cloak(cloaked, jpeg)


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
