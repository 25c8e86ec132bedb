"""Tests of faceguard.io: formats, modes, orientation, metadata policy, safe writes, errors."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps

from faceguard import io as fio
from faceguard.io import (
    NO_LIMIT,
    Photo,
    PhotoError,
    PixelLimit,
    as_shown,
    check_writable,
    copy_photo,
    find_photos,
    from_tensor,
    load_photo,
    output_suffix,
    save_photo,
    search,
    skipped_lines,
    to_tensor,
    uint8_pixels,
)

REPO = Path(__file__).resolve().parents[1]
GPS_IFD = ExifTags.IFD.GPSInfo
EXIF_IFD = ExifTags.IFD.Exif
IDENTIFYING_IFD0 = {
    ExifTags.Base.Artist,
    ExifTags.Base.Copyright,
    ExifTags.Base.ImageDescription,
    ExifTags.Base.Software,
    ExifTags.Base.DateTime,
    ExifTags.Base.XPComment,
    ExifTags.Base.XPAuthor,
}
IDENTIFYING_EXIF = {
    ExifTags.Base.BodySerialNumber,
    ExifTags.Base.LensSerialNumber,
    ExifTags.Base.CameraOwnerName,
    ExifTags.Base.UserComment,
    ExifTags.Base.MakerNote,
    ExifTags.Base.DateTimeOriginal,
    ExifTags.Base.ImageUniqueID,
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def as_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)


def assert_one_line_error(err: pytest.ExceptionInfo[PhotoError], path: Path, *reason: str):
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    for part in reason:
        assert part in message, message


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring width x height RGB with a few bytes of data (never decodable)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def album_photos(album_dir: Path) -> list[Path]:
    return sorted(album_dir.rglob("*.jpg"))


def gps_photos(album_dir: Path) -> list[Path]:
    """Album photos carrying a GPS IFD and an Artist or caption: the privacy test cases."""
    found = []
    for path in album_photos(album_dir):
        with Image.open(path) as im:
            exif = im.getexif()
            if exif.get_ifd(GPS_IFD) and (exif.get(ExifTags.Base.Artist)
                                          or exif.get(ExifTags.Base.ImageDescription)):
                found.append(path)
    assert found, "the album is documented to hold photos with GPS EXIF"
    return found


def privacy_cases(album_dir: Path, suffix: str) -> list[Path]:
    """All GPS photos for JPEG; the smallest one for the slower lossless encoders."""
    found = gps_photos(album_dir)
    if suffix == ".jpg":
        return found
    return [min(found, key=lambda p: np.prod(Image.open(p).size))]


@pytest.fixture
def astro_png(tmp_path: Path, astronaut: np.ndarray) -> Path:
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


# --------------------------------------------------------------------------------------
# Formats


@pytest.mark.parametrize(("fmt", "suffix", "mode", "lossless"), [
    ("JPEG", ".jpg", "RGB", False),
    ("PNG", ".png", "RGB", True),
    ("WEBP", ".webp", "RGB", True),
    ("BMP", ".bmp", "RGB", True),
    ("TIFF", ".tif", "RGB", True),
    ("PPM", ".pgm", "L", True),
    ("PPM", ".ppm", "RGB", True),
])
def test_each_format_loads(tmp_path, astronaut, fmt, suffix, mode, lossless):
    source = Image.fromarray(astronaut).convert(mode)
    path = tmp_path / f"astronaut{suffix}"
    source.save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    photo = load_photo(path)
    assert photo.format == fmt
    assert photo.mode == mode
    assert photo.size == (512, 512)
    assert photo.pixels.shape == (512, 512, 3) and photo.pixels.dtype == np.float32
    assert photo.pixels.min() >= 0 and photo.pixels.max() <= 1
    with Image.open(path) as decoded:  # exactly what Pillow decodes
        np.testing.assert_array_equal(as_uint8(photo.pixels), np.asarray(decoded.convert("RGB")))
    if lossless:
        np.testing.assert_array_equal(as_uint8(photo.pixels), np.asarray(source.convert("RGB")))


def test_real_pgm_from_att_is_grey(att_dir):
    path = next(iter(sorted(att_dir.rglob("*.pgm"))))
    photo = load_photo(path)
    raw = np.asarray(Image.open(path))
    assert (photo.format, photo.mode, photo.is_grey) == ("PPM", "L", True)
    assert photo.size == (92, 112)
    for channel in range(3):
        np.testing.assert_array_equal(as_uint8(photo.pixels[..., channel]), raw)
    assert output_suffix(photo) == ".pgm"


def test_real_album_jpegs_load(album_dir):
    for path in album_photos(album_dir)[::6]:
        photo = load_photo(path)
        with Image.open(path) as im:
            assert photo.size == im.size  # the album's photos are all stored upright
        assert photo.pixels.shape[2] == 3 and 0 <= photo.pixels.min() <= photo.pixels.max() <= 1


def test_content_decides_format_not_suffix(album_dir):
    """The album holds a WebP file named .jpg: it is read as WebP and kept as .webp."""
    disguised = [p for p in album_photos(album_dir) if Image.open(p).format == "WEBP"]
    assert disguised
    photo = load_photo(disguised[0])
    assert photo.format == "WEBP"
    assert output_suffix(photo) == ".webp"
    assert output_suffix(photo, "jpeg") == ".jpg"


def test_camera_mpo_reads_the_main_picture_and_writes_plain_jpeg(tmp_path, astronaut):
    """Phones write MPO (JPEG + preview/depth pictures): the extra pictures, which would be
    uncloaked copies, are dropped."""
    main = Image.fromarray(astronaut)
    preview = Image.fromarray(astronaut[::2, ::2])
    path = tmp_path / "IMG_0001.JPG"
    main.save(path, "MPO", save_all=True, append_images=[preview], quality=95)
    photo = load_photo(path)
    assert photo.format == "MPO" and photo.size == (512, 512)
    with Image.open(path) as im:
        assert im.n_frames == 2
        np.testing.assert_array_equal(as_uint8(photo.pixels), np.asarray(im.convert("RGB")))
    assert output_suffix(photo) == ".JPG"
    out = save_photo(photo, tmp_path / "out.jpg", format="keep")
    with Image.open(out) as back:
        assert back.format == "JPEG" and getattr(back, "n_frames", 1) == 1


# --------------------------------------------------------------------------------------
# Modes: what comes in is what goes out


def _mode_source(astronaut: np.ndarray, mode: str) -> Image.Image:
    rgb = Image.fromarray(astronaut)
    if mode == "I;16":
        # Values whose low byte is not a copy of the high byte: real 16-bit content.
        grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * 256 + np.arange(512) % 256
        return Image.fromarray(grey.astype(np.uint16))
    if mode == "LA":
        alpha = np.tile(np.linspace(0, 255, 512).astype(np.uint8), (512, 1))
        return Image.merge("LA", [rgb.convert("L"), Image.fromarray(alpha)])
    if mode == "RGBA":
        alpha = np.tile(np.linspace(0, 255, 512).astype(np.uint8)[:, None], (1, 512))
        return Image.merge("RGBA", [*rgb.split(), Image.fromarray(alpha)])
    if mode == "P":
        return rgb.quantize(64)
    return rgb.convert(mode)


@pytest.mark.parametrize(("mode", "fmt", "written"), [
    ("L", "PNG", "L"),
    ("LA", "PNG", "LA"),
    ("RGBA", "PNG", "RGBA"),
    ("I;16", "PNG", "I;16"),
    ("I;16", "TIFF", "I;16"),
    ("CMYK", "TIFF", "CMYK"),
    ("LA", "TIFF", "LA"),
    ("1", "PNG", "L"),  # a bilevel image could not hold a cloak: written as 8-bit grey
    ("P", "PNG", "RGB"),  # re-quantising to a palette would erase the cloak
])
def test_mode_round_trip_is_exact(tmp_path, astronaut, mode, fmt, written):
    source = _mode_source(astronaut, mode)
    src_path = tmp_path / f"in.{fmt.lower()}"
    source.save(src_path, format=fmt)
    photo = load_photo(src_path)
    assert photo.mode == source.mode
    assert photo.is_grey == (mode in ("L", "LA", "I;16", "1"))
    assert (photo.alpha is not None) == ("A" in mode)

    out = save_photo(photo, tmp_path / f"out.{fmt.lower()}", format="keep")
    with Image.open(out) as back:
        assert back.format == fmt
        assert back.mode == written
        expected = source if written == source.mode else source.convert(written)
        np.testing.assert_array_equal(np.asarray(back), np.asarray(expected))
    again = load_photo(out)
    np.testing.assert_array_equal(again.pixels, photo.pixels)
    if photo.alpha is not None:
        np.testing.assert_array_equal(again.alpha, photo.alpha)


def test_sixteen_bit_pgm_stays_sixteen_bit(tmp_path):
    values = (np.arange(64 * 48, dtype=np.uint32) * 21 % 65536).astype(">u2").reshape(48, 64)
    path = tmp_path / "deep.pgm"
    path.write_bytes(b"P5\n64 48\n65535\n" + values.tobytes())
    photo = load_photo(path)
    assert photo.is_grey
    out = save_photo(photo, tmp_path / "deep_out.pgm")
    assert out.read_bytes().startswith(b"P5\n64 48\n65535\n")
    np.testing.assert_array_equal(np.asarray(Image.open(out)), values.astype(np.int32))


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_colour_png_keeps_its_sixteen_bits(tmp_path, astronaut, channels):
    # Pillow reads these as 8 bits: they were written back with 8 silently.
    import cv2

    deep = astronaut.astype(np.uint16) * 256 + (np.arange(512, dtype=np.uint16) % 256)[:, None]
    if channels == 4:
        alpha = np.tile(np.linspace(0, 65535, 512).astype(np.uint16)[:, None], (1, 512))
        deep = np.concatenate([deep, alpha[..., None]], axis=2)
    bgr = np.ascontiguousarray(deep[..., [2, 1, 0, 3][:channels]])
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), bgr)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = dataclasses.replace(load_photo(path), icc_profile=srgb)
    assert photo.mode == ("RGB;16" if channels == 3 else "RGBA;16")
    np.testing.assert_array_equal(photo.pixels * 65535, deep[..., :3])

    out = save_photo(photo, tmp_path / "deep_out.png")
    np.testing.assert_array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), bgr)
    with Image.open(out) as back:
        assert back.info["icc_profile"] == srgb
    again = load_photo(out)
    assert again.mode == photo.mode
    np.testing.assert_array_equal(again.pixels, photo.pixels)
    # a format with no 16 bits gets 8
    with Image.open(save_photo(photo, tmp_path / "deep.jpg")) as jpeg:
        assert jpeg.mode == "RGB"


def test_sixteen_bit_colour_ppm_keeps_its_sixteen_bits(tmp_path):
    """A raw converter's (dcraw -6) 16-bit PPM was written with 8 bits, the whole photo."""
    deep = np.random.default_rng(0).integers(0, 65536, (40, 50, 3), dtype=np.uint16)
    path = tmp_path / "deep.ppm"
    path.write_bytes(b"P6\n# dcraw\n50 40\n65535\n" + deep.astype(">u2").tobytes())
    photo = load_photo(path)
    assert photo.mode == "RGB;16"
    np.testing.assert_array_equal(photo.pixels * 65535, deep)
    out = save_photo(photo, tmp_path / "out.ppm")
    assert out.read_bytes() == b"P6\n50 40\n65535\n" + deep.astype(">u2").tobytes()


