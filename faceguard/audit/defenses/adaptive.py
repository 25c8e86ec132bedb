"""Defenses that learn from cloaked faces of other people: detect-then-purify, and an
attacker who trains against FaceGuard (an adaptive purifier, a robust recognizer).

Each needs pairs of clean and cloaked faces before it runs: :meth:`fit` takes them
(aligned 112 px ArcFace crops of people other than the protected one, cloaked with the
user's settings; the audit gets them from :mod:`faceguard.training_pairs`). A fitted
model is cached per training set (``key``) in the user cache.

- :class:`DetectThenPurify`: the instance sparsity mapping defense's modules 1 and 2
  (Haque and Kang, J. KIIT 2021): a reconstruction check decides, and only the faces it
  flags go through the learned clean-up.
- :class:`AdaptivePurifier`: the learned clean-up fine-tuned to turn cloaked faces back
  into their clean originals (the "adaptive" attacker of Radiya-Dixit et al., ICLR 2022).
- :class:`~faceguard.audit.defenses.robust.RobustRecognizer` (in its own module): a
  small head over each frozen recognizer, trained so that a cloaked face and its clean
  original embed together (ibid., robust training).

This module also holds what they share: the cache, :func:`embed_aligned`, and
:func:`fit_trained`, which trains them for an audit.

Limits: all three learn from few faces (tens on a CPU in an audit's minutes), so they
under-state what a determined attacker with thousands of cloaked faces and a GPU gets;
treat their protection figures as an upper bound.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceguard.align import ARCFACE_112
from faceguard.audit.defenses.base import _check_images
from faceguard.audit.detectors.base import NotFittedError
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Event


def _cache_file(kind: str, key: str, params: str) -> Path | None:
    """Where a fitted model is cached (None when there is no key)."""
    if not key:
        return None
    from faceguard.paths import cache_dir

    return cache_dir() / "attackers" / f"{kind}-{key}-{params}.pt"


def _device() -> str:
    from faceguard.device import pick_device

    return pick_device(None)


def _device_of(module: nn.Module) -> torch.device:
    """Where a module's weights live (the CPU for one with none)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _require(fitted: bool, name: str) -> None:
    if not fitted:
        raise NotFittedError(f"{name} needs fit(clean, cloaked) on other people's faces first")


@dataclass(eq=False)
class DetectThenPurify:
    """Purify only the faces a reconstruction check flags as cloaked.

    The check is :class:`~faceguard.audit.detectors.reconstruction.ReconstructionDetector`
    on error statistics only (the residual map depends on how the face is framed, and
    audit crops are framed unlike the aligned faces it learns from), at the crop's own
    resolution; flagged faces go through the shipped learned clean-up.

    Args:
        faces: how many stand-in faces to learn from (the audit's training set size).

    Paper: Haque and Kang, "Advanced generative adversarial defense model using instance
    sparsity mapping network", J. KIIT 2021 (modules 1 and 2); Meng and Chen, MagNet,
    CCS 2017. Limits: Carlini and Wagner, arXiv:1711.08478, 2017.
    """

    faces: int = 16
    detector: Any = field(default=None, init=False, repr=False)

    def fit(self, clean: Tensor, cloaked: Tensor, ensemble: Ensemble | None = None,
            people: list[str] | None = None, key: str = "") -> DetectThenPurify:
        """Fit the check on (N, 3, 112, 112) clean and cloaked crops; returns ``self``."""
        from faceguard.audit.detectors.reconstruction import ReconstructionDetector

        path = _cache_file("detect", key, str(self.faces))
        if path is not None and path.is_file():
            self.detector = ReconstructionDetector.load(path)
            return self
        self.detector = ReconstructionDetector(size=0, grid=False).fit(clean, cloaked)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.detector.save(path)
        return self

    def __call__(self, images: Tensor) -> Tensor:
        from faceguard.audit.defenses.learned import Purifier

        _check_images(images)
        _require(self.detector is not None, "detect-then-purify")
        flagged = torch.from_numpy(self.detector.predict(images)).to(images.device)
        out = images.clone()
        if flagged.any():
            out[flagged] = Purifier()(images[flagged])
        return out


@dataclass(eq=False)
class AdaptivePurifier:
    """The learned clean-up, fine-tuned on other people's clean and cloaked faces.

    Trained from the shipped weights to output the clean face from its cloaked copy
    (and from itself), on random flips, rescales (0.75-1.5x) and 64 px crops, mean
    squared error, Adam, as ``scripts/train_purifier.py`` trains the original.

    Args:
        faces: how many stand-in faces to learn from.
        steps: optimisation steps of 16 crops each.

    Paper: Radiya-Dixit, Hong, Carlini and Tramèr, "Data poisoning won't save you from
    facial recognition", ICLR 2022 (adaptive attacker); network: Meng and Chen, MagNet,
    CCS 2017. Limits: tens of training faces, where the paper's attacker has thousands.
    """

    faces: int = 16
    steps: int = 300
    net: Any = field(default=None, init=False, repr=False)

    def fit(self, clean: Tensor, cloaked: Tensor, ensemble: Ensemble | None = None,
            people: list[str] | None = None, key: str = "") -> AdaptivePurifier:
        """Fine-tune on (N, 3, H, W) clean and cloaked crops; returns ``self``."""
        from faceguard.audit.purifier import PurifierNet, load_purifier

        path = _cache_file("purifier", key, f"{self.faces}-{self.steps}")
        if path is not None and path.is_file():
            state = torch.load(path, weights_only=True)
            net = PurifierNet(**state["arch"])
            net.load_state_dict(state["state_dict"])
        else:
            net = copy.deepcopy(load_purifier()).float().to(_device()).requires_grad_(True)
            _fine_tune(net, clean, cloaked, self.steps)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"arch": {"width": net.width, "bottleneck": net.bottleneck},
                            "state_dict": {k: v.cpu() for k, v in net.state_dict().items()}},
                           path)
        self.net = net.eval().requires_grad_(False).to(_device())
        return self

    def __call__(self, images: Tensor) -> Tensor:
        _check_images(images)
        _require(self.net is not None, "the adaptive purifier")
        dev = _device_of(self.net)
        with torch.no_grad():
            out = self.net(images.detach().to(dev, torch.float32).clamp(0, 1))
        return out.clamp(0, 1).to(images.device, images.dtype).contiguous()


