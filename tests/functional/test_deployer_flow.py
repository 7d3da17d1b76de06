"""The deployer's tasks against moto with a real trained model: create, blue/green Challenger entry,
auto-rollback, UpdateRollbackFailed, timeout, a wrong-answering model, duplicates and a busy endpoint.

Each test walks the state machine by hand (start → check → verify_and_record | record_failure) with the
same JSON state Step Functions would pass, and asserts what lands in SageMaker, the ledger, the registry,
SSM and S3.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from lambdas.deployer.settings import settings_from_environment
from mlplatform.registry.deployment_ledger import DeploymentLedger
from mlplatform.serving import deployment_flow
from mlplatform.serving.deployment_flow import DeployerClients
from mlplatform.serving.deployment_plan import DeploymentRefused, EndpointBusy, revert_config_name
from mlplatform.serving.deployment_settings import DeployerSettings
from mlsettings.vocabulary import PRODUCTION, STAGING
from testkit.serving_world import MODEL, model_prefixes_of_model
from tests.functional.serving_testkit import (  # noqa: F401  (fixtures)
    ARTIFACT_BUCKET,
    ENDPOINT,
    GROUP,
    KMS,
    LEDGER,
    REGION,
    ModelRuntime,
    SimulatedRollouts,
    TrainedModel,
    deployer_environment,
    promotion_event,
    record_results,
    register_trained_package,
    serving_aws,
    trained_model,
)

pytestmark = pytest.mark.slow  # the session's model training (~7 s) is paid by the first test
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _clients(runtime: ModelRuntime) -> DeployerClients:
    def client(name: str) -> Any:
        return boto3.client(name, region_name=REGION)

    return DeployerClients(sagemaker=client("sagemaker"), runtime=runtime, s3=client("s3"), ssm=client("ssm"),
                           events=client("events"), cloudwatch=client("cloudwatch"),
                           autoscaling=client("application-autoscaling"))


def _deploy(event: dict[str, Any], clients: DeployerClients, settings: DeployerSettings, *,
            now: datetime = NOW, deployment_id: str = "d1") -> dict[str, Any]:
    """start → check → verify_and_record | record_failure, as the state machine runs them."""
    state = deployment_flow.start_deployment(event, clients=clients, settings=settings, now=now,
                                             deployment_id=deployment_id)
    if state["action"] == "skip":
        return state
    state = deployment_flow.check_deployment(state, clients=clients, settings=settings, now=now)
    if state["status"]["decision"] == "succeeded":
        state = deployment_flow.verify_and_record(state, clients=clients, settings=settings)
    elif state["status"]["decision"] == "wait":
        return state
    else:
        state = deployment_flow.record_failure(state, clients=clients, settings=settings)
    record_results()  # the registry records what the deployer reported
    return state


def _ledger() -> DeploymentLedger:
    return DeploymentLedger(boto3.client("dynamodb", region_name=REGION), LEDGER, GROUP)


def _package(arn: str) -> dict[str, Any]:
    return dict(boto3.client("sagemaker", region_name=REGION).describe_model_package(ModelPackageName=arn))


def _ssm(key: str) -> str:
    name = f"/mlops/dev/models/{MODEL}/{key}"
    return str(boto3.client("ssm", region_name=REGION).get_parameter(Name=name)["Parameter"]["Value"])


def test_first_deployment_creates_the_endpoint_checks_it_and_records_everything(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    settings = settings_from_environment(deployer_environment(challenger=True))
    runtime = ModelRuntime()
    v1 = register_trained_package(trained_model, stage=STAGING)

    state = _deploy(promotion_event(v1, stage=STAGING), _clients(runtime), settings)

    assert state["operation"] == "create" and state["result"]["outcome"] == "deployed", state.get("result")
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    assert set(variants) == {"Champion", "Challenger"}
    assert {v["InitialVariantWeight"] for v in variants.values()} == {90.0, 10.0}
    assert variants["Champion"]["InitialInstanceCount"] == 2
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 100 and capture["KmsKeyId"] == KMS
    assert capture["CaptureContentTypeHeader"] == {"CsvContentTypes": ["text/csv"],
                                                   "JsonContentTypes": ["application/json"]}
    assert config["KmsKeyId"] == KMS  # ml.m5.large has no local instance storage
    model = sagemaker.describe_model(ModelName=variants["Champion"]["ModelName"])
    assert model["PrimaryContainer"] == {"ModelPackageName": v1}
    # both variants were checked with the golden payloads (4 cases each), through TargetVariant
    assert sorted({call["TargetVariant"] for call in runtime.calls}) == ["Challenger", "Champion"]
    assert len(runtime.calls) == 8
    # the gate's evidence, the registry status (approval untouched: real UpdateModelPackage semantics)
    record = _ledger().package(1)
    assert record is not None and record.staging_deployed and record.staging_health_check == "passed"
    package = _package(v1)
    assert package["ModelLifeCycle"]["Stage"] == STAGING and package["ModelLifeCycle"]["StageStatus"] == "Deployed"
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"]["quality_gate_passed"] == "true"
    # what each variant serves, the Champion's fallback model, autoscaling from the SLA
    assert _ssm("variant/Champion/model-package-arn") == v1 and _ssm("variant/Challenger/model-version") == "1"
    fallback = json.loads(boto3.client("s3", region_name=REGION).get_object(
        Bucket=ARTIFACT_BUCKET, Key=model_prefixes_of_model().fallback_model_key)["Body"].read())
    assert fallback["format"] == "mlops-fallback/1" and fallback["model_version"] == "1"
    autoscaling = boto3.client("application-autoscaling", region_name=REGION)
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert sorted((t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets) == [
        (f"endpoint/{ENDPOINT}/variant/Challenger", 2, 4), (f"endpoint/{ENDPOINT}/variant/Champion", 2, 4)]
    policies = {p["ResourceId"].rsplit("/", 1)[-1]: p for p in
                autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]}
    # 100 rps * 60 s * 90 % / 4 instances * 0.7 = 945 invocations per instance per minute
    assert policies["Champion"]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 945.0
    assert policies["Challenger"]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 105.0


def test_a_production_model_enters_as_challenger_through_a_canary_with_auto_rollback_alarms(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    settings = settings_from_environment(deployer_environment(challenger=True))
    clients = _clients(ModelRuntime())
    v1 = register_trained_package(trained_model, stage=PRODUCTION)
    v2 = register_trained_package(trained_model, stage=PRODUCTION)
    assert _deploy(promotion_event(v1, stage=PRODUCTION), clients, settings)["result"]["outcome"] == "deployed"
    fallback_before = boto3.client("s3", region_name=REGION).head_object(
        Bucket=ARTIFACT_BUCKET, Key=model_prefixes_of_model().fallback_model_key)["ETag"]
    runtime = ModelRuntime()
    clients = _clients(runtime)

    state = _deploy(promotion_event(v2, stage=PRODUCTION), clients, settings, deployment_id="d2")

    assert state["operation"] == "update" and state["result"]["outcome"] == "deployed"
    assert state["changed_variants"] == ["Challenger"] and state["champion_changed"] is False
    update = serving_aws.requests[-1]
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY", "WaitIntervalInSeconds": 600, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    assert policy["TerminationWaitInSeconds"] == 300
    assert [a["AlarmName"] for a in update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]] == [
        "mlops-dev-Champion-5xx", "mlops-dev-Champion-p99", "mlops-dev-Challenger-5xx", "mlops-dev-Challenger-p99"]
    assert update["RetainAllVariantProperties"] is True
    # DataCaptureConfig is "(Not currently supported.)" as an excluded property (API reference, VariantProperty).
    assert update["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]
    assert {call["TargetVariant"] for call in runtime.calls} == {"Challenger"}
    assert _ssm("variant/Champion/model-package-arn") == v1 and _ssm("variant/Challenger/model-package-arn") == v2
    assert boto3.client("s3", region_name=REGION).head_object(
        Bucket=ARTIFACT_BUCKET, Key=model_prefixes_of_model().fallback_model_key)["ETag"] == fallback_before
    assert [r.version for r in _ledger().deployments(PRODUCTION)] == [2, 1]


@pytest.mark.parametrize(("mode", "decision"), [("rollback", "rolled_back"), ("rollback_failed", "failed")])
def test_an_endpoint_that_rolls_back_or_fails_its_rollback_is_recorded_as_failed(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel, mode: str, decision: str) -> None:  # noqa: F811
    settings = settings_from_environment(deployer_environment(challenger=False))
    clients = _clients(ModelRuntime())
    v1 = register_trained_package(trained_model, stage=STAGING)
    v2 = register_trained_package(trained_model, stage=STAGING)
    assert _deploy(promotion_event(v1), clients, settings)["result"]["outcome"] == "deployed"
    serving_aws.mode = mode

    state = _deploy(promotion_event(v2), clients, settings, deployment_id="d2")

    assert state["status"]["decision"] == decision
    assert state["result"] == {**state["result"], "outcome": "failed", "recorded": True}
    latest = _ledger().deployments(STAGING)[0]
    assert (latest.version, latest.outcome, latest.health_check) == (2, "failed", "not_run")
    assert decision in latest.reason
    record = _ledger().package(2)
    assert record is not None and record.staging_deployed is False
    assert _package(v2)["ModelLifeCycle"]["StageStatus"] == "DeployFailed"
    assert _package(v1)["ModelLifeCycle"]["StageStatus"] == "Deployed"
    if mode == "rollback":  # what serves is still v1, and SSM says so
        assert _ssm("variant/Champion/model-package-arn") == v1


def test_a_deployment_still_updating_at_its_deadline_times_out(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    settings = settings_from_environment(deployer_environment(challenger=False))
    clients = _clients(ModelRuntime())
    v1 = register_trained_package(trained_model, stage=STAGING)
    v2 = register_trained_package(trained_model, stage=STAGING)
    _deploy(promotion_event(v1), clients, settings)
    serving_aws.mode = "in_progress"
    state = deployment_flow.start_deployment(promotion_event(v2), clients=clients, settings=settings, now=NOW,
                                             deployment_id="d2")
    waiting = deployment_flow.check_deployment(state, clients=clients, settings=settings,
                                               now=NOW + timedelta(minutes=5))
    assert waiting["status"]["decision"] == "wait"
    late = deployment_flow.check_deployment(state, clients=clients, settings=settings,
                                            now=datetime.fromisoformat(state["deadline"]) + timedelta(seconds=1))
    assert late["status"]["decision"] == "timed_out"
    failed = deployment_flow.record_failure(late, clients=clients, settings=settings)
    assert failed["result"]["outcome"] == "failed" and "timed_out" in failed["result"]["reason"]
    # a new promotion while the endpoint is still updating waits for it (Step Functions retries)
    with pytest.raises(EndpointBusy):
        deployment_flow.start_deployment(promotion_event(v2), clients=clients, settings=settings, now=NOW,
                                         deployment_id="d3")


def test_an_http_200_with_wrong_answers_fails_the_deployment_and_reverts_the_endpoint(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    settings = settings_from_environment(deployer_environment(challenger=False))
    v1 = register_trained_package(trained_model, stage=STAGING)
    v2 = register_trained_package(trained_model, stage=STAGING)
    first = _deploy(promotion_event(v1), _clients(ModelRuntime()), settings)

    state = _deploy(promotion_event(v2), _clients(ModelRuntime(wrong_answers={"Champion"})), settings,
                    deployment_id="d2")

    result = state["result"]
    assert result["outcome"] == "failed" and result["reverted_to"] == first["endpoint_config_name"]
    assert "differs from the golden" in result["reason"]
    # UpdateEndpoint needs a new EndpointConfig (API reference): the revert runs on a copy of the previous one.
    reverted = serving_aws.requests[-1]["EndpointConfigName"]
    assert reverted == revert_config_name(state["endpoint_config_name"]) != first["endpoint_config_name"]
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    copy, original = (sagemaker.describe_endpoint_config(EndpointConfigName=name)
                      for name in (reverted, first["endpoint_config_name"]))
    assert copy["ProductionVariants"] == original["ProductionVariants"]
    assert copy["DataCaptureConfig"] == original["DataCaptureConfig"]
    latest = _ledger().deployments(STAGING)[0]
    assert (latest.version, latest.outcome, latest.health_check) == (2, "failed", "failed")
    assert _package(v2)["ModelLifeCycle"]["StageStatus"] == "DeployFailed"
    assert _ssm("variant/Champion/model-package-arn") == v1


def test_a_model_error_from_the_endpoint_fails_the_health_check(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    settings = settings_from_environment(deployer_environment(challenger=False))
    v1 = register_trained_package(trained_model, stage=STAGING)
    state = _deploy(promotion_event(v1), _clients(ModelRuntime(errors={"Champion"})), settings)
    assert state["result"]["outcome"] == "failed" and "ModelError" in state["result"]["reason"]
    assert state["result"]["reverted_to"] is None  # a first deployment has nothing to go back to


def test_golden_payloads_that_do_not_match_the_model_fail_the_deployment(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    golden = json.loads(trained_model.golden)
    golden["cases"][0]["expected"] = [0.5 for _ in golden["cases"][0]["expected"]]
    settings = settings_from_environment(deployer_environment(challenger=False))
    v1 = register_trained_package(trained_model, stage=STAGING, golden=json.dumps(golden).encode())
    state = _deploy(promotion_event(v1), _clients(ModelRuntime()), settings)
    assert state["result"]["outcome"] == "failed"
    assert golden["cases"][0]["name"] in state["result"]["reason"]


def test_duplicate_promotions_are_skipped_and_a_rollback_takes_every_variant(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    settings = settings_from_environment(deployer_environment(challenger=True))
    clients = _clients(ModelRuntime())
    v1 = register_trained_package(trained_model, stage=PRODUCTION)
    v2 = register_trained_package(trained_model, stage=PRODUCTION)
    _deploy(promotion_event(v1, stage=PRODUCTION), clients, settings)
    _deploy(promotion_event(v2, stage=PRODUCTION), clients, settings, deployment_id="d2")
    updates = len(serving_aws.requests)

    duplicate = _deploy(promotion_event(v2, stage=PRODUCTION), clients, settings, deployment_id="d3")
    assert duplicate["action"] == "skip" and "duplicate" in duplicate["skip_reason"]
    assert len(serving_aws.requests) == updates

    rollback = _deploy(promotion_event(v1, stage=PRODUCTION, reason="rollback"), clients, settings,
                       deployment_id="d4")
    assert rollback["result"]["outcome"] == "deployed" and rollback["changed_variants"] == ["Challenger", "Champion"]
    assert _ssm("variant/Challenger/model-package-arn") == v1
    assert [r.version for r in _ledger().deployments(PRODUCTION)] == [1, 2, 1]


def test_challenger_swap_exchanges_the_roles_and_refuses_a_package_that_is_not_the_challenger(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    settings = settings_from_environment(deployer_environment(challenger=True))
    clients = _clients(ModelRuntime())
    v1 = register_trained_package(trained_model, stage=PRODUCTION)
    v2 = register_trained_package(trained_model, stage=PRODUCTION)
    _deploy(promotion_event(v1, stage=PRODUCTION), clients, settings)
    with pytest.raises(DeploymentRefused, match="not the Challenger"):
        deployment_flow.start_deployment(promotion_event(v2, stage=PRODUCTION, reason="challenger_swap"),
                                         clients=clients, settings=settings, now=NOW, deployment_id="x")
    _deploy(promotion_event(v2, stage=PRODUCTION), clients, settings, deployment_id="d2")

    swap = _deploy(promotion_event(v2, stage=PRODUCTION, reason="challenger_swap"), clients, settings,
                   deployment_id="d3")

    assert swap["result"]["outcome"] == "deployed" and swap["champion_changed"] is True
    assert _ssm("variant/Champion/model-package-arn") == v2 and _ssm("variant/Challenger/model-package-arn") == v1
    fallback = json.loads(boto3.client("s3", region_name=REGION).get_object(
        Bucket=ARTIFACT_BUCKET, Key=model_prefixes_of_model().fallback_model_key)["Body"].read())
    assert fallback["model_version"] == "2"
