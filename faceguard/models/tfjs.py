"""Run TensorFlow.js graph models (``model.json`` + weight shards) as differentiable torch modules.

A TF.js graph model is a frozen TensorFlow graph: a list of nodes (op, inputs, attributes) in
``modelTopology.node`` and the constants in binary shards described by ``weightsManifest``.
:func:`read_graph_model` decodes both into a :class:`GraphDef`; :class:`TFJSGraph` compiles it
once into a flat list of torch calls, so gradients flow to the inputs.

Layout: the graph means NHWC. Internally every rank-4 activation has NCHW shape (in channels-
last memory, torch's fast CPU path), so per-channel constants, reduction axes, ``Pad``,
``Concat`` and ``Reshape`` are remapped at compile time. Rank-4 graph inputs are given NCHW and
rank-4 outputs come back NCHW; tensors of any other rank keep TensorFlow's layout. ``SAME``
padding reproduces TensorFlow's uneven split (the extra row/column goes at the bottom/right).

Speed: before compiling, :func:`optimize_graph` folds per-channel Mul/Add (batch norm) into the
convolutions and fuses clamps / PReLU into them, so a MobileNet block is one conv call plus an
in-place activation; the constants are buffers, converted once.

Example::

    net = TFJSGraph("models/mobileface.json", outputs=["batchnorm0/add_1"])
    x = torch.rand(1, 3, 112, 112) * 255
    emb = net(x)                                   # (1, 256), differentiable
    inner = net.run(x, outputs=["add_4"])          # intermediate nodes by name
    read_graph_model("models/mobileface.json").save("mobileface.pt")  # one file, no shards
    net = TFJSGraph("mobileface.pt", outputs=["batchnorm0/add_1"])
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PT_FORMAT = "faceguard-tfjs-graph-1"

_NUMPY_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANT_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}
_NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)  # where NHWC axis i lives in NCHW


class UnsupportedOpError(NotImplementedError):
    """The graph uses a TensorFlow op this interpreter does not implement."""


@dataclass
class GraphDef:
    """A decoded graph model.

    Attributes:
        nodes: in file order; each ``{"name", "op", "inputs": [names], "attr": {decoded}}``.
        consts: the ``Const`` values (float32 / int32 / bool numpy arrays), by node name.
        inputs: placeholder names.
        outputs: the signature's output names (``:0`` suffix stripped), or the graph's sinks.
    """

    nodes: list[dict[str, Any]]
    consts: dict[str, np.ndarray]
    inputs: list[str]
    outputs: list[str] = field(default_factory=list)

    def save(self, path: str | Path) -> None:
        """Save to one ``.pt`` file (reload with :meth:`load`, no shard parsing)."""
        consts = {k: torch.from_numpy(np.asarray(v, order="C")) for k, v in self.consts.items()}
        payload = {"format": PT_FORMAT, "nodes": self.nodes, "consts": consts,
                   "inputs": self.inputs, "outputs": self.outputs}
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)  # atomic: a crash never leaves a half-written cache

    @classmethod
    def load(cls, path: str | Path) -> GraphDef:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != PT_FORMAT:
            raise ValueError(f"{path} is not a {PT_FORMAT} file")
        consts = {k: v.numpy() for k, v in payload["consts"].items()}
        return cls(payload["nodes"], consts, payload["inputs"], payload["outputs"])


def _decode_attr(value: dict[str, Any]) -> Any:
    """A TF AttrValue in TF.js JSON form -> plain Python (str, int, float, bool, list)."""
    if "list" in value:
        lst = value["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        if "f" in lst:
            return [float(f) for f in lst["f"]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "shape" in value:
        dims = value["shape"].get("dim")
        return None if value["shape"].get("unknownRank") else [int(d["size"]) for d in dims or []]
    return None  # tensors (Const values live in the shards) and functions


def _inline_const(node: dict[str, Any]) -> np.ndarray:
    """A Const whose value sits in the JSON itself (rare: small tensors)."""
    tensor = node.get("attr", {}).get("value", {}).get("tensor", {})
    dims = [int(d["size"]) for d in tensor.get("tensorShape", {}).get("dim", [])]
    for key, dtype in (("floatVal", np.float32), ("intVal", np.int32), ("boolVal", np.bool_)):
        if key in tensor:
            vals = np.asarray(tensor[key], dtype=dtype)
            return np.broadcast_to(vals, dims).copy() if vals.size == 1 else vals.reshape(dims)
    raise ValueError(f"Const node {node['name']!r} has no weights in the manifest or the JSON")


def _decode_weights(manifest: list[dict[str, Any]], folder: Path) -> dict[str, np.ndarray]:
    """Read the shards of every group and split them into arrays (dequantising as needed)."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape, dtype = [int(s) for s in spec["shape"]], spec["dtype"]
            quant = spec.get("quantization")
            count = math.prod(shape)
            if quant:
                stored = _QUANT_DTYPES.get(quant["dtype"])
            else:
                stored = _NUMPY_DTYPES.get(dtype)
            if stored is None or dtype not in _NUMPY_DTYPES:
                raise ValueError(f"weight {spec['name']!r}: unsupported dtype {dtype}/{quant}")
            nbytes = count * np.dtype(stored).itemsize
            if offset + nbytes > len(data):
                raise ValueError(f"weight {spec['name']!r} runs past the end of {group['paths']}")
            raw = np.frombuffer(data, dtype=stored, count=count, offset=offset)
            offset += nbytes
            if quant and quant["dtype"] != "float16":  # affine: q * scale + min
                scale, low = np.float32(quant["scale"]), np.float32(quant["min"])
                vals = raw.astype(np.float32) * scale + low
                if dtype == "int32":
                    vals = np.round(vals)
            else:
                vals = raw
            out[spec["name"]] = vals.astype(_NUMPY_DTYPES[dtype]).reshape(shape)
    return out


