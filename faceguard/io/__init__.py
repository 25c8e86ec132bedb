"""Safe photo input and output: the only place FaceGuard touches image files.

Reading (:func:`load_photo`)
    JPEG (also camera MPO files: the first picture), PNG, WebP, BMP, TIFF and PGM/PPM,
    recognised by their content, not their name (the test album holds a WebP named
    ``.jpg``). EXIF orientation is applied to the pixels. Every pixel mode becomes
    ``(H, W, 3)`` float32 RGB in [0, 1] for the models, and the :class:`Photo` remembers
    how to write it back: grey stays grey, 16 bits stay 16 (16-bit colour PNG, PPM and
    TIFF, which Pillow reads with 8, are read with OpenCV or tifffile), alpha is kept,
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
    256 colours would erase the cloak. A photo nothing was changed in is written by
    :func:`copy_photo`: a JPEG keeps its compressed picture as it was (no second loss;
    :mod:`faceguard.io.jpeg`) and its EXIF orientation as a tag, with the same metadata
    policy; anything else is saved as above.

Metadata policy
    ``metadata="strip"`` (default) writes no EXIF, IPTC, XMP or comments at all: GPS,
    captions, names, serial numbers and the EXIF thumbnail (an uncloaked copy of the
    face!) are gone. The ICC colour profile is kept wherever the format can hold it
    and it fits the written colour space, and so are a PNG's gamma and chromaticities
    (gAMA, cHRM, sRGB), which tell viewers its colours when it has no profile: written
    as JPEG, WebP or TIFF, which have no such chunks, they become an ICC profile of an
    RGB photo (:mod:`faceguard.io.png_profile`; none for sRGB's own gamma).
    ``metadata="keep"`` additionally writes a whitelist of non-identifying EXIF tags
    (:data:`KEPT_EXIF_TAGS`: camera and lens make/model, exposure settings, colour space,
    resolution; a 16-bit colour TIFF only its make, model and resolution) with
    Orientation reset to 1, because the orientation is already applied to the pixels.
    Dates are not kept: a capture time links a photo to an event and a place. A copied
    JPEG's picture is stored as the camera stored it, so its EXIF keeps the original
    Orientation (with ``"strip"``, the only tag it holds, and only when it is not 1).

Safety
    Writes are atomic (a temporary file in the destination folder, then a rename), an
    existing file is replaced only with ``overwrite=True``, and the input photo is
    never written to, whatever the options.
"""


from faceguard.io.find import Found, Skipped, find_photos, resolved, search, skipped_lines
from faceguard.io.metadata import KEPT_EXIF_TAGS
from faceguard.io.photo import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_PIXELS,
    NO_LIMIT,
    SUPPORTED_SUFFIXES,
    Photo,
    PhotoError,
    PixelLimit,
)
from faceguard.io.read import load_photo
from faceguard.io.shown import as_shown
from faceguard.io.tensors import from_tensor, tensor_view, to_tensor, uint8_pixels
from faceguard.io.write import (
    check_writable,
    copy_photo,
    name_file,
    output_format,
    output_suffix,
    save_photo,
)

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_MAX_PIXELS",
    "Found",
    "KEPT_EXIF_TAGS",
    "NO_LIMIT",
    "SUPPORTED_SUFFIXES",
    "Photo",
    "PhotoError",
    "PixelLimit",
    "Skipped",
    "as_shown",
    "find_photos",
    "from_tensor",
    "load_photo",
    "output_format",
    "output_suffix",
    "resolved",
    "check_writable",
    "copy_photo",
    "name_file",
    "save_photo",
    "search",
    "skipped_lines",
    "tensor_view",
    "to_tensor",
    "uint8_pixels",
]
