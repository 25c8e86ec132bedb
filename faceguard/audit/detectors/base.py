"""The detector interface, input checks, and the evaluation every detector shares.

A detector answers "could a platform flag my cloaked photos?": it is trained on clean
and cloaked face crops and scores new crops (higher = more likely cloaked).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

Images = torch.Tensor | Sequence[torch.Tensor]
"""A (B, 3, H, W) float tensor in [0, 1] RGB, or a list of (3, H, W) / (b, 3, H, W) ones."""

# Cloaked images are clamped to [0, 1]; a little slack absorbs float round-off, while a
# 0..255 image (a common mistake) is still refused.
_RANGE_SLACK = 1e-3


class NotFittedError(RuntimeError):
    """A detector was used before :meth:`Detector.fit` (or :meth:`Detector.load`)."""


def image_list(images: Images, name: str = "images") -> list[torch.Tensor]:
    """Check face crops and split them into a list of (3, H, W) float tensors in [0, 1].

    Args:
        images: (B, 3, H, W) tensor, or a sequence of (3, H, W) or (b, 3, H, W) tensors
            (sizes may differ between items).
        name: the argument's name, for error messages.

    Raises:
        TypeError: not tensors.
        ValueError: empty, wrong shape, or values outside [0, 1].
    """
    if isinstance(images, torch.Tensor):
        if images.dim() not in (3, 4):
            raise ValueError(f"{name}: expected (B, 3, H, W), got shape {tuple(images.shape)}")
        parts: Sequence[torch.Tensor] = [images]
    elif isinstance(images, Sequence) and not isinstance(images, str | bytes):
        parts = images
    else:
        raise TypeError(f"{name}: expected a torch tensor or a list of them, got {type(images)}")

    out: list[torch.Tensor] = []
    for i, part in enumerate(parts):
        if not isinstance(part, torch.Tensor):
            raise TypeError(f"{name}[{i}]: expected a torch tensor, got {type(part)}")
        batch = part[None] if part.dim() == 3 else part
        if batch.dim() != 4 or batch.shape[1] != 3 or min(batch.shape[2:]) < 3:
            raise ValueError(
                f"{name}[{i}]: expected (3, H, W) or (B, 3, H, W) RGB with H, W >= 3, "
                f"got shape {tuple(part.shape)}"
            )
        if not batch.is_floating_point():
            raise ValueError(f"{name}[{i}]: expected float values in [0, 1], got {batch.dtype}")
        batch = batch.detach()
        if not batch.numel():
            continue
        lo, hi = (float(v) for v in torch.aminmax(batch))
        if lo < -_RANGE_SLACK or hi > 1 + _RANGE_SLACK:
            raise ValueError(
                f"{name}[{i}]: values must lie in [0, 1] (got {lo:.3g}..{hi:.3g}); "
                "divide 0..255 images by 255"
            )
        if lo < 0 or hi > 1:
            batch = batch.clamp(0, 1)
        # contiguous: restacking views of a channels-last batch is very slow
        out.extend(batch.contiguous())
    if not out:
        raise ValueError(f"{name} is empty: give at least one face crop")
    return out


class Detector(ABC):
    """Clean-versus-cloaked classifier for aligned face crops (scikit-learn habits).

    Subclasses implement :meth:`fit`, :meth:`score`, :meth:`save` and :meth:`load`.
    """

    threshold: float = 0.5

    @property
    @abstractmethod
    def is_fitted(self) -> bool:
        """True once :meth:`fit` (or :meth:`load`) has run."""

    @abstractmethod
    def fit(self, clean: Images, cloaked: Images) -> Self:
        """Learn to tell ``clean`` crops from ``cloaked`` ones; returns ``self``."""

    @abstractmethod
    def score(self, images: Images) -> np.ndarray:
        """(B,) float scores in [0, 1]: the probability that each crop is cloaked."""

    def predict(self, images: Images) -> np.ndarray:
        """(B,) bool: True where the crop would be flagged as cloaked."""
        return self.score(images) >= self.threshold

    @abstractmethod
    def save(self, path: str | Path) -> None:
        """Write the fitted detector to ``path``."""

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path, *args: Any, **kwargs: Any) -> Self:
        """Read a detector written by :meth:`save`."""

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit(clean, cloaked) or load(path) first"
            )


def evaluate(detector: Detector, clean: Images, cloaked: Images) -> dict[str, Any]:
    """How well ``detector`` separates held-out ``clean`` from ``cloaked`` crops.

    "Positive" means cloaked. Threshold metrics use ``detector.threshold``; the result is
    :func:`separation` of the two score arrays.
    """
    return separation(detector.score(clean), detector.score(cloaked), detector.threshold)


def separation(s_clean: np.ndarray, s_cloaked: np.ndarray, threshold: float) -> dict[str, Any]:
    """Detection metrics from detector scores (higher = more likely cloaked).

    Returns:
        dict with ``precision``, ``recall``, ``f1``, ``accuracy``, ``roc_auc`` (floats),
        ``flagged_cloaked`` (= recall, true-positive rate), ``flagged_clean``
        (false-positive rate), ``n_clean``, ``n_cloaked``, ``threshold``, and ``roc``:
        ``{"fpr": [...], "tpr": [...], "thresholds": [...]}`` for plotting.
    """
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
        roc_curve,
    )

    y = np.concatenate([np.zeros(len(s_clean), bool), np.ones(len(s_cloaked), bool)])
    s = np.concatenate([s_clean, s_cloaked])
    pred = s >= threshold
    fpr, tpr, thr = roc_curve(y, s)
    return {
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
        "roc_auc": float(roc_auc_score(y, s)),
        "flagged_cloaked": float(pred[y].mean()),
        "flagged_clean": float(pred[~y].mean()),
        "n_clean": len(s_clean),
        "n_cloaked": len(s_cloaked),
        "threshold": float(threshold),
        # roc_curve's first threshold is +inf; JSON cannot hold it, so cap it at 1 + max.
        "roc": {
            "fpr": fpr.tolist(),
            "tpr": tpr.tolist(),
            "thresholds": np.minimum(thr, s.max() + 1).tolist(),
        },
    }


def describe(result: dict[str, Any]) -> str:
    """One plain sentence from an :func:`evaluate` result, for people, not statisticians.

    >>> describe({"flagged_cloaked": 0.9, "flagged_clean": 0.05, "roc_auc": 0.97})
    'A platform could flag 90% of your cloaked photos while wrongly flagging 5% of clean ones (ROC AUC 0.97; 0.5 = guessing, 1 = perfect).'
    """  # noqa: E501
    return (
        f"A platform could flag {result['flagged_cloaked']:.0%} of your cloaked photos "
        f"while wrongly flagging {result['flagged_clean']:.0%} of clean ones "
        f"(ROC AUC {result['roc_auc']:.2f}; 0.5 = guessing, 1 = perfect)."
    )
