"""Stopping a run by a signal (faceguard.atomic): as Ctrl-C, files kept whole."""

from __future__ import annotations

import io
import os
import signal
import sys

import pytest

from faceguard.atomic import ctrl_c_deferred, stop_as_ctrl_c, stopped_by


@pytest.fixture
def handlers():
    """The signal handlers as they were, put back after the test."""
    kept = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, handler in kept.items():
        signal.signal(s, handler)


def test_a_shutdown_stops_a_run_as_ctrl_c_but_nohup_keeps_it_going(handlers):
    """SIGTERM killed a run at once (no word in its manifest, a temporary file left);
    stopping as Ctrl-C, it must not stop one the user ran under nohup (SIGHUP ignored)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    stop_as_ctrl_c()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)  # raised at once, as Ctrl-C
    assert stopped_by[0] == signal.SIGTERM


def test_a_signal_held_back_is_said_at_once_and_raised_after(handlers, monkeypatch):
    """A closed terminal (stderr failing) broke the held block between a photo's naming
    and its manifest entry: the signal is taken before anything is said."""

    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    # a hang-up as a terminal sends it: under nohup (as a background CI run) SIGHUP comes
    # in ignored, and a run keeps it so (the test above)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    stop_as_ctrl_c()
    monkeypatch.setattr(sys, "stderr", Closed())
    done = []
    with pytest.raises(KeyboardInterrupt), ctrl_c_deferred():
        os.kill(os.getpid(), signal.SIGHUP)
        done.append("named")
        done.append("recorded")
    assert done == ["named", "recorded"] and stopped_by[0] == signal.SIGHUP
