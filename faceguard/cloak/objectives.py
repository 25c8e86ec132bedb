"""What a cloak optimises: losses that grow as a face becomes less recognisable.

An objective is called on photo pixels (a region of the photo around one face, or a
batch of aligned crops) and returns (B,) losses. It aligns the faces for every
recognizer of its ensemble through the differentiable warp, so the cloak's gradient
lands in the photo's own full-resolution pixels.

- :class:`FeatureObjective`: deep-feature distance, untargeted (away from the
  person's clean centroid, or with the ``hull`` lever from the convex hull of their
  reference embeddings) or targeted (towards a decoy identity's centroid).
- :class:`ClassifierObjective`: cross-entropy of the local face classifier,
  untargeted (away from the true class) or targeted (towards a decoy class, which
  P-FGSM picks with :func:`pfgsm_target`).

Both average over random alignments (always) and random image transforms (EOT,
``--robust``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from faceguard.align import jitter_landmarks
from faceguard.cloak import transfer
from faceguard.cloak.transforms import (
    BILATERAL_RADIUS,
    Box,
    bilateral,
    bilateral_sr,
    filtered_in,
    grown,
)
from faceguard.identity import FaceClassifier, normalised_distance
from faceguard.models.ensemble import Ensemble, FaceTransform
from faceguard.settings import TRANSFER_LEVERS

#: with the "purify" or "restore" lever, every this many-th draw sees the face through
#: the attacker's filter (2: every other one)
PURIFIED_EVERY = 2

#: purification lever -> the differentiable defense its draws see the face through;
#: with both, the purified draws take them in turn
_PURIFIERS = {"purify": bilateral, "restore": bilateral_sr}

#: how far (pixels) a purifier reads around each pixel, where that is bounded: it is then
#: run only around the pixels the cloak may change (:attr:`_FaceObjective.changing`)
_REACH = {bilateral: BILATERAL_RADIUS}


class _FaceObjective:
    """Shared part: embed under ``samples`` random alignments and transforms (EOT).

    Each sample aligns the faces with slightly jittered landmarks
    (:func:`faceguard.align.jitter_landmarks`), because an attacker's detector will not
    put the landmarks exactly where ours does, then applies ``transform`` if given,
    and the transfer ``levers`` (:mod:`faceguard.cloak.transfer`).
    """

    def __init__(self, ensemble: Ensemble, landmarks: np.ndarray,
                 transform: FaceTransform | None = None, samples: int = 1,
                 jitter: bool = True, seed: int = 0, levers: Sequence[str] = ()) -> None:
        unknown = set(levers) - set(TRANSFER_LEVERS)
        if unknown:
            raise ValueError(f"unknown transfer lever(s) {', '.join(sorted(unknown))}")
        self.ensemble = ensemble
        self.landmarks = landmarks
        self.transform = transform
        self.samples = samples
        self.jitter = jitter
        self.levers = tuple(levers)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.draws = 0  # counts draws, for the purification levers
        self.purifiers = [f for lever, f in _PURIFIERS.items() if lever in self.levers]
        #: the "features" lever's reference: the clean images (B, C, H, W); the images of
        #: the first call when not set
        self.clean: torch.Tensor | None = None
        #: (B,) bool after each call: the face needs no further step (every recognizer
        #: beyond its margin under every draw); cloaks may stop early on it
        self.satisfied = torch.zeros(0, dtype=torch.bool)
        self._beyond: list[torch.Tensor] = []  # per draw, (B,) filled by ``loss``
        self.changing: Box | None = None  # see :meth:`will_change`
        self._unchanged: dict = {}  # purifier -> its output on the first images it saw

    def _embeddings(self, images: torch.Tensor
                    ) -> tuple[list[dict[str, torch.Tensor]], list[torch.Tensor]]:
        """One dict (model -> (B, D)) per draw, and with the ``features`` lever one (B,)
        mid-layer gap per draw (:func:`transfer.feature_gap`; otherwise none). All draws
        go through each recognizer in one batched forward pass (one backward pass too):
        on a CPU, two faces cost far less than twice one (small late feature maps leave
        threads idle)."""
        n = len(images)
        features = "features" in self.levers
        if features:
            # the reference of the mid-layer gap: the faces as first seen (the cloak's
            # start: clean but for a faint random start), aligned and transformed with
            # the cloaked ones so that only the cloak tells them apart
            if self.clean is None:
                self.clean = images.detach().clone()
            images = torch.cat([images, self.clean])
        if "smooth" in self.levers:
            points = np.reshape(self.landmarks, (-1, 5, 2))
            eyes = float(np.linalg.norm(points[:, 0] - points[:, 1], axis=-1).mean())
            images = transfer.smooth_gradient(images, eyes * transfer.SMOOTH_SIGMA_EYES)
        views, marks = [], []
        for _ in range(self.samples):
            self.draws += 1
            if self.purifiers and self.draws % PURIFIED_EVERY == 0:
                turn = self.draws // PURIFIED_EVERY % len(self.purifiers)
                views.append(self._purified(self.purifiers[turn], images))
            else:
                views.append(images)
            m = np.broadcast_to(self.landmarks, (n, 5, 2))
            m = jitter_landmarks(m, self.rng) if self.jitter else m
            marks.append(np.concatenate([m, m]) if features else m)
        faces = self.ensemble.align(torch.cat(views), np.concatenate(marks))
        # per draw: its own random diversity and transform (they draw once per call)
        size = len(images)  # n, or 2n with the clean faces (the second n of each draw)
        draws = [{m: f[k * size:(k + 1) * size] for m, f in faces.items()}
                 for k in range(self.samples)]
        for lever in ("diversity", "spectrum", "scale"):  # input transforms, per draw
            if lever in self.levers:
                change = getattr(transfer, lever)
                draws = [{m: change(f, self.generator) for m, f in d.items()} for d in draws]
        if self.transform is not None:
            draws = [{m: self.transform(f) for m, f in d.items()} for d in draws]
        if "mirror" in self.levers:  # a draw in two, out of step with the purified ones
            first = self.draws - self.samples + 1  # this call's first draw's number
            draws = [{m: f.flip(-1) for m, f in d.items()} if (first + k) % 4 in (2, 3) else d
                     for k, d in enumerate(draws)]
        batched = {m: torch.cat([d[m][:n] for d in draws]) for m in faces}
        ghosts = "dropout" in self.levers  # one ghost model per step, shared by its draws
        skip = "skip" in self.levers
        with (transfer.dropout(self.ensemble, self.generator) if ghosts else nullcontext(),
              transfer.skip_gradient(self.ensemble) if skip else nullcontext(),
              transfer.middle_layers(self.ensemble) if features else nullcontext() as middle):
            embedded = self.ensemble.embed_aligned(batched)
        gaps = []
        if features:  # (B,) per draw: the cloaked faces' gap to the clean ones
            cloaked = dict(middle)
            # the clean faces in a pass of their own, without gradients (half the cost)
            with torch.no_grad(), transfer.middle_layers(self.ensemble) as clean:
                self.ensemble.embed_aligned({m: torch.cat([d[m][n:] for d in draws])
                                             for m in faces})
            gaps = [torch.stack([transfer.feature_gap(cloaked[m][k * n:(k + 1) * n],
                                                      clean[m][k * n:(k + 1) * n])
                                 for m in cloaked]).mean(0)
                    for k in range(self.samples)]
        return [{m: e[k * n:(k + 1) * n] for m, e in embedded.items()}
                for k in range(self.samples)], gaps

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self._beyond = []
        embeddings, gaps = self._embeddings(images)
        losses = torch.stack([self.loss(e) for e in embeddings]).mean(0)
        if gaps:
            losses = losses + transfer.FEATURE_WEIGHT * torch.stack(gaps).mean(0)
        self.satisfied = (torch.stack(self._beyond).all(0) if self._beyond else
                          torch.zeros(len(images), dtype=torch.bool))
        return losses

    def loss(self, embeddings: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def will_change(self, box: Box | None) -> None:
        """From now on, only the pixels in ``box`` (rows, cols) of the images may change
        from call to call (None: any may): what a cloak tells its objective before it
        starts (:class:`faceguard.cloak.base.Cloak`)."""
        self.changing, self._unchanged = box, {}

    def _purified(self, purifier, images: torch.Tensor) -> torch.Tensor:
        """``purifier(images)``, computed only where it can differ from its output on the
        first images seen: around :attr:`changing`, within the purifier's reach (the
        bilateral filter is a tenth of a large face's step, and the cloak changes 40% of
        the region). The same pixels, and the same gradient on every pixel that may
        change, as filtering the whole region."""
        reach = _REACH.get(purifier)
        first = self._unchanged.get(purifier)
        if self.changing is None or reach is None or (
                first is not None and first.shape != images.shape):
            return purifier(images)
        if first is None:
            whole = purifier(images)
            self._unchanged[purifier] = whole.detach()
            return whole
        out = grown(self.changing, reach, images.shape[-2:])  # the outputs that can change
        window = filtered_in(purifier, images, out, reach)
        if window is None:
            return purifier(images)
        result = first.clone()
        result[..., out[0], out[1]] = window
        return result


class FeatureObjective(_FaceObjective):
    """Deep-feature distance to the person's clean centroid (or to a decoy's).

    Untargeted: the mean over recognizers of ``min(d_m / threshold_m, cap)`` (with the
    ``balance`` lever their :func:`soft_minimum`); the cap
    stops a model that is already fooled from hogging the gradient, so the cloak works
    on all models of the ensemble. Once every recognizer is past the cap under every
    draw the loss is flat, so :attr:`satisfied` tells the cloak it may stop (early
    stopping: later steps could only spend visibility). Targeted: minus the mean
    normalised distance to the decoy's centroid (pulled towards someone else).

    Args:
        ensemble: the recognizers to fool.
        landmarks: (5, 2) or (B, 5, 2) landmarks in the images' pixels.
        centroids: model -> (D,) the person's clean centroid.
        decoy: model -> (D,) a decoy identity's centroid, for the targeted form.
        cap: saturation of the untargeted loss, in threshold units: the margin the
            cloak aims for beyond each recognizer's threshold.
        transform, samples, jitter, seed: EOT: a random face transform, how many draws
            per step, alignment jitter, and the seed of the jitter.
        levers: transfer levers (:data:`faceguard.settings.TRANSFER_LEVERS`).
        references: model -> (N, D) the person's reference embeddings, or (B, N, D) per
            face: with the ``hull`` lever the untargeted loss measures the distance to
            their convex hull instead of to ``centroids``.
    """

    def __init__(self, ensemble: Ensemble, landmarks: np.ndarray,
                 centroids: Mapping[str, torch.Tensor],
                 decoy: Mapping[str, torch.Tensor] | None = None, cap: float = 2.0,
                 transform: FaceTransform | None = None, samples: int = 1,
                 jitter: bool = True, seed: int = 0, levers: Sequence[str] = (),
                 references: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__(ensemble, landmarks, transform, samples, jitter, seed, levers)
        self.centroids = dict(centroids)
        self.references = dict(references) if references is not None else None
        self.decoy = dict(decoy) if decoy is not None else None
        self.cap = cap

    def loss(self, embeddings):
        if self.decoy is not None:
            d = normalised_distance(self.ensemble, embeddings, self.decoy)
            return -torch.stack(list(d.values())).mean(0)
        anchors = self.centroids
        if "hull" in self.levers and self.references is not None:
            anchors = self._nearest_in_hull(embeddings)
        d = normalised_distance(self.ensemble, embeddings, anchors)
        if "log" in self.levers:
            return torch.stack([v.clamp_min(1e-3).log() for v in d.values()]).mean(0)
        self._beyond.append(torch.stack([v >= self.cap for v in d.values()]).all(0).detach())
        capped = torch.stack([v.clamp(max=self.cap) for v in d.values()])  # (models, B)
        if "balance" in self.levers:
            return soft_minimum(capped, BALANCE)
        return capped.mean(0)

    def _nearest_in_hull(self, embeddings: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """model -> (B, D) the nearest point of the references' convex hull to each face
        (on the unit sphere for cosine recognizers, where only directions count)."""
        out = {}
        for m, refs in self.references.items():
            e, refs = embeddings[m].detach(), refs.to(embeddings[m])
            if self.ensemble[m].distance == "cosine":
                e, refs = F.normalize(e, dim=-1), F.normalize(refs, dim=-1)
            out[m] = transfer.nearest_in_hull(e, refs)
        return out


#: how sharply the "balance" lever's soft minimum picks the least-fooled recognizer
#: (per threshold unit): at 4, recognizers at 1.27, 1.19 and 1.10 thresholds weigh
#: 0.23, 0.32 and 0.45 in the gradient (their mean: a third each)
BALANCE = 4.0


def soft_minimum(values: torch.Tensor, sharpness: float) -> torch.Tensor:
    """(B,) a smooth minimum over the first axis of ``values`` (N, B):
    ``-log(mean(exp(-sharpness * values))) / sharpness``, equal to the value where all N
    are equal and never above their mean. Its gradient weighs each value by its softmax of
    ``-sharpness * values``: the lowest most."""
    n = values.shape[0]
    return -(torch.logsumexp(-sharpness * values, 0) - math.log(n)) / sharpness


class ClassifierObjective(_FaceObjective):
    """Cross-entropy of the local face classifier, averaged over its per-model heads.

    Args:
        classifier: the local face classifier.
        label: the true class index (untargeted: increase its loss).
        target: a decoy class index (targeted: decrease its loss), or None.
    """

    def __init__(self, ensemble: Ensemble, landmarks: np.ndarray, classifier: FaceClassifier,
                 label: int, target: int | None = None,
                 transform: FaceTransform | None = None, samples: int = 1,
                 jitter: bool = True, seed: int = 0, levers: Sequence[str] = ()) -> None:
        super().__init__(ensemble, landmarks, transform, samples, jitter, seed, levers)
        self.classifier = classifier
        self.label = label
        self.target = target

    def loss(self, embeddings):
        logits = self.classifier.logits(embeddings)
        first = next(iter(logits.values()))
        cls = self.label if self.target is None else self.target
        y = torch.full((first.shape[0],), cls, dtype=torch.long, device=first.device)
        ce = torch.stack([F.cross_entropy(z, y, reduction="none") for z in logits.values()]).mean(0)
        return ce if self.target is None else -ce

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C) averaged class probabilities of the (untransformed) faces."""
        faces = self.ensemble.align(images, self.landmarks)
        return self.classifier.probabilities(self.ensemble.embed_aligned(faces))