@pytest.mark.parametrize("layout", ["interleaved", "alpha", "planes apart", "turned"])
def test_sixteen_bit_colour_tiff_keeps_its_sixteen_bits(tmp_path, layout):
    """A photographer's 16-bit TIFF was read and written with 8 bits, the whole photo (its
    planes stored apart, Pillow even mixed up the bytes of its channels)."""
    import tifffile

    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (40, 50, 4 if layout == "alpha" else 3), dtype=np.uint16)
    stored, extra = deep, {}
    if layout == "alpha":
        extra = {"extrasamples": ["unassalpha"]}
    if layout == "planes apart":
        stored, extra = np.moveaxis(deep, -1, 0), {"planarconfig": "separate"}
    if layout == "turned":  # stored turned a quarter anticlockwise, shown upright
        stored, extra = np.rot90(deep), {"extratags": [(0x0112, "H", 1, 6, True)]}
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "deep.tif"
    make = [(0x010F, "s", 0, "Camera maker", True)]
    tifffile.imwrite(path, stored, photometric="rgb", compression="zlib", iccprofile=srgb,
                     resolution=(300, 300), resolutionunit="INCH",
                     extratags=make + extra.pop("extratags", []), **extra)
    photo = load_photo(path)
    assert photo.mode == ("RGBA;16" if layout == "alpha" else "RGB;16")
    np.testing.assert_array_equal(photo.pixels * 65535, deep[..., :3])
    if layout == "alpha":
        np.testing.assert_array_equal(photo.alpha * 65535, deep[..., 3])

    out = save_photo(photo, tmp_path / "out.tif", metadata="keep")
    with tifffile.TiffFile(out) as written:
        page = written.pages[0]
        np.testing.assert_array_equal(page.asarray(), deep)
        assert page.tags["InterColorProfile"].value == srgb
        assert page.tags["Make"].value == "Camera maker"
        assert page.tags["XResolution"].value == (300, 1) and page.tags["ResolutionUnit"].value == 2
        assert "Orientation" not in page.tags  # the pixels are upright now
    again = load_photo(out)
    assert again.mode == photo.mode
    np.testing.assert_array_equal(again.pixels, photo.pixels)
    with tifffile.TiffFile(save_photo(photo, tmp_path / "stripped.tif")) as stripped:
        assert "Make" not in stripped.pages[0].tags  # metadata "strip": none
        assert "ImageDescription" not in stripped.pages[0].tags


def test_a_sixteen_bit_tiff_with_premultiplied_alpha_keeps_its_sixteen_bits(tmp_path):
    """A 16-bit TIFF whose colour is stored multiplied by its alpha was read with 8 bits:
    its colour, divided back, was off by up to 1/255 of the alpha (0.02 at alpha 0.2)."""
    import tifffile

    rng = np.random.default_rng(0)
    colour = rng.integers(0, 65536, (40, 50, 3)) / 65535
    alpha = np.tile(np.linspace(0, 1, 50), (40, 1))  # the first column fully transparent
    stored = np.rint(np.dstack([colour * alpha[..., None], alpha]) * 65535).astype(np.uint16)
    path = tmp_path / "premultiplied.tif"
    tifffile.imwrite(path, stored, photometric="rgb", extrasamples=["assocalpha"])
    photo = load_photo(path)
    assert photo.mode == "RGBA;16"
    np.testing.assert_array_equal(photo.alpha * 65535, stored[..., 3])
    shown = alpha > 0
    # the stored colour and alpha are each rounded to 1/65535 before the division
    bound = 1 / 65535 / photo.alpha[shown][:, None] + 1e-6
    assert (np.abs(photo.pixels[shown] - colour[shown]) <= bound).all()
    assert (photo.pixels[~shown] == 0).all()

    with tifffile.TiffFile(save_photo(photo, tmp_path / "out.tif")) as written:
        page = written.pages[0]
        assert page.extrasamples == (2,)  # written unassociated, the colour as shown
        np.testing.assert_array_equal(page.asarray()[..., 3], stored[..., 3])
        np.testing.assert_allclose(page.asarray()[..., :3] / 65535, photo.pixels, atol=1e-5)


def test_a_sixteen_bit_tiff_of_planes_apart_that_cannot_be_read_says_why(tmp_path, monkeypatch):
    import tifffile

    path = tmp_path / "apart.tif"
    tifffile.imwrite(path, np.zeros((3, 20, 20), np.uint16), photometric="rgb",
                     planarconfig="separate")

    def needs_a_codec(*args, **kwargs):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile, "imread", needs_a_codec)
    with pytest.raises(PhotoError, match=r"apart.tif: a 16-bit TIFF with its colour planes "
                                         r"stored apart.*ZIP compression"):
        load_photo(path)


@pytest.mark.parametrize("deep", [False, True])
def test_a_pngs_gamma_and_chromaticities_are_kept(tmp_path, deep):
    """They were dropped: a PNG stored in linear light (gamma 1.0) came out darker."""
    import struct

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    depth, channel = (16, ">u2") if deep else (8, "u1")
    pixels = np.random.default_rng(0).integers(0, 2 ** depth, (12, 16, 3)).astype(channel)
    rows = b"".join(b"\0" + row.tobytes() for row in pixels)
    white_and_primaries = (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
    (tmp_path / "linear.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 12, depth, 2, 0, 0, 0))
        + chunk(b"gAMA", struct.pack(">I", 100000))
        + chunk(b"cHRM", struct.pack(">8I", *white_and_primaries))
        + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    photo = load_photo(tmp_path / "linear.png")
    assert photo.mode == ("RGB;16" if deep else "RGB")
    with Image.open(save_photo(photo, tmp_path / "out.png")) as back:
        assert back.info["gamma"] == 1.0
        assert back.info["chromaticity"] == tuple(v / 100000 for v in white_and_primaries)
    again = load_photo(tmp_path / "out.png")
    assert again.mode == photo.mode
    np.testing.assert_array_equal(again.pixels * (2 ** depth - 1), pixels)


@pytest.mark.parametrize(("fmt", "deep"), [("JPEG", False), ("WEBP", False), ("TIFF", True)])
def test_a_pngs_gamma_becomes_a_profile_in_a_format_without_its_chunk(tmp_path, fmt, deep):
    """A PNG in linear light (gamma 1.0) written as JPEG, WebP or TIFF carries an ICC
    profile that says so: viewers show its mid grey as sRGB's 188, not 128. A PNG with
    sRGB's own gamma gets none, as before."""
    from PIL.PngImagePlugin import PngInfo

    def written(gamma: float) -> bytes | None:
        info = PngInfo()
        info.add(b"gAMA", struct.pack(">I", round(gamma * 100000)))
        Image.new("RGB", (16, 12), (128, 128, 128)).save(tmp_path / "in.png", pnginfo=info)
        photo = load_photo(tmp_path / "in.png")
        if deep:
            photo = dataclasses.replace(photo, mode="RGB;16")
        out = save_photo(photo, tmp_path / f"{gamma}.{fmt.lower()}", format=fmt, quality=100)
        with Image.open(out) as back:
            return back.info.get("icc_profile")

    assert written(0.45455) is None
    to_srgb = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(written(1.0))),
                                      ImageCms.createProfile("sRGB"), "RGB", "RGB")
    shown = ImageCms.applyTransform(Image.new("RGB", (1, 1), (128, 128, 128)), to_srgb)
    assert all(abs(v - 188) <= 1 for v in shown.getpixel((0, 0)))


