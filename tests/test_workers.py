"""faceguard.workers: work side by side, results in order, torch on one thread each."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from faceguard.workers import aside, in_parallel


def test_results_come_in_order_with_a_few_items_in_hand_at_most():
    started: list[int] = []
    given: list[int] = []

    def work(k: int) -> tuple[int, int, str]:
        started.append(k)
        time.sleep(0.01 * (k % 3))  # finishing out of order
        return k, torch.get_num_threads(), threading.current_thread().name

    for k, threads, name in in_parallel(work, range(8), workers=2):
        given.append(k)
        assert threads == 1 and name.startswith("faceguard-work")
        assert max(started) <= k + 2  # no more than two ahead of the caller
    assert given == list(range(8))


def test_the_callers_thread_count_stays_and_new_threads_get_it():
    torch.set_num_threads(2)
    list(in_parallel(lambda k: torch.get_num_threads(), range(3), workers=2))
    later: list[int] = []
    thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert torch.get_num_threads() == 2 and later == [2]


def test_the_threads_are_kept_for_the_next_call():
    # cuDNN keeps its convolution plans per thread: new threads would plan them again
    def seen(k: int) -> threading.Thread:  # the object: a new thread may reuse an ident
        time.sleep(0.05)  # busy: each item in hand has a thread of its own
        return threading.current_thread()

    first = set(in_parallel(seen, range(4), workers=2))
    second = set(in_parallel(seen, range(4), workers=2))
    assert len(first) == 2 and second == first and threading.current_thread() not in first


def test_work_that_works_side_by_side_itself_does_not_wait_for_good():
    def outer(k: int) -> list[int]:  # every thread of the pool busy with an outer item
        time.sleep(0.05)
        return list(in_parallel(lambda j: 10 * k + j, range(3), workers=2))

    got: list[list[int]] = []
    caller = threading.Thread(target=lambda: got.extend(in_parallel(outer, range(2), workers=2)),
                              daemon=True)  # a daemon: were it stuck, the tests still end
    caller.start()
    caller.join(timeout=30)
    assert got == [[0, 1, 2], [10, 11, 12]]


def test_an_error_is_raised_in_its_place():
    def work(k: int) -> int:
        if k == 2:
            raise ValueError("two")
        return k

    got = []
    with pytest.raises(ValueError, match="two"):
        for k in in_parallel(work, range(5), workers=2):
            got.append(k)
    assert got == [0, 1]


def test_work_aside_runs_in_order_in_one_kept_thread():
    order: list[int] = []

    def work(k: int) -> threading.Thread:
        time.sleep(0.02 * (3 - k))  # the first given takes longest: still done first
        order.append(k)
        return threading.current_thread()

    threads = {f.result() for f in [aside(work, k) for k in range(3)]}
    again = aside(threading.current_thread).result()
    assert order == [0, 1, 2] and threads == {again}
    assert again.name.startswith("faceguard-work") and again is not threading.current_thread()
