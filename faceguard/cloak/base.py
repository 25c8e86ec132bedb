"""The Cloak interface: an attack that perturbs images within a per-pixel L-inf budget.

A cloak sees only pixels and an objective: ``objective(images) -> (B,)`` losses that
grow as the faces become less recognisable (see :mod:`faceguard.cloak.objectives`).
The budget is ``eps * weight``: ``weight`` (B, 1, H, W) in [0, 1] is 1 on the face,
feathered to 0 at its edge, optionally shaped by texture (:mod:`faceguard.cloak.budget`),
so the L-inf bound ``|cloaked - original| <= eps`` holds at every pixel.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Objective = Callable[[torch.Tensor], torch.Tensor]


class Cloak:
    """Base class: hyper-parameters are attributes and ``repr`` shows them (torchattacks style).

    Args:
        eps: L-inf budget in [0, 1] pixel units (4/255 is 4 grey levels).
    """

    def __init__(self, eps: float) -> None:
        if not 0 < eps <= 1:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        self.eps = eps

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    def __call__(
        self,
        images: torch.Tensor,
        objective: Objective,
        weight: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Cloak ``images``.

        Args:
            images: (B, 3, H, W) in [0, 1].
            objective: images -> (B,) losses to increase.
            weight: (B, 1, H, W) in [0, 1] scaling the budget per pixel; 1 if None.
            generator: random source for methods with a random start (reproducibility).

        Returns:
            (B, 3, H, W) cloaked images with ``|out - images| <= eps * weight``.
        """
        images = images.detach()
        if weight is None:
            weight = torch.ones_like(images[:, :1])
        budget = self.eps * weight.to(images)
        with torch.enable_grad():
            return self.perturb(images, objective, budget, generator).detach()

    def perturb(self, images, objective, budget, generator) -> torch.Tensor:
        raise NotImplementedError


def gradient(objective: Objective, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(losses (B,), d sum(losses) / d images)."""
    x = images.detach().requires_grad_(True)
    losses = objective(x)
    (grad,) = torch.autograd.grad(losses.sum(), x)
    return losses.detach(), grad


def project(images: torch.Tensor, original: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
    """Clip into the per-pixel budget around ``original`` and into the [0, 1] range."""
    delta = torch.maximum(torch.minimum(images - original, budget), -budget)
    return (original + delta).clamp(0, 1)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)
