"""TensorFlow ops as torch calls, for :class:`~faceguard.models.tfjs.compiler.Compiler`.

Every rank-4 activation is NCHW (the graph means NHWC), so per-channel constants, axes and
pads are remapped here, at compile time. ``SAME`` padding reproduces TensorFlow's uneven split
(the extra row/column goes at the bottom/right).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from faceguard.models.tfjs.graph import UnsupportedOpError


class Compiling(Protocol):
    """What an op's translation asks of the compiler
    (:class:`~faceguard.models.tfjs.compiler.Compiler`, which calls the ops)."""

    def buffer(self, name: str, form: str, make: Callable[[], np.ndarray]) -> str: ...
    def const(self, name: str) -> np.ndarray: ...
    def is_const(self, name: str) -> bool: ...
    def operand(self, name: str, rank: int) -> str: ...
    def emit(self, name: str, fn: Callable, args: tuple[str, ...], rank: int) -> None: ...
    def rank(self, name: str) -> int: ...


_NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)  # where NHWC axis i lives in NCHW


def _to_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _to_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def bcast_nchw(x: torch.Tensor) -> torch.Tensor:
    """A tensor broadcasting against NHWC (numpy rules) -> one broadcasting against NCHW."""
    if x.dim() == 0:
        return x
    return _to_nchw(x.reshape((1,) * (4 - x.dim()) + tuple(x.shape)))


def np_bcast_nchw(a: np.ndarray) -> np.ndarray:
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



def _conv_common(c: Compiling, node: dict[str, Any], depthwise: bool) -> None:
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


def _matmul(c: Compiling, node: dict[str, Any]) -> None:
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
    if c.is_const(ins[1]) and not ta:
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


def _reduce(c: Compiling, node: dict[str, Any]) -> None:
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


def _pad(c: Compiling, node: dict[str, Any]) -> None:
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


def _reshape(c: Compiling, node: dict[str, Any]) -> None:
    name, ins = node["name"], node["inputs"]
    shape = [int(s) for s in c.const(ins[1]).reshape(-1)]
    from_4d, to_4d = c.rank(ins[0]) == 4, len(shape) == 4

    def reshape(x: torch.Tensor) -> torch.Tensor:
        if from_4d:  # flatten in TF's NHWC order
            x = _to_nhwc(x)
        y = x.reshape(shape)
        return _to_nchw(y) if to_4d else y

    c.emit(name, reshape, (ins[0],), len(shape))


def _squeeze(c: Compiling, node: dict[str, Any]) -> None:
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


def _concat(c: Compiling, node: dict[str, Any]) -> None:
    name, ins = node["name"], node["inputs"]
    rank = max(c.rank(i) for i in ins[:-1])
    axis = int(c.const(ins[-1])) % rank
    dim = _NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis
    c.emit(name, lambda *xs: torch.cat(xs, dim), tuple(c.operand(i, rank) for i in ins[:-1]),
           rank)


def _pool(c: Compiling, node: dict[str, Any]) -> None:
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


def _bias_add(c: Compiling, node: dict[str, Any]) -> None:
    name, ins = node["name"], node["inputs"]
    rank = c.rank(ins[0])
    c.emit(name, torch.add, (ins[0], c.operand(ins[1], rank)), rank)


def _prelu(c: Compiling, node: dict[str, Any]) -> None:
    name, ins = node["name"], node["inputs"]
    rank = c.rank(ins[0])
    c.emit(name, lambda x, a: torch.where(x >= 0, x, x * a),
           (ins[0], c.operand(ins[1], rank)), rank)


def _clamp(c: Compiling, node: dict[str, Any]) -> None:
    lo, hi = node["attr"]["clamp"]
    x = node["inputs"][0]
    c.emit(node["name"], lambda t: t.clamp(lo, hi), (x,), c.rank(x))


def _leaky_relu(c: Compiling, node: dict[str, Any]) -> None:
    alpha = node["attr"].get("alpha", 0.2)
    c.emit(node["name"], lambda x: F.leaky_relu(x, alpha), (node["inputs"][0],),
           c.rank(node["inputs"][0]))


def _softmax(c: Compiling, node: dict[str, Any]) -> None:
    x = node["inputs"][0]
    dim = 1 if c.rank(x) == 4 else -1  # TF: the last axis, which is C
    c.emit(node["name"], lambda t: torch.softmax(t, dim), (x,), c.rank(x))


def _batch_norm(c: Compiling, node: dict[str, Any]) -> None:
    """FusedBatchNorm(V3) in inference mode, folded to one per-channel affine map."""
    name, ins = node["name"], node["inputs"]
    if node["attr"].get("is_training", False):
        raise UnsupportedOpError(f"{node['op']} {name!r} in training mode")
    eps = node["attr"].get("epsilon", 1e-3)
    scale, offset, mean, var = (c.const(i) for i in ins[1:5])
    a = scale / np.sqrt(var + eps)
    b = offset - mean * a
    rank = c.rank(ins[0])
    form = np_bcast_nchw if rank == 4 else (lambda v: v)
    ka = c.buffer(name + "/a", "bn", lambda: form(a.astype(np.float32)))
    kb = c.buffer(name + "/b", "bn", lambda: form(b.astype(np.float32)))
    c.emit(name, lambda x, a, b: torch.addcmul(b, x, a), (ins[0], ka, kb), rank)


def _add_n(c: Compiling, node: dict[str, Any]) -> None:
    rank = max(c.rank(i) for i in node["inputs"])
    c.emit(node["name"], lambda *xs: sum(xs[1:], xs[0]),
           tuple(c.operand(i, rank) for i in node["inputs"]), rank)


OPS: dict[str, Callable[[Compiling, dict[str, Any]], None]] = {
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