def test_a_pngs_gamma_no_profile_can_hold_is_dropped_as_before():
    """A gamma of 0, a primary at y = 0 or primaries on one line make no profile (and
    no error: the photo is still written)."""
    from faceguard.io.png_profile import png_profile

    def chunks(gamma: int, *chromaticity: int) -> tuple:
        chrm = ((b"cHRM", struct.pack(">8I", *chromaticity)),) if chromaticity else ()
        return ((b"gAMA", struct.pack(">I", gamma)),) + chrm

    white = (31270, 32900)
    assert png_profile(chunks(0)) is None
    assert png_profile(chunks(100000, *white, 64000, 0, 30000, 60000, 15000, 6000)) is None
    assert png_profile(chunks(100000, *white, 10000, 10000, 20000, 20000, 30000, 30000)) is None
    assert png_profile(chunks(100000))[36:40] == b"acsp"


@pytest.mark.parametrize("deep", [False, True])
def test_a_pngs_srgb_chunk_is_kept_only_without_a_profile(tmp_path, deep):
    """A PNG holds sRGB or an ICC profile, not both: the profile wins, in both writers."""
    values = np.random.default_rng(0).integers(0, 256, (12, 16, 3)).astype(np.uint8)
    Image.fromarray(values).save(tmp_path / "s.png", pnginfo=_with_srgb())
    photo = load_photo(tmp_path / "s.png")
    if deep:
        photo = dataclasses.replace(photo, mode="RGB;16")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for icc, name in ((None, "plain.png"), (srgb, "profiled.png")):
        out = save_photo(dataclasses.replace(photo, icc_profile=icc), tmp_path / name)
        with Image.open(out) as back:
            assert ("srgb" in back.info) == (icc is None)
            assert back.info.get("icc_profile") == icc
        assert out.read_bytes()[24] == (16 if deep else 8)  # IHDR's bit depth: the writer


def _with_srgb():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add(b"sRGB", b"\0")
    return info


def test_a_sixteen_bit_grey_pngs_transparent_level_stays_transparent(tmp_path):
    """Its tRNS grey level was dropped: the transparent parts came out opaque black."""
    grey = np.full((32, 40), 30000, np.uint16)
    grey[:, :10] = 0
    Image.fromarray(grey).save(tmp_path / "g.png", transparency=0)
    photo = load_photo(tmp_path / "g.png")
    assert photo.alpha is not None and not photo.alpha[:, :10].any() and photo.alpha[:, 10:].all()
    with Image.open(save_photo(photo, tmp_path / "out.png")) as back:
        assert back.mode == "LA"  # the alpha kept, with 8 bits
        assert not np.asarray(back)[:, :10, 1].any() and np.asarray(back)[:, 10:, 1].all()


def test_a_sixteen_bit_grey_png_with_alpha_stays_grey(tmp_path):
    """Pillow opens it as RGBA: it was written as a colour photo."""
    import struct

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    grey = np.linspace(0, 65535, 40).astype(">u2")
    row = b"\0" + np.stack([grey, grey[::-1]], axis=1).tobytes()  # grey, alpha; no filter
    (tmp_path / "la.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40, 32, 16, 4, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * 32)) + chunk(b"IEND", b""))
    photo = load_photo(tmp_path / "la.png")
    assert photo.is_grey and photo.alpha is not None
    with Image.open(save_photo(photo, tmp_path / "out.png")) as back:
        assert back.mode == "LA"


def test_truncated_sixteen_bit_png_is_one_line(tmp_path, astronaut):
    import cv2

    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), astronaut.astype(np.uint16) * 257)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(PhotoError, match="truncated or corrupt PNG"):
        load_photo(path)


def test_palette_with_transparency_keeps_alpha(tmp_path, astronaut):
    source = Image.fromarray(astronaut).quantize(32)
    path = tmp_path / "p.png"
    source.save(path, transparency=0)
    photo = load_photo(path)
    assert photo.mode == "P" and photo.alpha is not None
    assert set(np.unique(photo.alpha)) == {0.0, 1.0}
    with Image.open(save_photo(photo, tmp_path / "p_out.png")) as back, Image.open(path) as im:
        assert back.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(back), np.asarray(im.convert("RGBA")))


def test_grey_with_transparent_colour_becomes_grey_alpha(tmp_path, astronaut):
    source = Image.fromarray(astronaut).convert("L")
    path = tmp_path / "g.png"
    source.save(path, transparency=0)
    photo = load_photo(path)
    assert photo.is_grey and photo.alpha is not None
    assert Image.open(save_photo(photo, tmp_path / "g_out.png")).mode == "LA"


def _cmyk_jpeg(astronaut: np.ndarray, path: Path) -> Path:
    """The astronaut as a CMYK JPEG with real black ink: K = 60% of the darkness, the
    rest in C, M, Y."""
    arr = 255 - astronaut.astype(np.float64)
    k = 0.6 * arr.min(axis=2)
    cmy = (arr - k[..., None]) / (1 - k[..., None] / 255)
    cmyk = np.concatenate([cmy, k[..., None]], axis=2).round().astype(np.uint8)
    Image.frombytes("CMYK", (512, 512), cmyk.tobytes()).save(path, quality=95)
    return path


def test_cmyk_jpeg_keeps_mode_and_black_ink(tmp_path, astronaut):
    path = _cmyk_jpeg(astronaut, tmp_path / "cmyk.jpg")
    photo = load_photo(path)
    assert photo.mode == "CMYK" and photo.inks is not None
    np.testing.assert_array_equal(
        as_uint8(photo.pixels), as_uint8(np.asarray(Image.open(path).convert("RGB")) / 255))
    out = save_photo(photo, tmp_path / "cmyk_out.jpg")
    with Image.open(out) as back, Image.open(path) as original:
        assert back.mode == "CMYK"
        diff = np.abs(np.asarray(back).astype(int) - np.asarray(original).astype(int))
        assert diff[..., 3].mean() < 2  # K survives (a naive RGB -> CMYK would zero it)
        assert diff.mean() < 2
    copied = load_photo(copy_photo(photo, tmp_path / "cmyk_copy.jpg"))  # Adobe flag kept
    assert copied.mode == "CMYK"
    np.testing.assert_array_equal(copied.pixels, photo.pixels)
    np.testing.assert_array_equal(copied.inks, photo.inks)
    # PNG cannot hold CMYK: written as RGB with the same appearance.
    with Image.open(save_photo(photo, tmp_path / "cmyk_out.png")) as png:
        assert png.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(png), as_uint8(photo.pixels))


def test_the_lossy_guard_codes_a_cmyk_jpeg_as_its_file_shows_it(tmp_path, astronaut):
    """A CMYK JPEG is written in inks, with the original black: the guard codes a part of
    it the same way, so a cloaked face is scored as its file shows it (before, it scored
    the pixels, and a CMYK album photo's face read 74.8 in its file against a floor of
    75)."""
    from faceguard.io.lossy import lossy_saving

    photo = load_photo(_cmyk_jpeg(astronaut, tmp_path / "cmyk.jpg"))
    pixels = photo.pixels.copy()
    change = np.random.default_rng(0).normal(0, 4 / 255, (240, 200, 3))
    pixels[100:340, 150:350] = np.clip(pixels[100:340, 150:350] + change, 0, 1)
    cloaked = photo.with_pixels(as_uint8(pixels) / np.float32(255))
    lossy = lossy_saving(cloaked, "keep", 95)
    assert lossy is not None and lossy.mode == "CMYK" and lossy.grid == 8
    file = load_photo(save_photo(cloaked, tmp_path / "out.jpg"))
    x0, y0, x1, y1 = lossy.grid_box((150, 100, 350, 340), (0, 0), (512, 512))
    part = lossy.part_at(x0, y0)(as_uint8(cloaked.pixels[y0:y1, x0:x1]))
    np.testing.assert_array_equal(part, file.pixels[y0:y1, x0:x1])
    assert np.abs(part - cloaked.pixels[y0:y1, x0:x1]).max() > 0  # the file's own loss


