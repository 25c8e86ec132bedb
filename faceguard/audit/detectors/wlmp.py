"""WLMP detector: weighted local magnitude pattern histograms + a classic classifier.

Sadu & Das, "Image restoration for improving facial adversarial robustness"
(restoration-wlmp-defense paper), section 3.3, after Agarwal et al., "SWAPPED!
Digital face presentation attack detection via weighted local magnitude pattern",
IJCB 2017. Tables 1-3 there: linear SVM best on P-FGSM (98.75% accuracy on CelebA),
sigmoid SVM worst (72%); geometric attacks (FLM) are much harder (65-77%).

The feature, exactly as section 3.3 states it:

1. grey image, 0..255, by 0.299 R + 0.587 G + 0.114 B (the conversion in the paper's
   Algorithm 1, ITU-R BT.601); we quantise RGB to 8 bits first and round the grey value
   to an integer, as a platform does when it reads the saved file;
2. for each pixel's 3x3 neighbourhood, the absolute differences |I_n - I_c| of the 8
   neighbours to the centre;
3. sorted ascending and weighted by 2^p, p = 0..7 (the smallest difference gets 1, the
   largest 128), summed, clipped to 0..255;
4. the histogram of these codes over the face: 256 bins, one per code value. The paper
   does not say how it is normalised; we divide by the pixel count so faces of any size
   compare (each feature vector sums to 1).

"Divide the image into 3x3 blocks" in the paper is read as every pixel's 3x3
neighbourhood (as in LBP); border pixels, which lack a full neighbourhood, are skipped.

A consequence of the literal formula worth knowing: on integer grey levels the largest
difference is weighted 128, so any neighbourhood with a difference >= 2 saturates at 255,
and only 9 codes can occur (0, 128, 192, 224, 240, 248, 252, 254, 255: how many
neighbours differ by exactly 1 in an otherwise flat patch). The histogram therefore
measures how much of the face is locally flat, which additive cloak noise destroys.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from faceguard.audit.detectors.base import Detector, Images, image_list

BINS = 256
# (dy, dx) of the 8 neighbours; their order does not matter because the differences are sorted.
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
# Batcher's odd-even merge sort for 8 items: 19 compare-exchanges leave d[0] <= ... <= d[7].
_SORT8 = (
    (0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (1, 2), (5, 6),
    (0, 4), (1, 5), (2, 6), (3, 7), (2, 4), (3, 5), (1, 2), (3, 4), (5, 6),
)  # fmt: skip
_GREY = (0.299, 0.587, 0.114)  # BT.601, the paper's Algorithm 1

CLASSIFIERS = ("linear", "poly", "rbf", "sigmoid", "random_forest", "knn")
_ALIASES = {"gaussian": "rbf", "polynomial": "poly", "rf": "random_forest", "k-nn": "knn"}
_FORMAT = "faceguard.WLMPDetector/1"
_CHUNK = 16  # crops per vectorised pass


def rgb_to_grey(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """RGB in [0, 1] -> 8-bit grey by BT.601 (the paper's Algorithm 1).

    Args:
        images: (B, 3, H, W) float in [0, 1], torch or numpy.

    Returns:
        (B, H, W) uint8: round(0.299 R + 0.587 G + 0.114 B) of the 8-bit channels.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    rgb = np.floor(np.clip(images.astype(np.float64), 0, 1) * 255 + 0.5)
    grey = _GREY[0] * rgb[:, 0] + _GREY[1] * rgb[:, 1] + _GREY[2] * rgb[:, 2]
    return np.floor(grey + 0.5).astype(np.uint8)


def wlmp_codes(grey: np.ndarray) -> np.ndarray:
    """WLMP code of every interior pixel (section 3.3, steps 1-3).

    Args:
        grey: (..., H, W) integer grey levels 0..255, H, W >= 3.

    Returns:
        (..., H-2, W-2) uint8: min(255, sum_p 2^p d_(p)) with d_(0) <= ... <= d_(7) the
        sorted absolute differences of the 8 neighbours to the centre.
    """
    g = np.asarray(grey).astype(np.int16)
    h, w = g.shape[-2:]
    centre = g[..., 1 : h - 1, 1 : w - 1]
    d = [np.abs(g[..., 1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] - centre) for dy, dx in _OFFSETS]
    # A sorting network on whole arrays: ~10x faster than np.sort over a length-8 axis.
    for i, j in _SORT8:
        d[i], d[j] = np.minimum(d[i], d[j]), np.maximum(d[i], d[j])
    codes = np.zeros(centre.shape, np.int32)
    for p, dp in enumerate(d):
        codes += dp.astype(np.int32) << p  # d_(p) * 2^p
    return np.minimum(codes, 255).astype(np.uint8)


def wlmp_histogram(codes: np.ndarray) -> np.ndarray:
    """(..., h, w) codes -> (..., 256) float64 histograms summing to 1 (section 3.3, step 4)."""
    flat = codes.reshape(-1, codes.shape[-2] * codes.shape[-1]).astype(np.int64)
    offsets = (np.arange(len(flat)) * BINS)[:, None]
    counts = np.bincount((flat + offsets).ravel(), minlength=len(flat) * BINS)
    hist = counts.reshape(len(flat), BINS) / flat.shape[1]
    return hist.reshape(*codes.shape[:-2], BINS)


def wlmp_features(images: Images) -> np.ndarray:
    """WLMP feature vectors of face crops.

    Args:
        images: (B, 3, H, W) float in [0, 1] RGB, or a list of crops (sizes may differ).

    Returns:
        (B, 256) float64, each row a normalised histogram of WLMP codes.
    """
    # numpy from here on: it is quicker than torch for this, and torch's small ops stall
    # badly when other processes oversubscribe the cores.
    crops = [c.cpu().numpy() for c in image_list(images)]
    # Vectorised over small chunks of same-size crops: big stacks only thrash the cache.
    out = np.empty((len(crops), BINS))
    start = 0
    while start < len(crops):
        stop, shape = start + 1, crops[start].shape
        while stop < len(crops) and stop - start < _CHUNK and crops[stop].shape == shape:
            stop += 1
        grey = rgb_to_grey(np.stack(crops[start:stop]))
        out[start:stop] = wlmp_histogram(wlmp_codes(grey))
        start = stop
    return out


def make_classifier(name: str, random_state: int = 0, **params: Any) -> Any:
    """A scikit-learn classifier for WLMP features, with probability outputs.

    Args:
        name: ``"linear"``, ``"poly"``, ``"rbf"``, ``"sigmoid"`` (SVMs; aliases
            ``"polynomial"``, ``"gaussian"``), ``"random_forest"`` (``"rf"``) or ``"knn"``.
        random_state: seed for the forest (the other classifiers are deterministic).
        **params: passed to the estimator (e.g. ``C=10``, ``n_neighbors=3``).

    The paper gives no hyper-parameters, so these are scikit-learn's defaults (SVM C=1,
    gamma="scale", polynomial degree 3; 100 trees; k=5). SVMs and k-NN see standardised
    features (histogram bins differ in scale by orders of magnitude); trees do not need it.
    SVM probabilities come from Platt scaling; k-NN's are vote fractions (coarse, and many
    cloaked faces have identical histograms, so its neighbour ties are broken arbitrarily).
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    kind = _ALIASES.get(name, name)
    if kind in ("linear", "poly", "rbf", "sigmoid"):
        # Platt scaling fitted on 5-fold out-of-fold decisions (fewer with fewer than 5
        # faces of a kind: :meth:`WLMPDetector.fit`), then one SVM on all data:
        # what SVC(probability=True) did before scikit-learn 1.9 deprecated it.
        svm = make_pipeline(StandardScaler(), SVC(kernel=kind, **params))
        return CalibratedClassifierCV(svm, method="sigmoid", ensemble=False)
    if kind == "random_forest":
        return RandomForestClassifier(random_state=random_state, **params)
    if kind == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(**params))
    raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")


class WLMPDetector(Detector):
    """Flags cloaked faces from WLMP texture histograms (restoration-wlmp-defense, 3.3).

    Args:
        classifier: ``"linear"`` (default; the paper's best on P-FGSM), ``"poly"``,
            ``"rbf"``, ``"sigmoid"``, ``"random_forest"`` or ``"knn"``.
        random_state: seed, so fits are repeatable.
        **classifier_params: passed to the scikit-learn estimator.

    Shape:
        - fit: clean (N, 3, H, W), cloaked (M, 3, H, W) in [0, 1] (or lists of crops)
        - score: (B, 3, H, W) -> (B,) probability of "cloaked"

    Example:
        >>> det = WLMPDetector("rbf").fit(clean, cloaked)  # doctest: +SKIP
        >>> det.score(new_faces)  # doctest: +SKIP
    """

    def __init__(self, classifier: str = "linear", random_state: int = 0, **classifier_params):
        self.classifier = _ALIASES.get(classifier, classifier)
        self.random_state = random_state
        self.classifier_params = classifier_params
        make_classifier(self.classifier, random_state, **classifier_params)  # validate early
        self.model_: Any = None

    def __repr__(self) -> str:
        params = {"classifier": self.classifier, "random_state": self.random_state}
        params |= self.classifier_params
        return f"WLMPDetector({', '.join(f'{k}={v!r}' for k, v in params.items())})"

    @property
    def is_fitted(self) -> bool:
        return self.model_ is not None

    def fit(self, clean: Images, cloaked: Images) -> Self:
        """Train on clean (label 0) and cloaked (label 1) face crops; returns ``self``."""
        x_clean = wlmp_features(image_list(clean, "clean"))
        x_cloaked = wlmp_features(image_list(cloaked, "cloaked"))
        x = np.concatenate([x_clean, x_cloaked])
        y = np.arange(len(x)) >= len(x_clean)
        model = make_classifier(self.classifier, self.random_state, **self.classifier_params)
        if hasattr(model, "cv"):  # Platt scaling's folds: no more than the faces of a kind
            model.set_params(cv=max(2, min(5, len(x_clean), len(x_cloaked))))
        self.model_ = model.fit(x, y)
        return self

    def score(self, images: Images) -> np.ndarray:
        """(B,) float in [0, 1]: probability that each crop is cloaked."""
        self._check_fitted()
        proba = self.model_.predict_proba(wlmp_features(images))
        return proba[:, list(self.model_.classes_).index(True)].astype(np.float64)

    def save(self, path: str | Path) -> None:
        """Pickle the fitted classifier. Only :meth:`load` files you made: pickles run code."""
        self._check_fitted()
        state = {
            "format": _FORMAT,
            "classifier": self.classifier,
            "random_state": self.random_state,
            "classifier_params": self.classifier_params,
            "model": self.model_,
        }
        Path(path).write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a detector written by :meth:`save` (trusted files only)."""
        state = pickle.loads(Path(path).read_bytes())
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a saved WLMPDetector")
        det = cls(state["classifier"], state["random_state"], **state["classifier_params"])
        det.model_ = state["model"]
        return det
