"""Read a chain-shaped ONNX network (each node feeds the next) into a torch module.

FaceGuard's ONNX recognizer (OpenCV's SFace) is a MobileNet: convolutions, batch norm and
PReLU one after another, then a fully connected embedding. Rather than depend on the
``onnx`` package to parse it, :func:`read_onnx` decodes the few fields of the protobuf
file it needs (nodes, their attributes, float32 initializers), and :func:`build_chain`
turns the nodes into an ``nn.Sequential`` of torch layers, each batch norm that follows a
convolution folded into it (the network is only ever run in eval mode).

Install time converts once (:func:`convert_chain`: the layer plan plus its state dict in
one ``.pt``, no pickled code); run time loads that (:func:`load_chain`).

Format: the ONNX protobuf schema (onnx/onnx.proto, Apache-2.0), fields by number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceguard.models.protobuf import as_float, fields, packed_floats, packed_varints

PT_FORMAT = "faceguard-onnx-chain-1"


class UnsupportedOnnxError(ValueError):
    """The file uses something this reader does not implement (named in the message)."""


@dataclass
class OnnxNode:
    """One node: ``op`` (ONNX op type), input and output names, decoded attributes."""

    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, object] = field(default_factory=dict)


@dataclass
class OnnxGraph:
    """The graph's nodes in file order (ONNX requires topological order) and its
    float32 initializers by name."""

    nodes: list[OnnxNode]
    weights: dict[str, np.ndarray]


# --------------------------------------------------------------------------- protobuf
def _attribute(buf: bytes) -> tuple[str, object]:
    # AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8
    name, value, ints, floats = "", None, [], []
    for number, _, v in fields(buf):
        if number == 1:
            name = v.decode()
        elif number == 2:
            value = as_float(v)
        elif number == 3:
            value = packed_varints(v)[0]
        elif number == 4:
            value = v.decode(errors="replace")
        elif number == 7:
            floats += packed_floats(v)  # packed or one fixed32
        elif number == 8:
            ints += packed_varints(v)
    return name, ints if ints else floats if floats else value


def _node(buf: bytes) -> OnnxNode:
    # NodeProto: input 1, output 2, op_type 4, attribute 5
    node = OnnxNode("", [], [])
    for number, _, v in fields(buf):
        if number == 1:
            node.inputs.append(v.decode())
        elif number == 2:
            node.outputs.append(v.decode())
        elif number == 4:
            node.op = v.decode()
        elif number == 5:
            key, value = _attribute(v)
            node.attrs[key] = value
    return node


def _tensor(buf: bytes) -> tuple[str, np.ndarray]:
    # TensorProto: dims 1, data_type 2, float_data 4, name 8, raw_data 9
    dims, dtype, name, raw, floats = [], 0, "", None, b""
    for number, _, v in fields(buf):
        if number == 1:
            dims += packed_varints(v)
        elif number == 2:
            dtype = v
        elif number == 4:
            floats += v  # packed, or one fixed32 at a time
        elif number == 8:
            name = v.decode()
        elif number == 9:
            raw = v
    if dtype != 1:  # FLOAT
        raise UnsupportedOnnxError(f"initializer {name!r} has ONNX data type {dtype}, "
                                   "not float32")
    data = np.frombuffer(raw if raw is not None else floats, dtype="<f4")
    return name, data.reshape(dims).copy()


def read_onnx(path: str | Path) -> OnnxGraph:
    """The nodes and float32 initializers of an ONNX file (ModelProto: graph 7;
    GraphProto: node 1, initializer 5)."""
    graph = None
    for number, _, v in fields(Path(path).read_bytes()):
        if number == 7:
            graph = v
    if graph is None:
        raise UnsupportedOnnxError(f"{path}: no graph in the file")
    nodes, weights = [], {}
    for number, _, v in fields(graph):
        if number == 1:
            nodes.append(_node(v))
        elif number == 5:
            name, array = _tensor(v)
            weights[name] = array
    return OnnxGraph(nodes, weights)


# --------------------------------------------------------------------------- the chain
class Affine(nn.Module):
    """``(x - shift) * scale`` with scalar constants (an input normalisation)."""

    def __init__(self, shift: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.shift, self.scale = shift, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) * self.scale


def build_chain(graph: OnnxGraph) -> tuple[list[tuple[str, dict]], dict[str, torch.Tensor]]:
    """The layer plan (kind, arguments) and the state dict of an ``nn.Sequential``
    equivalent to ``graph`` in eval mode (:func:`make_chain` builds it).

    Every node must take the previous node's output (plus initializers). Supported:
    Sub and Mul by a scalar constant (folded into one :class:`Affine`), Conv,
    BatchNormalization (folded into a Conv right before it), PRelu, Dropout (dropped:
    eval mode), Flatten and Gemm (``transB = 1``).
    """
    w = {k: torch.from_numpy(v) for k, v in graph.weights.items()}
    plan: list[tuple[str, dict]] = []
    state: dict[str, torch.Tensor] = {}
    current = None  # the name of the tensor the next node must take

    def add(kind: str, args: dict, tensors: dict[str, torch.Tensor] | None = None) -> None:
        for key, value in (tensors or {}).items():
            state[f"{len(plan)}.{key}"] = value.float().contiguous()
        plan.append((kind, args))

    for node in graph.nodes:
        data = [name for name in node.inputs if name not in w]
        if len(data) != 1 or (current is not None and data[0] != current):
            raise UnsupportedOnnxError(f"node {node.op} ({node.outputs[0]}) does not take "
                                       "the previous node's output alone: not a chain")
        consts = [w[name] for name in node.inputs if name in w]
        current = node.outputs[0]
        a = node.attrs
        if node.op in ("Sub", "Mul"):
            if len(consts) != 1 or consts[0].numel() != 1:
                raise UnsupportedOnnxError(f"{node.op} by a non-scalar constant")
            value = float(consts[0])
            if not plan or plan[-1][0] != "affine":
                add("affine", {"shift": 0.0, "scale": 1.0})
            args = plan[-1][1]
            if node.op == "Sub":  # (x * s - c) = (x - c / s) * s
                args["shift"] += value / args["scale"]
            else:
                args["scale"] *= value
        elif node.op == "Conv":
            weight = consts[0]
            pads = a.get("pads", [0, 0, 0, 0])
            if pads[:2] != pads[2:] or a.get("dilations", [1, 1]) != [1, 1]:
                raise UnsupportedOnnxError("Conv with uneven padding or dilation")
            bias = consts[1] if len(consts) > 1 else torch.zeros(weight.shape[0])
            add("conv", {"in": weight.shape[1] * a.get("group", 1), "out": weight.shape[0],
                         "kernel": list(weight.shape[2:]), "stride": a.get("strides", [1, 1]),
                         "padding": pads[:2], "groups": a.get("group", 1)},
                {"weight": weight, "bias": bias})
        elif node.op == "BatchNormalization":
            gamma, beta, mean, var = consts
            scale = gamma / torch.sqrt(var + float(a.get("epsilon", 1e-5)))
            if plan and plan[-1][0] == "conv":  # fold: conv(x) * scale + (beta - mean * scale)
                k = len(plan) - 1
                state[f"{k}.weight"] = state[f"{k}.weight"] * scale.view(-1, 1, 1, 1)
                state[f"{k}.bias"] = (state[f"{k}.bias"] - mean) * scale + beta
            else:
                add("scale", {"channels": len(scale)},
                    {"weight": scale, "bias": beta - mean * scale})
        elif node.op == "PRelu":
            add("prelu", {"channels": consts[0].numel()}, {"weight": consts[0].flatten()})
        elif node.op == "Dropout":
            continue
        elif node.op == "Flatten":
            if a.get("axis", 1) != 1:
                raise UnsupportedOnnxError("Flatten other than at axis 1")
            add("flatten", {})
        elif node.op == "Gemm":
            if a.get("transB", 0) != 1 or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
                raise UnsupportedOnnxError("Gemm other than x @ W.T + b")
            weight, bias = consts
            add("linear", {"in": weight.shape[1], "out": weight.shape[0]},
                {"weight": weight, "bias": bias * float(a.get("beta", 1.0))})
        else:
            raise UnsupportedOnnxError(f"ONNX op {node.op}")
    return plan, state


class ChannelScale(nn.Module):
    """Per-channel ``x * weight + bias`` (a batch norm in eval mode): (B, C, ...)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape) + self.bias.view(shape)


