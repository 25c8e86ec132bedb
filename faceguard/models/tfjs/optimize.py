"""Peephole rewrites of a :class:`GraphDef` for speed: batch norms folded into convolutions,
clamps and PReLU patterns recognised, activations fused into the convolution before them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from faceguard.models.tfjs.graph import GraphDef, topological

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
                for name in [n["name"] for n in topological(list(self.nodes.values()))]:
                    node = self.nodes.get(name)  # earlier rewrites may have replaced it
                    if node is not None and any(rule(node) for rule in rules):
                        changed = True
        used = {i for n in self.nodes.values() for i in n["inputs"]} | self.keep
        nodes = [n for n in topological(list(self.nodes.values()))
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