def test_a_rich_black_keeps_its_inks_outside_the_faces(tmp_path):
    """K 100% over C, M and Y shows as plain black in RGB: every pixel of it came back
    with C, M and Y at 0, not only the faces'. A cloaked pixel gets inks from its colour."""
    inks = np.zeros((40, 40, 4), np.uint8)
    inks[:20] = (150, 100, 90, 255)  # a rich black
    inks[20:] = (30, 60, 90, 40)
    Image.frombytes("CMYK", (40, 40), inks.tobytes()).save(tmp_path / "rich.tiff")
    photo = load_photo(tmp_path / "rich.tiff")
    pixels = photo.pixels.copy()
    pixels[30:, 30:] = 0.5  # a "cloaked" corner
    out = save_photo(photo.with_pixels(pixels), tmp_path / "out.tiff")
    with Image.open(out) as back:
        written = np.asarray(back)
    np.testing.assert_array_equal(written[:30], inks[:30])  # unchanged: the very inks
    np.testing.assert_array_equal(written[:, :30], inks[:, :30])
    assert not np.array_equal(written[30:, 30:], inks[30:, 30:])


def test_alpha_is_composited_on_white_where_the_format_has_no_alpha(tmp_path):
    pixels = np.zeros((32, 32, 3), np.float32)  # black
    alpha = np.zeros((32, 32), np.float32)
    alpha[:, 16:] = 1
    photo = Photo(pixels=pixels, mode="RGBA", alpha=alpha)
    with Image.open(save_photo(photo, tmp_path / "flat.bmp")) as bmp:
        arr = np.asarray(bmp)
        assert bmp.mode == "RGB"
        assert (arr[:, :16] == 255).all() and (arr[:, 16:] == 0).all()


# --------------------------------------------------------------------------------------
# Pixel round trips and quantisation


def test_png_round_trip_is_exact(astro_png, tmp_path):
    first = load_photo(astro_png)
    second = load_photo(save_photo(first, tmp_path / "again.png"))
    np.testing.assert_array_equal(second.pixels, first.pixels)


def test_jpeg_round_trip_is_close(album_dir, tmp_path):
    first = load_photo(album_photos(album_dir)[0])
    second = load_photo(save_photo(first, tmp_path / "again.jpg"))
    assert second.pixels.shape == first.pixels.shape
    assert np.abs(second.pixels - first.pixels).mean() < 2 / 255


def test_quantisation_rounds_and_clips(tmp_path):
    values = np.array([-0.1, 0.0, 100.4 / 255, 100.6 / 255, 254.5 / 255 + 1e-4, 1.3],
                      np.float32)
    pixels = np.repeat(np.tile(values, 3)[None, :, None], 3, axis=2)
    pixels = np.repeat(pixels, 16, axis=0)
    out = save_photo(Photo(pixels=pixels), tmp_path / "q.png")
    row = np.asarray(Image.open(out))[0, :6, 0]
    np.testing.assert_array_equal(row, [0, 0, 100, 101, 255, 255])


