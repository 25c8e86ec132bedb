"""Writing photos (:func:`save_photo`): format choice, metadata policy, atomic writes."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from faceguard.io import deep
from faceguard.io.inks import inks_of_rgb
from faceguard.io.jpeg import finer_tables, stripped
from faceguard.io.metadata import _icc_fits, _kept_exif, _orientation
from faceguard.io.photo import (
    _ALPHA_FORMATS,
    _COLOUR16_MODES,
    _EXIF_FORMATS,
    _FORMAT_NAMES,
    _GREY16_MODES,
    _ICC_FORMATS,
    _KEEP,
    _SUFFIXES,
    NO_LIMIT,
    Photo,
    PhotoError,
    _nice,
)
from faceguard.io.png_profile import png_profile
from faceguard.io.read import load_photo
from faceguard.io.shown import grey_in_srgb, grey_profile, over_white
from faceguard.io.tensors import uint8_pixels

#: why an output was not written: in words for the CLI and the app alike (the app
#: skips what a run with the same settings already wrote, and shows this for the rest)
EXISTS = ("already exists and was left as it is (--resume skips the photos an earlier "
          "run wrote with the same settings, --overwrite replaces them; or choose another "
          "output folder)")


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
               overwrite: bool = False, named: bool = True) -> Path:
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
        named: False: the complete file is left under a temporary name beside ``path``,
            for :func:`name_file` to give it its own (or for the caller to remove).

    Returns:
        ``path`` as a :class:`~pathlib.Path`, or with ``named`` False the temporary file.

    Raises:
        PhotoError: one line naming ``path`` and the reason.
        ValueError: bad arguments (quality, metadata, format name, pixels not finite).
    """
    path, fmt = _target(photo, path, format, quality, metadata, overwrite)
    if not np.isfinite(photo.pixels).all():
        raise ValueError("photo.pixels contains NaN or infinity")
    if _target_mode(photo, fmt) in _COLOUR16_MODES:
        data = deep.encode(photo, fmt, _save_params(photo, fmt, "RGB", quality, metadata))
        return _atomic_write(path, lambda f: f.write(data), overwrite, named=named)
    image = _as_profiled(photo, _encode_image(photo, fmt))
    params = _save_params(photo, fmt, image.mode, quality, metadata)
    return _atomic_write(path, lambda f: image.save(f, format=fmt, **params), overwrite,
                         _whole(image, fmt), named)


def _as_profiled(photo: Photo, image: Image.Image) -> Image.Image:
    """``image`` as the photo's grey profile shows it, in sRGB, where that profile cannot
    go with it (WebP has no grey): dropped alone, it shifted the tones of the whole photo.
    Other images are returned as they are."""
    if not (grey_profile(photo) and image.mode in ("RGB", "RGBA")):
        return image
    rgb = grey_in_srgb(photo.icc_profile, image.convert("L"))
    if rgb is None:  # a profile it cannot read: as before
        return image
    if image.mode == "RGBA":
        rgb.putalpha(image.getchannel("A"))
    return rgb


def copy_photo(photo: Photo, path: str | os.PathLike[str], *, format: str | None = None,
               quality: int = 95, metadata: Literal["strip", "keep"] = "strip",
               overwrite: bool = False, named: bool = True) -> Path:
    """Write a photo FaceGuard did not change: a JPEG read from a file keeps its picture
    data as it was, without re-encoding (no second loss, milliseconds), and only the
    metadata :func:`save_photo` would write (:mod:`faceguard.io.jpeg`), plus its EXIF
    orientation; anything else, and a JPEG whose structure that copy does not read, is saved by
    :func:`save_photo` (a photo read without its pixels is decoded for it). Arguments,
    checks and errors as :func:`save_photo`'s (``quality`` only applies when the photo is
    encoded anew)."""
    path, fmt = _target(photo, path, format, quality, metadata, overwrite)
    if fmt == "JPEG" and photo.jpeg_data is not None:
        exif = _kept_exif(photo.exif, metadata == "keep", _orientation(photo.exif))
        icc = photo.icc_profile is not None and _icc_fits(photo.icc_profile,
                                                          _target_mode(photo, fmt))
        data = stripped(photo.jpeg_data, exif, icc)
        if data is not None:
            return _atomic_write(path, lambda f: f.write(data), overwrite, named=named)
    if not photo.has_pixels:
        photo = load_photo(photo.path, limit=NO_LIMIT)  # its size was checked when read
    return save_photo(photo, path, format=format, quality=quality, metadata=metadata,
                      overwrite=overwrite, named=named)


def check_writable(photo: Photo, path: str | os.PathLike[str], *, format: str | None = None,
                   quality: int = 95, metadata: Literal["strip", "keep"] = "strip",
                   overwrite: bool = False) -> Path:
    """Raise what :func:`save_photo` (or :func:`copy_photo`) with these arguments would
    refuse before writing (an existing file, the input itself, a missing folder, a
    suffix of another format), without writing: checked before a photo is cloaked, a
    refusal costs no optimisation. Returns ``path`` as a :class:`~pathlib.Path`."""
    return _target(photo, path, format, quality, metadata, overwrite)[0]


def _target(photo: Photo, path: str | os.PathLike[str], format: str | None, quality: int,
            metadata: str, overwrite: bool) -> tuple[Path, str]:
    """(the path, the Pillow format to write) after checking that ``photo`` may be
    written there (see :func:`save_photo`)."""
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
        raise PhotoError(path, EXISTS)
    if not path.parent.is_dir():
        raise PhotoError(path, f"folder {os.fspath(path.parent)} does not exist")
    return path, fmt


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
    if photo.mode in _COLOUR16_MODES and fmt in ("PNG", "TIFF", "PPM"):
        return "RGBA;16" if alpha else "RGB;16"  # PPM: never alpha
    return "RGBA" if alpha else "RGB"


