"""Cloak settings: presets and every knob, as plain data (validated, resolved, hashed).

How they become an attack is :mod:`faceguard.cloak.recipe`.

eps is given in grey levels (0-255) in settings and on the command line (``--eps 8``
is 8/255), because that is how people read it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from faceguard.words import Named

#: method name -> its plain name and what it is; the methods that need no other people
#: come first (the app lists them in this order)
METHODS = {
    "perceptual": Named("Recommended (keeps the look)",
                        "strongest for how little it shows: keeps the face's visibility floor "
                        "(the default)"),
    "pgd": Named("Classic (PGD)", "projected gradient descent, random start"),
    # MI-FGSM's momentum is published as a transfer lever, but here it fools a recognizer
    # the cloak never saw less often than the default (46 against 64%, 40 crops at FAR
    # 1%: benchmarks/results/protection-classic-12-06-quick.json)
    "mifgsm": Named("Classic with momentum (MI-FGSM)",
                    "momentum iterative FGSM (weaker than the default on recognizers it "
                    "was not made on)"),
    "bim": Named("Classic without random start (BIM)",
                 "basic iterative method (PGD without random start)"),
    "fgsm": Named("Fast (FGSM)", "one-step fast gradient sign (fastest, weakest)"),
    "pfgsm": Named("Towards a decoy person (P-FGSM)",
                   "private FGSM towards a decoy person (needs other people: --gallery)"),
    # within the visibility floor and colour limit the warp is scaled down until it fools
    # almost nothing (protection-levers-12-06-quick.json: 3-8% FLM, 28-44% hybrid)
    "flm": Named("Moves the features a little (FLM)",
                 "moves the face's features by a pixel or two (geometric: adds no noise; "
                 "weak at the visibility floor)"),
    "hybrid": Named("Moves the features and adds a pattern (hybrid)",
                    "moves the face's features and adds a faint pattern, together (weaker "
                    "than the default at the visibility floor)"),
    "universal": Named("One mask per person (universal)",
                       "one universal mask per person via DeepFool (needs other people)"),
    "universal-sgd": Named("One mask per person, fast (universal SGD)",
                           "one universal mask per person, fast stochastic variant"),
}

#: transfer lever -> what it does (faceguard.cloak.transfer): ways to make a cloak made
#: on our recognizers fool recognizers it never saw
TRANSFER_LEVERS = {
    "log": "weigh the least-fooled recognizer most (log distance, no cap)",
    "balance": "weigh the least-fooled recognizer most (a soft minimum over the "
               "recognizers instead of their mean)",
    "diversity": "random resize and pad of the face at every step (input diversity)",
    "dropout": "random dropout inside the recognizers at every step (ghost models)",
    "purify": "every other draw sees the face through the bilateral filter an attacker "
              "may use to clean it",
    "restore": "every other draw sees the face through the bilateral filter and "
               "super-resolution (BL+SR) an attacker may use to restore it (with purify, "
               "the two take turns; slow)",
    "skip": "follow the gradient through the recognizers' shortcuts more than through "
            "their residual branches (skip gradient method; dlib only)",
    "smooth": "blur the objective's gradient so the change is smooth (translation "
              "invariance)",
    "spectrum": "random noise and frequency scaling of the face at every step (spectrum "
                "simulation)",
    "scale": "a darker copy of the face at every step (scale invariance)",
    "features": "also push the recognizers' middle layers away from the clean face's "
                "(intermediate features)",
    "hull": "push the face away from every blend of the person's reference photos, not "
            "only from their average (OPOM)",
    "mirror": "every other draw sees the face mirrored, as a recognizer that also embeds "
              "the mirrored face (or a mirrored copy of the photo) does",
}

#: the levers on by default: the bilateral filter in the loop kept dlib's protection
#: after that filter at 90% instead of 48%, at the same visibility (40 probes:
#: benchmarks/results/protection-purify-quick.json); the others gained nothing beyond
#: the noise (protection-levers-quick.json), or gained on one family what they cost on
#: another and white-box (the input transforms together: protection-levers-lofo-quick.json).
#: "features" transfers best (held-out evasion mean 63 against 59) with white-box whole,
#: but the bilateral filter strips it as it strips the plain cloak, and with the filter in
#: the loop its gain vanished (protection-features-lofo-quick.json).
#: "balance" moved the least-fooled family on real photos by a probe or two either way
#: (white-box faceres 49 -> 54%, never seen 9 -> 11%: protection-album-balance.json
#: against protection-album-blur.json) and changed nothing on the crops
#: (protection-balance-lofo-quick.json).
#: "restore" (BL+SR in the loop as well, the filters taking turns) keeps far more after
#: BL+SR (white-box dlib 91 against 70%, 117 probes) but less after the bilateral filter
#: (73 against 85%): the attacker's best defense leaves about as much as before, for
#: 1.3-1.8x the time (protection-default-restore.json, protection-restore-lofo-quick.json)
DEFAULT_TRANSFER = ("purify",)

#: preset -> how visible any method's cloak may be (see faceguard.visibility):
#: ``floor``, the least face SSIMULACRA2 (85 hard to see even up close, about as visible
#: as saving the face at JPEG quality 90; 75 as quality 65; 65 faint at normal size, as
#: quality 35), and
#: ``delta_e``, the most the face's colour may change, in CIEDE2000 units (2.3 is just
#: noticeable side by side) at the 95th percentile of its pixels, as the manifest reports
#: it. A pixel's lightness may change a little more (faceguard.cloak.budget.
#: LIGHTNESS_HEADROOM), and the change is then scaled until the face keeps the limit. Until
#: the limit applied to the face, it capped each pixel (2.8 at ``balanced``, the face's
#: p95 then 2.6 on average and up to 3.03): the colour is what binds at ``balanced``
#: (benchmarks/RESULTS.md, "Protection"; benchmarks/results/protection-colour.json)
LOOKS = {"low": {"floor": 85.0, "delta_e": 2.0},
         "balanced": {"floor": 75.0, "delta_e": 3.0},
         "high": {"floor": 65.0, "delta_e": 4.0}}


#: preset -> eps in grey levels, steps, EOT robustness, floor; for sign-gradient methods
PRESETS = {
    "low": {"eps": 4.0, "steps": 10, "robust": False, **LOOKS["low"]},
    "balanced": {"eps": 8.0, "steps": 20, "robust": True, **LOOKS["balanced"]},
    "high": {"eps": 12.0, "steps": 40, "robust": True, **LOOKS["high"]},
}
#: the same for the perceptual method, which optimises under the floor: it may use a
#: larger L-inf cap because it spends it where it does not show
PERCEPTUAL_PRESETS = {
    "low": {"eps": 12.0, "steps": 30, "robust": False, **LOOKS["low"]},
    "balanced": {"eps": 16.0, "steps": 60, "robust": True, **LOOKS["balanced"]},
    "high": {"eps": 24.0, "steps": 100, "robust": True, **LOOKS["high"]},
}

# The defaults, here only: the CLI's options and the app's first-run choices read them.
DEFAULT_METHOD = "perceptual"
DEFAULT_PRESET = "balanced"
#: the families the cloak is made on: one made on fewer leaves the others' quirks
#: unexploited, and the one left out matches the face far more often
#: (benchmarks/results/protection.json). SFace and FaceNet, added, move dlib or faceres,
#: when the cloak never saw them, further (mobileface not), but past its threshold on no
#: more faces, in 2-3x the time; they stay recognizers the cloak never saw, for the
#: per-photo check (benchmarks/RESULTS.md, "More families in the cloak")
DEFAULT_MODELS = ("dlib", "mobileface", "faceres")
DEFAULT_EOT_SAMPLES = 2
#: random draws per step on the album path (a person's mask, fitted, then refined per
#: photo): one. Fitted on one draw and refined for 15 steps, against two draws and 10
#: steps: on 13 album faces further from the person (+0.015 / +0.04 / +0.04 threshold
#: units, dlib / mobileface / faceres; benchmarks/results/album-distances-refine-draws*.json);
#: on the album protocol's 35 faces not matched white-box 66 / 57 / 31% against 57 / 57 /
#: 26%, after BL+SR 43 / 60 / 29% against 34 / 54 / 26% (protection-album-person-mask15-
#: one-draw.json, -mask10-12-05.json); the fitting takes half as long and each photo's
#: steps a little longer: the album of 59 photos in 0.68x the time, 200 photos in 0.94x
#: (speed-album-path-ab.json, -ab-200-2.json)
PERSON_MASK_EOT_SAMPLES = 1
#: chroma's share of the budget by default: none, the cloak changes brightness only. The
#: face's colour limit (CIEDE2000 at its 95th percentile) counts chroma too, and chroma
#: costs more of it, and of SSIMULACRA2, than it buys: at ``balanced`` on 40 celeb24 probes
#: per family (benchmarks/results/protection-chroma0.1-lofo-quick.json, -chroma0.0-*),
#: a tenth of eps (the default before) gave face SSIMULACRA2 82.1 (78.2 at least), none
#: 89.8 (87.2) at the same colour change (p95 2.97), with protection as good or a probe
#: better on every family the cloak never saw (mean 68 -> 70% at FAR 1%) and the same
#: white-box (100 / 97.5 / 97.5%); a quarter gave 40% on faceres never seen (57.5% at a
#: tenth, 60% with none), the colour limit scaling the whole change down. On real photos,
#: where the SSIMULACRA2 floor binds first, a quarter buys protection (album white-box 91 /
#: 77 / 63% against 80 / 63 / 49%, faceres never seen 11 against 6%;
#: benchmarks/results/protection-album-chroma.json) but tints skin and shifts iris hue a
#: little up close (colour p95 2.6-2.7 against 1.4-1.8): an option (``--colour-share``).
#: Without the tint (``cloak.base.TINT_PX``) a quarter gives album white-box 86 / 66 / 57%
#: and faceres never seen 9% (protection-album-detail.json), but on the crops it loses:
#: never seen 52 / 85 / 43% (dlib / mobileface / faceres) against 66 / 91 / 58%, white-box
#: 97 / 97 / 96% against 100 / 99 / 99%, SSIMULACRA2 80 against 90
#: (protection-colour-tintfree.json, -lofo.json).
DEFAULT_CHROMA = 0.0
#: the methods a person's mask can start (a warm start: ``CloakSettings.person_mask``)
PERSON_MASK_METHODS = ("perceptual",)
#: the album path's refinement steps as measured and suggested (``--person-mask 15``): on
#: one draw per step (:data:`PERSON_MASK_EOT_SAMPLES`) a little longer than 10 on two
PERSON_MASK_STEPS = 15

#: output format choice -> what the user reads ("keep": each photo's own format)
OUTPUT_FORMATS = {
    "keep": "Same as the original",
    "png": "PNG (lossless, larger files)",
    "jpeg": "JPEG",
    "webp": "WebP",
}
DEFAULT_FORMAT = "keep"
DEFAULT_QUALITY = 95  # JPEG / WebP


def preset_values(method: str, preset: str) -> dict:
    """The preset's knobs for a method: eps, steps, robust, floor, delta_e."""
    return dict((PERCEPTUAL_PRESETS if method == "perceptual" else PRESETS)[preset])


