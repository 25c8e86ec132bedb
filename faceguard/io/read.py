"""Reading photos (:func:`load_photo`); finding them in folders is :mod:`faceguard.io.find`."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from faceguard.io import deep
from faceguard.io.inks import rgb_of_inks
from faceguard.io.metadata import _orientation, _oriented, _read_exif
from faceguard.io.photo import (
    _GREY16_MODES,
    _READABLE,
    _READABLE_TEXT,
    DEFAULT_LIMIT,
    Photo,
    PhotoError,
    PixelLimit,
    _megapixels,
    _nice,
)
from faceguard.io.tensors import float_pixels


def load_photo(path: str | os.PathLike[str], *, limit: PixelLimit = DEFAULT_LIMIT,
               decode: bool = True) -> Photo:
    """Read a photo file; see the module docstring for what is supported.

    Args:
        path: the file. Its content decides the format, not its suffix.
        limit: refuse photos whose declared width x height exceeds it, before decoding
            anything (:data:`~faceguard.io.NO_LIMIT` for files FaceGuard wrote itself).
        decode: False for a photo only to be copied: a JPEG's pixels are then not
            decoded (:attr:`Photo.has_pixels`; decoding is most of reading a photo).
            Its data is not checked for truncation: meant for a file already read whole.

    Returns:
        A :class:`Photo` with (H, W, 3) float32 RGB pixels in [0, 1] (none for a JPEG
        with ``decode`` False).

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
            read = os.fstat(fp.fileno())  # the very file read, even if renamed meanwhile
            photo = _load(fp, path, limit, decode)
        photo.stat = [read.st_size, read.st_mtime_ns]
        return photo
    except FileNotFoundError as e:
        raise PhotoError(path, "no such file") from e
    except PermissionError as e:
        raise PhotoError(path, "permission denied") from e
    except MemoryError as e:
        raise PhotoError(path, "not enough memory to decode this photo") from e
    except OSError as e:
        raise PhotoError(path, f"cannot read the file ({e.strerror or e})") from e


def _load(fp: IO[bytes], path: Path, limit: PixelLimit, decode: bool = True) -> Photo:
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
    if limit.exceeded_by(width, height):
        raise PhotoError(path, f"{width}x{height} is {_megapixels(width * height)} megapixels, "
                               f"above the {_megapixels(limit.pixels)}-megapixel limit "
                               "(raise it with --max-megapixels)")
    if im.mode == "F":
        raise PhotoError(path, "32-bit floating-point images are not supported; "
                               "FaceGuard reads 8- and 16-bit photos")
    exif = _read_exif(im)
    icc = im.info.get("icc_profile") or None
    lossless = fmt == "WEBP" and _lossless_webp(fp)
    data = None
    if fmt in ("JPEG", "MPO"):  # written again as it is when nothing changes (io.jpeg)
        where = fp.tell()
        fp.seek(0)
        data = fp.read()
        fp.seek(where)
        if not decode:
            mode = im.mode
            im.close()
            return Photo(pixels=np.zeros((0, 0, 3), np.float32), path=path, format=fmt,
                         mode=mode, icc_profile=icc, exif=exif, jpeg_data=data)
    colour16 = deep.is_deep(fmt, head, im)
    if colour16:
        fp.seek(0)
        data = fp.read()
    try:
        im.load()
    except Image.DecompressionBombError as e:
        raise PhotoError(path, f"{width}x{height} is above Pillow's safety limit") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
        raise PhotoError(path, f"truncated or corrupt {_nice(fmt)}") from e
    orientation = _orientation(exif)
    colour = _png_colour(im.info) if fmt == "PNG" else ()
    if colour16:  # read again below with its 16 bits; Pillow checked it is whole
        apart = fmt == "TIFF" and im.tag_v2.get(284) == 2  # colour planes stored apart
        premultiplied = deep.premultiplied(fmt, im)
        im.close()
        pixels, alpha = deep.decode(data, path, orientation, fmt, apart, premultiplied)
        return Photo(pixels=pixels, path=path, format=fmt, alpha=alpha, icc_profile=icc,
                     exif=exif, mode="RGB;16" if alpha is None else "RGBA;16",
                     png_colour=colour)
    # Pillow opens a 16-bit grey PNG with alpha as RGBA: it stays grey (with 8 bits)
    mode = "LA" if fmt == "PNG" and head[24:26] == b"\x10\x04" else im.mode
    try:
        pixels, alpha, inks = _decode(im, orientation)
    except ValueError as e:  # a conversion Pillow cannot do, e.g. an exotic mode
        raise PhotoError(path, f"unsupported pixel mode {mode}") from e
    finally:
        im.close()
    # a JPEG's tables, so that it is written no coarser than it came (io.jpeg)
    tables = {k: list(v) for k, v in getattr(im, "quantization", {}).items()} or None
    return Photo(pixels=pixels, path=path, format=fmt, mode=mode, alpha=alpha,
                 icc_profile=icc, exif=exif, inks=inks, jpeg_data=data, lossless=lossless,
                 jpeg_tables=tables, png_colour=colour)


