"""Progress events: stepwise work yields its steps and stops at the next one when closed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from faceguard.progress import Cancelled, Event, show_in_terminal, stepwise


def _report(done: int, total: int) -> Event:
    return Event(0, 1, "working", part=done / total, detail=f"step {done} of {total}")


def _count(steps: int, seen: list, pause: float = 0.0):
    def work(on_step) -> str:
        try:
            for n in range(1, steps + 1):
                time.sleep(pause)
                on_step(n, steps)
                seen.append(n)
        except Cancelled:
            seen.append("cancelled")
            raise
        return "result"

    return work


def test_stepwise_yields_every_step_then_returns_the_result():
    def job():
        result = yield from stepwise(_count(4, []), _report)
        yield Event(1, 1, "working", result=result)

    events = list(job())
    assert [e.detail for e in events[:-1]] == [f"step {n} of 4" for n in range(1, 5)]
    assert [e.position for e in events] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert [e.under_way for e in events] == [True] * 4 + [False]
    assert events[-1].result == "result"


def test_closing_stops_the_work_at_its_next_step_and_waits_for_it():
    seen: list = []
    events = stepwise(_count(1000, seen, pause=0.01), _report)
    assert next(events).detail == "step 1 of 1000"
    started = time.perf_counter()
    events.close()  # the user cancelled
    assert time.perf_counter() - started < 1.0
    assert seen[-1] == "cancelled" and len(seen) < 10  # unwound before close returned


def test_the_work_runs_on_the_consumers_thread_and_keeps_its_grad_mode():
    """torch's OpenMP team is per thread: work in a second thread ran 1.3x slower. Grad
    mode is per thread too: each side keeps its own across the switches."""
    import torch

    modes: list = []

    def work(on_step) -> int:
        with torch.no_grad():
            on_step(1, 2)
            modes.append(torch.is_grad_enabled())
        on_step(2, 2)
        return threading.get_ident()

    def job():
        ident = yield from stepwise(work, _report)
        yield Event(1, 1, "working", result=ident)

    events = []
    for event in job():
        modes.append(torch.is_grad_enabled())
        events.append(event)
    assert events[-1].result == threading.get_ident()
    assert modes == [True, False, True, True]  # consumer, work (no_grad), consumer x2


def test_errors_of_the_work_reach_the_consumer():
    def broken(on_step):
        on_step(1, 2)
        raise ValueError("no face")

    with pytest.raises(ValueError, match="no face"):
        list(stepwise(broken, _report))


def test_the_terminal_bar_passes_steps_and_photos_through():
    events = [Event(0, 2, "cloaking", part=0.5, detail="face 1 of 1: step 1 of 2"),
              Event(1, 2, "cloaking", result={"status": "cloaked"}),
              Event(1, 2, "cloaking", part=1 / 3, detail="face 1 of 1: step 1 of 3"),
              Event(2, 2, "cloaking", error="unreadable")]
    assert list(show_in_terminal(iter(events), quiet=True)) == events


def test_the_terminal_says_each_failed_input_once(capsys):
    """A photo that cannot be read fails at the scan and again when its turn comes."""
    events = [Event(1, 2, "scanning", Path("a.jpg"), error="a.jpg: file is empty"),
              Event(2, 2, "scanning", Path("b.jpg"), error="b.jpg: not an image"),
              Event(1, 2, "cloaking", Path("a.jpg"), error="a.jpg: file is empty"),
              Event(2, 2, "cloaking", Path("b.jpg"), error="b.jpg: not an image")]
    assert list(show_in_terminal(iter(events), quiet=True)) == events
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["error: a.jpg: file is empty", "error: b.jpg: not an image"]


def test_the_terminal_gives_the_runs_notes_even_when_quiet(capsys):
    """--quiet hid notes that change the result ("no face in the photos matched ..."); a
    note on one photo stays quiet, as the photos' lines do."""
    events = [Event(1, 2, "reading", Path("a.jpg"), note="a.jpg: 2 faces; took the largest"),
              Event(2, 2, "scanning", note="no face in the photos matched Ann")]
    list(show_in_terminal(iter(events), quiet=True))
    assert capsys.readouterr().err.splitlines() == ["note: no face in the photos matched Ann"]
    list(show_in_terminal(iter(events)))
    assert "note: a.jpg: 2 faces; took the largest" in capsys.readouterr().err.splitlines()
