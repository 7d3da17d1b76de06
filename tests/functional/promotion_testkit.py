"""Test kit for the promotion gate: a moto registry that behaves like the real one, and the AWS resources
the registry stack provides (ledger, idempotency table, SNS topic, event bus), created in moto.

moto 5.2.5 gaps this kit patches, in tests only:
* it neither stores nor returns ``ModelLifeCycle`` (CreateModelPackage/UpdateModelPackage/Describe);
* its UpdateModelPackage overwrites ApprovalDescription, CustomerMetadataProperties and the approval status
  with None when the request leaves them out — real AWS changes only the fields in the request;
* SageMaker's EventBridge events are never sent, and LastModifiedBy is a fixed fake profile.
The patch keeps fields that are not passed, stores ModelLifeCycle, records who made each change
(``acting_as``) and appends the "SageMaker Model Package State Change" event real SageMaker would send to
``RealisticRegistry.events`` so tests deliver them to the gate — in order, shuffled or duplicated.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from testkit.moto_gaps import RealisticRegistry, patch_moto_registry

REGION = "us-east-1"
ACCOUNT = "123456789012"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"


@dataclass(frozen=True)
class PromotionResources:
    """What stacks/registry.py provides, created in moto; plus SQS queues to observe SNS and EventBridge."""

    group: str
    ledger_table: str
    idempotency_table: str
    topic_arn: str
    event_bus: str
    notices_queue_url: str
    promotions_queue_url: str

    def environment(self) -> dict[str, str]:
        """The gate's environment, written through its contract as the registry stack writes it."""
        from mlsettings.functions.contracts import GateEnvironment

        return GateEnvironment(
            group_prefix=GROUP_PREFIX, ledger_table=self.ledger_table, idempotency_table=self.idempotency_table,
            promotion_topic_arn=self.topic_arn, event_bus_name=self.event_bus,
            stage_servers={"Staging": {"environment": "staging", "account": "123456789012"},
                           "Production": {"environment": "prod", "account": "123456789012"}},
            protected_production_versions=3).to_env()


def create_ledger_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


GROUP_PREFIX = "mlops-dev-"
"""The registry's group prefix (mlsettings.naming.group_prefix of dev): the gate guards every group starting so."""


def create_resources(group: str = f"{GROUP_PREFIX}breast-cancer", environment: str = "dev") -> PromotionResources:
    """Create the group, tables, topic, bus (+ observer queues) and the CLI's SSM parameters."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    ssm = boto3.client("ssm", region_name=REGION)

    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    create_ledger_table(dynamodb, "ledger")
    dynamodb.create_table(
        TableName="idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic_arn = sns.create_topic(Name="promotion-notices")["TopicArn"]
    notices_url = sqs.create_queue(QueueName="notices")["QueueUrl"]
    notices_arn = sqs.get_queue_attributes(QueueUrl=notices_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=notices_arn,
                  Attributes={"RawMessageDelivery": "false"})
    events.create_event_bus(Name="mlops")
    promotions_url = sqs.create_queue(QueueName="promotions")["QueueUrl"]
    promotions_arn = sqs.get_queue_attributes(QueueUrl=promotions_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="promotions", EventBusName="mlops",
        EventPattern=json.dumps({"source": ["mlops.promotion"], "detail-type": ["Model Promotion Accepted"]}),
    )
    events.put_targets(Rule="promotions", EventBusName="mlops", Targets=[{"Id": "q", "Arn": promotions_arn}])
    for key, value in {
        f"models/{group.removeprefix(GROUP_PREFIX)}/model-package-group": group,
        "ledger-table": "ledger",
        "promotion-topic-arn": topic_arn,
        "event-bus-name": "mlops",
    }.items():
        ssm.put_parameter(Name=f"/mlops/{environment}/{key}", Value=value, Type="String")
    return PromotionResources(
        group=group,
        ledger_table="ledger",
        idempotency_table="idempotency",
        topic_arn=topic_arn,
        event_bus="mlops",
        notices_queue_url=notices_url,
        promotions_queue_url=promotions_url,
    )


def register_package(
    sagemaker: Any,
    group: str,
    *,
    quality_passed: bool = True,
    quality_value: str = "0.97",
    git_commit: str = "0123456789abcdef0123456789abcdef01234567",
) -> str:
    """Register a package the way the training pipeline's register step does; returns its ARN."""
    execution = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/training/execution/{uuid.uuid4().hex[:12]}"
    return str(
        sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=f"trained from {git_commit[:8]}",
            InferenceSpecification={
                "Containers": [
                    {"Image": IMAGE, "ModelDataUrl": f"s3://models/{group}/{uuid.uuid4().hex[:8]}/model.tar.gz"}
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelApprovalStatus="PendingManualApproval",
            ModelLifeCycle={
                "Stage": "Development",
                "StageStatus": "PendingApproval",
                "StageDescription": "registered by the training pipeline",
            },
            MetadataProperties={"GeneratedBy": execution, "CommitId": git_commit},
            CustomerMetadataProperties={
                "quality_gate_passed": "true" if quality_passed else "false",
                "quality_metric": "roc_auc",
                "quality_value": quality_value,
                "quality_threshold": "0.90",
                "git_commit": git_commit,
                "data_sha256": "a" * 64,
                "config_hash": "b" * 64,
                "pipeline_execution_arn": execution,
                "training_job_name": f"train-{uuid.uuid4().hex[:8]}",
            },
        )["ModelPackageArn"]
    )


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message on an observer queue, decoded (SNS envelopes and EventBridge events alike)."""
    messages: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        batch = answer.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


class FakeLambdaContext:
    function_name = "promotion-gate"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:promotion-gate"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_gate_handler(monkeypatch: pytest.MonkeyPatch, resources: PromotionResources) -> Any:
    """Import the handler fresh, inside the moto mock, with the environment it reads at import."""
    import importlib
    import sys

    for name, value in resources.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    sys.modules.pop("lambdas.promotion_gate.handler", None)
    return importlib.import_module("lambdas.promotion_gate.handler")


@pytest.fixture
def promotion_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RealisticRegistry, PromotionResources]]:
    """moto for every AWS call, the realistic registry patch and the registry stack's resources."""
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        registry = patch_moto_registry(monkeypatch)
        yield registry, create_resources()
