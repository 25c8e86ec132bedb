"""Read a frozen TensorFlow graph (a binary ``GraphDef`` ``.pb``) without TensorFlow.

A frozen graph holds its weights as ``Const`` nodes, so the one file is the whole model.
:func:`read_frozen_graph` decodes it into the same :class:`~faceguard.models.tfjs.GraphDef`
a TF.js model becomes, and :class:`~faceguard.models.tfjs.TFJSGraph` runs either one as a
differentiable torch module.

Format: TensorFlow's ``graph.proto``, ``node_def.proto``, ``attr_value.proto``,
``tensor.proto`` and ``tensor_shape.proto`` (Apache-2.0), fields by number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faceguard.models.protobuf import (
    ProtobufError,
    as_float,
    fields,
    packed_floats,
    packed_varints,
)
from faceguard.models.tfjs import GraphDef, UnsupportedOpError, data_inputs, sinks

#: TensorFlow DataType enum -> numpy, for the constants FaceGuard's graphs hold
_DTYPES = {1: np.float32, 3: np.int32, 9: np.int64, 10: np.bool_}
_TYPE_NAMES = {1: "DT_FLOAT", 3: "DT_INT32", 9: "DT_INT64", 10: "DT_BOOL"}


def _shape(buf: bytes) -> list[int] | None:
    # TensorShapeProto: dim 2 (Dim: size 1), unknown_rank 3
    dims: list[int] = []
    for number, _, v in fields(buf):
        if number == 2:
            size = next((packed_varints(s)[0] for n, _, s in fields(v) if n == 1), 0)
            dims.append(size)
        elif number == 3 and v:
            return None
    return dims


def _tensor(buf: bytes, where: str) -> np.ndarray:
    # TensorProto: dtype 1, tensor_shape 2, tensor_content 4, float_val 5, int_val 7,
    # int64_val 10, bool_val 11
    dtype, shape, content = 0, [], None
    vals: list[Any] = []
    for number, _, v in fields(buf):
        if number == 1:
            dtype = v
        elif number == 2:
            shape = _shape(v) or []
        elif number == 4:
            content = v
        elif number == 5:
            vals += packed_floats(v)
        elif number in (7, 10, 11):
            vals += packed_varints(v)
    if dtype not in _DTYPES:
        raise ProtobufError(f"{where}: tensor of TensorFlow data type {dtype} is not supported")
    np_dtype = _DTYPES[dtype]
    if content is not None:
        arr = np.frombuffer(content, dtype=np.dtype(np_dtype).newbyteorder("<")).astype(np_dtype)
    else:
        arr = np.asarray(vals, dtype=np_dtype)
    count = int(np.prod(shape))
    if arr.size == 1 and count != 1:  # TF stores a splat as one value
        arr = np.full(shape, arr.item(), dtype=np_dtype)
    if arr.size != count:
        raise ProtobufError(f"{where}: {arr.size} values for shape {shape}")
    # int64 constants are shapes and axes here: int32 is what the interpreter takes
    return arr.reshape(shape).astype(np.int32 if np_dtype is np.int64 else np_dtype)


def _list(buf: bytes) -> list[Any]:
    # AttrValue.ListValue: s 2, i 3, f 4, b 5, type 6
    out: list[Any] = []
    for number, _, v in fields(buf):
        if number == 2:
            out.append(v.decode())
        elif number in (3, 6):
            out += packed_varints(v)
        elif number == 4:
            out += packed_floats(v)
        elif number == 5:
            out += [bool(b) for b in packed_varints(v)]
    return out


def _attr(buf: bytes, where: str) -> Any:
    """An AttrValue -> plain Python, as :mod:`faceguard.models.tfjs` decodes TF.js JSON;
    a tensor comes back as a numpy array. AttrValue: list 1, s 2, i 3, f 4, b 5, type 6,
    shape 7, tensor 8."""
    for number, _, v in fields(buf):
        if number == 1:
            return _list(v)
        if number == 2:
            return v.decode(errors="replace")
        if number == 3:
            return packed_varints(v)[0]
        if number == 4:
            return as_float(v)
        if number == 5:
            return bool(v)
        if number == 6:
            return _TYPE_NAMES.get(v, f"DT_{v}")
        if number == 7:
            return _shape(v)
        if number == 8:
            return _tensor(v, where)
    return None


def _node(buf: bytes) -> dict[str, Any]:
    # NodeDef: name 1, op 2, input 3, attr 5 (map entry: key 1, value 2)
    node: dict[str, Any] = {"name": "", "op": "", "inputs": [], "attr": {}}
    raw_attrs = []
    for number, _, v in fields(buf):
        if number == 1:
            node["name"] = v.decode()
        elif number == 2:
            node["op"] = v.decode()
        elif number == 3:
            node["inputs"].append(v.decode())
        elif number == 5:
            entry = dict((n, x) for n, _, x in fields(v))
            raw_attrs.append((entry.get(1, b"").decode(), entry.get(2, b"")))
    for key, value in raw_attrs:
        node["attr"][key] = _attr(value, f"node {node['name']!r} attribute {key!r}")
    return node


def read_frozen_graph(path: str | Path) -> GraphDef:
    """The nodes and constants of a frozen ``GraphDef`` file (GraphDef: node 1).

    Control inputs (``^name``) are dropped; the outputs are the nodes nobody consumes.

    Raises:
        ProtobufError: not a frozen graph this reader can decode (the message names the
            file and says why).
        UnsupportedOpError: a node takes another node's second output (the message names
            the file).
    """
    path = Path(path)
    try:
        return _graph(path.read_bytes())
    except ProtobufError as err:
        raise ProtobufError(f"{path}: not a TensorFlow graph FaceGuard can read: {err}") from None
    except UnsupportedOpError as err:
        raise UnsupportedOpError(f"{path}: {err}") from None


def _graph(buf: bytes) -> GraphDef:
    nodes, consts, inputs = [], {}, []
    for number, wire, v in fields(buf):
        if number != 1:
            continue
        if wire != 2:
            raise ProtobufError("field 1 is not a node")
        node = _node(v)
        node["inputs"] = data_inputs(node["inputs"])
        if node["op"] == "Const":
            value = node["attr"].pop("value", None)
            if not isinstance(value, np.ndarray):
                raise ProtobufError(f"Const {node['name']!r} has no tensor value")
            consts[node["name"]] = value
        elif node["op"] == "Placeholder":
            inputs.append(node["name"])
        nodes.append(node)
    if not nodes:
        raise ProtobufError("no graph nodes")
    return GraphDef(nodes, consts, inputs, sinks(nodes))