@dataclass(frozen=True)
class CloakSettings:
    """Everything that decides how a face is cloaked (saved in the run manifest).

    Attributes:
        method: one of :data:`METHODS`.
        preset: one of :data:`PRESETS`; fills eps, steps, robust when they are None.
        eps: L-inf budget in grey levels (0-255).
        steps: iterations of iterative methods.
        robust: expectation over JPEG / blur / resize transforms while optimising.
        floor: the least face SSIMULACRA2 (0-100) the cloak keeps, whatever the method.
        delta_e: the most the face's colour may change (CIEDE2000 units, at the 95th
            percentile of the face's pixels).
        eot_samples: random transforms per step when robust (None:
            :data:`DEFAULT_EOT_SAMPLES`, or :data:`PERSON_MASK_EOT_SAMPLES` on the album
            path).
        objective: "feature" (away from the person's centroid) or "classifier".
        targeted: pull towards a decoy person instead of away from the true one.
        models: recognizers the cloak is computed against.
        texture: texture shaping of the budget (0 = flat, 1 = none on flat skin); 0.6 by
            default: on smooth skin a cloak shows as pale streaks long before it shows
            in hair, brows or beard (benchmarks/results/visibility-astronaut-3x.png).
        seed: random seed (random start, EOT draws, decoy choice).
        transfer: transfer levers, from :data:`TRANSFER_LEVERS`.
        person_mask: the album path (perceptual method only): None optimises every
            photo from scratch; N fits one universal mask per protected person on all
            their faces in the album, then starts each photo's cloak from it and
            refines it for N steps instead of ``steps``.
        chroma: colour's share of the budget (Cb and Cr may change by ``chroma * eps``;
            0, the default, changes brightness only: see :data:`DEFAULT_CHROMA`); the
            colour limit ``delta_e`` holds either way. Person masks stay brightness only.
    """

    method: str = DEFAULT_METHOD
    preset: str = DEFAULT_PRESET
    eps: float | None = None
    steps: int | None = None
    robust: bool | None = None
    floor: float | None = None
    delta_e: float | None = None
    eot_samples: int | None = None
    objective: str = "feature"
    targeted: bool = False
    models: tuple[str, ...] = DEFAULT_MODELS
    texture: float = 0.6
    seed: int = 0
    transfer: tuple[str, ...] = DEFAULT_TRANSFER
    person_mask: int | None = None
    chroma: float = DEFAULT_CHROMA

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (choose from {', '.join(PRESETS)})")
        if self.objective not in ("feature", "classifier"):
            raise ValueError("objective must be 'feature' or 'classifier'")
        if self.eps is not None and not 0 < self.eps <= 64:
            raise ValueError(f"eps is in grey levels and must be in (0, 64], got {self.eps}")
        if self.steps is not None and self.steps < 1:
            raise ValueError("steps must be >= 1")
        if self.eot_samples is not None and self.eot_samples < 1:
            raise ValueError("eot_samples (random transforms per step) must be >= 1")
        if self.floor is not None and not 0 < self.floor <= 100:
            raise ValueError("floor is an SSIMULACRA2 score and must be in (0, 100]")
        if self.delta_e is not None and not 0 < self.delta_e <= 50:
            raise ValueError("delta_e is a CIEDE2000 colour difference and must be in (0, 50]")
        if not self.models:
            raise ValueError("at least one model is needed")
        unknown = sorted(set(self.transfer) - set(TRANSFER_LEVERS))
        if unknown:
            raise ValueError(f"unknown transfer lever(s) {', '.join(unknown)} "
                             f"(choose from {', '.join(TRANSFER_LEVERS)})")
        if not 0 <= self.texture <= 1:
            raise ValueError("texture must be in [0, 1]")
        if not 0 <= self.chroma <= 1:
            raise ValueError("the colour share (chroma) is a share of the budget and must be "
                             "in [0, 1]")
        if self.person_mask is not None and (self.method not in PERSON_MASK_METHODS
                                             or not 1 <= self.person_mask <= 100):
            raise ValueError("a person mask is refined by the perceptual method, for 1 to "
                             "100 steps")
        if self.method in ("pfgsm", "universal") and self.objective != "classifier":
            object.__setattr__(self, "objective", "classifier")

    def resolved(self) -> CloakSettings:
        """A copy with the preset's values filled in where the knob was left None."""
        p = preset_values(self.method, self.preset)
        return replace(
            self,
            eps=p["eps"] if self.eps is None else self.eps,
            steps=p["steps"] if self.steps is None else self.steps,
            robust=p["robust"] if self.robust is None else self.robust,
            floor=p["floor"] if self.floor is None else self.floor,
            delta_e=p["delta_e"] if self.delta_e is None else self.delta_e,
            eot_samples=self.eot_samples if self.eot_samples is not None else
            PERSON_MASK_EOT_SAMPLES if self.person_mask else DEFAULT_EOT_SAMPLES,
        )

    @classmethod
    def from_dict(cls, values: dict) -> CloakSettings:
        """Settings from :meth:`to_dict`'s form (a manifest's ``settings``): its lists
        back as tuples."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def to_dict(self) -> dict:
        d = asdict(self.resolved())
        d["models"] = list(d["models"])
        d["transfer"] = list(d["transfer"])
        if d["person_mask"] is None:  # as before it existed: earlier runs still resume
            del d["person_mask"]
        if d["chroma"] == DEFAULT_CHROMA:  # the same
            del d["chroma"]
        return d

    def digest(self) -> str:
        """Short hash of the resolved settings (``--resume`` compares it)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def universal(self) -> bool:
        return self.method.startswith("universal")

    @property
    def stronger(self) -> str | None:
        """The next stronger preset, when these settings are a preset of the default
        method as it is (what :data:`faceguard.measured.MEASURED_PROTECTION` measured),
        else None."""
        order = list(PRESETS)
        own = (self.eps, self.steps, self.robust, self.floor, self.delta_e)
        if self.method != DEFAULT_METHOD or self.preset == order[-1] or \
                any(v is not None for v in own):
            return None
        return order[order.index(self.preset) + 1]


def build_settings(method: str = DEFAULT_METHOD, preset: str = DEFAULT_PRESET, *,
                   eps: float | None = None, steps: int | None = None,
                   robust: bool | None = None, floor: float | None = None,
                   delta_e: float | None = None,
                   models: Sequence[str] = DEFAULT_MODELS, **rest) -> CloakSettings:
    """The shells' one way from a user's choices to :class:`CloakSettings`.

    A knob left None, or set to the preset's own value, follows the preset (so the
    CLI's ``--preset high`` and the app's "high" with its sliders untouched are the
    same settings, with the same :meth:`~CloakSettings.digest`). ``rest``: the other
    fields of :class:`CloakSettings`
    (eot_samples, objective, targeted, texture, seed).

    Raises:
        ValueError: an unknown method, preset or a knob out of range.
    """
    preset_of = (PERCEPTUAL_PRESETS if method == "perceptual" else PRESETS).get(preset, {})

    def own(name: str, value):
        return None if value is None or value == preset_of.get(name) else value

    return CloakSettings(method=method, preset=preset, eps=own("eps", eps),
                         steps=own("steps", steps), robust=own("robust", robust),
                         floor=own("floor", floor), delta_e=own("delta_e", delta_e),
                         models=tuple(models), **rest)
