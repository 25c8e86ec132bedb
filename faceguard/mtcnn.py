"""The MTCNN cascade, driven for speed on the CPU.

Zhang et al. (2016), "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks": a proposal net (P-Net) slides over an image pyramid, a refine
net (R-Net) and an output net (O-Net) judge each surviving box on a 24 and a 48 px crop,
and O-Net places the five landmarks. The three networks and the box helpers are
facenet-pytorch's (its weights ship inside the wheel); only the driving differs from its
``detect_face``, which resampled the pyramid and each of hundreds of crops with torch's
adaptive average pooling on float tensors (a third of its time on the album):
- the pyramid and the crops are resampled by ``cv2.resize`` (INTER_AREA, as the widely
  used reference ports of MTCNN do) on uint8 pixels, 3-4x faster;
- the networks run on channels-last tensors, 1.5-3x faster on this CPU.
The resampling moves borderline scores a little. On 1,112 single-face portraits
(celeb24, att) facenet-pytorch found one face twice and missed one; this finds each
once. On the album's 64 photos it finds the same faces, and a necklace at 0.92 (a score
of 0.78 before). Detection takes about 0.8x the time (``benchmarks/detect.py``).
"""

from __future__ import annotations

import numpy as np
import torch

STEP = 0.709  # each pyramid level's scale over the previous one (the paper's factor)
THRESHOLDS = (0.6, 0.7, 0.7)  # P-, R- and O-Net scores a box must pass


class Mtcnn:
    """The three MTCNN networks on ``device``, called on one (H, W, 3) uint8 photo."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = (net().eval().to(self.device)
                                           for net in (PNet, RNet, ONet))

    def __call__(self, pixels: np.ndarray, min_size: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces of at least ``min_size`` px (>= 12) in (H, W, 3) uint8 ``pixels``.

        Returns:
            (boxes (N, 4) x0, y0, x1, y1; scores (N,); landmarks (N, 5, 2) x, y), in
            pixels, boxes not clipped to the photo.
        """
        from facenet_pytorch.models.utils.detect_face import (
            batched_nms_numpy,
            bbreg,
            generateBoundingBox,
            rerec,
        )
        from torchvision.ops import nms

        h, w = pixels.shape[:2]
        with torch.inference_mode():
            proposals = []
            for scale in pyramid(h, w, min_size):
                level = resize(pixels, int(w * scale + 1), int(h * scale + 1))
                reg, prob = self.pnet(_normalised(_tensor(level[None], self.device)))
                found, _ = generateBoundingBox(reg, prob[:, 1], scale, THRESHOLDS[0])
                proposals.append(found[nms(found[:, :4], found[:, 4], 0.5)].cpu())
            boxes = torch.cat(proposals) if proposals else torch.zeros(0, 9)
            boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
            size = (boxes[:, 2:4] - boxes[:, 0:2]).repeat(1, 2)  # P-Net's box regression
            boxes = rerec(torch.cat([boxes[:, :4] + boxes[:, 5:9] * size, boxes[:, 4:5]], 1))
            boxes = _on_photo(boxes, w, h)

            if len(boxes):
                reg, prob = (t.cpu() for t in self.rnet(self._crops(pixels, boxes, 24)))
                keep = prob[:, 1] > THRESHOLDS[1]
                boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], 1)
                pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
                boxes = _on_photo(rerec(bbreg(boxes[pick], reg[keep][pick])), w, h)

            landmarks = torch.zeros(0, 5, 2)
            if len(boxes):
                reg, points, prob = (t.cpu() for t in self.onet(self._crops(pixels, boxes, 48)))
                keep = prob[:, 1] > THRESHOLDS[2]
                boxes, reg, points = boxes[keep], reg[keep], points[keep]
                boxes[:, 4] = prob[keep, 1]
                # landmarks relative to the box before its regression, 1-based corners
                side = (boxes[:, 2:4] - boxes[:, 0:2] + 1)[:, None, :]
                landmarks = points.view(-1, 2, 5).transpose(1, 2) * side + boxes[:, None, 0:2] - 1
                boxes = bbreg(boxes, reg)
                pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4],
                                         torch.zeros(len(boxes), dtype=torch.long), 0.7, "Min")
                boxes, landmarks = boxes[pick], landmarks[pick]
        boxes = boxes.numpy().astype(np.float64)
        return boxes[:, :4], boxes[:, 4], landmarks.numpy().astype(np.float64)

    def _crops(self, pixels: np.ndarray, boxes: torch.Tensor, size: int) -> torch.Tensor:
        """Each box's part of ``pixels`` (a box sticking out of the photo is cut to it,
        as in facenet-pytorch), resampled to size x size, batched."""
        from facenet_pytorch.models.utils.detect_face import pad

        h, w = pixels.shape[:2]
        y0, y1, x0, x1 = pad(boxes, w, h)
        crops = np.stack([resize(pixels[top - 1:bottom, left - 1:right], size, size)
                          for top, bottom, left, right in zip(y0, y1, x0, x1, strict=True)])
        return _normalised(_tensor(crops, self.device))


def pyramid(h: int, w: int, min_size: int) -> list[float]:
    """The scales at which P-Net's 12 px window covers faces from ``min_size`` px up to
    the photo's shorter side, each ``STEP`` times the previous."""
    scales, scale = [], 12.0 / min_size
    while min(h, w) * scale >= 12:
        scales.append(scale)
        scale *= STEP
    return scales


def _tensor(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float 0..255 on ``device``."""
    return torch.from_numpy(pixels).to(device).permute(0, 3, 1, 2).float()


def _normalised(batch: torch.Tensor) -> torch.Tensor:
    """0..255 -> the networks' [-1, 1) range, channels last (the convolutions run
    1.5-3x faster in that layout on this CPU)."""
    return ((batch - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)


def _on_photo(boxes: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """The boxes that keep at least a pixel inside the w x h photo (the rest has nothing
    to crop; facenet-pytorch skips their crops, which shifts every later box's score)."""
    from facenet_pytorch.models.utils.detect_face import pad

    y0, y1, x0, x1 = pad(boxes, w, h)
    return boxes[torch.from_numpy((y1 >= y0) & (x1 >= x0))]


def resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 area-resampled to (height, width, 3) (OpenCV's INTER_AREA)."""
    import cv2

    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
