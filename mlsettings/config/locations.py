"""Where a setting is written in cdk.json: the line and column of a key path, so an error points at the text.

``json`` gives no positions for values, so this scans the document once and records, for every object key and
array item, where its value starts. A setting that an environment inherits from ``defaults`` is found there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

Path = tuple[str | int, ...]
# The standard library's own JSON string scanner (what json.loads uses; typeshed does not declare it).
_scanstring: Callable[[str, int], tuple[str, int]] = getattr(json.decoder, "scanstring")  # noqa: B009
_KEY_PATH = re.compile(r"^((?:context|environments|defaults)(?:\.[A-Za-z0-9_\-]+|\[\d+\])+)")


@dataclass(frozen=True)
class Location:
    line: int
    column: int


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found: dict[Path, Location] = {}
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def location(self, pos: int) -> Location:
        line = max(i for i, start in enumerate(self._line_starts) if start <= pos)
        return Location(line + 1, pos - self._line_starts[line] + 1)

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def value(self, path: Path) -> None:
        self._skip()
        self.found[path] = self.location(self.pos)
        char = self.text[self.pos] if self.pos < len(self.text) else ""
        if char == "{":
            self.pos += 1
            self._members(path)
        elif char == "[":
            self.pos += 1
            self._items(path)
        elif char == '"':
            _, self.pos = _scanstring(self.text, self.pos + 1)
        else:
            match = re.compile(r"[^,\]}\s]+").match(self.text, self.pos)
            self.pos = match.end() if match else self.pos + 1

    def _members(self, path: Path) -> None:
        while True:
            self._skip()
            if self.text[self.pos] == "}":
                self.pos += 1
                return
            if self.text[self.pos] == ",":
                self.pos += 1
                continue
            key, self.pos = _scanstring(self.text, self.pos + 1)
            self._skip()
            self.pos += 1  # the colon
            self.value((*path, key))

    def _items(self, path: Path) -> None:
        index = 0
        while True:
            self._skip()
            if self.text[self.pos] == "]":
                self.pos += 1
                return
            if self.text[self.pos] == ",":
                self.pos += 1
                continue
            self.value((*path, index))
            index += 1


def positions(text: str) -> dict[Path, Location]:
    """Every key path of a valid JSON document with where its value starts (the document must parse)."""
    json.loads(text)
    scanner = _Scanner(text)
    scanner.value(())
    return scanner.found


def _parts(dotted: str) -> Path:
    parts: list[str | int] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return tuple(parts)


def where(path: object, text: str, message: str) -> str:
    """``cdk.json:LINE:COLUMN`` for an error message about ``path``'s text (just the path when no key is named)."""
    location = locate(text, message)
    return f"{path}:{location.line}:{location.column}" if location else str(path)


def locate(text: str, message: str) -> Location | None:
    """Where the setting a ConfigError message starts with (``environments.dev.serving.sla...``) is written: in
    the environment's block, else the ``defaults`` it inherits; None when the message names no single key."""
    match = _KEY_PATH.match(message)
    if match is None:
        return None
    try:
        found = positions(text)
    except (ValueError, IndexError):
        return None
    path = _parts(match.group(1))
    if path[0] != "context":
        path = ("context", *path)
    candidates = [path]
    if len(path) > 2 and path[1] == "environments":
        candidates.append(("context", "defaults", *path[3:]))
    for candidate in candidates:
        if candidate in found:
            return found[candidate]
    # not written anywhere (a missing key, a code default): the closest enclosing object that is
    for end in range(len(path) - 1, 1, -1):
        if path[:end] in found:
            return found[path[:end]]
    return None