def pfgsm_target(probabilities: torch.Tensor, label: int, sigma: float,
                 generator: torch.Generator | None = None) -> int:
    r"""P-FGSM's decoy class (Li, Sanchez-Matilla, Cavallaro 2019; eq. 6 of the restoration paper).

    Sort the probabilities in non-increasing order and pick at random among the classes
    whose preceding cumulative probability exceeds ``sigma``:
    :math:`\hat y = R(\{y_j : \sum_{i=1}^{j-1} p'_i > \sigma\})`. A higher sigma leaves
    fewer, less likely candidates. The true class is never chosen.

    Args:
        probabilities: (C,) class probabilities of the clean face.
        label: the true class.
        sigma: the cumulative threshold in [0, 1).
    """
    if not 0 <= sigma < 1:
        raise ValueError(f"sigma must be in [0, 1), got {sigma}")
    order = torch.argsort(probabilities, descending=True)
    before = torch.cumsum(probabilities[order], 0) - probabilities[order]
    candidates = [int(c) for c, b in zip(order, before, strict=True) if b > sigma and c != label]
    if not candidates:  # sigma so high that only the top class is left: take the runner-up
        candidates = [int(c) for c in order if c != label][:1]
    pick = torch.randint(len(candidates), (1,), generator=generator).item()
    return candidates[pick]
