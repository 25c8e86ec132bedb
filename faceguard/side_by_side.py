"""Two photos of a cloak run cloaked at once: the next photo in a thread aside while the
job's own thread cloaks the one before, torch on one thread each
(:func:`faceguard.pipeline.cloak_album` pairs them)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator

import torch

from faceguard.atomic import ctrl_c_deferred
from faceguard.io import PhotoError
from faceguard.progress import Event
from faceguard.workers import aside

#: two photos to optimise, each up to this size (megapixels), are cloaked side by side
#: on the CPU, torch on one thread each: small convolutions use a second thread poorly
#: (on 2 cores the album photo by photo took 64.9 s against 81.5 s one at a time:
#: benchmarks/results/side-by-side.json); larger photos one at a time, so that two never
#: take memory at once (a 99 MP photo's cloak holds several GB)
MAX_MEGAPIXELS = 24.0


def kept_by_caller(entry: dict) -> None:
    """A photo cloaked aside is recorded by the job's own thread, in order."""


class Aside:
    """A photo cloaked in the thread aside (:func:`faceguard.workers.aside`) while the
    job's own thread cloaks the photo before it, torch on one thread each (a thread's
    count is its own). The job's photo goes on with every thread once this one is done;
    this one stays on one: a second thread computing on two makes OpenMP stop spinning
    between parallel regions for good, and the job's later photos took 1.5-1.9x as long
    (5 Dec). The job gives its step events once its own photo is done. Stopped at its
    next step when the job stops (:meth:`close`)."""

    def __init__(self, work: Generator[Event, None, dict]) -> None:
        self.threads = torch.get_num_threads()
        self._stop = threading.Event()
        self._taken = False
        self._steps: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._future = aside(self._run, work)

    def _run(self, work: Generator[Event, None, dict]) -> dict | None:
        torch.set_num_threads(1)
        while True:
            try:
                event = next(work)
            except StopIteration as end:
                return end.value
            if self._stop.is_set():
                work.close()  # cancels within the step (faceguard.progress.stepwise)
                return None
            self._steps.put(event)

    def beside(self, work: Generator[Event, None, dict]) -> Generator[Event, None, dict]:
        """``yield from work`` (the job's own photo) on one thread while this photo is
        cloaked, on every thread once it is done."""
        torch.set_num_threads(1)
        try:
            while True:
                try:
                    event = next(work)
                except StopIteration as end:
                    return end.value
                if self._future.done():
                    torch.set_num_threads(self.threads)
                yield event
        finally:
            work.close()
            torch.set_num_threads(self.threads)

    def steps(self) -> Iterator[Event]:
        """Its latest step event, as they come, until it is done."""
        while not self._future.done():
            with contextlib.suppress(queue.Empty):
                event = self._steps.get(timeout=0.1)
                while not self._steps.empty():
                    event = self._steps.get()
                yield event

    def result(self) -> dict:
        """Its manifest entry once written (PhotoError as it came), for the job to record."""
        self._taken = True
        return self._future.result()

    def close(self, record: Callable[[dict], None]) -> None:
        """Stop it at its next step and wait; a photo written but not taken by
        :meth:`result` (the job stopped meanwhile) is ``record``-ed."""
        self._stop.set()
        with ctrl_c_deferred("stopping once the photo cloaked beside stops..."), \
                contextlib.suppress(PhotoError):
            entry = self._future.result()
            if entry is not None and not self._taken:
                record(entry)
        # set last: a thread's first torch call takes the last count set anywhere
        torch.set_num_threads(self.threads)
