"""Every function's deployed environment satisfies its handler: the module imports with exactly the
variables the stack sets (each handler parses and checks its environment once, at import), and the
handler the template names exists. Catches a renamed variable or handler on either side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlsettings.vocabulary import Service
from testkit.model_sample import sampled_project_context
from tests.infra.conftest import SynthesizedApp

REPO = Path(__file__).resolve().parents[2]
STACKS = ("registry", "inference_api", "serving", "monitoring")


def _placeholder(value: Any) -> str:
    """A deploy-time value as a plausible string: tokens become 'placeholder', joins keep their literals, the
    account id is one (a 12-digit id: the gate's STAGE_SERVERS checks that shape)."""
    if isinstance(value, str):
        return value
    if value == {"Ref": "AWS::AccountId"}:
        return "123456789012"
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(_placeholder(p) for p in parts)
    return "placeholder"


def _functions(synthesized: SynthesizedApp, env: str) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for stack in STACKS:
        for function in synthesized.template(env, stack).find_resources("AWS::Lambda::Function").values():
            props = function["Properties"]
            variables = props.get("Environment", {}).get("Variables", {})
            found[props["Handler"]] = {k: _placeholder(v) for k, v in variables.items()}
    return found


PARTIALS_HANDLER = f"lambdas.{Service.DRIFT_PARTIALS}.handler.handler"
DRIFT_MONITOR = "lambdas.drift_monitor.handler.lambda_handler"
ENGINE_VARIABLES = {"DRIFT_ENGINE"}
"""What the drift engine (monitoring.drift.engine, prod: partials) adds to the drift monitor's environment (the
contract writes no variable at its default: PARTIALS_PREFIX is the reader's default too)."""


def test_every_environment_deploys_the_same_functions_with_the_same_variables(synthesized: SynthesizedApp) -> None:
    shapes = {env: {h: sorted(v) for h, v in _functions(synthesized, env).items()}
              for env in ("dev", "staging", "prod")}
    gate = "lambdas.promotion_gate.handler.handler"  # the registry environment's only
    assert gate in shapes["dev"] and gate not in shapes["staging"]
    # the partials engine (prod in cdk.json) adds its function and the drift monitor's engine variable
    prod = {h: [k for k in v if h != DRIFT_MONITOR or k not in ENGINE_VARIABLES]
            for h, v in shapes["prod"].items() if h != PARTIALS_HANDLER}
    assert PARTIALS_HANDLER in shapes["prod"] and PARTIALS_HANDLER not in shapes["staging"]
    assert set(shapes["prod"][DRIFT_MONITOR]) >= ENGINE_VARIABLES
    assert {h: v for h, v in shapes["dev"].items() if h != gate} == shapes["staging"] == prod
    assert len(shapes["dev"]) == 9


@pytest.mark.slow
def test_each_handler_imports_with_its_deployed_environment(synthesized: SynthesizedApp) -> None:
    failures = []
    handlers = {**_functions(synthesized, "dev"), PARTIALS_HANDLER: _functions(synthesized, "prod")[PARTIALS_HANDLER]}
    for handler, variables in handlers.items():
        module, _, attribute = handler.rpartition(".")
        code = (f"import importlib, json; m = importlib.import_module({module!r}); "
                f"assert callable(getattr(m, {attribute!r})), 'no handler {attribute}'")
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "AWS_"))}
        environment |= {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "LAMBDA_TASK_ROOT": str(REPO), **variables}
        completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True,
                                   text=True, check=False, timeout=120)
        if completed.returncode != 0:
            failures.append(f"{handler}: {completed.stderr.strip().splitlines()[-1:]}")
    assert failures == [], json.dumps(failures, indent=2)


def _local_imports(module: str) -> set[str]:
    """The project modules a module imports, transitively (static: import statements anywhere in the file)."""
    import ast

    seen: set[str] = set()
    pending = [module]
    roots = ("lambdas", "mlplatform", "mlcore", "mlsettings", "mlops", "pipelines")
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = REPO / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = REPO / name.replace(".", "/") / "__init__.py"
        if not path.exists():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            pending += [t for t in targets if t.split(".")[0] in roots]
    return seen


def _handler(function: Any) -> str:
    """The handler a MlopsFunction's template names."""
    return str(function.function.node.default_child.handler)


def test_every_bundle_holds_what_its_handler_imports(synthesized: SynthesizedApp) -> None:
    from stacks.constructs.lambda_function import MlopsFunction

    stage = synthesized.stages["dev"]
    functions = [n for n in stage.node.find_all() if isinstance(n, MlopsFunction)]
    by_handler: dict[str, list[MlopsFunction]] = {}
    for function in functions:
        by_handler.setdefault(_handler(function), []).append(function)
    # every handler the environment deploys (the shared gate once, each model's function once per model)
    assert set(by_handler) == set(_functions(synthesized, "dev"))
    gate = "lambdas.promotion_gate.handler.handler"
    assert {h: len(f) for h, f in by_handler.items()} == {h: 1 if h == gate else len(stage.models) for h in by_handler}
    missing = {}
    for function in functions:
        bundled = {str(path) for path in function.bundled_files}
        imported = _local_imports(f"lambdas.{function.source}.handler")
        outside = sorted(m for m in imported if not {m.replace(".", "/") + ".py", m.replace(".", "/") + "/__init__.py"}
                         & bundled)
        if outside:
            missing[function.node.path] = outside
    assert missing == {}


