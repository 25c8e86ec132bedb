"""One detected face: its box, five landmarks and score, in photo pixels
(:class:`faceguard.detect.FaceDetector` finds them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: (x0, y0, x1, y1) in photo pixels, within the photo.
        landmarks: (5, 2) x, y of left eye, right eye, nose tip, left and right mouth
            corner (left/right as seen in the photo), in photo pixels (beyond the photo
            for the parts of a face its edge cuts off).
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

    @property
    def tilt(self) -> float:
        """Degrees from upright, -180 to 180: the angle from straight down of the line from
        the eyes to the mouth, in photo pixels (positive when the mouth lies to the right
        of straight below the eyes)."""
        eyes, mouth = self.landmarks[:2].mean(axis=0), self.landmarks[3:].mean(axis=0)
        dx, dy = mouth - eyes
        return math.degrees(math.atan2(dx, dy))

    @property
    def orientation(self) -> str:
        """"upright", "on its side" (its length along the photo's width) or "upside
        down": :attr:`tilt` within :data:`UPRIGHT_DEGREES` of 0, +-90 or 180 degrees."""
        tilt = abs(self.tilt)
        if tilt <= UPRIGHT_DEGREES:
            return "upright"
        return "on its side" if tilt < 180 - UPRIGHT_DEGREES else "upside down"

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "score": round(float(self.score), 4), "orientation": self.orientation,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Face:
        landmarks = np.asarray(data["landmarks"], dtype=np.float64)
        return cls(tuple(data["box"]), landmarks, data["score"])


UPRIGHT_DEGREES = 45.0
"""A face is upright when its mouth is below its eyes within this angle: the test
album's upright faces are within 23 degrees, and MTCNN's detections on a photo turned
a quarter lie mostly beyond 45."""
