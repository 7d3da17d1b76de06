"""Parsing cdk.json's context into the typed tree: defaults deep-merged under each environment, every key
checked, and every cross-environment rule (mlsettings.config.topology) run — the one entry point synth, the CLI and
the tests share."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from mlsettings.config.fields import REPO_ROOT, ConfigError, T
from mlsettings.config.model import EnvironmentConfig
from mlsettings.config.topology import check_concurrency_quota, check_registries

_RENAMED = {"lambda": "lambda_"}
_REMOVED = {
    ("RegistrySettings", "location"): "every environment now deploys from one registry environment "
    "(registry.registry_environment; with its own per-environment group, an endpoint served Staging and "
    "Production alike). See docs/ACCOUNTS.md",
    ("RegistrySettings", "cross_account_readers"): "the registry's resource policies now name exactly the "
    "consumer environments' roles, derived from their account ids (docs/ACCOUNTS.md)",
}


def json_key(name: str) -> str:
    """A field's key in cdk.json (``lambda`` is a Python keyword, so its field is ``lambda_``)."""
    return "lambda" if name == "lambda_" else name


def type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(type_name(a) for a in get_args(tp))
    if origin is tuple:
        return f"a list of {type_name(get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "an object"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "null"}.get(tp, str(tp))


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in get_args(tp):
            return None
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{path} is {value!r}; allowed: {type_name(tp)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path} is {value!r}; allowed: {type_name(tp)}")
        return tuple(_coerce(get_args(tp)[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path} is {value!r}; allowed: an object")
        return _parse_dataclass(typing.cast(type[Any], tp), value, path)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        # json.loads accepts Infinity and NaN; no setting means either (and `config show --json` would print
        # invalid JSON).
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - a field type this parser does not know is a programming error
        raise TypeError(f"unsupported config type {tp!r} at {path}")
    if not ok:
        raise ConfigError(f"{path} is {value!r}; allowed: {type_name(tp)}")
    return value


def _parse_dataclass(cls: type[T], raw: Mapping[str, Any], path: str, **fixed: Any) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    keys = {_RENAMED.get(k, k): k for k in raw}
    unknown = sorted(raw_key for name, raw_key in keys.items() if name not in fields or name in fixed)
    for raw_key in unknown:
        removed = _REMOVED.get((cls.__name__, raw_key))
        if removed:
            raise ConfigError(f"{path}.{raw_key} was removed; {removed}")
    if unknown:
        allowed = sorted(json_key(k) for k in fields if k not in fixed)
        raise ConfigError(f"{path} has unknown keys {unknown}; allowed: {allowed}")
    values: dict[str, Any] = dict(fixed)
    for name, raw_key in keys.items():
        key_path = f"{path}.{raw_key}"
        value = _coerce(hints[name], raw[raw_key], key_path)
        check = fields[name].metadata.get("check")
        if check is not None and value is not None:
            problem = check(value)
            if problem:
                raise ConfigError(f"{key_path} is {raw[raw_key]!r}; allowed: {problem}")
        values[name] = value
    missing = [n for n, f in fields.items() if n not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{path} is missing required keys {missing}")
    return cls(**values)


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_environment(name: str, raw: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
                      ) -> EnvironmentConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"environments.{name} is {raw!r}; allowed: an object")
    merged = _deep_merge(defaults or {}, raw)
    return _parse_dataclass(EnvironmentConfig, merged, f"environments.{name}", name=name)


def load_environments(context: Mapping[str, Any]) -> dict[str, EnvironmentConfig]:
    """Parse every environment in the `cdk.json` context (keys 'defaults' and 'environments')."""
    environments = context.get("environments")
    if not isinstance(environments, Mapping) or not environments:
        raise ConfigError("context.environments is missing or empty; allowed: an object of environments")
    defaults = context.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"context.defaults is {defaults!r}; allowed: an object")
    for name in environments:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", name):
            raise ConfigError(f"environments.{name!r} is not a valid name; allowed: lowercase letters, digits "
                              "and '-', starting with a letter, at most 16 characters")
    configs = {name: parse_environment(name, raw, defaults) for name, raw in environments.items()}
    check_registries(configs)
    check_concurrency_quota(list(configs.values()))
    return configs


CDK_JSON = REPO_ROOT / "cdk.json"


def project_context() -> dict[str, Any]:
    """The `context` block of cdk.json (what the CDK CLI passes to app.py)."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    return context


def select_environments(context: Mapping[str, Any], selected: str | None) -> list[EnvironmentConfig]:
    configs = load_environments(context)
    if selected is None:
        return list(configs.values())
    if selected not in configs:
        raise ConfigError(f"context env is {selected!r}; allowed: one of {sorted(configs)}")
    return [configs[selected]]
