"""`mlops promote-challenger`, `shift-weights` and `ab-report` against moto with a deployed A/B endpoint."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest

from lambdas.deployer.settings import settings_from_environment
from mlcore.drift.capture import build_capture_record
from mlops import cli, serving_ops
from mlops.resources import parameter_name
from mlplatform.serving import deployment_flow
from mlplatform.serving.deployment_flow import DeployerClients
from mlsettings.vocabulary import CAPTURE_PREFIX, GROUND_TRUTH_PREFIX, Published
from testkit.serving_world import MODEL
from tests.functional.promotion_testkit import drain
from tests.functional.serving_testkit import (  # noqa: F401  (fixtures)
    CAPTURE_BUCKET,
    ENDPOINT,
    GROUP,
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

GROUND_TRUTH_URI = f"s3://{CAPTURE_BUCKET}/{GROUND_TRUTH_PREFIX}/{MODEL}/"


def _clients() -> DeployerClients:
    return DeployerClients(**{name: boto3.client(service, region_name=REGION) for name, service in {
        "sagemaker": "sagemaker", "s3": "s3", "ssm": "ssm", "events": "events", "cloudwatch": "cloudwatch",
        "autoscaling": "application-autoscaling"}.items()}, runtime=ModelRuntime())


def _deploy(event: dict[str, Any]) -> dict[str, Any]:
    settings = settings_from_environment(deployer_environment(challenger=True))
    clients, now = _clients(), datetime.now(UTC)
    state = deployment_flow.start_deployment(event, clients=clients, settings=settings, now=now,
                                             deployment_id=uuid.uuid4().hex[:12])
    state = deployment_flow.check_deployment(state, clients=clients, settings=settings, now=now)
    return deployment_flow.verify_and_record(state, clients=clients, settings=settings)


@pytest.fixture
def ab_endpoint(serving_aws: SimulatedRollouts, trained_model: TrainedModel,  # noqa: F811
                monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    """v1 Champion, v2 Challenger; the CLI's SSM names; an observer queue on the promotion bus."""
    v1 = register_trained_package(trained_model, stage="Production")
    v2 = register_trained_package(trained_model, stage="Production")
    assert _deploy(promotion_event(v1, stage="Production"))["result"]["outcome"] == "deployed"
    assert _deploy(promotion_event(v2, stage="Production"))["result"]["outcome"] == "deployed"
    ssm, events, sqs = (boto3.client(s, region_name=REGION) for s in ("ssm", "events", "sqs"))
    ssm.put_parameter(Name=parameter_name("dev", Published.EVENT_BUS_NAME), Value="mlops", Type="String")
    for key, value in {Published.ENDPOINT_NAME: ENDPOINT, Published.MODEL_PACKAGE_GROUP: GROUP,
                       Published.CAPTURE_DESTINATION_URI: f"s3://{CAPTURE_BUCKET}/{CAPTURE_PREFIX}",
                       Published.GROUND_TRUTH_URI: GROUND_TRUTH_URI}.items():
        ssm.put_parameter(Name=parameter_name("dev", Published.for_model(MODEL, key)), Value=value, Type="String")
    events.create_event_bus(Name="mlops")
    queue = sqs.create_queue(QueueName="promotions")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="p", EventBusName="mlops", EventPattern=json.dumps({"source": ["mlops.promotion"]}))
    events.put_targets(Rule="p", EventBusName="mlops", Targets=[{"Id": "q", "Arn": arn}])
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("mlops.commands.serving_cmds",))
    return v1, v2, queue