def _png_colour(info: dict) -> tuple[tuple[bytes, bytes], ...]:
    """A PNG's gAMA, cHRM and sRGB chunks, rebuilt from what Pillow read of them (``info``;
    PNG stores gamma and chromaticities times 100000)."""
    chunks = []
    if isinstance(info.get("gamma"), float):
        chunks.append((b"gAMA", struct.pack(">I", round(info["gamma"] * 100000))))
    if isinstance(info.get("chromaticity"), tuple) and len(info["chromaticity"]) == 8:
        chunks.append((b"cHRM", struct.pack(">8I", *(round(v * 100000)
                                                     for v in info["chromaticity"]))))
    if isinstance(info.get("srgb"), int):
        chunks.append((b"sRGB", bytes([info["srgb"]])))
    return tuple(chunks)


def _lossless_webp(fp: IO[bytes]) -> bool:
    """Whether a WebP file's picture is lossless (a VP8L chunk, not VP8): its RIFF chunks
    walked from the start, the file position kept."""
    where = fp.tell()
    try:
        fp.seek(12)  # "RIFF", size, "WEBP"
        while len(head := fp.read(8)) == 8:
            name, size = head[:4], struct.unpack("<I", head[4:])[0]
            if name in (b"VP8L", b"VP8 "):
                return name == b"VP8L"
            fp.seek(size + (size & 1), 1)  # chunks are padded to an even size
        return False
    finally:
        fp.seek(where)


def _open_supported(fp: IO[bytes], path: Path, head: bytes) -> tuple[Image.Image, str]:
    """Identify and open (lazily) with the supported Pillow plugins only.

    This does what ``Image.open`` does minus its decompression-bomb check, whose limit is
    a process-wide global: our own limit (:class:`PixelLimit`) is applied to the size instead.
    """
    Image.init()
    for name in _READABLE:
        factory, accept = Image.OPEN[name]
        if accept is not None:
            try:
                accepted = accept(head)
            except (struct.error, IndexError):  # a file of a few bytes (BMP's test reads 4)
                continue
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


def _decode(im: Image.Image, orientation: int
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Pixels (H, W, 3) and alpha (H, W) or None, float32 in [0, 1]; a CMYK photo's inks
    (H, W, 4) uint8, else None."""
    mode = im.mode
    if mode in _GREY16_MODES:
        arr = _oriented(_take_array(im), orientation)
        grey = arr.astype(np.float32, order="C")
        np.clip(grey, 0, 65535, out=grey)  # mode "I" is 32-bit; photos use 0..65535
        grey /= 65535
        key = im.info.get("transparency")  # a PNG's tRNS: the one grey level not shown
        alpha = (arr != key).astype(np.float32) if isinstance(key, int) else None
        return _grey_to_rgb(grey), alpha, None
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
        return _grey_to_rgb(float_pixels(arr, 255)), None, None
    if target == "LA":
        return _grey_to_rgb(float_pixels(arr[..., 0], 255)), float_pixels(arr[..., 1], 255), None
    if target == "CMYK":  # the inks are kept: saving CMYK gives unchanged pixels theirs back
        return rgb_of_inks(arr), None, np.ascontiguousarray(arr, dtype=np.uint8)
    alpha = float_pixels(arr[..., 3], 255) if target == "RGBA" else None
    return float_pixels(arr[..., :3], 255), alpha, None


def _take_array(im: Image.Image) -> np.ndarray:
    """The pixels as a numpy array; the Pillow image is closed to free its memory early."""
    arr = np.asarray(im)
    im.close()
    return arr


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)
