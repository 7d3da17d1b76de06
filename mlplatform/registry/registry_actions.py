"""The gate's side effects, each a small function over a boto3 client (tests pass moto or Stubber clients).

UpdateModelPackage on real AWS changes only the fields in the request, so a revert sends exactly
ModelLifeCycle (with the reason in StageDescription), ModelApprovalStatus and ApprovalDescription and
leaves the package's metadata, inference specification and everything else as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlplatform.registry.deployment_ledger import PackageRecord
from mlplatform.registry.gate_rules import RegistryState
from mlsettings.vocabulary import PROMOTION_ACCEPTED, PROMOTION_SOURCE

PROMOTION_DETAIL_TYPE = PROMOTION_ACCEPTED
PROMOTION = "promotion"
ROLLBACK = "rollback"

# API limits: StageDescription 1024, ApprovalDescription 1024, SNS subject 100 characters.
_DESCRIPTION_LIMIT = 1024
_SUBJECT_LIMIT = 100


def actor_of(user_context: Mapping[str, Any] | None) -> str:
    """Who a SageMaker UserContext (CreatedBy/LastModifiedBy) names: IAM principal first, then Studio user."""
    if not user_context:
        return ""
    identity = user_context.get("IamIdentity") or {}
    return str(
        identity.get("Arn")
        or user_context.get("UserProfileArn")
        or user_context.get("UserProfileName")
        or identity.get("PrincipalId")
        or ""
    )


def registry_state(description: Mapping[str, Any]) -> RegistryState:
    """DescribeModelPackage output → the state the gate judges."""
    life_cycle = description.get("ModelLifeCycle") or {}
    containers = (description.get("InferenceSpecification") or {}).get("Containers") or [{}]
    return RegistryState(
        version=int(description["ModelPackageVersion"]),
        model_package_arn=str(description["ModelPackageArn"]),
        stage=life_cycle.get("Stage"),
        stage_status=life_cycle.get("StageStatus"),
        approval_status=str(description.get("ModelApprovalStatus") or ""),
        customer_metadata=dict(description.get("CustomerMetadataProperties") or {}),
        actor=actor_of(description.get("LastModifiedBy")) or actor_of(description.get("CreatedBy")),
        model_data_url=str(containers[0].get("ModelDataUrl") or ""),
        image=str(containers[0].get("Image") or ""),
    )


def describe_package(sagemaker_client: Any, model_package_arn: str) -> RegistryState | None:
    """The package's current state, or None if it no longer exists (deleted after the event was sent)."""
    try:
        description = sagemaker_client.describe_model_package(ModelPackageName=model_package_arn)
    except sagemaker_client.exceptions.ClientError as err:
        if err.response.get("Error", {}).get("Code") in {"ValidationException", "ResourceNotFound"}:
            return None
        raise
    return registry_state(description)


def revert_package(
    sagemaker_client: Any, model_package_arn: str, restore_point: PackageRecord, reason: str
) -> None:
    """Put stage and approval back to the restore point and say why where the approver will look."""
    text = f"Reverted by the promotion gate: {reason}"[:_DESCRIPTION_LIMIT]
    sagemaker_client.update_model_package(
        ModelPackageArn=model_package_arn,
        ModelApprovalStatus=restore_point.approval_status,
        ApprovalDescription=text,
        ModelLifeCycle={
            "Stage": restore_point.stage,
            "StageStatus": restore_point.stage_status,
            "StageDescription": text,
        },
    )


def initialise_life_cycle(sagemaker_client: Any, model_package_arn: str, registration: PackageRecord) -> None:
    """Set only ModelLifeCycle (approval and metadata untouched) for a package registered without one."""
    sagemaker_client.update_model_package(
        ModelPackageArn=model_package_arn,
        ModelLifeCycle={
            "Stage": registration.stage,
            "StageStatus": registration.stage_status,
            "StageDescription": "lifecycle initialised by the promotion gate at registration",
        },
    )


def publish_notice(
    sns_client: Any,
    topic_arn: str,
    *,
    outcome: str,
    group: str,
    version: int,
    to_stage: str,
    body: Mapping[str, Any],
) -> None:
    """A promotion notice on SNS; ``outcome`` is a message attribute so on-call can filter on "reverted"."""
    subject = f"[mlops] {group} v{version} → {to_stage}: {outcome}"[:_SUBJECT_LIMIT]
    sns_client.publish(
        TopicArn=topic_arn,
        Subject=subject,
        Message=json.dumps(dict(body), indent=2, sort_keys=True, default=str),
        MessageAttributes={"outcome": {"DataType": "String", "StringValue": outcome}},
    )


def promotion_detail(
    *, group: str, model: str, model_package_arn: str, version: int, target_stage: str, reason: str,
    requested_by: str
) -> dict[str, Any]:
    """The contract with the serving deployer (detail of "Model Promotion Accepted"); ``model`` routes it to the
    model's deployer in the serving environment."""
    return {
        "model": model,
        "model_package_group": group,
        "model_package_arn": model_package_arn,
        "version": version,
        "target_stage": target_stage,
        "reason": reason,
        "requested_by": requested_by,
    }


def emit_promotion(events_client: Any, event_bus_name: str, detail: Mapping[str, Any]) -> None:
    """PutEvents reports per-entry failures in its answer instead of raising: turn them into an error so the
    invocation fails and is retried (at-least-once; the deployer is idempotent per version and stage)."""
    answer = events_client.put_events(
        Entries=[
            {
                "Source": PROMOTION_SOURCE,
                "DetailType": PROMOTION_DETAIL_TYPE,
                "Detail": json.dumps(dict(detail), sort_keys=True),
                "EventBusName": event_bus_name,
                "Resources": [str(detail["model_package_arn"])],
            }
        ]
    )
    if answer.get("FailedEntryCount", 0):
        failures = [entry for entry in answer.get("Entries", []) if entry.get("ErrorCode")]
        raise RuntimeError(f"PutEvents to {event_bus_name} failed: {failures}")
