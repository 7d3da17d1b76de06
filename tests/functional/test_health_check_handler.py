"""The scheduled health check: per-variant verdicts from golden payloads and the HealthCheckPassed metric.

A real model serves (``ModelRuntime``); faults are injected per variant: an HTTP 200 with wrong answers and
a ModelError both publish 0 for that variant and 1 for the healthy one.
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from lambdas.deployer.settings import settings_from_environment
from mlplatform.serving import deployment_flow
from mlplatform.serving.deployment_flow import DeployerClients
from testkit.moto_gaps import patch_invoke_endpoint
from tests.functional.promotion_testkit import FakeLambdaContext
from tests.functional.serving_testkit import (  # noqa: F401  (fixtures)
    ENDPOINT,
    REGION,
    ModelRuntime,
    SimulatedRollouts,
    TrainedModel,
    deployer_environment,
    promotion_event,
    register_trained_package,
    serving_aws,
    trained_model,
)

pytestmark = pytest.mark.slow


def _deploy_both_variants(trained: TrainedModel) -> None:
    settings = settings_from_environment(deployer_environment(challenger=True))
    clients = DeployerClients(**{name: boto3.client(service, region_name=REGION) for name, service in {
        "sagemaker": "sagemaker", "s3": "s3", "ssm": "ssm", "events": "events", "cloudwatch": "cloudwatch",
        "autoscaling": "application-autoscaling"}.items()}, runtime=ModelRuntime())
    now = datetime(2026, 1, 5, tzinfo=UTC)
    state = deployment_flow.start_deployment(promotion_event(register_trained_package(trained, stage="Staging")),
                                             clients=clients, settings=settings, now=now, deployment_id="d1")
    state = deployment_flow.check_deployment(state, clients=clients, settings=settings, now=now)
    assert deployment_flow.verify_and_record(state, clients=clients, settings=settings)["result"]["outcome"] == \
        "deployed"


def _handler(monkeypatch: pytest.MonkeyPatch, runtime: ModelRuntime) -> Any:
    from mlsettings.functions.contracts import HealthCheckEnvironment

    for name, value in HealthCheckEnvironment(endpoint_name=ENDPOINT, invoke_timeout_seconds=10).to_env().items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("lambdas.health_check.handler", None)
    module = importlib.import_module("lambdas.health_check.handler")
    # The function makes its own clients, as deployed; InvokeEndpoint reaches the model through botocore
    # (the demo's request hook), so the call is validated, recorded and evaluated like any other.
    patch_invoke_endpoint(monkeypatch, runtime)
    return module


def _published(output: str) -> dict[str, float]:
    """Variant → HealthCheckPassed from the EMF lines the function printed."""
    values: dict[str, float] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        metric = document["_aws"]["CloudWatchMetrics"][0]
        assert metric["Namespace"] == "MLOps"
        assert sorted(metric["Dimensions"][0]) == ["Endpoint", "Variant"]
        assert document["Endpoint"] == ENDPOINT
        values[document["Variant"]] = document["HealthCheckPassed"][0]
    return values


@pytest.mark.parametrize("fault", ["wrong_answers", "errors"])
def test_each_variant_is_judged_on_its_own_and_a_wrong_answer_is_a_failure(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str], fault: str) -> None:
    _deploy_both_variants(trained_model)
    capsys.readouterr()
    runtime = ModelRuntime(**{fault: {"Challenger"}})

    result = _handler(monkeypatch, runtime).handler({"source": "aws.events"}, FakeLambdaContext())

    assert _published(capsys.readouterr().out) == {"Champion": 1.0, "Challenger": 0.0}
    assert result["healthy"] is False
    verdicts = {v["variant"]: v for v in result["variants"]}
    assert verdicts["Champion"]["passed"] and not verdicts["Challenger"]["passed"]
    expected = "differs from the golden" if fault == "wrong_answers" else "ModelError"
    assert expected in verdicts["Challenger"]["summary"]
    assert {call["TargetVariant"] for call in runtime.calls} == {"Champion", "Challenger"}


def test_a_healthy_endpoint_publishes_one_per_variant_and_reads_golden_payloads_once(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    _deploy_both_variants(trained_model)
    module = _handler(monkeypatch, ModelRuntime())
    capsys.readouterr()
    assert module.handler({}, FakeLambdaContext())["healthy"] is True
    assert _published(capsys.readouterr().out) == {"Champion": 1.0, "Challenger": 1.0}
    assert len(module._GOLDEN_CACHE) == 1  # both variants serve one package; warm runs skip S3


@pytest.mark.parametrize(("status", "published"), [("Updating", {}), ("Failed", {"Champion": 0.0,
                                                                                 "Challenger": 0.0})])
def test_rollouts_are_skipped_and_a_failed_endpoint_fails_every_variant(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str], status: str, published: dict[str, float]) -> None:
    _deploy_both_variants(trained_model)
    serving_aws.set_status(status, "capacity error" if status == "Failed" else None)
    runtime = ModelRuntime()
    capsys.readouterr()
    result = _handler(monkeypatch, runtime).handler({}, FakeLambdaContext())
    assert _published(capsys.readouterr().out) == published
    assert runtime.calls == []
    assert result["healthy"] is False


def test_no_endpoint_yet_is_skipped_without_metrics(
        serving_aws: SimulatedRollouts, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    result = _handler(monkeypatch, ModelRuntime()).handler({}, FakeLambdaContext())
    assert result["skipped_reason"].startswith("endpoint does not exist")
    assert _published(capsys.readouterr().out) == {}
