"""Iterative signed-gradient cloaks: PGD / BIM and MI-FGSM."""

from __future__ import annotations

import torch

from faceguard.cloak.base import CHROMA, Cloak, gradient, satisfied


class PGD(Cloak):
    r"""Projected gradient descent in L-inf (BIM when ``random_start=False``).

    .. math:: x_{N+1} = \mathrm{Clip}_{x,\epsilon}\{x_N + \alpha\,\mathrm{sign}(\nabla_x J(x_N))\}

    Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (2018);
    BIM: Kurakin et al., "Adversarial examples in the physical world" (2017).

    Args:
        eps: maximum perturbation (default 8/255).
        alpha: step size (default 2.5 * eps / steps, so the walk can reach the border).
        steps: iterations (default 20).
        random_start: start from a uniform point in the eps-ball (PGD) or from x (BIM).

    Shape:
        images: (B, 3, H, W) in [0, 1]; objective: images -> (B,).

    Example:
        >>> cloaked = PGD(eps=8 / 255, steps=20)(images, objective)
    """

    def __init__(self, eps: float = 8 / 255, alpha: float | None = None, steps: int = 20,
                 random_start: bool = True, chroma: float | None = CHROMA) -> None:
        super().__init__(eps, chroma)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.alpha = alpha if alpha is not None else 2.5 * eps / steps
        self.steps = steps
        self.random_start = random_start

    def perturb(self, images, objective, budget, generator, on_step):
        x = images
        if self.random_start:
            noise = torch.rand(images.shape, generator=generator, dtype=images.dtype)
            x = self.project(images + (noise.to(images) * 2 - 1) * budget, images, budget)
        step = budget * (self.alpha / self.eps)
        for i in range(self.steps):
            _, grad = gradient(objective, x)
            if satisfied(objective, len(x)):
                break
            x = self.project(x + step * grad.sign(), images, budget)
            on_step(i + 1, self.steps)
        return x


class BIM(PGD):
    """Basic Iterative Method: PGD without the random start (Kurakin et al. 2017)."""

    def __init__(self, eps: float = 8 / 255, alpha: float | None = None, steps: int = 20,
                 chroma: float | None = CHROMA) -> None:
        super().__init__(eps, alpha, steps, random_start=False, chroma=chroma)


class MIFGSM(Cloak):
    r"""Momentum iterative FGSM (Dong et al., "Boosting Adversarial Attacks with Momentum", 2018).

    .. math:: g_{N+1} = \mu g_N + \frac{\nabla_x J(x_N)}{\|\nabla_x J(x_N)\|_1},\quad
              x_{N+1} = \mathrm{Clip}_{x,\epsilon}\{x_N + \alpha\,\mathrm{sign}(g_{N+1})\}

    The L-inf form of the paper (the trajectory-detector paper also ran an L2 form);
    momentum stabilises the direction and helps transfer to unseen recognizers.

    Args:
        eps: maximum perturbation (default 8/255).
        alpha: step size (default eps / steps, as in the paper).
        steps: iterations (default 20).
        decay: momentum factor mu (default 1.0).

    Shape:
        images: (B, 3, H, W) in [0, 1]; objective: images -> (B,).
    """

    def __init__(self, eps: float = 8 / 255, alpha: float | None = None, steps: int = 20,
                 decay: float = 1.0, chroma: float | None = CHROMA) -> None:
        super().__init__(eps, chroma)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.alpha = alpha if alpha is not None else eps / steps
        self.steps = steps
        self.decay = decay

    def perturb(self, images, objective, budget, generator, on_step):
        x = images
        momentum = torch.zeros_like(images)
        step = budget * (self.alpha / self.eps)
        for i in range(self.steps):
            _, grad = gradient(objective, x)
            if satisfied(objective, len(x)):
                break
            grad = grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
            momentum = self.decay * momentum + grad
            x = self.project(x + step * momentum.sign(), images, budget)
            on_step(i + 1, self.steps)
        return x
