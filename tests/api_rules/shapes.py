"""A request validator that knows a botocore operation's whole input shape.

botocore's ``ParamValidator`` (what a client runs before sending) checks required members, Python types and ``min``
only; the service also refuses values beyond ``max``, outside an ``enum`` or not matching a ``pattern``. This walks
the same shapes and checks all of them. Patterns are Java regular expressions in the service models; the few
constructs Python's ``re`` lacks are translated for the ``regex`` module (``\\p{L}`` classes, UTF-16 surrogate
ranges, a quantified end anchor).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import botocore.session
import regex
from botocore.model import ListShape, MapShape, Shape, StructureShape


@functools.cache
def service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def _pattern(java: str) -> Any:
    python = java.replace(r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF")
    python = re.sub(r"\$\{\d+,\d+\}", "$", python)
    return regex.compile(python)


def validate(service: str, operation: str, request: Mapping[str, Any]) -> list[str]:
    """Every way ``request`` breaks the operation's input shape, as ``path: problem`` lines (empty: valid)."""
    shape = service_model(service).operation_model(operation).input_shape
    problems: list[str] = []
    _check(shape, request, operation, problems)
    return problems


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, Mapping):
            problems.append(f"{path}: {type(value).__name__} where a structure is required")
            return
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}: required member {name} is missing")
        for name, inner in value.items():
            if name not in shape.members:
                problems.append(f"{path}: unknown member {name}")
                continue
            _check(shape.members[name], inner, f"{path}.{name}", problems)
        return
    if isinstance(shape, ListShape):
        if not isinstance(value, list | tuple):
            problems.append(f"{path}: {type(value).__name__} where a list is required")
            return
        _bounds(shape, len(value), path, problems, "items")
        for index, inner in enumerate(value):
            _check(shape.member, inner, f"{path}[{index}]", problems)
        return
    if isinstance(shape, MapShape):
        if not isinstance(value, Mapping):
            problems.append(f"{path}: {type(value).__name__} where a map is required")
            return
        _bounds(shape, len(value), path, problems, "entries")
        for key, inner in value.items():
            _check(shape.key, key, f"{path}<key {key!r}>", problems)
            _check(shape.value, inner, f"{path}[{key!r}]", problems)
        return
    if kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: {type(value).__name__} where a string is required")
            return
        _bounds(shape, len(value), path, problems, "characters")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.name}'s {len(shape.enum)} values")
        pattern = shape.metadata.get("pattern")
        if pattern and not _pattern(pattern).fullmatch(value):
            problems.append(f"{path}: {value!r} does not match {shape.name}'s pattern {pattern!r}")
        return
    if kind in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                kind in ("integer", "long") and not isinstance(value, int)):
            problems.append(f"{path}: {value!r} where a {kind} is required")
            return
        _bounds(shape, value, path, problems, "")
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: {value!r} where a boolean is required")
        return
    if kind == "timestamp":
        if not isinstance(value, datetime | int | float | str):
            problems.append(f"{path}: {value!r} where a timestamp is required")
        return
    if kind == "blob" and not isinstance(value, bytes | bytearray | str):
        problems.append(f"{path}: {type(value).__name__} where a blob is required")


def _bounds(shape: Shape, measure: float, path: str, problems: list[str], unit: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and measure < low:
        problems.append(f"{path}: {measure} {unit} is below {shape.name}'s minimum {low}".replace("  ", " "))
    if high is not None and measure > high:
        problems.append(f"{path}: {measure} {unit} is above {shape.name}'s maximum {high}".replace("  ", " "))