def data_inputs(inputs: list[str]) -> list[str]:
    """A node's inputs as node names: ``"node:0"`` -> ``"node"``, control inputs
    (``"^node"``) dropped; only output 0 of a node is supported."""
    return [_strip_output(i) for i in inputs if not i.startswith("^")]


def _strip_output(name: str) -> str:
    """``"node:0"`` -> ``"node"`` (only output 0 is supported)."""
    base, _, idx = name.partition(":")
    if idx not in ("", "0"):
        raise UnsupportedOpError(f"input {name!r}: multi-output ops are not supported")
    return base


def sinks(nodes: list[dict[str, Any]]) -> list[str]:
    """The graph's outputs when nothing names them: the non-constant nodes nobody consumes."""
    used = {i for n in nodes for i in n["inputs"]}
    return [n["name"] for n in nodes if n["name"] not in used and n["op"] != "Const"]


def read_graph_model(model_json: str | Path) -> GraphDef:
    """Parse a TF.js ``graph-model`` JSON and its weight shards (same folder)."""
    model_json = Path(model_json)
    spec = json.loads(model_json.read_text())
    if spec.get("format", "graph-model") != "graph-model":
        raise ValueError(f"{model_json} is a {spec.get('format')!r}, not a graph-model")
    weights = _decode_weights(spec.get("weightsManifest", []), model_json.parent)
    nodes, consts, inputs = [], {}, []
    for node in spec["modelTopology"]["node"]:
        ins = data_inputs(node.get("input", []))
        attr = {k: _decode_attr(v) for k, v in node.get("attr", {}).items() if k != "value"}
        nodes.append({"name": node["name"], "op": node["op"], "inputs": ins, "attr": attr})
        if node["op"] == "Const":
            consts[node["name"]] = weights.get(node["name"])
            if consts[node["name"]] is None:
                consts[node["name"]] = _inline_const(node)
        elif node["op"] == "Placeholder":
            inputs.append(node["name"])
    outputs = [_strip_output(k if ":" in k else v.get("name", k))
               for k, v in (spec.get("signature") or {}).get("outputs", {}).items()]
    return GraphDef(nodes, consts, inputs, outputs or sinks(nodes))  # no signature: sinks


def load_graph(path: str | Path) -> GraphDef:
    """:func:`read_graph_model` for ``.json``, :meth:`GraphDef.load` for a saved ``.pt``."""
    return GraphDef.load(path) if Path(path).suffix == ".pt" else read_graph_model(path)


# --------------------------------------------------------------------------- helpers
def _to_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _to_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _bcast_nchw(x: torch.Tensor) -> torch.Tensor:
    """A tensor broadcasting against NHWC (numpy rules) -> one broadcasting against NCHW."""
    if x.dim() == 0:
        return x
    return _to_nchw(x.reshape((1,) * (4 - x.dim()) + tuple(x.shape)))


def _np_bcast_nchw(a: np.ndarray) -> np.ndarray:
    if a.size == 1:
        return a.reshape(())
    return a.reshape((1,) * (4 - a.ndim) + a.shape).transpose(0, 3, 1, 2)


