"""Photo metadata: EXIF orientation, the EXIF whitelist of ``metadata="keep"`` and
ICC profiles (see :mod:`faceguard.io` for the policy)."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

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


def _orientation(exif: Image.Exif | None) -> int:
    """The EXIF orientation (1-8; 1, upright as stored, when absent or invalid)."""
    value = exif.get(_ORIENTATION, 1) if exif is not None else 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


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


def _icc_fits(icc: bytes, mode: str) -> bool:
    """Whether the profile's colour space (header bytes 16..19) matches the written mode."""
    space = icc[16:20]
    if mode in ("L", "LA", "I;16"):
        return space == b"GRAY"
    if mode == "CMYK":
        return space == b"CMYK"
    return space == b"RGB "


def _kept_exif(exif: Image.Exif | None, keep: bool = True, orientation: int = 1
               ) -> bytes | None:
    """An EXIF block (APP1 contents) with ``orientation`` and, with ``keep``, the
    whitelisted tags of ``exif``; None if it would hold nothing but Orientation 1.

    Orientation is 1 for pixels already made upright; a copy of the stored picture
    (:mod:`faceguard.io.jpeg`) keeps the original's. If Pillow cannot serialise the
    copied values, nothing is kept: the safe direction.
    """
    kept, sub = Image.Exif(), {}
    if keep and exif is not None:
        for tag in KEPT_EXIF_TAGS["IFD0"]:
            if tag in exif:
                kept[tag] = exif[tag]
        try:
            sub = {t: v for t, v in exif.get_ifd(_EXIF_IFD).items()
                   if t in KEPT_EXIF_TAGS["Exif"]}
        except Exception:  # noqa: BLE001 - a broken sub-IFD is simply not kept
            sub = {}
    if not kept and not sub and orientation == 1:
        return None
    kept[_ORIENTATION] = orientation
    if sub:
        kept[_EXIF_IFD] = sub
    try:
        return kept.tobytes()
    except Exception:  # noqa: BLE001
        return None
