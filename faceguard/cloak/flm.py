"""FLM: a geometric cloak that moves the face's features by a pixel or two.

Dabouei, Soleymani, Dawson and Nasrabadi, "Fast geometrically-perturbed adversarial
faces", WACV 2019 (the seed's FLM attack; restoration paper, section 3.1.2, eq. 8):
the landmarks x_i move by a displacement f_i found from the sign of the gradient of
the recognizer's loss, iteratively, and the face is warped through a smooth
displacement field that carries each landmark to x_i + f_i.

Here the "landmarks" are a coarse grid of control points over the face (MTCNN gives
only five landmarks, too few to reshape a face smoothly; the paper interpolates 68 by a
thin-plate spline): the field is the control displacements upsampled bicubically, so
it is smooth, and faded out by the budget's feathered weight, so nothing moves outside
the face. No control point moves by more than ``shift`` (a fraction of the face's
width), so no pixel does.

A geometric change costs no colour and survives JPEG, blur and super-resolution better
than a pattern of pixel changes. ``additive=True`` is the hybrid: the warp and an
additive PGD-style change are optimised together.

The warp is bounded by ``shift``, not by eps: moving an edge by a pixel changes the
pixels along it by more than any eps, which is a change of shape the eye hardly sees
as such, not noise. The additive part of the hybrid keeps the pixel budget (L-inf and
the colour guard, :func:`faceguard.cloak.base.project`); how visible the whole is, is
measured and bounded like every cloak's (the visibility floor of
:func:`faceguard.cloak.budget.keep_visible`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faceguard.cloak.base import CHROMA, Cloak


def warp_by(images: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """Warp (B, C, H, W) images by a displacement field (B, 2, H, W) in pixels (x, y):
    output pixel p samples the input at p + field(p). A zero field returns the images."""
    b, _, h, w = images.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=images.dtype, device=images.device),
                            torch.arange(w, dtype=images.dtype, device=images.device),
                            indexing="ij")
    x = (xs + field[:, 0] + 0.5) * (2 / w) - 1  # pixel centres -> [-1, 1]
    y = (ys + field[:, 1] + 0.5) * (2 / h) - 1
    grid = torch.stack([x, y], -1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


class FLM(Cloak):
    r"""Fast landmark manipulation on a grid of control points (hybrid with ``additive``).

    Each step moves every control point by ``step`` pixels along the sign of the
    gradient of the objective (as FGSM does for pixels), keeps it within ``shift``
    pixels, and warps the face (:func:`warp_by`); with ``additive`` an additive change
    takes a PGD step too, projected into the pixel budget.

    Args:
        eps: the additive change's pixel budget (L-inf; the hybrid only).
        shift: the most any point of the face moves, as a fraction of the width of the
            face (the budget's non-zero extent): 0.01 is about a pixel on a 112 px face.
        steps: iterations (default 20).
        grid: control points per side over the face's extent.
        additive: also optimise an additive change (the hybrid).
        chroma: the colour guard.

    Shape:
        images: (B, 3, H, W) in [0, 1]; objective: images -> (B,).
    """

    pixel_bounded = False

    def __init__(self, eps: float = 8 / 255, shift: float = 0.01, steps: int = 20,
                 grid: int = 8, additive: bool = False, chroma: float | None = CHROMA) -> None:
        super().__init__(eps, chroma)
        if steps < 1 or shift <= 0 or grid < 2:
            raise ValueError("steps must be >= 1, shift > 0 and grid >= 2")
        self.shift = shift
        self.steps = steps
        self.grid = grid
        self.additive = additive

    def field(self, control: torch.Tensor, budget: torch.Tensor, limit: float
              ) -> torch.Tensor:
        """(B, 2, g, g) control displacements -> (B, 2, H, W) field within ``limit``
        pixels, faded out with the budget's weight."""
        h, w = budget.shape[-2:]
        smooth = F.interpolate(control, size=(h, w), mode="bicubic", align_corners=True)
        fade = budget / budget.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        return smooth.clamp(-limit, limit) * fade

    def perturb(self, images, objective, budget, generator, on_step):
        cols = torch.nonzero((budget > 0).any(0).any(0).any(0)).flatten()
        if len(cols) == 0:
            return images
        limit = self.shift * float(cols.max() - cols.min() + 1)  # pixels
        control = torch.zeros(len(images), 2, self.grid, self.grid, dtype=images.dtype,
                              device=images.device)
        delta = torch.zeros_like(images)
        step = limit * 2.5 / self.steps
        alpha = budget * 2.5 / self.steps
        for i in range(self.steps):
            control.requires_grad_(True)
            x = (self._warp(images, control, budget, limit) + delta).clamp(0, 1)
            grad_c, grad_x = torch.autograd.grad(objective(x).sum(), [control, x])
            with torch.no_grad():
                control = (control + step * grad_c.sign()).clamp(-limit, limit)
                if self.additive:
                    delta = self.project(images + delta + alpha * grad_x.sign(), images,
                                         budget) - images
            on_step(i + 1, self.steps)
        with torch.no_grad():
            return (self._warp(images, control, budget, limit) + delta).clamp(0, 1)

    def _warp(self, images, control, budget, limit: float) -> torch.Tensor:
        """The images warped by the control points' field; outside the budget the pixels
        stay exactly as they were (no resampling rounding)."""
        warped = warp_by(images, self.field(control, budget, limit))
        return torch.where(budget > 0, warped, images)