def _same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's SAME padding: (before, after), the odd pixel goes after."""
    eff = (k - 1) * d + 1
    total = max((-(-size // s) - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _tf_pads(x: torch.Tensor, padding: str, explicit: list[int], kh: int, kw: int,
             stride: tuple[int, int], dil: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) TF applies to an NCHW tensor for SAME / VALID / EXPLICIT."""
    if padding == "VALID":
        return 0, 0, 0, 0
    if padding == "SAME":
        return (*_same_pads(x.shape[2], kh, stride[0], dil[0]),
                *_same_pads(x.shape[3], kw, stride[1], dil[1]))
    if padding == "EXPLICIT":  # NHWC pairs: [n0, n1, h0, h1, w0, w1, c0, c1]
        return tuple(explicit[2:6])  # type: ignore[return-value]
    raise UnsupportedOpError(f"padding {padding!r}")


def _activation(name: str, attr: dict[str, Any]) -> Callable:
    """A fused activation as ``fn(y, alpha)``, in place on the fresh output ``y`` of a conv or
    matmul (their backward passes do not need ``y``). ``alpha``: Prelu's 1-D slopes."""
    lo, hi = attr.get("clamp", (0.0, 6.0))
    leak = attr.get("leakyrelu_alpha", 0.2)
    acts: dict[str, Callable] = {
        "Relu": lambda y, a: F.relu(y, inplace=True),
        "Relu6": lambda y, a: F.hardtanh(y, 0.0, 6.0, inplace=True),
        "_Clamp": lambda y, a: F.hardtanh(y, lo, hi, inplace=True),
        "LeakyRelu": lambda y, a: F.leaky_relu(y, leak, inplace=True),
        "Prelu": lambda y, a: F.prelu(y, a),
        "Sigmoid": lambda y, a: torch.sigmoid(y), "Elu": lambda y, a: F.elu(y),
        "Tanh": lambda y, a: torch.tanh(y),
    }
    if name not in acts:
        raise UnsupportedOpError(f"fused activation {name!r}")
    return acts[name]


# --------------------------------------------------------------------------- compiler
@dataclass
class _Val:
    """What the compiler knows about a node's output: rank and, for Const, the value."""

    rank: int
    const: np.ndarray | None = None


Step = tuple[Callable, tuple[str, ...], str]

_UNARY: dict[str, Callable] = {
    "Identity": lambda x: x, "Snapshot": lambda x: x, "StopGradient": torch.Tensor.detach,
    "Relu": F.relu, "Relu6": lambda x: x.clamp(0.0, 6.0), "Elu": F.elu, "Selu": F.selu,
    "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Softplus": F.softplus,
    "Rsqrt": torch.rsqrt, "Sqrt": torch.sqrt, "Square": torch.square, "Neg": torch.neg,
    "Exp": torch.exp, "Log": torch.log, "Abs": torch.abs, "Reciprocal": torch.reciprocal,
}
_BINARY: dict[str, Callable] = {
    "Add": torch.add, "AddV2": torch.add, "Sub": torch.sub, "Mul": torch.mul,
    "RealDiv": torch.div, "Div": torch.div, "Maximum": torch.maximum, "Minimum": torch.minimum,
    "Pow": torch.pow, "SquaredDifference": lambda a, b: (a - b).square(),
}


class _Compiler:
    """Turns nodes into steps ``(fn, input keys, output key)``; registers constants as buffers."""

    def __init__(self, module: TFJSGraph, graph: GraphDef) -> None:
        self.module, self.graph = module, graph
        self.vals: dict[str, _Val] = {}
        self.steps: list[Step] = []
        self._buffer_keys: dict[tuple[str, str], str] = {}

    # constants ----------------------------------------------------------------
    def buffer(self, name: str, form: str, make: Callable[[], np.ndarray]) -> str:
        """Register ``make()`` as a float buffer once per (const, form); return its env key."""
        key = self._buffer_keys.get((name, form))
        if key is None:
            key = f"_c{len(self._buffer_keys)}"
            arr = np.asarray(make(), order="C")  # keeps 0-d arrays 0-d
            self.module.register_buffer(key, torch.from_numpy(arr).float())
            self._buffer_keys[(name, form)] = key
        return key

    def const(self, name: str) -> np.ndarray:
        val = self.vals[name]
        if val.const is None:
            raise UnsupportedOpError(f"{name!r} must be a constant here (computed shapes/axes)")
        return val.const

    def operand(self, name: str, rank: int) -> str:
        """Env key of ``name`` laid out to broadcast against a result of ``rank``."""
        val = self.vals[name]
        if val.const is not None:
            if rank == 4:
                return self.buffer(name, "nchw", lambda: _np_bcast_nchw(val.const))
            return self.buffer(name, "raw", lambda: val.const)
        if rank == 4 and 0 < val.rank < 4:  # mixed-rank broadcasting: re-lay out at run time
            key = f"{name}@nchw"
            if key not in self.vals:
                self.steps.append((_bcast_nchw, (name,), key))
                self.vals[key] = _Val(4)
            return key
        return name

    # nodes --------------------------------------------------------------------
    def add(self, node: dict[str, Any]) -> None:
        op, name, ins, attr = node["op"], node["name"], node["inputs"], node["attr"]
        if op == "Const":
            arr = self.graph.consts[name]
            self.vals[name] = _Val(arr.ndim, arr)
            return
        if op == "Placeholder":
            shape = attr.get("shape")
            if shape is None:
                raise UnsupportedOpError(f"placeholder {name!r} has unknown rank")
            self.vals[name] = _Val(len(shape))
            return
        if all(self.vals[i].const is not None for i in ins) and op in _UNARY | _BINARY:
            raise UnsupportedOpError(f"{op} {name!r} on constants only (fold the graph first)")
        if op in _OPS and op not in ("ConcatV2", "AddN") and self.vals[ins[0]].const is not None:
            raise UnsupportedOpError(f"{op} {name!r} on a constant (fold the graph first)")
        if op in _UNARY:
            fn, rank = _UNARY[op], self.vals[ins[0]].rank
            self.emit(name, fn, (self.operand(ins[0], rank),), rank)
        elif op in _BINARY:
            rank = max(self.vals[i].rank for i in ins)
            self.emit(name, _BINARY[op], tuple(self.operand(i, rank) for i in ins), rank)
        elif op in _OPS:
            _OPS[op](self, node)
        else:
            raise UnsupportedOpError(
                f"TF op {op!r} (node {name!r}) is not supported by faceguard.models.tfjs; "
                f"supported: {', '.join(sorted(SUPPORTED_OPS))}"
            )

    def emit(self, name: str, fn: Callable, args: tuple[str, ...], rank: int) -> None:
        self.steps.append((fn, args, name))
        self.vals[name] = _Val(rank)

    def rank(self, name: str) -> int:
        return self.vals[name].rank


def _conv_common(c: _Compiler, node: dict[str, Any], depthwise: bool) -> None:
    """Conv2D / DepthwiseConv2dNative and their fused forms (BiasAdd + activation)."""
    name, ins, attr = node["name"], node["inputs"], node["attr"]
    if attr.get("data_format", "NHWC") != "NHWC":
        raise UnsupportedOpError(f"{node['op']} {name!r}: data_format {attr['data_format']}")
    kernel = c.const(ins[1])  # HWIO, or H W C M for depthwise
    kh, kw = kernel.shape[:2]
    if depthwise:  # torch groups=C: output channel c*M + m uses filter [:, :, c, m]
        groups = kernel.shape[2]
        weight = c.buffer(ins[1], "dw", lambda: kernel.reshape(kh, kw, -1).transpose(2, 0, 1)[
            :, None])
    else:
        groups = 1
        weight = c.buffer(ins[1], "oihw", lambda: kernel.transpose(3, 2, 0, 1))
    stride = tuple(attr.get("strides", [1, 1, 1, 1])[1:3])
    dil = tuple(attr.get("dilations", [1, 1, 1, 1])[1:3])
    padding, explicit = attr.get("padding", "VALID"), attr.get("explicit_paddings", [])
    fused = attr.get("fused_ops", [])
    if (fused and fused[0] != "BiasAdd") or len(fused) > 2:
        raise UnsupportedOpError(f"{node['op']} {name!r}: fused ops {fused}")
    bias = c.buffer(ins[2], "raw", lambda: c.const(ins[2])) if fused else None
    act = fused[1] if len(fused) > 1 else None
    alpha = c.buffer(ins[3], "vec", lambda: c.const(ins[3]).reshape(-1)) if act == "Prelu" else None
    act_fn = _activation(act, attr) if act else None

    def conv(x: torch.Tensor, w: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        b = rest[0] if bias else None
        top, bottom, left, right = _tf_pads(x, padding, explicit, kh, kw, stride, dil)
        if top == bottom and left == right:  # torch pads evenly itself, no copy
            y = F.conv2d(x, w, b, stride, (top, left), dil, groups)
        else:  # TF's uneven SAME: the extra row/column at the bottom/right
            y = F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride, 0, dil, groups)
        return act_fn(y, rest[-1]) if act_fn else y

    args = (ins[0], weight) + ((bias,) if bias else ()) + ((alpha,) if alpha else ())
    c.emit(name, conv, args, 4)


def _matmul(c: _Compiler, node: dict[str, Any]) -> None:
    """MatMul / _FusedMatMul (BiasAdd + activation) on 2-D tensors."""
    name, ins, attr = node["name"], node["inputs"], node["attr"]
    ta, tb = attr.get("transpose_a", False), attr.get("transpose_b", False)
    fused = attr.get("fused_ops", [])
    if (fused and fused[0] != "BiasAdd") or len(fused) > 2:
        raise UnsupportedOpError(f"{node['op']} {name!r}: fused ops {fused}")
    act = fused[1] if len(fused) > 1 else None
    alpha_key = c.buffer(ins[3], "vec", lambda: c.const(ins[3]).reshape(-1)) if (
        act == "Prelu") else None
    act_fn = _activation(act, attr) if act else None
    if c.vals[ins[1]].const is not None and not ta:
        # F.linear wants (out, in): store the constant right-hand side pre-transposed
        rhs = c.const(ins[1])
        w = c.buffer(ins[1], "linear" if not tb else "raw", lambda: rhs if tb else rhs.T)
        bias = c.buffer(ins[2], "raw", lambda: c.const(ins[2])) if fused else None

        def linear(x: torch.Tensor, w: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
            y = F.linear(x, w, rest[0] if bias else None)
            return act_fn(y, rest[-1]) if act_fn else y

        args = (ins[0], w) + ((bias,) if bias else ()) + ((alpha_key,) if alpha_key else ())
        c.emit(name, linear, args, 2)
        return

    def matmul(a: torch.Tensor, b: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        y = (a.T if ta else a) @ (b.T if tb else b)
        if fused:
            y = y + rest[0]
        return act_fn(y, rest[-1]) if act_fn else y

    args = (c.operand(ins[0], 2), c.operand(ins[1], 2))
    if fused:
        args += (c.operand(ins[2], 2),)
    c.emit(name, matmul, args + ((alpha_key,) if alpha_key else ()), 2)


def _reduce(c: _Compiler, node: dict[str, Any]) -> None:
    """Mean / Sum / Max / Min over constant axes."""
    name, ins, attr = node["name"], node["inputs"], node["attr"]
    rank = c.rank(ins[0])
    axes = sorted({int(a) % rank for a in np.atleast_1d(c.const(ins[1]))})
    keep = attr.get("keep_dims", False)
    reducer = {"Mean": torch.mean, "Sum": torch.sum, "Max": torch.amax, "Min": torch.amin}[
        node["op"]]
    out_rank = rank if keep else rank - len(axes)
    dims = tuple(_NHWC_TO_NCHW_AXIS[a] for a in axes) if rank == 4 else tuple(axes)
    # Without keep_dims the survivors come out in NCHW order; that differs from TF's order
    # only when C survives together with H or W: then reduce in TF's layout instead.
    kept = [a for a in range(rank) if a not in axes]
    tf_layout = rank == 4 and not keep and 3 in kept and (1 in kept or 2 in kept)

    def reduce(x: torch.Tensor) -> torch.Tensor:
        if not axes:  # torch reads dim=() as "all dims"; TF as "none"
            return x
        if tf_layout:
            return reducer(_to_nhwc(x), dim=tuple(axes), keepdim=False)
        return reducer(x, dim=dims, keepdim=keep)

    c.emit(name, reduce, (ins[0],), out_rank)


def _pad(c: _Compiler, node: dict[str, Any]) -> None:
    """Pad / PadV2 / MirrorPad with constant paddings."""
    name, ins, attr = node["name"], node["inputs"], node["attr"]
    pads = c.const(ins[1]).astype(int).reshape(-1, 2)
    rank = c.rank(ins[0])
    if rank == 4:  # F.pad lists the last dim first: NCHW -> W, H, C, N
        order = [2, 1, 3, 0]
    else:
        order = list(range(rank - 1, -1, -1))
    flat = [int(p) for a in order for p in pads[a]]
    while flat and flat[-2:] == [0, 0]:
        flat = flat[:-2]
    value = float(c.const(ins[2])) if node["op"] == "PadV2" else 0.0
    mode = {"Pad": "constant", "PadV2": "constant"}.get(node["op"])
    if node["op"] == "MirrorPad":
        mode = {"REFLECT": "reflect", "SYMMETRIC": None}[attr.get("mode", "REFLECT")]
        if mode is None:
            raise UnsupportedOpError(f"MirrorPad SYMMETRIC {name!r}")

    def pad(x: torch.Tensor) -> torch.Tensor:
        if mode == "constant":
            return F.pad(x, flat, value=value)
        return F.pad(x, flat, mode=mode)

    c.emit(name, pad, (ins[0],), rank)


def _reshape(c: _Compiler, node: dict[str, Any]) -> None:
    name, ins = node["name"], node["inputs"]
    shape = [int(s) for s in c.const(ins[1]).reshape(-1)]
    from_4d, to_4d = c.rank(ins[0]) == 4, len(shape) == 4

    def reshape(x: torch.Tensor) -> torch.Tensor:
        if from_4d:  # flatten in TF's NHWC order
            x = _to_nhwc(x)
        y = x.reshape(shape)
        return _to_nchw(y) if to_4d else y

    c.emit(name, reshape, (ins[0],), len(shape))


def _squeeze(c: _Compiler, node: dict[str, Any]) -> None:
    name, ins, attr = node["name"], node["inputs"], node["attr"]
    rank = c.rank(ins[0])
    axes = sorted(a % rank for a in attr.get("squeeze_dims", attr.get("axis", [])))
    if not axes:
        raise UnsupportedOpError(f"Squeeze {name!r} without squeeze_dims")
    from_4d = rank == 4

    def squeeze(x: torch.Tensor) -> torch.Tensor:
        if from_4d:
            x = _to_nhwc(x)
        for a in reversed(axes):
            x = x.squeeze(a)
        return x

    c.emit(name, squeeze, (ins[0],), rank - len(axes))


def _concat(c: _Compiler, node: dict[str, Any]) -> None:
    name, ins = node["name"], node["inputs"]
    rank = max(c.rank(i) for i in ins[:-1])
    axis = int(c.const(ins[-1])) % rank
    dim = _NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis
    c.emit(name, lambda *xs: torch.cat(xs, dim), tuple(c.operand(i, rank) for i in ins[:-1]),
           rank)


def _pool(c: _Compiler, node: dict[str, Any]) -> None:
    """MaxPool / AvgPool (TF's AvgPool does not count padded pixels)."""
    name, ins, attr = node["name"], node["inputs"], node["attr"]
    kh, kw = attr["ksize"][1:3]
    stride = tuple(attr["strides"][1:3])
    padding = attr.get("padding", "VALID")
    is_max = node["op"] == "MaxPool"

    def pool(x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = _tf_pads(x, padding, [], kh, kw, stride, (1, 1))
        pads = (left, right, top, bottom)
        if is_max:
            return F.max_pool2d(F.pad(x, pads, value=-math.inf), (kh, kw), stride)
        mean = F.avg_pool2d(F.pad(x, pads), (kh, kw), stride)
        if not any(pads):
            return mean
        count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), (kh, kw), stride)
        return mean / count  # TF averages over the real pixels only

    c.emit(name, pool, (ins[0],), 4)


def _bias_add(c: _Compiler, node: dict[str, Any]) -> None:
    name, ins = node["name"], node["inputs"]
    rank = c.rank(ins[0])
    c.emit(name, torch.add, (ins[0], c.operand(ins[1], rank)), rank)


def _prelu(c: _Compiler, node: dict[str, Any]) -> None:
    name, ins = node["name"], node["inputs"]
    rank = c.rank(ins[0])
    c.emit(name, lambda x, a: torch.where(x >= 0, x, x * a),
           (ins[0], c.operand(ins[1], rank)), rank)


def _clamp(c: _Compiler, node: dict[str, Any]) -> None:
    lo, hi = node["attr"]["clamp"]
    x = node["inputs"][0]
    c.emit(node["name"], lambda t: t.clamp(lo, hi), (x,), c.rank(x))


def _leaky_relu(c: _Compiler, node: dict[str, Any]) -> None:
    alpha = node["attr"].get("alpha", 0.2)
    c.emit(node["name"], lambda x: F.leaky_relu(x, alpha), (node["inputs"][0],),
           c.rank(node["inputs"][0]))


def _softmax(c: _Compiler, node: dict[str, Any]) -> None:
    x = node["inputs"][0]
    dim = 1 if c.rank(x) == 4 else -1  # TF: the last axis, which is C
    c.emit(node["name"], lambda t: torch.softmax(t, dim), (x,), c.rank(x))


def _batch_norm(c: _Compiler, node: dict[str, Any]) -> None:
    """FusedBatchNorm(V3) in inference mode, folded to one per-channel affine map."""
    name, ins = node["name"], node["inputs"]
    if node["attr"].get("is_training", False):
        raise UnsupportedOpError(f"{node['op']} {name!r} in training mode")
    eps = node["attr"].get("epsilon", 1e-3)
    scale, offset, mean, var = (c.const(i) for i in ins[1:5])
    a = scale / np.sqrt(var + eps)
    b = offset - mean * a
    rank = c.rank(ins[0])
    form = _np_bcast_nchw if rank == 4 else (lambda v: v)
    ka = c.buffer(name + "/a", "bn", lambda: form(a.astype(np.float32)))
    kb = c.buffer(name + "/b", "bn", lambda: form(b.astype(np.float32)))
    c.emit(name, lambda x, a, b: torch.addcmul(b, x, a), (ins[0], ka, kb), rank)


def _add_n(c: _Compiler, node: dict[str, Any]) -> None:
    rank = max(c.rank(i) for i in node["inputs"])
    c.emit(node["name"], lambda *xs: sum(xs[1:], xs[0]),
           tuple(c.operand(i, rank) for i in node["inputs"]), rank)


_OPS: dict[str, Callable[[_Compiler, dict[str, Any]], None]] = {
    "Conv2D": lambda c, n: _conv_common(c, n, depthwise=False),
    "_FusedConv2D": lambda c, n: _conv_common(c, n, depthwise=False),
    "DepthwiseConv2dNative": lambda c, n: _conv_common(c, n, depthwise=True),
    "FusedDepthwiseConv2dNative": lambda c, n: _conv_common(c, n, depthwise=True),
    "MatMul": _matmul, "_FusedMatMul": _matmul,
    "Mean": _reduce, "Sum": _reduce, "Max": _reduce, "Min": _reduce,
    "Pad": _pad, "PadV2": _pad, "MirrorPad": _pad,
    "Reshape": _reshape, "Squeeze": _squeeze, "ConcatV2": _concat,
    "MaxPool": _pool, "AvgPool": _pool, "BiasAdd": _bias_add, "Prelu": _prelu,
    "LeakyRelu": _leaky_relu, "_Clamp": _clamp, "Softmax": _softmax, "AddN": _add_n,
    "FusedBatchNorm": _batch_norm, "FusedBatchNormV3": _batch_norm,
}
SUPPORTED_OPS = frozenset(_OPS) | frozenset(_UNARY) | frozenset(_BINARY) | {"Const", "Placeholder"}


# --------------------------------------------------------------------------- optimiser
_CONVS = {  # op -> its fused form
    "Conv2D": "_FusedConv2D", "_FusedConv2D": "_FusedConv2D",
    "DepthwiseConv2dNative": "FusedDepthwiseConv2dNative",
    "FusedDepthwiseConv2dNative": "FusedDepthwiseConv2dNative",
}
_FUSABLE_ACTS = {"Relu", "Relu6", "_Clamp", "Prelu", "LeakyRelu", "Sigmoid", "Elu", "Tanh"}


class _Rewriter:
    """Peephole rewrites that keep the function but cut torch calls (see :func:`optimize_graph`)."""

    def __init__(self, graph: GraphDef, keep: set[str]) -> None:
        self.nodes = {n["name"]: {**n, "inputs": list(n["inputs"]), "attr": dict(n["attr"])}
                      for n in graph.nodes}
        self.consts = dict(graph.consts)
        self.keep = keep
        self.removed: set[str] = set()

    def users(self, name: str) -> int:
        return sum(i == name for n in self.nodes.values() for i in n["inputs"])

    def private(self, name: str) -> bool:
        """An intermediate only one node reads and nobody asked to see: safe to fuse away."""
        return name not in self.keep and self.users(name) == 1

    def const(self, name: str) -> np.ndarray | None:
        node = self.nodes.get(name)
        return self.consts.get(name) if node and node["op"] == "Const" else None

    def scalar(self, name: str) -> float | None:
        arr = self.const(name)
        return float(arr.reshape(-1)[0]) if arr is not None and arr.size == 1 else None

    def split(self, node: dict[str, Any]) -> tuple[str, np.ndarray] | None:
        """(variable input, constant) of a binary node with one constant input."""
        a, b = node["inputs"]
        if self.const(b) is not None and self.const(a) is None:
            return a, self.const(b)  # type: ignore[return-value]
        if self.const(a) is not None and self.const(b) is None:
            return b, self.const(a)  # type: ignore[return-value]
        return None

    def new_const(self, name: str, value: np.ndarray) -> str:
        self.consts[name] = value.astype(np.float32)
        self.nodes[name] = {"name": name, "op": "Const", "inputs": [], "attr": {}}
        return name

    def drop(self, name: str) -> None:
        del self.nodes[name]
        self.removed.add(name)

    def replace(self, old: str, node: dict[str, Any]) -> None:
        """Drop ``old`` and put ``node`` (which takes over a later node's name) in its place."""
        self.drop(old)
        self.nodes[node["name"]] = node

    def conv_channels(self, conv: dict[str, Any]) -> int:
        k = self.consts[conv["inputs"][1]]
        return k.shape[3] if conv["op"] in ("Conv2D", "_FusedConv2D") else k.shape[2] * k.shape[3]

    def plain_conv(self, name: str, max_fused: int = 1) -> dict[str, Any] | None:
        """A private conv with at most a bias fused so far."""
        node = self.nodes.get(name)
        if (node is None or node["op"] not in _CONVS or not self.private(name)
                or len(node["attr"].get("fused_ops", [])) > max_fused):
            return None
        return node

    def per_channel(self, value: np.ndarray, channels: int) -> np.ndarray | None:
        """A constant that broadcasts along the channel axis only, as a (channels,) vector."""
        if value.size == 1:
            return np.full(channels, value.reshape(-1)[0], np.float32)
        if value.shape[-1] == channels and value.size == channels:
            return value.reshape(-1).astype(np.float32)
        return None

    # rules: each looks at one node and rewrites it when its pattern matches -----------------
    def fold_scale(self, node: dict[str, Any]) -> bool:
        """conv -> Mul(per-channel c)  =>  conv with c folded into the kernel (and bias)."""
        if node["op"] != "Mul" or not (pair := self.split(node)):
            return False
        conv = self.plain_conv(pair[0])
        scale = conv and self.per_channel(pair[1], self.conv_channels(conv))
        if conv is None or scale is None:
            return False
        kernel = self.consts[conv["inputs"][1]]
        if conv["op"] in ("Conv2D", "_FusedConv2D"):  # (kh, kw, in, out): scale the out axis
            folded = kernel * scale
        else:  # depthwise (kh, kw, channels, multiplier): channels x multiplier outputs
            folded = (kernel.reshape(*kernel.shape[:2], -1) * scale).reshape(kernel.shape)
        ins = [conv["inputs"][0], self.new_const(node["name"] + "/folded_kernel", folded)]
        if conv["attr"].get("fused_ops"):
            bias = self.consts[conv["inputs"][2]] * scale
            ins.append(self.new_const(node["name"] + "/folded_bias", bias))
        self.replace(conv["name"], {**conv, "name": node["name"], "inputs": ins})
        return True

    def fold_bias(self, node: dict[str, Any]) -> bool:
        """conv -> Add/BiasAdd(per-channel c)  =>  fused conv with bias."""
        if node["op"] not in ("Add", "AddV2", "BiasAdd") or not (pair := self.split(node)):
            return False
        conv = self.plain_conv(pair[0])
        add = conv and self.per_channel(pair[1], self.conv_channels(conv))
        if conv is None or add is None:
            return False
        if conv["attr"].get("fused_ops"):
            add = add + self.consts[conv["inputs"][2]]
        bias = self.new_const(node["name"] + "/folded_bias", add)
        attr = {**conv["attr"], "fused_ops": ["BiasAdd"], "num_args": 1}
        self.replace(conv["name"], {**conv, "name": node["name"], "op": _CONVS[conv["op"]],
                                    "inputs": conv["inputs"][:2] + [bias], "attr": attr})
        return True

    def clamp(self, node: dict[str, Any]) -> bool:
        """Maximum(Minimum(x, hi), lo) or Minimum(Maximum(x, lo), hi)  =>  _Clamp(x, lo, hi);
        a Relu right before a clamp with lo >= 0 is dropped (ReLU6 graphs)."""
        inner_op = {"Maximum": "Minimum", "Minimum": "Maximum"}.get(node["op"])
        pair = inner_op and self.split(node)
        if not pair or pair[1].size != 1:
            return False
        inner = self.nodes.get(pair[0])
        if inner is None or inner["op"] != inner_op or not self.private(inner["name"]):
            return False
        inner_pair = self.split(inner)
        if not inner_pair or inner_pair[1].size != 1:
            return False
        outer_c, inner_c = float(pair[1].reshape(-1)[0]), float(inner_pair[1].reshape(-1)[0])
        lo, hi = (outer_c, inner_c) if node["op"] == "Maximum" else (inner_c, outer_c)
        if lo > hi:
            return False
        x = inner_pair[0]
        relu = self.nodes.get(x)
        if relu and relu["op"] == "Relu" and lo >= 0 and self.private(x):
            x = relu["inputs"][0]
            self.drop(relu["name"])
        self.replace(inner["name"], {"name": node["name"], "op": "_Clamp", "inputs": [x],
                                     "attr": {"clamp": [lo, hi]}})
        return True

    def fold_pad(self, node: dict[str, Any]) -> bool:
        """Pad(H, W with zeros) -> conv VALID  =>  conv with explicit padding."""
        if node["op"] not in _CONVS or node["attr"].get("padding") != "VALID":
            return False
        pad = self.nodes.get(node["inputs"][0])
        if pad is None or pad["op"] != "Pad" or not self.private(pad["name"]):
            return False
        pads = self.const(pad["inputs"][1])
        if pads is None or pads.shape != (4, 2) or pads[0].any() or pads[3].any():
            return False
        attr = {**node["attr"], "padding": "EXPLICIT",
                "explicit_paddings": [int(p) for p in pads.reshape(-1)]}
        self.drop(pad["name"])
        self.nodes[node["name"]] = {**node, "inputs": [pad["inputs"][0], *node["inputs"][1:]],
                                    "attr": attr}
        return True

    def prelu(self, node: dict[str, Any]) -> bool:
        """Maximum(x, 0) + alpha * Minimum(x, 0)  =>  Prelu(x, alpha)  (MXNet-style exports)."""
        if node["op"] not in ("Add", "AddV2"):
            return False
        parts = [self.nodes.get(i) for i in node["inputs"]]
        if any(p is None or not self.private(p["name"]) for p in parts):
            return False
        ops = {p["op"]: p for p in parts}  # type: ignore[index]
        big, mul = ops.get("Maximum"), ops.get("Mul")
        if big is None or mul is None or not (mpair := self.split(mul)):
            return False
        small = self.nodes.get(mpair[0])
        if small is None or small["op"] != "Minimum" or not self.private(small["name"]):
            return False
        bp, sp = self.split(big), self.split(small)
        if not bp or not sp or bp[0] != sp[0] or bp[1].size != 1 or sp[1].size != 1:
            return False
        if float(bp[1].reshape(-1)[0]) != 0.0 or float(sp[1].reshape(-1)[0]) != 0.0:
            return False
        alpha_name = mul["inputs"][0] if self.const(mul["inputs"][0]) is not None else \
            mul["inputs"][1]
        for part in (big, mul, small):
            self.drop(part["name"])
        self.nodes[node["name"]] = {"name": node["name"], "op": "Prelu",
                                    "inputs": [bp[0], alpha_name], "attr": {}}
        return True

    def fuse_activation(self, node: dict[str, Any]) -> bool:
        """conv -> activation  =>  fused conv (activation applied in place on its output)."""
        if node["op"] not in _FUSABLE_ACTS:
            return False
        conv = self.plain_conv(node["inputs"][0])
        if conv is None:
            return False
        ins = conv["inputs"][:3]
        if not conv["attr"].get("fused_ops"):
            ins.append(self.new_const(node["name"] + "/zero_bias",
                                      np.zeros(self.conv_channels(conv), np.float32)))
        if node["op"] == "Prelu":
            alpha = self.per_channel(self.consts[node["inputs"][1]], self.conv_channels(conv))
            if alpha is None:
                return False
            ins.append(node["inputs"][1])
        attr = {**conv["attr"], **node["attr"], "fused_ops": ["BiasAdd", node["op"]],
                "num_args": len(ins) - 2}
        self.replace(conv["name"], {**conv, "name": node["name"], "op": _CONVS[conv["op"]],
                                    "inputs": ins, "attr": attr})
        return True

    def run(self) -> GraphDef:
        # folds first, so a Relu is still visible to the clamp rule; activations last
        phases = ((self.fold_scale, self.fold_bias, self.fold_pad, self.clamp, self.prelu),
                  (self.fuse_activation,))
        for rules in phases:
            changed = True
            while changed:
                changed = False
                for name in [n["name"] for n in _topological(list(self.nodes.values()))]:
                    node = self.nodes.get(name)  # earlier rewrites may have replaced it
                    if node is not None and any(rule(node) for rule in rules):
                        changed = True
        used = {i for n in self.nodes.values() for i in n["inputs"]} | self.keep
        nodes = [n for n in _topological(list(self.nodes.values()))
                 if n["op"] != "Const" or n["name"] in used]
        consts = {n["name"]: self.consts[n["name"]] for n in nodes if n["op"] == "Const"}
        return GraphDef(nodes, consts, [n["name"] for n in nodes if n["op"] == "Placeholder"])


def optimize_graph(graph: GraphDef, keep: Sequence[str]) -> tuple[GraphDef, set[str]]:
    """Fold per-channel Mul/Add into convolutions, turn Minimum/Maximum pairs into clamps and
    Maximum/Minimum/Mul/Add PReLU patterns into Prelu, fuse activations into convolutions.

    Nodes in ``keep`` (and the graph's inputs) survive unchanged in value. Returns the new graph
    and the names of the nodes fused away (their values are no longer available).
    """
    rewriter = _Rewriter(graph, set(keep))
    new = rewriter.run()
    new.outputs = list(graph.outputs)
    new.inputs = list(graph.inputs)
    names = {n["name"] for n in new.nodes}
    return new, {n["name"] for n in graph.nodes if n["name"] not in names}


# --------------------------------------------------------------------------- module
class TFJSGraph(nn.Module):
    """A TF.js graph model as a differentiable ``nn.Module``.

    Args:
        graph: a :class:`GraphDef`, or a path to ``model.json`` / a saved ``.pt``.
        outputs: node names :meth:`forward` returns (default: the signature's outputs).
        taps: node names whose outputs pass through an ``nn.Identity`` in ``self.taps``
            (key: :func:`tap_key`), so forward hooks can see them.
        channels_last: run rank-4 tensors in channels-last memory (faster convolutions on CPU;
            shapes stay NCHW).
        optimize: fold and fuse for speed (:func:`optimize_graph`); outputs and taps keep their
            values, but other intermediate nodes may no longer be readable with :meth:`run`.

    Shape:
        Rank-4 inputs are given NCHW (B, C, H, W), as the NHWC graph input transposed;
        rank-4 outputs come back NCHW; everything else keeps TF's layout.
    """

    def __init__(self, graph: GraphDef | str | Path, outputs: Sequence[str] | None = None,
                 taps: Sequence[str] = (), optimize: bool = True, channels_last: bool = True
                 ) -> None:
        super().__init__()
        self.channels_last = channels_last
        if not isinstance(graph, GraphDef):
            graph = load_graph(graph)
        self.graph_inputs = list(graph.inputs)
        self.outputs = list(outputs or graph.outputs)
        self.taps = nn.ModuleDict({tap_key(t): nn.Identity() for t in taps})
        by_name = {n["name"]: n for n in graph.nodes}
        for name in [*self.outputs, *taps]:
            if name not in by_name:
                raise KeyError(f"no node named {name!r} in the graph")
        self.fused_away: set[str] = set()
        if optimize:
            graph, self.fused_away = optimize_graph(graph, [*self.outputs, *taps])
        compiler = _Compiler(self, graph)
        for node in _topological(graph.nodes):
            compiler.add(node)
            if node["name"] in taps:
                tap = self.taps[tap_key(node["name"])]
                compiler.steps.append((tap, (node["name"],), node["name"]))
        self._steps = compiler.steps
        self._deps: dict[str, tuple[str, ...]] = {}
        for _, args, out in self._steps:
            self._deps.setdefault(out, args)  # a tap re-emits its node: keep the real inputs
        self._plans: dict[tuple[str, ...], list[Step]] = {}
        self._default = self._plan(tuple(self.outputs))

    def _plan(self, outputs: tuple[str, ...]) -> list[Step]:
        """The steps needed for ``outputs``, in order (cached)."""
        plan = self._plans.get(outputs)
        if plan is None:
            needed, stack = set(), list(outputs)
            while stack:
                name = stack.pop()
                if name not in needed:
                    needed.add(name)
                    stack.extend(self._deps.get(name, ()))
            plan = [s for s in self._steps if s[2] in needed]
            missing = [o for o in outputs if o not in self._deps and o not in self.graph_inputs]
            if missing:
                hint = (" (fused away for speed: build with optimize=False or list them in "
                        "outputs/taps)" if set(missing) & self.fused_away else "")
                raise KeyError(f"cannot compute nodes {missing}{hint}")
            self._plans[outputs] = plan
        return plan

    def _execute(self, inputs: tuple[torch.Tensor, ...], plan: list[Step]) -> dict:
        if len(inputs) != len(self.graph_inputs):
            raise ValueError(f"expected inputs {self.graph_inputs}, got {len(inputs)} tensors")
        env: dict[str, torch.Tensor] = dict(self._buffers)  # type: ignore[arg-type]
        if self.channels_last:  # NCHW shape, NHWC memory: torch's fast CPU convolutions
            inputs = tuple(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
                           for x in inputs)
        env.update(zip(self.graph_inputs, inputs, strict=True))
        for fn, args, out in plan:
            env[out] = fn(*[env[a] for a in args])
        return env

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Run to :attr:`outputs`; one tensor if there is one output, else a tuple."""
        env = self._execute(inputs, self._default)
        outs = tuple(env[o] for o in self.outputs)
        return outs[0] if len(outs) == 1 else outs

    def run(self, *inputs: torch.Tensor, outputs: Sequence[str]) -> dict[str, torch.Tensor]:
        """Outputs of any nodes (intermediate ones too), by name, rank-4 ones NCHW."""
        env = self._execute(inputs, self._plan(tuple(outputs)))
        return {o: env[o] for o in outputs}

    def extra_repr(self) -> str:
        return (f"inputs={self.graph_inputs}, outputs={self.outputs}, steps={len(self._steps)}, "
                f"channels_last={self.channels_last}")

    def node_names(self) -> list[str]:
        """Every computed node, in execution order."""
        return list(dict.fromkeys(out for _, _, out in self._steps if "@" not in out))


def tap_key(node_name: str) -> str:
    """``nn.ModuleDict`` key for a node name (``.`` is not allowed there)."""
    return node_name.replace("/", "__").replace(".", "_")


def _topological(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nodes ordered so every input comes first (file order usually is, but not always)."""
    by_name = {n["name"]: n for n in nodes}
    order, done, visiting = [], set(), set()
    for root in nodes:
        stack = [root["name"]]
        while stack:
            name = stack[-1]
            if name in done:
                stack.pop()
                continue
            if name not in by_name:
                raise KeyError(f"node input {name!r} is not in the graph")
            pending = [i for i in by_name[name]["inputs"] if i not in done]
            if not pending:
                stack.pop()
                done.add(name)
                order.append(by_name[name])
            elif name in visiting:
                raise ValueError(f"the graph has a cycle through {name!r}")
            else:
                visiting.add(name)
                stack.extend(pending)
    return order
