"""One typed environment contract per Lambda function, written by the stack and read by the handler.

A contract is a frozen dataclass whose fields are declared with ``variable(NAME, doc, ...)``. The stack builds it
(usually with the contract's ``for_config``) and writes ``to_env()`` into the function; the handler reads it back
with ``from_env(os.environ)`` at cold start. One class on both sides, so a variable's name, type, default and
allowed values cannot differ between them: ``to_env`` runs the same checks ``from_env`` runs, so a value the
function would refuse fails synth instead of every cold start.

Values CDK only knows at deploy time arrive as token strings (``${Token[...]}``); they are written unchecked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar, get_args, get_origin

from mlsettings.vocabulary import NAMESPACE

Check = Callable[[Any], str | None]
T = TypeVar("T")


class EnvironmentSettingError(ValueError):
    """A function's environment variable is missing or invalid; the message names it and what is allowed."""


def variable(name: str, doc: str, *, default: Any = dataclasses.MISSING, check: Check | None = None,
             encoding: str = "text", always: bool = False) -> Any:
    """A field of a function's environment: its variable's name, its doc, its check and, for a list, how it is
    written ("csv", or "json" for a JSON array; objects are always JSON, keys sorted). ``always``: written even
    at its default (a variable a library reads itself, not through this class)."""
    metadata = {"env": name, "doc": doc, "check": check, "encoding": encoding, "always": always}
    if isinstance(default, list | dict):
        frozen = tuple(default) if isinstance(default, list) else default
        return dataclasses.field(default_factory=lambda: frozen, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def between(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"a number from {low:g} to {high:g}"

    return check


def one_of(allowed: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        values = value if isinstance(value, tuple) else (value,)
        bad = [v for v in values if v not in allowed]
        return f"one of {list(allowed)}" if bad else None

    return check


def prefixed(prefix: str) -> Check:
    def check(value: Any) -> str | None:
        return None if str(value).startswith(prefix) else f"a value starting with {prefix!r}"

    return check


def is_token(value: Any) -> bool:
    """A CDK token standing for a value known at deploy time (a string carrying ``${Token[``)."""
    return isinstance(value, str) and "${Token[" in value


def _has_token(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_token(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_token(v) for v in value)
    return is_token(value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FunctionEnvironment:
    """The variables every function has: Powertools reads these two itself (``Logger()``, ``Metrics()``)."""

    SERVICE: ClassVar[str]
    """The function's service name (its folder under lambdas/, mlsettings.vocabulary.Service)."""

    service: str = variable("POWERTOOLS_SERVICE_NAME", "Powertools' service name (logs, traces, metrics).",
                            default="", always=True)
    metrics_namespace: str = variable("POWERTOOLS_METRICS_NAMESPACE", "Namespace of every custom metric.",
                                      default=NAMESPACE, always=True)
    log_level: str = variable("POWERTOOLS_LOG_LEVEL", "Log level.", default="INFO",
                              check=one_of(("DEBUG", "INFO", "WARNING", "ERROR")), always=True)

    def __post_init__(self) -> None:
        if not self.service:
            object.__setattr__(self, "service", self.SERVICE)
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, str) and not value.strip() and field.default != value:
                # from_env reads an empty variable as a missing one: refuse to write what cannot be read back.
                raise EnvironmentSettingError(f"environment variable {field.metadata['env']} is empty "
                                              f"({field.metadata['doc']})")
            if value is not None and not _has_token(value):
                _check(field, value)

    def to_env(self) -> dict[str, str]:
        """Every variable as the function reads it; one at its default (the reader's, from this same class) or an
        optional one that is None is left out."""
        hints = typing.get_type_hints(type(self))
        written: dict[str, str] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.default is not dataclasses.MISSING and value == field.default and not field.metadata["always"]:
                continue  # the reader supplies the same default: the class is the same
            if value is not None or _is_json(hints[field.name]):
                written[field.metadata["env"]] = _text(hints[field.name], value, field.metadata["encoding"])
        return written

    @classmethod
    def from_env(cls, environment: Mapping[str, str]) -> Self:
        """The contract from a function's environment; a missing or invalid variable is named."""
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            name = field.metadata["env"]
            raw = environment.get(name)
            empty_allowed = _optional(hints[field.name]) or get_origin(_inner(hints[field.name])) is tuple
            if raw is None or (raw.strip() == "" and not empty_allowed):
                if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                    raise EnvironmentSettingError(f"environment variable {name} is required ({field.metadata['doc']})")
                continue
            values[field.name] = _parse(hints[field.name], raw, name, field.metadata["encoding"])
        try:
            return cls(**values)
        except EnvironmentSettingError:
            raise

    @classmethod
    def variables(cls) -> list[tuple[str, str]]:
        """(variable, doc) of every field: the function's environment, for its documentation."""
        return [(f.metadata["env"], f.metadata["doc"]) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]


def _optional(tp: Any) -> bool:
    return get_origin(tp) in (types.UnionType, typing.Union) and type(None) in get_args(tp)


def _inner(tp: Any) -> Any:
    if _optional(tp):
        return next(a for a in get_args(tp) if a is not type(None))
    return tp


def _check(field: dataclasses.Field[Any], value: Any) -> None:
    check = field.metadata.get("check")
    problem = check(value) if check is not None else None
    if problem:
        raise EnvironmentSettingError(f"environment variable {field.metadata['env']} is {value!r}; allowed: {problem}")


def _is_json(tp: Any) -> bool:
    inner = _inner(tp)
    return inner is dict or get_origin(inner) in (dict, Mapping)


def _text(tp: Any, value: Any, encoding: str) -> str:
    inner = _inner(tp)
    if inner is bool:
        return "true" if value else "false"
    if get_origin(inner) is tuple:
        return json.dumps(list(value)) if encoding == "json" else ",".join(str(v) for v in value)
    if _is_json(tp):
        return json.dumps(value, sort_keys=True)
    if inner is float and not isinstance(value, str):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def _parse(tp: Any, raw: str, name: str, encoding: str) -> Any:
    inner = _inner(tp)
    text = raw.strip()
    if _optional(tp) and text in ("", "null"):
        return None
    try:
        if inner is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError("not true or false")
            return text.lower() == "true"
        if inner is int:
            return int(text)
        if inner is float:
            number = float(text)
            if not math.isfinite(number):
                raise ValueError("not a finite number")
            return number
        if get_origin(inner) is tuple:
            if encoding == "json":
                items = json.loads(text)
                if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
                    raise ValueError("not a JSON list of non-empty strings")
                return tuple(items)
            return tuple(item.strip() for item in text.split(",") if item.strip())
        if _is_json(tp):
            parsed = json.loads(text)
            if not isinstance(parsed, dict):
                raise ValueError("not a JSON object")
            return parsed
    except (ValueError, json.JSONDecodeError) as err:
        allowed = {bool: "true or false", int: "an integer", float: "a number"}.get(inner, "JSON")
        raise EnvironmentSettingError(f"environment variable {name} is {raw!r}: {err}; allowed: {allowed}") from None
    return text
