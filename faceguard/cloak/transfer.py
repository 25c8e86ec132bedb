"""Transfer levers: make a cloak computed on our recognizers fool the ones it never saw.

An attacker runs their own recognizer. A cloak fitted too closely to ours exploits
their quirks and transfers poorly; each lever here randomises what the optimiser sees,
so only changes that fool a whole family of similar models survive.

- ``diversity``: input diversity (Xie et al., "Improving transferability of adversarial
  examples with input diversity", CVPR 2019): each draw resizes the aligned face by a
  random factor and pads it back at a random offset.
- ``dropout``: model augmentation (Zhong and Deng, "Towards transferable adversarial
  attack against deep face recognition", DFANet, TIFS 2021; Li et al., "Learning
  transferable adversarial examples via ghost networks", AAAI 2020): dropout on the
  feature maps of every block of every recognizer, anew at each forward pass, so each
  step sees a slightly different "ghost" model.
- ``purify``: purification in the loop: every other draw of the objective sees the
  face through a differentiable copy of the audit's bilateral defense
  (:func:`faceguard.cloak.transforms.bilateral`), so the cloak learns to survive it
  (as LowKey attacks a blurred copy of each image as well).
- ``restore``: the same with the audit's strongest defense, BL+SR (the bilateral
  filter, a 2x shrink and Real-ESRGAN back up: :func:`faceguard.cloak.transforms.bilateral_sr`,
  through a torch port of the audit's network); with ``purify`` as well, the purified
  draws take the two filters in turn.
- ``smooth``: translation-invariant gradients (Dong et al., "Evading defenses to
  transferable adversarial examples by translation-invariant attacks", CVPR 2019): the
  objective's gradient is blurred by a Gaussian before the step, as if averaged over
  slightly shifted copies of the face, so the change is smooth rather than fitted to
  one network's pixel grid.
- ``spectrum``: spectrum simulation (Long et al., "Frequency domain model augmentation
  for adversarial attack", SSA, ECCV 2022): each draw adds Gaussian noise to the aligned
  face and scales each of its DCT coefficients by a random factor in [1 - rho, 1 + rho],
  which imitates models that weigh frequencies differently.
- ``scale``: scale invariance (Lin et al., "Nesterov accelerated gradient and scale
  invariance for adversarial attacks", SI-NI-FGSM, ICLR 2020): each draw divides the
  aligned face's pixel values by 2^i, i drawn from 0-4; a deep network's decision is
  about the same on the darker copies, which act as extra models.
- ``hull``: the OPOM objective (Zhong and Deng, "OPOM: customized invisible cloak
  towards face privacy protection", TPAMI 2022): push the face away from the convex
  hull of the person's reference embeddings (its nearest point, :func:`nearest_in_hull`)
  rather than from their centroid alone, so the cloak leaves the whole region the
  person's own photos span: the directions in which their photos already differ are
  ones every recognizer has learnt to ignore.
- ``features``: an intermediate-feature objective (Zhou et al., "Transferable
  adversarial perturbations", TAP, ECCV 2018; Huang et al., "Enhancing adversarial
  example transferability with an intermediate level attack", ILA, ICCV 2019): the
  objective also pushes each recognizer's middle block's feature maps away from the
  clean face's (:func:`feature_gap`). Mid-level features (parts, textures) are shared
  across networks far more than the final embedding, so disrupting them carries over.
- ``skip``: the skip gradient method (Wu et al., "Skip connections matter: on the
  transferability of adversarial examples generated with ResNets", SGM, ICLR 2020): in
  the backward pass, the gradient through each residual branch is scaled by
  :data:`SKIP_GAMMA` and the shortcut's kept, so the cloak follows the low-level
  features the shortcuts carry, which networks share, more than the deep branches'.
  Only where a recognizer's branches are modules (dlib's ResNet:
  :meth:`faceguard.models.base.Recognizer.residual_branches`).
- ``mirror``: every other draw sees the aligned face mirrored left to right. Many
  recognizers embed a face and its mirror image and add the two (test-time flipping,
  as in ArcFace's evaluation), and a photo may be posted mirrored; a cloak made on the
  face as it is only partly holds against its mirror image.
- ``log``: the objective's pooling over recognizers: the mean of log distances instead
  of capped distances, so the least-fooled recognizer gets the most weight and no model
  stops pulling once past a cap.

:data:`faceguard.settings.TRANSFER_LEVERS` names them; ``CloakSettings.transfer``
picks them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from faceguard.cloak.transforms import dct_matrix, gaussian_blur
from faceguard.models.ensemble import Ensemble


def diversity(faces: torch.Tensor, generator: torch.Generator, low: float = 0.85
              ) -> torch.Tensor:
    """Resize (B, C, S, S) faces to a random side in [low * S, S] and pad them back to S
    at a random offset (edge padding), as one draw for the whole batch."""
    size = faces.shape[-1]
    side = int(torch.randint(round(low * size), size + 1, (1,), generator=generator))
    if side == size:
        return faces
    small = F.interpolate(faces, size=(side, side), mode="bilinear", align_corners=False,
                          antialias=True)
    left = int(torch.randint(0, size - side + 1, (1,), generator=generator))
    top = int(torch.randint(0, size - side + 1, (1,), generator=generator))
    return F.pad(small, (left, size - side - left, top, size - side - top), mode="replicate")


class _SmoothGradient(torch.autograd.Function):
    """Identity forward; the backward pass blurs the incoming gradient."""

    @staticmethod
    def forward(ctx, images: torch.Tensor, sigma: float) -> torch.Tensor:
        ctx.sigma = sigma
        return images.view_as(images)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return gaussian_blur(grad, ctx.sigma), None


def smooth_gradient(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images`` (B, C, H, W) unchanged, but the gradient that flows back through them
    blurred by a Gaussian of ``sigma`` pixels (TI: a gradient averaged over shifts)."""
    return _SmoothGradient.apply(images, sigma)


