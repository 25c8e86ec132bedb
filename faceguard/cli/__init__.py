"""The ``faceguard`` command line: thin, one subcommand per module.

User errors are one clear line on stderr; ``--debug`` shows tracebacks.
Exit codes: 0 all good, 1 some inputs failed (each named), 2 usage error; ``audit``
also 3: the report was written but its cloak-detection check could not run.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import importlib
import os
import sys

from faceguard import __version__
from faceguard.atomic import stop_as_ctrl_c, stopped_by
from faceguard.memory import keep_freed_memory

#: subcommand -> module in faceguard.cli (each has ``add_parser`` and ``run``)
COMMANDS = {
    "demo": "demo",
    "detect": "detect",
    "people": "people",
    "cloak": "cloak",
    "audit": "audit",
    "models": "models",
}


def _name_bytes(error: UnicodeError) -> tuple[str, int]:
    """Print the bytes of a name that are not UTF-8 as ``\\xe9``, not as ``\\udce9``.

    Python reads such a byte as a lone surrogate (U+DC80..U+DCFF, PEP 383); any other
    character the stream cannot hold is escaped as ``backslashreplace`` would.
    """
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    escaped = "".join(
        f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF
        else c.encode("ascii", "backslashreplace").decode("ascii")
        for c in text)
    return escaped, error.end


codecs.register_error("faceguard-name", _name_bytes)


class CLIError(Exception):
    """A user error: printed as one line, exit code 2 unless ``code`` says otherwise."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceguard",
        description="Cloak faces in your photos against face recognition, and audit the cloak.",
    )
    parser.add_argument("--version", action="version", version=f"faceguard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(f"faceguard.cli.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:  # fast path: no subcommand modules, no torch
        print(f"faceguard {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    keep_freed_memory()
    stop_as_ctrl_c()  # a shutdown or a closed terminal stops a run as Ctrl-C does
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is printed,
        with contextlib.suppress(AttributeError):  # escaped, not a stop of the batch
            stream.reconfigure(errors="faceguard-name")
    try:
        return int(args.run(args) or 0)
    except CLIError as exc:
        if args.debug:
            raise
        print(f"faceguard {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"faceguard {args.command}: interrupted", file=sys.stderr)
        return 128 + stopped_by[0]  # 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP
    except BrokenPipeError:  # the reader went away (`faceguard models list | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        return 141
    except Exception as exc:  # a bug or an unexpected failure: one line unless --debug
        if args.debug:
            raise
        if isinstance(exc, OSError) and exc.filename:  # the system's refusal: a full disk
            print(f"faceguard {args.command}: error: {exc.filename}: {exc.strerror}",
                  file=sys.stderr)
        else:
            print(f"faceguard {args.command}: error: {exc} (run with --debug for details)",
                  file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
