"""Every command-line option explains itself; required options are listed as required."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from faceguard.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, name: str = "faceguard"
             ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The parser and every sub-command's parser, depth first, with their command lines."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_of_every_command_has_help_text():
    missing = []
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, "options without help: " + ", ".join(missing)


def test_required_options_are_listed_as_required():
    for name, parser in _parsers(build_parser()):
        for group in parser._action_groups:
            for action in group._group_actions:
                if action.required and action.option_strings:
                    assert group.title == "required arguments", (name, action.option_strings)
    text = dict(_parsers(build_parser()))["faceguard cloak"].format_help()
    required = text.split("required arguments:")[1].split("\n\n")[0]
    assert "-o OUTDIR, --out OUTDIR" in required


def test_the_presets_say_how_visible_and_how_protective_they_measured():
    from faceguard.measured import MEASURED_LOOKS, measured_protection
    from faceguard.settings import PERCEPTUAL_PRESETS

    text = " ".join(dict(_parsers(build_parser()))["faceguard cloak"].format_help().split())
    for preset in PERCEPTUAL_PRESETS:
        assert MEASURED_LOOKS[preset] in text and measured_protection(preset) in text


def test_cloak_and_audit_say_their_exit_codes():
    """A script reads a run by its exit code: ``cloak --help`` gave none."""
    parsers = dict(_parsers(build_parser()))
    for name in ("faceguard cloak", "faceguard audit"):
        text = " ".join(parsers[name].format_help().split()).lower()
        assert "exit codes: 0 " in text and "2 usage error" in text, name
