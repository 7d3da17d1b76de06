"""Recording deployment results in the registry: run by the promotion gate's function only (the deployers
send the events, mlplatform/registry/deployment_results.py).

The registry trusts a result only from the environment that serves that stage, in that environment's account
(cdk.json, as ``StageServer``s): the event's ``account`` is set by EventBridge to the sender's account and
cannot be chosen by the sender. A result older than the evidence already recorded for its version and stage
(``deployed_at``, the deployer's clock) is kept as history but changes neither the evidence nor StageStatus,
so results delivered twice or out of order cannot turn a failed staging check into a passed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlplatform.registry.deployment_ledger import DEPLOYED, HEALTH_PASSED, DeploymentLedger, DeploymentRecord
from mlplatform.registry.deployment_results import (
    DESCRIPTION_LIMIT,
    HEALTH_CHECKS,
    OUTCOMES,
    RESULT_DETAIL_TYPE,
    StageServer,
)
from mlplatform.registry.package_events import RejectedEvent
from mlsettings.vocabulary import RESULT_SOURCE, STATUS_DEPLOY_FAILED, STATUS_DEPLOYED


@dataclass(frozen=True)
class DeploymentResult:
    event_id: str
    account: str
    detail: Mapping[str, Any]

    @property
    def stage(self) -> str:
        return str(self.detail["stage"])


def parse_result(event: Any, *, group: str, servers: Mapping[str, StageServer]) -> DeploymentResult:
    """The result, if it is well formed, for this group, and from the environment and account that serve its
    stage; otherwise ``RejectedEvent`` naming what is wrong."""
    if not isinstance(event, Mapping):
        raise RejectedEvent(f"event is {type(event).__name__}, not an object")
    if event.get("source") != RESULT_SOURCE or event.get("detail-type") != RESULT_DETAIL_TYPE:
        raise RejectedEvent(f"source/detail-type {event.get('source')!r}/{event.get('detail-type')!r}; expected "
                            f"{RESULT_SOURCE!r}/{RESULT_DETAIL_TYPE!r}")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise RejectedEvent("detail is missing or not an object")
    problems = []
    for key, kind in (("model_package_arn", str), ("stage", str), ("outcome", str), ("health_check", str),
                      ("environment", str), ("deployed_at", str), ("version", int)):
        if not isinstance(detail.get(key), kind) or isinstance(detail.get(key), bool) or detail.get(key) == "":
            problems.append(f"{key} is {detail.get(key)!r}")
    if problems:
        raise RejectedEvent("malformed deployment result: " + ", ".join(problems))
    if detail.get("model_package_group") != group:
        raise RejectedEvent(f"model_package_group {detail.get('model_package_group')!r} is not this registry's "
                            f"({group})")
    if detail["outcome"] not in OUTCOMES or detail["health_check"] not in HEALTH_CHECKS:
        raise RejectedEvent(f"outcome/health_check {detail['outcome']!r}/{detail['health_check']!r}; allowed: "
                            f"{list(OUTCOMES)} / {list(HEALTH_CHECKS)}")
    if detail["outcome"] == DEPLOYED and detail["health_check"] != HEALTH_PASSED:
        raise RejectedEvent(f"outcome deployed with health check {detail['health_check']!r}; a deployment counts "
                            "only after its health check passed")
    server = servers.get(detail["stage"])
    if server is None:
        raise RejectedEvent(f"stage {detail['stage']!r} has no deployer in this registry "
                            f"(served: {sorted(servers)})")
    account = str(event.get("account", ""))
    if (detail["environment"], account) != (server.environment, server.account):
        raise RejectedEvent(
            f"a {detail['stage']} result from environment {detail['environment']!r} in account {account or '?'}; "
            f"only {server.environment!r} in account {server.account} deploys {detail['stage']}")
    if not detail["model_package_arn"].split("/")[-2:-1] == [group]:
        raise RejectedEvent(f"model_package_arn {detail['model_package_arn']!r} is not a version of {group}")
    return DeploymentResult(event_id=str(event.get("id", "")), account=account, detail=detail)


def record_result(result: DeploymentResult, *, ledger: DeploymentLedger, sagemaker_client: Any) -> dict[str, Any]:
    """The ledger row (the gate's evidence) and, if this is the newest result and the version is still in that
    stage, the version's StageStatus (what approvers see in Studio)."""
    detail = result.detail
    arn = str(detail["model_package_arn"])
    description = sagemaker_client.describe_model_package(ModelPackageName=arn)
    container = ((description.get("InferenceSpecification") or {}).get("Containers") or [{}])[0]
    deployment = DeploymentRecord(
        deployed_at=str(detail["deployed_at"]), version=int(detail["version"]), stage=result.stage,
        outcome=str(detail["outcome"]), health_check=str(detail["health_check"]), model_package_arn=arn,
        model_data_url=str(container.get("ModelDataUrl", "")), image=str(container.get("Image", "")),
        reason=str(detail.get("reason", ""))[:DESCRIPTION_LIMIT],
        actor=str(detail.get("requested_by") or "deployer"))
    newest = ledger.record_deployment(deployment)
    stage_now = (description.get("ModelLifeCycle") or {}).get("Stage")
    marked = newest and stage_now == result.stage
    if marked:
        status = STATUS_DEPLOYED if deployment.outcome == DEPLOYED else STATUS_DEPLOY_FAILED
        text = (f"{detail.get('endpoint_name', '')} ({', '.join(detail.get('changed_variants') or [])}): "
                f"{deployment.reason}")[:DESCRIPTION_LIMIT]
        # Only ModelLifeCycle: UpdateModelPackage leaves every field that is not in the request unchanged.
        sagemaker_client.update_model_package(
            ModelPackageArn=arn, ModelLifeCycle={"Stage": result.stage, "StageStatus": status,
                                                 "StageDescription": text})
    why = "" if marked else (" (older than the evidence already recorded)" if not newest
                             else f" (the version is now in {stage_now}; its status there is left alone)")
    return {"outcome": "recorded", "version": deployment.version, "stage": result.stage,
            "deployment_outcome": deployment.outcome, "health_check": deployment.health_check,
            "stage_status_updated": marked, "reason": f"{result.stage} result from {detail['environment']}{why}"}


__all__ = ["DeploymentResult", "parse_result", "record_result"]
