"""Reconstruction check: flags cloaked faces by what the reformer cannot redraw.

MagNet's detector (Meng and Chen, "MagNet: a two-pronged defense against adversarial
examples", CCS 2017, section 3.2): an autoencoder trained on clean faces redraws them
well; an adversarial perturbation lies off the manifold it learned, so the
reconstruction error ``x - AE(x)`` grows. The instance sparsity mapping defense (Haque
and Kang, J. KIIT 2021, module 1) classifies that input/output difference instead of
thresholding it. We do both: error statistics (MagNet's L1/L2 and quantiles of the
residual) plus the residual map itself, pooled to a coarse grid (the paper's
difference image), fed to a logistic regression.

The autoencoder is the audit's learned purifier (:mod:`faceguard.audit.purifier`, the
MagNet-style reformer); faces are resized to the scale it was trained at (112 px
aligned crops).

Limits: Carlini and Wagner, "MagNet and 'Efficient defenses against adversarial
attacks' are not robust to adversarial examples", arXiv:1711.08478, 2017: an attacker
who knows the autoencoder makes perturbations it redraws well. A cloak that does not
aim at this autoencoder is what we measure here. A small reformer redraws some clean
faces (unusual light, glasses) poorly too, which costs false alarms.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F

from faceguard.audit.detectors.base import Detector, Images, image_list

_FORMAT = "faceguard.ReconstructionDetector/1"
GRID = 8  # the residual map is pooled to GRID x GRID cells
_QUANTILES = (0.5, 0.9, 0.99)


def residuals(images: Images, size: int = 112, weights: str = "",
              device: str | None = None) -> list[torch.Tensor]:
    """The reformer's residual ``x - AE(x)`` of each crop at ``size`` px.

    Args:
        images: (B, 3, H, W) in [0, 1] or a list of crops; each is resized to ``size``
            (0: kept at its own size).
        weights: the reformer's weights file ("" = the shipped purifier).
        device: where the reformer runs (default: CUDA when present).

    Returns:
        a list of (3, h, w) float32 residuals on the CPU.
    """
    from faceguard.audit.purifier import load_purifier
    from faceguard.device import pick_device

    device = pick_device(device)
    net = load_purifier(weights or None, device)
    out = []
    for crop in image_list(images):
        x = crop[None].float()
        if size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False).clamp(0, 1)
        with torch.no_grad():
            x = x.to(device)
            out.append((x - net(x))[0].cpu())
    return out


def residual_features(residual: torch.Tensor, grid: bool = True) -> np.ndarray:
    """(3, h, w) residual -> (9 [+ GRID**2],) features: mean |r|, RMS, max |r|,
    quantiles of |r|, per-channel mean |r|, and (``grid``) the |r| map pooled to
    GRID x GRID cells."""
    a = residual.abs()
    flat = a.flatten()
    stats = [flat.mean(), residual.pow(2).mean().sqrt(), flat.max()]
    stats += list(torch.quantile(flat, torch.tensor(_QUANTILES)))
    stats += list(a.mean((1, 2)))
    parts = [torch.stack(stats)]
    if grid:
        parts.append(F.adaptive_avg_pool2d(a.mean(0, keepdim=True), GRID).flatten())
    return torch.cat(parts).double().numpy()


class ReconstructionDetector(Detector):
    """Reconstruction check: error statistics and the residual map of the reformer,
    classified by a logistic regression (MagNet's detector; the sparsity mapping
    defense's module 1).

    Args:
        size: the side crops are resized to before the reformer (it was trained on
            112 px aligned faces); 0 keeps each crop's own size.
        grid: add the residual map pooled to GRID x GRID cells (needs crops framed
            alike, e.g. aligned faces); without it, the error statistics only.
        weights: the reformer's weights ("" = the shipped purifier).
        C: inverse regularisation of the logistic regression.
        device: where the reformer runs (default: CUDA when present).

    Shape:
        - fit: clean (N, 3, H, W), cloaked (M, 3, H, W) in [0, 1] (or lists of crops)
        - score: (B, 3, H, W) -> (B,) probability of "cloaked"
    """

    def __init__(self, size: int = 112, grid: bool = True, weights: str = "", C: float = 1.0,
                 device: str | None = None) -> None:
        self.size, self.grid, self.weights, self.C = size, grid, weights, C
        self.device = device
        self.model_: Any = None

    def __repr__(self) -> str:
        return (f"ReconstructionDetector(size={self.size}, grid={self.grid}, "
                f"weights={self.weights!r}, C={self.C})")

    @property
    def is_fitted(self) -> bool:
        return self.model_ is not None

    def features(self, images: Images) -> np.ndarray:
        """(B, F) residual features of crops (see :func:`residual_features`)."""
        return np.stack([residual_features(r, self.grid)
                         for r in residuals(images, self.size, self.weights, self.device)])

    def fit(self, clean: Images, cloaked: Images) -> Self:
        """Train on clean (label 0) and cloaked (label 1) crops; returns ``self``."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x0 = self.features(image_list(clean, "clean"))
        x1 = self.features(image_list(cloaked, "cloaked"))
        y = np.r_[np.zeros(len(x0), bool), np.ones(len(x1), bool)]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))
        self.model_ = model.fit(np.concatenate([x0, x1]), y)
        return self

    def score(self, images: Images) -> np.ndarray:
        """(B,) float in [0, 1]: probability that each crop is cloaked."""
        self._check_fitted()
        proba = self.model_.predict_proba(self.features(images))
        return proba[:, list(self.model_.classes_).index(True)].astype(np.float64)

    def save(self, path: str | Path) -> None:
        """Pickle the fitted classifier. Only :meth:`load` files you made: pickles run code."""
        self._check_fitted()
        state = {"format": _FORMAT, "size": self.size, "grid": self.grid,
                 "weights": self.weights, "C": self.C, "model": self.model_}
        Path(path).write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> Self:
        """Read a detector written by :meth:`save` (trusted files only)."""
        state = pickle.loads(Path(path).read_bytes())
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a saved ReconstructionDetector")
        det = cls(state["size"], state["grid"], state["weights"], state["C"], device)
        det.model_ = state["model"]
        return det
