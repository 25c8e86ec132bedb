"""P-FGSM: private FGSM towards an adaptively chosen decoy class."""

from __future__ import annotations

import torch

from faceguard.cloak.base import CHROMA, Cloak, gradient
from faceguard.cloak.objectives import ClassifierObjective, pfgsm_target


class PFGSM(Cloak):
    r"""Private Fast Gradient Sign Method (Li, Sanchez-Matilla, Cavallaro, "Scene Privacy
    Protection", ICASSP 2019; section 3.1.1 of the restoration-defense paper).

    The decoy class :math:`\hat y` is drawn from the classes beyond the cumulative
    probability threshold sigma of the sorted prediction (:func:`pfgsm_target`); then

    .. math:: \hat I_N = \mathrm{Clip}_{I,\epsilon}\{\hat I_{N-1}
              - \alpha\,\mathrm{sign}(\nabla_I J_M(\theta, \hat I_{N-1}, \hat y))\}

    until the decoy's probability reaches ``target_probability`` or ``max_steps``.
    Needs the local face classifier (a :class:`ClassifierObjective`). Distance: L-inf.

    Args:
        eps: maximum perturbation (default 8/255).
        alpha: step size (default eps / 10).
        sigma: cumulative-probability threshold for the decoy (default 0.99).
        max_steps: iteration limit (default 20).
        target_probability: stop once every face reaches this decoy probability.

    Shape:
        images: (B, 3, H, W) in [0, 1]; the objective's ``label`` is the true class.
    """

    def __init__(self, eps: float = 8 / 255, alpha: float | None = None, sigma: float = 0.99,
                 max_steps: int = 20, target_probability: float = 0.99,
                 chroma: float | None = CHROMA) -> None:
        super().__init__(eps, chroma)
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.alpha = alpha if alpha is not None else eps / 10
        self.sigma = sigma
        self.max_steps = max_steps
        self.target_probability = target_probability

    def perturb(self, images, objective, budget, generator, on_step):
        if not isinstance(objective, ClassifierObjective):
            raise TypeError("P-FGSM needs the local face classifier (a ClassifierObjective)")
        with torch.no_grad():
            probs = objective.probabilities(images).mean(0)
        target = pfgsm_target(probs, objective.label, self.sigma, generator)
        targeted = ClassifierObjective(objective.ensemble, objective.landmarks,
                                       objective.classifier, objective.label, target,
                                       objective.transform, objective.samples,
                                       objective.jitter)
        step = budget * (self.alpha / self.eps)
        x = images
        for i in range(self.max_steps):
            # the targeted loss is -CE(target): ascending it descends CE towards the decoy
            _, grad = gradient(targeted, x)
            x = self.project(x + step * grad.sign(), images, budget)
            on_step(i + 1, self.max_steps)
            with torch.no_grad():
                if (targeted.probabilities(x)[:, target] >= self.target_probability).all():
                    break
        return x
