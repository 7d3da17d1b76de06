"""Every `mlops …` command the README shows names a subcommand that exists and only flags that subcommand
accepts (the parser itself is the reference, so a renamed or removed flag fails here)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from mlops import cli

REPO = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"`(mlops(?: [^`]*)?)`")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _resolve(words: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The deepest (sub)parser the leading words name, and the words left."""
    parser = cli.build_parser()
    while words and words[0] in _subparsers(parser):
        parser = _subparsers(parser)[words.pop(0)]
    return parser, words


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return sorted({match for match in COMMAND.findall(text) if match != "mlops"})


def test_the_readme_shows_many_commands() -> None:
    assert len(_commands()) >= 15


@pytest.mark.parametrize("command", _commands())
def test_every_readme_command_and_flag_exists(command: str) -> None:
    words = command.replace("\\|", "|").split()[1:]
    parser, rest = _resolve(list(words))
    if words and not words[0].startswith("-"):
        assert parser is not cli.build_parser() and words[0] not in rest, f"no subcommand {words[0]!r}: {command}"
    accepted = {option for action in parser._actions for option in action.option_strings}
    flags = {word.strip("[]") for word in rest if word.strip("[]").startswith("--")}
    unknown = sorted(flag for flag in flags if flag.split("=")[0] not in accepted)
    assert not unknown, f"{command}: {unknown} are not options of this subcommand"
