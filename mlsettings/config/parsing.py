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
from mlsettings.config.model import (
    MODEL_NAME_PATTERN,
    EnvironmentConfig,
    InferenceApiSettings,
    ModelSettings,
    MonitoringSettings,
    ServingSettings,
    TrainingSettings,
)
from mlsettings.config.topology import check_concurrency_quota, check_names, check_registries

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
    unknown = sorted(raw_key for name, raw_key in keys.items()
                     if name not in fields or name in fixed or fields[name].metadata.get("derived"))
    for raw_key in unknown:
        removed = _REMOVED.get((cls.__name__, raw_key))
        if removed:
            raise ConfigError(f"{path}.{raw_key} was removed; {removed}")
    if unknown:
        allowed = sorted(json_key(k) for k, f in fields.items() if k not in fixed and not f.metadata.get("derived"))
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


MODEL_SECTIONS: dict[str, type[Any]] = {"training": TrainingSettings, "serving": ServingSettings,
                                         "inference_api": InferenceApiSettings, "monitoring": MonitoringSettings}
"""The sections a model's entry may override, for every environment or for one (``environments.<env>``)."""
MODEL_KEYS = ("problem_type", "schema_file", "owner", *MODEL_SECTIONS, "environments")
ENVIRONMENT_ONLY: dict[tuple[str, ...], str] = {
    ("serving", "served_stages"): "which stages an environment serves is the environment's, for every model",
    ("monitoring", "alarms", "page"): "who is paged is the environment's (its alert topics), for every model",
    ("monitoring", "alarms", "ticket"): "who gets tickets is the environment's (its alert topics), for every model",
}
MODEL_ONLY: dict[tuple[str, ...], str] = {("training", "schema_file"): "a model's schema is models.<name>.schema_file"}
EXAMPLE_MODELS = ('"models": {"breast-cancer": {"problem_type": "binary", '
                  '"schema_file": "pipelines/schemas/breast_cancer.json"}}')


def _path_in(raw: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = raw
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _refuse(raw: Mapping[str, Any], where: str, rules: Mapping[tuple[str, ...], str], verb: str) -> None:
    for path, reason in rules.items():
        if _path_in(raw, path):
            raise ConfigError(f"{where}.{'.'.join(path)} {verb}: {reason}")


def parse_environment(name: str, raw: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
                      models: Mapping[str, Mapping[str, Any]] | None = None) -> EnvironmentConfig:
    """One environment and, for each model of ``models`` (context.models), its view of the environment."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"environments.{name} is {raw!r}; allowed: an object")
    _refuse(raw, f"environments.{name}", MODEL_ONLY, "is a model's setting")
    merged = _deep_merge(defaults or {}, raw)
    # the environment's own settings first: an error in them names the environment's key, not a model's view
    _parse_dataclass(EnvironmentConfig, merged, f"environments.{name}", name=name, models=())
    views = tuple(_model_view(name, merged, model, entry) for model, entry in (models or {}).items())
    return _parse_dataclass(EnvironmentConfig, merged, f"environments.{name}", name=name, models=views)


def _model_view(environment: str, merged: Mapping[str, Any], name: str, entry: Mapping[str, Any]) -> EnvironmentConfig:
    """The environment as ``name`` sees it: each section of the model's entry, then of its
    ``environments.<environment>``, deep-merged over the environment's."""
    overrides = entry.get("environments", {}).get(environment, {})
    sections = {section: _deep_merge(merged.get(section, {}), _deep_merge(entry.get(section, {}),
                                                                           overrides.get(section, {})))
                for section in MODEL_SECTIONS}
    sections["training"] = {**sections["training"], "schema_file": entry["schema_file"]}
    model = _parse_dataclass(ModelSettings, {k: entry[k] for k in MODEL_KEYS[:3] if k in entry}, f"models.{name}",
                             name=name)
    return _parse_dataclass(EnvironmentConfig, {**merged, **sections}, f"models.{name}.environments.{environment}",
                            name=environment, model=model)


def _check_model_entry(name: str, entry: Any, environments: Mapping[str, Any]) -> None:
    where = f"models.{name}"
    if not re.fullmatch(MODEL_NAME_PATTERN, name):
        raise ConfigError(f"models.{name!r} is not a valid model name; allowed: lowercase letters and digits in "
                          "'-'-separated words, starting with a letter (e.g. 'churn-v2')")
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} is {entry!r}; allowed: an object")
    unknown = sorted(set(entry) - set(MODEL_KEYS))
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; allowed: {sorted(MODEL_KEYS)}")
    for key in ("problem_type", "schema_file"):
        if key not in entry:
            raise ConfigError(f"{where} is missing required key {key!r}")
    per_environment = entry.get("environments", {})
    if not isinstance(per_environment, Mapping):
        raise ConfigError(f"{where}.environments is {per_environment!r}; allowed: an object of environments")
    unknown = sorted(set(per_environment) - set(environments))
    if unknown:
        raise ConfigError(f"{where}.environments has unknown environments {unknown}; allowed: {sorted(environments)}")
    _check_layer(where, {k: v for k, v in entry.items() if k in MODEL_SECTIONS})
    for env, raw in per_environment.items():
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}.environments.{env} is {raw!r}; allowed: an object")
        extra = sorted(set(raw) - set(MODEL_SECTIONS))
        if extra:
            raise ConfigError(f"{where}.environments.{env} has unknown keys {extra}; allowed: {sorted(MODEL_SECTIONS)}")
        _check_layer(f"{where}.environments.{env}", raw)


