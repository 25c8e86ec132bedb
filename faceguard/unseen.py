"""The installed recognizers a cloak is not made on, asked as each photo is written.

A platform runs its own recognizer, so a cloak that fools only the recognizers it was
made on protects nobody. The audit measures that fully (thresholds calibrated on clean
faces, re-uploads, clean-ups); here each written face is also measured, as the manifest
measures it for the cloak's own recognizers (its distance to the person, against the
recognizer's own threshold), by one recognizer of every other installed family. So a
photo's verdict says at once whether a recognizer the cloak never saw still matches the
face (:mod:`faceguard.verdict`), instead of "not checked".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from faceguard.album import embed_faces
from faceguard.face import Face
from faceguard.identity import Person, apart_from
from faceguard.io import Photo, PhotoError, to_tensor
from faceguard.models.catalogue import ModelError, model_info, one_per_family
from faceguard.models.ensemble import Ensemble


@dataclass
class Unseen:
    """Recognizers a cloak is not made on, and the people they measure faces against.

    Attributes:
        ensemble: one recognizer of each installed family the cloak is not made on.
        people: protected person (their index) -> the same person, embedded by
            ``ensemble``: from their reference photos, or where those are not known (the
            app's people, a saved mask) from their faces in the album.
    """

    ensemble: Ensemble
    people: dict[int, Person] = field(default_factory=dict)

    def centroids(self, k: int, face: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """model -> (D,) person ``k``'s centroid without their faces that are ``face``
        itself (its clean embeddings by :attr:`ensemble`), as the cloak's own centroids
        leave it out (:func:`faceguard.identity.apart_from`)."""
        person = self.people[k]
        return person.among(apart_from(self.ensemble, person, face)).centroids()


#: a person's faces embedded at most, spread over all of them
MAX_FACES = 20

#: where a person's face is: a photo, and the face found there or (a reference photo
#: whose box is not kept) its (5, 2) landmarks
Place = tuple[Path, "Face | np.ndarray"]


def load_unseen(made_on: Ensemble, load: Callable[[Sequence[str]], Ensemble],
                protected: Sequence[Person], in_album: dict[int, list[Place]],
                read: Callable[[Path], Photo]) -> Unseen | None:
    """The installed recognizers of the families ``made_on`` lacks (as the audit picks
    them: :func:`faceguard.models.catalogue.one_per_family`), loaded by ``load``, with the
    ``protected`` people embedded (photos read by ``read``): from their reference faces,
    or else from their faces in the album (:attr:`~faceguard.identity.Person.album_faces`,
    else ``in_album``: person index -> places in the photos cloaked). None when no such
    recognizer is installed."""
    families = {made_on[m].family or m for m in made_on.names}
    names = [m for m in one_per_family() if model_info(m)["family"] not in families]
    if not names:
        return None
    try:
        loaded = load(names)
    except ModelError:
        return None
    kept = [loaded[m] for m in loaded.names if m not in made_on.names]
    if not kept:
        return None
    unseen = Unseen(Ensemble(kept))
    for k, person in enumerate(protected):
        places = person.faces or person.album_faces or in_album.get(k, [])
        # spread over them: a centroid of 20 faces is as good as of 200, and each costs a
        # photo's decoding
        embedded = _embedded(unseen.ensemble,
                             places[::max(1, math.ceil(len(places) / MAX_FACES))], read)
        if embedded is not None:
            unseen.people[k] = Person(person.name, embedded)
    return unseen


def _embedded(ensemble: Ensemble, places: Sequence[Place], read: Callable[[Path], Photo]
              ) -> dict[str, torch.Tensor] | None:
    """model -> (N, D) the faces at ``places`` embedded; None when there are none or a
    photo cannot be read. A reference face, whose box is not kept, is aligned from the
    whole photo: within about 0.001 of the same face aligned from its region (the
    antialiasing's pooling grid starts elsewhere)."""
    if not places:
        return None
    out: dict[str, list[torch.Tensor]] = {m: [] for m in ensemble.names}
    with torch.no_grad():
        for path, where in places:
            try:
                image = to_tensor(read(path).pixels)
            except PhotoError:
                return None
            if isinstance(where, Face):
                embedded = {m: e[0] for m, e in embed_faces(ensemble, image, [where]).items()}
            else:
                embedded = {m: e[0] for m, e in
                            ensemble.embed(image, np.asarray(where)[None]).items()}
            for m, e in embedded.items():
                out[m].append(e)
    return {m: torch.stack(v) for m, v in out.items()}
