"""The face recognizer interface every model in the zoo implements."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

Distance = Literal["euclidean", "cosine"]


class Recognizer(nn.Module):
    """A differentiable face recognizer.

    Subclasses set the attributes below and implement :meth:`forward` (raw network
    output) and :meth:`layers`.

    Attributes:
        name: registry name, e.g. ``"dlib"``.
        input_size: side of the square aligned face the network takes, in pixels.
        template: (5, 2) float array: where the 5 MTCNN landmarks (left eye, right
            eye, nose tip, left mouth corner, right mouth corner; "left" as seen in
            the photo) sit in the aligned face, in ``input_size`` pixel coordinates.
        distance: how embeddings are compared.
        threshold: same-person threshold on that distance (below = same person).
        family: the independent model family (a fine-tuned variant shares its parent's
            family, so it never counts as a held-out model for a cloak made on the parent).
    """

    name: str = ""
    family: str = ""
    input_size: int = 0
    template: np.ndarray
    distance: Distance = "euclidean"
    threshold: float = 0.0

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        """Embed aligned faces.

        Args:
            faces: (B, 3, input_size, input_size) RGB in [0, 1], aligned to ``template``.

        Returns:
            (B, D) embeddings, as the model's own metric expects them (not normalised
            unless the model normalises).
        """
        return self(faces)

    def layers(self) -> dict[str, nn.Module]:
        """The intermediate blocks, in forward order, for forward hooks.

        Each block's output is a (B, C, H, W) or (B, D) tensor; the trajectory detector
        average-pools each to a vector.
        """
        raise NotImplementedError

    def residual_branches(self) -> list[nn.Module]:
        """The last module of each residual branch (the block's output is its output plus
        the block's input): where the ``skip`` transfer lever scales the gradient. Empty
        for a network that is not residual, or whose branches are not modules."""
        return []

    def compare(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distance between embeddings (..., D) x (..., D) -> (...) in this model's metric."""
        if self.distance == "cosine":
            return 1 - nn.functional.cosine_similarity(a, b, dim=-1)
        return (a - b).norm(dim=-1)

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(Na, D) x (Nb, D) -> (Na, Nb): :meth:`compare` of every pair, without the
        (Na, Nb, D) array that broadcasting ``compare`` makes (8 GB for 2000 faces of
        512 values: grouping an album that large was killed for want of memory)."""
        if self.distance == "cosine":
            a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
            b = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
            return 1 - a @ b.T
        return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, input_size={self.input_size}, "
            f"distance={self.distance!r}, threshold={self.threshold}"
        )
