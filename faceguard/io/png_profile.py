"""An ICC profile that says what a PNG's gAMA and cHRM chunks say, for the formats that
have no such chunks (JPEG, WebP, TIFF): a PNG stored with gamma 1.0 and written as JPEG
without it shows darker in every viewer that honoured the chunk.

The profile is a version 2 RGB display profile, the simplest kind every colour-managed
viewer reads (ICC.1:2001-04): a gamma curve per channel and the primaries' XYZ, adapted
from the PNG's white point to the ICC's D50 with the linear Bradford transform the ICC
recommends for it. Photos of other colour spaces (grey) get none.
"""

from __future__ import annotations

import struct

import numpy as np

#: the gAMA of sRGB's own files: a PNG with it and sRGB's primaries (or none) needs no
#: profile, as viewers take an unmarked JPEG for sRGB
SRGB_GAMMA = 0.45455

#: white x, y, then red, green and blue x, y: sRGB's (ITU-R BT.709), which a PNG without
#: cHRM is taken to have
SRGB_CHROMATICITY = (0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06)

_D50 = np.array([0.9642, 1.0, 0.8249])  # the ICC's profile connection space white
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                      [-0.7502, 1.7135, 0.0367],
                      [0.0389, -0.0685, 1.0296]])


def png_profile(chunks: tuple[tuple[bytes, bytes], ...]) -> bytes | None:
    """The ICC profile of a PNG's colour ``chunks`` (:attr:`faceguard.io.Photo.png_colour`),
    or None where they need none: no gAMA, an sRGB chunk, or sRGB's gamma and primaries."""
    found = dict(chunks)
    if b"sRGB" in found or b"gAMA" not in found:
        return None
    gamma = struct.unpack(">I", found[b"gAMA"])[0] / 100000
    chromaticity = (tuple(v / 100000 for v in struct.unpack(">8I", found[b"cHRM"]))
                    if b"cHRM" in found else SRGB_CHROMATICITY)
    if gamma <= 1 / 255 or min(chromaticity[1::2]) <= 0:
        return None  # no curve or primaries a profile can hold: dropped, as before
    if (abs(gamma - SRGB_GAMMA) < 0.0005
            and np.allclose(chromaticity, SRGB_CHROMATICITY, atol=0.0005)):
        return None
    try:
        return _profile(1 / gamma, chromaticity)
    except (np.linalg.LinAlgError, struct.error):  # primaries on a line, or far out of range
        return None


def _xyz(x: float, y: float) -> np.ndarray:
    """(3,) XYZ of chromaticity x, y at luminance 1."""
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _colorants(chromaticity: tuple[float, ...]) -> np.ndarray:
    """(3, 3) columns: the red, green and blue primaries' XYZ at full intensity, adapted
    to D50, for the white and primaries x, y of ``chromaticity``."""
    white = _xyz(*chromaticity[:2])
    primaries = np.stack([_xyz(*chromaticity[k:k + 2]) for k in (2, 4, 6)], axis=1)
    to_xyz = primaries * np.linalg.solve(primaries, white)  # each column scaled: RGB 1 -> white
    cone = np.diag((_BRADFORD @ _D50) / (_BRADFORD @ white))
    return np.linalg.inv(_BRADFORD) @ cone @ _BRADFORD @ to_xyz


def _s15(values) -> bytes:
    return b"".join(struct.pack(">i", round(float(v) * 65536)) for v in values)


def _profile(display_gamma: float, chromaticity: tuple[float, ...]) -> bytes:
    """The profile's bytes: header, tag table, tags (each 4-byte aligned)."""
    def xyz(values) -> bytes:
        return b"XYZ \0\0\0\0" + _s15(values)

    text = f"PNG gamma {1 / display_gamma:.5f}".encode("ascii")
    description = (b"desc\0\0\0\0" + struct.pack(">I", len(text) + 1) + text + b"\0"
                   + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + bytes(67))
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(display_gamma * 256)) + b"\0\0"
    colorants = _colorants(chromaticity)
    tags = [(b"desc", description), (b"cprt", b"text\0\0\0\0No copyright\0"),
            (b"wtpt", xyz(_xyz(*chromaticity[:2]))),
            (b"rXYZ", xyz(colorants[:, 0])), (b"gXYZ", xyz(colorants[:, 1])),
            (b"bXYZ", xyz(colorants[:, 2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + bytes(12) + b"acsp" + bytes(24) + struct.pack(">I", 0) + _s15(_D50)
              + bytes(48))
    return header + table + data
