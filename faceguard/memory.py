"""How the process keeps the memory it frees: for its next photo, not for the system.

A cloak allocates and frees large blocks all the time: a 12-megapixel photo is 150 MB as
float32, its face region's SSIMULACRA2 planes tens of MB each scoring, and every
optimisation step makes its tensors anew. By default glibc's malloc (Linux) gives each
block over 32 MB a mapping of its own and unmaps it when freed, trims the top of its heap,
and gives each thread that allocates an arena of its own, whose blocks over 64 MB are
mapped too. Each new block is then faulted in page by page, and the kernel zeroes every
page: cloaking the 12 MP photo took 1.5-1.8 million page faults and about 5 s of system
time on 2 cores.

:func:`keep_freed_memory` has malloc keep what is freed in one heap and reuse it, for the
CLI's jobs and the app's alike (the app's run in threads of their own);
:func:`release_freed_memory` gives the memory back after a job in the app, which lives on.
Elsewhere (macOS, Windows, musl) both do nothing.
"""

from __future__ import annotations

import ctypes
from functools import cache

#: mallopt's parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


@cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not Linux
        return None
    # glibc has both; another libc (musl) may not
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@cache
def keep_freed_memory() -> bool:
    """Have malloc keep the memory the process frees and reuse it (once per process; best
    before the process starts its threads). True where it could (glibc).

    No block of its own per large allocation, no trimming of the heap's top (up to 2 GB
    free), and one heap for every thread. ``faceguard cloak`` on the 12 MP photo: 1.66
    million page faults -> 0.48 million, system time 5.3 -> 2.1 s, 21.7 -> 19.5 s end to
    end (means of four runs each, alternating; peak memory 2.74 -> 2.89 GB). The same job
    in a thread of its own, as the app runs it: 21.7 -> 18.5 s (two runs each); one heap
    matters there, as a thread's own arena maps its blocks over 64 MB. Without it, how
    often malloc faulted depended on the process's history: ``python -m faceguard`` ran
    the same job with 0.49 million faults in 19.1 s, the ``faceguard`` script with 1.63
    million in 22.9 s. On a 99 MP photo: 136 -> 63-72 s, but peak memory 12.3 -> 15.1-16.4
    GB: what one stage frees, the next, asking for other sizes, does not always reuse
    (trimming the heap's top past 64 or 256 MB free, or giving memory back between the
    photo's stages, kept the peak at 14.5-15.5 GB and lost part of the time;
    benchmarks/results/speed-huge-photo-keep-memory.json). With the visibility metrics
    computed band by band the 99 MP photo takes 48-51 s and 9.4-10 GB
    (huge-photo.json).
    """
    libc = _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in
               ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_ARENA_MAX, 1)))


def release_freed_memory() -> None:
    """Give the memory the process has freed back to the system (after a job in a process
    that lives on: the app)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
