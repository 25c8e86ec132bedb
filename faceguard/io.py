"""Safe photo input and output: the only place FaceGuard touches image files.

Reading (:func:`load_photo`)
    JPEG (also camera MPO files: the first picture), PNG, WebP, BMP, TIFF and PGM/PPM,
    recognised by their content, not their name (the test album holds a WebP named
    ``.jpg``). EXIF orientation is applied to the pixels. Every pixel mode becomes
    ``(H, W, 3)`` float32 RGB in [0, 1] for the models, and the :class:`Photo` remembers
    how to write it back: grey stays grey, 16-bit grey stays 16-bit, alpha is kept,
    CMYK keeps its black ink. The declared size is checked against a pixel limit
    *before* decoding, so a decompression bomb costs nothing. Refused with a clear
    :class:`PhotoError`: GIF (palette animations; a cloak cannot survive 256 colours),
    animated WebP/PNG and multi-page TIFF (only still photos are protected), 32-bit
    float images, and anything below 16x16 pixels.

Writing (:func:`save_photo`)
    PNG, JPEG, WebP, TIFF, BMP or PGM/PPM, chosen from the file name, or ``"keep"``:
    the input's own format, written natively (MPO becomes plain JPEG). JPEG and WebP
    are lossy at ``quality`` (JPEG with 4:4:4 chroma, so the cloak's colour detail is
    not halved); the rest are lossless (TIFF deflate-compressed, or uncompressed when it
    keeps EXIF: libtiff cannot write the EXIF sub-IFD). Formats that cannot hold alpha (JPEG, BMP,
    PGM/PPM) get the photo composited onto white; PNG cannot hold CMYK, so CMYK is
    written as RGB there. Palette ("P") photos are written as RGB(A): re-quantising to
    256 colours would erase the cloak.

Metadata policy
    ``metadata="strip"`` (default) writes no EXIF, IPTC, XMP or comments at all: GPS,
    captions, names, serial numbers and the EXIF thumbnail (an uncloaked copy of the
    face!) are gone. The ICC colour profile is kept wherever the format can hold it
    and it fits the written colour space. ``metadata="keep"`` additionally writes a
    whitelist of non-identifying EXIF tags (:data:`KEPT_EXIF_TAGS`: camera and lens
    make/model, exposure settings, colour space, resolution) with Orientation reset to
    1, because the orientation is already applied to the pixels. Dates are not kept:
    a capture time links a photo to an event and a place.

Safety
    Writes are atomic (a temporary file in the destination folder, then a rename), an
    existing file is replaced only with ``overwrite=True``, and the input photo is
    never written to, whatever the options.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import struct
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "KEPT_EXIF_TAGS",
    "MIN_SIDE",
    "SUPPORTED_SUFFIXES",
    "Photo",
    "PhotoError",
    "find_photos",
    "from_tensor",
    "load_photo",
    "output_format",
    "output_suffix",
    "save_photo",
    "to_tensor",
]

DEFAULT_MAX_PIXELS = 120_000_000
"""Largest photo accepted by default: 120 megapixels (a 50 MP camera photo is fine)."""

MIN_SIDE = 16
"""Smallest width or height accepted: below 16 pixels there is no face to protect."""

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

_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_INTEROP_IFD = 0xA005

# The whitelist of metadata="keep". Everything else is dropped: GPS, dates, captions
# (ImageDescription, UserComment, XP* tags), people (Artist, Copyright, CameraOwnerName),
# serial numbers, ImageUniqueID, SubjectArea (where the face is), MakerNote, thumbnail.
KEPT_EXIF_TAGS: dict[str, frozenset[int]] = {
    "IFD0": frozenset({
        0x010F,  # Make
        0x0110,  # Model
        0x011A,  # XResolution
        0x011B,  # YResolution
        0x0128,  # ResolutionUnit
    }),
    "Exif": frozenset({
        0x829A,  # ExposureTime
        0x829D,  # FNumber
        0x8822,  # ExposureProgram
        0x8827,  # ISOSpeedRatings
        0x8830,  # SensitivityType
        0x8832,  # RecommendedExposureIndex
        0x9000,  # ExifVersion
        0x9201,  # ShutterSpeedValue
        0x9202,  # ApertureValue
        0x9203,  # BrightnessValue
        0x9204,  # ExposureBiasValue
        0x9205,  # MaxApertureValue
        0x9207,  # MeteringMode
        0x9208,  # LightSource
        0x9209,  # Flash
        0x920A,  # FocalLength
        0xA001,  # ColorSpace
        0xA217,  # SensingMethod
        0xA401,  # CustomRendered
        0xA402,  # ExposureMode
        0xA403,  # WhiteBalance
        0xA404,  # DigitalZoomRatio
        0xA405,  # FocalLengthIn35mmFilm
        0xA406,  # SceneCaptureType
        0xA407,  # GainControl
        0xA408,  # Contrast
        0xA409,  # Saturation
        0xA40A,  # Sharpness
        0xA40C,  # SubjectDistanceRange
        0xA432,  # LensSpecification
        0xA433,  # LensMake
        0xA434,  # LensModel
        0xA500,  # Gamma
    }),
}


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
        mode: the original Pillow mode ("RGB", "L", "LA", "P", "RGBA", "CMYK", "I;16", ...).
        alpha: (H, W) float32 opacity in [0, 1], or None.
        icc_profile: the embedded ICC colour profile, or None.
        exif: the original EXIF, read only by ``save_photo(metadata="keep")``.
        black: (H, W) float32 K ink in [0, 1] of a CMYK original, so that writing CMYK
            keeps the black channel; None otherwise.
    """

    pixels: np.ndarray
    path: Path | None = None
    format: str = "PNG"
    mode: str = "RGB"
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: Image.Exif | None = None
    black: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.pixels = np.asarray(self.pixels, dtype=np.float32)
        if self.pixels.ndim != 3 or self.pixels.shape[2] != 3:
            raise ValueError(f"pixels must be (H, W, 3), got {self.pixels.shape}")
        for name in ("alpha", "black"):
            plane = getattr(self, name)
            if plane is not None and plane.shape != self.pixels.shape[:2]:
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
    def is_grey(self) -> bool:
        """True for greyscale originals (modes 1, L, LA, I;16, I): written back as grey."""
        return self.mode in _GREY_MODES or self.mode in _GREY16_MODES

    def with_pixels(self, pixels: np.ndarray) -> Photo:
        """The same photo and metadata with new (H, W, 3) pixels (e.g. cloaked)."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.shape != self.pixels.shape:
            raise ValueError(f"pixels must keep the shape {self.pixels.shape}, got {pixels.shape}")
        return dataclasses.replace(self, pixels=pixels)


# --------------------------------------------------------------------------------------
# Reading


def load_photo(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
               ) -> Photo:
    """Read a photo file; see the module docstring for what is supported.

    Args:
        path: the file. Its content decides the format, not its suffix.
        max_pixels: refuse photos whose declared width x height exceeds this, before
            decoding anything (None: no limit).

    Returns:
        A :class:`Photo` with (H, W, 3) float32 RGB pixels in [0, 1].

    Raises:
        PhotoError: one line naming the file and the reason.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise PhotoError(path, "is a folder, not a photo")
        size = path.stat().st_size
        if size == 0:
            raise PhotoError(path, "file is empty")
        with open(path, "rb") as fp:
            return _load(fp, path, max_pixels)
    except FileNotFoundError as e:
        raise PhotoError(path, "no such file") from e
    except PermissionError as e:
        raise PhotoError(path, "permission denied") from e
    except MemoryError as e:
        raise PhotoError(path, "not enough memory to decode this photo") from e
    except OSError as e:
        raise PhotoError(path, f"cannot read the file ({e.strerror or e})") from e


