"""The MTCNN cascade, driven for speed on the CPU.

Zhang et al. (2016), "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks": a proposal net (P-Net) slides over an image pyramid, a refine
net (R-Net) and an output net (O-Net) judge each surviving box on a 24 and a 48 px crop,
and O-Net places the five landmarks. The weights are the ones the facenet-pytorch wheel
ships (its ``data/*.pt``), read without importing that package, which imports
torchvision (a second of every process's start). The driving differs from its
``detect_face``, which resampled the pyramid and each of hundreds of crops with torch's
adaptive average pooling on float tensors (a third of its time on the album):
- the pyramid and the crops are resampled by ``cv2.resize`` (INTER_AREA, as the widely
  used reference ports of MTCNN do) on uint8 pixels, 3-4x faster;
- the networks run on channels-last tensors, 1.5-3x faster on this CPU;
- looking for faces the photo's edge cuts (``crossing``), R- and O-Net judge only the
  boxes near its edge: the album's detection is 6-8% faster on one thread, with the
  same faces in its 64 photos. Of 360 crops cut through its faces, four changed:
  R-Net's smaller batch moves boxes by 1e-5 px, which moved a borderline face three
  times and lost one.
The resampling moves borderline scores a little. On 1,112 single-face portraits
(celeb24, att) facenet-pytorch found one face twice and missed one; this finds each
once. On the album's 64 photos it finds the same faces, and a necklace at 0.92 (a score
of 0.78 before). Detection takes about 0.8x the time (``benchmarks/detect.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceguard.paths import bundled, package_file

WINDOW = 12  # P-Net's window: the smallest face, in pixels, at a pyramid level
STEP = 0.709  # each pyramid level's scale over the previous one (the paper's factor)
THRESHOLDS = (0.6, 0.7, 0.7)  # P-, R- and O-Net scores a box must pass
EDGE_MARGIN = 0.5  # R- and O-Net move a box far less than half its side


class Mtcnn:
    """The three MTCNN networks on ``device``, called on one (H, W, 3) uint8 photo."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = (_network(name).to(self.device)
                                           for name in ("pnet", "rnet", "onet"))

    def __call__(self, pixels: np.ndarray, min_size: int,
                 crossing: tuple[int, int, int, int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces of at least ``min_size`` px (>= 12) in (H, W, 3) uint8 ``pixels``; with
        ``crossing`` (x0, y0, x1, y1), only faces that may cross that rectangle's edge
        (:func:`_near_edge`).

        Returns:
            (boxes (N, 4) x0, y0, x1, y1; scores (N,); landmarks (N, 5, 2) x, y), in
            pixels, boxes not clipped to the photo.
        """
        h, w = pixels.shape[:2]
        with torch.inference_mode():
            proposals = []
            for scale in pyramid(h, w, min_size):
                level = resize(pixels, int(w * scale + 1), int(h * scale + 1))
                prob, reg, _ = self.pnet(_normalised(_tensor(level[None], self.device)))
                found = _proposals(prob[0, 1].cpu(), reg[0].cpu(), scale)
                proposals.append(found[nms(found[:, :4], found[:, 4], 0.5)])
            boxes = torch.cat(proposals) if proposals else torch.zeros(0, 9)
            boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
            size = (boxes[:, 2:4] - boxes[:, 0:2]).repeat(1, 2)  # P-Net's box regression
            boxes = _square(torch.cat([boxes[:, :4] + boxes[:, 5:9] * size, boxes[:, 4:5]], 1))
            boxes = _on_photo(boxes, w, h)
            if crossing is not None:
                boxes = boxes[_near_edge(boxes, crossing)]

            if len(boxes):
                prob, reg, _ = self.rnet(self._crops(pixels, boxes, 24))
                prob, reg = prob.cpu(), reg.cpu()
                keep = prob[:, 1] > THRESHOLDS[1]
                boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], 1)
                pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
                boxes = _on_photo(_square(_regressed(boxes[pick], reg[keep][pick])), w, h)

            landmarks = torch.zeros(0, 5, 2)
            if len(boxes):
                prob, reg, points = (t.cpu() for t in self.onet(self._crops(pixels, boxes, 48)))
                keep = prob[:, 1] > THRESHOLDS[2]
                boxes, reg, points = boxes[keep], reg[keep], points[keep]
                boxes[:, 4] = prob[keep, 1]
                # landmarks relative to the box before its regression, 1-based corners
                side = (boxes[:, 2:4] - boxes[:, 0:2] + 1)[:, None, :]
                landmarks = points.view(-1, 2, 5).transpose(1, 2) * side + boxes[:, None, 0:2] - 1
                boxes = _regressed(boxes, reg)
                pick = nms(boxes[:, :4], boxes[:, 4], 0.7, smaller=True)
                boxes, landmarks = boxes[pick], landmarks[pick]
        boxes = boxes.numpy().astype(np.float64)
        return boxes[:, :4], boxes[:, 4], landmarks.numpy().astype(np.float64)

    def _crops(self, pixels: np.ndarray, boxes: torch.Tensor, size: int) -> torch.Tensor:
        """Each box's part of ``pixels`` (a box sticking out of the photo is cut to it),
        resampled to size x size, batched."""
        x0, y0, x1, y1 = _pixel_box(boxes, *pixels.shape[1::-1])
        crops = np.stack([resize(pixels[top - 1:bottom, left - 1:right], size, size)
                          for left, top, right, bottom in zip(x0, y0, x1, y1, strict=True)])
        return _normalised(_tensor(crops, self.device))


class _Network(nn.Module):
    """One of the three networks: its layers in order, then its heads (face score, box
    regression and, for O-Net, landmarks). Named as in the weight files."""

    def __init__(self, layers: list[tuple[str, nn.Module]],
                 heads: list[tuple[str, nn.Module]]) -> None:
        super().__init__()
        for name, layer in layers + heads:
            self.add_module(name, layer)
        self.order = [name for name, _ in layers]
        self.heads = [name for name, _ in heads]

    def forward(self, x: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(face probabilities (B, 2, ...), box regression (B, 4, ...), landmarks (B, 10)
        or None)."""
        for name in self.order:
            layer = getattr(self, name)
            if isinstance(layer, nn.Linear) and x.dim() == 4:
                x = x.permute(0, 3, 2, 1).flatten(1)  # the Caffe weights' (W, H, C) order
            x = layer(x)
        prob, reg, *points = (getattr(self, name)(x) for name in self.heads)
        return prob.softmax(1), reg, points[0] if points else None


def _layers(convolutions: list[tuple[int, int, int, int]], dense: list[int]
            ) -> list[tuple[str, nn.Module]]:
    """conv{k}, prelu{k} and pool{k} (``pool`` > 0: max pooling of that size, stride 2)
    for each (inputs, outputs, kernel, pool); then dense{k}, prelu{k} per width."""
    layers: list[tuple[str, nn.Module]] = []
    for k, (c_in, c_out, kernel, pool) in enumerate(convolutions, 1):
        layers += [(f"conv{k}", nn.Conv2d(c_in, c_out, kernel)), (f"prelu{k}", nn.PReLU(c_out))]
        if pool:
            layers.append((f"pool{k}", nn.MaxPool2d(pool, 2, ceil_mode=True)))
    k = len(convolutions)
    for inputs, width in zip(dense, dense[1:], strict=False):
        k += 1
        layers += [(f"dense{k}", nn.Linear(inputs, width)), (f"prelu{k}", nn.PReLU(width))]
    return layers


def _network(name: str) -> _Network:
    """P-, R- or O-Net with the weights of the facenet-pytorch wheel, in eval mode."""
    if name == "pnet":
        net = _Network(_layers([(3, 10, 3, 2), (10, 16, 3, 0), (16, 32, 3, 0)], []),
                       [("conv4_1", nn.Conv2d(32, 2, 1)), ("conv4_2", nn.Conv2d(32, 4, 1))])
    elif name == "rnet":
        net = _Network(_layers([(3, 28, 3, 3), (28, 48, 3, 3), (48, 64, 2, 0)], [576, 128]),
                       [("dense5_1", nn.Linear(128, 2)), ("dense5_2", nn.Linear(128, 4))])
    else:
        net = _Network(_layers([(3, 32, 3, 3), (32, 64, 3, 3), (64, 64, 3, 2),
                                (64, 128, 2, 0)], [1152, 256]),
                       [("dense6_1", nn.Linear(256, 2)), ("dense6_2", nn.Linear(256, 4)),
                        ("dense6_3", nn.Linear(256, 10))])
    net.load_state_dict(torch.load(weights_folder() / f"{name}.pt", weights_only=True))
    return net.eval()


def weights_folder() -> Path:
    """facenet-pytorch's ``data`` folder (a PyInstaller bundle's copy of it, inside the
    bundle), found without importing the package."""
    if bundle := bundled("facenet_pytorch/data"):
        return bundle
    if folder := package_file("facenet_pytorch", "data"):
        return folder
    raise ModuleNotFoundError("facenet-pytorch is not installed: it ships the MTCNN "
                              "weights (bash scripts/setup.sh installs it)")


def pyramid(h: int, w: int, min_size: int) -> list[float]:
    """The scales at which P-Net's :data:`WINDOW` covers faces from ``min_size`` px up to
    the photo's shorter side, each ``STEP`` times the previous."""
    scales, scale = [], WINDOW / min_size
    while min(h, w) * scale >= WINDOW:
        scales.append(scale)
        scale *= STEP
    return scales


def _proposals(prob: torch.Tensor, reg: torch.Tensor, scale: float) -> torch.Tensor:
    """(N, 9) boxes x0, y0, x1, y1 in photo pixels, score, and P-Net's regression (4) of
    each 12 px window (stride 2 on the level scaled by ``scale``) scoring at least the
    threshold. ``prob``: (H, W); ``reg``: (4, H, W)."""
    ys, xs = torch.nonzero(prob >= THRESHOLDS[0], as_tuple=True)
    corners = torch.stack([xs, ys], 1)
    return torch.cat([((2 * corners + 1) / scale).floor(), ((2 * corners + 12) / scale).floor(),
                      prob[ys, xs, None], reg[:, ys, xs].T], 1)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """(N, >= 4) boxes made square around their centres (their longer side), in place."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5  # in this order: the same floats
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5  # as facenet-pytorch's rerec
    boxes[:, 2:4] = boxes[:, 0:2] + side[:, None]
    return boxes


def _regressed(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """(N, >= 4) boxes moved by R- or O-Net's regression (N, 4) in box sizes, in place."""
    size = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
    boxes[:, :4] += reg * size
    return boxes


def _near_edge(boxes: torch.Tensor, rect: tuple[int, int, int, int],
               margin: float = EDGE_MARGIN) -> torch.Tensor:
    """(N,) bool: the (N, >= 4) boxes that, grown by ``margin`` of their side on each
    side, cross an edge of the (x0, y0, x1, y1) rectangle (they reach both inside and
    outside it)."""
    grow = (boxes[:, 2:4] - boxes[:, 0:2]).amax(1) * margin
    x0, y0 = boxes[:, 0] - grow, boxes[:, 1] - grow
    x1, y1 = boxes[:, 2] + grow, boxes[:, 3] + grow
    meets = (x0 < rect[2]) & (x1 > rect[0]) & (y0 < rect[3]) & (y1 > rect[1])
    within = (x0 >= rect[0]) & (y0 >= rect[1]) & (x1 <= rect[2]) & (y1 <= rect[3])
    return meets & ~within


def _pixel_box(boxes: torch.Tensor, w: int, h: int) -> tuple[np.ndarray, ...]:
    """(x0, y0, x1, y1) int arrays: the boxes truncated to whole pixels, 1-based corners
    cut to the w x h photo."""
    b = boxes[:, :4].trunc().int().numpy()
    return (np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1), np.minimum(b[:, 2], w),
            np.minimum(b[:, 3], h))


def _on_photo(boxes: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """The boxes that keep at least a pixel inside the w x h photo (the rest has nothing
    to crop; facenet-pytorch skips their crops, which shifts every later box's score)."""
    x0, y0, x1, y1 = _pixel_box(boxes, w, h)
    return boxes[torch.from_numpy((y1 >= y0) & (x1 >= x0))]


def nms(boxes: torch.Tensor, scores: torch.Tensor, overlap: float, smaller: bool = False
        ) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the boxes kept, best score first.

    A box goes when it overlaps a better one by more than ``overlap``: intersection over
    union (areas in continuous coordinates), or with ``smaller`` intersection over the
    smaller box (areas counting both end pixels), MTCNN's last step.
    """
    b = boxes.numpy()
    s = scores.numpy()
    extra = 1.0 if smaller else 0.0
    area = (b[:, 2] - b[:, 0] + extra) * (b[:, 3] - b[:, 1] + extra)
    # equal scores are common (O-Net saturates at 1 - 2^-24): they are taken in the order
    # facenet-pytorch took them (torchvision's sort; numpy's argsort for the last step),
    # so that the same boxes survive
    order = (np.argsort(s)[::-1] if smaller
             else scores.sort(descending=True, stable=True).indices.numpy())
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        iw = np.maximum(0.0, np.minimum(b[best, 2], b[rest, 2])
                        - np.maximum(b[best, 0], b[rest, 0]) + extra)
        ih = np.maximum(0.0, np.minimum(b[best, 3], b[rest, 3])
                        - np.maximum(b[best, 1], b[rest, 1]) + extra)
        inter = iw * ih
        if smaller:
            share = inter / np.minimum(area[best], area[rest])
        else:
            share = inter / (area[best] + area[rest] - inter)
        order = rest[share <= overlap]
    return torch.as_tensor(np.array(keep, dtype=np.int64))


def _tensor(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float 0..255 on ``device``."""
    return torch.from_numpy(pixels).to(device).permute(0, 3, 1, 2).float()


def _normalised(batch: torch.Tensor) -> torch.Tensor:
    """0..255 -> the networks' [-1, 1) range, channels last (the convolutions run
    1.5-3x faster in that layout on this CPU)."""
    return ((batch - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)


def resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 area-resampled to (height, width, 3) (OpenCV's INTER_AREA)."""
    import cv2

    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