def _check_layer(where: str, layer: Mapping[str, Any]) -> None:
    """A model's override sections on their own: no environment-only key, no model-entry key, each section a
    valid (partial) section."""
    _refuse(layer, where, ENVIRONMENT_ONLY, "is not a model's setting")
    _refuse(layer, where, MODEL_ONLY, "is set in the model's entry")
    for section, cls in MODEL_SECTIONS.items():
        if section in layer:
            if not isinstance(layer[section], Mapping):
                raise ConfigError(f"{where}.{section} is {layer[section]!r}; allowed: an object")
            _parse_dataclass(cls, layer[section], f"{where}.{section}")


def _check_models(models: Any, environments: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """context.models, each entry's keys and its override sections checked on their own (so an error names the
    key where it is written)."""
    if models is None:
        raise ConfigError("context.models is missing: since issue 24 a deployment serves several models, each an "
                          f"entry of context.models with its problem type and schema, e.g. {EXAMPLE_MODELS} "
                          "(training.schema_file moves into the model's entry; docs/MODELS.md)")
    if not isinstance(models, Mapping) or not models:
        raise ConfigError(f"context.models is {models!r}; allowed: an object with at least one model, e.g. "
                          f"{EXAMPLE_MODELS}")
    for name, entry in models.items():
        _check_model_entry(name, entry, environments)
    return dict(models)


def load_environments(context: Mapping[str, Any]) -> dict[str, EnvironmentConfig]:
    """Parse every environment in the `cdk.json` context (keys 'defaults', 'environments' and 'models'), each with
    its models' views."""
    environments = context.get("environments")
    if not isinstance(environments, Mapping) or not environments:
        raise ConfigError("context.environments is missing or empty; allowed: an object of environments")
    defaults = context.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"context.defaults is {defaults!r}; allowed: an object")
    _refuse(defaults, "defaults", MODEL_ONLY, "is a model's setting")
    for name in environments:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", name):
            raise ConfigError(f"environments.{name!r} is not a valid name; allowed: lowercase letters, digits "
                              "and '-', starting with a letter, at most 16 characters")
    models = _check_models(context.get("models"), environments)
    configs = {name: parse_environment(name, raw, defaults, models) for name, raw in environments.items()}
    check_registries(configs)
    check_concurrency_quota(list(configs.values()))
    check_names(configs)
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
