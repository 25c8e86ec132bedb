"""Atomic text and JSON files: a temporary file in the same folder, then a rename, so
that a crash or Ctrl-C never leaves half a file (the run manifest, the app's settings,
the audit's report), each its owner's alone; and
:func:`ctrl_c_deferred` for files that must be written together."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_json(path: Path, data, indent: int = 1, one_per_line: str | None = None) -> Path:
    """Write ``data`` as JSON to ``path`` as :func:`write_text` does.

    ``one_per_line``: a top-level key of ``data`` whose dict is written one item per
    line, each item compact. Python encodes compact JSON in C but indented JSON in
    Python: a run manifest, rewritten after every photo, took 0.70 s over a 200-photo
    album indented and takes 0.16 s so (it still grows with the square of the album).
    """
    return write_text(path, _json_text(data, indent, one_per_line))


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, readable by its owner alone (its folder is
    created if needed)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp's file is its owner's alone (0600), and stays so through the rename
        fd, tmp = tempfile.mkstemp(prefix=".faceguard-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as e:  # a full disk: said of this file, not of its temporary one
        raise OSError(e.errno, e.strerror, str(path)) from None
    return path


def _json_text(data, indent: int, one_per_line: str | None) -> str:
    if one_per_line is None or not isinstance(data.get(one_per_line), dict):
        return json.dumps(data, indent=indent)
    placeholder = "\0items\0"  # a string no manifest holds, replaced by the items
    text = json.dumps(data | {one_per_line: placeholder}, indent=indent)
    pad = " " * indent
    items = ",\n".join(f"{pad * 2}{json.dumps(k)}: {json.dumps(v)}"
                       for k, v in data[one_per_line].items())
    block = f"{{\n{items}\n{pad}}}" if items else "{}"
    return text.replace(json.dumps(placeholder), block, 1)


#: the signals that stop a run as Ctrl-C does: a terminal's, and a shutdown's or a closed
#: terminal's (which killed it at once, its manifest not told it had ended)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))

#: the signal that stopped the run last (its exit code is 128 + it: 130, 143, 129)
stopped_by = [signal.SIGINT]


def stop_as_ctrl_c() -> None:
    """Make every signal of :data:`STOP_SIGNALS` stop the run as Ctrl-C does (raising
    :class:`KeyboardInterrupt`): the files being written finished or removed, the
    manifest told. One the user ignores (``nohup``: SIGHUP) stays ignored. Call from the
    main thread."""
    for stop in STOP_SIGNALS:
        if signal.getsignal(stop) is not signal.SIG_IGN:
            signal.signal(stop, _stop)


def _stop(signum: int, frame) -> None:
    stopped_by[0] = signum
    raise KeyboardInterrupt


@contextmanager
def ctrl_c_deferred(said: str = "stopping once the photo being written is saved...",
                    ) -> Iterator[None]:
    """Hold Ctrl-C (and :data:`STOP_SIGNALS`) back while files that belong together are
    written (a photo and its manifest entry), so that an interrupted run never leaves an
    output the manifest does not know; ``said`` at once on stderr (where it can be)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals (the GUI cancels by closing the job)
        return
    caught: list = []

    def later(signum: int, frame) -> None:
        first = not caught
        caught.append(signum)  # first: a closed terminal fails the print below
        if first:
            with contextlib.suppress(OSError, ValueError):
                print(said, file=sys.stderr, flush=True)

    previous = {stop: signal.signal(stop, later) for stop in STOP_SIGNALS
                if signal.getsignal(stop) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
        if caught:
            stopped_by[0] = caught[0]
            raise KeyboardInterrupt


def remove_temporaries(folder: Path) -> None:
    """Remove the temporary photos a run killed outright (no Ctrl-C) left in ``folder``
    and below (:func:`faceguard.io.write.save_photo`'s, named by 12 hex digits): hidden,
    they went along with an upload of the folder. One that cannot be removed stays."""
    for tmp in Path(folder).rglob(".faceguard-*.tmp"):
        if re.fullmatch(r"\.faceguard-[0-9a-f]{12}\.tmp", tmp.name):
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
