"""Classic filters: JPEG, bilateral, median, Gaussian, bit depth, total variation, resize.

They run in NumPy / OpenCV / Pillow / scikit-image, as an adversary would run them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from faceguard.audit.defenses.base import (
    LUMA,
    _bilateral,
    _check_images,
    _check_range,
    _per_image,
    _resize,
)


@dataclass(frozen=True)
class NoDefense:
    """The identity: the baseline every other defense is compared with."""

    def __call__(self, images: Tensor) -> Tensor:
        _check_images(images)
        return images.clone()


@dataclass(frozen=True)
class Mirror:
    """The face mirrored left to right. As an image filter, the image flipped; a
    recognizer's embedding sees the aligned face flipped (``mirrors``:
    :func:`faceguard.audit.protection.embed_crops`), as aligning the flipped photo with
    its landmarks mirrored gives. Many recognizers add the embeddings of a face and its
    mirror image (test-time flipping), and a photo may be posted mirrored: a cloak made
    on the face as it is holds less against its mirror image.

    Paper: Deng, Guo, Xue and Zafeiriou, "ArcFace: Additive angular margin loss for deep
    face recognition", CVPR 2019 (the embedding of a face and of its mirror image added).
    """

    mirrors = True  # geometry: flipped after alignment, where the landmarks still hold

    def __call__(self, images: Tensor) -> Tensor:
        _check_images(images)
        return images.flip(-1)


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
