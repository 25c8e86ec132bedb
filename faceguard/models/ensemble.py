"""Several recognizers seeing the same photo, each through its own alignment warp."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from faceguard.align import face_transform, warp
from faceguard.models.base import Recognizer

#: a random differentiable transform of aligned faces (B, 3, s, s) -> same (EOT)
FaceTransform = Callable[[torch.Tensor], torch.Tensor]


class Ensemble(nn.Module):
    """A list of recognizers that embed faces straight from photo pixels.

    Args:
        recognizers: the members, e.g. ``[load_recognizer("dlib"), ...]``.

    Example:
        >>> ens = Ensemble([load_recognizer("dlib"), load_recognizer("mobileface")])
        >>> embeddings = ens.embed(photo, landmarks)  # {"dlib": (1, 128), ...}
    """

    def __init__(self, recognizers: Sequence[Recognizer]) -> None:
        super().__init__()
        if not recognizers:
            raise ValueError("an ensemble needs at least one recognizer")
        self.members = nn.ModuleDict({r.name: r for r in recognizers})

    @classmethod
    def load(cls, names: Sequence[str], device: str | None = None) -> Ensemble:
        """An ensemble of installed recognizers (raises ModelError if one is missing)."""
        from faceguard.models.registry import load_recognizer

        return cls([load_recognizer(n, device) for n in names])

    @property
    def names(self) -> list[str]:
        return list(self.members)

    @property
    def device(self) -> torch.device:
        """Where the recognizers' weights are (inputs are moved there)."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def __getitem__(self, name: str) -> Recognizer:
        return self.members[name]

    def __iter__(self):
        return iter(self.members.values())

    def __len__(self) -> int:
        return len(self.members)

    def align(self, images: torch.Tensor, landmarks: np.ndarray) -> dict[str, torch.Tensor]:
        """Aligned faces per member.

        Args:
            images: (B, 3, H, W) photos (or photo regions) in [0, 1].
            landmarks: (5, 2) or (B, 5, 2) landmarks in those images' pixels.

        Returns:
            name -> (B, 3, s, s) faces aligned to that member's template.
        """
        marks = np.broadcast_to(landmarks, (images.shape[0], 5, 2))
        images = images.to(self.device)
        out = {}
        for r in self:
            transforms = np.stack([face_transform(m, r.template) for m in marks])
            out[r.name] = warp(images, transforms, r.input_size)
        return out

    def embed_aligned(
        self, faces: dict[str, torch.Tensor], transform: FaceTransform | None = None
    ) -> dict[str, torch.Tensor]:
        """name -> (B, D) embeddings of already aligned faces (optionally transformed first)."""
        return {
            name: self.members[name].embed(transform(x) if transform else x)
            for name, x in faces.items()
        }

    def embed(
        self,
        images: torch.Tensor,
        landmarks: np.ndarray,
        transform: FaceTransform | None = None,
    ) -> dict[str, torch.Tensor]:
        """name -> (B, D) embeddings of the faces at ``landmarks`` in ``images``."""
        return self.embed_aligned(self.align(images, landmarks), transform)
