"""Progress events: long work in the core yields these; the CLI and the GUI show them.

Work is a generator of :class:`Event`. The consumer shows progress and may stop
iterating at any time (cancel): the generator only yields between whole steps, so
stopping leaves nothing half-written.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: stage -> what one of its steps is, for "3 of 7 defenses" (other stages count steps)
UNITS = {"scanning": "photo", "detecting": "photo", "cloaking": "photo",
         "reading photos": "photo", "reading gallery": "person",
         "trying defenses": "defense", "training detectors": "detector"}


def unit_of(stage: str) -> str:
    """What one step of ``stage`` is, in the singular ("photo", "defense", "step")."""
    return UNITS.get(stage, "step")


@dataclass
class Event:
    """One finished step of a long job.

    Attributes:
        done: steps finished so far (this one included).
        total: steps in the job (0 when unknown).
        stage: what is being done, in the user's words ("detecting", "cloaking").
        path: the photo this step was about, if any.
        result: what the step produced (e.g. the faces of a photo), if anything.
        error: one-line message when the step failed (the job goes on).
        skipped: the step was skipped (e.g. already done with --resume).
    """

    done: int
    total: int
    stage: str
    path: Path | None = None
    result: Any = None
    error: str | None = None
    skipped: bool = False


def show_in_terminal(events: Iterable[Event], quiet: bool = False) -> Iterator[Event]:
    """Pass events through while drawing a tqdm bar on stderr (photos/s and ETA)."""
    from tqdm import tqdm

    bar, stage = None, None
    try:
        for event in events:
            if bar is None or stage != event.stage:
                if bar is not None:
                    bar.close()
                stage = event.stage
                bar = tqdm(total=event.total or None, desc=event.stage,
                           unit=unit_of(event.stage),
                           disable=quiet or None, leave=False, dynamic_ncols=True)
            if event.error:  # one line per failed input, on stderr, even when quiet
                bar.write(f"error: {event.error}", file=sys.stderr)
            bar.update(event.done - bar.n)
            yield event
    finally:
        if bar is not None:
            bar.close()
