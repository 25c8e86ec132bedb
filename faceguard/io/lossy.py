"""What a lossy file does to the pixels written: JPEG and lossy WebP add their own loss
on top of the cloak's, and a face's visibility floor is kept as the file shows it.

The cloak's visibility guard (:func:`faceguard.cloak.budget.visible_scale`) scores the
face as :class:`Lossy` gives it back: the part of the photo around the face encoded
and decoded as :func:`faceguard.io.save_photo` writes it. Before, it scored the
pixels before saving, and the album's JPEG files showed faces at 73.8 against a floor of
75 (``benchmarks/results/protection-album-12-06.json``).

JPEG with 4:4:4 chroma codes each 8x8 block on its own (ITU-T T.81, annex A), so a part
cut on the photo's 8-pixel grid decodes to exactly the whole file's pixels there. Lossy
WebP (VP8) predicts each 16x16 macroblock from its neighbours, filters across their
edges and sets its quantisers from the whole picture: a part reads up to about a point
kinder than the file (0.2-1.0 on album faces at quality 95), so the guard keeps a
:attr:`Lossy.margin` above the floor for it.

A photo with transparency is written over white where the format has none (JPEG), and
with its alpha beside a lossy picture where it has (WebP). A part of it is coded as it
shows over white, and the loss added to its own pixels: where the part is opaque (a
face, nearly always), the file's pixels in a JPEG and close to them in a WebP. Before,
the guard scored such a photo's pixels before saving, and a face of a transparent lossy
WebP read 74.1 in its file against a floor of 75 (76.2 now).

A CMYK JPEG is written in inks (:mod:`faceguard.io.inks`), and its part is coded in the
same inks: an album photo saved as CMYK showed its face at 74.8 in its file before, 75.2
now.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from faceguard.io.inks import inks_of_rgb, rgb_of_inks
from faceguard.io.photo import Photo
from faceguard.io.shown import grey_profile, over_white
from faceguard.io.tensors import uint8_pixels
from faceguard.io.write import _save_params, _target_mode, output_format


@dataclass(frozen=True)
class Lossy:
    """A lossy format's encoding, to apply to a part of a photo.

    Attributes:
        format: the Pillow format ("JPEG" or "WEBP").
        mode: the Pillow mode written ("RGB", "L": a grey photo's one channel, or
            "CMYK": a CMYK JPEG's inks).
        params: Pillow's save parameters (quality, chroma subsampling).
        grid: the block size, in pixels, a part is cut on (see :meth:`grid_box`).
        margin: SSIMULACRA2 points a part may read kinder than the whole file.
        alpha: the photo's (H, W) opacity in [0, 1], or None (see :meth:`part_at`).
        inks: a CMYK photo's (H, W, 4) uint8 inks as read, or None: the part is inked
            with their black, as :func:`faceguard.io.save_photo` inks the photo.
        at: where the part :meth:`__call__` codes lies in the photo, (x, y).
    """

    format: str
    mode: str
    params: dict
    grid: int
    margin: float = 0.0
    alpha: np.ndarray | None = field(default=None, repr=False, compare=False)
    inks: np.ndarray | None = field(default=None, repr=False, compare=False)
    at: tuple[int, int] = (0, 0)

    def part_at(self, x: int, y: int) -> Lossy:
        """This encoding, for a part whose top-left is (x, y) in the photo (which places
        the part's alpha)."""
        return replace(self, at=(x, y))

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 -> the (h, w, 3) float32 in [0, 1] a file shows of them: with
        alpha, the pixels plus what coding them over white (as the file does) changed;
        in CMYK, the inks the file codes, as a viewer shows them."""
        coded = pixels
        (x, y), (h, w) = self.at, pixels.shape[:2]
        if self.alpha is not None:  # (a CMYK file has none)
            coded = uint8_pixels(over_white(pixels / np.float32(255),
                                            self.alpha[y:y + h, x:x + w]))
        if self.mode == "CMYK":
            part = None if self.inks is None else self.inks[y:y + h, x:x + w]
            image = Image.frombytes("CMYK", (w, h),
                                    inks_of_rgb(pixels / np.float32(255), part).tobytes())
        else:
            image = Image.fromarray(coded[..., 0] if self.mode == "L" else coded)
        buffer = io.BytesIO()
        image.save(buffer, format=self.format, **self.params)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            decoded = decoded.convert(self.mode)
            out = (rgb_of_inks(np.asarray(decoded)) if self.mode == "CMYK"
                   else np.asarray(decoded, dtype=np.float32) / 255)
        if self.mode == "L":
            out = np.repeat(out[..., None], 3, axis=2)
        if coded is not pixels:  # the loss, on the pixels themselves (opaque: the file's)
            out = (out + (pixels.astype(np.float32) - coded) / 255).clip(0, 1)
        return out

    def grid_box(self, box: tuple[int, int, int, int], origin: tuple[int, int],
                 size: tuple[int, int]) -> tuple[int, int, int, int]:
        """``box`` (x0, y0, x1, y1) in an image of ``size`` (w, h) that lies at ``origin``
        (x, y) in the photo, grown to the photo's block grid and clipped to the image:
        cut there, the part is coded in the same blocks as in the file. Where the image
        ends first (a face within a block of its crop's edge), that side is not on the
        grid, and the part decodes close to the file's pixels, not to the bit."""
        g, (ox, oy), (w, h) = self.grid, origin, size
        x0, y0, x1, y1 = box
        return (max(0, x0 - (ox + x0) % g), max(0, y0 - (oy + y0) % g),
                min(w, x1 + -(ox + x1) % g), min(h, y1 + -(oy + y1) % g))


def lossy_saving(photo: Photo, format: str, quality: int) -> Lossy | None:
    """How :func:`faceguard.io.save_photo` writes ``photo`` in ``format`` (a user's choice,
    see :func:`faceguard.io.output_format`) at ``quality``, when that loses detail; None
    for a lossless file, and where what is seen is not the pixels as coded (a grey
    profile's tones): the guard then scores the pixels themselves, and the manifest
    says the file's score as a viewer shows it."""
    fmt = output_format(photo, format)
    mode = _target_mode(photo, fmt).removesuffix("A")  # the alpha is coded apart
    if (fmt not in ("JPEG", "WEBP") or mode not in ("RGB", "L", "CMYK")
            or grey_profile(photo) or fmt == "WEBP" and photo.lossless):
        return None
    params = {k: v for k, v in _save_params(photo, fmt, mode, quality, "strip").items()
              if k in ("quality", "qtables", "subsampling")}  # the pixels', not the file's
    grid, margin = (8, 0.0) if fmt == "JPEG" else (16, 1.2)
    return Lossy(fmt, mode, params, grid, margin, photo.alpha, photo.inks)