def test_float_pixels_become_the_rounded_clipped_eight_bits():
    rng = np.random.default_rng(0)
    pixels = rng.uniform(-0.2, 1.2, (40, 50, 3))
    expected = (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
    for dtype in (np.float32, np.float64):
        got = uint8_pixels(pixels.astype(dtype))
        assert got.dtype == np.uint8 and got.shape == pixels.shape
        assert np.abs(got.astype(int) - expected).max() <= 1  # halves may round either way
    decoded = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    assert np.array_equal(uint8_pixels(decoded.astype(np.float32) / 255), decoded)
    # as numpy rounds float32 (halves to even), on every channel count a photo is saved in
    for channels in ((), (2,), (3,), (4,)):
        floats = rng.uniform(-0.1, 1.1, (30, 20, *channels)).astype(np.float32)
        floats.flat[:512] = ((np.arange(512) // 2 + 0.5) / 255).astype(np.float32)  # halves
        numpy = np.rint(np.clip(floats * np.float32(255), 0, 255)).astype(np.uint8)
        assert np.array_equal(uint8_pixels(floats), numpy)


def test_grey_photo_is_saved_from_luma(tmp_path):
    pixels = np.zeros((16, 16, 3), np.float32)
    pixels[..., 0] = 1.0  # pure red
    photo = Photo(pixels=pixels, mode="L")
    with Image.open(save_photo(photo, tmp_path / "red.png")) as back:
        assert back.mode == "L"
        assert np.asarray(back)[0, 0] == round(0.299 * 255)


def test_with_pixels_keeps_metadata_and_shape(album_dir):
    photo = load_photo(gps_photos(album_dir)[0])
    cloaked = photo.with_pixels(photo.pixels * 0.5)
    assert cloaked.exif is photo.exif and cloaked.icc_profile == photo.icc_profile
    assert cloaked.path == photo.path and cloaked.format == photo.format
    assert float(cloaked.pixels.max()) <= 0.5
    with pytest.raises(ValueError, match="shape"):
        photo.with_pixels(photo.pixels[1:])


def test_tensor_round_trip(astronaut):
    pixels = Photo.from_array(astronaut).pixels
    tensor = to_tensor(pixels)
    assert tuple(tensor.shape) == (1, 3, 512, 512)
    assert float(tensor[0, 0, 10, 20]) == pytest.approx(astronaut[10, 20, 0] / 255)
    np.testing.assert_array_equal(from_tensor(tensor), pixels)
    np.testing.assert_array_equal(from_tensor(tensor[0]), pixels)
    with pytest.raises(ValueError):
        from_tensor(tensor.repeat(2, 1, 1, 1))


# --------------------------------------------------------------------------------------
# EXIF orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path, astronaut, orientation):
    stored = Image.fromarray(astronaut[:300, :200])  # not square: rotations change the size
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    path = tmp_path / f"o{orientation}.png"
    stored.save(path, exif=exif.tobytes())
    photo = load_photo(path)
    upright = ImageOps.exif_transpose(Image.open(path))
    assert photo.size == upright.size
    np.testing.assert_array_equal(as_uint8(photo.pixels), np.asarray(upright))


@pytest.mark.parametrize(("orientation", "stored_as"), [
    (6, Image.Transpose.ROTATE_90),   # camera held upright: stored turned left
    (8, Image.Transpose.ROTATE_270),
    (3, Image.Transpose.ROTATE_180),
])
def test_rotated_album_photo_loads_upright(album_dir, tmp_path, orientation, stored_as):
    original = album_photos(album_dir)[1]
    upright = load_photo(original)
    sideways = Image.fromarray(as_uint8(upright.pixels)).transpose(stored_as)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestCam"
    rotated = tmp_path / "rotated.jpg"
    sideways.save(rotated, quality=95, exif=exif.tobytes())

    photo = load_photo(rotated)
    assert photo.size == upright.size
    assert np.abs(photo.pixels - upright.pixels).mean() < 2 / 255

    # Orientation is in the pixels now: any kept EXIF says 1, or viewers rotate twice.
    out = save_photo(photo, tmp_path / "kept.jpg", metadata="keep")
    with Image.open(out) as back:
        assert back.size == upright.size
        assert back.getexif()[ExifTags.Base.Orientation] == 1
        assert back.getexif()[ExifTags.Base.Make] == "TestCam"


# --------------------------------------------------------------------------------------
# Metadata policy


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_strip_removes_all_identifying_metadata(album_dir, tmp_path, suffix):
    for path in privacy_cases(album_dir, suffix):
        with Image.open(path) as im:
            exif = im.getexif()
            secrets = [str(exif.get(t)) for t in (ExifTags.Base.Artist,
                                                  ExifTags.Base.ImageDescription)
                       if exif.get(t)]
            serial = exif.get_ifd(EXIF_IFD).get(ExifTags.Base.BodySerialNumber)
            if serial:
                secrets.append(serial)
            icc = im.info.get("icc_profile")
        photo = load_photo(path)
        out = save_photo(photo, tmp_path / (path.stem + suffix))
        with Image.open(out) as back:
            assert len(back.getexif()) == 0 or suffix == ".tif"  # TIFF: structure tags only
            assert not back.getexif().get_ifd(GPS_IFD)
            assert not set(back.getexif()) & IDENTIFYING_IFD0
            for key in ("exif", "xmp", "photoshop", "comment", "iptc"):
                assert key not in back.info, key
            if icc and suffix != ".tif":
                assert back.info.get("icc_profile") == icc  # the colour profile is kept
        data = out.read_bytes()
        for secret in secrets:  # not hidden anywhere in the file (XMP, IPTC, thumbnails)
            assert secret.encode("utf-8", "ignore")[:40] not in data, (path.name, secret)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_keep_keeps_camera_settings_but_nothing_identifying(album_dir, tmp_path, suffix):
    for path in privacy_cases(album_dir, suffix):
        with Image.open(path) as im:
            exif = im.getexif()
            sub = exif.get_ifd(EXIF_IFD)
        out = save_photo(load_photo(path), tmp_path / (path.stem + suffix), metadata="keep")
        with Image.open(out) as back:
            kept = back.getexif()
            kept_sub = kept.get_ifd(EXIF_IFD)
            assert kept[ExifTags.Base.Make] == exif[ExifTags.Base.Make]
            assert kept[ExifTags.Base.Model] == exif[ExifTags.Base.Model]
            if ExifTags.Base.FNumber in sub:
                assert kept_sub[ExifTags.Base.FNumber] == sub[ExifTags.Base.FNumber]
            assert kept.get(ExifTags.Base.Orientation) == 1
            assert not kept.get_ifd(GPS_IFD)
            assert not kept.get_ifd(ExifTags.IFD.IFD1)  # no thumbnail of the bare face
            assert not set(kept) & IDENTIFYING_IFD0
            assert not set(kept_sub) & IDENTIFYING_EXIF
            for key in ("xmp", "photoshop", "comment"):
                assert key not in back.info, key
            allowed = (fio.KEPT_EXIF_TAGS["IFD0"] | {ExifTags.Base.Orientation, EXIF_IFD})
            if suffix != ".tif":  # a TIFF's own structure tags live in the same IFD
                assert set(kept) <= allowed
            assert set(kept_sub) <= fio.KEPT_EXIF_TAGS["Exif"]


@pytest.mark.parametrize("metadata", ["strip", "keep"])
def test_copy_keeps_the_picture_and_only_the_metadata_save_would_write(album_dir, tmp_path,
                                                                      metadata):
    """A photo FaceGuard does not change is copied without re-encoding: the same picture,
    to the pixel, and no more metadata than save_photo writes."""
    for path in gps_photos(album_dir):
        photo = load_photo(path)
        out = copy_photo(photo, tmp_path / f"{path.stem}-{metadata}.jpg", metadata=metadata)
        np.testing.assert_array_equal(load_photo(out).pixels, photo.pixels)
        assert out.stat().st_size <= path.stat().st_size
        saved = save_photo(photo, tmp_path / f"{path.stem}-{metadata}-saved.jpg",
                           metadata=metadata)
        with Image.open(out) as copied, Image.open(saved) as written:
            assert dict(copied.getexif()) == dict(written.getexif())  # Orientation 1 both
            assert (copied.getexif().get_ifd(EXIF_IFD)
                    == written.getexif().get_ifd(EXIF_IFD))
            assert copied.info.get("icc_profile") == written.info.get("icc_profile")
            for key in ("xmp", "photoshop", "comment", "iptc"):
                assert key not in copied.info, key
        with Image.open(path) as im:
            secrets = [str(im.getexif().get(t)) for t in (ExifTags.Base.Artist,
                                                          ExifTags.Base.ImageDescription)]
        data = out.read_bytes()
        for secret in secrets:
            if secret != "None":
                assert secret.encode("utf-8", "ignore")[:40] not in data, (path.name, secret)


def _segments(data: bytes) -> list[int]:
    """The markers of a JPEG's segments up to its first scan."""
    markers, pos = [], 2
    while data[pos + 1] != 0xDA:
        markers.append(data[pos + 1])
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return markers


@pytest.mark.parametrize("metadata", ["strip", "keep"])
def test_copy_keeps_the_orientation_and_leaves_the_picture_as_stored(album_dir, tmp_path,
                                                                     metadata):
    upright = load_photo(album_photos(album_dir)[1])
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Artist] = "Jane Roe"
    sideways = tmp_path / "sideways.jpg"
    Image.fromarray(as_uint8(upright.pixels)).transpose(Image.Transpose.ROTATE_90).save(
        sideways, quality=90, exif=exif.tobytes(), comment=b"at home")
    photo = load_photo(sideways)
    out = copy_photo(photo, tmp_path / "copy.jpg", metadata=metadata)
    np.testing.assert_array_equal(load_photo(out).pixels, photo.pixels)
    data = out.read_bytes()
    assert b"Jane Roe" not in data and b"at home" not in data
    with Image.open(out) as back:
        assert back.size == (photo.size[1], photo.size[0])  # stored sideways, as it was
        kept = back.getexif()
        assert kept[ExifTags.Base.Orientation] == 6  # so viewers turn it upright
        assert set(kept) == ({ExifTags.Base.Orientation} if metadata == "strip"
                             else {ExifTags.Base.Orientation, ExifTags.Base.Make})


def test_copy_reads_progressive_jpegs_and_drops_segments_between_scans(astronaut, tmp_path):
    """Comments and a JFIF thumbnail anywhere in the file are left out; the scans and the
    tables between them are kept."""
    source = tmp_path / "progressive.jpg"
    Image.fromarray(astronaut).save(source, quality=85, progressive=True)
    data = source.read_bytes()
    first_scan = data.index(b"\xff\xda")
    second_table = data.index(b"\xff\xc4", first_scan)  # a Huffman table between scans
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 11) + b"Hidden note"
    thumbnail = b"JFIF\0\x01\x01\0\0\x01\0\x01\x02\x01" + b"SECRET"  # 2x1 RGB
    app0 = b"\xff\xe0" + struct.pack(">H", 2 + len(thumbnail)) + thumbnail
    assert data[2:4] == b"\xff\xe0"  # Pillow's own JFIF header: replaced by one with a thumbnail
    jfif_end = 4 + struct.unpack(">H", data[4:6])[0]
    crafted = (b"\xff\xd8" + app0 + data[jfif_end:second_table] + comment
               + data[second_table:])
    path = tmp_path / "crafted.jpg"
    path.write_bytes(crafted)
    photo = load_photo(path)
    out = copy_photo(photo, tmp_path / "copy.jpg")
    np.testing.assert_array_equal(load_photo(out).pixels, photo.pixels)
    copied = out.read_bytes()
    assert b"Hidden note" not in copied and b"SECRET" not in copied
    assert len(copied) < len(crafted) and _segments(copied)[0] == 0xE0


def test_copy_of_a_camera_mpo_is_its_main_picture(astronaut, tmp_path):
    path = tmp_path / "IMG_0002.JPG"
    Image.fromarray(astronaut).save(path, "MPO", save_all=True,
                                    append_images=[Image.fromarray(astronaut[::2, ::2])])
    photo = load_photo(path)
    out = copy_photo(photo, tmp_path / "out.JPG", format="keep")
    with Image.open(out) as back:
        assert back.format == "JPEG" and getattr(back, "n_frames", 1) == 1
    assert 0xE2 not in _segments(out.read_bytes())  # no MPO index of the other pictures
    np.testing.assert_array_equal(load_photo(out).pixels, photo.pixels)


def test_copy_encodes_anew_what_it_cannot_copy(astro_png, tmp_path):
    png = load_photo(astro_png)
    assert png.jpeg_data is None
    out = copy_photo(png, tmp_path / "from-png.jpg", quality=60)  # another format: encoded
    assert np.abs(load_photo(out).pixels - png.pixels).mean() < 4 / 255
    jpeg = load_photo(out)
    assert jpeg.jpeg_data is not None
    assert jpeg.with_pixels(jpeg.pixels * 0.5).jpeg_data is None  # changed: never copied
    broken = dataclasses.replace(jpeg, jpeg_data=b"\xff\xd8\xff\xfe\x00")  # cut short
    again = copy_photo(broken, tmp_path / "again.jpg")
    assert np.abs(load_photo(again).pixels - jpeg.pixels).mean() < 2 / 255
    with pytest.raises(PhotoError, match="already exists"):
        copy_photo(jpeg, again)  # the same checks as save_photo


def test_what_a_save_would_refuse_is_told_without_writing(astro_png, tmp_path):
    photo = load_photo(astro_png)
    free = tmp_path / "free.png"
    assert check_writable(photo, free) == free and not free.exists()
    (tmp_path / "taken.png").write_bytes(b"mine")
    with pytest.raises(PhotoError, match="already exists"):
        check_writable(photo, tmp_path / "taken.png")
    assert check_writable(photo, tmp_path / "taken.png", overwrite=True)
    with pytest.raises(PhotoError, match="input photo"):
        check_writable(photo, astro_png, overwrite=True)
    with pytest.raises(PhotoError, match="does not exist"):
        check_writable(photo, tmp_path / "no-folder" / "a.png")
    assert (tmp_path / "taken.png").read_bytes() == b"mine"


def test_a_jpeg_read_only_to_be_copied_is_decoded_only_when_it_must_be(album_dir, tmp_path):
    path = gps_photos(album_dir)[0]
    photo, undecoded = load_photo(path), load_photo(path, decode=False)
    assert photo.has_pixels and not undecoded.has_pixels
    assert (undecoded.format, undecoded.mode, undecoded.jpeg_data) == (
        photo.format, photo.mode, photo.jpeg_data)
    copied = copy_photo(undecoded, tmp_path / "copied.jpg", metadata="keep")
    assert copied.read_bytes() == copy_photo(photo, tmp_path / "from-pixels.jpg",
                                             metadata="keep").read_bytes()
    png = copy_photo(undecoded, tmp_path / "as.png", format="png")  # encoded: decoded first
    np.testing.assert_array_equal(load_photo(png).pixels, photo.pixels)
    assert load_photo(tmp_path / "as.png", decode=False).has_pixels  # only a JPEG skips it


def test_icc_profile_kept_only_where_it_fits(album_dir, tmp_path):
    with_icc = [p for p in album_photos(album_dir) if Image.open(p).info.get("icc_profile")]
    path = min(with_icc, key=lambda p: np.prod(Image.open(p).size))
    photo = load_photo(path)
    assert photo.icc_profile and photo.icc_profile[16:20] == b"RGB "
    for suffix in (".jpg", ".png", ".webp", ".tif"):
        with Image.open(save_photo(photo, tmp_path / f"c{suffix}")) as back:
            assert back.info.get("icc_profile") == photo.icc_profile, suffix
    # An RGB profile would misdescribe a grey file: dropped when the photo is written grey.
    grey = dataclasses.replace(photo, mode="L")
    with Image.open(save_photo(grey, tmp_path / "grey.png")) as back:
        assert back.mode == "L" and not back.info.get("icc_profile")


# --------------------------------------------------------------------------------------
# Safe writing


def test_save_leaves_no_temporary_files(astro_png, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    save_photo(load_photo(astro_png), out_dir / "a.jpg")
    save_photo(load_photo(astro_png), out_dir / "a.jpg", overwrite=True)
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.jpg"]


def test_save_renames_a_temporary_file_from_the_same_folder(astro_png, tmp_path, monkeypatch):
    moves = []
    real_link, real_replace = os.link, os.replace
    monkeypatch.setattr(os, "link", lambda a, b: (moves.append((a, b)), real_link(a, b)))
    monkeypatch.setattr(os, "replace", lambda a, b: (moves.append((a, b)), real_replace(a, b)))
    photo = load_photo(astro_png)
    dest = tmp_path / "out.png"
    save_photo(photo, dest)
    save_photo(photo, dest, overwrite=True)
    assert len(moves) == 2
    for src, dst in moves:
        assert Path(src).parent == dest.parent and Path(dst) == dest
        assert Path(src).name.startswith(".faceguard-")
        assert not Path(src).exists()


def test_failed_save_leaves_the_old_file_untouched(astro_png, tmp_path, monkeypatch):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"previous version")
    photo = load_photo(astro_png)

    def broken_save(self, fp, format=None, **params):
        fp.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(PhotoError, match="No space left") as err:
        save_photo(photo, dest, overwrite=True)
    assert_one_line_error(err, dest, "cannot write")
    assert dest.read_bytes() == b"previous version"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_no_silent_overwrite(astro_png, tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"keep me")
    photo = load_photo(astro_png)
    with pytest.raises(PhotoError) as err:
        save_photo(photo, dest)
    assert_one_line_error(err, dest, "already exists")
    assert "--overwrite" in str(err.value) and "=True" not in str(err.value)  # user's words
    assert dest.read_bytes() == b"keep me"
    save_photo(photo, dest, overwrite=True)
    np.testing.assert_array_equal(load_photo(dest).pixels, photo.pixels)


def test_never_writes_onto_the_input(astro_png, tmp_path):
    before = sha256(astro_png)
    photo = load_photo(astro_png)
    hard = tmp_path / "hard.png"
    os.link(astro_png, hard)
    soft = tmp_path / "soft.png"
    soft.symlink_to(astro_png)
    for target in (astro_png, hard, soft):
        with pytest.raises(PhotoError) as err:
            save_photo(photo, target, overwrite=True)
        assert_one_line_error(err, target, "input photo")
    assert sha256(astro_png) == before


def test_format_is_taken_from_the_name_and_checked(astro_png, tmp_path):
    photo = load_photo(astro_png)
    assert Image.open(save_photo(photo, tmp_path / "x.JPG")).format == "JPEG"
    assert Image.open(save_photo(photo, tmp_path / "y.jpeg", format="jpg")).format == "JPEG"
    assert Image.open(save_photo(photo, tmp_path / "z.png", format="keep")).format == "PNG"
    with pytest.raises(PhotoError) as err:
        save_photo(photo, tmp_path / "w.png", format="jpeg")
    assert_one_line_error(err, tmp_path / "w.png", "JPEG")
    with pytest.raises(PhotoError) as err:
        save_photo(photo, tmp_path / "w.xyz")
    assert_one_line_error(err, tmp_path / "w.xyz", "suffix")
    with pytest.raises(PhotoError) as err:
        save_photo(photo, tmp_path / "missing" / "w.png")
    assert_one_line_error(err, tmp_path / "missing" / "w.png", "does not exist")
    with pytest.raises(ValueError, match="quality"):
        save_photo(photo, tmp_path / "q.jpg", quality=0)
    with pytest.raises(ValueError, match="format"):
        save_photo(photo, tmp_path / "q.gif", format="gif")


def test_jpeg_quality_is_used(astro_png, tmp_path):
    photo = load_photo(astro_png)
    high = save_photo(photo, tmp_path / "high.jpg")
    low = save_photo(photo, tmp_path / "low.jpg", quality=40)
    assert low.stat().st_size < high.stat().st_size
    err_high = np.abs(load_photo(high).pixels - photo.pixels).mean()
    err_low = np.abs(load_photo(low).pixels - photo.pixels).mean()
    assert err_high < err_low and err_high < 2 / 255


def test_a_jpeg_saved_finer_than_the_quality_keeps_its_own_tables(astronaut, tmp_path):
    """A camera's quality-99 JPEG written again at 95 got a visible loss of its own, larger
    than the cloak's: it is written with its own tables, and the lossy guard scores the
    face with them; a coarser original (quality 80) is written at 95 as before."""
    from faceguard.io.lossy import lossy_saving

    def tables(path: Path) -> dict:
        with Image.open(path) as image:
            return image.quantization

    for made_at, kept in ((99, True), (80, False)):
        Image.fromarray(astronaut).save(tmp_path / "in.jpg", quality=made_at, subsampling=0)
        photo = load_photo(tmp_path / "in.jpg")
        cloaked = photo.with_pixels(np.clip(photo.pixels + 2 / 255, 0, 1))
        out = save_photo(cloaked, tmp_path / f"out{made_at}.jpg")
        at95 = save_photo(dataclasses.replace(cloaked, jpeg_tables=None),
                          tmp_path / f"at95-{made_at}.jpg")
        assert (tables(out) == tables(tmp_path / "in.jpg")) is kept
        assert (tables(out) == tables(at95)) is not kept
        # the guard sees what the file shows
        part = lossy_saving(cloaked, "keep", 95)(
            np.round(cloaked.pixels[:64, :64] * 255).astype(np.uint8))
        assert np.array_equal(part, load_photo(out).pixels[:64, :64])


def test_originals_are_byte_identical_afterwards(album_dir, tmp_path):
    paths = gps_photos(album_dir)[:3]
    before = {p: sha256(p) for p in paths}
    for i, path in enumerate(paths):
        photo = load_photo(path)
        for metadata in ("strip", "keep"):
            save_photo(photo, tmp_path / f"{i}_{metadata}.jpg", metadata=metadata)
            save_photo(photo, tmp_path / f"{i}_{metadata}.jpg", metadata=metadata,
                       overwrite=True)
    assert {p: sha256(p) for p in paths} == before


# --------------------------------------------------------------------------------------
# Bad inputs: one clear line naming the file


def test_empty_file(tmp_path):
    path = tmp_path / "x.jpg"
    path.touch()
    with pytest.raises(PhotoError) as err:
        load_photo(path)
    assert_one_line_error(err, path, "file is empty")


def test_truncated_jpeg(album_dir, tmp_path):
    data = album_photos(album_dir)[0].read_bytes()
    for cut in (len(data) // 2, 400, 20):
        path = tmp_path / f"cut{cut}.jpg"
        path.write_bytes(data[:cut])
        with pytest.raises(PhotoError) as err:
            load_photo(path)
        assert_one_line_error(err, path, "truncated or corrupt JPEG")


def test_truncated_png(astro_png, tmp_path):
    data = astro_png.read_bytes()
    path = tmp_path / "bad.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError) as err:
        load_photo(path)
    assert_one_line_error(err, path, "truncated or corrupt PNG")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_text("Dear diary, today I took a photo. Été, naïve café.\n" * 20)
    with pytest.raises(PhotoError) as err:
        load_photo(path)
    assert str(err.value) == f"{path}: not an image (it is a text file)"


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(PhotoError) as err:
        load_photo(path)
    assert_one_line_error(err, path, "not an image")


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "x.gif"), ("ICO", "x.ico"), ("TGA", "x.tga")])
def test_unsupported_format(tmp_path, astronaut, fmt, name):
    path = tmp_path / name
    Image.fromarray(astronaut[:64, :64]).save(path, format=fmt)
    with pytest.raises(PhotoError) as err:
        load_photo(path)
    assert_one_line_error(err, path, f"unsupported format {fmt}",
                          "FaceGuard reads JPEG, PNG, WebP, BMP, TIFF, PGM")


