"""Read a TF.js graph model (``model.json`` + weight shards) into a :class:`GraphDef`.

A TF.js graph model is a frozen TensorFlow graph: a list of nodes (op, inputs, attributes) in
``modelTopology.node`` and the constants in binary shards described by ``weightsManifest``.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

PT_FORMAT = "faceguard-tfjs-graph-1"

_NUMPY_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANT_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


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


def topological(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