#: TI's Gaussian, in eye distances: Dong et al. blur with sigma 2.3 pixels on 299-pixel
#: ImageNet images; a face's eyes are about 16 times that apart at any scale
SMOOTH_SIGMA_EYES = 1 / 16


def spectrum(faces: torch.Tensor, generator: torch.Generator, sigma: float = 16 / 255,
             rho: float = 0.5) -> torch.Tensor:
    """One SSA draw of (B, C, H, W) faces in [0, 1]: ``IDCT(DCT(x + noise) * mask)``,
    noise ~ N(0, sigma^2) per pixel and mask ~ U(1 - rho, 1 + rho) per coefficient
    (the paper's sigma = eps = 16 / 255 and rho = 0.5)."""
    h, w = faces.shape[-2:]
    dh, dw = dct_matrix(h).to(faces), dct_matrix(w).to(faces)
    noise = torch.randn(faces.shape, generator=generator).to(faces) * sigma
    mask = 1 + (torch.rand(faces.shape, generator=generator).to(faces) * 2 - 1) * rho
    return dh.T @ ((dh @ (faces + noise) @ dw.T) * mask) @ dw


def scale(faces: torch.Tensor, generator: torch.Generator, copies: int = 5) -> torch.Tensor:
    """One SI draw: the (B, C, H, W) faces' pixel values divided by 2^i, i uniform in
    0..copies-1 (the paper averages over all five; each draw here takes one)."""
    i = int(torch.randint(0, copies, (1,), generator=generator))
    return faces / 2**i


#: where the "features" lever taps each recognizer: this share of the way through its
#: blocks (0.5: the middle one)
FEATURE_DEPTH = 0.5

#: weight of the mid-layer gap (a relative distance, 0 at the clean face) against the
#: embedding's distance in threshold units (capped at 2)
FEATURE_WEIGHT = 1.0


@contextmanager
def middle_layers(ensemble: Ensemble) -> Iterator[dict[str, torch.Tensor]]:
    """While active, the dict it yields holds model -> the output of that recognizer's
    block at :data:`FEATURE_DEPTH` (of :meth:`layers`) from its latest forward pass."""
    out: dict[str, torch.Tensor] = {}

    def keeper(name: str):
        def keep(module, inputs, output):
            out[name] = output
        return keep

    def tap(blocks: list[nn.Module]) -> nn.Module:
        return blocks[int(len(blocks) * FEATURE_DEPTH)]

    with _hooks([(tap(list(r.layers().values())), keeper(r.name)) for r in ensemble]):
        yield out


