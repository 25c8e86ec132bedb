"""Photos worked on side by side, one core each; a second photo cloaked aside.

Detecting and embedding a photo's faces is many small convolutions, which gain little from
a second thread inside each (on 2 cores: 99 -> 77 ms per album photo for detection alone
when two photos are detected at once, one thread each, instead of one after another on
two threads). Decoding the next photo fits into the gaps.

The threads live as long as the process: cuDNN keeps its convolution plans per thread, so
a new thread plans every shape of every recognizer again, seconds on a GPU (3.4 s to read
the reference photo of benchmarks/job_timeline.py's job, every job, on an H200).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from itertools import islice
from threading import Lock, current_thread
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4  # each holds a decoded photo (a 12 MP one is 150 MB as float32)

_pools: dict[int, ThreadPoolExecutor] = {}  # workers -> the process's pool of that size
_aside: list[ThreadPoolExecutor] = []  # the process's thread for work aside, once started
_pools_lock = Lock()
_NAME = "faceguard-work"  # the pools' threads' names begin so


def _pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of ``workers`` threads, torch on one thread each."""
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(
                workers, thread_name_prefix=_NAME,
                initializer=torch.set_num_threads, initargs=(1,))
        return _pools[workers]


def in_parallel(work: Callable[[T], R], items: Iterable[T], workers: int | None = None
                ) -> Iterator[R]:
    """``work(item)`` for each item, in order, ``workers`` items at once in threads whose
    torch runs on one thread each (default: as many workers as torch has threads, at
    most :data:`MAX_WORKERS`). At most ``workers`` items are in hand ahead of the caller;
    stopping early waits for those. Errors of ``work`` are raised in order. Called from a
    pool's thread, it works in that thread, one item after another: a pool's threads
    waiting on their own pool could wait for good."""
    if current_thread().name.startswith(_NAME):
        yield from map(work, items)
        return
    threads = torch.get_num_threads()
    workers = workers or max(1, min(MAX_WORKERS, threads))
    pool, pending = _pool(workers), deque()
    try:
        todo = iter(items)
        pending.extend(pool.submit(work, item) for item in islice(todo, workers))
        while pending:
            done = pending.popleft().result()
            pending.extend(pool.submit(work, item) for item in islice(todo, 1))
            yield done
    finally:
        wait(pending)  # stopped early (or by an error): the items in hand finish first
        # each thread keeps its own count, but a thread's first torch call takes the last
        # count set anywhere: set the caller's back for the threads started after
        torch.set_num_threads(threads)


def aside(work: Callable[..., R], *args) -> Future[R]:
    """``work(*args)`` in the process's thread for work aside (one item at a time, in
    order), while the caller goes on with its own: a second photo cloaked
    (:mod:`faceguard.side_by_side`). Each thread keeps its own torch count once
    it has set one: the work sets its own. The thread lives as long as the process, as
    the pools' do, and works side by side itself one item after another
    (:func:`in_parallel`)."""
    with _pools_lock:
        if not _aside:
            _aside.append(ThreadPoolExecutor(1, thread_name_prefix=_NAME + "-aside"))
    return _aside[0].submit(work, *args)
