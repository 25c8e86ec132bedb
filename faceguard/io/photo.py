"""The photo as FaceGuard holds it: pixels plus what is needed to write it back.

Also the formats FaceGuard reads and writes, and the pixel limit that guards against
decompression bombs (:class:`PixelLimit`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_MAX_PIXELS = 120_000_000
"""Largest photo accepted by default: 120 megapixels (a 50 MP camera photo is fine)."""

# Pillow format name -> lower-case file suffixes, first one canonical for writing.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "BMP": (".bmp", ".dib"),
    "TIFF": (".tif", ".tiff"),
    "PPM": (".pgm", ".ppm", ".pnm", ".pbm"),
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(s for v in _SUFFIXES.values() for s in v)
"""Lower-case suffixes that :func:`find_photos` picks up in folders."""

_READABLE = ("JPEG", "PNG", "WEBP", "BMP", "DIB", "TIFF", "PPM")  # Pillow plugin names
_READABLE_TEXT = "JPEG, PNG, WebP, BMP, TIFF, PGM/PPM"
_KEEP = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "BMP": "BMP",
         "DIB": "BMP", "TIFF": "TIFF", "PPM": "PPM"}  # input format -> format written by "keep"
_FORMAT_NAMES = {"JPG": "JPEG", "TIF": "TIFF", "PGM": "PPM", "PNM": "PPM"}  # user spellings
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})
_ICC_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})
_GREY_MODES = frozenset({"1", "L", "LA", "La"})
_GREY16_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
# 16-bit colour PNGs, PPMs and TIFFs, which Pillow reads as 8 bits (faceguard.io.deep)
_COLOUR16_MODES = frozenset({"RGB;16", "RGBA;16"})


@dataclass(frozen=True)
class PixelLimit:
    """The most pixels (width x height) a photo may declare, checked before decoding.

    :data:`DEFAULT_LIMIT` is the default (:data:`DEFAULT_MAX_PIXELS`); :data:`NO_LIMIT` is for
    files FaceGuard wrote itself; :meth:`megapixels` reads the user's
    ``--max-megapixels``.
    """

    pixels: int | None = DEFAULT_MAX_PIXELS  # None: no limit

    @classmethod
    def megapixels(cls, value: float | None) -> PixelLimit:
        """The limit for ``value`` megapixels (None: the default limit)."""
        if value is None:
            return cls()
        if value <= 0:
            raise ValueError("the megapixel limit must be positive")
        return cls(int(value * 1e6))

    def exceeded_by(self, width: int, height: int) -> bool:
        return self.pixels is not None and width * height > self.pixels


DEFAULT_LIMIT = PixelLimit()
"""The default pixel limit (:data:`DEFAULT_MAX_PIXELS`)."""

NO_LIMIT = PixelLimit(None)
"""No pixel limit: for files FaceGuard wrote itself (the cloaked outputs)."""


class PhotoError(Exception):
    """A photo cannot be read or written. ``str()`` is one line: ``"<file>: <reason>"``."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{os.fspath(path)}: {reason}")


