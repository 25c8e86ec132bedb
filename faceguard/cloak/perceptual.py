"""Perceptual cloak: as strong as possible while the face keeps a chosen SSIM.

Sign-gradient methods (FGSM, PGD) push almost every pixel to +-eps, the most visible
way to spend a budget. This cloak instead optimises the perturbation with Adam and
pays a penalty whenever the face's structural similarity to the original drops below
a floor, so the change goes where it costs little SSIM (texture, edges) and smooth
skin stays smooth. The L-inf bound still holds at every pixel.

Related: Fawkes (Shan et al., USENIX Security 2020) bounds its cloak by DSSIM; SSIM is
Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
structural similarity" (IEEE TIP 2004).
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F

from faceguard.cloak.base import Cloak, project


@cache
def _gaussian_window(sigma: float = 1.5, size: int = 11) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel, per-channel SSIM of two images (B, C, H, W) in [0, 1], differentiable.

    Gaussian window (sigma 1.5, 11 taps), constants (0.01, 0.03)^2 as in Wang et al.
    """
    c = a.shape[1]
    g = _gaussian_window().to(a)
    kx, ky = g.view(1, 1, 1, -1).expand(c, 1, 1, -1), g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    pad = g.numel() // 2

    def blur(z: torch.Tensor) -> torch.Tensor:
        z = F.pad(z, (pad, pad, pad, pad), mode="replicate")
        return F.conv2d(F.conv2d(z, kx, groups=c), ky, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1)
                                                        * (var_a + var_b + c2))


class PerceptualCloak(Cloak):
    r"""Adam on the perturbation, with an SSIM floor on the face and an L-inf bound.

    Each step maximises ``objective(x) - weight * max(0, floor - SSIM_face(x, x0))``
    where SSIM_face averages the SSIM map over the face (where the budget is not
    zero), then clips to the per-pixel budget. Distance measures: L-inf (hard) and
    SSIM (soft).

    Args:
        eps: L-inf bound (default 16/255: larger than sign methods need, as the SSIM
            floor keeps the change where it does not show).
        steps: Adam steps (default 60).
        ssim: the SSIM floor on the face (default 0.96).
        weight: penalty per unit of SSIM below the floor (default 100).
        lr: Adam learning rate (default eps / 8).

    Shape:
        images: (B, C, H, W) in [0, 1]; objective: images -> (B,).

    Example:
        >>> cloaked = PerceptualCloak(eps=16 / 255, ssim=0.96)(images, objective, weight)
    """

    def __init__(self, eps: float = 16 / 255, steps: int = 60, ssim: float = 0.96,
                 weight: float = 100.0, lr: float | None = None) -> None:
        super().__init__(eps)
        if steps < 1 or not 0 < ssim <= 1 or weight < 0:
            raise ValueError("steps must be >= 1, ssim in (0, 1] and weight >= 0")
        self.steps = steps
        self.ssim = ssim
        self.weight = weight
        self.lr = lr if lr is not None else eps / 8

    def perturb(self, images, objective, budget, generator):
        # a small random start: from exactly x0 the first gradient can vanish
        noise = torch.rand(images.shape, generator=generator, dtype=images.dtype)
        delta = ((noise.to(images) * 2 - 1) * 0.1 * budget).requires_grad_(True)
        # SSIM only where the face is (plus the window's reach): the rest cannot change
        ys, xs = torch.nonzero((budget > 0).any(0).any(0), as_tuple=True)
        if len(ys) == 0:
            return images
        pad = _gaussian_window().numel()
        rows = slice(max(0, int(ys.min()) - pad), int(ys.max()) + pad + 1)
        cols = slice(max(0, int(xs.min()) - pad), int(xs.max()) + pad + 1)
        clean = images[..., rows, cols]
        face = (budget[..., rows, cols] > 0).to(images).expand_as(clean)
        area = face.sum(dim=(1, 2, 3)).clamp_min(1)
        opt = torch.optim.Adam([delta], lr=self.lr)
        for _ in range(self.steps):
            x = (images + delta).clamp(0, 1)
            similarity = (ssim_map(x[..., rows, cols], clean) * face).sum(dim=(1, 2, 3)) / area
            gain = objective(x) - self.weight * (self.ssim - similarity).clamp_min(0)
            opt.zero_grad()
            (-gain.sum()).backward()
            opt.step()
            with torch.no_grad():
                delta.copy_(project(images + delta, images, budget) - images)
        return project(images + delta.detach(), images, budget)
