"""Clustering an album into people, on synthetic embeddings (and one album photo's
face the edge cuts)."""

from __future__ import annotations

import numpy as np
import torch

from faceguard.album import PhotoFaces, album_people
from faceguard.face import Face
from faceguard.identity import cluster_faces
from faceguard.models.base import Recognizer
from faceguard.models.ensemble import Ensemble


class _Toy(Recognizer):
    """Embeddings are given directly; Euclidean distance, threshold 1."""

    name, family, distance, threshold = "toy", "toy", "euclidean", 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


ENSEMBLE = Ensemble([_Toy()])


def _faces() -> dict[str, torch.Tensor]:
    """Five faces: three close together (0.3 apart), two far from them and each other."""
    return {"toy": torch.tensor([[0.0, 0], [0.3, 0], [0.0, 0.3], [5, 5], [-5, 5]])}


def test_close_faces_form_one_person_without_constraints():
    labels = cluster_faces(ENSEMBLE, _faces())
    assert labels.tolist() == [0, 0, 0, 1, 2]


def test_two_faces_of_one_photo_are_never_one_person():
    # faces 0 and 1 are in photo "a": however close, they are two people
    labels = cluster_faces(ENSEMBLE, _faces(), photos=["a", "a", "b", "c", "d"])
    assert labels[0] != labels[1]
    assert labels[2] in (labels[0], labels[1])  # face 2 still joins one of them
    assert len({labels[3], labels[4]} & {labels[0], labels[1], labels[2]}) == 0


def test_three_faces_of_one_photo_make_three_people():
    labels = cluster_faces(ENSEMBLE, _faces(), photos=["a", "a", "a", "b", "c"])
    assert len(set(labels.tolist())) == 5


def test_album_people_keeps_faces_of_one_photo_apart():
    box = Face((0, 0, 10, 10), np.zeros((5, 2)), 1.0)
    emb = _faces()["toy"]
    scanned = [PhotoFaces(None, 10, 10, [box, box, box], {"toy": emb[:3]}),
               PhotoFaces(None, 10, 10, [box, box], {"toy": emb[3:]})]
    people = album_people(scanned, ENSEMBLE)
    for _, where in people:
        photos = [i for i, _ in where]
        assert len(photos) == len(set(photos))
    assert len(people) == 5


def test_the_decoy_is_the_person_least_like_the_protected_one():
    from faceguard.identity import Person
    from faceguard.planning import decoy_for

    me = Person("me", {"toy": torch.tensor([[0.0, 0], [0.2, 0]])})
    near = Person("near", {"toy": torch.tensor([[1.0, 0]])})
    far = Person("far", {"toy": torch.tensor([[0.0, 6], [0.0, 8]])})
    middle = Person("middle", {"toy": torch.tensor([[-4.0, 0]])})
    assert decoy_for(ENSEMBLE, me, [near, far, middle]) is far
    assert decoy_for(ENSEMBLE, far, [me, near, middle]) is middle


def test_faces_the_detector_is_unsure_of_join_a_person_only_near_their_sure_faces():
    """Blurred background faces, faces cut by the edge, a necklace: their poor embeddings
    sit near each other, and the album's grouped four strangers into one person."""
    emb = {"toy": torch.tensor([[0.0, 0], [0.3, 0], [5, 5], [5.3, 5], [5, 5.3], [0.1, 0.1]])}
    sure = np.array([True, True, False, False, False, False])
    assert cluster_faces(ENSEMBLE, emb).tolist() == [0, 0, 1, 1, 1, 0]
    labels = cluster_faces(ENSEMBLE, emb, sure=sure)
    # the unsure face near two sure ones stays with them; the three unsure ones part
    assert labels[5] == labels[0] == labels[1]
    assert len({labels[2], labels[3], labels[4], labels[0]}) == 4


def test_a_face_the_edge_cuts_does_not_hold_unsure_faces_together():
    """The test album's half face at a photo's left edge scores 0.999, but its embedding
    is poor: with dlib alone it kept three blurred strangers together as one person."""
    emb = {"toy": torch.tensor([[0.0, 0], [0.3, 0], [0.0, 0.3]])}
    points = np.array([[2.0, 3], [7, 3], [5, 5], [3, 7], [7, 7]])
    blurred = Face((0, 0, 10, 10), points, 0.92)

    def people(first: Face) -> int:
        scanned = [PhotoFaces(None, 10, 10, [face], {"toy": emb["toy"][k:k + 1]})
                   for k, face in enumerate([first, blurred, blurred])]
        return len(album_people(scanned, ENSEMBLE))

    assert people(Face((0, 0, 10, 10), points, 0.999)) == 1
    assert people(Face((0, 0, 10, 10), points - (4, 0), 0.999)) == 3


def test_the_album_face_the_edge_cuts_is_not_sure(album_dir, detector):
    from faceguard.identity import SURE_FACE, sure_face
    from faceguard.io import load_photo

    photo = load_photo(album_dir / "person_img16" / "img16.jpg")
    h, w = photo.pixels.shape[:2]
    faces = detector(photo.pixels)
    cut = [f for f in faces if f.box[0] == 0]
    assert len(cut) == 1 and cut[0].score >= SURE_FACE
    assert not sure_face(cut[0], w, h)
    assert all(sure_face(f, w, h) for f in faces if f.score >= SURE_FACE and f.box[0] > 0)


def test_every_pair_is_compared_as_one_pair_is_in_both_metrics():
    """Grouping an album compares every face with every other (pair_distances): done by
    broadcasting ``compare``, 2000 faces made an (N, N, 512) array of 8 GB and were killed
    for want of memory. ``pairwise`` gives the same distances without it."""
    from faceguard.identity import pair_distances

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(40, 16, generator=g), torch.randn(25, 16, generator=g)
    cosine = _Toy()
    cosine.distance = "cosine"
    for model in (_Toy(), cosine):
        assert torch.allclose(model.pairwise(a, b), model.compare(a[:, None], b[None]),
                              atol=1e-5)
    assert torch.allclose(pair_distances(ENSEMBLE, {"toy": a}, {"toy": b}),
                          (a[:, None] - b[None]).norm(dim=-1), atol=1e-5)
