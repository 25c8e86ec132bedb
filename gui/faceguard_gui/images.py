"""Pictures for the screen: numpy photos to ``QImage``, thumbnails, face boxes.

``QImage`` (unlike ``QPixmap``) may be built in worker threads, so the heavy
decoding happens there; the GUI thread only turns them into pixmaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap

#: colours in the user's words
PROTECTED_COLOUR = QColor(46, 160, 67)  # green: a face that is (or will be) cloaked
FACE_COLOUR = QColor(30, 136, 229)  # blue: a face found
PROBLEM_COLOUR = QColor(211, 84, 0)  # orange: a photo that needs attention

DIFFERENCE_GAIN = 10  # "amplified difference": x10 around mid-grey, as the audit report


def to_qimage(pixels: np.ndarray) -> QImage:
    """An (H, W, 3) RGB array (uint8, or float in [0, 1]) as a QImage that owns its data."""
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
    pixels = np.ascontiguousarray(pixels[..., :3])
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def difference_image(original: np.ndarray, cloaked: np.ndarray,
                     gain: float = DIFFERENCE_GAIN) -> np.ndarray:
    """(cloaked - original) x gain around mid-grey, (H, W, 3) float in [0, 1].

    A cloak of 8/255 is invisible as it is; amplified, it shows where the change went.
    """
    return np.clip((cloaked.astype(np.float32) - original) * gain + 0.5, 0, 1)


def thumbnail(path: Path, size: int = 256) -> QImage | None:
    """A thumbnail (longest side ``size``) of a photo file, EXIF orientation applied.

    Returns None when the file cannot be read (the scan reports why).
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale, fast
            im = ImageOps.exif_transpose(im)
            im.thumbnail((size, size))
            return to_qimage(np.asarray(im.convert("RGB")))
    except Exception:  # any unreadable file: no thumbnail, the scan says why
        return None


def with_boxes(image: QImage, boxes: Sequence[Sequence[float]], scale: float,
               colours: Sequence[QColor] | None = None, width: float = 2.0) -> QImage:
    """A copy of ``image`` with face boxes (photo pixels x ``scale``) drawn on it."""
    out = image.convertToFormat(QImage.Format.Format_RGB32)
    painter = QPainter(out)
    for k, box in enumerate(boxes):
        colour = colours[k] if colours else FACE_COLOUR
        painter.setPen(QPen(colour, width))
        x0, y0, x1, y1 = (v * scale for v in box)
        painter.drawRect(QRectF(x0, y0, x1 - x0, y1 - y0))
    painter.end()
    return out


def placeholder(size: int, text: str, colour: QColor = PROBLEM_COLOUR) -> QPixmap:
    """A grey square with a short word, for photos without a thumbnail."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(235, 235, 235))
    painter = QPainter(pixmap)
    painter.setPen(colour)
    font = painter.font()
    font.setPointSize(max(9, size // 14))
    painter.setFont(font)
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return pixmap
