"""Running the core's long jobs off the GUI thread.

A job is a function returning a generator of :class:`faceguard.progress.Event`. A
:class:`JobThread` iterates it in a ``QThread`` and hands every event to the GUI thread
through a queued signal. Cancel sets a flag that is checked after every event (the
core reports every optimisation step); the generator is then closed in its own
thread, so the core stops within a step (its files are written atomically, so only
complete files remain).

The app runs one job at a time through a :class:`JobController`, which also keeps the
photos-done / ETA figures (:class:`ProgressClock`) the status bar shows.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, Signal

from faceguard.memory import release_freed_memory
from faceguard.progress import Event, unit_of
from faceguard.words import plural

EventSource = Callable[[], Iterator[Event]]

DONE, CANCELLED, FAILED = "done", "cancelled", "failed"


def _user_message(exc: BaseException) -> str:
    """One line for the user; only unexpected errors carry their type (and a traceback)."""
    from faceguard.album import AlbumError
    from faceguard.audit.run import AuditError
    from faceguard.io import PhotoError
    from faceguard.models.catalogue import ModelError

    if isinstance(exc, AlbumError | AuditError | ModelError | PhotoError | ValueError | OSError):
        return str(exc)
    traceback.print_exception(exc)
    return f"unexpected error ({type(exc).__name__}): {exc}"


class JobThread(QThread):
    """Iterates one job's events in a worker thread.

    Signals:
        event_ready(Event): one event, delivered in the GUI thread.

    After the thread finished, :attr:`outcome` is DONE, CANCELLED or FAILED and
    :attr:`message` the one-line error of a failed job.
    """

    event_ready = Signal(object)

    def __init__(self, make_events: EventSource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._make_events = make_events
        self._cancel = threading.Event()
        self.outcome = DONE
        self.message = ""

    def cancel(self) -> None:
        """Ask the job to stop after the current step (thread-safe)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:  # the worker thread
        events = None
        try:
            if self._cancel.is_set():
                self.outcome = CANCELLED
                return
            events = self._make_events()
            for event in events:
                self.event_ready.emit(event)
                if self._cancel.is_set():
                    self.outcome = CANCELLED
                    break
        except Exception as exc:  # shown to the user, never a crash
            self.outcome, self.message = FAILED, _user_message(exc)
        finally:
            if events is not None:
                try:
                    events.close()  # runs the generator's cleanup here, in its own thread
                except Exception as exc:
                    self.outcome, self.message = FAILED, _user_message(exc)
            release_freed_memory()  # kept during the job (faceguard.memory), not for good


@dataclass
class ProgressClock:
    """Steps done and time left of the current stage, from the events seen so far
    (counting the parts of steps under way)."""

    stage: str = ""
    started: float = 0.0
    first_position: float = 0.0
    position: float = 0.0
    done: int = 0
    total: int = 0
    detail: str = ""

    def update(self, event: Event) -> None:
        now = time.monotonic()
        if event.stage != self.stage:  # the clock starts at each stage's first event
            self.stage, self.started, self.first_position = event.stage, now, event.position
        self.done, self.total, self.position = event.done, event.total, event.position
        self.detail = event.detail if event.under_way else ""

    def seconds_left(self) -> float | None:
        """Estimated seconds to the end of the stage (None until it has moved)."""
        steps = self.position - self.first_position
        if steps <= 0 or self.total <= 0:
            return None
        per_step = (time.monotonic() - self.started) / steps
        return per_step * max(self.total - self.position, 0)

    def text(self) -> str:
        """E.g. "cloaking: 3 of 10 photos (face 1 of 1: step 12 of 60), about 40 s left"."""
        if self.total <= 0:
            return f"{self.stage}…"
        if self.total == 1 and self.detail:  # "learning: step 12 of 500"
            line = f"{self.stage}: {self.detail}"
        else:
            line = f"{self.stage}: {self.done} of {plural(self.total, unit_of(self.stage))}"
            line += f" ({self.detail})" if self.detail else ""
        left = self.seconds_left()
        if left is not None and self.done < self.total:
            line += f", about {format_seconds(left)} left"
        return line


