"""A JPEG file's picture copied without decoding it: its metadata segments left out;
and, for a picture encoded again, whether to keep its quantisation (:func:`finer_tables`).

A photo that FaceGuard does not change (no face to protect) is written with the same
compressed picture data as the input, so it loses nothing to a second JPEG encoding and
takes milliseconds instead of an encoding's tens to hundreds. Only the segments that
describe the picture itself are copied: quantisation and Huffman tables, the frame and
scan headers, restart intervals, the entropy-coded data, the Adobe colour-transform
flag, and the ICC profile when it is kept. Everything else (EXIF with GPS and its
thumbnail, XMP, IPTC, comments, a JFIF thumbnail, camera makers' segments, an MPO's
further pictures) is left out, as :func:`faceguard.io.save_photo` leaves it out. The
EXIF the caller gives (the orientation, so the photo stays upright, and the tags the
metadata policy keeps) is written in their place.

Segment layout: ITU-T T.81 (JPEG) annex B; JFIF 1.02; EXIF 2.32 section 4.5.4.
"""

from __future__ import annotations

import functools
import io
import re
import struct

from PIL import Image

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_APP0, _APP1, _APP2, _APP14 = 0xE0, 0xE1, 0xE2, 0xEE
_COM = 0xFE
# frame headers (SOF0-15), Huffman and arithmetic-coding tables (DHT 0xC4, DAC 0xCC),
# quantisation tables, restart interval, line count
_PICTURE = frozenset(range(0xC0, 0xD0)) - {0xC8} | {0xDB, 0xDD, 0xDC}
_METADATA = frozenset(range(0xE0, 0xF0)) | {_COM}  # APP0-15, comments
_MAX_PAYLOAD = 0xFFFF - 2  # a segment's length counts its own two bytes
# in entropy-coded data 0xFF is followed by 0x00 (a stuffed byte) or a restart marker;
# anything else is the next marker (0xFF fill bytes may come before it)
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def stripped(data: bytes, exif: bytes | None = None, icc: bool = True) -> bytes | None:
    """The first picture of JPEG file ``data`` with only its picture segments, or None
    when its structure is not one this reads (the caller then encodes the photo anew).

    Args:
        data: the file's bytes.
        exif: an EXIF block to write (APP1 contents, starting ``Exif\\0\\0``), or None.
        icc: keep the ICC profile (its APP2 chunks).
    """
    if data[:2] != b"\xff\xd8":
        return None
    jfif, kept = b"", []  # the JFIF header; the picture's segments in their order
    pos = 2
    try:
        while True:
            while data[pos + 1] == 0xFF:  # fill bytes before a marker
                pos += 1
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == _EOI:
                break
            if 0xD0 <= marker <= 0xD7 or marker in (_SOI, 0x01):  # out of place here
                return None
            (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
            end = pos + 2 + length
            if length < 2 or end > len(data):
                return None
            payload = data[pos + 4:end]
            if marker == _APP0 and payload.startswith(b"JFIF\0") and len(payload) >= 12:
                # version, density unit and densities; the thumbnail is left out (a
                # second JFIF header replaces the first: there is one)
                jfif = _segment(_APP0, payload[:12] + b"\0\0")
            elif marker == _APP14 and payload.startswith(b"Adobe"):
                # its 12 bytes (version, flags, colour transform: how to read the
                # picture); anything a writer put after them is not
                kept.append(_segment(_APP14, payload[:12]))
            elif (marker in _PICTURE
                  or marker == _APP2 and icc and payload.startswith(b"ICC_PROFILE\0")):
                kept.append(data[pos:end])
            elif marker == _SOS:  # its header, then the entropy-coded data
                found = _NEXT_MARKER.search(data, end)
                if found is None:
                    return None
                end = found.start()
                kept.append(data[pos:end])
            elif marker not in _METADATA:  # hierarchical or extension segments: not read
                return None
            pos = end
    except (IndexError, struct.error):
        return None
    if not any(segment[1] == _SOS for segment in kept):
        return None
    if exif and len(exif) > _MAX_PAYLOAD:
        return None
    app1 = _segment(_APP1, exif) if exif else b""
    return b"".join([b"\xff\xd8", jfif, app1, *kept, b"\xff\xd9"])


def _segment(marker: int, payload: bytes) -> bytes:
    """A marker segment: 0xFF, the marker, the length (its two bytes included), payload."""
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def finer_tables(tables: dict[int, list[int]] | None, mode: str, quality: int
                 ) -> dict[int, list[int]] | None:
    """A JPEG original's quantization ``tables``, to write it again with, where they are finer
    than Pillow's at ``quality`` (smaller steps in sum), else None.

    A photo a camera saved at quality 97-100 and written again at 95 got a loss of its own
    on top of the cloak's, and often a larger one: saving alone took 9 such album faces to
    SSIMULACRA2 90-95 and a colour change (CIEDE2000 p95) up to 3.4, past the 2.3 that is
    just noticeable; with their own tables, to 97-98 and at most 1.0, in files about the
    originals' size (benchmarks/results/jpeg-saving.json). ``mode``: what is written
    ("RGB" or "L": other modes keep ``quality``)."""
    if not tables or mode not in ("RGB", "L") or mode == "RGB" and len(tables) < 2:
        return None
    return tables if sum(tables[0]) < sum(_pillow_tables(quality)[0]) else None


@functools.lru_cache(maxsize=8)
def _pillow_tables(quality: int) -> dict[int, list[int]]:
    """The quantization tables Pillow writes a colour JPEG with at ``quality``."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG", quality=quality)
    with Image.open(buffer) as image:
        return {k: list(v) for k, v in image.quantization.items()}
