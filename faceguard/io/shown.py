"""What a viewer shows of a photo: its alpha over white, a grey ICC profile's tones in
sRGB. How visible a cloak is compares two photos so (:func:`as_shown`), whatever their
formats keep; the writer applies the same where a format cannot hold them
(:mod:`faceguard.io.write`)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from faceguard.io.photo import Photo
from faceguard.io.tensors import uint8_pixels


def grey_profile(photo: Photo) -> bool:
    """Whether ``photo`` is grey with a grey ICC profile (which says its tones)."""
    icc = photo.icc_profile
    return bool(photo.is_grey and icc and icc[16:20] == b"GRAY")


def grey_in_srgb(icc: bytes, grey: Image.Image) -> Image.Image | None:
    """An "L" image in sRGB as its grey ICC profile ``icc`` shows it (None: a profile
    Little CMS cannot read)."""
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(grey, profile, ImageCms.createProfile("sRGB"),
                                         outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None


def as_shown(photo: Photo) -> np.ndarray:
    """The (H, W, 3) float32 pixels in [0, 1] a viewer shows of ``photo``: over white
    where it has alpha, and a grey photo with a grey ICC profile in sRGB (8 bits), as
    that profile shows it; else ``photo.pixels`` themselves.

    How visible a cloak is compares two photos so: a cut-out portrait (transparent
    around the face) written as JPEG is put on white, a grey photo written as WebP is
    given its profile's tones, and compared with the photo as read, either read as
    a cloak far more visible than it is.
    """
    rgb = photo.pixels
    if grey_profile(photo) and (srgb := grey_in_srgb(  # the profile first, as viewers do
            photo.icc_profile, Image.fromarray(uint8_pixels(rgb[..., 0])))) is not None:
        rgb = np.asarray(srgb, dtype=np.float32) / 255
    if photo.alpha is not None:
        rgb = over_white(rgb, photo.alpha)
    return rgb


def over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 3) pixels with (H, W) opacity shown over white, as viewers show them."""
    a = alpha[..., None]
    return rgb * a + (1 - a)