@dataclass(eq=False)
class Photo:
    """A decoded photo plus what is needed to write it back faithfully.

    Attributes:
        pixels: (H, W, 3) float32 RGB in [0, 1], EXIF orientation applied.
        path: the file it came from (None for an in-memory photo).
        format: Pillow's name of the input format ("JPEG", "PNG", "WEBP", ...).
        mode: the original Pillow mode ("RGB", "L", "LA", "P", "RGBA", "CMYK", "I;16", ...);
            "RGB;16" or "RGBA;16" for a 16-bit colour PNG, PPM or TIFF.
        alpha: (H, W) float32 opacity in [0, 1], or None.
        icc_profile: the embedded ICC colour profile, or None.
        exif: the original EXIF, read only by ``save_photo(metadata="keep")``.
        inks: (H, W, 4) uint8 C, M, Y, K of a CMYK original, so that writing CMYK keeps
            the black channel, and every ink of the pixels left unchanged (a rich black,
            K 100% over C, M and Y, shows as plain black in RGB); None otherwise.
        lossless: the file was a lossless WebP (written lossless again as WebP).
        stat: [size in bytes, modification time in ns] of the file as it was read, so that
            a file changed since is told apart (None for an in-memory photo).
        jpeg_data: the file's bytes when it is a JPEG (or MPO), so that
            :func:`~faceguard.io.copy_photo` can write its picture again without
            re-encoding it; None otherwise, and for pixels changed by :meth:`with_pixels`.
        jpeg_tables: a JPEG's quantization tables (Pillow's ``quantization``: table
            number -> 64 steps), so that it is written again no coarser than it came
            (:func:`~faceguard.io.save_photo`); None for other formats.
        png_colour: a PNG's colour chunks (gAMA, cHRM, sRGB) as (type, body) pairs: how a
            viewer shows a PNG that has no ICC profile, written again into a PNG.

    A JPEG read only to be copied (``load_photo(..., decode=False)``) has no pixels:
    (0, 0, 3), :attr:`has_pixels` False; :func:`~faceguard.io.copy_photo` decodes it
    only if its picture cannot be copied as it is.
    """

    pixels: np.ndarray
    path: Path | None = None
    format: str = "PNG"
    mode: str = "RGB"
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: Image.Exif | None = None
    inks: np.ndarray | None = None
    lossless: bool = False
    stat: list[int] | None = None
    jpeg_data: bytes | None = field(default=None, repr=False)
    jpeg_tables: dict[int, list[int]] | None = field(default=None, repr=False)
    png_colour: tuple[tuple[bytes, bytes], ...] = ()

    def __post_init__(self) -> None:
        self.pixels = np.asarray(self.pixels, dtype=np.float32)
        if self.pixels.ndim != 3 or self.pixels.shape[2] != 3:
            raise ValueError(f"pixels must be (H, W, 3), got {self.pixels.shape}")
        for name in ("alpha", "inks"):
            plane = getattr(self, name)
            if plane is not None and plane.shape[:2] != self.pixels.shape[:2]:
                raise ValueError(f"{name} must be {self.pixels.shape[:2]}, got {plane.shape}")

    @classmethod
    def from_array(cls, image: np.ndarray) -> Photo:
        """An in-memory RGB photo from (H, W, 3) uint8 in 0..255 or float in [0, 1]."""
        image = np.asarray(image)
        if image.dtype == np.uint8:
            return cls(pixels=image.astype(np.float32) / 255)
        return cls(pixels=image.astype(np.float32))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, as Pillow reports sizes."""
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def has_pixels(self) -> bool:
        """False for a JPEG read only to be copied (its pixels were not decoded)."""
        return self.pixels.size > 0

    @property
    def is_grey(self) -> bool:
        """True for greyscale originals (modes 1, L, LA, I;16, I): written back as grey."""
        return self.mode in _GREY_MODES or self.mode in _GREY16_MODES

    def with_pixels(self, pixels: np.ndarray) -> Photo:
        """The same photo and metadata with new (H, W, 3) pixels (e.g. cloaked)."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.shape != self.pixels.shape:
            raise ValueError(f"pixels must keep the shape {self.pixels.shape}, got {pixels.shape}")
        return dataclasses.replace(self, pixels=pixels, jpeg_data=None)

    def shrunk(self, max_side: int | None) -> Photo:
        """The photo with its long side at most ``max_side`` px, as photo editors shrink
        (Lanczos, each plane in floating point); itself when it fits already, when
        ``max_side`` is None, or when its pixels were not decoded. Shrunk, it is written
        anew: a JPEG's picture is not copied, and a CMYK photo's inks are its new pixels'.
        """
        size = shrunk_size(*self.size, max_side)
        if size == self.size or not self.has_pixels:
            return self

        def fit(plane: np.ndarray) -> np.ndarray:
            return np.asarray(Image.fromarray(np.ascontiguousarray(plane), "F")
                              .resize(size, Image.LANCZOS), dtype=np.float32)

        pixels = np.stack([fit(self.pixels[..., c]) for c in range(3)], axis=2)
        alpha = None if self.alpha is None else fit(self.alpha).clip(0, 1)
        return dataclasses.replace(self, pixels=pixels.clip(0, 1), alpha=alpha, inks=None,
                                   jpeg_data=None)

    def shrunk_as(self, written: Photo) -> Photo:
        """This original shrunk as ``written``, a copy of it written smaller (a cloak run's
        ``max_side``), was: the two then compare pixel by pixel."""
        return self.shrunk(max(written.size))


#: the smallest long side a photo may be shrunk to (px): a face in it is still found
MIN_SIDE = 100


def shrunk_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) of a photo of that size shrunk to a long side of ``max_side`` px
    (unchanged when it fits, or for None)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _megapixels(pixels: int) -> str:
    mp = pixels / 1e6
    return f"{mp:.0f}" if mp >= 10 or mp == round(mp) else f"{mp:.1f}"


def _nice(fmt: str) -> str:
    return {"WEBP": "WebP", "PPM": "PGM/PPM", "MPO": "JPEG"}.get(fmt, fmt)
