"""The robust recognizer: an attacker who retrains the recognizers against FaceGuard.

Per recognizer, a small head over its frozen embeddings, trained on other people's
faces so that a cloaked face and its clean original embed together (Radiya-Dixit,
Hong, Carlini and Tramèr, "Data poisoning won't save you from facial recognition",
ICLR 2022: robust training against the cloak). It is a defense in the registry, but
not an image filter: images pass unchanged, and
:func:`faceguard.audit.protection.protection_table` looks through the recognizers
:meth:`RobustRecognizer.adapt` gives, with the gallery mapped by
:meth:`RobustRecognizer.map`.

Limits: a head on frozen features, learned from tens of faces; fine-tuning the whole
network on thousands, as the paper's attacker does, is stronger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from faceguard.audit.defenses.adaptive import (
    _cache_file,
    _device_of,
    _require,
    embed_aligned,
)
from faceguard.audit.defenses.base import _check_images
from faceguard.models.base import Recognizer
from faceguard.models.ensemble import Ensemble


class EmbeddingHead(nn.Module):
    """``h(e) = e + W2 relu(W1 e + b1) + b2``; W2 starts at zero, so h starts as the identity.

    Shape: (..., D) -> (..., D).
    """

    def __init__(self, dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, e: Tensor) -> Tensor:
        return e + self.mlp(e)


class HeadRecognizer(Recognizer):
    """A frozen recognizer followed by an :class:`EmbeddingHead`, with its own threshold."""

    def __init__(self, base: Recognizer, head: EmbeddingHead, threshold: float) -> None:
        super().__init__()
        self.base, self.head = base, head.to(_device_of(base))
        self.name, self.family, self.input_size = base.name, base.family, base.input_size
        self.template, self.distance, self.threshold = base.template, base.distance, threshold

    def forward(self, faces: Tensor) -> Tensor:
        return self.head(self.base.embed(faces))


@dataclass(eq=False)
class RobustRecognizer:
    """Recognizers retrained so that cloaked and clean faces of other people match.

    Per recognizer, an :class:`EmbeddingHead` over its frozen embeddings, trained (Adam,
    full batch) to map a cloaked face's embedding to its clean original's and to keep
    clean embeddings where they are (loss: squared distance in threshold units). The
    head's threshold keeps the recognizer's own false-match rate, measured on the
    stand-in faces of different people (the recognizer's own threshold when they are
    too few). Images pass unchanged; :meth:`adapt` gives the recognizers with heads.

    Args:
        faces: how many stand-in faces to learn from.
        steps: Adam steps.

    Paper: Radiya-Dixit, Hong, Carlini and Tramèr, "Data poisoning won't save you from
    facial recognition", ICLR 2022 (robust training against the cloak). Limits: a head
    on frozen features learns from tens of faces; fine-tuning the whole network on
    thousands, as the paper's attacker does, is stronger.
    """

    faces: int = 16
    steps: int = 300
    heads: dict = field(default_factory=dict, init=False, repr=False)
    thresholds: dict = field(default_factory=dict, init=False, repr=False)

    def fit(self, clean: Tensor, cloaked: Tensor, ensemble: Ensemble,
            people: list[str] | None = None, key: str = "") -> RobustRecognizer:
        """Train a head per recognizer of ``ensemble`` on aligned 112 px ArcFace crops."""
        path = _cache_file("robust", key, f"{self.faces}-{self.steps}-{'+'.join(ensemble.names)}")
        if path is not None and path.is_file():
            state = torch.load(path, weights_only=True)
            for m, sd in state["heads"].items():
                self.heads[m] = EmbeddingHead(sd["mlp.0.weight"].shape[1])
                self.heads[m].load_state_dict(sd)
            self.thresholds = state["thresholds"]
            return self
        both = torch.cat([clean, clean.flip(-1), cloaked, cloaked.flip(-1)])
        with torch.no_grad():
            emb = {m: e.float().cpu() for m, e in embed_aligned(ensemble, both).items()}
        labels = list(people or range(len(clean))) * 2
        for m in ensemble.names:
            e_clean, e_cloaked = emb[m].chunk(2)
            head = _train_head(ensemble[m], e_clean, e_cloaked, self.steps)
            self.heads[m] = head
            self.thresholds[m] = _matched_threshold(ensemble[m], head, e_clean, labels)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"heads": {m: h.state_dict() for m, h in self.heads.items()},
                        "thresholds": self.thresholds}, path)
        return self

    def __call__(self, images: Tensor) -> Tensor:
        """``images`` unchanged (the heads act on embeddings: :meth:`adapt`, :meth:`map`)."""
        _check_images(images)
        _require(bool(self.heads), "the robust recognizer")
        return images

    def adapt(self, ensemble: Ensemble) -> Ensemble:
        """The recognizers of ``ensemble`` with their heads (same names and families)."""
        _require(bool(self.heads), "the robust recognizer")
        return Ensemble([HeadRecognizer(ensemble[m], self.heads[m], self.thresholds[m])
                         for m in ensemble.names])

    def map(self, model: str, embeddings: Tensor) -> Tensor:
        """(N, D) embeddings of ``model`` through its head."""
        _require(bool(self.heads), "the robust recognizer")
        with torch.no_grad():
            return self.heads[model](embeddings.float().cpu()).to(embeddings)



@torch.enable_grad()  # also when the caller runs under torch.no_grad()
def _train_head(rec: Recognizer, clean: Tensor, cloaked: Tensor, steps: int) -> EmbeddingHead:
    """Head with h(cloaked) near clean and h(clean) near clean, in threshold units."""
    torch.manual_seed(0)
    head = EmbeddingHead(clean.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(steps):
        d = torch.cat([rec.compare(head(cloaked), clean), rec.compare(head(clean), clean)])
        loss = (d / rec.threshold).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval().requires_grad_(False)


def _matched_threshold(rec: Recognizer, head: EmbeddingHead, clean: Tensor,
                       labels: list, least: int = 50) -> float:
    """The head's threshold at the false-match rate the recognizer's own threshold has on
    these clean faces' pairs of different people (its own with < ``least`` pairs)."""
    people = np.asarray([str(p) for p in labels])
    impostor = torch.from_numpy(people[:, None] != people[None])
    if int(impostor.sum()) < 2 * least:
        return float(rec.threshold)
    with torch.no_grad():
        before = rec.compare(clean[:, None], clean[None])[impostor]
        after = rec.compare(head(clean)[:, None], head(clean)[None])[impostor]
    far = float((before < rec.threshold).double().mean())
    return float(torch.quantile(after.double(), far)) if far > 0 else float(after.min())


