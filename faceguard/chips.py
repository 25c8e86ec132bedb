"""Face chips: the square crops of faces that `faceguard people` writes for each person
(usable as reference photos, ``--protect people/person-1``) and the app shows."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faceguard.album import AlbumPerson, slug
from faceguard.atomic import write_json
from faceguard.face import Face
from faceguard.io import DEFAULT_LIMIT, Photo, PixelLimit, load_photo, save_photo
from faceguard.output_folder import make_outdir

CHIP_MIRROR = 0.5
"""How much of the photo's mirror a face chip shows beyond the photo's edge (the rest
mid-grey). A face the edge cuts then shows whole enough for the detector to find it in
its chip, as :class:`FaceDetector` found it in the photo, while the user sees where the
photo ends: of the chips of the test album's group selfie, each of the seven gives its own
face as a reference photo (0.42-0.60 threshold units from it, 1.12 or more from the
others), against four of seven with the edge's pixels repeated, where the three faces the
edge cuts gave another face."""


def face_chip(photo: Photo, face: Face, size: int = 320, margin: float = 0.5) -> Photo:
    """A square crop around a face (box grown by ``margin``), resized to ``size`` px,
    the face upright (turned by quarter turns, :attr:`Face.tilt`); beyond the photo's
    edge it shows the photo's mirror, faded (:data:`CHIP_MIRROR`).

    The margin keeps enough context for the detector to find the face again, so
    chips work as reference photos (``--protect people/person-1``). At 320 px the face
    is about as large as the largest recognizer's input (224 px), so a chip embeds like
    the face it was cut from (0.07 threshold units away on a test-album face, against
    0.23 at 160 px): :data:`faceguard.identity.SAME_FACE_CUT` knows it for that face.
    """
    import cv2

    x0, y0, x1, y1 = face.box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = size / side
    m = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]])
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    chip = cv2.warpAffine(photo.pixels, m, (size, size), flags=interp,
                          borderMode=cv2.BORDER_REFLECT)
    h, w = photo.pixels.shape[:2]
    x, y = (np.arange(size) - m[:, 2:]) / scale  # the photo's x of each column, y of each row
    beyond = ((y < -0.5) | (y > h - 0.5))[:, None] | ((x < -0.5) | (x > w - 0.5))[None, :]
    chip[beyond] = CHIP_MIRROR * chip[beyond] + (1 - CHIP_MIRROR) * 0.5
    # a face on its side or upside down (a photo whose rotation tag was lost) is turned
    # upright by quarter turns: the user sees it so, and the detector finds it at once
    chip = np.rot90(chip, -round(face.tilt / 90) % 4)
    return Photo(np.ascontiguousarray(np.clip(chip, 0, 1)))


def write_people(people: Sequence[AlbumPerson], outdir: Path, limit: PixelLimit = DEFAULT_LIMIT,
                 per_person: int = 5) -> list[Path]:
    """Write each person's face chips to ``outdir/person-N/`` and ``people.json``.

    Returns the folders, one per person; each is usable as ``--protect FOLDER``.
    """
    make_outdir(outdir)
    _forget_earlier(outdir)
    folders = [outdir / slug(person.name) for person in people]
    summary = {"people": [dict(p.to_dict(), folder=f.name) for p, f in
                          zip(people, folders, strict=True)]}
    # listed before any chip is written (whole or not at all): a run stopped halfway left
    # chips no list named, and the next run's person-1 held them beside its own, another
    # person's faces (a cloak protecting both)
    write_json(outdir / "people.json", summary | {"complete": False})
    for person, folder in zip(people, folders, strict=True):
        folder.mkdir(exist_ok=True)
        for k, (path, face) in enumerate(person.faces[:per_person]):
            chip = face_chip(load_photo(path, limit=limit), face)
            save_photo(chip, folder / f"face-{k + 1}.png", overwrite=True)
    write_json(outdir / "people.json", summary)
    return folders


def _forget_earlier(outdir: Path) -> None:
    """Remove the chips an earlier :func:`write_people` left in ``outdir``: a person's
    folder mixing them with this run's would show two people (and protect both)."""
    try:
        listed = json.loads((outdir / "people.json").read_text()).get("people", [])
    except (OSError, ValueError, AttributeError):  # none there, or not ours
        return
    for person in listed:
        if folder := person.get("folder"):
            for chip in (outdir / folder).glob("face-*.png"):
                chip.unlink()
            with contextlib.suppress(OSError):  # kept when the user put more in it
                (outdir / folder).rmdir()
