"""The docs name only config keys that exist: every `section.key[.key…]` in backticks in README.md and docs/
that starts with a top-level section of the environment settings must resolve in mlsettings.config."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from mlsettings.config import EnvironmentConfig

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(EnvironmentConfig)
    return {("lambda" if f.name == "lambda_" else f.name): hints[f.name] for f in dataclasses.fields(EnvironmentConfig)
            if dataclasses.is_dataclass(hints[f.name])}


SECTIONS = _sections()
KEY = re.compile(r"`((?:{})(?:\.[a-z0-9_]+(?:\|[a-z0-9_]+)*)+)`".format("|".join(SECTIONS)))


def _resolves(path: str) -> bool:
    parts = path.split(".")
    current: typing.Any = SECTIONS[parts[0]]
    for part in parts[1:]:
        if not dataclasses.is_dataclass(current):
            return False
        hints = typing.get_type_hints(current)
        options = part.split("|")
        names = {("lambda" if f.name == "lambda_" else f.name): f.name for f in dataclasses.fields(current)}
        if not all(option in names for option in options):
            return False
        current = hints[names[options[0]]]
    return True


NOT_KEYS = (".py", ".main")  # file and function names that share a section's name (serving.py, training.main)


def _mentions() -> list[tuple[str, str]]:
    return [(path.relative_to(REPO).as_posix(), match) for path in DOCUMENTS
            for match in KEY.findall(path.read_text(encoding="utf-8")) if not match.endswith(NOT_KEYS)]


def test_the_docs_name_config_keys() -> None:
    assert len(_mentions()) > 20  # the pattern finds what the docs say (a broken pattern would pass anything)


@pytest.mark.parametrize(("document", "key"), sorted(set(_mentions())))
def test_every_config_key_named_in_the_docs_exists(document: str, key: str) -> None:
    assert _resolves(key), f"{document} names {key}, which is not a setting of mlsettings/config/"
