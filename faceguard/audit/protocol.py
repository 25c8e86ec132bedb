"""The protection protocol behind the benchmarks' figures (``benchmarks/protection.py``,
``protection_album.py``), on embeddings of an attacker's view of the faces:

- :func:`calibrate`: each recognizer's match threshold at a false-accept rate (FAR),
  from clean impostor comparisons of the same data, instead of the recognizer's fixed
  threshold;
- :func:`evasion`: cloaked photos are searched in a clean gallery;
- :func:`poisoning`: the person's gallery entry is built from their cloaked photos
  (scraped after upload) and clean photos of them are searched;
- both report verification at each calibrated FAR (protected: farther from the
  person's entry than the threshold) and top-1 identification among every identity,
  and, given the photos uncloaked, the same of the faces matched without the cloak.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from faceguard.models.ensemble import Ensemble

#: false-accept rates the protocol calibrates thresholds at
FARS = (0.01, 0.001)

Embeddings = Mapping[str, torch.Tensor]  # model -> (N, D)


def centroids(ensemble: Ensemble, embeddings: Embeddings, labels: Sequence[str]
              ) -> tuple[list[str], dict[str, torch.Tensor]]:
    """(names, model -> (P, D)): each person's mean embedding, people sorted by name."""
    names = sorted(set(labels))
    index = np.array(labels)
    return names, {m: torch.stack([embeddings[m][torch.from_numpy(index == n)].mean(0)
                                   for n in names]) for m in ensemble.names}


def calibrate(ensemble: Ensemble, embeddings: Embeddings, labels: Sequence[str],
              fars: Sequence[float] = FARS) -> dict[str, dict[float, float]]:
    """Per recognizer and FAR, the distance below which two faces are called a match.

    The decision the protocol takes is "is this face the person of that gallery entry
    (a centroid)?", so the threshold is calibrated on the same comparison: every clean
    face against every *other* person's centroid (impostor pairs). At FAR f, a share f
    of impostor comparisons falls below the threshold.

    Args:
        embeddings: model -> (N, D) clean faces of at least two people.
        labels: (N,) person of each face.
    """
    names, cents = centroids(ensemble, embeddings, labels)
    if len(names) < 2:
        raise ValueError("calibrating a threshold needs clean faces of at least two people")
    impostor = torch.from_numpy(np.array(labels)[:, None] != np.array(names)[None])
    out = {}
    for m in ensemble.names:
        d = ensemble[m].compare(embeddings[m][:, None], cents[m][None])[impostor]
        out[m] = {far: float(torch.quantile(d.double(), far)) for far in fars}
    return out


def _own_distances(ensemble: Ensemble, queries: Embeddings, truth: Sequence[str],
                   names: list[str], cents: Embeddings) -> dict[str, torch.Tensor]:
    """model -> (Q, P) distance of each query to each entry, the query's own first."""
    own = torch.tensor([names.index(t) for t in truth])
    out = {}
    for m in ensemble.names:
        d = ensemble[m].compare(queries[m][:, None], cents[m][None])  # (Q, P)
        out[m] = torch.cat([d[torch.arange(len(own)), own][:, None], d], 1)
    return out


def _rates(ensemble: Ensemble, queries: Embeddings, truth: Sequence[str], names: list[str],
           cents: Embeddings, thresholds: Mapping[str, Mapping[float, float]],
           before: Mapping[str, torch.Tensor] | None = None) -> dict[str, dict[str, float]]:
    """Per recognizer: share of ``queries`` not matched to their own entry at each FAR
    (``"far_0.01"``) and not identified as themselves (``"top1"``).

    With ``before`` (:func:`_own_distances` of the same search without the cloak), also
    the share the attacker matched without it (``"recognised_far_0.01"``) and, of those,
    the share the cloak turned (``"turned_far_0.01"``, None when none was matched): a face
    missed even uncloaked is not the cloak's doing, and counted it flatters the cloak
    (mobileface missed 42% of the clean crops)."""
    own = torch.tensor([names.index(t) for t in truth])
    distances, out = _own_distances(ensemble, queries, truth, names, cents), {}
    for m in ensemble.names:
        d = distances[m]
        row: dict[str, float | None] = {f"far_{far:g}": float((d[:, 0] > thr).float().mean())
                                        for far, thr in thresholds[m].items()}
        row["top1"] = float((d[:, 1:].argmin(1) != own).float().mean())
        for far, thr in thresholds[m].items() if before is not None else ():
            seen = before[m][:, 0] <= thr
            row[f"recognised_far_{far:g}"] = float(seen.float().mean())
            row[f"turned_far_{far:g}"] = (float((d[seen, 0] > thr).float().mean())
                                          if seen.any() else None)
        out[m] = {k: None if v is None else round(v, 4) for k, v in row.items()}
    return out


def evasion(ensemble: Ensemble, cloaked: Embeddings, truth: Sequence[str],
            gallery: Embeddings, gallery_labels: Sequence[str],
            thresholds: Mapping[str, Mapping[float, float]],
            clean: Embeddings | None = None) -> dict[str, dict[str, float]]:
    """Evasion: cloaked photos (model -> (N, D), person ``truth``) searched in a clean
    gallery (model -> (G, D), every identity). Returns model -> rate name -> share
    protected (see :func:`_rates`; with ``clean``, the same photos uncloaked, also of
    those matched uncloaked)."""
    names, cents = centroids(ensemble, gallery, gallery_labels)
    before = None if clean is None else _own_distances(ensemble, clean, truth, names, cents)
    return _rates(ensemble, cloaked, truth, names, cents, thresholds, before)


def poisoning(ensemble: Ensemble, cloaked: Embeddings, cloaked_labels: Sequence[str],
              clean_queries: Embeddings, query_labels: Sequence[str], gallery: Embeddings,
              gallery_labels: Sequence[str],
              thresholds: Mapping[str, Mapping[float, float]],
              clean: Embeddings | None = None) -> dict[str, dict[str, float]]:
    """Poisoning: each protected person's gallery entry is the centroid of their cloaked
    photos (what a scraper collects after upload); everyone else's is clean. Clean photos
    of the protected people (``clean_queries``, not the cloaked ones' originals) are
    searched. Returns model -> rate name -> share protected (see :func:`_rates`; with
    ``clean``, the cloaked photos' originals, also of the queries matched when the entry
    is made of those)."""
    protected = set(cloaked_labels)
    keep = [k for k, n in enumerate(gallery_labels) if n not in protected]

    def entries(faces: Embeddings) -> tuple[list[str], dict[str, torch.Tensor]]:
        mixed = {m: torch.cat([gallery[m][keep], faces[m]]) for m in ensemble.names}
        return centroids(ensemble, mixed, [gallery_labels[k] for k in keep]
                         + list(cloaked_labels))

    names, cents = entries(cloaked)
    before = None if clean is None else _own_distances(ensemble, clean_queries, query_labels,
                                                       *entries(clean))
    return _rates(ensemble, clean_queries, query_labels, names, cents, thresholds, before)
