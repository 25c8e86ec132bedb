"""A learned purifier: a small convolutional autoencoder that redraws a face.

It follows the *reformer* of MagNet (Meng and Chen, "MagNet: a two-pronged defense
against adversarial examples", CCS 2017), the autoencoder that the instance sparsity
mapping defense builds on (Haque and Kang, "Advanced generative adversarial defense model
using instance sparsity mapping network", J. KIIT 2021, eq. 3): trained on clean faces
with noise added to the input, to output the clean face, it maps a perturbed face back
towards the faces it has seen. The weights in ``faceguard/resources/purifier.pt`` were
made by ``scripts/train_purifier.py`` (see ``faceguard/resources/purifier.md``).

The network is fully convolutional: it runs on faces of any size (inputs are padded to a
multiple of 4 and cropped back), no resizing. It was trained on 112 px aligned faces
with random rescaling, so it suits face crops of roughly 80-200 px best.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PURIFIER_PATH = Path(__file__).resolve().parents[1] / "resources" / "purifier.pt"


class PurifierNet(nn.Module):
    """Convolutional autoencoder with a spatial bottleneck (two stride-2 steps).

    Args:
        width: channels of the full- and half-resolution layers.
        bottleneck: channels at quarter resolution (the code the face is squeezed into).

    Shape:
        input: (B, 3, H, W) float in [0, 1], RGB, any H and W.
        output: (B, 3, H, W) float in [0, 1].
    """

    def __init__(self, width: int = 32, bottleneck: int = 32) -> None:
        super().__init__()
        self.width = width
        self.bottleneck = bottleneck
        w, b = width, bottleneck
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, b, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(b, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, 3, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # Reflect-pad to a multiple of 4 so both stride-2 steps undo exactly.
        ph, pw = -h % 4, -w % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        y = torch.sigmoid(self.decoder(self.encoder(x)))
        return y[..., :h, :w]


_lock = threading.Lock()
_cache: dict[tuple[str, str], nn.Module] = {}


def load_network(path: Path, device: str | torch.device, build: Callable[[dict], nn.Module],
                 missing: str) -> nn.Module:
    """The network ``build(checkpoint)`` makes from a weights file, in eval mode with
    frozen weights, on ``device``; cached per path and device (the audit's learned
    defenses share it).

    Raises:
        FileNotFoundError: the weights file is absent (``missing`` says so).
    """
    key = (str(path), str(device))
    with _lock:
        if key not in _cache:
            if not path.is_file():
                raise FileNotFoundError(missing)
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            _cache[key] = build(ckpt).eval().requires_grad_(False).to(device)
        return _cache[key]


def load_purifier(
    path: str | Path | None = None, device: str | torch.device = "cpu"
) -> PurifierNet:
    """Load the shipped purifier (or ``path``) in float32 eval mode; cached per path/device.

    Raises:
        FileNotFoundError: the weights file is absent.
    """
    path = Path(path) if path is not None else PURIFIER_PATH

    def build(ckpt: dict) -> PurifierNet:
        net = PurifierNet(**ckpt["arch"])
        net.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
        return net

    return load_network(path, device, build, f"purifier weights {path} are missing; make "
                                             "them with scripts/train_purifier.py")


def save_purifier(net: PurifierNet, path: str | Path, info: dict[str, str]) -> None:
    """Save ``net`` in float16 (about half the bytes) with its architecture and ``info``."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in net.state_dict().items()}
    arch = {"width": net.width, "bottleneck": net.bottleneck}
    torch.save({"arch": arch, "state_dict": state, "info": dict(info)}, Path(path))
