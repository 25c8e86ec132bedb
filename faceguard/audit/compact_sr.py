"""Real-ESRGAN's compact network (animevideov3) in torch: the audit's super-resolution,
differentiable, so that a cloak can be optimised through it.

The network is SRVGGNetCompact (Wang et al., "Real-ESRGAN", ICCV Workshops 2021): a
3x3 convolution to 64 channels, 16 more 3x3 convolutions of 64 channels, each followed
by a PReLU, a last convolution to 3 x 4 x 4 channels and a pixel shuffle to 4x the size,
added to the input enlarged 4x by nearest neighbour. The x2 and x3 files are the same
network followed by a bicubic downscale inside the graph. The weights are read from the
very ncnn files :mod:`faceguard.audit.superres` runs (half-precision weights, float32
biases and PReLU slopes), so both compute the same function: a test keeps them within
1e-4 of each other.

Example::

    >>> from faceguard.audit.compact_sr import super_resolve
    >>> super_resolve(torch.rand(1, 3, 40, 30)).shape
    torch.Size([1, 3, 80, 60])
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceguard.audit.superres import BORDER, model_files

#: ncnn's tag before a layer's weights stored as float16 (float32 weights have tag 0)
_FLOAT16 = 0x01306B47


class CompactSR(nn.Module):
    """SRVGGNetCompact with the weights of ``animevideov3`` at ``scale`` (2, 3 or 4).

    Shape: (B, 3, H, W) in [0, 1] -> (B, 3, scale*H, scale*W), not clipped (as ncnn's).
    """

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        param, weights = model_files(scale, "animevideov3")
        layers = _read(param, weights)
        self.scale = scale
        self.body = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.pixel_shuffle(self.body(images), 4)
        x = x + F.interpolate(images, scale_factor=4, mode="nearest")
        if self.scale == 4:
            return x
        h, w = images.shape[-2:]
        # ncnn's bicubic (A = -0.75, half-pixel centres, no antialiasing) is torch's
        return F.interpolate(x, size=(h * self.scale, w * self.scale), mode="bicubic",
                             align_corners=False)


def _read(param: Path, weights: Path) -> list[nn.Module]:
    """The convolutions and PReLUs of an ncnn SRVGG graph, in order, with their weights.

    A ``.param`` layer line is: type name n_bottom n_top bottoms... tops... k=v...; the
    ``.bin`` holds each layer's data in that order: a convolution's tagged weights
    (out, in, k, k), then its float32 bias; a PReLU's float32 slopes.
    """
    data = weights.read_bytes()
    at = 0

    def take(count: int, dtype: type) -> torch.Tensor:
        nonlocal at
        size = np.dtype(dtype).itemsize * count
        values = np.frombuffer(data, dtype, count, at).astype(np.float32)
        at += size
        return torch.from_numpy(values.copy())

    layers: list[nn.Module] = []
    channels = 3
    for line in param.read_text().splitlines()[2:]:
        kind, *rest = line.split()
        if kind not in ("Convolution", "PReLU"):
            continue
        n_io = int(rest[1]) + int(rest[2])
        keys = dict(kv.split("=") for kv in rest[3 + n_io:])
        if kind == "PReLU":
            prelu = nn.PReLU(int(keys["0"]))
            prelu.weight.data = take(int(keys["0"]), np.float32)
            layers.append(prelu)
            continue
        out, k, count = int(keys["0"]), int(keys["1"]), int(keys["6"])
        tag = int.from_bytes(data[at:at + 4], "little")
        at += 4
        if tag not in (0, _FLOAT16):
            raise ValueError(f"{weights.name}: unsupported ncnn weight storage {tag:#x}")
        conv = nn.Conv2d(channels, out, k, padding=int(keys.get("4", 0)))
        conv.weight.data = take(count, np.float16 if tag else np.float32).view(out, channels,
                                                                              k, k)
        conv.bias.data = take(out, np.float32)
        layers.append(conv)
        channels = out
    if at != len(data):
        raise ValueError(f"{weights.name}: {len(data) - at} bytes left after the last layer")
    return layers


@lru_cache(maxsize=3)
def network(scale: int = 2) -> CompactSR:
    """The network at ``scale``, loaded once, weights frozen (gradients flow to the input
    only)."""
    net = CompactSR(scale).eval()
    net.requires_grad_(False)
    return net


def super_resolve(images: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Upscale by ``scale`` as :func:`faceguard.audit.superres.upscale_array` does (the
    image edge-padded by its border so the network sees plausible pixels there), in one
    piece and differentiably; clipped to [0, 1].

    Shape: (B, 3, H, W) in [0, 1] -> (B, 3, scale*H, scale*W).
    """
    net = network(scale).to(images.device)
    b, s = BORDER, scale
    padded = F.pad(images, (b, b, b, b), mode="replicate")
    return net(padded)[..., b * s:-b * s, b * s:-b * s].clamp(0, 1)
