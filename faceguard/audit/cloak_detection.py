"""Cloak detection: could a platform flag the cloaked photos? Cross-validated scores.

Detectors are trained on clean and cloaked face crops and tested on crops of people
they never saw (folds split by person; by photo when there is only one person), as a
platform would train on other people's photos and then meet yours. (Faces are
detected by :mod:`faceguard.detect`; this module detects cloaks.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from faceguard.audit.detectors.base import Detector, separation
from faceguard.models.base import Recognizer
from faceguard.words import Named, plural

#: detector name -> its plain name and what it is
DETECTORS = {
    "wlmp-linear": Named("texture check (linear SVM)", "WLMP texture histogram + linear SVM "
                         "(restoration paper's best on P-FGSM)"),
    "wlmp-poly": Named("texture check (polynomial SVM)", "WLMP + polynomial-kernel SVM"),
    "wlmp-rbf": Named("texture check (RBF SVM)", "WLMP + RBF-kernel SVM"),
    "wlmp-sigmoid": Named("texture check (sigmoid SVM)", "WLMP + sigmoid-kernel SVM"),
    "wlmp-rf": Named("texture check (random forest)", "WLMP + random forest"),
    "wlmp-knn": Named("texture check (nearest neighbours)", "WLMP + k-nearest neighbours"),
    "trajectory-lstm": Named("deep-feature check (LSTM)", "per-block deep-feature trajectory "
                             "through a recognizer + LSTM"),
    "trajectory-mlp": Named("deep-feature check (MLP)", "per-block deep-feature trajectory "
                            "through a recognizer + MLP"),
    "reconstruction": Named("reconstruction check", "MagNet reconstruction residual of the "
                            "learned clean-up (error statistics + residual map) + logistic "
                            "regression (sparsity-mapping module 1)"),
}


def detector_label(name: str) -> str:
    """The plain name of a detector (its technical name when unknown)."""
    return DETECTORS[name].label if name in DETECTORS else name


#: fewer cloaked faces than this cannot train and test a detector meaningfully
MIN_FACES = 8
#: the ``split`` of a detector trained on stand-in faces and tested on the user's
STAND_INS = "stand-ins"
#: each ``split`` as the report and the app say where its detectors were tested
TESTED_ON = {"person": "other people", "photo": "other photos",
             STAND_INS: "yours (trained on stand-ins)"}
_WLMP = {"wlmp-linear": "linear", "wlmp-poly": "poly", "wlmp-rbf": "rbf",
         "wlmp-sigmoid": "sigmoid", "wlmp-rf": "random_forest", "wlmp-knn": "knn"}


def make_detector(name: str, recognizer: Recognizer | None = None, seed: int = 0) -> Detector:
    """A fresh detector by name (trajectory detectors watch ``recognizer``)."""
    if name in _WLMP:
        from faceguard.audit.detectors.wlmp import WLMPDetector

        return WLMPDetector(_WLMP[name], random_state=seed)
    if name == "reconstruction":
        from faceguard.audit.detectors.reconstruction import ReconstructionDetector

        return ReconstructionDetector()
    if name.startswith("trajectory-"):
        if recognizer is None:
            raise ValueError(f"{name} needs a recognizer to watch")
        from faceguard.audit.detectors.trajectory import TrajectoryDetector

        return TrajectoryDetector(recognizer, head=name.split("-")[1], seed=seed)
    raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")


def has_auc(faces: int | None) -> bool:
    """Whether a detector tested on ``faces`` of the user's cloaked faces (None: on all it
    was trained on) has a ROC AUC worth saying: on a few faces the figures are a face or
    two each, and the AUC says nothing."""
    return faces is None or faces >= MIN_FACES


def shown_auc(detection: dict) -> float | str:
    """A detection row's ROC AUC as the report and the app show it: the figure, or "too
    few faces" (:func:`has_auc`)."""
    return detection["roc_auc"] if has_auc(detection.get("faces")) else "too few faces"