def test_promote_challenger_swaps_roles_through_the_deployer(
        ab_endpoint: tuple[str, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    v1, v2, queue = ab_endpoint
    assert cli.main(["promote-challenger", "--env", "dev", "--model", MODEL, "--region", REGION, "--json"]) == 0
    requested = json.loads(capsys.readouterr().out)
    assert (requested["champion_version"], requested["challenger_version"]) == (1, 2)
    [event] = drain(boto3.client("sqs", region_name=REGION), queue)
    assert event["detail"]["reason"] == "challenger_swap" and event["detail"]["model_package_arn"] == v2

    assert _deploy(event)["result"]["outcome"] == "deployed"
    ssm = boto3.client("ssm", region_name=REGION)
    served = {v: ssm.get_parameter(Name=f"/mlops/dev/models/{MODEL}/variant/{v}/model-package-arn")
              ["Parameter"]["Value"]
              for v in ("Champion", "Challenger")}
    assert served == {"Champion": v2, "Challenger": v1}


def test_shift_weights_changes_traffic_without_a_new_endpoint_config(
        ab_endpoint: tuple[str, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    config_before = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    assert cli.main(["shift-weights", "--env", "dev", "--model", MODEL, "--region", REGION, "--challenger-percent",
                     "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["after"] == {"Champion": 50.0, "Challenger": 50.0}
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert {v["VariantName"]: v["CurrentWeight"] for v in endpoint["ProductionVariants"]} == {
        "Champion": 50.0, "Challenger": 50.0}
    assert endpoint["EndpointConfigName"] == config_before
    assert cli.main(["shift-weights", "--env", "dev", "--model", MODEL, "--region", REGION, "--challenger-percent",
                     "120"]) == 2


def _capture(variant: str, rows: int, separation: float, seed: int) -> list[tuple[str, int]]:
    """Captured single-row requests (with inference ids) of one variant; returns (inference id, label)."""
    rng = np.random.default_rng(seed)
    s3 = boto3.client("s3", region_name=REGION)
    now = datetime.now(UTC)
    lines, truth = [], []
    for n in range(rows):
        label = int(rng.integers(0, 2))
        probability = float(1 / (1 + np.exp(-(separation * (2 * label - 1) + rng.normal()))))
        inference_id = f"{variant}-{n}"
        lines.append(json.dumps(build_capture_record(rows=[[f"{x:.3f}" for x in rng.random(30)]],
                                                     probabilities=[probability], inference_time=now,
                                                     event_id=str(uuid.uuid4()), inference_id=inference_id)))
        truth.append((inference_id, label))
    lines.append("not json")  # a malformed capture line is counted, never fatal
    key = f"endpoint/{ENDPOINT}/{variant}/{now:%Y/%m/%d/%H}/capture-{uuid.uuid4().hex[:6]}.jsonl"
    s3.put_object(Bucket=CAPTURE_BUCKET, Key=key, Body="\n".join(lines).encode())
    return truth


def test_ab_report_compares_variants_and_recommends_with_its_numbers(
        ab_endpoint: tuple[str, str, str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    truth = _capture("Champion", 300, 0.5, 1) + _capture("Challenger", 300, 2.5, 2)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=CAPTURE_BUCKET, Key=f"{GROUND_TRUTH_URI.removeprefix(f's3://{CAPTURE_BUCKET}/')}2026/labels.jsonl",
        Body="\n".join(json.dumps({"inference_id": i, "label": y}) for i, y in truth).encode())

    def traffic(cloudwatch_client: Any, *, endpoint: str, variants: list[str], start: datetime,
                end: datetime) -> dict[str, Any]:
        # moto crashes on percentile statistics; the query itself is unit-tested with Stubber
        assert end - start == timedelta(hours=24)
        return {v: {"requests": 1000.0, "errors_5xx": 1.0, "errors_4xx": 0.0, "error_rate": 0.001,
                    "latency_p50_ms": 5.0, "latency_p99_ms": 40.0} for v in variants}

    monkeypatch.setattr(serving_ops, "variant_traffic", traffic)
    assert cli.main(["ab-report", "--env", "dev", "--model", MODEL, "--region", REGION, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recommendation"] == "promote", report["reason"]
    assert "auc Challenger" in report["reason"] and "p=" in report["reason"]
    champion, challenger = report["variants"]["Champion"], report["variants"]["Challenger"]
    assert champion["labelled_rows"] == challenger["labelled_rows"] == 300
    assert champion["malformed_capture_records"] == 1 and champion["predictions"]["rows"] == 300
    low, high = challenger["quality"]["ci95"]
    assert low < challenger["quality"]["value"] < high
    assert report["quality_comparison"]["significant"] is True

    assert cli.main(["ab-report", "--env", "dev", "--model", MODEL, "--region", REGION]) == 0
    text = capsys.readouterr().out
    assert "recommendation: promote" in text and "Challenger" in text