def feature_gap(cloaked: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """(B,) relative distance |f - f0| / |f0| between feature maps (B, ...) of the
    cloaked faces (f) and of the clean ones (f0, held fixed)."""
    clean = clean.detach().flatten(1)
    return (cloaked.flatten(1) - clean).norm(dim=1) / clean.norm(dim=1).clamp_min(1e-8)


@contextmanager
def dropout(ensemble: Ensemble, generator: torch.Generator, p: float = 0.1
            ) -> Iterator[None]:
    """While active, every block of every recognizer but the embedding drops a share
    ``p`` of its output features (rescaled by 1 / (1 - p)), anew at each forward pass."""
    def drop(module, inputs, output):
        keep = torch.rand(output.shape, generator=generator) >= p
        return output * keep.to(output) / (1 - p)

    with _hooks([(block, drop) for r in ensemble for block in list(r.layers().values())[:-1]]):
        yield


#: the ``skip`` lever's decay of the gradient through a residual branch (SGM's gamma;
#: the paper takes 0.2-0.5 for ResNets)
SKIP_GAMMA = 0.5
#: decayed in its 14 blocks, dlib's gradient at its input is 0.049-0.062 times as long
#: (12 album faces, pushed from another's embedding); scaled back by this, it keeps its
#: share of the ensemble's gradient, so that the lever changes its direction only
SKIP_GAIN = 1 / 0.056


def _gradient_scaled(by: float) -> Callable:
    """A forward hook that leaves the output as it is and scales its gradient ``by``."""
    def hook(module, inputs, output):
        return output * by + (output * (1 - by)).detach()
    return hook


@contextmanager
def skip_gradient(ensemble: Ensemble, gamma: float = SKIP_GAMMA, gain: float = SKIP_GAIN
                  ) -> Iterator[None]:
    """While active, the gradient through every residual branch of every recognizer is
    scaled by ``gamma`` and each such recognizer's whole gradient by ``gain``; the forward
    pass is unchanged (SGM)."""
    branches = {r: r.residual_branches() for r in ensemble}
    with _hooks([(branch, _gradient_scaled(gamma)) for bs in branches.values() for branch in bs]
                + [(r, _gradient_scaled(gain)) for r, bs in branches.items() if bs]):
        yield


@contextmanager
def _hooks(hooks: list[tuple[nn.Module, Callable]]) -> Iterator[None]:
    """While active, each (module, forward hook) pair is registered, and acts in this
    thread only: two photos may be cloaked at once with the same recognizers
    (:func:`faceguard.pipeline.cloak_album`), and one's forward passes must not drop
    features or feed the other's objective."""
    here = threading.get_ident()

    def in_this_thread(hook: Callable) -> Callable:
        def run(module, inputs, output):
            return hook(module, inputs, output) if threading.get_ident() == here else None
        return run

    handles = [module.register_forward_hook(in_this_thread(hook)) for module, hook in hooks]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def nearest_in_hull(points: torch.Tensor, sets: torch.Tensor, iterations: int = 100
                    ) -> torch.Tensor:
    """(B, D) nearest points to ``points`` (B, D) in the convex hulls of ``sets``
    ((B, N, D), or (N, D) shared by all): ``R^T a`` with ``a`` on the simplex minimising
    ``|p - R^T a|^2``, by accelerated projected gradient (FISTA); N is a few photos, so
    the N x N problem costs nothing. Padding a set with repeats leaves its hull as it is.
    Not differentiated: by Danskin's theorem the distance to a set has the gradient of
    the distance to its nearest point held fixed."""
    with torch.no_grad():
        sets = sets.expand(len(points), *sets.shape[-2:]) if sets.dim() == 2 else sets
        gram = sets @ sets.transpose(1, 2)  # (B, N, N)
        linear = (sets @ points[:, :, None])[..., 0]  # (B, N)
        step = 1 / torch.linalg.eigvalsh(gram)[:, -1:].clamp_min(1e-12)  # 1 / Lipschitz
        a = torch.full(linear.shape, 1 / sets.shape[1], dtype=points.dtype,
                       device=points.device)
        y, t = a, 1.0
        for _ in range(iterations):
            grad = (gram @ y[:, :, None])[..., 0] - linear
            nxt = _onto_simplex(y - step * grad)
            t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
            y, a, t = nxt + (t - 1) / t_next * (nxt - a), nxt, t_next
        return (a[:, None, :] @ sets)[:, 0]


def _onto_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row of (B, N) onto the probability simplex (Duchi et
    al., "Efficient projections onto the l1-ball", ICML 2008)."""
    u = v.sort(dim=1, descending=True).values
    cumulative = u.cumsum(1) - 1
    k = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    rho = ((u - cumulative / k) > 0).sum(1, keepdim=True)  # how many stay positive
    theta = cumulative.gather(1, rho - 1) / rho
    return (v - theta).clamp_min(0)
