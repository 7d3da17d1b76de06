"""The EventBridge event SageMaker sends when a model package changes, as a Powertools parser model.

Documented shape (SageMaker developer guide, "SageMaker model package state change"): source
``aws.sagemaker``, detail-type ``SageMaker Model Package State Change``, detail with
ModelPackageGroupName, ModelPackageVersion, ModelPackageArn, ModelApprovalStatus, CreationTime,
LastModifiedTime and, for registries using stages, ModelLifeCycle. Times arrive as ISO text in the
documented sample but as epoch milliseconds in other SageMaker events, so both are accepted.

Only what the gate needs to *identify* the package is required: the decision itself is made on the
package's current state (DescribeModelPackage), never on the event's copy of it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlsettings.vocabulary import APPROVAL_STATUSES, PACKAGE_STATE_CHANGE, SAGEMAKER_SOURCE

SOURCE = SAGEMAKER_SOURCE
DETAIL_TYPE = PACKAGE_STATE_CHANGE


class RejectedEvent(Exception):
    """An event the gate does not act on; the message says why (it is logged, never raised to Lambda)."""


def parse_event_time(value: Any) -> datetime | None:
    """ISO 8601 text, or epoch milliseconds as a number or digit string → aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, bool):
        raise ValueError(f"a time must be ISO 8601 text or epoch milliseconds, got {value!r}")
    is_number_text = isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()
    if isinstance(value, int | float) or is_number_text:
        return datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"a time must be ISO 8601 text or epoch milliseconds, got {type(value).__name__}")


class ModelLifeCycleModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    Stage: str
    StageStatus: str
    StageDescription: str | None = None


class ModelPackageStateChangeDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ModelPackageGroupName: str = Field(min_length=1)
    ModelPackageVersion: int = Field(ge=1)
    ModelPackageArn: str = Field(pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/.+")
    ModelApprovalStatus: str | None = None
    CreationTime: datetime
    LastModifiedTime: datetime | None = None
    ModelLifeCycle: ModelLifeCycleModel | None = None
    # CloudTrail-shaped events carry the caller; SageMaker's own events may not. Either way it is optional.
    userIdentity: dict[str, Any] | None = None

    @field_validator("CreationTime", "LastModifiedTime", mode="before")
    @classmethod
    def _either_time_format(cls, value: Any) -> datetime | None:
        return parse_event_time(value)

    @field_validator("ModelApprovalStatus")
    @classmethod
    def _an_approval_status(cls, value: str | None) -> str | None:
        if value is not None and value not in APPROVAL_STATUSES:
            raise ValueError(f"ModelApprovalStatus {value!r}; allowed: {list(APPROVAL_STATUSES)}")
        return value


class ModelPackageStateChangeEvent(EventBridgeModel):
    detail: ModelPackageStateChangeDetail  # type: ignore[assignment]

    def actor_hint(self) -> str:
        identity = self.detail.userIdentity or {}
        return str(identity.get("arn") or identity.get("principalId") or "")

    def dedup_key(self) -> str:
        """What makes two deliveries "the same change": SageMaker may send several events (different ids)
        for one change, all carrying the same package, state and modification time."""
        detail = self.detail
        life_cycle = detail.ModelLifeCycle
        parts = [
            detail.ModelPackageArn,
            detail.ModelApprovalStatus or "",
            life_cycle.Stage if life_cycle else "",
            life_cycle.StageStatus if life_cycle else "",
            (detail.LastModifiedTime or detail.CreationTime).isoformat(),
        ]
        if not detail.LastModifiedTime:
            parts.append(self.id)  # without a modification time only the event id tells changes apart
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def parse_state_change(event: Any, *, expected_group: str) -> ModelPackageStateChangeEvent:
    """Validate an incoming event; raise RejectedEvent naming what is wrong for malformed/foreign ones."""
    if not isinstance(event, dict):
        raise RejectedEvent(f"event is a {type(event).__name__}, not a JSON object")
    if event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
        raise RejectedEvent(
            f"foreign event: source={event.get('source')!r} detail-type={event.get('detail-type')!r} "
            f"(expected {SOURCE!r} / {DETAIL_TYPE!r})"
        )
    try:
        parsed: ModelPackageStateChangeEvent = parse(event=event, model=ModelPackageStateChangeEvent)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in err.errors()
        )
        raise RejectedEvent(f"malformed model package event: {problems}") from None
    if parsed.detail.ModelPackageGroupName != expected_group:
        raise RejectedEvent(
            f"foreign model package group {parsed.detail.ModelPackageGroupName!r} "
            f"(this gate guards {expected_group!r})"
        )
    # The version's own group (its ARN: model-package/<group>/<version>, lower-cased by SageMaker) must be the one
    # the event names: an event whose ARN is another group's would be judged, and recorded, as this group's.
    arn_group = parsed.detail.ModelPackageArn.split(":model-package/", 1)[1].rsplit("/", 1)[0]
    if arn_group.lower() != expected_group.lower():
        raise RejectedEvent(
            f"ModelPackageArn {parsed.detail.ModelPackageArn!r} is a version of {arn_group!r}, not of the group "
            f"the event names ({expected_group!r})"
        )
    return parsed
