"""Face detection with MTCNN, in original-photo pixel coordinates.

Zhang et al. (2016), "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks"; the cascade is :mod:`faceguard.mtcnn`, the weights ship inside
the facenet-pytorch wheel. Each face found is a :class:`~faceguard.face.Face`.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from faceguard.device import pick_device
from faceguard.face import Face
from faceguard.io import uint8_pixels
from faceguard.mtcnn import WINDOW, Mtcnn, resize

MIN_FACE = 20
"""The smallest face found by default, in photo pixels (larger in photos over
:class:`FaceDetector`'s ``max_side``)."""


class FaceDetector:
    """MTCNN wrapper: all faces of a photo, huge photos downscaled for speed.

    Args:
        device: "cpu", "cuda" or None (CUDA when present).
        min_face_size: smallest face to find, in original-photo pixels. None: the
            default, :data:`MIN_FACE` where ``max_side`` allows it (below). A size
            given is looked for in any photo: the photo is shrunk no further than
            that face's size allows (to MTCNN's :data:`~faceguard.mtcnn.WINDOW`),
            which in a large photo costs time (20 px in a 12.6 MP photo: 1.14 s
            instead of 0.22 on 2 cores; ``benchmarks/detect.py``, ``small_faces``).
        min_score: drop detections below this confidence.
        max_side: photos whose longer side exceeds this are downscaled to it for
            detection (MTCNN time grows with pixels); boxes are mapped back and each
            face's box and landmarks are found again on a crop around it at up to
            full resolution (:meth:`_refine`). In a photo larger than ``max_side``
            the smallest face found by default is about 12 / ``max_side`` of its longer
            side (47 px in a 4000 px photo at 1024), unless ``min_face_size`` is given.
        turned: unless a face is found upright and sure (:data:`SURE`), look again
            with the photo turned a quarter turn each way and upside down
            (:data:`TURNS`), and give the faces of the turn that shows the surest
            upright face (:data:`TURN_SURE`), in the photo's own pixels (else those
            found unturned). A photo whose rotation tag was lost shows its faces on
            their side, where MTCNN misses most of them and misplaces the landmarks of
            the rest. Costs three smaller detections on a photo without a sure face
            (one without faces: 0.23 -> 0.46 s at 12 MP on 2 cores), none on the others.
            A turn is taken over the faces found as the photo is only when it beats them
            (:func:`_turn_beats`).
        edges: also look for faces cut by the photo's edge (:meth:`_cut_by_edges`),
            which MTCNN misses as they are: in a group selfie, three of seven faces.

    Example:
        >>> detector = FaceDetector()
        >>> faces = detector(pixels)  # pixels: (H, W, 3) uint8 or float in [0, 1]
    """

    def __init__(
        self,
        device: str | None = None,
        min_face_size: int | None = None,
        min_score: float = 0.9,
        max_side: int = 1024,
        turned: bool = True,
        edges: bool = True,
    ) -> None:
        if min_face_size is not None and min_face_size < 1:
            raise ValueError(f"the smallest face must be at least 1 pixel, not {min_face_size}")
        if max_side < 64:
            raise ValueError(f"max_side must be at least 64, not {max_side}")
        if not 0 <= min_score <= 1:
            raise ValueError(f"the detector's confidence threshold must be 0-1, not {min_score}")
        self.device = pick_device(device)
        self.min_face_size = MIN_FACE if min_face_size is None else min_face_size
        self.min_face_asked = min_face_size is not None
        self.min_score = min_score
        self.max_side = max_side
        self.turned = turned
        self.edges = edges
        self._mtcnn: Mtcnn | None = None
        self._building = threading.Lock()  # photos are detected side by side

    def __repr__(self) -> str:
        asked = self.min_face_size if self.min_face_asked else None
        return (f"FaceDetector(device={self.device!r}, min_face_size={asked}, "
                f"min_score={self.min_score}, max_side={self.max_side}, turned={self.turned}, "
                f"edges={self.edges})")

    @property
    def networks(self) -> Mtcnn:
        """The MTCNN networks, built on first use."""
        with self._building:
            if self._mtcnn is None:
                self._mtcnn = Mtcnn(self.device)
        return self._mtcnn

    def __call__(self, pixels: np.ndarray) -> list[Face]:
        """Detect faces.

        Args:
            pixels: (H, W, 3) RGB, uint8 or float in [0, 1].

        Returns:
            Faces sorted by size, largest first.
        """
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {pixels.shape}")
        if pixels.dtype != np.uint8:
            pixels = uint8_pixels(pixels)
        h, w = pixels.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if self.min_face_asked:  # no further than a face of that size stays visible
            scale = min(1.0, max(scale, WINDOW / self.min_face_size))
        small = _shrunk(pixels, scale)
        faces = self._find(pixels, small, scale, self.edges)
        if self.turned and _sureness(faces) < SURE:
            # each turn is looked at smaller (a sure face is large), and the one that shows
            # the surest upright face is looked at again in full: faces as small as upright
            shrink = min(1.0, PROBE_SIDE / max(small.shape[:2]))
            probe = _shrunk(small, shrink)
            sureness = {turn: _sureness(self._find(np.rot90(pixels, turn),
                                                   np.rot90(probe, turn), scale * shrink))
                        for turn in TURNS}
            turn = max(TURNS, key=sureness.get)
            if sureness[turn] >= TURN_SURE:
                found = self._find(np.rot90(pixels, turn), np.rot90(small, turn), scale,
                                   self.edges)
                if _turn_beats(found, faces):
                    faces = [_turned_back(f, turn, w, h) for f in found]
        faces.sort(key=lambda f: f.width * f.height, reverse=True)
        return faces

    def _find(self, pixels: np.ndarray, small: np.ndarray, scale: float,
              edges: bool = False) -> list[Face]:
        """The faces of (H, W, 3) uint8 ``pixels``, detected on ``small`` (them shrunk by
        ``scale``; with ``edges`` those cut by its edge too), refined at full resolution
        and clipped to the photo."""
        h, w = pixels.shape[:2]
        small = np.ascontiguousarray(small)
        least = max(WINDOW, math.floor(self.min_face_size * scale))
        found = [f for f in self._detect(small, least, scale) if f.score >= self.min_score]
        if scale < 1:
            found = [f for f in (self._refine(pixels, f) for f in found) if f is not None]
        if edges:  # found on a smaller look: always refined
            found += [f for f in (self._refine(pixels, f, mirrored=True)
                                  for f in self._cut_by_edges(small, scale, found))
                      if f is not None]
        faces = []
        for face in found:
            x0, y0, x1, y1 = face.box
            if min(x1 - x0, y1 - y0) < self.min_face_size:
                continue
            box = (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))
            faces.append(Face(box, face.landmarks, face.score))
        return faces

    def _cut_by_edges(self, small: np.ndarray, scale: float, found: list[Face]) -> list[Face]:
        """Faces of (H, W, 3) uint8 ``small`` (the photo shrunk by ``scale``) that its edge
        cuts and MTCNN misses, in photo pixels: looked for again on it with
        :data:`EDGE_MIRROR` of its longer side mirrored beyond each edge, where a face cut in
        half shows whole (itself and its mirror). Kept when the face crosses the edge, at
        least :data:`EDGE_INSIDE` of its box is in the photo (not a mirror's face) and no
        face in ``found`` overlaps it (:data:`EDGE_OVERLAP`). Only faces of at least
        :data:`EDGE_LEAST` of the longer side are looked for, on the photo shrunk further
        so that they are :data:`EDGE_FACE_PX` wide, and only boxes that may cross its edge
        go on to R-Net, which keeps the look cheap."""
        least = max(self.min_face_size * scale, EDGE_LEAST * max(small.shape[:2]))
        shrink = min(1.0, EDGE_FACE_PX / least)
        view = _shrunk(small, shrink)
        h, w = view.shape[:2]
        pad = max(1, round(EDGE_MIRROR * max(h, w)))
        mirrored = np.pad(view, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        faces, photo = [], (pad, pad, pad + w, pad + h)  # the photo in the mirrored view
        for face in self._detect(mirrored, max(WINDOW, math.floor(least * shrink)), crossing=photo):
            x0, y0, x1, y1 = (v - pad for v in face.box)
            inside = (max(0, min(w, x1) - max(0, x0)) * max(0, min(h, y1) - max(0, y0))
                      / ((x1 - x0) * (y1 - y0)))
            crosses = x0 < 0 or y0 < 0 or x1 > w or y1 > h
            box = tuple(v / (scale * shrink) for v in (x0, y0, x1, y1))
            if (face.score >= self.min_score and crosses and inside >= EDGE_INSIDE
                    and all(iou(box, f.box) < EDGE_OVERLAP for f in found)):
                faces.append(Face(box, (face.landmarks - pad) / (scale * shrink), face.score))
        return faces

    def _detect(self, pixels: np.ndarray, min_size: int, scale: float = 1.0,
                crossing: tuple[int, int, int, int] | None = None) -> list[Face]:
        """MTCNN on (H, W, 3) uint8 ``pixels``, boxes divided by ``scale`` (unclipped)."""
        boxes, scores, points = self.networks(pixels, min_size, crossing)
        boxes, points = boxes / scale, points / scale
        return [Face(tuple(b), p, float(c)) for b, p, c in zip(boxes, points, scores,
                                                              strict=True)]

    def _refine(self, pixels: np.ndarray, face: Face, face_px: int = 96,
                mirrored: bool = False) -> Face | None:
        """``face`` (found on the downscaled photo) found again on a crop of the full
        ``pixels`` around it, the face shrunk to about ``face_px`` wide if larger: MTCNN's
        last stage sees the face at 48 px, so a small face found on the downscaled photo
        gets back the landmarks of its full resolution. None when no face on the crop
        overlaps it by half: a false detection of the shrunk photo (on the album's 61
        photos this drops one and loses no face). The score stays the coarse one. With
        ``mirrored`` (a face the edge cuts) the crop shows the photo's mirror beyond its
        edge, as the face was found (:meth:`_cut_by_edges`); else it stops at the edge:
        mirrored there, the faces MTCNN finds as they are moved 1-9% of their eye
        distance, and a blurred face the edge cuts was lost."""
        h, w = pixels.shape[:2]
        x0, y0, x1, y1 = face.box
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.9 * max(x1 - x0, y1 - y0)
        left, top = int(cx - half), int(cy - half)
        right, bottom = int(cx + half) + 1, int(cy + half) + 1
        if not mirrored:
            left, top, right, bottom = max(0, left), max(0, top), min(w, right), min(h, bottom)
        crop = pixels[max(0, top):min(h, bottom), max(0, left):min(w, right)]
        crop = np.pad(crop, ((max(0, -top), max(0, bottom - h)),
                             (max(0, -left), max(0, right - w)), (0, 0)), mode="reflect")
        scale = min(1.0, face_px / max(face.width, 1.0))
        found = self._detect(np.ascontiguousarray(_shrunk(crop, scale)),
                             max(WINDOW, math.floor(0.5 * face.width * scale)), scale)
        best, overlap = face, 0.5
        for f in found:
            shifted = Face((f.box[0] + left, f.box[1] + top, f.box[2] + left, f.box[3] + top),
                           f.landmarks + (left, top), f.score)
            if (share := iou(shifted.box, face.box)) > overlap:
                best, overlap = shifted, share
        if best is face:
            return None
        # the score stays the whole photo's: that detection decided there is a face
        return Face(best.box, best.landmarks, face.score)


SURE = 0.995
"""A photo is looked at turned unless it has a face upright (:func:`_sureness`) with at
least this score. On the test album (64 photos) 63 upright photos have one; of the
same photos turned, MTCNN still finds some face in 62 of 192, but an upright one this
sure in 1 (with the photo upside down)."""

TURN_SURE = 0.98
"""A turn is taken only when it shows an upright face with at least this score (and
surer than any face upright). The least score of the test album's upright photos'
surest faces is 0.984; on 40 strips of its photos beside their faces, turning found two
false faces, both at 0.92. The surest turn is taken, not the first: MTCNN scores some
faces of a photo upside down up to 0.998, though lower than the same faces upright."""

PROBE_SIDE = 640
"""The longer side at which each turn is first looked at: a third of the time of the
full look (0.10 against 0.23 s at 12 MP), and on the test album a sure upright face is
found at 640 px in 63 of the 64 photos that have one at 1024."""

EDGE_MIRROR = 0.1
"""The share of a photo's longer side mirrored beyond each edge to find the faces the edge
cuts (:meth:`FaceDetector._cut_by_edges`). On the test album's 64 photos it finds six
faces more (79; ``benchmarks/detect.py``): three of the group selfie's seven, one cut by
a photo's bottom, a blurred head and the back of a head; none lost, none found twice."""

EDGE_LEAST = 0.04
"""The smallest face looked for beyond the edge, as a share of the photo's longer side
(41 px at 1024). A face the edge cuts is seldom smaller: those the test album shows are
19% of the side or more."""

EDGE_FACE_PX = 12
"""The width the smallest face looked for beyond the edge (:data:`EDGE_LEAST`) is shrunk
to, MTCNN's smallest: it finds a face cut at a third of its width that it misses at 16 or
24 px. Each face found is refined at full resolution (:meth:`FaceDetector._refine`); with
it, the test album's detection takes 28% longer (``benchmarks/detect.py``)."""

EDGE_INSIDE = 0.3
"""The least share of a face's box inside the photo: a face mostly in the mirrored margin
is the mirror of one inside, while a face the edge cuts is found with its mirror, half
inside or, cut at a third of its width, a third (the group selfie's nearest face: 0.31)."""

EDGE_OVERLAP = 0.3
"""A face found beyond the edge that overlaps one found as the photo is (intersection
over union) by this much is that one."""

TURNS = (1, 3, 2)
"""Quarter turns (``np.rot90``'s k: 1 anticlockwise, 3 clockwise, 2 upside down) looked
at on a photo without a sure upright face."""


def _sureness(faces: list[Face]) -> float:
    """The best score among ``faces`` that are upright (:attr:`Face.orientation`), else 0."""
    return max((f.score for f in faces if f.orientation == "upright"), default=0.0)


def _turn_beats(turned: list[Face], upright: list[Face]) -> bool:
    """Whether the faces found on a turned photo are to be taken over those found on it
    as it is: the surest upright face is sure enough (:data:`TURN_SURE`) and surer than
    any of those, and a photo with one of those this sure (a crowd of faces, all a little
    unsure) must show as many upright faces turned."""
    def count(faces: list[Face]) -> int:
        return sum(f.orientation == "upright" for f in faces)

    best, before = _sureness(turned), _sureness(upright)
    return (best >= TURN_SURE and best > before
            and (before < TURN_SURE or count(turned) >= count(upright)))


def _turned_back(face: Face, turn: int, width: int, height: int) -> Face:
    """``face`` found on the photo turned by ``np.rot90(photo, turn)``, in the pixels of
    the (``height``, ``width``) photo itself. Landmarks keep their order (the face's own
    left eye first), so aligning the face rotates it upright."""
    def back(points: np.ndarray) -> np.ndarray:
        x, y = points[:, 0], points[:, 1]
        turned = {1: (width - y, x), 3: (y, height - x), 2: (width - x, height - y)}[turn]
        return np.stack(turned, axis=1)

    corners = back(np.reshape(face.box, (2, 2)))
    box = (*corners.min(axis=0), *corners.max(axis=0))
    return Face(tuple(float(v) for v in box), back(face.landmarks), face.score)


def _shrunk(pixels: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, 3) uint8 ``pixels`` area-resampled by ``scale`` <= 1 (as they are at 1)."""
    if scale >= 1:
        return pixels
    h, w = pixels.shape[:2]
    return resize(pixels, max(1, round(w * scale)), max(1, round(h * scale)))


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


_default: FaceDetector | None = None


def detect_faces(pixels: np.ndarray) -> list[Face]:
    """Detect faces with a shared default :class:`FaceDetector`."""
    global _default
    if _default is None:
        _default = FaceDetector()
    return _default(pixels)
