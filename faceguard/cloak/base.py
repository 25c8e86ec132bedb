"""The Cloak interface: an attack that perturbs images within a per-pixel L-inf budget.

A cloak sees only pixels and an objective: ``objective(images) -> (B,)`` losses that
grow as the faces become less recognisable (see :mod:`faceguard.cloak.objectives`).
The budget is ``eps * weight``: ``weight`` (B, 1, H, W) in [0, 1] is 1 on the face,
feathered to 0 at its edge, optionally shaped by texture (:mod:`faceguard.cloak.budget`),
so the L-inf bound ``|cloaked - original| <= eps`` holds at every pixel.

The colour guard: left free, an optimiser spends much of its budget on colour (irises
turn brown, eyelids pink), which the eye sees long before a change of brightness. So
every cloak's change is split into luma and chroma (BT.601 YCbCr) and chroma gets its
own budget, ``chroma * eps * weight`` in Cb and Cr (:func:`project`): none by default
(:data:`CHROMA`), so a cloak changes only brightness. Where colour has a share, its
change holds no tint (:data:`TINT_PX`). Grey images (one channel) have no chroma.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch

from faceguard.cloak.budget import changing_box
from faceguard.cloak.transforms import Box, gaussian_blur
from faceguard.device import constant_like
from faceguard.progress import StepCallback, no_steps
from faceguard.settings import DEFAULT_CHROMA

Objective = Callable[[torch.Tensor], torch.Tensor]

#: chroma's share of the budget by default (none: brightness only; why in settings)
CHROMA = DEFAULT_CHROMA
#: the widest colour change a cloak keeps (sigma of the Gaussian local mean taken out of
#: its Cb and Cr change, in pixels of the scale it works at: a face about 224 px wide).
#: A quarter share tinted skin yellow and irises olive: the tint is a change of the
#: local mean of colour, which the eye sees at once, where fine colour detail it barely
#: sees (the reason JPEG halves colour's resolution). Taken out at every step, on 8
#: album faces it kept 60% of the share's gain in distance (end distances 1.25 / 1.17 /
#: 1.13 of the calibrated thresholds, dlib / mobileface / faceres, against 1.21 / 1.13 /
#: 1.01 for brightness only and 1.29 / 1.24 / 1.16 with the tint; 3 px kept a fifth).
TINT_PX = 8.0


@cache
def _to_ycc() -> torch.Tensor:
    """(3, 3) RGB -> YCbCr (BT.601, full range, without offsets): rows Y, Cb, Cr."""
    return torch.tensor([[0.299, 0.587, 0.114],
                         [-0.168736, -0.331264, 0.5],
                         [0.5, -0.418688, -0.081312]])


@cache
def _from_ycc() -> torch.Tensor:
    return torch.linalg.inv(_to_ycc())


class Cloak:
    """Base class: hyper-parameters are attributes and ``repr`` shows them (torchattacks style).

    Args:
        eps: L-inf budget in [0, 1] pixel units (4/255 is 4 grey levels).
        chroma: the colour guard: chroma's budget as a fraction of eps (None: no guard).
        tint_px: with the guard, the widest colour change kept (see :func:`limit_chroma`;
            None keeps any).
    """

    #: whether every pixel's change stays within eps * weight (a warp's does not)
    pixel_bounded = True
    #: whether the method can start from a given image (``start`` of ``__call__``)
    warm_start = False
    #: whether the method keeps a visibility floor of its own, and so chooses its result
    #: by the region a later visibility guard scores (``judged`` of ``__call__``)
    judges = False

    def __init__(self, eps: float, chroma: float | None = CHROMA,
                 tint_px: float | None = TINT_PX) -> None:
        if not 0 < eps <= 1:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        if chroma is not None and not 0 <= chroma <= 1:
            raise ValueError(f"chroma must be in [0, 1], got {chroma}")
        self.eps = eps
        self.chroma = chroma
        self.tint_px = tint_px

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    def __call__(
        self,
        images: torch.Tensor,
        objective: Objective,
        weight: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        on_step: StepCallback | None = None,
        start: torch.Tensor | None = None,
        judged: Box | None = None,
    ) -> torch.Tensor:
        """Cloak ``images``.

        Args:
            images: (B, 3, H, W) in [0, 1].
            objective: images -> (B,) losses to increase.
            weight: (B, 1, H, W) in [0, 1] scaling the budget per pixel; 1 if None.
            generator: random source for methods with a random start (reproducibility).
            on_step: called with (iterations done, total) after each iteration; it may
                raise :class:`faceguard.progress.Cancelled` to stop the cloak.
            start: (B, 3, H, W) a warm start, e.g. the images with a person's universal
                mask added (only methods with :attr:`warm_start`); it is projected into
                the budget first.
            judged: (rows, cols) the region a later visibility guard scores (e.g. the
                face box grown 1.3x): methods that keep a floor of their own
                (:attr:`judges`) keep only a result that holds it there too; others
                ignore it.

        Returns:
            (B, 3, H, W) cloaked images with ``|out - images| <= eps * weight`` (when
            :attr:`pixel_bounded`).
        """
        images = images.detach()
        if weight is None:
            weight = torch.ones_like(images[:, :1])
        budget = self.eps * weight.to(images)
        tell = getattr(objective, "will_change", None)  # it may skip work elsewhere
        if tell is not None:
            tell(changing_box(budget) if self.pixel_bounded else None)
        extra = {}
        if start is not None:
            if not self.warm_start:
                raise ValueError(f"{type(self).__name__} cannot start from a given image")
            extra["start"] = self.project(start.detach().to(images), images, budget)
        if judged is not None and self.judges:
            extra["judged"] = judged
        with torch.enable_grad():
            return self.perturb(images, objective, budget, generator, on_step or no_steps,
                                **extra).detach()

    def perturb(self, images: torch.Tensor, objective: Objective, budget: torch.Tensor,
                generator: torch.Generator | None, on_step: StepCallback) -> torch.Tensor:
        """The method itself: ``budget`` is (B, 1, H, W) in pixels; call ``on_step``
        after every iteration. Methods with :attr:`warm_start` also take ``start``, and
        those with :attr:`judges` ``judged``."""
        raise NotImplementedError

    def project(self, images: torch.Tensor, original: torch.Tensor,
                budget: torch.Tensor) -> torch.Tensor:
        """:func:`project` with this cloak's colour guard."""
        return project(images, original, budget, self.chroma, self.tint_px)


