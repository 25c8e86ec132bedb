"""How settings become an attack: the one place that turns :class:`CloakSettings` into
a cloak method, an objective and a universal-mask fit.

Read top to bottom:

1. :func:`budget`: the L-inf budget, eps grey levels -> [0, 1] pixels (eps / 255).
2. :data:`PER_PHOTO` and :data:`UNIVERSAL`: method name -> how the resolved settings
   build it. A new method is one file in ``faceguard/cloak/`` plus one entry here (and
   its description in :data:`faceguard.settings.METHODS`).
3. :func:`objective_factory`: what the method optimises (feature distance or the local
   classifier's loss), with expectation over transformations when ``robust``.
4. :func:`fit_universal`: one person's universal mask from their canonical faces.

Everything here takes plain arguments (settings, ensemble, tensors), never a pipeline
job, so the pipeline, the benchmarks and the tests all build the same attack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from faceguard.cloak.base import Cloak
from faceguard.cloak.fgsm import FGSM
from faceguard.cloak.flm import FLM
from faceguard.cloak.iterative import BIM, MIFGSM, PGD
from faceguard.cloak.objectives import ClassifierObjective, FeatureObjective
from faceguard.cloak.perceptual import PerceptualCloak
from faceguard.cloak.pfgsm import PFGSM
from faceguard.cloak.transforms import RandomTransform
from faceguard.cloak.universal import (
    CANONICAL_TEMPLATE,
    Logits,
    UniversalPerturbation,
    UniversalSGD,
)
from faceguard.identity import FaceClassifier, Person, normalised_distance
from faceguard.models.ensemble import Ensemble
from faceguard.progress import StepCallback, no_steps
from faceguard.settings import CloakSettings


def budget(s: CloakSettings) -> float:
    """The L-inf budget in [0, 1] pixels: eps is given in grey levels (0-255)."""
    return s.resolved().eps / 255


#: per-photo methods: name -> (resolved settings, budget) -> the cloak
PER_PHOTO: dict[str, Callable[[CloakSettings, float], Cloak]] = {
    "perceptual": lambda s, eps: PerceptualCloak(eps, steps=s.steps, floor=s.floor),
    "fgsm": lambda s, eps: FGSM(eps),
    "pgd": lambda s, eps: PGD(eps, steps=s.steps),
    "bim": lambda s, eps: BIM(eps, steps=s.steps),
    "mifgsm": lambda s, eps: MIFGSM(eps, steps=s.steps),
    "pfgsm": lambda s, eps: PFGSM(eps, max_steps=s.steps),
    "flm": lambda s, eps: FLM(eps, steps=s.steps),
    "hybrid": lambda s, eps: FLM(eps, steps=s.steps, additive=True),
}

#: universal methods: name -> (resolved settings, budget) -> the mask fitter
UNIVERSAL: dict[str, Callable[[CloakSettings, float], UniversalPerturbation | UniversalSGD]] = {
    "universal": lambda s, xi: UniversalPerturbation(xi=xi, max_passes=max(1, s.steps // 4)),
    "universal-sgd": lambda s, xi: UniversalSGD(xi=xi, steps=s.steps * 5),
}


def make_cloak(s: CloakSettings) -> Cloak:
    """The per-photo cloak method of the settings (not for the universal ones)."""
    s = s.resolved()
    if s.method not in PER_PHOTO:
        raise ValueError(f"{s.method} makes a universal mask, not a per-photo cloak")
    cloak = PER_PHOTO[s.method](s, budget(s))
    cloak.chroma = s.chroma
    return cloak


def eot(s: CloakSettings, seed: int) -> tuple[RandomTransform | None, int, bool]:
    """Expectation over transformations: (transform, draws per step, alignment jitter).

    Without ``robust`` one draw is enough (alignment jitter alone needs no extra draws);
    a single-step method gains nothing from random alignments.
    """
    s = s.resolved()
    transform = RandomTransform(seed) if s.robust else None
    samples = s.eot_samples if s.robust else 1
    return transform, samples, s.method != "fgsm"


def classes(s: CloakSettings, classifier: FaceClassifier, own: Mapping[str, torch.Tensor],
            label: int | None = None) -> tuple[int, int | None]:
    """The classifier objective's (true class, decoy class) for one face.

    ``own``: the face's clean embeddings (model -> (D,)); ``label`` None means "whatever
    the classifier says the face is". Targeted cloaks pull towards the class least like
    the face.
    """
    with torch.no_grad():
        probs = classifier.probabilities({m: e[None] for m, e in own.items()})[0]
    label = int(probs.argmax()) if label is None else label
    target = None
    if s.targeted:
        probs[label] = float("inf")
        target = int(probs.argmin())
    return label, target


def objective_factory(s: CloakSettings, ensemble: Ensemble,
                      centroids: Mapping[str, torch.Tensor] | None = None,
                      decoy: Mapping[str, torch.Tensor] | None = None,
                      classifier: FaceClassifier | None = None, seed: int = 0,
                      references: Mapping[str, torch.Tensor] | None = None
                      ) -> Callable[..., FeatureObjective | ClassifierObjective]:
    """``make(landmarks, label=None, target=None)`` -> the objective of a face (or batch).

    Feature objective: away from ``centroids`` (towards ``decoy`` when given; with the
    ``hull`` lever away from the hull of ``references``, model -> (N, D) or (B, N, D)).
    Classifier objective: away from class ``label`` (towards ``target``; see
    :func:`classes`).
    One EOT transform (seeded by ``seed``) is shared by every objective it makes.
    """
    transform, samples, jitter = eot(s, seed)

    def make(landmarks: np.ndarray, label: int | None = None, target: int | None = None):
        if s.objective == "classifier":
            return ClassifierObjective(ensemble, landmarks, classifier, label, target,
                                       transform, samples, jitter, seed, s.transfer)
        return FeatureObjective(ensemble, landmarks, centroids, decoy, transform=transform,
                                samples=samples, jitter=jitter, seed=seed, levers=s.transfer,
                                references=references)

    return make


def canonical_logits(ensemble: Ensemble, classifier: FaceClassifier) -> Logits:
    """Classifier logits of canonical faces: the mean over heads of log-softmax."""

    def logits(faces: torch.Tensor) -> torch.Tensor:
        emb = ensemble.embed(faces, CANONICAL_TEMPLATE)
        return torch.stack([z.log_softmax(-1) for z in classifier.logits(emb).values()]).mean(0)

    return logits


def fit_universal(s: CloakSettings, ensemble: Ensemble, faces: torch.Tensor,
                  person: Person, generator: torch.Generator,
                  classifier: FaceClassifier | None = None,
                  on_step: StepCallback = no_steps) -> tuple[torch.Tensor, float, str]:
    """One person's universal mask from their canonical faces (B, 3, S, S).

    ``universal`` (DeepFool) fools ``classifier``; ``universal-sgd`` pushes the faces away
    from the ``person``'s centroid (their hull, with the ``hull`` lever); ``on_step`` is
    the fitter's. Returns (mask, fooling rate on the faces, the fitter's repr).
    """
    s = s.resolved()
    fitter = UNIVERSAL[s.method](s, budget(s))
    if isinstance(fitter, UniversalPerturbation):
        v, rate = fitter.fit(faces, canonical_logits(ensemble, classifier), generator, on_step)
        return v, rate, repr(fitter)
    transform, samples, _ = eot(s, s.seed)
    centroids = person.centroids()
    objective = FeatureObjective(ensemble, CANONICAL_TEMPLATE, centroids, transform=transform,
                                 samples=samples, seed=s.seed, levers=s.transfer,
                                 references=person.embeddings)

    def gain(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        objective.clean = faces[idx]  # the "features" lever's reference: these faces
        return objective(x)

    v = fitter.fit(faces, gain, generator, on_step)
    with torch.no_grad():
        emb = ensemble.embed((faces + v).clamp(0, 1), CANONICAL_TEMPLATE)
        d = normalised_distance(ensemble, emb, centroids)
        rate = float((torch.stack(list(d.values())).mean(0) > 1).float().mean())
    return v, rate, repr(fitter)
