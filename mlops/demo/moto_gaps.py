"""Where moto 5.2.5 falls short of the AWS behaviour our code relies on: the test doubles, all in this one
module. Used by the tests and by `make demo`; never imported by the stacks, the Lambdas or the CLI commands
that run against AWS.

Registry (``patch_moto_registry``): moto neither stores nor returns ``ModelLifeCycle``; its
UpdateModelPackage overwrites ApprovalDescription, CustomerMetadataProperties and the approval status with
None when the request leaves them out (real AWS changes only the fields in the request); SageMaker's
EventBridge events are never sent and LastModifiedBy is a fixed profile. The patch keeps fields that are not
passed, stores ModelLifeCycle, records who made each change (``acting_as``) and appends the "SageMaker Model
Package State Change" event real SageMaker would send to ``RealisticRegistry.events``, so callers deliver
them to the gate — in order, shuffled or duplicated.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker import responses as sagemaker_responses
from moto.sagemaker.exceptions import ValidationError as SageMakerValidationError


class Patcher(Protocol):
    """pytest's MonkeyPatch, or ``AttributePatcher`` outside pytest."""

    def setattr(self, target: Any, name: str, value: Any) -> None: ...


class AttributePatcher:
    """Sets attributes and puts every one back on ``undo`` (what MonkeyPatch does, for the demo)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        self._saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._saved:
            target, name, value = self._saved.pop()
            setattr(target, name, value)


@dataclass
class RealisticRegistry:
    """Handle on the patched registry: who is acting, and the events SageMaker would have sent."""

    actor: str = "arn:aws:sts::123456789012:assumed-role/DataScientist/alice"
    events: list[dict[str, Any]] = field(default_factory=list)

    @contextmanager
    def acting_as(self, actor: str) -> Iterator[None]:
        previous, self.actor = self.actor, actor
        try:
            yield
        finally:
            self.actor = previous

    def take_events(self) -> list[dict[str, Any]]:
        taken, self.events[:] = list(self.events), []
        return taken


def _state_change_event(package: Any, *, epoch_millis: bool = False) -> dict[str, Any]:
    def when(moment: datetime | None) -> Any:
        moment = (moment or package.creation_time).replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000) if epoch_millis else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    detail: dict[str, Any] = {
        "ModelPackageGroupName": package.model_package_group_name,
        "ModelPackageVersion": package.model_package_version,
        "ModelPackageArn": package.arn,
        "CreationTime": when(package.creation_time),
        "LastModifiedTime": when(package.last_modified_time),
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": package.model_approval_status,
        "CertifyForMarketplace": False,
    }
    if getattr(package, "model_life_cycle", None):
        detail["ModelLifeCycle"] = dict(package.model_life_cycle)
    _, _, _, region, account, _ = package.arn.split(":", 5)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [package.arn],
        "detail": detail,
    }


def patch_moto_registry(monkeypatch: Patcher) -> RealisticRegistry:
    registry = RealisticRegistry()
    original_create = sagemaker_responses.SageMakerResponse.create_model_package
    original_response_object = sagemaker_models.ModelPackage.gen_response_object

    def user_context() -> dict[str, Any]:
        return {"UserProfileName": registry.actor.rsplit("/", 1)[-1], "IamIdentity": {"Arn": registry.actor}}

    def find(backend: Any, arn: str) -> Any:
        package = backend.model_packages.get(backend.model_package_name_mapping.get(arn, arn))
        if package is None:
            raise SageMakerValidationError(message=f"Model package {arn} does not exist.")
        return package

    def create_model_package(self: Any) -> ActionResult:
        result = original_create(self)
        package = find(self.sagemaker_backend, result.result["ModelPackageArn"])  # type: ignore[index]
        package.model_life_cycle = self._get_param("ModelLifeCycle")
        package.created_by = user_context()
        registry.events.append(_state_change_event(package))
        return result

    def update_model_package(self: Any) -> ActionResult:
        package = find(self.sagemaker_backend, self._get_param("ModelPackageArn"))
        if self._get_param("ModelApprovalStatus") is not None:
            package.set_model_approval_status(self._get_param("ModelApprovalStatus"))
        if self._get_param("ApprovalDescription") is not None:
            package.approval_description = self._get_param("ApprovalDescription")
        if self._get_param("ModelLifeCycle") is not None:
            package.model_life_cycle = self._get_param("ModelLifeCycle")
        if self._get_param("CustomerMetadataProperties") is not None:
            package.customer_metadata_properties = {
                **(package.customer_metadata_properties or {}),
                **self._get_param("CustomerMetadataProperties"),
            }
        package.remove_customer_metadata_property(self._get_param("CustomerMetadataPropertiesToRemove", []))
        package.last_modified_time = utcnow()
        package.last_modified_by = user_context()
        registry.events.append(_state_change_event(package))
        return ActionResult({"ModelPackageArn": package.arn})

    def gen_response_object(self: Any) -> dict[str, Any]:
        response = original_response_object(self)
        if getattr(self, "model_life_cycle", None):
            response["ModelLifeCycle"] = dict(self.model_life_cycle)
        return response

    monkeypatch.setattr(sagemaker_responses.SageMakerResponse, "create_model_package", create_model_package)
    monkeypatch.setattr(sagemaker_responses.SageMakerResponse, "update_model_package", update_model_package)
    monkeypatch.setattr(sagemaker_models.ModelPackage, "gen_response_object", gen_response_object)
    return registry


