"""FGSM: one signed-gradient step (Goodfellow et al. 2015), the seed paper's white-box cloak."""

from __future__ import annotations

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
        on_step(1, 1)
        return self.project(images + budget * grad.sign(), images, budget)