@dataclass
class DetectionResult:
    """Out-of-fold detection figures of one detector."""

    detector: str
    precision: float
    recall: float
    f1: float
    accuracy: float
    roc_auc: float
    flagged_cloaked: float
    flagged_clean: float
    folds: int
    split: str
    roc: dict
    faces: int | None = None  # the user's cloaked faces it was tested on (None: not kept)

    def tested_on(self) -> str:
        """Where the detector was tested, in words (:data:`TESTED_ON`)."""
        return TESTED_ON.get(self.split, self.split)

    def sentence(self) -> str:
        name = detector_label(self.detector)
        trained = (" when trained on stand-in faces FaceGuard cloaked itself"
                   if self.split == STAND_INS else "")
        yours = "your cloaked faces" if self.faces is None else \
            f"your {plural(self.faces, 'cloaked face')}"
        auc = (f"ROC AUC {self.roc_auc:.2f}; 0.5 = cannot tell them apart"
               if has_auc(self.faces) else
               f"too few faces for a ROC AUC, which needs {MIN_FACES}")
        name = name[:1].upper() + name[1:]
        flags = (f"it flags {self.flagged_cloaked:.0%} of them and {self.flagged_clean:.0%} "
                 "of clean ones")
        if self.flagged_clean >= self.flagged_cloaked - TELLS_APART:  # at its threshold
            if has_auc(self.faces) and self.roc_auc - 0.5 >= TELLS_APART_AUC:
                return (f"{name}: its scores tell {yours} from clean ones, though at its "
                        f"threshold {flags}{trained} ({auc})")
            return f"{name}: cannot tell {yours} from clean ones ({flags}){trained} ({auc})"
        return (f"{name}: a platform could flag {self.flagged_cloaked:.0%} of {yours} while "
                f"wrongly flagging {self.flagged_clean:.0%} of clean ones{trained} ({auc})")


#: a detector flagging no more of the cloaked faces than this share over the clean ones
#: it flags cannot tell them apart ("could flag 100%... while wrongly flagging 100%" read
#: as a detection)
TELLS_APART = 0.05
#: ... unless its scores do (a ROC AUC this far above 0.5), its threshold alone misplaced
TELLS_APART_AUC = 0.1


def cross_validate(name: str, clean: Sequence[torch.Tensor], cloaked: Sequence[torch.Tensor],
                   groups: Sequence[str], labels: Sequence[str] | None = None,
                   recognizer: Recognizer | None = None, folds: int = 5, seed: int = 0,
                   split: str = "person") -> DetectionResult:
    """Out-of-fold scores of detector ``name`` on pairs of face crops.

    Args:
        clean, cloaked: N crops each, (3, H, W) in [0, 1]; pair i is one face.
        groups: N group keys (person, or photo); a group never spans train and test.
        labels: N identity labels for the trajectory detector's prototypes.
        folds: at most this many folds (fewer with fewer groups; at least 2 groups).
        split: what the groups are, for the report ("person" or "photo").
    """
    from sklearn.model_selection import GroupKFold

    n = len(clean)
    if n != len(cloaked) or n != len(groups):
        raise ValueError("clean, cloaked and groups must have the same length")
    k = min(folds, len(set(groups)))
    if k < 2:
        raise ValueError("detection needs faces from at least two people or photos")
    if n < MIN_FACES:
        raise ValueError(f"{n} cloaked faces are too few to train and test a detector "
                         f"(at least {MIN_FACES} are needed)")
    scores = np.zeros(2 * n)
    threshold = 0.5
    for train, test in GroupKFold(n_splits=k).split(np.zeros(n), groups=groups):
        det = make_detector(name, recognizer, seed)
        tr_clean, tr_cloaked = [clean[i] for i in train], [cloaked[i] for i in train]
        if name.startswith("trajectory-"):
            ref_labels = [labels[i] if labels else groups[i] for i in train]
            det.fit(tr_clean, tr_cloaked, tr_clean, ref_labels)
        else:
            det.fit(tr_clean, tr_cloaked)
        threshold = det.threshold
        scores[test] = det.score([clean[i] for i in test])
        scores[n + test] = det.score([cloaked[i] for i in test])
    return _result(name, separation(scores[:n], scores[n:], threshold), k, split, n)


def train_and_test(name: str, train: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
                   labels: Sequence[str], test: tuple[Sequence[torch.Tensor],
                                                      Sequence[torch.Tensor]],
                   recognizer: Recognizer | None = None, seed: int = 0) -> DetectionResult:
    """Scores of detector ``name`` trained on (clean, cloaked) stand-in crops, whose people
    are ``labels``, and tested on the user's (clean, cloaked) crops: what a platform that
    trained on other people's cloaks would make of the user's."""
    det = make_detector(name, recognizer, seed)
    if name.startswith("trajectory-"):
        det.fit(*train, train[0], labels)
    else:
        det.fit(*train)
    m = separation(det.score(list(test[0])), det.score(list(test[1])), det.threshold)
    return _result(name, m, 1, STAND_INS, len(test[1]))


def _result(name: str, m: dict, folds: int, split: str, faces: int) -> DetectionResult:
    return DetectionResult(
        detector=name, folds=folds, split=split, faces=faces,
        **{key: round(m[key], 4) for key in ("precision", "recall", "f1", "accuracy", "roc_auc",
                                             "flagged_cloaked", "flagged_clean")},
        roc={key: [round(v, 4) for v in m["roc"][key]] for key in ("fpr", "tpr")},
    )
