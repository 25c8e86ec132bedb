"""16-bit colour photos: PNG, PPM and TIFF, which Pillow reads and writes with 8 bits.

Read with OpenCV (or tifffile, a TIFF whose colour planes are stored apart, which OpenCV
and Pillow both misread) and written with OpenCV (PNG, PPM) or tifffile (TIFF), so that
the pixels the cloak leaves alone keep their 16 bits. Their metadata is written as
:func:`faceguard.io.write._save_params` gives it to Pillow for other photos.
"""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from faceguard.io.metadata import _oriented
from faceguard.io.photo import Photo, PhotoError, _nice
from faceguard.io.tensors import float_pixels


def is_deep(fmt: str, head: bytes, im: Image.Image) -> bool:
    """Whether a file opened by Pillow (``im``, format ``fmt``, its first bytes ``head``)
    is a 16-bit colour photo read here: a PNG of 16-bit RGB or RGBA without a transparent
    colour; a PPM of maxval 65535 (a raw converter's, such as dcraw's; other depths over 8
    bits are read with 8, as Pillow scales them); a TIFF of 16-bit unsigned RGB with no
    extra sample or one alpha, unassociated or premultiplied (:func:`premultiplied`)."""
    if fmt == "PNG":  # IHDR: bit depth, colour type
        return (len(head) > 25 and head[24] == 16 and head[25] in (2, 6)
                and "transparency" not in im.info)
    if fmt == "PPM":
        if not head.startswith(b"P6"):
            return False
        fields = re.sub(rb"#[^\n]*", b" ", head[2:]).split()  # width, height, maxval
        return len(fields) >= 3 and fields[2] == b"65535"
    if fmt == "TIFF":
        tags = im.tag_v2
        samples = tags.get(277, 1)
        unsigned = tags.get(339, 1) in (1, (1,) * samples)
        return (tags.get(262) == 2 and unsigned and tags.get(258) == (16,) * samples
                and (samples == 3 or samples == 4 and _extra_sample(im) in (1, 2)))
    return False


def premultiplied(fmt: str, im: Image.Image) -> bool:
    """Whether a file opened by Pillow stores its colour multiplied by its alpha (a TIFF's
    associated alpha)."""
    return fmt == "TIFF" and _extra_sample(im) == 1


def _extra_sample(im: Image.Image) -> int | tuple | None:
    """What a TIFF's one extra sample is (its ExtraSamples tag, 338): 1 associated alpha
    (the colour is stored multiplied by it), 2 unassociated alpha."""
    kind = im.tag_v2.get(338)
    return kind[0] if isinstance(kind, tuple) and len(kind) == 1 else kind