def test_heic_is_named(tmp_path):
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    with pytest.raises(PhotoError) as err:
        load_photo(path)
    assert_one_line_error(err, path, "unsupported format HEIC")


def test_animated_and_multipage_are_refused(tmp_path, astronaut):
    frames = [Image.fromarray(np.roll(astronaut[:64, :64], i, axis=1)) for i in range(3)]
    for name, params in (("anim.webp", {}), ("anim.png", {}), ("pages.tif", {})):
        path = tmp_path / name
        frames[0].save(path, save_all=True, append_images=frames[1:], **params)
        with pytest.raises(PhotoError) as err:
            load_photo(path)
        assert_one_line_error(err, path, "(3 ", "not supported")


def test_an_image_too_small_to_hold_a_face_is_a_photo_without_one(tmp_path, detector):
    """A 1x1 spacer or a 12x12 icon in an album failed the run (exit 1) and was missing
    from the output album, where a 16x16 one was copied: it has no face to protect."""
    for size in ((1, 1), (500, 1), (12, 12)):
        path = tmp_path / f"{size[0]}x{size[1]}.png"
        Image.new("RGB", size, "red").save(path)
        photo = load_photo(path)
        assert photo.size == size and detector(photo.pixels) == []


def test_huge_declared_size_is_refused_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(PhotoError) as err:
        load_photo(path)
    assert str(err.value) == (
        f"{path}: 100000x100000 is 10000 megapixels, above the 120-megapixel limit "
        "(raise it with --max-megapixels)")


