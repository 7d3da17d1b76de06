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


def test_every_environment_deploys_the_same_functions_with_the_same_variables(synthesized: SynthesizedApp) -> None:
    shapes = {env: {h: sorted(v) for h, v in _functions(synthesized, env).items()}
              for env in ("dev", "staging", "prod")}
    gate = "lambdas.promotion_gate.handler.handler"  # the registry environment's only
    assert gate in shapes["dev"] and gate not in shapes["staging"]
    assert {h: v for h, v in shapes["dev"].items() if h != gate} == shapes["staging"] == shapes["prod"]
    assert len(shapes["dev"]) == 9


@pytest.mark.slow
def test_each_handler_imports_with_its_deployed_environment(synthesized: SynthesizedApp) -> None:
    failures = []
    for handler, variables in _functions(synthesized, "dev").items():
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


def test_every_bundle_holds_what_its_handler_imports(synthesized: SynthesizedApp) -> None:
    from stacks.constructs.lambda_function import MlopsFunction

    functions = [n for n in synthesized.stages["dev"].node.find_all() if isinstance(n, MlopsFunction)]
    assert len(functions) == 9
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
