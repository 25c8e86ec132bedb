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

Modules: :mod:`.graph` reads the files, :mod:`.optimize` folds and fuses, :mod:`.compiler`
and :mod:`.ops` turn nodes into torch calls; this one runs them as a module.

Example::

    net = TFJSGraph("models/mobileface.json", outputs=["batchnorm0/add_1"])
    x = torch.rand(1, 3, 112, 112) * 255
    emb = net(x)                                   # (1, 256), differentiable
    inner = net.run(x, outputs=["add_4"])          # intermediate nodes by name
    read_graph_model("models/mobileface.json").save("mobileface.pt")  # one file, no shards
    net = TFJSGraph("mobileface.pt", outputs=["batchnorm0/add_1"])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from faceguard.models.tfjs.compiler import SUPPORTED_OPS, Compiler, Step
from faceguard.models.tfjs.graph import (
    PT_FORMAT,
    GraphDef,
    UnsupportedOpError,
    data_inputs,
    load_graph,
    read_graph_model,
    sinks,
    topological,
)
from faceguard.models.tfjs.optimize import optimize_graph

__all__ = ["PT_FORMAT", "SUPPORTED_OPS", "GraphDef", "TFJSGraph", "UnsupportedOpError",
           "data_inputs", "load_graph", "optimize_graph", "read_graph_model", "sinks", "tap_key"]


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
        compiler = Compiler(self, graph)
        for node in topological(graph.nodes):
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

