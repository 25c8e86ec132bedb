"""The app icon: a white shield holding a face whose right half is pixel-cloaked.

Written by hand as SVG; ``python -m faceguard_gui.icon`` writes ``icon.svg`` and a
512 px ``icon.png`` into ``faceguard/resources/`` (the PNG for platforms and packagers
that need a bitmap).
"""

from __future__ import annotations

from pathlib import Path

from faceguard.paths import RESOURCES


def _in_person(x: float, y: float) -> bool:
    """Inside the head (circle) or the shoulders (a widening arch) of the icon's person."""
    if (x - 128) ** 2 + (y - 112) ** 2 <= 32**2:
        return True
    if 160 <= y <= 194:
        half = 26 + (48 - 26) * (y - 160) / 34
        return abs(x - 128) <= half
    return False


def _cloak_pixels() -> str:
    """Small squares over the right half of the person: the "cloak"."""
    squares = []
    shades = ("#8fb8f5", "#5d95e8", "#c6dbfa")
    for row, y in enumerate(range(80, 196, 8)):
        for col, x in enumerate(range(129, 180, 8)):
            corners = ((x, y), (x + 7, y), (x, y + 7), (x + 7, y + 7))
            if not all(_in_person(*c) for c in corners) or (row * 5 + col * 3 + row * col) % 6 == 0:
                continue
            squares.append(f'<rect x="{x}" y="{y}" width="7" height="7" '
                           f'fill="{shades[(row + col) % 3]}"/>')
    return "\n  ".join(squares)


SHIELD = "M128 30 L204 58 V122 C204 170 172 206 128 226 C84 206 52 170 52 122 V58 Z"
ICON_SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" \
viewBox="0 0 256 256">
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#3a8dff"/>
      <stop offset="1" stop-color="#1d4f9e"/>
    </linearGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="54" fill="url(#bg)"/>
  <path d="{SHIELD}" fill="#ffffff"/>
  <circle cx="128" cy="112" r="32" fill="#1d4f9e"/>
  <path d="M80 196 C84 168 104 156 128 156 C152 156 172 168 176 196 Z" fill="#1d4f9e"/>
  {_cloak_pixels()}
</svg>
"""


def write_icon_files(folder: Path = RESOURCES, size: int = 512) -> tuple[Path, Path]:
    """Write ``icon.svg`` and a ``size`` px ``icon.png``; returns both paths."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    svg = folder / "icon.svg"
    svg.write_text(ICON_SVG)
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    png = folder / "icon.png"
    image.save(str(png))
    return svg, png


if __name__ == "__main__":
    for path in write_icon_files():
        print(path)