def test_pixel_limit_is_ours_not_pillows(tmp_path, astro_png):
    with pytest.raises(PhotoError) as err:
        load_photo(astro_png, limit=PixelLimit(200_000))
    assert_one_line_error(err, astro_png, "512x512 is 0.3 megapixels", "0.2-megapixel limit")
    # 200 MP is above Pillow's own hard limit (179 MP); with our limit lifted the size
    # check passes and the (fake) data is what fails, not a DecompressionBombError.
    path = tmp_path / "wide.png"
    path.write_bytes(png_header_only(20_000, 10_000))
    with pytest.raises(PhotoError) as err:
        load_photo(path, limit=NO_LIMIT)
    assert_one_line_error(err, path, "truncated or corrupt PNG")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(PhotoError) as err:
        load_photo(tmp_path / "nope.jpg")
    assert_one_line_error(err, tmp_path / "nope.jpg", "no such file")
    with pytest.raises(PhotoError) as err:
        load_photo(tmp_path)
    assert_one_line_error(err, tmp_path, "folder")


def test_float_images_are_refused(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.ones((32, 32), np.float32)).save(path)
    with pytest.raises(PhotoError) as err:
        load_photo(path)
    assert_one_line_error(err, path, "floating-point")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory from Linux /proc")
def test_fifty_megapixel_photo_loads_with_reasonable_memory(tmp_path):
    path = tmp_path / "big50.jpg"
    width, height = 8660, 5774  # 50.0 megapixels
    Image.new("RGB", (width, height), (200, 120, 90)).save(path, quality=90)
    # VmHWM, not ru_maxrss: Linux carries the parent's (the test run's) peak across exec
    code = (
        "import sys\n"
        "from faceguard.io import load_photo\n"
        "p = load_photo(sys.argv[1])\n"
        "print(p.size[0], p.size[1], *(p.pixels[123, 4567] * 255).round())\n"
        "status = open('/proc/self/status').read()\n"
        "print(status.split('VmHWM:')[1].split()[0])\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    first, peak = run.stdout.split("\n")[:2]
    assert first.split() == [str(width), str(height), "199.0", "120.0", "90.0"]
    peak_mb = int(peak) / 1024
    # The float32 pixels alone are 600 MB; a float64 detour would pass 1.8 GB.
    assert peak_mb < 1400, f"peak memory {peak_mb:.0f} MB"


# --------------------------------------------------------------------------------------
# Finding photos


def test_find_photos_on_a_mixed_folder(tmp_path):
    root = tmp_path / "album"
    for rel in ("b.JPG", "a.png", "notes.txt", ".hidden.jpg", "c.WebP", "sub/d.tiff",
                "sub/deeper/e.pgm", ".git/f.jpg", "sub/.cache/g.png", "h.gif", "i.jpeg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    odd = tmp_path / "odd.xyz"
    odd.write_bytes(b"x")
    missing = tmp_path / "missing.jpg"

    found = find_photos([root, odd, missing, root / "a.png"])
    names = [p.relative_to(tmp_path).as_posix() for p in found]
    assert names == ["album/a.png", "album/b.JPG", "album/c.WebP", "album/i.jpeg",
                     "album/sub/d.tiff", "album/sub/deeper/e.pgm", "odd.xyz", "missing.jpg"]
    flat = find_photos([root], recursive=False)
    assert [p.name for p in flat] == ["a.png", "b.JPG", "c.WebP", "i.jpeg"]
    assert find_photos([]) == []


def test_search_names_every_skipped_file_with_one_line_per_reason(tmp_path):
    root = tmp_path / "album"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(root / "a.png")
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    for name in ("b.gif", "sub/c.gif"):
        frames[0].save(root / name, save_all=True, append_images=frames[1:])
    frames[0].save(root / "still.gif")
    (root / "notes.txt").write_text("x")
    (root / ".DS_Store").write_bytes(b"x")

    found = search([root])
    assert [p.name for p in found.photos] == ["a.png"]
    assert sorted((s.path.name, s.reason) for s in found.skipped) == [
        (".DS_Store", "hidden"), ("b.gif", "animated GIF"), ("c.gif", "animated GIF"),
        ("notes.txt", "not a photo FaceGuard reads"),
        ("still.gif", "GIF (256 colours cannot hold a cloak)")]
    lines = skipped_lines(found.skipped)
    assert "skipped 2 files: animated GIF (b.gif, c.gif)" in lines
    assert "skipped 1 file: not a photo FaceGuard reads (notes.txt)" in lines
    assert len(lines) == 4
    flat = search([root], recursive=False)
    assert ("sub", "not searched") in [(s.path.name, s.reason) for s in flat.skipped]
    assert "skipped 1 folder: not searched (sub/)" in skipped_lines(flat.skipped)


def test_search_names_links_to_folders_and_goes_past_link_loops(tmp_path):
    """A linked folder's photos were left out without a word, and a link loop stopped
    the whole run."""
    root, elsewhere = tmp_path / "album", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    Image.new("RGB", (32, 32)).save(elsewhere / "a.png")
    (root / "linked").symlink_to(elsewhere)
    (root / "x.jpg").symlink_to(root / "y.jpg")
    (root / "y.jpg").symlink_to(root / "x.jpg")
    found = search([root])
    assert [p.name for p in found.photos] == ["x.jpg", "y.jpg"]  # each fails when read
    assert [(s.path.name, s.reason) for s in found.skipped] == [
        ("linked", "a link to a folder, not followed (give the folder itself)")]
    with pytest.raises(PhotoError, match="cannot read the file"):
        load_photo(found.photos[0])


def test_find_photos_then_load_reports_each_bad_file(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "good.jpg")
    (tmp_path / "empty.png").touch()
    (tmp_path / "readme.jpg").write_text("not a photo\n")
    results = {}
    for path in find_photos([tmp_path]):
        try:
            results[path.name] = load_photo(path).size
        except PhotoError as e:
            results[path.name] = str(e)
    assert results["good.jpg"] == (512, 512)
    assert results["empty.png"].endswith("file is empty")
    assert results["readme.jpg"].endswith("not an image (it is a text file)")


def test_supported_suffixes_match_what_loads():
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".pgm"} <= (
        fio.SUPPORTED_SUFFIXES)
    assert ".gif" not in fio.SUPPORTED_SUFFIXES
    assert all(s == s.lower() and s.startswith(".") for s in fio.SUPPORTED_SUFFIXES)


def test_in_memory_photo_defaults(astronaut, tmp_path):
    photo = Photo.from_array(astronaut)
    assert photo.size == (512, 512) and not photo.is_grey
    assert output_suffix(photo) == ".png"
    out = save_photo(photo, tmp_path / "mem.png", format="keep")
    np.testing.assert_array_equal(np.asarray(Image.open(out)), astronaut)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        Photo(pixels=np.zeros((4, 4), np.float32))


def test_io_module_does_not_import_torch_or_qt():
    code = ("import sys, faceguard.io\n"
            "print(any(m.split('.')[0] in ('torch', 'PySide6') for m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert run.stdout.strip() == "False"



def test_a_lossless_webp_stays_lossless(tmp_path, astronaut):
    """Written lossy (quality 95), every pixel outside the faces changed, by up to 8-9
    levels."""
    exif = Image.Exif()
    exif[0x0110] = "camera"  # an extended WebP: its picture chunk after a header chunk
    Image.fromarray(astronaut).save(tmp_path / "a.webp", lossless=True, exif=exif.tobytes())
    photo = load_photo(tmp_path / "a.webp")
    assert photo.lossless
    out = save_photo(photo, tmp_path / "out.webp")
    with Image.open(out) as back:
        np.testing.assert_array_equal(np.asarray(back.convert("RGB")), astronaut)
    Image.fromarray(astronaut).save(tmp_path / "lossy.webp", quality=90)
    assert not load_photo(tmp_path / "lossy.webp").lossless


def _grey_profile(gamma: float) -> bytes:
    """A minimal ICC v2 grey display profile: white point and one tone curve."""
    import struct

    def s15(x: float) -> bytes:
        return struct.pack(">i", round(x * 65536))

    white = b"XYZ " + bytes(4) + s15(0.9642) + s15(1.0) + s15(0.8249)
    tags = [(b"desc", b"desc" + bytes(4) + struct.pack(">I", 5) + b"grey\0" + bytes(79)),
            (b"wtpt", white),
            (b"kTRC", b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)),
            (b"cprt", b"text" + bytes(4) + b"none\0\0\0\0")]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for name, data in tags:
        table += name + struct.pack(">II", offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    size = 128 + 4 + len(table) + len(body)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrGRAYXYZ "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249)
              + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + body


def test_a_grey_profile_that_cannot_go_with_the_photo_is_applied_to_it(tmp_path):
    """WebP has no grey: the grey profile was dropped alone, and a mid grey shown as 188
    through a linear profile was written as 128."""
    Image.new("L", (64, 64), 128).save(tmp_path / "g.png", icc_profile=_grey_profile(1.0))
    photo = load_photo(tmp_path / "g.png")
    with Image.open(save_photo(photo, tmp_path / "g.webp", quality=100)) as webp:
        assert abs(int(np.asarray(webp.convert("RGB"))[32, 32, 0]) - 188) <= 3
    with Image.open(save_photo(photo, tmp_path / "g2.png")) as png:  # it fits: kept
        assert png.info.get("icc_profile") and np.asarray(png)[32, 32] == 128


def test_as_shown_is_what_a_file_without_the_alpha_or_the_grey_profile_shows(tmp_path):
    """How visible a cloak is compares the photo as read with its file as written: a
    grey profile or an alpha the file cannot keep is no part of the cloak."""
    Image.new("L", (64, 64), 128).save(tmp_path / "g.png", icc_profile=_grey_profile(1.0))
    grey = load_photo(tmp_path / "g.png")
    webp = load_photo(save_photo(grey, tmp_path / "g.webp", quality=100))
    assert abs(as_shown(grey)[32, 32, 0] * 255 - 188) <= 1  # the profile's tone, in sRGB
    assert np.abs(as_shown(grey) - as_shown(webp)).max() <= 3 / 255
    see_through = Photo.from_array(np.full((64, 64, 3), 0.2, np.float32))
    see_through.alpha = np.full((64, 64), 0.5, np.float32)
    jpeg = load_photo(save_photo(see_through, tmp_path / "s.jpg"))
    assert np.abs(as_shown(see_through) - 0.6).max() < 1e-6  # half over white
    assert np.abs(as_shown(see_through) - as_shown(jpeg)).max() <= 2 / 255
    plain = load_photo(tmp_path / "s.jpg")
    assert as_shown(plain) is plain.pixels  # nothing to show otherwise: not a copy
    # both: the profile's tones first, then over white, as the file written shows them
    Image.fromarray(np.dstack([np.full((64, 64), 60, np.uint8), np.full((64, 64), 128, np.uint8)]),
                    "LA").save(tmp_path / "ga.png", icc_profile=_grey_profile(1.0))
    both = load_photo(tmp_path / "ga.png")
    written = load_photo(save_photo(both, tmp_path / "ga.webp", quality=100))
    assert np.abs(as_shown(both) - as_shown(written)).max() <= 3 / 255


def test_a_copied_jpeg_keeps_only_the_adobe_segments_own_twelve_bytes(tmp_path, astronaut):
    """Text a writer put after the Adobe segment's 12 bytes went along with the copy."""
    import struct

    Image.fromarray(astronaut).convert("CMYK").save(tmp_path / "a.jpg")  # with APP14 Adobe
    data = (tmp_path / "a.jpg").read_bytes()
    at = data.index(b"\xff\xee\x00\x0eAdobe")  # APP14, 12 bytes and the length
    secret = b"owner: Alice Example"
    data = (data[:at + 2] + struct.pack(">H", 14 + len(secret)) + data[at + 4:at + 16]
            + secret + data[at + 16:])
    (tmp_path / "b.jpg").write_bytes(data)
    photo = load_photo(tmp_path / "b.jpg")
    copied = copy_photo(photo, tmp_path / "out.jpg")
    assert secret not in copied.read_bytes() and b"Adobe" in copied.read_bytes()
    np.testing.assert_array_equal(load_photo(copied).pixels, photo.pixels)


def test_a_file_of_a_few_bytes_is_not_a_photo(tmp_path):
    """Pillow's BMP test reads 4 bytes: a 1-byte file stopped the whole batch."""
    (tmp_path / "a.jpg").write_bytes(b"B")
    with pytest.raises(PhotoError, match="a.jpg"):
        load_photo(tmp_path / "a.jpg")


def test_a_short_write_leaves_no_half_photo(tmp_path, astronaut):
    """Pillow's JPEG encoder took a short write (a full disk, a file-size limit) for done:
    half a photo was left under the output's name."""
    resource = pytest.importorskip("resource")
    photo = Photo.from_array(astronaut)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    for name in ("out.jpg", "out.bmp", "out.ppm", "out.png"):
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, hard))
        try:
            with pytest.raises(PhotoError, match="cannot write"):
                save_photo(photo, tmp_path / name)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert list(tmp_path.iterdir()) == [], name


