"""Cloak detectors: could a platform tell your cloaked photos from clean ones?

- :class:`WLMPDetector`: texture histograms + SVM / random forest / k-NN
  (restoration-wlmp-defense, section 3.3).
- :class:`ReconstructionDetector`: the learned clean-up's reconstruction residual +
  logistic regression (MagNet's detector; sparsity-mapping defense, module 1).
- :class:`TrajectoryDetector`: a face recognizer's per-block distances to identity
  prototypes, classified by an LSTM or MLP (trajectory-detector, section 4).

Both follow scikit-learn habits (``fit``, ``score``, ``predict``, ``save``/``load``);
:func:`evaluate` measures one on held-out crops and :func:`describe` says it in words.
"""

from __future__ import annotations

from faceguard.audit.detectors.base import Detector, NotFittedError, describe, evaluate
from faceguard.audit.detectors.reconstruction import ReconstructionDetector
from faceguard.audit.detectors.trajectory import TrajectoryDetector
from faceguard.audit.detectors.wlmp import WLMPDetector, wlmp_features

__all__ = [
    "Detector",
    "NotFittedError",
    "ReconstructionDetector",
    "TrajectoryDetector",
    "WLMPDetector",
    "describe",
    "evaluate",
    "wlmp_features",
]
