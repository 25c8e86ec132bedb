"""Photos worked on side by side, one core each.

Detecting and embedding a photo's faces is many small convolutions, which gain little from
a second thread inside each (on 2 cores: 99 -> 77 ms per album photo for detection alone
when two photos are detected at once, one thread each, instead of one after another on
two threads). Decoding the next photo fits into the gaps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4  # each holds a decoded photo (a 12 MP one is 150 MB as float32)


def in_parallel(work: Callable[[T], R], items: Iterable[T], workers: int | None = None
                ) -> Iterator[R]:
    """``work(item)`` for each item, in order, ``workers`` items at once in threads whose
    torch runs on one thread each (default: as many workers as torch has threads, at
    most :data:`MAX_WORKERS`). At most ``workers`` items are in hand ahead of the caller;
    stopping early waits for those. Errors of ``work`` are raised in order."""
    threads = torch.get_num_threads()
    workers = workers or max(1, min(MAX_WORKERS, threads))
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="faceguard-work",
                                initializer=torch.set_num_threads, initargs=(1,)) as pool:
            todo = iter(items)
            pending = deque(pool.submit(work, item) for item in islice(todo, workers))
            while pending:
                done = pending.popleft().result()
                pending.extend(pool.submit(work, item) for item in islice(todo, 1))
                yield done
    finally:
        # each thread keeps its own count, but a thread's first torch call takes the last
        # count set anywhere: set the caller's back for the threads started after
        torch.set_num_threads(threads)
