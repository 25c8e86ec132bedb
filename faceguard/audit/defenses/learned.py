"""Learned purifiers: networks trained to redraw clean faces (MagNet's reformer,
:mod:`faceguard.audit.purifier`; A-VAE, :mod:`faceguard.audit.avae`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from faceguard.audit.defenses.base import _check_images, _check_range


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


@dataclass(frozen=True)
class AVAE:
    """A-VAE: a generator trained on other people's faces redraws the face from a 32 px
    copy of it; of ``samples`` drawings it keeps the one nearest to the photo.

    With ``landmarks`` the face is aligned (ArcFace template at 128 px), redrawn and
    pasted back with a feathered edge; without, each image is taken as an aligned face
    (e.g. a 112 px crop) and redrawn whole. See :mod:`faceguard.audit.avae` and
    ``faceguard/resources/avae.md``.

    Args:
        samples: drawings per face (the paper uses 1000 at test time; each costs one
            decoder pass).
        tau: the KL threshold the latent codes are clipped to (the paper's 0.03).
        seed: seeds the drawings, so the defense is deterministic.
        weights: path of a weights file; empty string = the shipped one.

    Paper: Zhou, Liang and Chen, "Manifold projection for adversarial defense on face
    recognition", ECCV 2020. Limits: Athalye, Carlini and Wagner, "Obfuscated gradients
    give a false sense of security", ICML 2018 (a generative projection can be attacked
    through it); our weights were trained for minutes on 592 faces, not the paper's
    140,000 steps on CASIA-WebFace, so they redraw faces blurrier than the paper's.
    """

    samples: int = 32
    tau: float = 0.03
    seed: int = 0
    weights: str = ""

    aligns = True  # takes the face's landmarks (see base.defend_face)

    def __post_init__(self) -> None:
        from faceguard.audit.avae import load_avae

        _check_range("samples", self.samples, 1, integer=True)
        _check_range("tau", self.tau, 0.0, low_inclusive=False)
        load_avae(self.weights or None)  # fail now, not in the middle of an audit

    def __call__(self, images: Tensor, landmarks: np.ndarray | None = None) -> Tensor:
        import torch.nn.functional as F

        from faceguard.align import face_transform, paste_back, warp
        from faceguard.audit.avae import OUTPUT_PX, load_avae, project
        from faceguard.device import pick_device
        from faceguard.models.human import arcface_template

        _check_images(images)
        device = pick_device()  # the GPU when there is one
        net = load_avae(self.weights or None, device)
        x = images.detach().to(device, torch.float32).clamp(0, 1)
        template = arcface_template(OUTPUT_PX)  # the generator's 128 px faces
        marks = None if landmarks is None else np.broadcast_to(landmarks, (len(x), 5, 2))

        def redraw(face: Tensor) -> Tensor:  # each face its own draws: batch-independent
            gen = torch.Generator().manual_seed(self.seed)
            return project(net, face, self.samples, self.tau, gen)

        out = []
        with torch.no_grad():
            for k in range(len(x)):
                image = x[k:k + 1]
                if marks is None:
                    out.append(F.interpolate(redraw(image), size=x.shape[-2:], mode="bilinear",
                                             antialias=True, align_corners=False))
                else:
                    t = face_transform(marks[k], template)
                    out.append(paste_back(image, redraw(warp(image, t, OUTPUT_PX)), t))
        return torch.cat(out).clamp(0, 1).to(images.device, images.dtype).contiguous()
