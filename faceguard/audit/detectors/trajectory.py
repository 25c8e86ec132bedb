"""Trajectory detector: how a face travels through a recognizer's blocks.

Massoli, Carrara, Amato & Falchi, "Detection of face recognition adversarial attacks"
(trajectory-detector paper), section 4. During the recognizer's forward pass the output of
every block is average-pooled to a vector; at each block, the distance from that vector
to every identity's representative (centroid or medoid, computed on clean reference
faces) is taken. With L blocks and C identities this gives an L x C "trajectory" (the
paper: 16 blocks x 500 identities = 8000 numbers), fed to a binary classifier: an LSTM
reading it as a sequence of L steps of C distances (hidden state 100), or an MLP on the
flattened vector (100 hidden units, ReLU, dropout), each followed by a fully connected
layer and a sigmoid, trained with Adam and binary cross-entropy (150 epochs, batch 256,
learning rate divided by 10 on loss plateaus; classes balanced). Paper Tables 1-2: the
LSTM with medoids and cosine distance is best (AUC 0.96 targeted, 0.82 untargeted).

Two choices the paper leaves open: the distances are standardised per (block, identity)
with the training set's mean and deviation before the classifier (raw L2 distances differ
between blocks by orders of magnitude), and classes are balanced by weighting the loss
(the paper uses a weighted sampler), which has the same expected gradient.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from faceguard.audit.detectors.base import Detector, Images, NotFittedError, image_list
from faceguard.audit.detectors.trajectory_heads import LSTMHead, MLPHead
from faceguard.models.base import Recognizer

Prototype = Literal["centroid", "medoid"]
Distance = Literal["l2", "cosine"]
Head = Literal["lstm", "mlp"]
_FORMAT = "faceguard.TrajectoryDetector/1"
_CHUNK = 32  # faces per recognizer forward pass


def _pool(output: Any) -> torch.Tensor:
    """A block's output -> (B, D): global average pool over everything after the channels."""
    if isinstance(output, tuple | list):
        output = output[0]
    return output.flatten(2).mean(-1) if output.dim() > 2 else output.reshape(len(output), -1)


def _distances(x: torch.Tensor, protos: torch.Tensor, metric: Distance) -> torch.Tensor:
    """(B, D) x (C, D) -> (B, C) distances."""
    if metric == "cosine":
        return 1 - F.normalize(x, dim=1) @ F.normalize(protos, dim=1).T
    return torch.cdist(x, protos)


