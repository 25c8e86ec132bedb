"""Compile a :class:`GraphDef` into a flat list of torch calls (steps)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceguard.models.tfjs.graph import GraphDef, UnsupportedOpError
from faceguard.models.tfjs.ops import OPS, bcast_nchw, np_bcast_nchw


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


class Compiler:
    """Turns nodes into steps ``(fn, input keys, output key)``; registers constants as buffers."""

    def __init__(self, module: nn.Module, graph: GraphDef) -> None:
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
                return self.buffer(name, "nchw", lambda: np_bcast_nchw(val.const))
            return self.buffer(name, "raw", lambda: val.const)
        if rank == 4 and 0 < val.rank < 4:  # mixed-rank broadcasting: re-lay out at run time
            key = f"{name}@nchw"
            if key not in self.vals:
                self.steps.append((bcast_nchw, (name,), key))
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
        if all(self.is_const(i) for i in ins) and op in _UNARY | _BINARY:
            raise UnsupportedOpError(f"{op} {name!r} on constants only (fold the graph first)")
        if op in OPS and op not in ("ConcatV2", "AddN") and self.is_const(ins[0]):
            raise UnsupportedOpError(f"{op} {name!r} on a constant (fold the graph first)")
        if op in _UNARY:
            fn, rank = _UNARY[op], self.vals[ins[0]].rank
            self.emit(name, fn, (self.operand(ins[0], rank),), rank)
        elif op in _BINARY:
            rank = max(self.vals[i].rank for i in ins)
            self.emit(name, _BINARY[op], tuple(self.operand(i, rank) for i in ins), rank)
        elif op in OPS:
            OPS[op](self, node)
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

    def is_const(self, name: str) -> bool:
        return self.vals[name].const is not None



SUPPORTED_OPS = frozenset(OPS) | frozenset(_UNARY) | frozenset(_BINARY) | {"Const", "Placeholder"}