def _load(fp: IO[bytes], path: Path, max_pixels: int | None) -> Photo:
    head = fp.read(64)
    im, fmt = _open_supported(fp, path, head)
    if fmt == "MPO":
        im.seek(0)  # the main picture; the others (previews, depth maps) are dropped
    else:
        try:
            frames = getattr(im, "n_frames", 1)  # a TIFF walks its page chain here
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
            raise PhotoError(path, f"truncated or corrupt {_nice(fmt)}") from e
        if frames > 1:
            what = "multi-page TIFF" if fmt == "TIFF" else f"animated {_nice(fmt)}"
            unit = "pages" if fmt == "TIFF" else "frames"
            raise PhotoError(path, f"{what} ({frames} {unit}) is not supported; "
                                   "FaceGuard protects still photos")
    width, height = im.size
    if max_pixels is not None and width * height > max_pixels:
        raise PhotoError(path, f"{width}x{height} is {_megapixels(width * height)} megapixels, "
                               f"above the {_megapixels(max_pixels)}-megapixel limit "
                               "(raise it with --max-megapixels)")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise PhotoError(path, f"{width}x{height} is too small to hold a face "
                               f"(FaceGuard needs at least {MIN_SIDE}x{MIN_SIDE} pixels)")
    if im.mode == "F":
        raise PhotoError(path, "32-bit floating-point images are not supported; "
                               "FaceGuard reads 8- and 16-bit photos")
    exif = _read_exif(im)
    icc = im.info.get("icc_profile") or None
    try:
        im.load()
    except Image.DecompressionBombError as e:
        raise PhotoError(path, f"{width}x{height} is above Pillow's safety limit") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
        raise PhotoError(path, f"truncated or corrupt {_nice(fmt)}") from e
    orientation = exif.get(_ORIENTATION, 1) if exif is not None else 1
    mode = im.mode
    try:
        pixels, alpha, black = _decode(im, orientation)
    except ValueError as e:  # a conversion Pillow cannot do, e.g. an exotic mode
        raise PhotoError(path, f"unsupported pixel mode {mode}") from e
    finally:
        im.close()
    return Photo(pixels=pixels, path=path, format=fmt, mode=mode, alpha=alpha,
                 icc_profile=icc, exif=exif, black=black)


