"""Batch scoring: the transform job uses the Champion's model, joins outputs to inputs, writes under batch/."""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from lambdas.deployer.settings import settings_from_environment
from mlplatform.serving import deployment_flow
from mlplatform.serving.deployment_flow import DeployerClients
from mlplatform.serving.transform_job import BatchScoringError, BatchSettings, start_batch_scoring, transform_request
from tests.functional.promotion_testkit import FakeLambdaContext
from tests.functional.serving_testkit import (  # noqa: F401  (fixtures)
    CAPTURE_BUCKET,
    ENDPOINT,
    KMS,
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

NOW = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
SETTINGS = BatchSettings(endpoint_name=ENDPOINT, capture_bucket=CAPTURE_BUCKET, instance_type="ml.m5.xlarge",
                         kms_key_arn=KMS, default_input_uri=f"s3://{CAPTURE_BUCKET}/batch/input/")


def _deploy(trained: TrainedModel) -> str:
    settings = settings_from_environment(deployer_environment(challenger=True))
    clients = DeployerClients(**{name: boto3.client(service, region_name=REGION) for name, service in {
        "sagemaker": "sagemaker", "s3": "s3", "ssm": "ssm", "events": "events", "cloudwatch": "cloudwatch",
        "autoscaling": "application-autoscaling"}.items()}, runtime=ModelRuntime())
    arn = register_trained_package(trained, stage="Staging")
    state = deployment_flow.start_deployment(promotion_event(arn), clients=clients, settings=settings, now=NOW,
                                             deployment_id="d1")
    return str(state["variants"]["Champion"]["model_name"])


def test_the_request_joins_outputs_to_inputs_and_encrypts_where_the_instance_allows() -> None:
    request = transform_request(name="job", model_name="m", input_uri=f"s3://{CAPTURE_BUCKET}/batch/input/in/",
                                settings=SETTINGS, now=NOW,
                                model_version="3")
    assert request["DataProcessing"] == {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": "$"}
    assert request["TransformInput"]["SplitType"] == "Line" and request["TransformOutput"]["AssembleWith"] == "Line"
    assert request["TransformOutput"]["S3OutputPath"] == f"s3://{CAPTURE_BUCKET}/batch/output/2026/02/03/job/"
    assert request["TransformResources"]["VolumeKmsKeyId"] == KMS
    local_disk = BatchSettings(endpoint_name=ENDPOINT, capture_bucket=CAPTURE_BUCKET, instance_type="ml.m5d.xlarge",
                               kms_key_arn=KMS)
    assert "VolumeKmsKeyId" not in transform_request(name="j", model_name="m", input_uri=f"s3://{CAPTURE_BUCKET}/batch/input/in/",
                                                     settings=local_disk, now=NOW,
                                                     model_version="3")["TransformResources"]
    with pytest.raises(BatchScoringError, match="is outside s3://"):
        transform_request(name="j", model_name="m", input_uri="s3://other-bucket/in/", settings=SETTINGS, now=NOW,
                          model_version="1")
    with pytest.raises(BatchScoringError, match="not an s3://"):
        transform_request(name="j", model_name="m", input_uri="/local/path", settings=SETTINGS, now=NOW,
                          model_version="3")


@pytest.mark.slow
def test_scoring_uses_the_champions_model(serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    model_name = _deploy(trained_model)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    started = start_batch_scoring(sagemaker, settings=SETTINGS, request={"input_uri": f"s3://{CAPTURE_BUCKET}/batch/input/x/"},
                                  now=NOW)
    job = sagemaker.describe_transform_job(TransformJobName=started["transform_job_name"])
    assert job["ModelName"] == model_name == started["model_name"]
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{CAPTURE_BUCKET}/batch/input/x/"
    assert started["transform_job_name"] == "mlops-dev-batch-20260203-040506"


def test_without_an_endpoint_nothing_starts_and_the_handler_says_why(
        serving_aws: SimulatedRollouts, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from mlsettings.functions.contracts import BatchScoringEnvironment

    for name, value in BatchScoringEnvironment(
            endpoint_name=ENDPOINT, capture_bucket=CAPTURE_BUCKET, batch_instance_type="ml.m5.xlarge",
            kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/batch", batch_input_uri="s3://d/in/",
            batch_instance_count=1).to_env().items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("lambdas.batch_scoring.handler", None)
    module: Any = importlib.import_module("lambdas.batch_scoring.handler")
    result = module.handler({"source": "aws.events"}, FakeLambdaContext())
    assert result == {"started": False, "reason": f"{ENDPOINT} serves no Champion: nothing deployed to score with"}