def make_chain(plan: list[tuple[str, dict]]) -> nn.Sequential:
    """An ``nn.Sequential`` for a plan of :func:`build_chain` (weights not loaded)."""
    layers: list[nn.Module] = []
    for kind, a in plan:
        if kind == "affine":
            layers.append(Affine(a["shift"], a["scale"]))
        elif kind == "conv":
            layers.append(nn.Conv2d(a["in"], a["out"], tuple(a["kernel"]), tuple(a["stride"]),
                                    tuple(a["padding"]), groups=a["groups"]))
        elif kind == "scale":
            layers.append(ChannelScale(a["channels"]))
        elif kind == "prelu":
            layers.append(nn.PReLU(a["channels"]))
        elif kind == "flatten":
            layers.append(nn.Flatten())
        elif kind == "linear":
            layers.append(nn.Linear(a["in"], a["out"]))
        else:
            raise UnsupportedOnnxError(f"layer kind {kind!r}")
    return nn.Sequential(*layers)


def convert_chain(onnx_path: str | Path, out: str | Path) -> None:
    """Install-time conversion of a chain-shaped ONNX file into one ``.pt``."""
    plan, state = build_chain(read_onnx(onnx_path))
    torch.save({"format": PT_FORMAT, "plan": plan, "state": state}, out)


def load_chain(path: str | Path) -> nn.Sequential:
    """The ``nn.Sequential`` :func:`convert_chain` saved, weights loaded."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("format") != PT_FORMAT:
        raise UnsupportedOnnxError(f"{path}: not a converted ONNX chain ({PT_FORMAT})")
    net = make_chain(saved["plan"])
    net.load_state_dict(saved["state"])
    return net