def format_seconds(seconds: float) -> str:
    """12 -> "12 s", 95 -> "1 min 35 s", 4000 -> "1 h 7 min"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@dataclass
class _Job:
    title: str
    thread: JobThread
    on_event: Callable[[Event], None] | None
    on_finished: Callable[[str, str], None] | None


class JobController(QObject):
    """Runs one job at a time and tells the window how it goes.

    Signals:
        started(str): a job with this title began.
        progressed(Event): an event arrived (after the job's own ``on_event``).
        finished(str, str): outcome (DONE, CANCELLED, FAILED) and the error message.
    """

    started = Signal(str)
    progressed = Signal(object)
    finished = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job: _Job | None = None
        self.clock = ProgressClock()

    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def title(self) -> str:
        return self._job.title if self._job else ""

    @property
    def cancelling(self) -> bool:
        return self._job is not None and self._job.thread.cancelled

    def start(self, title: str, make_events: EventSource,
              on_event: Callable[[Event], None] | None = None,
              on_finished: Callable[[str, str], None] | None = None) -> bool:
        """Start a job unless one is running (returns False then).

        Args:
            title: what the job does, in the user's words ("Protecting 12 photos").
            make_events: called in the worker thread; returns the event generator.
            on_event: called in the GUI thread for every event.
            on_finished: called in the GUI thread with (outcome, message) at the end.
        """
        if self._job is not None:
            return False
        thread = JobThread(make_events, self)
        self._job = _Job(title, thread, on_event, on_finished)
        self.clock = ProgressClock()
        thread.event_ready.connect(self._on_event)
        thread.finished.connect(self._on_thread_finished)
        self.started.emit(title)
        thread.start()
        return True

    def cancel(self) -> None:
        """Stop the running job after its current step."""
        if self._job is not None:
            self._job.thread.cancel()

    def _on_event(self, event: Event) -> None:
        job = self._job
        if job is None:
            return
        self.clock.update(event)
        if job.on_event is not None:
            job.on_event(event)
        self.progressed.emit(event)

    def _on_thread_finished(self) -> None:
        job, self._job = self._job, None
        if job is None:
            return
        job.thread.wait()
        outcome, message = job.thread.outcome, job.thread.message
        job.thread.deleteLater()
        if job.on_finished is not None:
            job.on_finished(outcome, message)
        self.finished.emit(outcome, message)


class ModelCache:
    """The face detector and recognizers, loaded once and shared by the jobs.

    Only used from worker threads, one job at a time, so no locking is needed beyond
    the controller's one-job rule.
    """

    def __init__(self) -> None:
        self._detector = None
        self._recognizers: dict[str, object] = {}
        self.small_faces = False  # the app's "Small faces too": the CLI's --min-face 20

    def detector(self):
        """The MTCNN face detector (:class:`faceguard.detect.FaceDetector`), looking for
        faces down to :data:`faceguard.detect.MIN_FACE` pixels in any photo when
        :attr:`small_faces`, else at the default (faster) sizes."""
        if self._detector is None or self._detector.min_face_asked != self.small_faces:
            from faceguard.detect import MIN_FACE, FaceDetector

            self._detector = FaceDetector(min_face_size=MIN_FACE if self.small_faces else None)
        return self._detector

    def ensemble(self, names: Sequence[str]):
        """An :class:`faceguard.models.ensemble.Ensemble` of these recognizers.

        Raises:
            ModelError: a recognizer is not installed (the message says how to fix it).
        """
        from faceguard.models.ensemble import Ensemble
        from faceguard.models.registry import load_recognizer

        for name in names:
            if name not in self._recognizers:
                self._recognizers[name] = load_recognizer(name)
        return Ensemble([self._recognizers[n] for n in names])

    def forget(self) -> None:
        """Drop the recognizers (after models were installed again)."""
        self._recognizers.clear()
