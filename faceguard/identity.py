"""Who is who: people as sets of embeddings, album clustering, the local face classifier.

Embeddings are per recognizer (``{"dlib": (N, 128), "mobileface": (N, 256), ...}``).
Distances are always taken in each recognizer's own metric and divided by its
same-person threshold, so "1.0" means "at the threshold" for every model and models
can be averaged fairly.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceguard.face import Face
from faceguard.models.ensemble import Ensemble

Embeddings = Mapping[str, torch.Tensor]  # model name -> (N, D)


@dataclass
class Person:
    """A person: a name and the embeddings of their reference faces, per recognizer;
    ``faces``: where those faces are, as (photo, (5, 2) landmarks), when known (reference
    photos: a universal mask is fitted on them too); ``album_faces``: where their faces
    are in the album, as (photo, :class:`~faceguard.face.Face`), when known beyond the
    photos being cloaked (the app's people: its preview cloaks one photo, and the
    recognizers a cloak is not made on measure it against the person's other photos)."""

    name: str
    embeddings: dict[str, torch.Tensor] = field(default_factory=dict)
    faces: list[tuple[Path, np.ndarray]] = field(default_factory=list)
    album_faces: list[tuple[Path, object]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(next(iter(self.embeddings.values()))) if self.embeddings else 0

    def centroid(self, model: str) -> torch.Tensor:
        """(D,) plain mean of the person's embeddings for ``model`` (not re-normalised)."""
        return self.embeddings[model].mean(0)

    def centroids(self) -> dict[str, torch.Tensor]:
        return {m: self.centroid(m) for m in self.embeddings}

    def among(self, keep: np.ndarray, name: str | None = None) -> Person:
        """The person with only the references where ``keep`` ((N,) bool) holds."""
        rows = np.flatnonzero(keep)
        index = torch.from_numpy(rows).to(next(iter(self.embeddings.values())).device)
        return Person(self.name if name is None else name,
                      {m: e[index] for m, e in self.embeddings.items()},
                      [self.faces[i] for i in rows] if self.faces else [])


def normalised_distance(ensemble: Ensemble, embeddings: Embeddings,
                        centroids: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """model -> (N,) distance to the centroid divided by the model's threshold (1 = threshold)."""
    out = {}
    for m in embeddings:
        if m in centroids:
            r = ensemble[m]
            out[m] = r.compare(embeddings[m], centroids[m].to(embeddings[m])) / r.threshold
    return out


def mean_distance(ensemble: Ensemble, embeddings: Embeddings, person: Person) -> torch.Tensor:
    """(N,) normalised distance of the faces to the person, averaged over the models."""
    dists = normalised_distance(ensemble, embeddings, person.centroids())
    return torch.stack(list(dists.values())).mean(0)


def same_person(ensemble: Ensemble, embeddings: Embeddings, person: Person) -> torch.Tensor:
    """(N,) bool: the faces are this person by the mean normalised distance over models."""
    return mean_distance(ensemble, embeddings, person) < 1.0


#: the cut of :func:`cluster_faces`, in threshold units: two groups of faces whose mean
#: distance is below it are one person (below 1 to resist chaining strangers)
SAME_PERSON_CUT = 0.9


def pair_distances(ensemble: Ensemble, a: Embeddings, b: Embeddings) -> torch.Tensor:
    """(Na, Nb) distance of every face of ``a`` to every face of ``b``, each model's
    divided by its threshold and averaged over the models of ``a``."""
    dist = 0
    for m, e in a.items():
        dist = dist + (ensemble[m].pairwise(e, b[m]) / ensemble[m].threshold).cpu()
    return dist / len(a)


def likeliest_face(ensemble: Ensemble, faces: Embeddings, theirs: Embeddings | None) -> int:
    """Which of one photo's faces (``faces``: model -> (F, D), the largest first) is the
    person whose other faces ``theirs`` are (model -> (N, D)): the one nearest them on
    average (:func:`pair_distances`; one stray photo among them does not decide); the
    largest when ``theirs`` is None. In a group photo the largest face is often a
    stranger's."""
    if theirs is None or len(next(iter(faces.values()))) == 1:
        return 0
    return int(pair_distances(ensemble, faces, {m: theirs[m] for m in faces})
               .mean(1).argmin())


#: a reference this close to a face (:func:`pair_distances`) is that very face: the same
#: photo, or a chip ``faceguard people`` cut from it (0.03-0.10 on the 10 chips of two
#: people of the test album, dlib + mobileface + faceres), where two photos of one person
#: in the album are 0.32 apart at least (0.35 at the 1st percentile of their pairs)
SAME_FACE_CUT = 0.2


def apart_from(ensemble: Ensemble, person: Person, face: Embeddings) -> np.ndarray:
    """(N,) bool: which of the person's references are not ``face`` itself (model -> (D,)
    its clean embeddings); all of them when every reference is that face.

    A platform matches an uploaded photo against other photos of the person, not
    against the clean copy of the same photo, which is never uploaded. The app's
    people are the album's own faces and ``faceguard people`` writes its chips from
    them, so without this each face was pushed from, and measured against, a centroid
    partly made of itself.
    """
    apart = (pair_distances(ensemble, person.embeddings, {m: e[None] for m, e in face.items()})
             [:, 0] >= SAME_FACE_CUT).numpy()
    return apart if apart.any() else np.ones_like(apart)


def centroids_apart_from(ensemble: Ensemble, person: Person,
                         face: Embeddings) -> dict[str, torch.Tensor]:
    """model -> (D,) the person's centroid without their references that are ``face``
    itself (:func:`apart_from`)."""
    apart = apart_from(ensemble, person, face)
    return person.centroids() if apart.all() else person.among(apart).centroids()


#: a face the detector scores at least this high is one it is sure of (:func:`sure_face`):
#: on the test album every face in focus scores 0.98 or more; blurred background faces,
#: most faces cut by the edge and a necklace score 0.91-0.96
SURE_FACE = 0.97


def sure_face(face: Face, width: int, height: int) -> bool:
    """Whether ``face`` of a ``width`` x ``height`` photo has an embedding to trust when
    grouping people (:func:`cluster_faces`): the detector scores it at least
    :data:`SURE_FACE` and its five landmarks lie inside the photo. A face the edge cuts
    through an eye or the mouth can score 0.999 (the test album's, half of a face at a
    photo's left edge), but half its aligned crop is the photo's mirror: with dlib alone
    it held three blurred strangers' faces together as one person."""
    inside = (face.landmarks >= 0) & (face.landmarks <= (width, height))  # (5, 2) x, y
    return face.score >= SURE_FACE and bool(inside.all())


def cluster_faces(ensemble: Ensemble, embeddings: Embeddings,
                  threshold: float = SAME_PERSON_CUT,
                  photos: Sequence[Hashable] | None = None,
                  sure: np.ndarray | None = None) -> np.ndarray:
    """Group faces into people: average-linkage clustering on the mean normalised distance.

    Args:
        embeddings: model -> (N, D) embeddings of all faces of an album.
        threshold: cut height in threshold units (below 1 to resist chaining strangers).
        photos: N keys, the photo of each face. Faces of one photo are never one person
            (a cannot-link constraint: a person appears at most once in a photo).
        sure: (N,) bool, the faces the detector is sure of. The others (blurred
            background faces, faces cut by the edge, a necklace) sit near each other as
            their embeddings are poor: the test album's grouped four strangers so. Such a
            face stays in its group only when it is near the group's sure faces (their
            mean distance below ``threshold``), else it is a person of its own.

    Returns:
        (N,) int labels, 0 for the largest cluster, then by decreasing size.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    n = len(next(iter(embeddings.values())))
    if n == 1:
        return np.zeros(1, dtype=int)
    dist = pair_distances(ensemble, embeddings, embeddings).fill_diagonal_(0)
    dist = ((dist + dist.T) / 2).clamp_min(0).numpy().astype(np.float64)
    if photos is not None:
        # Average linkage merges two groups at the mean of their cross distances: one
        # cross pair this far apart lifts any such mean above the cut, so groups that
        # hold two faces of one photo are never merged, and no other merge changes.
        index = {p: k for k, p in enumerate(dict.fromkeys(photos))}
        key = np.asarray([index[p] for p in photos])
        same_photo = (key[:, None] == key[None]) & ~np.eye(n, dtype=bool)
        dist[same_photo] = threshold * n * n + 1.0
    raw = fcluster(linkage(squareform(dist, checks=False), "average"), threshold, "distance")
    if sure is not None:  # an unsure face stays only with sure faces of its group it is near
        for k in np.flatnonzero(~sure):
            mates = np.flatnonzero((raw == raw[k]) & sure)
            if (raw == raw[k]).sum() > 1 and (not len(mates) or dist[k, mates].mean() >= threshold):
                raw[k] = raw.max() + 1
    # relabel by size, largest first, ties by first appearance
    order = sorted(set(raw), key=lambda c: (-(raw == c).sum(), np.argmax(raw == c)))
    return np.array([order.index(c) for c in raw])


#: the cut of :func:`split_people`, in threshold units: every recognizer's own
#: same-person threshold, on average. Higher than the album's cut, as references are
#: given as one person: of the test album's 140 same-person pairs none is above it
#: (2% are above 0.9), of its 1690 pairs of different people 1% are below it
REFERENCES_APART = 1.0


def split_people(ensemble: Ensemble, person: Person) -> list[Person]:
    """``person``'s references grouped into people (:func:`cluster_faces` at
    :data:`REFERENCES_APART`): ``[person]`` when they are one, else one person per
    group, largest first, named "<name> (1)", "(2)", ... (e.g. ``--protect people``,
    every person's chips, where ``--protect people/person-1`` was meant)."""
    labels = cluster_faces(ensemble, person.embeddings, REFERENCES_APART)
    if labels.max() == 0:
        return [person]
    return [person.among(labels == k, f"{person.name} ({k + 1})")
            for k in range(labels.max() + 1)]


class FaceClassifier(nn.Module):
    """The local face classifier: a softmax head per recognizer over normalised embeddings.

    Each head is a cosine classifier (logits = scale * cos(embedding, class weight) +
    bias), initialised at the class centroids and fine-tuned with cross-entropy, so it
    trains in well under a second. The ensemble prediction averages the heads' softmax.

    Args:
        people: the classes, in order.
        scale: logit scale (temperature) of the cosine classifier.
    """

    def __init__(self, people: Sequence[Person], scale: float = 16.0) -> None:
        super().__init__()
        if len(people) < 2:
            raise ValueError("a face classifier needs at least two people; add others "
                             "with --gallery DIR, or use the feature objective")
        self.names = [p.name for p in people]
        self.scale = scale
        models = set.intersection(*(set(p.embeddings) for p in people))
        self.weights = nn.ParameterDict()
        self.biases = nn.ParameterDict()
        for m in sorted(models):
            centroids = torch.stack([F.normalize(p.embeddings[m], dim=-1).mean(0) for p in people])
            self.weights[m] = nn.Parameter(F.normalize(centroids, dim=-1))
            self.biases[m] = nn.Parameter(torch.zeros(len(people)))
        self._people = list(people)

    @property
    def models(self) -> list[str]:
        return list(self.weights)

    def fit(self, steps: int = 200, lr: float = 0.01) -> FaceClassifier:
        """Fine-tune every head on the people's own embeddings (full batch, Adam)."""
        labels = torch.cat([torch.full((len(p),), i) for i, p in enumerate(self._people)])
        feats = {m: torch.cat([p.embeddings[m] for p in self._people]).detach()
                 for m in self.models}
        opt = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=1e-4)
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                loss = sum(F.cross_entropy(z, labels) for z in self.logits(feats).values())
                loss.backward()
                opt.step()
        self.requires_grad_(False)
        return self

    def logits(self, embeddings: Embeddings) -> dict[str, torch.Tensor]:
        """model -> (B, C) logits."""
        out = {}
        for m in self.models:
            if m in embeddings:
                cos = F.normalize(embeddings[m], dim=-1) @ F.normalize(self.weights[m], dim=-1).T
                out[m] = self.scale * cos + self.biases[m]
        return out

    def probabilities(self, embeddings: Embeddings) -> torch.Tensor:
        """(B, C) class probabilities averaged over the heads."""
        probs = [z.softmax(-1) for z in self.logits(embeddings).values()]
        return torch.stack(probs).mean(0)

    def predict(self, embeddings: Embeddings) -> torch.Tensor:
        """(B,) predicted class indices."""
        return self.probabilities(embeddings).argmax(-1)

    def index(self, name: str) -> int:
        return self.names.index(name)
