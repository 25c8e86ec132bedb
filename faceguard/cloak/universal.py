"""Universal perturbation per person: one mask that cloaks every photo of them.

Moosavi-Dezfooli, Fawzi, Fawzi, Frossard, "Universal adversarial perturbations"
(CVPR 2017), as used by the seed paper (eqs. 2-5). The mask lives in a canonical
aligned face space (:data:`CANONICAL_TEMPLATE`, :data:`CANONICAL_SIZE` px); applying it
to a new photo is one warp of the mask into the face's region: milliseconds, no
gradient.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from faceguard.align import ARCFACE_112, face_transform, invert, warp
from faceguard.cloak.base import CHROMA, limit_chroma, project
from faceguard.progress import StepCallback, no_steps

#: The canonical space of universal masks: ArcFace's template at 224 px (twice the
#: resolution the 112 px models see, so the mask is not coarser than their input).
CANONICAL_SIZE = 224
CANONICAL_TEMPLATE = ARCFACE_112 * 2

Logits = Callable[[torch.Tensor], torch.Tensor]  # (B, 3, S, S) canonical faces -> (B, C)


def deepfool(logits: Logits, image: torch.Tensor, candidates: int = 10,
             overshoot: float = 0.02, max_iter: int = 50) -> torch.Tensor:
    """Minimal L2 perturbation that changes the predicted class (DeepFool).

    Moosavi-Dezfooli, Fawzi, Frossard, "DeepFool: a simple and accurate method to fool
    deep neural networks" (CVPR 2016), multi-class form: at each step, linearise the
    boundaries to the ``candidates`` most likely other classes and step to the
    nearest one, with ``overshoot``.

    Args:
        logits: differentiable classifier.
        image: (1, 3, S, S).

    Returns:
        (1, 3, S, S) the perturbation r (``image + r`` is classified differently,
        unless ``max_iter`` ran out).
    """
    with torch.no_grad():
        start = logits(image)[0]
    k = min(candidates, start.numel())
    classes = torch.argsort(start, descending=True)[:k]
    label = int(classes[0])
    total = torch.zeros_like(image)
    for _ in range(max_iter):
        x = (image + (1 + overshoot) * total).detach().repeat(k, 1, 1, 1).requires_grad_(True)
        z = logits(x)
        if int(z[0].argmax()) != label:
            break
        # one batched backward: row i holds the gradient of class i's logit
        (grads,) = torch.autograd.grad(z[torch.arange(k), classes].sum(), x)
        w = grads[1:] - grads[:1]
        f = (z[0, classes[1:]] - z[0, label]).detach()
        norms = w.flatten(1).norm(dim=1).clamp_min(1e-12)
        best = int((f.abs() / norms).argmin())
        total = total + (f[best].abs() + 1e-4) / norms[best] ** 2 * w[best : best + 1]
    return (1 + overshoot) * total


def project_norm(v: torch.Tensor, xi: float, norm: str = "inf") -> torch.Tensor:
    """Projection P_{p, xi} onto the L-p ball of radius xi (eq. 5 of the seed paper)."""
    if norm == "inf":
        return v.clamp(-xi, xi)
    if norm == "2":
        n = v.norm()
        return v * min(1.0, xi / float(n)) if n > 0 else v
    raise ValueError(f"norm must be 'inf' or '2', got {norm!r}")


@dataclass
class UniversalMask:
    """A person's universal perturbation and how it was made.

    Attributes:
        perturbation: (1, 3, S, S) in canonical face space, values in [-xi, xi].
        person: whose faces it was computed on.
        models: recognizers it was computed against.
        settings: method and hyper-parameters.
        fooling_rate: share of the training faces it fooled.
    """

    perturbation: torch.Tensor
    person: str
    models: list[str]
    settings: dict = field(default_factory=dict)
    fooling_rate: float = 0.0

    def save(self, path: str | Path) -> Path:
        """Write the mask file (atomically), readable by its owner only: it holds a face
        template of its person."""
        path = Path(path)
        # a short name of its own: the mask's is the person's, as long as a folder's may be
        fd, name = tempfile.mkstemp(prefix=".faceguard-", suffix=".tmp", dir=path.parent)
        os.close(fd)  # made with mode 0600, which the rename keeps
        try:
            torch.save({
                "format": "faceguard-universal-mask/1",
                "perturbation": self.perturbation.detach().cpu().half(),
                "template": CANONICAL_TEMPLATE.tolist(),
                "size": CANONICAL_SIZE,
                "person": self.person,
                "models": self.models,
                "settings": self.settings,
                "fooling_rate": self.fooling_rate,
            }, name)
            os.replace(name, path)
        finally:
            Path(name).unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> UniversalMask:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            reason = exc.__class__.__name__
            raise ValueError(f"{path}: not a FaceGuard mask file ({reason})") from None
        if not isinstance(data, dict) or data.get("format") != "faceguard-universal-mask/1":
            raise ValueError(f"{path}: not a FaceGuard mask file")
        try:
            if data["size"] != CANONICAL_SIZE \
                    or not np.allclose(data["template"], CANONICAL_TEMPLATE):
                raise ValueError(f"{path}: made for another face template")
            mask = cls(data["perturbation"].float(), data["person"], list(data["models"]),
                       dict(data["settings"]), float(data["fooling_rate"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: a damaged mask file ({exc.__class__.__name__})") from None
        if not isinstance(mask.settings.get("centroids"), dict):  # whose faces it is for
            raise ValueError(f"{path}: a mask without its person's face template (made by "
                             "an early version): make it again")
        return mask

    def apply(self, region: torch.Tensor, landmarks: np.ndarray,
              weight: torch.Tensor) -> torch.Tensor:
        """Add the mask to one face.

        Args:
            region: (1, 3, h, w) photo region around the face, in [0, 1].
            landmarks: (5, 2) the face's landmarks in region pixels.
            weight: (1, 1, h, w) budget weight in [0, 1] (feathered face ellipse).

        Returns:
            (1, 3, h, w) cloaked region; ``|out - region| <= xi * weight``.
        """
        to_region = invert(face_transform(landmarks, CANONICAL_TEMPLATE))
        v = warp(self.perturbation.to(region), to_region, tuple(region.shape[-2:]), antialias=False)
        xi = float(self.perturbation.abs().max())
        return project(region + v * weight, region, xi * weight, CHROMA)

    def apply_to(self, crop) -> torch.Tensor:
        """:meth:`apply` on a face's region (:class:`faceguard.regions.FaceRegion` with
        a ``weight``, e.g. :class:`faceguard.cloak.photo.FaceCrop`)."""
        return self.apply(crop.pixels, crop.landmarks, crop.weight)


def canonical_faces(images: torch.Tensor, landmarks: np.ndarray) -> torch.Tensor:
    """(B, 3, S, S) faces in canonical space from photos (B, 3, H, W) and (B, 5, 2) landmarks."""
    transforms = np.stack([face_transform(m, CANONICAL_TEMPLATE)
                           for m in np.broadcast_to(landmarks, (images.shape[0], 5, 2))])
    return warp(images, transforms, CANONICAL_SIZE)


class UniversalPerturbation:
    """Universal perturbation via DeepFool (Moosavi-Dezfooli et al. 2017, Algorithm 1).

    Loop over the person's canonical faces in random order; for every face the current
    mask v does not yet fool, add the minimal DeepFool step that flips it and project
    onto the L-p ball of radius xi; stop when the fooling rate on the set reaches
    1 - delta or after ``max_passes``.

    Args:
        xi: radius of the mask's L-p ball (default 8/255 in L-inf).
        delta: target fooling rate is 1 - delta (default 0.2).
        max_passes: passes over the faces (default 10).
        norm: "inf" or "2".
        overshoot: DeepFool's overshoot.

    Example:
        >>> uap = UniversalPerturbation(xi=8 / 255)
        >>> v, rate = uap.fit(faces, logits, fooled)
    """

    def __init__(self, xi: float = 8 / 255, delta: float = 0.2, max_passes: int = 10,
                 norm: str = "inf", overshoot: float = 0.02) -> None:
        if xi <= 0 or not 0 <= delta < 1 or max_passes < 1:
            raise ValueError("xi must be > 0, delta in [0, 1) and max_passes >= 1")
        self.xi, self.delta, self.max_passes = xi, delta, max_passes
        self.norm, self.overshoot = norm, overshoot

    def __repr__(self) -> str:
        return (f"UniversalPerturbation(xi={self.xi:.4g}, delta={self.delta}, "
                f"max_passes={self.max_passes}, norm={self.norm!r})")

    def fit(self, faces: torch.Tensor, logits: Logits,
            generator: torch.Generator | None = None,
            on_step: StepCallback = no_steps) -> tuple[torch.Tensor, float]:
        """Compute the mask.

        Args:
            faces: (N, 3, S, S) the person's faces in canonical space.
            logits: the local classifier on canonical faces, (B, 3, S, S) -> (B, C).
            on_step: called with (faces visited, max_passes * N) after each face.

        Returns:
            (v (1, 3, S, S), fooling rate on ``faces``).
        """
        with torch.no_grad():
            labels = logits(faces).argmax(1)
        v = torch.zeros_like(faces[:1])
        rate, visits = 0.0, self.max_passes * len(faces)
        for n in range(self.max_passes):
            order = torch.randperm(len(faces), generator=generator).tolist()
            for k, i in enumerate(order):
                x = faces[i : i + 1]
                with torch.no_grad():
                    fooled = int(logits((x + v).clamp(0, 1)).argmax(1)) != int(labels[i])
                if not fooled:
                    r = deepfool(logits, (x + v).clamp(0, 1), overshoot=self.overshoot)
                    v = project_norm(_colour_guard(v + r, self.xi), self.xi, self.norm)
                on_step(n * len(faces) + k + 1, visits)
            rate = fooling_rate(logits, faces, v, labels)
            if rate >= 1 - self.delta:
                break
        return v.detach(), rate


class UniversalSGD:
    """Faster universal mask: signed mini-batch gradient ascent on a loss over the faces.

    Shafahi et al., "Universal Adversarial Training" (AAAI 2020) style stochastic
    variant: v <- P(v + alpha * sign(mean_i grad loss(x_i + v))). Any objective works
    (feature distance needs no classifier).

    Args:
        xi: L-inf radius (default 8/255).
        steps: gradient steps (default 100).
        batch: faces per step (default 8).
        alpha: step size (default xi / 10).
    """

    def __init__(self, xi: float = 8 / 255, steps: int = 100, batch: int = 8,
                 alpha: float | None = None) -> None:
        if xi <= 0 or steps < 1 or batch < 1:
            raise ValueError("xi must be > 0, steps and batch >= 1")
        self.xi, self.steps, self.batch = xi, steps, batch
        self.alpha = alpha if alpha is not None else xi / 10

    def __repr__(self) -> str:
        return (f"UniversalSGD(xi={self.xi:.4g}, steps={self.steps}, batch={self.batch}, "
                f"alpha={self.alpha:.4g})")

    def fit(self, faces: torch.Tensor, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
            generator: torch.Generator | None = None,
            on_step: StepCallback = no_steps) -> torch.Tensor:
        """Compute the mask.

        Args:
            faces: (N, 3, S, S) canonical faces.
            loss: (faces (B, 3, S, S), indices (B,)) -> (B,) losses to increase.
            on_step: called with (steps done, steps) after each step.

        Returns:
            v (1, 3, S, S).
        """
        v = torch.zeros_like(faces[:1])
        for step in range(self.steps):
            idx = torch.randperm(len(faces), generator=generator)[: self.batch]
            v_ = v.clone().requires_grad_(True)
            with torch.enable_grad():
                value = loss((faces[idx] + v_).clamp(0, 1), idx).mean()
                (grad,) = torch.autograd.grad(value, v_)
            v = _colour_guard(v + self.alpha * grad.sign(), self.xi).clamp(-self.xi, self.xi)
            on_step(step + 1, self.steps)
        return v.detach()


def _colour_guard(v: torch.Tensor, xi: float) -> torch.Tensor:
    """The mask with its chroma limited, as every cloak's is (see ``project`` in base.py)."""
    return limit_chroma(v, torch.full_like(v[:, :1], xi), CHROMA)


def fooling_rate(logits: Logits, faces: torch.Tensor, v: torch.Tensor,
                 labels: torch.Tensor | None = None) -> float:
    """Share of faces whose predicted class changes when v is added (eq. 5)."""
    with torch.no_grad():
        if labels is None:
            labels = logits(faces).argmax(1)
        return float((logits((faces + v).clamp(0, 1)).argmax(1) != labels).float().mean())
