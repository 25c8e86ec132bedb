"""Purification defenses: what someone may do to a cloaked photo before recognising it.

A :data:`Defense` takes (B, 3, H, W) float RGB in [0, 1] and returns the same shape,
dtype and device, in [0, 1]. Defenses are deterministic and keep no state between calls;
each is a frozen dataclass whose fields are its parameters (validated once, at
construction, with a ValueError that names the parameter). None is differentiable: they
run in NumPy / OpenCV / Pillow / ncnn, as an adversary would run them.

Each one cites the paper it comes from and, like ART's preprocessors, a paper on its
limits. Pick them by name from the registry::

    >>> import torch
    >>> from faceguard.audit.defenses import make_defense
    >>> defense = make_defense("jpeg", quality=60)
    >>> defense
    JPEG(quality=60)
    >>> defense(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 3, 32, 32])

Layout: :mod:`~faceguard.audit.defenses.classic` (filters),
:mod:`~faceguard.audit.defenses.super_resolution`, :mod:`~faceguard.audit.defenses.learned`
(purifiers), :mod:`~faceguard.audit.defenses.adaptive` and
:mod:`~faceguard.audit.defenses.robust` (defenses that learn from other people's cloaked
faces: ``fit`` before use), and :mod:`~faceguard.audit.defenses.registry`, which names
them all.
"""

from faceguard.audit.defenses.adaptive import AdaptivePurifier, DetectThenPurify
from faceguard.audit.defenses.base import LUMA, Defense, defend_face
from faceguard.audit.defenses.classic import (
    JPEG,
    Bilateral,
    BilateralRGB,
    BitDepth,
    Gaussian,
    Median,
    NoDefense,
    Resize,
    TotalVariation,
)
from faceguard.audit.defenses.learned import AVAE, Purifier
from faceguard.audit.defenses.registry import (
    DEFENSES,
    TRAINED,
    DefenseSpec,
    defense_kind,
    defense_label,
    list_defenses,
    make_defense,
    parse_defense,
)
from faceguard.audit.defenses.robust import RobustRecognizer
from faceguard.audit.defenses.super_resolution import BilateralSR, SuperResolution

__all__ = [
    "DEFENSES",
    "TRAINED",
    "AVAE",
    "JPEG",
    "AdaptivePurifier",
    "LUMA",
    "Bilateral",
    "BilateralRGB",
    "BilateralSR",
    "BitDepth",
    "Defense",
    "DetectThenPurify",
    "DefenseSpec",
    "Gaussian",
    "Median",
    "NoDefense",
    "Purifier",
    "Resize",
    "RobustRecognizer",
    "SuperResolution",
    "TotalVariation",
    "defend_face",
    "defense_kind",
    "defense_label",
    "list_defenses",
    "make_defense",
    "parse_defense",
]