def test_every_quality_metric_the_configuration_accepts_reaches_the_drift_monitor(
        synthesized: SynthesizedApp) -> None:
    """training.quality_gate.metric goes to the drift monitor (QUALITY_METRIC): every value the configuration
    accepts must be one its settings parser accepts, read from the synthesized environment with that value
    (precision was valid config and failed every cold start)."""
    import dataclasses

    from lambdas.drift_monitor.settings import settings_from_environment
    from mlsettings.config import QualityGateSettings

    check = next(f for f in dataclasses.fields(QualityGateSettings) if f.name == "metric").metadata["check"]
    allowed = check.allowed
    assert "precision" in allowed and all(check(value) is None for value in allowed)
    (variables,) = [v for h, v in _functions(synthesized, "dev").items() if h.startswith("lambdas.drift_monitor")]
    assert variables["QUALITY_METRIC"] == "auc"
    for metric in allowed:
        assert settings_from_environment({**variables, "QUALITY_METRIC": metric}).quality_metric == metric


# ------------------------------------------------------------------------------- one contract per function
def _contract_of(handler: str) -> Any:
    from mlsettings.functions.contracts import CONTRACTS

    service = handler.split(".")[1]
    (contract,) = [c for c in CONTRACTS if service == c.SERVICE]
    return contract


@pytest.mark.parametrize("topology", __import__("tests.infra.conftest", fromlist=["TOPOLOGIES"]).TOPOLOGIES)
def test_every_deployed_environment_is_its_functions_contract(synthesized: SynthesizedApp, three_accounts: Any,
                                                              topology: str) -> None:
    """GIVEN each function of each environment in both topologies WHEN its synthesized environment is read with its
    contract THEN it parses, and every value the configuration decides is the one the contract computes from the
    configuration (resource names are tokens in the template and placeholders here)."""
    from mlsettings.config import load_environments
    from tests.infra.conftest import IN_ITS_ACCOUNT, three_account_context, topology_stages

    stage = topology_stages(synthesized, three_accounts)[topology]
    own_account = topology.endswith(IN_ITS_ACCOUNT)
    configs = load_environments(three_account_context() if own_account else sampled_project_context())
    env = topology.removesuffix(IN_ITS_ACCOUNT)
    config = configs[env]
    # a model's function is configured from the model's view (config.for_model), a shared one from the environment
    built = (three_accounts if own_account else synthesized).stages[env]
    views = {stack.artifact_id: config.for_model(name) for name, stack in built.models.items()}
    functions = list(stage.resources("AWS::Lambda::Function"))  # type: ignore[attr-defined]
    assert functions
    assert {f.stack for f in functions} >= set(views)  # every model's functions are checked
    for function in functions:
        contract = _contract_of(function.properties["Handler"])
        raw = function.properties.get("Environment", {}).get("Variables", {})
        written = {k: str(v) for k, v in stage.resolve(function.stack, raw).items()}  # type: ignore[attr-defined]
        read = contract.from_env(written)
        literal = {k for k, v in raw.items() if isinstance(v, str)}
        expected = _for_config(contract, views.get(function.stack, config), configs).to_env()
        assert set(written) == set(expected), (function.properties["Handler"], set(written) ^ set(expected))
        assert {k: written[k] for k in literal} == {k: expected[k] for k in literal}, function.properties["Handler"]
        assert read.service == contract.SERVICE


PLACEHOLDER = "placeholder-name"


def _for_config(contract: Any, config: Any, configs: Any) -> Any:
    """The contract as its stack builds it from ``config`` (of ``configs``), with placeholders for deployed
    resources' names."""
    from mlsettings.functions import contracts as c

    arn = "arn:aws:iam::123456789012:role/placeholder"
    if contract is c.GateEnvironment:
        return contract.for_config(config, {**configs, config.name: config}, ledger_table=PLACEHOLDER,
                                   idempotency_table=PLACEHOLDER, promotion_topic_arn=arn,
                                   event_bus_name="default", default_account="123456789012")
    if contract is c.DeployerEnvironment:
        return contract.for_config(config, model_execution_role_arn=arn, artifact_bucket=PLACEHOLDER,
                                   capture_bucket=PLACEHOLDER, kms_key_arn=arn)
    if contract is c.HealthCheckEnvironment:
        return contract.for_config(config)
    if contract is c.BatchScoringEnvironment:
        return contract.for_config(config, capture_bucket=PLACEHOLDER, kms_key_arn=arn)
    if contract is c.DriftMonitorEnvironment:
        job = {"role_arn": arn, "image_uri": "placeholder:1", "code_uri": "s3://b/k.gz", "kms_key_arn": arn}
        return contract.for_config(config, capture_bucket=PLACEHOLDER, report_bucket=PLACEHOLDER,
                                   processing=job if config.monitoring.drift.engine == "processing" else None)
    if contract is c.DriftPartialsEnvironment:
        return contract.for_config(config, capture_bucket=PLACEHOLDER, report_bucket=PLACEHOLDER)
    return contract.for_config(config, breaker_table_name=PLACEHOLDER, response_cache_table_name=PLACEHOLDER,
                               prediction_log_stream_name=PLACEHOLDER, fallback_model_bucket=PLACEHOLDER)


