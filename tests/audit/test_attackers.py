"""Detect-then-purify, the reconstruction check, and the attackers who train against
FaceGuard: registration and mechanics.

What these show: the pieces learn what they are given (a fixed perturbation pattern, or
noise the reformer cannot redraw) and generalise it to faces they never saw. They do not
show what these attackers do to a real cloak: that is benchmarks/attackers.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from faceguard.align import ARCFACE_112
from faceguard.audit.cloak_detection import DETECTORS, cross_validate, make_detector
from faceguard.audit.defenses import (
    DEFENSES,
    TRAINED,
    AdaptivePurifier,
    DetectThenPurify,
    Purifier,
    RobustRecognizer,
    make_defense,
)
from faceguard.audit.defenses.adaptive import fit_trained
from faceguard.audit.defenses.robust import EmbeddingHead
from faceguard.audit.detectors import NotFittedError, ReconstructionDetector
from faceguard.audit.detectors.base import separation
from faceguard.audit.protection import AuditFace, Gallery, protection_table
from faceguard.models.base import Recognizer
from faceguard.models.ensemble import Ensemble
from faceguard.training_pairs import TrainingPairs, cloaked_pairs


def _noisy(x: torch.Tensor, eps: float = 8 / 255, seed: int = 0) -> torch.Tensor:
    """A random-sign +-eps pattern per face: noise of a cloak's size, off the face manifold."""
    g = torch.Generator().manual_seed(seed)
    sign = torch.randint(0, 2, x.shape, generator=g).float() * 2 - 1
    return (x + eps * sign).clamp(0, 1)


@pytest.fixture(scope="module")
def split(celeb24_crops):
    """Clean celeb24 crops of 4 people to train on, and of 3 others to test on."""
    x, labels = celeb24_crops
    train = torch.from_numpy(np.isin(labels, [0, 1, 2, 3]))
    test = torch.from_numpy(np.isin(labels, [20, 21, 22]))
    return x[train][::3], x[test][::3]


# ---------------------------------------------------------------- registration


def test_the_new_defenses_and_detector_are_registered_with_plain_names():
    assert set(TRAINED) == {"detect-then-purify", "adaptive-purifier", "robust-recognizer"}
    assert DEFENSES["adaptive-purifier"].label.startswith("an attacker who trains against")
    assert DEFENSES["robust-recognizer"].label.startswith("an attacker who trains against")
    for name in TRAINED:
        assert DEFENSES[name].citation and DEFENSES[name].limits
        assert "faces" in DEFENSES[name].defaults
    assert DETECTORS["reconstruction"].label == "reconstruction check"
    assert isinstance(make_detector("reconstruction"), ReconstructionDetector)
    assert isinstance(make_defense("detect-then-purify", faces=4), DetectThenPurify)


@pytest.mark.parametrize("name", TRAINED)
def test_a_learning_defense_refuses_to_run_before_it_is_fitted(name):
    with pytest.raises(NotFittedError):
        make_defense(name)(torch.rand(1, 3, 32, 32))


# ---------------------------------------------------------------- reconstruction check


def test_reconstruction_check_spots_noise_on_people_it_never_saw(split, tmp_path):
    train, test = split
    det = ReconstructionDetector().fit(train, _noisy(train))
    m = separation(det.score(test), det.score(_noisy(test, seed=1)), det.threshold)
    assert m["roc_auc"] > 0.95, m["roc_auc"]
    # save / load gives the same scores
    det.save(tmp_path / "det.pkl")
    again = ReconstructionDetector.load(tmp_path / "det.pkl")
    assert np.allclose(again.score(test[:4]), det.score(test[:4]))


def test_reconstruction_check_runs_in_the_audit_cross_validation(split):
    train, _ = split
    clean, noisy = list(train[:16]), list(_noisy(train[:16]))
    groups = [f"p{i % 4}" for i in range(16)]
    r = cross_validate("reconstruction", clean, noisy, groups)
    assert r.detector == "reconstruction" and r.roc_auc > 0.9


def test_statistics_only_check_takes_crops_of_any_size(split):
    train, test = split
    det = ReconstructionDetector(size=0, grid=False).fit(train, _noisy(train))
    assert det.features(test[:2]).shape == (2, 9)
    assert det.score([test[0], test[1, :, :100, :90]]).shape == (2,)


# ---------------------------------------------------------------- detect-then-purify


def test_detect_then_purify_purifies_only_the_flagged_faces(split):
    train, test = split
    defense = DetectThenPurify().fit(train, _noisy(train))
    clean, noisy = test[:6], _noisy(test[:6], seed=2)
    x = torch.cat([clean, noisy])
    out = defense(x)
    flagged = defense.detector.predict(x)
    assert flagged[6:].all() and not flagged[:6].any()
    assert torch.equal(out[:6], clean)  # clean faces pass untouched
    assert torch.allclose(out[6:], Purifier()(noisy), atol=1e-6)


