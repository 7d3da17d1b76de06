"""Test kit for serving: a real trained model registered like the pipeline does, a moto endpoint whose
blue/green updates tests control, and a runtime that answers with the real serving code.

moto 5.2.5 gaps this kit fills, in tests only:
* ``UpdateEndpoint`` is not implemented: ``SimulatedRollouts`` adds it; each call is recorded and resolved
  as the test says (``succeed``: InService on the new config; ``rollback``: InService on the old config with
  a FailureReason, as SageMaker's auto-rollback leaves it; ``in_progress``: Updating; ``rollback_failed``:
  UpdateRollbackFailed).
* ``InvokeEndpoint`` returns canned answers: ``ModelRuntime`` scores with ``pipelines/serving/inference.py``
  on the model artifact of the package each variant serves (read back from moto S3), so golden payloads
  are checked against real answers. Faults: ``wrong_answers`` (HTTP 200, shifted probabilities) and
  ``errors`` (a ModelError) per variant.
* ModelLifeCycle and UpdateModelPackage semantics come from the promotion kit's realistic registry patch.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipelines.datasets import write_breast_cancer_csv
from pipelines.definition import PipelineSettings, model_package_request
from pipelines.local_run import run_local
from testkit.moto_gaps import (  # noqa: F401
    ModelRuntime,
    SimulatedRollouts,
    patch_event_envelopes,
    patch_update_endpoint,
)
from testkit.serving_world import (  # noqa: F401
    ACCOUNT,
    ARTIFACT_BUCKET,
    CAPTURE_BUCKET,
    ENDPOINT,
    GROUP,
    IMAGE,
    KMS,
    LEDGER,
    REGION,
    ROLE,
    deployer_environment,
    model_prefixes_of_model,
    serving_settings,
)
from tests.functional.promotion_testkit import create_ledger_table, patch_moto_registry

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TrainedModel:
    """Artifacts of one local training run (trained once per test session)."""

    model_artifact: bytes
    baseline: bytes
    golden: bytes
    model_dir: Path


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    workdir = tmp_path_factory.mktemp("trained")
    data = write_breast_cancer_csv(workdir / "breast_cancer.csv")
    run = run_local(workdir / "run", schema_path=REPO_ROOT / "pipelines/schemas/breast_cancer.json", data_csv=data,
                    hyperparameters={"num_round": 5, "device": "cpu"}, threshold=0.5)
    assert run.succeeded, run.failure
    return TrainedModel(model_artifact=run.paths["model_artifact"].read_bytes(),
                        baseline=run.paths["baseline"].read_bytes(), golden=run.paths["golden"].read_bytes(),
                        model_dir=run.paths["model_dir"])


def register_trained_package(trained: TrainedModel, *, stage: str = "Development", approval: str = "Approved",
                             golden: bytes | None = None) -> str:
    """Upload the artifacts in the pipeline's layout (golden beside baseline) and register like its Register
    step (``model_package_request``); returns the package ARN."""
    s3, sagemaker = boto3.client("s3", region_name=REGION), boto3.client("sagemaker", region_name=REGION)
    execution = uuid.uuid4().hex[:12]
    prefixes = model_prefixes_of_model()  # the pipeline's layout: under MODEL's prefixes
    prefix = f"{prefixes.pipeline_outputs}{execution}"
    model_key = f"{prefixes.models}{execution}/output/model.tar.gz"
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=model_key, Body=trained.model_artifact)
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=f"{prefix}/baseline/baseline.json", Body=trained.baseline)
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=f"{prefix}/baseline/golden_payloads.json",
                  Body=golden if golden is not None else trained.golden)
    settings = PipelineSettings(
        pipeline_name="test", role_arn=ROLE, image_uri=IMAGE, artifact_bucket=ARTIFACT_BUCKET, kms_key_id="",
        code_uri="", code_file_name="", schema_uri="", schema_file_name="", no_baseline_uri="",
        model_package_group=GROUP, model="churn", default_data_uri="", training_instance_type="ml.g5.xlarge",
        training_instance_count=1, processing_instance_type="ml.m5.xlarge", volume_size_gb=1, use_spot=False,
        max_run_seconds=1, max_wait_seconds=1, checkpointing=False, num_round=5, quality_metric="auc",
        quality_threshold=0.5, inference_instance_types=("ml.m5.large",), transform_instance_types=("ml.m5.xlarge",),
        expected_p99_latency_ms=200)
    request = model_package_request(
        settings, model_data_url=f"s3://{ARTIFACT_BUCKET}/{model_key}",
        evaluation_uri=f"s3://{ARTIFACT_BUCKET}/{prefix}/evaluation/evaluation.json",
        baseline_uri=f"s3://{ARTIFACT_BUCKET}/{prefix}/baseline/baseline.json",
        sample_payload_url=f"s3://{ARTIFACT_BUCKET}/{prefix}/baseline/sample_payload.tar.gz",
        metadata={"quality_gate_passed": "true", "quality_metric": "auc", "quality_value": "0.97"},
        approval_status=approval, description="test package")
    request["ModelLifeCycle"] = {"Stage": stage, "StageStatus": "Approved", "StageDescription": "test"}
    return str(sagemaker.create_model_package(**request)["ModelPackageArn"])


@pytest.fixture
def serving_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedRollouts]:
    """moto with the realistic registry, UpdateEndpoint, and the resources the stacks provide."""
    from moto import mock_aws

    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        patch_moto_registry(monkeypatch)
        rollouts = patch_update_endpoint(monkeypatch)
        patch_event_envelopes(monkeypatch)
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (ARTIFACT_BUCKET, CAPTURE_BUCKET):
            s3.create_bucket(Bucket=bucket)
        boto3.client("sagemaker", region_name=REGION).create_model_package_group(ModelPackageGroupName=GROUP)
        create_ledger_table(boto3.client("dynamodb", region_name=REGION), LEDGER)
        _route_results_to_a_queue()
        yield rollouts


RESULTS_QUEUE = "deployment-results"


def _route_results_to_a_queue() -> None:
    """What the registry's DeploymentResults rule matches, delivered to a queue instead of the gate's function
    (``record_results`` then hands them to the same recording code the gate's handler runs)."""
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    url = sqs.create_queue(QueueName=RESULTS_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="deployment-results", EventPattern=json.dumps(
        {"source": ["mlops.deployment"], "detail-type": ["Model Deployment Result"],
         "detail": {"model_package_group": [GROUP]}}))
    events.put_targets(Rule="deployment-results", Targets=[{"Id": "registry", "Arn": arn}])


def record_results() -> list[dict[str, Any]]:
    """Deliver the deployers' results to the registry's recording (ledger row, StageStatus): the path a
    result takes in AWS after the deployer's PutEvents. The testkit's deployer is environment "dev" of
    ACCOUNT and serves both stages."""
    from mlplatform.registry.deployment_ledger import DeploymentLedger
    from mlplatform.registry.deployment_results import StageServer
    from mlplatform.registry.result_recording import parse_result, record_result

    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=RESULTS_QUEUE)["QueueUrl"]
    servers = {stage: StageServer(environment="dev", account=ACCOUNT) for stage in ("Staging", "Production")}
    ledger = DeploymentLedger(boto3.client("dynamodb", region_name=REGION), LEDGER, GROUP)
    recorded = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            # The envelope's "account" is the sender's (moto_gaps.patch_event_envelopes: moto leaves it out).
            result = parse_result(json.loads(message["Body"]), group=GROUP, servers=servers)
            recorded.append(record_result(result, ledger=ledger,
                                          sagemaker_client=boto3.client("sagemaker", region_name=REGION)))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return recorded


def promotion_event(arn: str, *, stage: str = "Staging", reason: str = "promotion",
                    variant: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"model_package_group": GROUP, "model_package_arn": arn,
                              "version": int(arn.rsplit("/", 1)[-1]), "target_stage": stage, "reason": reason,
                              "requested_by": "arn:aws:sts::123456789012:assumed-role/Approver/bob"}
    if variant:
        detail["variant"] = variant
    return {"version": "0", "id": str(uuid.uuid4()), "source": "mlops.promotion",
            "detail-type": "Model Promotion Accepted", "account": ACCOUNT, "region": REGION, "detail": detail}
