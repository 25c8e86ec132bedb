"""Learned purifiers: a network trained to redraw clean faces (see
:mod:`faceguard.audit.purifier` for the network and its weights)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from faceguard.audit.defenses.base import _check_images


@dataclass(frozen=True)
class Purifier:
    """A learned purifier: MagNet-style autoencoder trained to redraw clean faces.

    Fully convolutional (any size, no resizing); see :mod:`faceguard.audit.purifier` and
    ``faceguard/resources/purifier.md`` for how the shipped weights were made.

    Args:
        weights: path of a weights file; empty string = the shipped one.

    Paper: Meng and Chen, "MagNet: a two-pronged defense against adversarial examples",
    CCS 2017; Haque and Kang, "Advanced generative adversarial defense model using
    instance sparsity mapping network", J. KIIT 2021. Limits: Carlini and Wagner, "MagNet
    and 'Efficient defenses against adversarial attacks' are not robust to adversarial
    examples", arXiv:1711.08478, 2017.
    """

    weights: str = ""

    def __post_init__(self) -> None:
        from faceguard.audit.purifier import load_purifier

        load_purifier(self.weights or None)  # fail now, not in the middle of an audit

    def __call__(self, images: Tensor) -> Tensor:
        from faceguard.audit.purifier import load_purifier

        _check_images(images)
        net = load_purifier(self.weights or None)
        with torch.no_grad():
            out = net(images.detach().to("cpu", torch.float32).clamp(0, 1))
        return out.clamp(0, 1).to(images.device, images.dtype).contiguous()