# ---------------------------------------------------------------- adaptive purifier


@pytest.mark.slow
def test_adaptive_purifier_learns_a_fixed_pattern_and_is_cached(split, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGUARD_CACHE", str(tmp_path))
    train, test = split
    # a colour cast: smooth, so the shipped clean-up redraws it; the retrained one learns
    # to take it off, on faces it never saw
    cast = torch.tensor([0.08, 0.0, -0.08])[None, :, None, None]

    def cloak(x):
        return (x + cast).clamp(0, 1)

    shipped = Purifier()(cloak(test))
    adaptive = AdaptivePurifier(steps=100).fit(train, cloak(train), key="k")
    after = adaptive(cloak(test))
    err_shipped = float((shipped - test).pow(2).mean())
    err_adaptive = float((after - test).pow(2).mean())
    assert err_adaptive < 0.8 * err_shipped, (err_adaptive, err_shipped)
    # the second fit with the same key reads the cached model
    assert list((tmp_path / "attackers").glob("purifier-k-*.pt"))
    cached = AdaptivePurifier(steps=100).fit(train[:1], train[:1], key="k")
    assert torch.allclose(cached(test[:2]), adaptive(test[:2]), atol=1e-6)


# ---------------------------------------------------------------- robust recognizer


class _ToyRecognizer(Recognizer):
    """A random-weight 112 px recognizer: tests mechanics, proves nothing about faces."""

    name, family, input_size, distance, threshold = "toy", "toy", 112, "euclidean", 1.0

    def __init__(self) -> None:
        super().__init__()
        self.template = ARCFACE_112
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.Flatten(),
                                 nn.LazyLinear(32))
        self.net(torch.zeros(1, 3, 112, 112))
        self.requires_grad_(False)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net(faces) * 3


def test_robust_recognizer_maps_a_cloak_back_to_the_clean_face(split):
    train, test = split
    ens = Ensemble([_ToyRecognizer()])
    pattern = 0.1 * torch.sign(torch.randn(1, 3, 112, 112, generator=torch.Generator()
                                           .manual_seed(1)))

    def cloak(x):
        return (x + pattern).clamp(0, 1)

    assert torch.equal(EmbeddingHead(4)(torch.ones(2, 4)), torch.ones(2, 4))  # starts as h(e)=e
    robust = RobustRecognizer(steps=300).fit(train, cloak(train), ens)
    assert torch.equal(robust(test[:2]), test[:2])  # images pass unchanged
    adapted = robust.adapt(ens)
    assert adapted.names == ["toy"] and adapted["toy"].family == "toy"
    rec = ens["toy"]
    with torch.no_grad():
        clean, cloaked = rec.embed(test), rec.embed(cloak(test))
        before = rec.compare(cloaked, clean).mean()
        after = rec.compare(robust.map("toy", cloaked), robust.map("toy", clean)).mean()
        assert torch.allclose(adapted.embed(test, ARCFACE_112)["toy"], robust.map("toy", clean),
                              atol=1e-5)
    assert after < 0.5 * before, (float(after), float(before))


def test_learning_defenses_train_even_under_no_grad(split):
    train, _ = split
    with torch.no_grad():
        AdaptivePurifier(steps=2).fit(train[:4], train[:4])
        robust = RobustRecognizer(steps=2).fit(train[:4], _noisy(train[:4]),
                                               Ensemble([_ToyRecognizer()]))
    assert robust.heads["toy"] is not None


def test_protection_table_looks_through_the_robust_recognizers_heads(split):
    train, test = split
    ens = Ensemble([_ToyRecognizer()])
    robust = RobustRecognizer(steps=5).fit(train, _noisy(train), ens)
    with torch.no_grad():
        emb = ens.embed(test, ARCFACE_112)["toy"]
    gallery = Gallery()
    for k in range(len(test)):
        gallery.add(f"p{k % 3}", f"photo{k}", {"toy": emb[k]})
    faces = [AuditFace(f"p{k % 3}", f"photo{k}", test[k:k + 1], _noisy(test[k:k + 1]),
                       ARCFACE_112) for k in range(6)]
    seen, mapping = [], robust.map

    def spy(model, e):
        seen.append(model)
        return mapping(model, e)

    robust.map = spy
    events = list(protection_table(faces, gallery, ens, {"none": make_defense("none"),
                                                         "robust": robust}, {"toy"}))
    rows = events[-1].result
    assert [r.defense for r in rows] == ["none", "robust"] and seen == ["toy"]
    assert rows[1].faces == rows[0].faces == 6