@torch.enable_grad()  # also when the caller runs under torch.no_grad()
def _fine_tune(net: nn.Module, clean: Tensor, cloaked: Tensor, steps: int, batch: int = 16,
               crop: int = 64, seed: int = 0) -> None:
    """Adam on cloaked -> clean and clean -> clean pairs (random flip, rescale, crop), on
    the device ``net`` is on."""
    gen = torch.Generator().manual_seed(seed)
    dev = _device_of(net)
    inputs = torch.cat([cloaked, clean]).float().to(dev)
    targets = torch.cat([clean, clean]).float().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=3e-4)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(inputs), (batch,), generator=gen)
        scale = float(torch.empty(1).uniform_(0.75, 1.5, generator=gen))
        size = max(crop, round(inputs.shape[-1] * scale))
        pair = F.interpolate(torch.cat([inputs[idx], targets[idx]]), size=(size, size),
                             mode="bilinear", antialias=True, align_corners=False)
        y0, x0 = (int(torch.randint(size - crop + 1, (1,), generator=gen)) for _ in range(2))
        pair = pair[..., y0:y0 + crop, x0:x0 + crop].clamp(0, 1)
        if torch.rand(1, generator=gen) < 0.5:
            pair = pair.flip(-1)
        x, y = pair.chunk(2)
        loss = F.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def embed_aligned(ensemble: Ensemble, faces: Tensor, batch: int = 32) -> dict[str, Tensor]:
    """model -> (N, D) embeddings of aligned 112 px ArcFace crops."""
    dev = _device_of(ensemble)
    parts = [ensemble.embed(faces[k:k + batch].to(dev), ARCFACE_112)
             for k in range(0, len(faces), batch)]
    return {m: torch.cat([p[m] for p in parts]) for m in ensemble.names}


STAGE = "training attackers"


def protected_filter(ensemble: Ensemble, gallery: Any, people: set[str]
                     ) -> Callable[[Tensor], np.ndarray]:
    """aligned 112 px crops -> (N,) bool: True where any recognizer matches the face to
    the clean centroid of one of ``people`` in ``gallery`` (a protection ``Gallery``):
    the attacker trains on other people only."""
    centroids = {}
    for m in ensemble.names:
        known, cents = gallery.centroids(m)
        centroids[m] = cents[[known.index(p) for p in sorted(people) if p in known]]

    def avoid(crops: Tensor) -> np.ndarray:
        with torch.no_grad():
            emb = embed_aligned(ensemble, crops)
        hit = torch.zeros(len(crops), dtype=torch.bool)
        for m, c in centroids.items():
            d = ensemble[m].compare(emb[m][:, None].cpu(), c[None].cpu())
            hit |= (d < ensemble[m].threshold).any(1)
        return hit.numpy()

    return avoid


def fit_trained(defenses: dict, names: Sequence[str], training_pairs: Callable[..., Any] | None,
                settings: dict, ensemble: Ensemble, avoid: Callable[[Tensor], np.ndarray],
                notes: list[str], seconds: float | None = None) -> Iterator[Event]:
    """Fit the defenses ``names`` on stand-in pairs, dropping those that cannot be.

    ``training_pairs(settings, faces, avoid, seconds=seconds)`` makes the pairs (e.g.
    :func:`faceguard.training_pairs.cloaked_pairs`; fewer faces when ``seconds`` of
    cloaking are not enough); ``notes`` gets one plain sentence per attacker, or why it
    was left out. Yields :data:`STAGE` events: one as each step
    (cloaking the faces, then each fit) starts, one at the end.
    """
    from faceguard.audit.defenses.registry import DEFENSES, defense_label
    from faceguard.models.catalogue import ModelError

    def named(n: str) -> str:
        label = defense_label(n)
        return label[:1].upper() + label[1:]

    def drop(why: str) -> None:
        for n in names:
            defenses.pop(n)
            notes.append(f"{named(n)}: left out ({why}).")

    if training_pairs is None:
        drop("this audit was started without the cloak, which it needs to cloak other "
             "people's faces")
        return
    total = len(names) + 1  # cloaking, then one fit per defense
    yield Event(0, total, STAGE, part=0.0, detail="cloaking other people's faces")
    try:
        pairs = training_pairs(settings, max(defenses[n].faces for n in names), avoid,
                               seconds=seconds)
    except (ValueError, ModelError) as exc:
        drop(str(exc))
        return
    for k, n in enumerate(names, 1):
        yield Event(k, total, STAGE, part=0.0, detail=defense_label(n))
        defenses[n].fit(pairs.clean, pairs.cloaked, ensemble, pairs.people, pairs.key)
        notes.append(f"{named(n)}: {DEFENSES[n.partition(':')[0]].description} It learned "
                     f"from {pairs.source}, cloaked with these photos' settings; an attacker with "
                     "more such faces learns more, so its figures are an upper bound on "
                     "protection.")
    yield Event(total, total, STAGE)