def decode(data: bytes, path: Path, orientation: int, fmt: str, apart: bool = False,
           premultiplied: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """A 16-bit colour file's pixels (H, W, 3) and alpha (H, W) or None, float32 in
    [0, 1], turned upright (EXIF ``orientation``). ``apart``: a TIFF whose colour planes
    are stored apart. ``premultiplied``: its colour is stored multiplied by its alpha, and
    is divided back (as Pillow does with 8 bits), so that the cloak works on the colour
    shown; fully transparent pixels get black."""
    import cv2

    if apart:
        arr = _planes_apart(data, path)
    else:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
            raise PhotoError(path, f"truncated or corrupt {_nice(fmt)}")
        arr = arr[..., [2, 1, 0, 3][:arr.shape[2]]]  # OpenCV's B, G, R, A
    arr = _oriented(arr, orientation)
    pixels = float_pixels(arr[..., :3], 65535)
    alpha = float_pixels(arr[..., 3], 65535) if arr.shape[2] == 4 else None
    if premultiplied and alpha is not None:
        shown = alpha > 0
        pixels[shown] /= alpha[shown][:, None]
        pixels[~shown] = 0
        np.clip(pixels, 0, 1, out=pixels)  # a colour stored above its alpha
    return pixels, alpha


def _planes_apart(data: bytes, path: Path) -> np.ndarray:
    """(H, W, C) uint16 RGB(A) of a 16-bit TIFF whose colour planes are stored apart."""
    import tifffile

    try:
        planes = tifffile.imread(io.BytesIO(data))
    except ValueError as e:  # a compression it needs the imagecodecs package for (LZW)
        raise PhotoError(path, f"a 16-bit TIFF with its colour planes stored apart, "
                               f"compressed in a way FaceGuard cannot read ({e}); save it "
                               "uncompressed or with ZIP compression") from e
    return np.moveaxis(planes, 0, -1)


def sixteen_bit(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> little-endian 16-bit integers, rounded to nearest (truncation would
    darken); 8 bits: :func:`faceguard.io.tensors.uint8_pixels`."""
    scaled = np.multiply(values, 65535, dtype=np.float32)
    np.clip(scaled, 0, 65535, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype("<u2")


def encode(photo: Photo, fmt: str, params: dict) -> bytes:
    """The file of ``photo``, a 16-bit colour photo, in ``fmt`` ("PNG", "TIFF" or "PPM"),
    with the metadata of Pillow's save ``params`` (``icc_profile``, ``exif``, a PNG's
    ``pnginfo``)."""
    planes = [photo.pixels]
    if photo.alpha is not None and fmt != "PPM":  # PPM: never alpha
        planes.append(photo.alpha[..., None])
    pixels = sixteen_bit(np.concatenate(planes, axis=2)).astype(np.uint16, copy=False)
    if fmt == "TIFF":
        return _tiff(photo, pixels, params)
    import cv2

    bgr = pixels[..., [2, 1, 0, 3][:pixels.shape[2]]]
    flags = [cv2.IMWRITE_PNG_COMPRESSION, 3] if fmt == "PNG" else []  # as Pillow's PNGs
    ok, encoded = cv2.imencode(f".{fmt.lower()}", bgr, flags)
    if not ok:
        raise ValueError(f"OpenCV could not encode the 16-bit {fmt}")
    return _with_chunks(encoded.tobytes(), params) if fmt == "PNG" else encoded.tobytes()


def _with_chunks(png: bytes, params: dict) -> bytes:
    """``png`` with the ICC profile, the colour chunks and the kept EXIF added after IHDR."""
    chunks = b""
    if "icc_profile" in params:  # profile name, its end, compression method 0 (zlib)
        chunks += _png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(params["icc_profile"]))
    for kind, body, _ in params["pnginfo"].chunks if "pnginfo" in params else []:
        chunks += _png_chunk(kind, body)  # the colour chunks
    if "exif" in params:
        chunks += _png_chunk(b"eXIf", params["exif"].removeprefix(b"Exif\0\0"))
    header = 8 + 25  # the PNG signature, then IHDR (length, type, 13 bytes, CRC)
    return png[:header] + chunks + png[header:]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC-32 of type and body."""
    return (len(body).to_bytes(4, "big") + kind + body
            + zlib.crc32(kind + body).to_bytes(4, "big"))


def _tiff(photo: Photo, pixels: np.ndarray, params: dict) -> bytes:
    """A TIFF of (H, W, C) uint16 ``pixels`` by tifffile, deflate-compressed as Pillow's
    TIFFs are (with horizontal differencing, which suits 16-bit photos), alpha
    unassociated (a premultiplied file's colour was divided back when read); with
    ``exif`` in ``params`` the kept tags of the first IFD (make, model, resolution). The
    camera's exposure settings are not kept: tifffile writes no EXIF sub-IFD."""
    import tifffile

    extra: dict[str, object] = {}
    if "exif" in params and photo.exif is not None:
        exif = photo.exif
        extra["extratags"] = [(tag, "s", 0, str(exif[tag]), True) for tag in (0x010F, 0x0110)
                              if tag in exif]  # make, model
        if 0x011A in exif and 0x011B in exif:
            extra |= {"resolution": (float(exif[0x011A]), float(exif[0x011B])),
                      "resolutionunit": exif.get(0x0128, 2)}
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, photometric="rgb", compression="zlib", predictor=True,
                     extrasamples=["unassalpha"] if pixels.shape[2] == 4 else None,
                     iccprofile=params.get("icc_profile"), metadata=None, software=False,
                     **extra)
    return buffer.getvalue()
