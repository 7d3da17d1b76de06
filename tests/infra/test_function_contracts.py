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

from mlsettings.drift_partials import ENV_DRIFT_ENGINE, ENV_PARTIALS_PREFIX, PARTIALS_FUNCTION
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


PARTIALS_HANDLER = f"lambdas.{PARTIALS_FUNCTION}.handler.handler"
DRIFT_MONITOR = "lambdas.drift_monitor.handler.lambda_handler"
ENGINE_VARIABLES = {ENV_DRIFT_ENGINE, ENV_PARTIALS_PREFIX}
"""What the drift engine (monitoring.drift.engine, prod: partials) adds to the drift monitor's environment."""


def test_every_environment_deploys_the_same_functions_with_the_same_variables(synthesized: SynthesizedApp) -> None:
    shapes = {env: {h: sorted(v) for h, v in _functions(synthesized, env).items()}
              for env in ("dev", "staging", "prod")}
    gate = "lambdas.promotion_gate.handler.handler"  # the registry environment's only
    assert gate in shapes["dev"] and gate not in shapes["staging"]
    # the partials engine (prod in cdk.json) adds its function and two of the drift monitor's variables
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
    roots = ("lambdas", "mlplatform", "mlcore", "mlops", "pipelines")
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
