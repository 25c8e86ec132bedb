"""Reader for dlib's binary DNN serialization (the ``.dat`` files of ``dlib::serialize``).

No dlib at run time: the format is read directly. What the file holds, as written by
dlib's ``serialize`` functions:

- integers: one byte ``n | 0x80 * negative`` giving the byte count ``n``, then ``n``
  little-endian magnitude bytes;
- floats and doubles: two integers, mantissa and exponent (value = m * 2**e);
- strings: an integer length, then the bytes; bools: one ASCII byte ``'0'``/``'1'``;
- tensors (version 2): version, num_samples, k, nr, nc, then raw little-endian float32;
  alias tensors: version, num_samples, k, nr, nc (a view, no data);
- networks: ``add_loss_layer`` (version, loss details, subnetwork); every ``add_layer``
  writes its version and then its subnetwork *before* its own details, so the nested
  version headers come first, top to bottom, then each layer's details, bottom to top.
  Tag and skip layers write only a version (1) and their subnetwork, so the file does
  not say which of the two they are, nor which tag an ``add_prev`` adds: that topology
  comes from the network definition that reads the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceguard.paths import installed_package, package_file

# dlib's float_details marks non-finite values with these exponents.
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002

TAG_OR_SKIP = "tag_or_skip"


class DlibFormatError(ValueError):
    """The file is not a dlib DNN serialization this reader understands."""


def dlib_model_path(name: str = "dlib_face_recognition_resnet_model_v1.dat") -> Path:
    """Path of a model file shipped in the PyPI package ``face_recognition_models``.

    The package is located without importing it (its ``__init__`` needs pkg_resources).

    Raises:
        FileNotFoundError: the package or the file is not installed.
    """
    if not installed_package("face_recognition_models"):
        raise FileNotFoundError(
            "the dlib face models are missing: install the PyPI package "
            "'face_recognition_models' (pip install face_recognition_models)"
        )
    if path := package_file("face_recognition_models", f"models/{name}"):
        return path
    raise FileNotFoundError(f"{name} is not in the installed face_recognition_models package")


@dataclass
class DlibLayer:
    """One serialized layer: its detail name (e.g. ``"con_4"``), scalars and tensors.

    ``tensors`` hold float32 arrays shaped (num_samples, k, nr, nc) as dlib stores them;
    ``params`` hold ints, floats and alias-tensor shapes.
    """

    kind: str
    params: dict[str, object] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DlibNet:
    """A deserialized network: the loss layer and the layers from the input upwards."""

    loss: DlibLayer
    layers: list[DlibLayer]


class _Stream:
    """Cursor over the file's bytes with dlib's primitive decoders."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of file at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def read_int(self) -> int:
        head = self._take(1)[0]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise DlibFormatError(f"bad integer header {head:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if head & 0x80 else value

    def read_float(self) -> float:
        mantissa, exponent = self.read_int(), self.read_int()
        if exponent == _EXP_INF:
            return float("inf")
        if exponent == _EXP_NINF:
            return float("-inf")
        if exponent == _EXP_NAN:
            return float("nan")
        return float(mantissa) * 2.0**exponent

    def read_str(self) -> str:
        return bytes(self._take(self.read_int())).decode("ascii")

    def read_bool(self) -> bool:
        byte = self._take(1)[0]
        if byte not in (ord("0"), ord("1")):
            raise DlibFormatError(f"bad bool byte {byte:#x} at byte {self.pos - 1}")
        return byte == ord("1")

    def read_tensor(self) -> np.ndarray:
        version = self.read_int()
        shape = tuple(self.read_int() for _ in range(4))
        count = int(np.prod(shape))
        if version == 2:  # raw little-endian IEEE float32
            raw = self._take(4 * count)
            return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
        if version == 1:  # older files: every value as a dlib float
            return np.array([self.read_float() for _ in range(count)], np.float32).reshape(shape)
        raise DlibFormatError(f"unknown tensor version {version}")

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        if (version := self.read_int()) != 1:
            raise DlibFormatError(f"unknown alias_tensor version {version}")
        n, k, nr, nc = (self.read_int() for _ in range(4))
        return (n, k, nr, nc)


def _read_details(s: _Stream) -> DlibLayer:
    """The details of one layer, dispatched on the name it writes first."""
    kind = s.read_str()
    layer = DlibLayer(kind)
    p, t = layer.params, layer.tensors
    if kind == "input_rgb_image_sized":
        p["avg_rgb"] = (s.read_float(), s.read_float(), s.read_float())
        p["nr"], p["nc"] = s.read_int(), s.read_int()
    elif kind == "con_4":
        t["params"] = s.read_tensor()
        for key in ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
            p[key] = s.read_int()
        p["filters"], p["biases"] = s.read_alias_tensor(), s.read_alias_tensor()
        for key in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
            p[key] = s.read_float()
    elif kind == "affine_":
        t["params"] = s.read_tensor()
        p["gamma"], p["beta"] = s.read_alias_tensor(), s.read_alias_tensor()
        p["mode"] = s.read_int()  # 0 = CONV_MODE (per channel), 1 = FC_MODE (per element)
    elif kind in ("max_pool_2", "avg_pool_2"):
        for key in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
            p[key] = s.read_int()
    elif kind == "fc_2":
        p["num_outputs"], p["num_inputs"] = s.read_int(), s.read_int()
        t["params"] = s.read_tensor()
        p["weights"], p["biases"] = s.read_alias_tensor(), s.read_alias_tensor()
        p["bias_mode"] = s.read_int()  # 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
        for key in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
            p[key] = s.read_float()
    elif kind in ("relu_", "add_prev_"):
        pass
    elif kind == "loss_metric_2":
        p["margin"], p["dist_thresh"] = s.read_float(), s.read_float()
    else:
        raise DlibFormatError(f"layer type {kind!r} is not supported by this reader")
    return layer


def read_dlib_net(path: str | Path) -> DlibNet:
    """Deserialize a dlib DNN ``.dat`` file (an ``add_loss_layer`` on a stack of layers).

    Returns the loss layer and the layers in forward order, input layer first; tag and
    skip layers appear as :data:`TAG_OR_SKIP` placeholders. Reads files written by dlib
    19.x (``add_layer`` version 2, input ``add_layer`` version 3), such as the models in
    ``face_recognition_models``; unknown layer types raise :class:`DlibFormatError`.
    """
    s = _Stream(Path(path).read_bytes())
    if (version := s.read_int()) != 1:
        raise DlibFormatError(f"unknown add_loss_layer version {version}")
    loss = _read_details(s)

    # Version headers, top to bottom: 2 = add_layer, 1 = tag or skip layer,
    # 3 = the bottom add_layer whose subnetwork is the input layer.
    headers: list[int] = []
    while True:
        version = s.read_int()
        if version not in (1, 2, 3):
            raise DlibFormatError(f"unexpected layer version {version} at byte {s.pos}")
        headers.append(version)
        if version == 3:
            break

    layers = [_read_details(s)]  # the input layer
    for version in reversed(headers):
        if version == 1:
            layers.append(DlibLayer(TAG_OR_SKIP))
            continue
        layer = _read_details(s)
        for _ in range(3):  # setup called, gradient stale, output getters disabled
            s.read_bool()
        s.read_tensor()  # x_grad
        s.read_tensor()  # cached_output
        s.read_tensor()  # params_grad (version 2) or grad_final (version 3)
        if version == 3:
            s.read_int()  # sample expansion factor
        layers.append(layer)
    if s.pos != len(s.data):
        raise DlibFormatError(f"{len(s.data) - s.pos} trailing bytes after the network")
    return DlibNet(loss, layers)
