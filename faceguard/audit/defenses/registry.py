"""The defense registry: every defense by name, with its citation and its limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from faceguard.audit.defenses import adaptive, classic, learned, robust, super_resolution
from faceguard.audit.defenses.base import Defense
from faceguard.measured import ROBUST_HEAD_MEASURED


@dataclass(frozen=True)
class DefenseSpec:
    """A registry entry.

    Attributes:
        name: what users type, e.g. ``"jpeg75"`` (the technical name, in the JSON).
        label: the plain name people read, e.g. "re-upload (JPEG 75)".
        description: one plain sentence.
        citation: the paper the defense comes from.
        limits: a paper on its limits (empty when there is none).
        defaults: default parameters; :func:`make_defense` accepts exactly these keys.
        factory: builds the defense from parameters (validates them).
    """

    name: str
    label: str
    description: str
    citation: str
    limits: str
    defaults: dict[str, Any]
    factory: Callable[..., Defense]

    def make(self, **params: Any) -> Defense:
        """Build the defense with ``params`` overriding :attr:`defaults`."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            accepted = ", ".join(self.defaults) or "none"
            raise ValueError(
                f"defense {self.name!r} has no parameter(s) {', '.join(unknown)} "
                f"(accepted: {accepted})"
            )
        return self.factory(**{**self.defaults, **params})


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in fields(cls) if f.init}


_ATHALYE = (
    "Athalye, Carlini and Wagner, Obfuscated gradients give a false sense of security, ICML 2018"
)
_EOT = "Athalye, Engstrom, Ilyas and Kwok, Synthesizing robust adversarial examples, ICML 2018"
_SQUEEZE = "Xu, Evans and Qi, Feature squeezing, NDSS 2018"
_SQUEEZE_LIMITS = (
    "He, Wei, Chen, Carlini and Song, Ensembles of weak defenses are not strong, WOOT 2017"
)
_MAGNET_LIMITS = (
    "Carlini and Wagner, MagNet and Efficient defenses are not robust to adversarial "
    "examples, arXiv:1711.08478, 2017"
)
_FACECURE = (
    "Radiya-Dixit, Hong, Carlini and Tramer, Data poisoning won't save you from facial "
    "recognition, ICLR 2022"
)
_FEW_FACES = (
    "trained on tens of stand-in faces in the audit's minutes, where the paper's attacker "
    "uses thousands and a GPU: an upper bound on protection"
)
_SADU = "Sadu and Das, Image restoration for improving facial adversarial robustness, Algorithm 1"