def test_protection_counts_the_faces_recognised_uncloaked_turned_on_both_counts(monkeypatch):
    """Top-1 alone called a face nearest someone else but within its person's threshold
    protected (whoever asks "is this them?" still matches it), and a face the recognizer
    missed without the cloak protected too: 75% "protected" here, where the cloak turned
    one of the three faces the recognizer knew."""
    from faceguard.audit import protection

    ens = Ensemble([_ToyRecognizer()])  # euclidean, threshold 1.0
    gallery = Gallery()
    for person, x in (("p", 0.0), ("q", 1.5)):
        gallery.add(person, f"{person}.jpg", {"toy": torch.tensor([x, 0.0])})
    few = Gallery(dict(gallery.embeddings), list(gallery.people), list(gallery.photos))
    for k in range(8):  # far from everyone: 10 people known, top-1 counts
        gallery.add(f"far{k}", f"far{k}.jpg", {"toy": torch.tensor([100.0 + k, 100.0])})
    uncloaked = torch.tensor([[0.1, 0], [0, 0.1], [0.1, 0.1], [1.6, 0]])
    cloaked_ = torch.tensor([
        [2.5, 0],  # beyond the threshold, nearest q: protected
        [-1.4, 0],  # beyond the threshold, still nearest p
        [0.9, 0],  # nearest q, but within p's threshold
        [3.0, 0]])  # p's face was not recognised uncloaked: not the cloak's work
    monkeypatch.setattr(protection, "embed_crops", lambda ens, crops, defend: {
        "toy": cloaked_ if crops[0][0] is faces[0].cloaked else uncloaked})
    faces = [AuditFace("p", f"face{k}.jpg", torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8),
                       ARCFACE_112) for k in range(4)]
    (row,) = list(protection_table(faces, gallery, ens, {"none": make_defense("none")},
                                   {"other"}))[-1].result
    assert (row.protected_top1, row.protected_verify) == (0.75, 0.75)
    assert row.clean_recognised == 0.75 and row.protected == round(1 / 3, 4)
    assert row.among == 10
    # among 2 people nearest is a coin toss: the threshold alone counts
    (row,) = list(protection_table(faces, few, ens, {"none": make_defense("none")},
                                   {"other"}))[-1].result
    assert row.protected == round(2 / 3, 4) and row.among == 2
    # each person's own share: the least protected one is named with theirs
    faces[3].person = "q"  # recognised uncloaked as q, and turned
    (row,) = list(protection_table(faces, few, ens, {"none": make_defense("none")},
                                   {"other"}))[-1].result
    assert row.protected == 0.75
    assert (row.least_person, row.least_person_protected) == ("p", round(2 / 3, 4))


# ---------------------------------------------------------------- stand-ins and the audit


def test_fit_trained_leaves_attackers_out_without_the_cloak_and_says_so():
    defenses = {"none": make_defense("none"), "adaptive-purifier": AdaptivePurifier()}
    notes: list[str] = []
    list(fit_trained(defenses, ["adaptive-purifier"], None, {}, None, None, notes))
    assert list(defenses) == ["none"] and "left out" in notes[0]
    assert notes[0].startswith("An attacker who trains against FaceGuard")


def test_fit_trained_trains_on_other_peoples_pairs_and_explains(split, monkeypatch, tmp_path):
    monkeypatch.setenv("FACEGUARD_CACHE", str(tmp_path))
    train, _ = split
    asked = {}

    def stand_ins(settings, faces, avoid, seconds):
        asked.update(settings=settings, faces=faces, seconds=seconds)
        return TrainingPairs(train, _noisy(train), [f"p{k % 4}" for k in range(len(train))],
                        "8 faces of 4 other people", "key")

    name = "detect-then-purify:faces=5"  # as the command line names it
    defenses = {name: make_defense("detect-then-purify", faces=5)}
    notes: list[str] = []
    events = list(fit_trained(defenses, [name], stand_ins, {"eps": 8}, None, None, notes, 30))
    assert asked == {"settings": {"eps": 8}, "faces": 5, "seconds": 30}
    assert defenses[name].detector.is_fitted
    assert events[-1].done == events[-1].total
    assert "8 faces of 4 other people" in notes[0] and notes[0].startswith("Clean-up")
    assert notes[0].endswith("its figures are an upper bound on protection.")