def cloak_grey(cloak: Cloak, images: torch.Tensor, objective: Objective,
               weight: torch.Tensor | None = None, generator: torch.Generator | None = None,
               on_step: StepCallback | None = None, start: torch.Tensor | None = None,
               judged: Box | None = None) -> torch.Tensor:
    """``cloak`` on grey images: (B, 3, H, W) with three equal channels, changed alike in
    all three, so the change survives writing the photo back as grey (and grey has no
    chroma to guard). The objective still sees three channels. Arguments as
    :meth:`Cloak.__call__`."""
    out = cloak(images[:, :1], _InColour(objective), weight, generator, on_step,
                None if start is None else start.mean(1, keepdim=True), judged)
    return out.expand_as(images)


class _InColour:
    """A three-channel objective for a one-channel cloak: grey (B, 1, H, W) is seen as
    three equal channels. Everything else is the objective's own, so the cloak still
    reads its ``satisfied`` (early stopping) and tells it ``will_change`` (work done
    only where the cloak may change)."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.objective(images.expand(-1, 3, -1, -1))

    def __getattr__(self, name: str):
        return getattr(self.objective, name)


def gradient(objective: Objective, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(losses (B,), d sum(losses) / d images)."""
    x = images.detach().requires_grad_(True)
    losses = objective(x)
    (grad,) = torch.autograd.grad(losses.sum(), x)
    return losses.detach(), grad


def satisfied(objective: Objective, n: int) -> bool:
    """Whether all ``n`` faces of the objective's last call need no further step (its
    ``satisfied`` attribute, see :class:`faceguard.cloak.objectives.FeatureObjective`):
    iterative cloaks stop early then. False for objectives that do not say."""
    done = getattr(objective, "satisfied", None)
    return done is not None and len(done) == n and bool(done.all())


def project(images: torch.Tensor, original: torch.Tensor, budget: torch.Tensor,
            chroma: float | None = None, tint_px: float | None = None) -> torch.Tensor:
    """Bring ``images`` into the per-pixel budget around ``original`` and into [0, 1].

    Without ``chroma``, each channel is clipped. With it (colour images), the change is
    clipped in YCbCr (luma to ``budget``, Cb and Cr to ``chroma * budget``, without a
    tint wider than ``tint_px``: :func:`limit_chroma`), then each
    pixel's change is scaled as a whole into the L-inf budget and the [0, 1] range,
    so clipping one channel cannot shift the hue.

    Shape: images, original (B, C, H, W); budget (B, 1, H, W) or broadcastable.
    """
    delta = images - original
    if chroma is None or delta.shape[1] != 3:
        delta = torch.maximum(torch.minimum(delta, budget), -budget)
        return (original + delta).clamp(0, 1)
    delta = limit_chroma(delta, budget, chroma, tint_px)
    # the largest s <= 1 per pixel with |s * delta| <= budget and original + s * delta in [0, 1]
    room = torch.minimum(torch.where(delta > 0, 1 - original, original), budget.expand_as(delta))
    scale = (room / delta.abs().clamp_min(1e-12)).amin(1, keepdim=True).clamp(0, 1)
    return (original + delta * scale).clamp(0, 1)  # the clamp only mends float rounding


def to_ycc(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB (or a change of RGB) -> Y, Cb, Cr (BT.601, no offsets)."""
    return torch.einsum("ij,bjhw->bihw", constant_like(_to_ycc, rgb), rgb)


def limit_chroma(delta: torch.Tensor, budget: torch.Tensor, chroma: float | torch.Tensor,
                 tint_px: float | None = None) -> torch.Tensor:
    """A change of RGB (B, 3, H, W) with its luma clipped to ``budget`` and its Cb and
    Cr to ``chroma * budget`` (the colour guard). With ``tint_px`` (pixels), the Cb and
    Cr change's Gaussian local mean of that sigma is taken out first, so colour changes
    only in detail, never as a tint (:data:`TINT_PX`); applied at every step of a cloak,
    it keeps detail finer than about ``tint_px``."""
    ycc = to_ycc(delta)
    luma = torch.maximum(torch.minimum(ycc[:, :1], budget), -budget)
    colour = ycc[:, 1:]
    shared = torch.is_tensor(chroma) or chroma > 0
    if tint_px and shared and min(colour.shape[-2:]) >= 4:  # too small to have detail
        colour = colour - gaussian_blur(colour, min(tint_px, (min(colour.shape[-2:]) - 1) / 3))
    colour = torch.maximum(torch.minimum(colour, chroma * budget), -chroma * budget)
    return torch.einsum("ij,bjhw->bihw", constant_like(_from_ycc, delta),
                        torch.cat([luma, colour], 1))


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)