def _open_supported(fp: IO[bytes], path: Path, head: bytes) -> tuple[Image.Image, str]:
    """Identify and open (lazily) with the supported Pillow plugins only.

    This does what ``Image.open`` does minus its decompression-bomb check, whose limit is
    a process-wide global: our own limit (``max_pixels``) is applied to the size instead.
    """
    Image.init()
    for name in _READABLE:
        factory, accept = Image.OPEN[name]
        if accept is not None:
            accepted = accept(head)
            if isinstance(accepted, str) or not accepted:  # a str explains a missing codec
                continue
        fp.seek(0)
        try:
            im = factory(fp, os.fspath(path))
        except (SyntaxError, OSError, ValueError, EOFError, IndexError, TypeError,
                struct.error) as e:
            if accept is None:  # no magic bytes to go by: try the next plugin
                continue
            raise PhotoError(path, f"truncated or corrupt {_nice(name)}") from e
        return im, "BMP" if im.format == "DIB" else str(im.format)
    raise PhotoError(path, _why_unreadable(path, head))


def _why_unreadable(path: Path, head: bytes) -> str:
    """The reason a file is not a photo we read, in the user's words."""
    unsupported = f"(FaceGuard reads {_READABLE_TEXT})"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        return f"unsupported format HEIC {unsupported}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as other:
                name = other.format
    except Exception:  # noqa: BLE001 - any failure only means "not an image"
        name = None
    if name:
        return f"unsupported format {name} {unsupported}"
    if head.startswith(b"%PDF"):
        return "not an image (it is a PDF document)"
    if _looks_like_text(head):
        return "not an image (it is a text file)"
    return f"not an image (unrecognised content) {unsupported}"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return head.startswith((b"\xff\xfe", b"\xfe\xff"))  # UTF-16 with a byte-order mark
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut at the end of the sample
            return False
        text = head[: e.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def _read_exif(im: Image.Image) -> Image.Exif | None:
    """The EXIF with its sub-IFDs parsed now, while the file is open; None if absent/broken."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data" and the like
            exif = im.getexif()
            if not exif:
                return None
            for tag in (_EXIF_IFD, _GPS_IFD, _INTEROP_IFD):
                if tag in exif:
                    exif.get_ifd(tag)  # cached inside the Exif object
    except Exception:  # noqa: BLE001 - unreadable EXIF is treated as absent
        return None
    return exif


def _decode(im: Image.Image, orientation: int
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Pixels (H, W, 3), alpha (H, W) or None, black (H, W) or None; all float32 in [0, 1]."""
    mode = im.mode
    if mode in _GREY16_MODES:
        arr = _take_array(im)
        grey = _oriented(arr, orientation).astype(np.float32, order="C")
        np.clip(grey, 0, 65535, out=grey)  # mode "I" is 32-bit; photos use 0..65535
        grey /= 65535
        return _grey_to_rgb(grey), None, None
    if mode in ("1", "L") and not im.has_transparency_data:
        target = "L"
    elif mode in ("1", "L", "LA", "La"):
        target = "LA"
    elif mode == "CMYK":
        target = "CMYK"
    elif mode in ("RGBA", "RGBa", "PA") or im.has_transparency_data:
        target = "RGBA"
    else:
        target = "RGB"  # RGB, RGBX, P, YCbCr, LAB, HSV
    if mode != target:
        converted = im.convert(target)
        im.close()
        im = converted
    arr = _oriented(_take_array(im), orientation)
    if target == "L":
        return _grey_to_rgb(_to_float(arr, 255)), None, None
    if target == "LA":
        return _grey_to_rgb(_to_float(arr[..., 0], 255)), _to_float(arr[..., 1], 255), None
    if target == "CMYK":
        # Naive CMYK -> RGB (as Pillow and uncalibrated viewers do): R = (1 - C)(1 - K).
        # K is kept so that saving CMYK inverts this exactly and keeps the black ink.
        black = _to_float(arr[..., 3], 255)
        pixels = _to_float(arr[..., :3], 255)
        np.subtract(1, pixels, out=pixels)
        pixels *= (1 - black)[..., None]
        return pixels, None, black
    alpha = _to_float(arr[..., 3], 255) if target == "RGBA" else None
    return _to_float(arr[..., :3], 255), alpha, None


def _take_array(im: Image.Image) -> np.ndarray:
    """The pixels as a numpy array; the Pillow image is closed to free its memory early."""
    arr = np.asarray(im)
    im.close()
    return arr


def _oriented(arr: np.ndarray, orientation: int) -> np.ndarray:
    """A view of (H, W, ...) stored pixels as they should be displayed (EXIF 0x0112)."""
    match orientation:
        case 2:
            return arr[:, ::-1]  # mirrored left-right
        case 3:
            return arr[::-1, ::-1]  # rotated 180
        case 4:
            return arr[::-1]  # mirrored top-bottom
        case 5:
            return arr.swapaxes(0, 1)  # transposed
        case 6:
            return np.rot90(arr, k=-1)  # stored rotated 90 degrees counter-clockwise
        case 7:
            return arr[::-1, ::-1].swapaxes(0, 1)  # transversed
        case 8:
            return np.rot90(arr, k=1)  # stored rotated 90 degrees clockwise
    return arr


def _to_float(arr: np.ndarray, scale: float) -> np.ndarray:
    out = arr.astype(np.float32, order="C")
    out /= scale
    return out


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def _megapixels(pixels: int) -> str:
    mp = pixels / 1e6
    return f"{mp:.0f}" if mp >= 10 or mp == round(mp) else f"{mp:.1f}"


def _nice(fmt: str) -> str:
    return {"WEBP": "WebP", "PPM": "PGM/PPM", "MPO": "JPEG"}.get(fmt, fmt)


# --------------------------------------------------------------------------------------
# Writing


def output_format(photo: Photo, format: str = "keep") -> str:
    """The Pillow format name ``save_photo`` writes for a user's format choice.

    ``"keep"`` maps the input format to itself where we can write it (MPO -> JPEG;
    in-memory photos -> PNG); other accepted spellings: png, jpeg/jpg, webp, tiff/tif,
    bmp, pgm/ppm (any case).
    """
    name = format.upper()
    if name == "KEEP":
        return _KEEP.get(photo.format.upper(), "PNG")
    name = _FORMAT_NAMES.get(name, name)
    if name not in _SUFFIXES:
        raise ValueError(f"unknown output format {format!r}; choose keep, "
                         f"{', '.join(n.lower() for n in _SUFFIXES)}")
    return name


def output_suffix(photo: Photo, format: str = "keep") -> str:
    """The file suffix for writing ``photo`` in ``format``: the input's own suffix when it
    fits (``.JPG`` stays ``.JPG``), else the canonical one (``.pgm`` for grey PGM/PPM)."""
    fmt = output_format(photo, format)
    if photo.path is not None and photo.path.suffix.lower() in _SUFFIXES[fmt]:
        return photo.path.suffix
    if fmt == "PPM":
        return ".pgm" if photo.is_grey else ".ppm"
    return _SUFFIXES[fmt][0]


def save_photo(photo: Photo, path: str | os.PathLike[str], *, format: str | None = None,
               quality: int = 95, metadata: Literal["strip", "keep"] = "strip",
               overwrite: bool = False) -> Path:
    """Write ``photo`` atomically, with the metadata policy of the module docstring.

    Args:
        photo: the photo (``photo.pixels`` are clipped to [0, 1] and rounded).
        path: the file to write; its folder must exist.
        format: None (from the suffix of ``path``), ``"keep"`` (the input's format) or a
            name (see :func:`output_format`). A suffix naming another format is an error.
        quality: 1..100, for JPEG and WebP.
        metadata: ``"strip"`` (keep only the ICC profile) or ``"keep"`` (plus the
            :data:`KEPT_EXIF_TAGS` whitelist).
        overwrite: replace an existing file; never allowed for the input photo itself.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        PhotoError: one line naming ``path`` and the reason.
        ValueError: bad arguments (quality, metadata, format name, pixels not finite).
    """
    path = Path(path)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    if metadata not in ("strip", "keep"):
        raise ValueError(f"metadata must be 'strip' or 'keep', got {metadata!r}")
    suffix_format = next((f for f, s in _SUFFIXES.items() if path.suffix.lower() in s), None)
    if format is None:
        if suffix_format is None:
            raise PhotoError(path, f"cannot tell the format from the suffix {path.suffix!r}; "
                                   "use .png or .jpg")
        fmt = suffix_format
    else:
        fmt = output_format(photo, format)
        if suffix_format is not None and suffix_format != fmt:
            raise PhotoError(path, f"the name ends in {path.suffix} but the format is "
                                   f"{_nice(fmt)}")
    if photo.path is not None and _same_file(path, photo.path):
        raise PhotoError(path, "refusing to write over the input photo")
    if path.exists() and not overwrite:
        raise PhotoError(path, "already exists (allow replacing it with overwrite=True "
                               "or --overwrite)")
    if not path.parent.is_dir():
        raise PhotoError(path, f"folder {os.fspath(path.parent)} does not exist")
    if not np.isfinite(photo.pixels).all():
        raise ValueError("photo.pixels contains NaN or infinity")

    image = _encode_image(photo, fmt)
    params = _save_params(photo, fmt, image.mode, quality, metadata)
    _atomic_write(path, lambda f: image.save(f, format=fmt, **params), overwrite)
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _target_mode(photo: Photo, fmt: str) -> str:
    """The Pillow mode written for ``photo`` in format ``fmt`` (see the module docstring)."""
    alpha = photo.alpha is not None and fmt in _ALPHA_FORMATS
    if photo.is_grey and fmt != "WEBP":  # WebP has no grey
        if photo.mode in _GREY16_MODES and fmt in ("PNG", "TIFF", "PPM") and not alpha:
            return "I;16"
        return "LA" if alpha else "L"
    if photo.mode == "CMYK" and fmt in ("JPEG", "TIFF") and not alpha:
        return "CMYK"
    return "RGBA" if alpha else "RGB"


def _encode_image(photo: Photo, fmt: str) -> Image.Image:
    """A fresh Pillow image (no inherited info) in the mode written for ``fmt``."""
    mode = _target_mode(photo, fmt)
    rgb = photo.pixels
    if photo.alpha is not None and "A" not in mode:
        # This format cannot hold transparency: show the photo over white, as viewers do.
        a = photo.alpha[..., None]
        rgb = rgb * a + (1 - a)
    if mode in ("L", "LA", "I;16"):
        # ITU-R BT.601 luma, the weights Pillow's RGB -> L uses; exact for grey pixels.
        grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if mode == "I;16":
            return Image.fromarray(_quantise(grey, 65535, np.dtype("<u2")))
        if mode == "LA":
            assert photo.alpha is not None
            grey = np.stack([grey, photo.alpha], axis=2)
        return Image.fromarray(_quantise(grey, 255, np.dtype(np.uint8)))
    if mode == "CMYK":
        # Invert the load's R = (1 - C)(1 - K) with the original K: unchanged pixels get
        # their exact inks back and the black channel survives.
        k = photo.black if photo.black is not None else np.zeros(rgb.shape[:2], np.float32)
        room = (1 - k)[..., None]
        cmy = 1 - np.divide(rgb, room, out=np.ones_like(rgb), where=room > 1e-6)
        cmyk = _quantise(np.concatenate([cmy, k[..., None]], axis=2), 255, np.dtype(np.uint8))
        return Image.frombytes("CMYK", photo.size, cmyk.tobytes())
    if mode == "RGBA":
        assert photo.alpha is not None
        rgb = np.concatenate([rgb, photo.alpha[..., None]], axis=2)
    return Image.fromarray(_quantise(rgb, 255, np.dtype(np.uint8)))


def _quantise(values: np.ndarray, top: int, dtype: np.dtype) -> np.ndarray:
    """[0, 1] floats -> integers 0..top, rounded to nearest (truncation would darken)."""
    scaled = np.multiply(values, top, dtype=np.float32)
    np.clip(scaled, 0, top, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(dtype)


def _save_params(photo: Photo, fmt: str, mode: str, quality: int,
                 metadata: str) -> dict[str, object]:
    params: dict[str, object] = {}
    if fmt == "JPEG":
        params.update(quality=quality, subsampling=0, optimize=True)
    elif fmt == "PNG":
        # Measured on a 5 MP album photo: level 3 takes 1.1 s, Pillow's default 6 takes
        # 3.0 s for a file only 12% smaller.
        params.update(compress_level=3)
    elif fmt == "WEBP":
        params.update(quality=quality)
    if fmt in _ICC_FORMATS and photo.icc_profile and _icc_fits(photo.icc_profile, mode):
        params["icc_profile"] = photo.icc_profile
    if metadata == "keep" and fmt in _EXIF_FORMATS and photo.exif is not None:
        kept = _kept_exif(photo.exif)
        if kept:
            params["exif"] = kept
    if fmt == "TIFF" and "exif" not in params:
        # Compression goes through libtiff, which cannot write an EXIF sub-IFD: a TIFF
        # that keeps camera settings is written uncompressed by Pillow's own writer.
        params.update(compression="tiff_adobe_deflate")
    return params


def _icc_fits(icc: bytes, mode: str) -> bool:
    """Whether the profile's colour space (header bytes 16..19) matches the written mode."""
    space = icc[16:20]
    if mode in ("L", "LA", "I;16"):
        return space == b"GRAY"
    if mode == "CMYK":
        return space == b"CMYK"
    return space == b"RGB "


def _kept_exif(exif: Image.Exif) -> bytes | None:
    """The whitelisted EXIF tags (Orientation 1) as bytes, or None if nothing is kept.

    If Pillow cannot serialise the copied values, nothing is kept: the safe direction.
    """
    kept = Image.Exif()
    for tag in KEPT_EXIF_TAGS["IFD0"]:
        if tag in exif:
            kept[tag] = exif[tag]
    try:
        sub = {t: v for t, v in exif.get_ifd(_EXIF_IFD).items() if t in KEPT_EXIF_TAGS["Exif"]}
    except Exception:  # noqa: BLE001 - a broken sub-IFD is simply not kept
        sub = {}
    if not kept and not sub:
        return None
    kept[_ORIENTATION] = 1  # the pixels are already upright
    if sub:
        kept[_EXIF_IFD] = sub
    try:
        return kept.tobytes()
    except Exception:  # noqa: BLE001
        return None


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None], overwrite: bool) -> None:
    """Write via a temporary file in the same folder, then rename it into place.

    Without ``overwrite`` the final step is a hard link, which fails if ``path`` appeared
    meanwhile (no file is ever clobbered); where hard links are unsupported, a checked
    rename is used.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        # os.open applies the umask, so the photo gets normal permissions (not 0600).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
    except OSError as e:
        raise PhotoError(path, f"cannot write here ({e.strerror or e})") from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError as e:
                raise PhotoError(path, "already exists (allow replacing it with "
                                       "overwrite=True or --overwrite)") from e
            except OSError:  # e.g. a FAT/exFAT card: no hard links
                if path.exists():
                    raise PhotoError(path, "already exists (allow replacing it with "
                                           "overwrite=True or --overwrite)") from None
                os.replace(tmp, path)
    except OSError as e:
        raise PhotoError(path, f"cannot write ({e.strerror or e})") from e
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# Finding photos and tensors


def find_photos(paths: Iterable[str | os.PathLike[str]], recursive: bool = True) -> list[Path]:
    """The photos to process, in a stable order, without duplicates.

    Files named explicitly are always returned, whatever their suffix (and even if
    missing), so that :func:`load_photo` can report them. Folders are walked (into
    sub-folders if ``recursive``) for :data:`SUPPORTED_SUFFIXES`, case-insensitively,
    sorted, skipping hidden files and folders (names starting with ".").
    """
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            found.append(path)
            continue
        in_folder: list[Path] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
            in_folder += [Path(root, f) for f in files if not f.startswith(".")
                          and Path(f).suffix.lower() in SUPPORTED_SUFFIXES]
        found += sorted(in_folder)
    seen: set[Path] = set()
    unique = []
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float [0, 1] numpy -> (1, 3, H, W) float32 torch tensor (a copy)."""
    import torch

    arr = np.ascontiguousarray(np.asarray(pixels, dtype=np.float32).transpose(2, 0, 1))
    return torch.from_numpy(arr).unsqueeze(0)


def from_tensor(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) torch tensor -> (H, W, 3) float32 numpy (values as is)."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    import torch

    arr = image.detach().to("cpu", torch.float32).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(arr)
