"""The protobuf wire format, read field by field: enough to decode model files (ONNX,
TensorFlow GraphDef) without their schema packages.

A message is a run of (key, value) pairs; the key is ``field number << 3 | wire type``.
Wire types: 0 varint, 1 fixed 8 bytes, 2 length-delimited (strings, bytes, sub-messages,
packed repeated numbers), 5 fixed 4 bytes. See protobuf.dev/programming-guides/encoding.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator


class ProtobufError(ValueError):
    """The bytes are not a protobuf message this reader can decode (named in the message)."""


def varint(buf: bytes, i: int) -> tuple[int, int]:
    """The varint at ``buf[i:]``: (value, index after it)."""
    value = shift = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a message: an int for varints, bytes for the
    rest (a sub-message's bytes are decoded by calling this again)."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            size, i = varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ProtobufError(f"protobuf wire type {wire} (field {number})")
        if i > len(buf):
            raise ProtobufError(f"field {number} runs past the end of the message")
        yield number, wire, value


def signed(v: int) -> int:
    """A varint read as int64 (two's complement)."""
    return v - (1 << 64) if v >= 1 << 63 else v


def packed_varints(value: int | bytes) -> list[int]:
    """A repeated int field: one unpacked varint, or a packed run of them (int64)."""
    if isinstance(value, int):
        return [signed(value)]
    out, i = [], 0
    while i < len(value):
        v, i = varint(value, i)
        out.append(signed(v))
    return out


def packed_floats(value: bytes) -> list[float]:
    """A repeated float field: one fixed32, or a packed run of them."""
    return list(struct.unpack(f"<{len(value) // 4}f", value))


def as_float(value: bytes) -> float:
    """A single ``float`` field (fixed32)."""
    return struct.unpack("<f", value)[0]