# (name, plain name, description, citation, limits, class, parameter overrides)
_ENTRIES: list[tuple[str, str, str, str, str, type, dict[str, Any]]] = [
    ("none", "nothing (as published)", "No defense: the photo as published.", "", "",
     classic.NoDefense, {}),
    (
        "jpeg",
        "re-upload (JPEG)",
        "JPEG compression and decompression with Pillow at the given quality.",
        "Dziugaite, Ghahramani and Roy, A study of the effect of JPG compression on "
        "adversarial images, arXiv:1608.00853, 2016",
        "Shin and Song, JPEG-resistant adversarial images, NeurIPS 2017 MLSec workshop",
        classic.JPEG,
        {},
    ),
    ("jpeg75", "re-upload (JPEG 75)", "JPEG at quality 75, a typical upload.", "", "",
     classic.JPEG, {"quality": 75}),
    ("jpeg50", "heavy re-upload (JPEG 50)", "JPEG at quality 50, a heavy recompression.", "",
     "", classic.JPEG, {"quality": 50}),
    (
        "mirror",
        "mirror image",
        "The face mirrored left to right, as a recognizer that also embeds the mirror "
        "image sees it, or a photo posted mirrored.",
        "Deng, Guo, Xue and Zafeiriou, ArcFace: Additive angular margin loss for deep face "
        "recognition, CVPR 2019 (test-time flipping)",
        "the mirror image alone: a recognizer that adds the embeddings of a face and its "
        "mirror image undoes less of the cloak",
        classic.Mirror,
        {},
    ),
    (
        "bilateral",
        "smoothing filter (bilateral)",
        "Edge-preserving bilateral filter on the grey image, colour restored (the paper's "
        "Algorithm 1); colour=grey leaves the output grey.",
        _SADU,
        _ATHALYE,
        classic.Bilateral,
        {},
    ),
    (
        "bilateral-rgb",
        "colour smoothing filter (bilateral RGB)",
        "Edge-preserving bilateral filter on each colour channel separately.",
        "Tomasi and Manduchi, Bilateral filtering for gray and color images, ICCV 1998",
        _ATHALYE,
        classic.BilateralRGB,
        {},
    ),
    (
        "sr",
        "shrink + upscaling (SR)",
        "Shrink by the scale, then Real-ESRGAN super-resolution back to full size.",
        "Mustafa et al., Image super-resolution as a defense against adversarial attacks, "
        "IEEE TIP 2019",
        _ATHALYE,
        super_resolution.SuperResolution,
        {},
    ),
    (
        "bl+sr",
        "strong filter + upscaling (BL+SR)",
        "Grey bilateral filter, then shrink and Real-ESRGAN super-resolution (the "
        "paper's strongest).",
        _SADU,
        _ATHALYE,
        super_resolution.BilateralSR,
        {},
    ),
    ("median", "median filter", "Median filter on each colour channel.", _SQUEEZE, _SQUEEZE_LIMITS,
     classic.Median, {}),
    ("gaussian", "blur (Gaussian)", "Gaussian blur.", _SQUEEZE, _EOT, classic.Gaussian, {}),
    (
        "bitdepth",
        "fewer colours (bit depth)",
        "Fewer colour levels per channel (bit-depth reduction).",
        _SQUEEZE,
        _SQUEEZE_LIMITS,
        classic.BitDepth,
        {},
    ),
    (
        "tvm",
        "flattening filter (TVM)",
        "Total-variation minimisation: flattens small variations, keeps edges.",
        "Guo, Rana, Cisse and van der Maaten, Countering adversarial images using input "
        "transformations, ICLR 2018",
        _ATHALYE,
        classic.TotalVariation,
        {},
    ),
    (
        "resize",
        "shrink and enlarge (resize)",
        "Shrink and enlarge back with bicubic interpolation.",
        "Xie et al., Mitigating adversarial effects through randomization, ICLR 2018",
        _EOT,
        classic.Resize,
        {},
    ),
    (
        "purifier",
        "learned clean-up",
        "A small autoencoder trained on clean faces redraws the face (MagNet-style).",
        "Meng and Chen, MagNet: a two-pronged defense against adversarial examples, CCS "
        "2017; Haque and Kang, instance sparsity mapping network, J. KIIT 2021",
        _MAGNET_LIMITS,
        learned.Purifier,
        {},
    ),
    (
        "avae",
        "face redrawing (A-VAE)",
        "A generator trained on other people's faces redraws the face from a 32 px copy of "
        "it; of 32 drawings it keeps the one nearest to the photo.",
        "Zhou, Liang and Chen, Manifold projection for adversarial defense on face "
        "recognition, ECCV 2020",
        _ATHALYE + "; our weights: minutes of training on 592 faces, blurrier than the paper's",
        learned.AVAE,
        {},
    ),
    ("avae-fast", "face redrawing (A-VAE, 8 drawings)",
     "A-VAE keeping the nearest of 8 drawings instead of 32: the same figures on the "
     "benchmark in a fifth of the time (the audit's default).", "", "", learned.AVAE,
     {"samples": 8}),
    (
        "detect-then-purify",
        "clean-up of faces that look cloaked",
        "A reconstruction check trained on other people's cloaked faces decides; only the "
        "faces it flags go through the learned clean-up (sparsity mapping, modules 1-2).",
        "Haque and Kang, instance sparsity mapping network, J. KIIT 2021; Meng and Chen, "
        "MagNet, CCS 2017",
        _MAGNET_LIMITS,
        adaptive.DetectThenPurify,
        {},
    ),
    (
        "adaptive-purifier",
        "an attacker who trains against FaceGuard (clean-up)",
        "The learned clean-up retrained on other people's faces cloaked with your own "
        "settings, to undo this cloak in particular.",
        _FACECURE,
        _FEW_FACES,
        adaptive.AdaptivePurifier,
        {},
    ),
    (
        "robust-recognizer",
        "an attacker who trains against FaceGuard (recognizer)",
        "Each recognizer gets a small extra layer trained so that other people's faces "
        "cloaked with your settings match their clean photos.",
        _FACECURE,
        f"{_FEW_FACES}, and a loose one: {ROBUST_HEAD_MEASURED}",
        robust.RobustRecognizer,
        {},
    ),
]


