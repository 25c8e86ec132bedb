"""FGSM: one signed-gradient step (Goodfellow et al. 2015), the seed paper's white-box cloak."""

from __future__ import annotations

import torch

from faceguard.cloak.base import CHROMA, Cloak, gradient


class FGSM(Cloak):
    r"""Fast Gradient Sign Method, exactly eq. (1) of the seed paper:

    .. math:: x_{adv} = x + \epsilon \cdot \mathrm{sign}(\nabla_x J(\theta, x, y))

    "Explaining and Harnessing Adversarial Examples", Goodfellow, Shlens, Szegedy (2015);
    Jagadeesha, "Facial Privacy Preservation using FGSM and Universal Perturbation attacks".
    Distance measure: L-inf.

    Args:
        eps: maximum perturbation (default 8/255).

    Shape:
        images: (B, 3, H, W) in [0, 1]; objective: images -> (B,).

    Example:
        >>> cloak = FGSM(eps=8 / 255)
        >>> cloaked = cloak(images, objective)
    """

    def __init__(self, eps: float = 8 / 255, chroma: float | None = CHROMA) -> None:
        super().__init__(eps, chroma)

    def perturb(self, images, objective, budget, generator, on_step):
        _, grad = gradient(objective, images)
        flat = grad.flatten(1).abs().amax(1) == 0  # (B,)
        start = images
        if flat.any():
            # a face pushed from its own clean template (--protect-all) sits at the
            # distance's minimum, where the gradient is zero and eq. (1) changes nothing:
            # there, R+FGSM's random step of half the budget first (Tramer et al.,
            # "Ensemble Adversarial Training", 2018), and the gradient from that point
            noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
            moved = self.project(images + budget / 2 * noise.to(images).sign(), images, budget)
            start = torch.where(flat[:, None, None, None], moved, images)
            _, grad = gradient(objective, start)
        on_step(1, 1)
        return self.project(start + budget * grad.sign(), images, budget)
