"""Perceptual cloak: as strong as possible while the face stays as invisible as asked.

Sign-gradient methods (FGSM, PGD) push almost every pixel to +-eps, the most visible
way to spend a budget. This cloak instead optimises the perturbation with Adam and
pays a penalty whenever the face's SSIMULACRA2 (a colour-aware measure of how visible
a change is; :mod:`faceguard.visibility`) drops below a floor, so the change goes
where the eye does not see it (texture, edges, brightness rather than colour) and
smooth skin stays smooth. It returns the strongest step that kept the floor. The
L-inf cap and the colour guard (:func:`faceguard.cloak.base.project`) still hold at
every pixel.

Related: Fawkes (Shan et al., USENIX Security 2020) bounds its cloak by DSSIM; LowKey
(Cherepanova et al., ICLR 2021) by LPIPS; SSIMULACRA2 is Sneyers (Cloudinary, 2022).
"""

from __future__ import annotations

import math

import torch

from faceguard.cloak.base import CHROMA, Cloak, satisfied
from faceguard.cloak.budget import changing_box
from faceguard.cloak.transforms import Box
from faceguard.visibility.differentiable import Reference, prepare, ssimulacra2


class PerceptualCloak(Cloak):
    r"""Adam on the perturbation, with a face SSIMULACRA2 floor and an L-inf cap.

    Each step maximises ``objective(x) - weight * max(0, floor + margin - S(x0, x))``,
    where S is SSIMULACRA2 of the face (the bounding box of the non-zero budget, grown
    by a random margin each step: see :func:`_window`), then projects into the budget.
    Of all iterates it keeps the one with the highest objective among those with
    ``S >= floor`` (given the window a later guard scores, ``judged``, there as well;
    the last iterate when none did, for that guard to scale back), and stops early
    once the objective is satisfied (every recognizer past its margin under every draw)
    while the floor holds. Distance measures: L-inf
    (hard), SSIMULACRA2 (soft: the score moves by a few points with the window it is
    measured in, so
    :func:`faceguard.cloak.budget.keep_visible` has the last word on the face region).

    Args:
        eps: L-inf cap (default 16/255: larger than sign methods need, as the floor keeps
            the change where it does not show).
        steps: Adam steps (default 60).
        floor: the least face SSIMULACRA2 (default 75: about JPEG quality 65).
        weight: penalty per SSIMULACRA2 point below the floor (default 0.05, in the
            objective's units: a threshold's worth of distance costs 20 points; a larger
            weight wastes budget: 1 lost 12 points of protection on celeb24).
        margin: points above the floor the walk aims for, so rounding to 8 bits keeps it.
        lr: Adam's first learning rate (default eps / 8); from a cold start it anneals
            to a tenth of that over the steps (:func:`annealed`).
        chroma: the colour guard (chroma budget as a fraction of eps).

    Shape:
        images: (B, C, H, W) in [0, 1], H and W >= 8 where the budget is non-zero;
        objective: images -> (B,).

    Example:
        >>> cloaked = PerceptualCloak(eps=16 / 255, floor=75)(images, objective, weight)
    """

    def __init__(self, eps: float = 16 / 255, steps: int = 60, floor: float = 75.0,
                 weight: float = 0.05, margin: float = 0.5, lr: float | None = None,
                 chroma: float | None = CHROMA) -> None:
        super().__init__(eps, chroma)
        if steps < 1 or not 0 < floor <= 100 or weight < 0:
            raise ValueError("steps must be >= 1, floor in (0, 100] and weight >= 0")
        self.steps = steps
        self.floor = floor
        self.weight = weight
        self.margin = margin
        self.lr = lr if lr is not None else eps / 8

    warm_start = True
    judges = True

    def perturb(self, images, objective, budget, generator, on_step, start=None, judged=None):
        extent = changing_box(budget)
        if extent is None:
            return images
        # a small random start: from exactly x0 the first gradient can vanish
        noise = torch.rand(images.shape, generator=generator, dtype=images.dtype)
        delta = (noise.to(images) * 2 - 1) * 0.05 * budget
        if start is not None:  # a warm start (a person's mask): refine it
            delta = self.project(start + delta, images, budget) - images
        delta.requires_grad_(True)
        best = images.clone()
        best_gain = torch.full((len(images),), -torch.inf, device=images.device)
        opt = Adam(delta, lr=self.lr)
        if judged is not None:  # the originals' side of the judged window's score, once
            with torch.no_grad():
                reference = prepare(_rgb(images[..., judged[0], judged[1]]),
                                    _box_in(extent, judged))
        seen = torch.full((len(images),), -torch.inf, device=images.device)  # not scored yet
        for step in range(self.steps + 1):
            x = (images + delta).clamp(0, 1)
            rows, cols = _window(extent, images.shape[-2:], generator)
            seen, penalty = self._visibility(images[..., rows, cols], x[..., rows, cols], seen,
                                             _box_in(extent, (rows, cols)))
            gain = objective(x)
            with torch.no_grad():  # the iterate as it is now: the best that keeps the floor?
                # (not the cold start's small noise: a face whose every later iterate
                # went below the floor came back with 0.3 grey levels of noise, unchanged
                # once rounded, and counted as cloaked)
                better = (seen >= self.floor) & (gain > best_gain) & (step > 0 or
                                                                      start is not None)
                if judged is not None and better.any():
                    better &= self._holds(reference, x[..., judged[0], judged[1]])
                best[better], best_gain[better] = x[better].detach(), gain[better].detach()
            enough = satisfied(objective, len(x)) and bool((seen >= self.floor).all())
            if step == self.steps or enough:
                break
            delta.grad = None
            (-(gain - self.weight * penalty).sum()).backward()
            # a warm start is refined in a few steps at the full rate: annealed, a person's
            # mask refined for 10 steps moved too little (see :func:`annealed`)
            opt.lr = self.lr * (annealed(step, self.steps) if start is None else 1.0)
            opt.step()
            with torch.no_grad():
                delta.copy_(self.project(images + delta, images, budget) - images)
            on_step(step + 1, self.steps)
        # a face no iterate of which kept the floor (a few steps, each too large for it):
        # its last iterate, which the visibility guard
        # (:func:`faceguard.cloak.budget.keep_visible`) scales back to the floor
        missed = best_gain == -torch.inf
        best[missed] = x[missed].detach()
        return best

    def _holds(self, reference: Reference, x: torch.Tensor) -> torch.Tensor:
        """(B,) whether each face of ``x`` (B, C, h, w), the window a later guard scores,
        keeps the floor there too (``reference``: the originals' side of its score).

        The score moves by several points with the window, most where the walk presses
        against the floor: the best of the iterates that passed their random window was
        often one whose window was lenient (a 179 px face by a photo's edge scored 64.9 on
        the face box the guard scores, which then scaled the change by 0.74). Even a face
        far above the floor in its window is scored: a brightened square scored 84-88 in
        every window and 57.5 on the whole image.
        """
        return ssimulacra2(reference, _rgb(x)) >= self.floor

    def _visibility(self, original: torch.Tensor, x: torch.Tensor, last: torch.Tensor,
                    changed: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) face SSIMULACRA2 of ``x`` (the window scored) and (B,) the penalty;
        ``changed``: the box (x0, y0, x1, y1) of the window the cloak may change.

        A face whose last score (``last``, (B,)) was more than :data:`_SLACK` points
        above where the penalty starts is scored without gradients (half the cost, and
        no backward pass): its penalty is zero, and so is its gradient. The others are
        scored with gradients, as every face was before.
        """
        near = last < self.floor + self.margin + _SLACK
        far = ~near
        seen, penalty = torch.empty_like(last), torch.zeros_like(last)
        if far.any():
            with torch.no_grad():
                seen[far] = ssimulacra2(_rgb(original[far]), _rgb(x[far]), changed=changed)
        if near.any():
            close = ssimulacra2(_rgb(original[near]), _rgb(x[near]), changed=changed)
            seen[near] = close.detach()
            penalty[near] = (self.floor + self.margin - close).clamp_min(0)
        return seen, penalty


def annealed(step: int, steps: int, last: float = 0.1) -> float:
    """The share of the first learning rate at ``step`` (from 0) of ``steps``: cosine
    annealing (Loshchilov and Hutter, "SGDR", ICLR 2017) from 1 to ``last`` at the last step.

    The walk presses against the visibility floor; with a constant rate it overshoots it
    and back, and the best iterate that kept the floor is a step short of it. Annealed, it
    settles along the floor: on 13 album faces (benchmarks/album_distances.py, paired) the
    cloak ended further from its person on faceres for all 13 (+0.06 threshold units on
    average; dlib +0.03 on 11, mobileface +0.01 on 10), a linear decay much the same; at
    30 steps it gains nothing (benchmarks/results/album-distances-annealed.json). A warm
    start refined in a few steps keeps the full rate: a person's mask refined for 10
    annealed steps left 37 / 46 / 20% of the album's faces unmatched white-box (dlib /
    mobileface / faceres; benchmarks/results/protection-album-person-mask-annealed.json),
    where the constant rate had left 60 / 57 / 26% (protection-album-person-mask.json).
    """
    if steps <= 1:
        return 1.0
    return last + (1 - last) * 0.5 * (1 + math.cos(math.pi * min(step / (steps - 1), 1.0)))


class Adam:
    """Adam (Kingma and Ba, ICLR 2015) on one tensor, step for step what
    ``torch.optim.Adam([param], lr)`` does on the CPU with its defaults: torch's optimizers
    import torch._dynamo when the first is made (2.3 s of a process's first cloak on a slow
    day's 2 cores)."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.steps = 0
        self.mean = torch.zeros_like(param)  # of the gradient
        self.square = torch.zeros_like(param)  # mean of its square

    @torch.no_grad()
    def step(self) -> None:
        """One step against ``param.grad`` (a gradient to descend)."""
        (b1, b2), grad = self.betas, self.param.grad
        self.steps += 1
        self.mean.lerp_(grad, 1 - b1)
        self.square.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        bias1, bias2 = 1 - b1**self.steps, 1 - b2**self.steps
        denom = (self.square.sqrt() / bias2**0.5).add_(self.eps)
        self.param.addcdiv_(self.mean, denom, value=-self.lr / bias1)


#: points above where the penalty starts beyond which a face's next step is scored
#: without gradients; a step moves the score by less (a face that crosses anyway goes
#: one step without the penalty's pull, and the best iterate is chosen on the true score)
_SLACK = 3.0

#: SSIMULACRA2 halves the image five times: its 2x2 grid repeats every 32 pixels; the
#: scored window grows by up to twice that on each side
_GRID = 32
_GROWTH = 2 * _GRID


def _window(extent: Box, size: tuple[int, int], generator: torch.Generator | None) -> Box:
    """Rows and columns to score: the changed extent (rows, cols) grown by a random
    0-63 pixels on each side (within ``size``).

    A fixed window lets the optimiser fit its change to the metric's downsampling grid:
    a cloak at 85 in its own window scored 58-83 in windows a few pixels larger. Drawing
    the window anew each step takes that away, so the score holds wherever it is
    measured.
    """
    def grow(lo: int, hi: int, n: int) -> slice:
        before = int(torch.randint(0, min(_GROWTH, lo + 1), (1,), generator=generator))
        after = int(torch.randint(0, min(_GROWTH, n - hi + 1), (1,), generator=generator))
        start, stop = lo - before, hi + after
        return slice(start, max(stop, min(n, start + 8)))

    (y0, y1), (x0, x1) = ((part.start, part.stop) for part in extent)
    return grow(y0, y1, size[0]), grow(x0, x1, size[1])


def _box_in(extent: Box, window: Box) -> tuple[int, int, int, int]:
    """The changed ``extent`` (rows, cols) as a box (x0, y0, x1, y1) in the pixels of
    ``window`` (rows, cols), for SSIMULACRA2 to map only around it (clipped there)."""
    (y0, y1), (x0, x1) = ((part.start, part.stop) for part in extent)
    dy, dx = window[0].start, window[1].start
    return x0 - dx, y0 - dy, x1 - dx, y1 - dy


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Grey (B, 1, H, W) as three equal channels, for the colour metric."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
