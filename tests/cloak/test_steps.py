"""Every optimisation loop reports each step to ``on_step`` and stops when it raises
:class:`faceguard.progress.Cancelled` (real face, real dlib; few steps)."""

from __future__ import annotations

import pytest
import torch

from faceguard.album import embed_faces
from faceguard.cloak.iterative import PGD
from faceguard.cloak.objectives import ClassifierObjective, FeatureObjective
from faceguard.cloak.photo import cloak_face, crop_face
from faceguard.cloak.recipe import PER_PHOTO, UNIVERSAL, fit_universal, make_cloak
from faceguard.cloak.universal import (
    CANONICAL_TEMPLATE,
    UniversalPerturbation,
    UniversalSGD,
    canonical_faces,
)
from faceguard.identity import FaceClassifier, Person
from faceguard.io import to_tensor
from faceguard.models.ensemble import Ensemble
from faceguard.progress import Cancelled
from faceguard.settings import CloakSettings

STEPS = 3


@pytest.fixture(scope="module")
def face(astronaut, detector, load_model):
    """The astronaut's face crop, dlib, her centroid and a two-class classifier."""
    ensemble = Ensemble([load_model("dlib")])
    photo = to_tensor(astronaut / 255.0)
    found = detector(astronaut)[0]
    crop = crop_face(photo, found, ensemble)
    own = embed_faces(ensemble, photo, [found])["dlib"]
    # a stand-in second class: the classifier's mechanics, not a real person
    other = torch.nn.functional.normalize(torch.randn(3, own.shape[1],
                                                      generator=torch.Generator().manual_seed(0)))
    classifier = FaceClassifier([Person("astronaut", {"dlib": own}),
                                 Person("someone", {"dlib": other})]).fit()
    return photo, found, crop, ensemble, {"dlib": own[0]}, classifier


class Steps:
    """An on_step that records its calls and can cancel at a given step."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.cancel_at = cancel_at

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))
        if done == self.cancel_at:
            raise Cancelled

    def counted_up(self) -> bool:
        """Calls were (1, total), (2, total), ... with one total."""
        total = self.calls[0][1] if self.calls else 0
        return self.calls == [(n, total) for n in range(1, len(self.calls) + 1)]


@pytest.mark.parametrize("method", list(PER_PHOTO))
def test_every_per_photo_method_reports_every_step(face, method):
    _, _, crop, ensemble, centroids, classifier = face
    cloak = make_cloak(CloakSettings(method=method, steps=STEPS, models=("dlib",)))
    if method == "pfgsm":
        objective = ClassifierObjective(ensemble, crop.landmarks, classifier, label=0)
    else:
        objective = FeatureObjective(ensemble, crop.landmarks, centroids)
    steps = Steps()
    cloak(crop.pixels, objective, crop.weight, torch.Generator().manual_seed(0), steps)
    total = 1 if method == "fgsm" else STEPS
    assert steps.counted_up() and steps.calls[0][1] == total
    # P-FGSM may stop early once the decoy is reached; the others run every step
    assert len(steps.calls) == total or method == "pfgsm"


def test_cancel_stops_a_cloak_at_the_step(face):
    _, _, crop, ensemble, centroids, _ = face
    steps = Steps(cancel_at=2)
    with pytest.raises(Cancelled):
        PGD(8 / 255, steps=50)(crop.pixels, FeatureObjective(ensemble, crop.landmarks, centroids),
                               crop.weight, on_step=steps)
    assert steps.calls == [(1, 50), (2, 50)]


def test_seeded_cloak_is_the_same_with_or_without_a_step_callback(face):
    _, _, crop, ensemble, centroids, _ = face
    cloak = make_cloak(CloakSettings(steps=STEPS, models=("dlib",)))

    def run(on_step=None):  # a new objective each time: its alignment jitter is seeded
        objective = FeatureObjective(ensemble, crop.landmarks, centroids, seed=1)
        return cloak(crop.pixels, objective, crop.weight, torch.Generator().manual_seed(1),
                     on_step)

    # one thread: on some CPUs (this project's Intel Xeon) two threads alone make two
    # identical runs differ by a few thousandths (a sum's order), which the steps amplify
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        plain, watched = run(), run(Steps())
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(plain, watched)


def test_the_visibility_guard_repeats_the_last_step_so_a_job_can_stop_there(face):
    photo, found, _, ensemble, centroids, _ = face

    def run(on_step) -> None:  # a loud cloak: the guard has to scale it down (bisection)
        cloak_face(photo, found, PGD(16 / 255, steps=2), ensemble,
                   lambda landmarks: FeatureObjective(ensemble, landmarks, centroids),
                   floor=90, on_step=on_step)

    steps = Steps()
    run(steps)
    assert steps.calls[:2] == [(1, 2), (2, 2)] and len(steps.calls) > 3
    assert set(steps.calls[2:]) == {(2, 2)}  # no progress, but a point to stop at
    calls = []

    def cancel_in_the_guard(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 4:
            raise Cancelled

    with pytest.raises(Cancelled):
        run(cancel_in_the_guard)
    assert len(calls) == 4


def test_universal_fitters_report_every_step(face):
    photo, found, _, ensemble, centroids, _ = face
    faces = canonical_faces(photo, found.landmarks).repeat(2, 1, 1, 1)
    objective = FeatureObjective(ensemble, CANONICAL_TEMPLATE, centroids)
    steps = Steps()
    UniversalSGD(steps=STEPS, batch=2).fit(faces, lambda x, idx: objective(x), on_step=steps)
    assert steps.counted_up() and steps.calls[-1] == (STEPS, STEPS)

    # DeepFool's passes over the faces: one step per face visited (a linear classifier)
    w = torch.randn(3, faces[0].numel(), generator=torch.Generator().manual_seed(0))
    steps = Steps()
    UniversalPerturbation(max_passes=2, delta=0.0).fit(
        faces, lambda x: x.flatten(1) @ w.T, torch.Generator().manual_seed(0), steps)
    assert steps.counted_up() and steps.calls[0][1] == 2 * len(faces)
    assert len(steps.calls) % len(faces) == 0  # whole passes

    steps = Steps(cancel_at=2)
    with pytest.raises(Cancelled):
        UniversalSGD(steps=50).fit(faces, lambda x, idx: objective(x), on_step=steps)
    assert len(steps.calls) == 2


def test_the_recipe_hands_the_step_callback_to_the_fitter(face):
    photo, found, _, ensemble, centroids, _ = face
    faces = canonical_faces(photo, found.landmarks)
    s = CloakSettings(method="universal-sgd", steps=1, models=("dlib",), robust=False)
    steps = Steps()
    person = Person("astronaut", {m: c[None] for m, c in centroids.items()})
    fit_universal(s, ensemble, faces, person, torch.Generator().manual_seed(0),
                  on_step=steps)
    expected = UNIVERSAL["universal-sgd"](s.resolved(), 1.0).steps
    assert steps.counted_up() and len(steps.calls) == expected