def test_stand_ins_are_cached_per_settings_and_skip_protected_faces(split, monkeypatch,
                                                                   tmp_path):
    import faceguard.training_pairs as training_pairs

    train, _ = split
    calls = []

    def fake_cloak(settings, images, device=None, batch=8, people=None, start=0):
        calls.append(len(images) - start)
        for k in range(start, len(images), batch):
            yield _noisy(images[k:k + batch])

    monkeypatch.setattr(training_pairs, "cloak_batches", fake_cloak)
    people = [f"p{k % 4}" for k in range(len(train))]

    def avoid(x):
        return np.array([p == "p0" for p in people])  # p0 is the protected person

    kw = {"cache": tmp_path, "given": (train, people), "avoid": avoid}
    first = cloaked_pairs(None, **kw)
    again = cloaked_pairs({"method": "perceptual"}, **kw)  # the same resolved settings
    assert "p0" not in first.people and len(first.clean) == sum(p != "p0" for p in people)
    assert calls == [len(first.clean)] and torch.equal(again.cloaked, first.cloaked)
    assert first.key == again.key
    other = cloaked_pairs({"method": "pgd"}, **kw)
    assert other.key != first.key and len(calls) == 2


def test_stand_in_cloaks_refuse_a_universal_mask_and_a_lone_person_for_pfgsm():
    from faceguard.settings import CloakSettings
    from faceguard.training_pairs import cloak_aligned

    with pytest.raises(ValueError, match="not supported"):
        cloak_aligned(CloakSettings(method="universal"), torch.rand(1, 3, 112, 112))
    with pytest.raises(ValueError, match="two people"):
        cloak_aligned(CloakSettings(method="pfgsm"), torch.rand(2, 3, 112, 112), people=["a", "a"])


def test_pfgsm_stand_in_cloaks_fool_a_classifier_of_the_stand_in_people(celeb24_crops):
    """An attacker's P-FGSM training pairs: each real face is cloaked until the
    classifier of the stand-in people no longer says it is its own person."""
    from faceguard.cloak.budget import eight_bit
    from faceguard.models.ensemble import Ensemble
    from faceguard.settings import CloakSettings
    from faceguard.training_pairs import ALIGNED_FACE, _classes, cloak_aligned

    x, labels = celeb24_crops
    pick = [i for p in (0, 1, 2) for i in np.flatnonzero(labels == p)[:2]]
    faces, people = x[pick], [f"p{labels[i]}" for i in pick]
    s = CloakSettings(method="pfgsm", models=("dlib",)).resolved()
    cloaked = cloak_aligned(s, faces, people=people)
    assert torch.equal(cloaked, eight_bit(cloaked)) and cloaked.shape == faces.shape
    assert (cloaked - faces).abs().max() <= s.eps / 255 + 1 / 255
    marks = np.broadcast_to(ALIGNED_FACE.landmarks, (len(faces), 5, 2)).copy()
    ens = Ensemble.load(["dlib"])
    clf, picked = _classes(s, ens, faces, marks, people)
    assert [label for label, _ in picked] == [0, 0, 1, 1, 2, 2]
    with torch.no_grad():
        clean = clf.probabilities(ens.embed(faces, marks)).argmax(1)
        after = clf.probabilities(ens.embed(cloaked, marks)).argmax(1)
    assert clean.tolist() == [0, 0, 1, 1, 2, 2]
    assert (after != clean).float().mean() >= 5 / 6


def test_short_of_time_the_attackers_learn_from_fewer_faces_then_more(monkeypatch, tmp_path):
    """Each batch of 8 takes 80 s on a fake clock: a 100 s budget cloaks one batch per
    audit (the first always), keeps it cached, and the next audits add the rest."""
    import faceguard.training_pairs as training_pairs

    now = [0.0]

    class Clock:
        @staticmethod
        def perf_counter() -> float:
            return now[0]

    def slow_cloak(settings, images, device=None, batch=8, people=None, start=0):
        for k in range(start, len(images), batch):
            now[0] += 10.0 * len(images[k:k + batch])
            yield _noisy(images[k:k + batch])

    monkeypatch.setattr(training_pairs, "time", Clock)
    monkeypatch.setattr(training_pairs, "cloak_batches", slow_cloak)
    faces = torch.rand(20, 3, 112, 112)
    kw = {"cache": tmp_path, "given": (faces, [f"p{k // 2}" for k in range(20)]),
          "seconds": 100.0}
    sizes = [len(cloaked_pairs(None, **kw).clean) for _ in range(3)]
    assert sizes == [8, 16, 20]
    short = cloaked_pairs(None, **{**kw, "seconds": 0.0})  # all cached: nothing to wait for
    assert len(short.clean) == 20 and "ran out" not in short.source
    kw["cache"] = tmp_path / "fresh"
    first = cloaked_pairs(None, **kw)
    assert "8 faces of 4 other people (of 20: the time" in first.source
    assert first.key != short.key and torch.equal(first.cloaked, short.cloaked[:8])
