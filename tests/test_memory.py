"""Freed memory is kept for the next photo during a job, and given back after it (glibc)."""

import ctypes

import numpy as np
import pytest

from faceguard.memory import _glibc, keep_freed_memory, release_freed_memory

pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc's malloc only (Linux)")

MB = 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mapped_bytes() -> int:
    """Bytes malloc holds in blocks mapped on their own (mallinfo2's hblkhd)."""
    mallinfo2 = _glibc().mallinfo2
    mallinfo2.restype = _MallInfo2
    return mallinfo2().hblkhd


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_a_photo_sized_block_is_kept_in_the_heap_and_given_back_after_the_job():
    assert keep_freed_memory()
    mapped = _mapped_bytes()
    photo = np.ones((2900, 4352, 3), np.float32)  # a 12 MP photo: 150 MB
    assert _mapped_bytes() == mapped  # in the heap, not a mapping of its own
    resident = _resident_bytes()
    del photo
    assert _resident_bytes() > resident - 20 * MB  # kept for the next one
    release_freed_memory()
    assert _resident_bytes() < resident - 100 * MB  # given back
