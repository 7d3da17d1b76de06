"""The deployer's paths that only a handler entry point reaches in production, driven through those entry
points (``lambdas.deployer.handler.start_deployment`` … as the state machine's tasks call them), with the
function's own clients: a Failed endpoint is deleted so the retry can create it, and a variant whose instance
type changes has its scalable target deregistered first. tests/infra/test_who_may_call.py evaluates the calls
these make against the deployer's synthesized role.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from mlplatform.serving.deployment_plan import EndpointBusy
from testkit.moto_gaps import patch_invoke_endpoint
from tests.functional.promotion_testkit import FakeLambdaContext
from tests.functional.serving_testkit import (  # noqa: F401  (fixtures)
    ACCOUNT,
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


def _entry_points(monkeypatch: pytest.MonkeyPatch, **serving: Any) -> Any:
    """The deployer's handler module, imported fresh under the function's environment (as a cold start)."""
    for name, value in deployer_environment(**serving).items():
        monkeypatch.setenv(name, value)
    patch_invoke_endpoint(monkeypatch, ModelRuntime())
    sys.modules.pop("lambdas.deployer.handler", None)
    sys.modules.pop("lambdas.deployer.settings", None)
    return importlib.import_module("lambdas.deployer.handler")


def _run(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    """start → check → verify_and_record, each state passed on as JSON, as Step Functions does."""
    state = handler.start_deployment(event, FakeLambdaContext())
    if state["action"] == "skip":
        return state
    state = handler.check_deployment(json.loads(json.dumps(state)), FakeLambdaContext())
    assert state["status"]["decision"] == "succeeded", state["status"]
    return handler.verify_and_record(json.loads(json.dumps(state)), FakeLambdaContext())  # type: ignore[no-any-return]


def test_a_failed_endpoint_is_deleted_so_the_retry_creates_it(
        monkeypatch: pytest.MonkeyPatch, serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    from moto.sagemaker.models import sagemaker_backends

    handler = _entry_points(monkeypatch, challenger=False)
    v1 = register_trained_package(trained_model, stage="Staging")
    assert _run(handler, promotion_event(v1))["result"]["outcome"] == "deployed"
    endpoint = sagemaker_backends[ACCOUNT][REGION].endpoints[ENDPOINT]
    endpoint.endpoint_status, endpoint.failure_reason = "Failed", "capacity"

    v2 = register_trained_package(trained_model, stage="Staging")
    with pytest.raises(EndpointBusy, match="was Failed"):
        handler.start_deployment(promotion_event(v2), FakeLambdaContext())

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    assert not sagemaker.list_endpoints(NameContains=ENDPOINT)["Endpoints"]
    # the state machine's retry: the endpoint is created anew and serves v2
    assert _run(handler, promotion_event(v2))["result"]["outcome"] == "deployed"
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"


def test_a_new_instance_type_deregisters_the_variants_scalable_target_first(
        monkeypatch: pytest.MonkeyPatch, serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    autoscaling = boto3.client("application-autoscaling", region_name=REGION)
    handler = _entry_points(monkeypatch, challenger=False, instance_type="ml.m5.large")
    v1 = register_trained_package(trained_model, stage="Staging")
    assert _run(handler, promotion_event(v1))["result"]["outcome"] == "deployed"
    resource = f"endpoint/{ENDPOINT}/variant/Champion"
    before = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    assert [t["MinCapacity"] for t in before["ScalableTargets"]] == [2]
    deregistered: list[dict[str, Any]] = []
    original = BaseClient._make_api_call

    handler = _entry_points(monkeypatch, challenger=False, instance_type="ml.c5.xlarge")

    def spy(client: Any, operation: str, params: Any) -> Any:
        if operation == "DeregisterScalableTarget":
            deregistered.append(dict(params))
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)  # every client, the function's own included
    v2 = register_trained_package(trained_model, stage="Staging")
    assert _run(handler, promotion_event(v2))["result"]["outcome"] == "deployed"

    assert [d["ResourceId"] for d in deregistered] == [resource]
    config = boto3.client("sagemaker", region_name=REGION).describe_endpoint_config(
        EndpointConfigName=boto3.client("sagemaker", region_name=REGION).describe_endpoint(
            EndpointName=ENDPOINT)["EndpointConfigName"])
    assert [v["InstanceType"] for v in config["ProductionVariants"]] == ["ml.c5.xlarge"]
    after = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    assert [t["MinCapacity"] for t in after["ScalableTargets"]] == [2]  # registered again for the new type


def test_an_endpoint_config_not_yet_readable_is_retried_not_launched(
        monkeypatch: pytest.MonkeyPatch, serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    """API reference, CreateEndpoint: a just-created config may not be readable yet ("call DescribeEndpointConfig
    before calling CreateEndpoint"). GIVEN DescribeEndpointConfig answers SageMaker's not-found error once WHEN the
    start task runs THEN it raises EndpointBusy (the state machine's retry) without calling CreateEndpoint, and the
    retry deploys."""
    from botocore.exceptions import ClientError

    handler = _entry_points(monkeypatch, challenger=False)
    v1 = register_trained_package(trained_model, stage="Staging")
    calls: list[str] = []
    original = BaseClient._make_api_call
    hidden = {"left": 1}

    def eventually_consistent(client: Any, operation: str, params: Any) -> Any:
        calls.append(operation)
        if operation == "DescribeEndpointConfig" and hidden["left"]:
            hidden["left"] -= 1
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "Could not find endpoint "
                                         f"configuration \"{params['EndpointConfigName']}\"."}}, operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", eventually_consistent)
    with pytest.raises(EndpointBusy, match="not readable yet"):
        handler.start_deployment(promotion_event(v1), FakeLambdaContext())
    assert "CreateEndpointConfig" in calls and "CreateEndpoint" not in calls
    assert _run(handler, promotion_event(v1))["result"]["outcome"] == "deployed"