def test_lossy_saving_says_how_a_file_changes_a_part_of_the_photo(tmp_path, astronaut):
    """JPEG: a part cut on the 8-pixel grid decodes to the file's own pixels there; WebP
    (16-pixel macroblocks, predicted from their neighbours) close to them; lossless files
    have no such loss. A photo with transparency (put on white in a JPEG, its alpha
    beside the picture in a WebP) is coded so in its part too, the part's place in the
    photo placing its alpha: where the part is opaque (here, the photo around it is
    not), as the file shows it."""
    from faceguard.io.lossy import lossy_saving

    photo = fio.Photo(pixels=astronaut.astype(np.float32) / 255)
    assert lossy_saving(photo, "png", 95) is None
    for fmt, grid, close in (("jpeg", 8, 0.0), ("webp", 16, 0.06)):
        x0, y0, x1, y1 = lossy_saving(photo, fmt, 90).grid_box((37, 45, 301, 290), (5, 3),
                                                               (500, 480))
        assert (x0 + 5) % grid == (y0 + 3) % grid == (x1 + 5) % grid == (y1 + 3) % grid == 0
        where = np.s_[y0 + 3:y1 + 3, x0 + 5:x1 + 5]  # the part, in the photo
        alpha = np.full(astronaut.shape[:2], 0.3, np.float32)
        alpha[where] = 1.0
        for kept in (photo, dataclasses.replace(photo, alpha=alpha)):
            lossy = lossy_saving(kept, fmt, 90)
            assert lossy is not None and lossy.grid == grid
            path = fio.save_photo(kept, tmp_path / f"a.{fmt}", quality=90, overwrite=True)
            file = fio.load_photo(path)
            assert (file.alpha is not None) == (kept.alpha is not None and fmt == "webp")
            part = lossy.part_at(x0 + 5, y0 + 3)(astronaut[where])
            inner = np.s_[grid:-grid, grid:-grid]  # away from the part's edges
            error = np.abs(part - file.pixels[where])[inner]
            assert error.max() <= close + 1e-6, (fmt, error.max())
            if fmt == "jpeg":
                assert np.array_equal(part, file.pixels[where])


def test_a_photo_shrunk_to_a_long_side_keeps_its_look_and_is_written_anew(astronaut):
    """Shrunk (Lanczos), a photo keeps its alpha and its look at the smaller size; it
    is written anew (no JPEG picture to copy, no CMYK inks of the old pixels); one that
    fits, or not asked, is itself; the faces found on it move with it."""
    from faceguard.album import PhotoFaces
    from faceguard.face import Face
    from faceguard.io.photo import shrunk_size

    pixels = astronaut.astype(np.float32) / 255
    alpha = np.ones(astronaut.shape[:2], np.float32)
    alpha[:, :100] = 0.0
    photo = fio.Photo(pixels=pixels, alpha=alpha, jpeg_data=b"jpeg",
                      inks=np.zeros((*astronaut.shape[:2], 4), np.uint8))
    assert photo.shrunk(None) is photo and photo.shrunk(512) is photo
    small = photo.shrunk(128)
    assert small.size == shrunk_size(512, 512, 128) == (128, 128)
    assert small.jpeg_data is None and small.inks is None
    assert 0 <= small.pixels.min() and small.pixels.max() <= 1
    assert small.alpha[:, :24].max() < 0.05 and small.alpha[:, 27:].min() > 0.95
    block = pixels.reshape(128, 4, 128, 4, 3).mean(axis=(1, 3))  # the 4x4 means
    assert np.abs(small.pixels - block).mean() < 0.02
    assert shrunk_size(4352, 2903, 1100) == (1100, 734)
    face = Face((100.0, 80.0, 300.0, 320.0), np.array([[150.0, 150.0]] * 5), 0.99)
    faces = PhotoFaces(Path("a.png"), 512, 512, [face]).shrunk(128)
    assert (faces.width, faces.height) == (128, 128)
    assert faces.faces[0].box == (25.0, 20.0, 75.0, 80.0)
    assert np.allclose(faces.faces[0].landmarks, 37.5)
