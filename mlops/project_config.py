"""The CLI's reader of cdk.json: the environments it names, their settings, and what is worth a warning.

``mlsettings.config`` owns the schema and the parser; this module only reads a file an operator points at
(``mlops config validate --file``, or the project's own cdk.json for every other command) and turns every
way that file can be unusable into one line naming the file and what is wrong. Standard library only:
``mlops --help`` and ``mlops config validate`` import this module, and they must stay fast.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import OperatorError
from mlsettings.vocabulary import PRODUCTION

if TYPE_CHECKING:
    from mlsettings.config import EnvironmentConfig

# The file every command but `config validate` reads: None is the project's own (mlsettings.config.CDK_JSON, what
# `cdk synth` deploys from). A module attribute read at call time, so tests can point the CLI at another file.
# mlsettings.config is imported only when a file is parsed: building its dataclasses costs ~70 ms of start-up.
PROJECT_FILE: Path | None = None
# The stage whose approved versions serve production users (mlsettings.config.SERVABLE_STAGES' second stage).
PRODUCTION_STAGE = PRODUCTION


def project_file() -> Path:
    if PROJECT_FILE is not None:
        return PROJECT_FILE
    from mlsettings.config import CDK_JSON

    return CDK_JSON


def read_context(path: Path | None = None) -> dict[str, Any]:
    """The ``context`` object of a cdk.json file; a missing, empty or malformed file is an OperatorError."""
    path = path or project_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OperatorError(f"{path}: no such file (run from the project folder or pass --file PATH)") from None
    except IsADirectoryError:
        raise OperatorError(f"{path}: is a folder, not a cdk.json file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise OperatorError(f"{path}: cannot be read ({err})") from None
    if not text.strip():
        raise OperatorError(f"{path}: the file is empty; allowed: a JSON object with a \"context\" object")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise OperatorError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(document, Mapping):
        raise OperatorError(f"{path}: the top level is a JSON {type(document).__name__}; allowed: an object "
                            "with a \"context\" object")
    context = document.get("context")
    if not isinstance(context, Mapping):
        found = "no \"context\" key" if context is None else f"\"context\" is a {type(context).__name__}"
        raise OperatorError(f"{path}: {found}; allowed: a \"context\" object holding \"defaults\" and "
                            "\"environments\"")
    return dict(context)


def load_configs(path: Path | None = None) -> dict[str, EnvironmentConfig]:
    """Every environment of the file, parsed and checked by ``mlsettings.config`` (defaults merged)."""
    path = path or project_file()
    from mlsettings.config import ConfigError, load_environments

    context = read_context(path)
    try:
        return load_environments(context)
    except ConfigError as err:
        from mlsettings.config.locations import where

        raise OperatorError(f"{where(path, path.read_text(encoding='utf-8'), str(err))}: {err}") from err


def environment_config(name: str, path: Path | None = None) -> EnvironmentConfig:
    """One environment's settings; an unknown name lists the valid ones (the `--env` check of every command)."""
    path = path or project_file()
    configs = load_configs(path)
    if name not in configs:
        raise OperatorError(f"--env {name!r} is not an environment in {path}; valid: "
                            f"{', '.join(sorted(configs))}")
    return configs[name]


def model_config(environment: str, model: str | None, path: Path | None = None) -> EnvironmentConfig:
    """The model's view of an environment (its settings over the environment's): ``model`` is ``--model``, which
    may be left out only when cdk.json has one model."""
    config = environment_config(environment, path)
    names = config.model_names
    if model is None:
        if len(names) == 1:
            return config.models[0]
        raise OperatorError(f"--model is required: environment {environment!r} has the models "
                            f"{', '.join(names)} (mlops models --env {environment} lists them)")
    if model not in names:
        raise OperatorError(f"--model {model!r} is not a model in {path or project_file()}; valid: "
                            f"{', '.join(names)}")
    return config.for_model(model)


def defaults_config(path: Path | None = None) -> EnvironmentConfig:
    """The settings an environment gets when its own block is empty: cdk.json ``defaults`` over the code's."""
    path = path or project_file()
    context = read_context(path)
    defaults = context.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise OperatorError(f"{path}: context.defaults is {defaults!r}; allowed: an object")
    from mlsettings.config import ConfigError, parse_environment

    try:
        return parse_environment("defaults", {}, defaults)
    except ConfigError as err:
        raise OperatorError(f"{path}: {err}") from err


def is_production(config: EnvironmentConfig) -> bool:
    """Whether an environment serves production users.

    ``production: true`` says so explicitly; so does serving the Production stage (the conventional name
    ``prod`` counts too)."""
    return config.production or config.name == "prod" or PRODUCTION_STAGE in config.serving.served_stages


def config_warnings(config: EnvironmentConfig) -> list[str]:
    """Settings that are valid but probably not meant; ``mlops config validate --strict`` fails on them.

    This is the one place `--strict` consults. If ``mlsettings.config`` grows its own warnings, it can expose
    them as ``mlsettings.config.config_warnings(config)`` and they are added here (see the hook below)."""
    warnings: list[str] = []
    page = config.monitoring.alarms.page
    # https_secret_names counts: it is how an on-call service's credentialed URL is subscribed.
    if is_production(config) and not (page.emails or page.https or page.https_secret_names):
        warnings.append(
            f"environments.{config.name}.monitoring.alarms.page has no subscribers (emails, https, "
            "https_secret_names are empty): production alarms would page nobody")
    import mlsettings.config as stacks_config

    stacks_warnings = getattr(stacks_config, "config_warnings", None)
    if callable(stacks_warnings):
        warnings.extend(str(item) for item in stacks_warnings(config))
    return warnings