def _encode_image(photo: Photo, fmt: str) -> Image.Image:
    """A fresh Pillow image (no inherited info) in the mode written for ``fmt``."""
    mode = _target_mode(photo, fmt)
    rgb = photo.pixels
    if photo.alpha is not None and "A" not in mode:  # a format without transparency
        rgb = over_white(rgb, photo.alpha)
    if mode in ("L", "LA", "I;16"):
        # ITU-R BT.601 luma, the weights Pillow's RGB -> L uses; exact for grey pixels.
        grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if mode == "I;16":
            return Image.fromarray(deep.sixteen_bit(grey))
        if mode == "LA":
            assert photo.alpha is not None
            grey = np.stack([grey, photo.alpha], axis=2)
        return Image.fromarray(uint8_pixels(grey))
    if mode == "CMYK":
        return Image.frombytes("CMYK", photo.size, inks_of_rgb(rgb, photo.inks).tobytes())
    if mode == "RGBA":
        assert photo.alpha is not None
        rgb = np.concatenate([rgb, photo.alpha[..., None]], axis=2)
    return Image.fromarray(uint8_pixels(rgb))


def _save_params(photo: Photo, fmt: str, mode: str, quality: int,
                 metadata: str) -> dict[str, object]:
    params: dict[str, object] = {}
    if fmt == "JPEG":
        tables = finer_tables(photo.jpeg_tables, mode, quality)
        params.update({"qtables": tables} if tables else {"quality": quality},
                      subsampling=0, optimize=True)
    elif fmt == "PNG":
        # Measured on a 5 MP album photo: level 3 takes 1.1 s, Pillow's default 6 takes
        # 3.0 s for a file only 12% smaller.
        params.update(compress_level=3)
    elif fmt == "WEBP" and photo.lossless:  # stays lossless: only the faces change
        params.update(lossless=True)
    elif fmt == "WEBP":
        params.update(quality=quality)
    # a PNG's gamma and primaries, in a format without their chunks, become a profile
    icc = photo.icc_profile or (fmt != "PNG" and png_profile(photo.png_colour))
    if fmt in _ICC_FORMATS and icc and _icc_fits(icc, mode):
        params["icc_profile"] = icc
    if fmt == "PNG" and photo.png_colour:  # written before the picture
        params["pnginfo"] = PngInfo()
        for kind, body in photo.png_colour:  # sRGB or a profile, not both (PNG 11.3.3.5)
            if kind != b"sRGB" or "icc_profile" not in params:
                params["pnginfo"].add(kind, body)
    if metadata == "keep" and fmt in _EXIF_FORMATS and photo.exif is not None:
        kept = _kept_exif(photo.exif)
        if kept:
            params["exif"] = kept
    if fmt == "TIFF" and "exif" not in params:
        # Compression goes through libtiff, which cannot write an EXIF sub-IFD: a TIFF
        # that keeps camera settings is written uncompressed by Pillow's own writer.
        params.update(compression="tiff_adobe_deflate")
    return params


def _whole(image: Image.Image, fmt: str) -> Callable[[Path], bool]:
    """Whether a file Pillow wrote ``image`` into as ``fmt`` reached the disk whole:
    its JPEG, BMP and PPM encoders write to the file descriptor themselves and take a
    short write (a full disk, a file-size limit) for done, leaving half a photo. A JPEG
    ends with its end-of-image marker; BMP and PPM hold at least their raw pixels."""
    def whole(path: Path) -> bool:
        size = path.stat().st_size
        if fmt == "JPEG":
            with open(path, "rb") as f:
                f.seek(max(0, size - 2))
                return f.read() == b"\xff\xd9"
        if fmt in ("BMP", "PPM"):
            depth = 2 if image.mode == "I;16" else 1
            return size >= image.width * image.height * len(image.getbands()) * depth
        return True  # written through Python, which raises on a short write
    return whole


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None], overwrite: bool,
                  whole: Callable[[Path], bool] | None = None, named: bool = True) -> Path:
    """Write via a temporary file in the same folder, then give it ``path``'s name
    (:func:`name_file`; with ``named`` False, left to the caller: the temporary file is
    returned, complete). ``whole``: whether the written file is complete (:func:`_whole`).
    """
    # a short name: the output's own may be as long as the system allows
    tmp = path.with_name(f".faceguard-{secrets.token_hex(6)}.tmp")
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
        if whole is not None and not whole(tmp):
            raise PhotoError(path, "cannot write: the file came out short (is the disk full?)")
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PhotoError(path, f"cannot write ({e.strerror or e})") from e
    except BaseException:  # Ctrl-C too: no temporary file stays
        tmp.unlink(missing_ok=True)
        raise
    if not named:
        return tmp
    name_file(tmp, path, overwrite)
    return path


def name_file(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the complete file ``tmp`` (from :func:`save_photo` with ``named`` False) the
    name ``path``, in one step, and remove it whatever happens. Without ``overwrite`` a
    hard link, which fails if ``path`` appeared meanwhile (no file is ever clobbered);
    where hard links are unsupported, a checked rename."""
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError as e:
                raise PhotoError(path, EXISTS) from e
            except OSError:  # e.g. a FAT/exFAT card: no hard links
                if path.exists():
                    raise PhotoError(path, EXISTS) from None
                os.replace(tmp, path)
    except OSError as e:
        raise PhotoError(path, f"cannot write ({e.strerror or e})") from e
    finally:
        tmp.unlink(missing_ok=True)