def _build_registry() -> dict[str, DefenseSpec]:
    registry: dict[str, DefenseSpec] = {}
    for name, label, description, citation, limits, cls, overrides in _ENTRIES:
        family = [e for e in _ENTRIES if e[5] is cls and e[3]]
        if not citation and family:  # presets share their family's references
            citation, limits = family[0][3], family[0][4]
        defaults = {**_defaults(cls), **overrides}
        registry[name] = DefenseSpec(name, label, description, citation, limits, defaults, cls)
    return registry


#: Every defense by name, in the order ``faceguard audit --list-defenses`` shows them.
DEFENSES: dict[str, DefenseSpec] = _build_registry()


#: defenses that learn from other people's cloaked faces before they run (``fit``)
TRAINED = tuple(name for name, spec in DEFENSES.items() if hasattr(spec.factory, "fit"))


def list_defenses() -> list[DefenseSpec]:
    """The registry entries in display order."""
    return list(DEFENSES.values())


def make_defense(name: str, **params: Any) -> Defense:
    """Build the defense ``name`` with ``params`` overriding its defaults.

    Raises:
        ValueError: unknown name, unknown parameter, or a parameter out of range.
    """
    if name not in DEFENSES:
        raise ValueError(f"unknown defense {name!r}; choose from {', '.join(DEFENSES)}")
    return DEFENSES[name].make(**params)


def defense_label(text: str) -> str:
    """The plain name of a defense as the CLI names it (``"name"`` or ``"name:k=v,..."``).

    >>> defense_label("bl+sr"), defense_label("jpeg:quality=60")
    ('strong filter + upscaling (BL+SR)', 're-upload (JPEG), quality=60')
    """
    name, _, rest = text.strip().partition(":")
    spec = DEFENSES.get(name)
    if spec is None:
        return text
    return spec.label + (f", {rest.replace(',', ', ')}" if rest else "")


def defense_kind(text: str) -> str:
    """What a defense (``"name"`` or ``"name:k=v,..."``) stands for in the verdict:
    ``"none"`` (the photo as published), ``"re-upload"`` (JPEG, what platforms do to
    every photo) or ``"clean-up"`` (filters, super-resolution, a learned purifier: what
    someone does on purpose).

    >>> defense_kind("none"), defense_kind("jpeg:quality=60"), defense_kind("bl+sr")
    ('none', 're-upload', 'clean-up')
    """
    spec = DEFENSES.get(text.strip().partition(":")[0])
    if spec is None:
        return "clean-up"
    if spec.factory is classic.NoDefense:
        return "none"
    return "re-upload" if spec.factory is classic.JPEG else "clean-up"


def parse_defense(text: str) -> Defense:
    """Build a defense from ``"name"`` or ``"name:key=value,key=value"`` (CLI syntax).

    Values are converted to the type of the parameter's default, e.g.
    ``"jpeg:quality=60"`` or ``"bl+sr:colour=luma,scale=4"``.
    """
    name, _, rest = text.strip().partition(":")
    if name not in DEFENSES:
        raise ValueError(f"unknown defense {name!r}; choose from {', '.join(DEFENSES)}")
    defaults = DEFENSES[name].defaults
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            raise ValueError(f"defense parameter {item!r} must look like key=value")
        if key not in defaults:
            accepted = ", ".join(defaults) or "none"
            raise ValueError(f"defense {name!r} has no parameter {key!r} (accepted: {accepted})")
        kind = type(defaults[key])
        try:
            params[key] = kind(value.strip())
        except ValueError as err:
            raise ValueError(f"{key} must be {kind.__name__}, got {value.strip()!r}") from err
    return make_defense(name, **params)
