"""Face detection with MTCNN (facenet-pytorch), in original-photo pixel coordinates.

Zhang et al. (2016), "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks". The weights ship inside the facenet-pytorch wheel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from faceguard.device import pick_device


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: (x0, y0, x1, y1) in photo pixels.
        landmarks: (5, 2) x, y of left eye, right eye, nose tip, left and right mouth
            corner (left/right as seen in the photo), in photo pixels.
        score: detector confidence in [0, 1].
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "score": round(float(self.score), 4),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Face:
        landmarks = np.asarray(data["landmarks"], dtype=np.float64)
        return cls(tuple(data["box"]), landmarks, data["score"])


class FaceDetector:
    """MTCNN wrapper: all faces of a photo, huge photos downscaled for speed.

    Args:
        device: "cpu", "cuda" or None (CUDA when present).
        min_face_size: smallest face to find, in original-photo pixels.
        min_score: drop detections below this confidence.
        max_side: photos whose longer side exceeds this are downscaled to it for
            detection (MTCNN time grows with pixels); boxes are mapped back.

    Example:
        >>> detector = FaceDetector()
        >>> faces = detector(pixels)  # pixels: (H, W, 3) uint8 or float in [0, 1]
    """

    def __init__(
        self,
        device: str | None = None,
        min_face_size: int = 20,
        min_score: float = 0.9,
        max_side: int = 1600,
    ) -> None:
        if min_face_size < 1 or not 0 <= min_score <= 1 or max_side < 64:
            raise ValueError(
                "min_face_size must be >= 1, min_score in [0, 1] and max_side >= 64"
            )
        self.device = pick_device(device)
        self.min_face_size = min_face_size
        self.min_score = min_score
        self.max_side = max_side
        self._mtcnn: dict[int, object] = {}

    def __repr__(self) -> str:
        return (
            f"FaceDetector(device={self.device!r}, min_face_size={self.min_face_size}, "
            f"min_score={self.min_score}, max_side={self.max_side})"
        )

    def _net(self, min_size: int):
        # MTCNN's pyramid starts at min_face_size, so one instance per size.
        if min_size not in self._mtcnn:
            from facenet_pytorch import MTCNN

            self._mtcnn[min_size] = MTCNN(
                keep_all=True, min_face_size=min_size, device=self.device, post_process=False
            )
        return self._mtcnn[min_size]

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
            pixels = (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
        h, w = pixels.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = pixels
        if scale < 1:
            import cv2

            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        min_size = max(12, math.floor(self.min_face_size * scale))
        with torch.inference_mode():
            boxes, scores, points = self._net(min_size).detect(small, landmarks=True)
        if boxes is None:
            return []
        # numpy 2 may hand back object arrays from facenet-pytorch
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale
        points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2) / scale
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        faces = []
        for box, pts, score in zip(boxes, points, scores, strict=True):
            x0, y0, x1, y1 = box
            if score < self.min_score or min(x1 - x0, y1 - y0) < self.min_face_size:
                continue
            box = (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))
            faces.append(Face(box, pts, float(score)))
        faces.sort(key=lambda f: f.width * f.height, reverse=True)
        return faces


_default: FaceDetector | None = None


def detect_faces(pixels: np.ndarray) -> list[Face]:
    """Detect faces with a shared default :class:`FaceDetector`."""
    global _default
    if _default is None:
        _default = FaceDetector()
    return _default(pixels)