class TrajectoryDetector(Detector):
    """Flags cloaked faces from their path through a recognizer (trajectory-detector, sec. 4).

    Args:
        recognizer: the face recognizer whose blocks are watched (``recognizer.layers()``).
        prototypes: identity representative per block, ``"medoid"`` (default, the paper's
            best) or ``"centroid"``.
        distance: ``"cosine"`` (default, the paper's best) or ``"l2"``.
        head: ``"lstm"`` (default, the paper's best) or ``"mlp"``.
        layers: names of the blocks to watch, in forward order; default all of them.
        hidden: hidden size of the head (paper: 100).
        dropout: dropout of the MLP head (the paper does not give it).
        epochs, batch_size, lr: Adam training (paper: 150, 256, 1e-4..1e-3).
        seed: makes training repeatable.
        device: where the head runs; default the recognizer's device.

    Usage: give clean reference faces with identity labels (the people a platform knows),
    then clean and cloaked examples::

        det = TrajectoryDetector(rec).fit(clean, cloaked, ref_faces, ref_labels)
        det.score(faces)  # (B,) probability of "cloaked"

    Shape:
        - faces: (B, 3, H, W) RGB in [0, 1], resized to ``recognizer.input_size`` if needed
        - :meth:`trajectories`: (B, L, C) for L blocks and C reference identities
        - :meth:`score`: (B,) float in [0, 1]
    """

    def __init__(
        self,
        recognizer: Recognizer,
        prototypes: Prototype = "medoid",
        distance: Distance = "cosine",
        head: Head = "lstm",
        layers: Sequence[str] | None = None,
        hidden: int = 100,
        dropout: float = 0.5,
        epochs: int = 150,
        batch_size: int = 256,
        lr: float = 1e-3,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        self.recognizer = recognizer
        self.prototypes = prototypes
        self.distance = distance
        self.head = head
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self._check_params()
        available = list(recognizer.layers())
        self.layers = list(layers) if layers is not None else available
        missing = [n for n in self.layers if n not in available]
        if missing or not self.layers:
            raise ValueError(
                f"layers {missing or self.layers} not among {recognizer.name!r}'s "
                f"blocks {available}"
            )
        if device is None:
            param = next(recognizer.parameters(), None)
            device = param.device if param is not None else "cpu"
        self.device = torch.device(device)
        self.classes_: list[Hashable] | None = None
        self.prototypes_: list[torch.Tensor] | None = None  # per block: (C, D_l)
        self.mean_: torch.Tensor | None = None  # (L, C)
        self.std_: torch.Tensor | None = None  # (L, C)
        self.head_: nn.Module | None = None

    def _check_params(self) -> None:
        if self.prototypes not in ("centroid", "medoid"):
            raise ValueError(f"prototypes must be 'centroid' or 'medoid', got {self.prototypes!r}")
        if self.distance not in ("l2", "cosine"):
            raise ValueError(f"distance must be 'l2' or 'cosine', got {self.distance!r}")
        if self.head not in ("lstm", "mlp"):
            raise ValueError(f"head must be 'lstm' or 'mlp', got {self.head!r}")
        if self.hidden < 1 or self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("hidden, epochs, batch_size and lr must be positive")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def __repr__(self) -> str:
        return (
            f"TrajectoryDetector(recognizer={self.recognizer.name!r}, "
            f"prototypes={self.prototypes!r}, distance={self.distance!r}, head={self.head!r}, "
            f"layers={len(self.layers)}, hidden={self.hidden}, epochs={self.epochs}, "
            f"lr={self.lr}, seed={self.seed})"
        )

    @property
    def is_fitted(self) -> bool:
        return self.head_ is not None and self.prototypes_ is not None

    # -- features ---------------------------------------------------------------------

    @contextmanager
    def _hooked(self, store: dict[str, torch.Tensor]):
        """Forward hooks that pool each watched block's output into ``store``."""
        modules = self.recognizer.layers()
        handles = []
        for name in self.layers:

            def hook(_module, _inputs, output, name=name):
                store[name] = _pool(output).float()

            handles.append(modules[name].register_forward_hook(hook))
        was_training = self.recognizer.training
        self.recognizer.eval()
        try:
            yield
        finally:
            for h in handles:
                h.remove()
            self.recognizer.train(was_training)

    def block_features(self, images: Images) -> list[torch.Tensor]:
        """Average-pooled output of every watched block.

        Args:
            images: (B, 3, H, W) in [0, 1] (or a list of crops); resized to the
                recognizer's input size when they are not already that size.

        Returns:
            one (B, D_l) float tensor per block, on the detector's device.
        """
        crops = image_list(images)
        size = self.recognizer.input_size
        rec_device = next(self.recognizer.parameters(), torch.empty(0)).device
        feats: dict[str, list[torch.Tensor]] = {n: [] for n in self.layers}
        store: dict[str, torch.Tensor] = {}
        with self._hooked(store), torch.no_grad():
            for start in range(0, len(crops), _CHUNK):
                batch = torch.stack([_resize(c, size) for c in crops[start : start + _CHUNK]])
                store.clear()
                self.recognizer.embed(batch.to(rec_device))
                for n in self.layers:
                    if n not in store:
                        raise RuntimeError(f"block {n!r} did not run during embed()")
                    feats[n].append(store[n].to(self.device))
        return [torch.cat(feats[n]) for n in self.layers]

    def set_reference(self, faces: Images, labels: Sequence[Hashable]) -> Self:
        """Compute each identity's per-block prototype from clean reference faces.

        Args:
            faces: (N, 3, H, W) clean faces in [0, 1] (or a list of crops).
            labels: N identity labels (str or int), one per face.

        Resets a trained head: the trajectory's width is the number of identities.
        """
        crops = image_list(faces, "reference_faces")
        # numpy scalars become plain Python values so save() stays weights_only-loadable
        labels = [lab.item() if isinstance(lab, np.generic) else lab for lab in labels]
        if len(labels) != len(crops):
            raise ValueError(f"{len(crops)} reference faces but {len(labels)} labels")
        classes = sorted(set(labels), key=lambda c: (str(type(c)), c))
        index = np.array([classes.index(lab) for lab in labels])
        protos = []
        for x in self.block_features(crops):
            rows = []
            for c in range(len(classes)):
                members = x[torch.from_numpy(index == c).to(x.device)]
                if self.prototypes == "centroid":
                    rows.append(members.mean(0))
                else:  # the member closest, in total, to all the others
                    total = _distances(members, members, self.distance).sum(1)
                    rows.append(members[total.argmin()])
            protos.append(torch.stack(rows))
        self.classes_, self.prototypes_ = classes, protos
        self.head_ = self.mean_ = self.std_ = None
        return self

    def trajectories(self, images: Images) -> torch.Tensor:
        """(B, L, C) distances from each face's block vectors to each identity's prototype."""
        if self.prototypes_ is None:
            raise NotFittedError("no reference identities: call set_reference(faces, labels) first")
        feats = self.block_features(images)
        return torch.stack(
            [_distances(x, p, self.distance) for x, p in zip(feats, self.prototypes_, strict=True)],
            dim=1,
        )

    # -- classifier -------------------------------------------------------------------

    def _new_head(self) -> nn.Module:
        n_classes = len(self.classes_ or ())
        if self.head == "lstm":
            return LSTMHead(n_classes, self.hidden)
        return MLPHead(len(self.layers), n_classes, self.hidden, self.dropout)

    def fit(
        self,
        clean: Images,
        cloaked: Images,
        reference_faces: Images | None = None,
        reference_labels: Sequence[Hashable] | None = None,
    ) -> Self:
        """Train the head on clean (label 0) and cloaked (label 1) faces; returns ``self``.

        Args:
            clean, cloaked: face crops, (N, 3, H, W) and (M, 3, H, W) in [0, 1].
            reference_faces, reference_labels: clean faces with identity labels for the
                prototypes; optional if :meth:`set_reference` was called before.
        """
        if (reference_faces is None) != (reference_labels is None):
            raise ValueError("give both reference_faces and reference_labels, or neither")
        if reference_faces is not None:
            self.set_reference(reference_faces, reference_labels)
        if self.prototypes_ is None:
            raise ValueError(
                "no reference identities: pass reference_faces and reference_labels to fit() "
                "or call set_reference() first"
            )
        t_clean = self.trajectories(image_list(clean, "clean"))
        t_cloaked = self.trajectories(image_list(cloaked, "cloaked"))
        x = torch.cat([t_clean, t_cloaked])
        y = torch.cat([torch.zeros(len(t_clean)), torch.ones(len(t_cloaked))]).to(self.device)
        mean, std = x.mean(0), x.std(0, unbiased=False)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        x = (x - mean) / std

        with torch.random.fork_rng(devices=[]):  # repeatable init and dropout
            torch.manual_seed(self.seed)
            head = self._new_head().to(self.device)
            opt = torch.optim.Adam(head.parameters(), lr=self.lr)
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=10)
            # Balance the classes as the paper's weighted sampler does, in expectation.
            pos_weight = torch.tensor(len(t_clean) / len(t_cloaked), device=self.device)
            gen = torch.Generator().manual_seed(self.seed)
            head.train()
            for _ in range(self.epochs):
                order = torch.randperm(len(x), generator=gen).to(self.device)
                total = 0.0
                for start in range(0, len(x), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    loss = F.binary_cross_entropy_with_logits(
                        head(x[idx]), y[idx], pos_weight=pos_weight
                    )
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                plateau.step(total / len(x))
            head.eval()
        self.head_, self.mean_, self.std_ = head, mean, std
        return self

    def score(self, images: Images) -> np.ndarray:
        """(B,) float in [0, 1]: probability that each face is cloaked."""
        self._check_fitted()
        x = (self.trajectories(images) - self.mean_) / self.std_
        with torch.no_grad():
            return torch.sigmoid(self.head_(x)).double().cpu().numpy()

    # -- persistence ------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write head weights, prototypes and settings (not the recognizer: only its name)."""
        self._check_fitted()
        state = {
            "format": _FORMAT,
            "recognizer": self.recognizer.name,
            "config": {
                "prototypes": self.prototypes,
                "distance": self.distance,
                "head": self.head,
                "layers": self.layers,
                "hidden": self.hidden,
                "dropout": self.dropout,
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "seed": self.seed,
            },
            "classes": list(self.classes_),
            "prototypes": [p.cpu() for p in self.prototypes_],
            "mean": self.mean_.cpu(),
            "std": self.std_.cpu(),
            "head": {k: v.cpu() for k, v in self.head_.state_dict().items()},
        }
        torch.save(state, Path(path))

    @staticmethod
    def recognizer_name(path: str | Path) -> str:
        """Name of the recognizer a saved detector was trained on (to load it first)."""
        return _read(path)["recognizer"]

    @classmethod
    def load(
        cls,
        path: str | Path,
        recognizer: Recognizer | None = None,
        device: str | torch.device | None = None,
    ) -> Self:
        """Read a detector written by :meth:`save`.

        Args:
            path: the saved file (tensors and plain values only; loaded with
                ``weights_only=True``).
            recognizer: the same recognizer it was trained on; default
                ``faceguard.models.load_recognizer(<saved name>)``.
            device: where the head runs; default the recognizer's device.
        """
        state = _read(path)
        name = state["recognizer"]
        if recognizer is None:
            from faceguard.models import load_recognizer  # the caller may pass one instead

            recognizer = load_recognizer(name)
        if recognizer.name != name:
            raise ValueError(f"{path} was trained on recognizer {name!r}, not {recognizer.name!r}")
        det = cls(recognizer, device=device, **state["config"])
        det.classes_ = state["classes"]
        det.prototypes_ = [p.to(det.device) for p in state["prototypes"]]
        det.mean_ = state["mean"].to(det.device)
        det.std_ = state["std"].to(det.device)
        head = det._new_head().to(det.device)
        head.load_state_dict(state["head"])
        det.head_ = head.eval()
        return det


def _resize(face: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) -> (3, size, size), bilinear with antialiasing when shrinking."""
    if face.shape[-2:] == (size, size):
        return face
    return F.interpolate(
        face[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )[0].clamp(0, 1)


def _read(path: str | Path) -> dict[str, Any]:
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a saved TrajectoryDetector")
    return state