def _finite_settings(cls: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
    """(key path, every allowed value) of each configuration setting with a finite set of values: Literal types,
    one-of checks, booleans — read from the configuration's own model."""
    import dataclasses
    import typing

    from mlsettings.config.parsing import json_key

    found: list[tuple[tuple[str, ...], tuple[Any, ...]]] = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        tp, path = hints[field.name], (*prefix, json_key(field.name))
        check = field.metadata.get("check")
        if dataclasses.is_dataclass(tp):
            found += _finite_settings(tp, path)
        elif typing.get_origin(tp) is typing.Literal:
            found.append((path, typing.get_args(tp)))
        elif getattr(check, "allowed", None):
            found.append((path, tuple(check.allowed)))
        elif tp is bool:
            found.append((path, (True, False)))
    return found


@pytest.mark.slow
def test_every_value_the_configuration_allows_reaches_every_function_it_configures() -> None:
    """GIVEN every allowed value of every finite setting, in each environment WHEN the configuration accepts it
    THEN every function's contract built from it by its stack's code is read back by the function's own settings
    parser (a value the configuration accepts and a function refuses would fail every cold start)."""
    import copy

    from lambdas.batch_scoring.settings import settings_from_environment as batch
    from lambdas.deployer.settings import settings_from_environment as deployer
    from lambdas.drift_monitor.settings import settings_from_environment as drift
    from lambdas.inference.settings import InferenceSettings
    from lambdas.promotion_gate.settings import settings_from_environment as gate
    from mlsettings.config import ConfigError, EnvironmentConfig, load_environments
    from mlsettings.functions import contracts as c
    from mlsettings.problem_types import ALL_GATE_METRICS

    parsers = {c.GateEnvironment: gate, c.DeployerEnvironment: deployer, c.BatchScoringEnvironment: batch,
               c.DriftMonitorEnvironment: drift, c.HealthCheckEnvironment: c.HealthCheckEnvironment.from_env,
               c.InferenceEnvironment: lambda env: InferenceSettings.from_environ(env, task_root=REPO)}
    settings = _finite_settings(EnvironmentConfig)
    assert len(settings) >= 13 and dict(settings)[("training", "quality_gate", "metric")] == ALL_GATE_METRICS
    checked = refused = 0
    for path, values in settings:
        for value in values:
            context = copy.deepcopy(sampled_project_context())
            for env in ("dev", "staging", "prod"):
                block = context["environments"][env]
                for key in path[:-1]:
                    block = block.setdefault(key, {})
                block[path[-1]] = value
            try:
                configs = load_environments(context)
            except ConfigError:
                refused += 1  # a combination the configuration itself refuses never reaches a function
                continue
            for config in configs.values():
                for contract, parse in parsers.items():
                    if contract is c.GateEnvironment:  # the environment's shared function
                        if config.is_registry:
                            parse(_for_config(contract, config, configs).to_env())
                            checked += 1
                        continue
                    for view in config.models:  # each model's function, from the model's view
                        parse(_for_config(contract, view, configs).to_env())
                        checked += 1
    assert checked > 400 and refused < checked


def test_a_contract_refuses_to_write_an_empty_variable_it_could_not_read_back() -> None:
    """from_env reads an empty variable as a missing one; so the writing side refuses an empty required value
    (a stack that passed one would deploy a function that fails at import)."""
    from mlsettings.functions.base import EnvironmentSettingError
    from mlsettings.functions.contracts import BatchScoringEnvironment

    good = {"endpoint_name": "mlops-dev-endpoint", "capture_bucket": "capture", "batch_instance_type": "ml.m5.xlarge",
            "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/k", "batch_input_uri": "s3://d/in/",
            "batch_instance_count": 1}
    assert BatchScoringEnvironment.from_env(BatchScoringEnvironment(**good).to_env()) == BatchScoringEnvironment(**good)
    with pytest.raises(EnvironmentSettingError, match="KMS_KEY_ARN is empty"):
        BatchScoringEnvironment(**{**good, "kms_key_arn": " "})
