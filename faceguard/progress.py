"""Progress events: long work in the core yields these; the CLI and the GUI show them.

Work is a generator of :class:`Event`. The consumer shows progress and may stop
iterating at any time (cancel). Most events say a whole step (a photo) is done; a long
step (optimising a face) also reports how far it has got, every iteration, as events
with ``part`` set (:func:`stepwise`). Stopping the iteration there stops the
optimisation at its next iteration; files are only written between steps, and
atomically, so a cancelled job leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: ``on_step(done, total)``: called by a long loop after each of its ``total`` iterations;
#: it raises :class:`Cancelled` when the job was cancelled meanwhile
StepCallback = Callable[[int, int], None]


class Cancelled(Exception):
    """Raised by a step callback inside a long loop whose job was cancelled."""


def no_steps(done: int, total: int) -> None:
    """The step callback of work nobody watches."""

#: stage -> what one of its steps is, for "3 of 7 defenses" (other stages count steps)
UNITS = {"scanning": "photo", "detecting": "photo", "cloaking": "photo",
         "reading photos": "photo", "reading gallery": "person",
         "making stand-in cloaks": "photo",
         "trying defenses": "defense", "training detectors": "detector"}


def unit_of(stage: str) -> str:
    """What one step of ``stage`` is, in the singular ("photo", "defense", "step")."""
    return UNITS.get(stage, "step")


@dataclass
class Event:
    """One finished step of a long job, or how far the current step has got.

    Attributes:
        done: steps finished so far (this one included).
        total: steps in the job (0 when unknown).
        stage: what is being done, in the user's words ("detecting", "cloaking").
        path: the photo this step was about, if any.
        result: what the step produced (e.g. the faces of a photo), if anything.
        error: one-line message when the step failed (the job goes on).
        note: one-line message the user should know although the step worked (e.g. which
            face of a reference photo with several was taken).
        skipped: the step was skipped (e.g. already done with --resume).
        part: set while a step is under way: the share of step ``done + 1`` done so
            far, in [0, 1] (such events carry no result).
        detail: what that part is, e.g. "face 1 of 2: step 12 of 60".
    """

    done: int
    total: int
    stage: str
    path: Path | None = None
    result: Any = None
    error: str | None = None
    note: str | None = None
    skipped: bool = False
    part: float | None = None
    detail: str = ""

    @property
    def under_way(self) -> bool:
        """True for a report from inside a step (the step is not finished yet)."""
        return self.part is not None

    @property
    def position(self) -> float:
        """Steps done plus the share of the current one: where a progress bar stands."""
        return self.done + (self.part or 0.0)


def stepwise(work: Callable[[StepCallback], T],
             report: Callable[[int, int], Event]) -> Generator[Event, None, T]:
    """Run ``work(on_step=...)`` and yield ``report(done, total)`` for each step it
    reports; ``yield from`` it to get work's result (or its exception).

    The work runs in a greenlet on the consumer's own thread: each ``on_step`` switches
    back to the consumer, which yields the step's event, and the next iteration switches
    back into the work. A worker thread did this before, but torch's OpenMP gives every
    thread that computes a team of its own, and libgomp, managing more threads than there
    are cores, then stops spinning between parallel regions: the same face took 1.3x as
    long to optimise in a second thread as in the first on 2 cores.

    When the iteration stops (the consumer closes the generator, or an exception such
    as Ctrl-C reaches it), :class:`Cancelled` is raised inside the work where it waits
    (and by any later ``on_step``), and the work unwinds before this returns.
    """
    import torch
    from greenlet import getcurrent, greenlet

    stopped = False

    def on_step(done: int, total: int) -> None:
        if stopped:
            raise Cancelled
        grad = torch.is_grad_enabled()  # thread-local: the consumer may change it meanwhile
        worker.parent.switch((done, total))
        torch.set_grad_enabled(grad)

    def run() -> _Finished:
        return _Finished(work(on_step=on_step))

    worker = greenlet(run)

    def resume(throw: bool = False) -> tuple[int, int] | _Finished:
        worker.parent = getcurrent()  # whoever iterates now gets the next step
        grad = torch.is_grad_enabled()
        try:
            return worker.throw(Cancelled) if throw else worker.switch()
        finally:
            torch.set_grad_enabled(grad)

    try:
        while not isinstance(step := resume(), _Finished):
            yield report(*step)
    finally:
        if not worker.dead:  # stopped while the work waits in on_step: unwind it
            stopped = True
            with contextlib.suppress(Cancelled):
                resume(throw=True)
    return step.result


@dataclass
class _Finished:
    """What a greenlet's work returned (told apart from its steps)."""

    result: Any


def show_in_terminal(events: Iterable[Event], quiet: bool = False) -> Iterator[Event]:
    """Pass events through while drawing a tqdm bar on stderr (photos/s and ETA); the
    bar moves within a step as the step reports its part."""
    from tqdm import tqdm

    bar, stage, detail = None, None, ""
    said: set[str] = set()  # a photo that fails to read fails again at each later stage
    try:
        for event in events:
            if bar is None or stage != event.stage:
                if bar is not None:
                    bar.close()
                stage = event.stage
                bar = tqdm(total=event.total or None, desc=event.stage,
                           unit=unit_of(event.stage),
                           disable=quiet or None, leave=False, dynamic_ncols=True)
            if event.error and event.error not in said:  # one line per failed input,
                said.add(event.error)  # on stderr, even when quiet
                bar.write(f"error: {event.error}", file=sys.stderr)
            # a note on the whole run (no photo: "no face matched ...") changes its result
            # and is said even when quiet; one per photo is not, as the photos' lines
            if event.note and not (quiet and event.path is not None):
                bar.write(f"note: {event.note}", file=sys.stderr)
            moved = round(event.position, 2) - bar.n
            # a new detail where the bar stands still is drawn too ("measuring how visible
            # face 1 of 2 is", seconds of a huge photo's work after its last step)
            bar.set_postfix_str(event.detail, refresh=not moved and event.detail != detail)
            detail = event.detail
            bar.update(moved)
            yield event
    finally:
        if bar is not None:
            bar.close()
