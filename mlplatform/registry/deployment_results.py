"""Deployment results: what a serving environment's deployer reports, and how the registry records it.

A deployer never writes the registry's ledger or a version's StageStatus (it may live in another account): it
puts a "Model Deployment Result" event (source ``mlops.deployment``) on its own default bus; EventBridge
forwards it to the registry account's bus, whose rule hands it to the promotion gate's function, which
records it here. So the ledger and StageStatus are written in one place, by one role.

The registry trusts a result only from the environment that serves that stage, in that environment's account
(cdk.json, as ``StageServer``s): the event's ``account`` is set by EventBridge to the sender's account and
cannot be chosen by the sender. A result older than the evidence already recorded for its version and stage
(``deployed_at``, the deployer's clock) is kept as history but changes neither the evidence nor StageStatus,
so results delivered twice or out of order cannot turn a failed staging check into a passed one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlplatform.registry.deployment_ledger import (
    DEPLOYED,
    FAILED,
    HEALTH_FAILED,
    HEALTH_PASSED,
    STAGE_ORDER,
    STATUS_DEPLOY_FAILED,
    STATUS_DEPLOYED,
    DeploymentLedger,
    DeploymentRecord,
)
from mlplatform.registry.package_events import RejectedEvent

RESULT_SOURCE = "mlops.deployment"
RESULT_DETAIL_TYPE = "Model Deployment Result"
HEALTH_NOT_RUN = "not_run"
OUTCOMES = (DEPLOYED, FAILED)
HEALTH_CHECKS = (HEALTH_PASSED, HEALTH_FAILED, HEALTH_NOT_RUN)
_DESCRIPTION_LIMIT = 1024


@dataclass(frozen=True)
class StageServer:
    """The one environment that deploys a stage of this registry, and its account."""

    environment: str
    account: str


def parse_servers(text: str) -> dict[str, StageServer]:
    """``{"Staging": {"environment": "staging", "account": "222233334444"}, ...}`` (the gate's STAGE_SERVERS)."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("STAGE_SERVERS must be a JSON object of stage → {environment, account}")
    servers = {}
    for stage, server in raw.items():
        if stage not in STAGE_ORDER[1:] or not isinstance(server, dict) \
                or not str(server.get("environment", "")) or not str(server.get("account", "")).isdigit():
            raise ValueError(f"STAGE_SERVERS[{stage!r}] is {server!r}; allowed: a stage of {list(STAGE_ORDER[1:])} "
                             "with {\"environment\": name, \"account\": 12 digits}")
        servers[stage] = StageServer(environment=str(server["environment"]), account=str(server["account"]))
    return servers


def result_detail(*, plan: Mapping[str, Any], environment: str, outcome: str, health_check: str, reason: str,
                  deployed_at: str) -> dict[str, Any]:
    """The detail a deployer reports for one deployment (or failed attempt) of a promoted version."""
    request = plan["request"]
    return {
        "model_package_group": str(request.get("model_package_group") or ""),
        "model_package_arn": str(request["model_package_arn"]),
        "version": int(request["version"]),
        "stage": str(request["target_stage"]),
        "outcome": outcome,
        "health_check": health_check,
        "reason": f"{request.get('reason', '')}: {reason}"[:_DESCRIPTION_LIMIT],
        "requested_by": str(request.get("requested_by") or "deployer"),
        "environment": environment,
        "endpoint_name": str(plan.get("endpoint_name") or ""),
        "changed_variants": list(plan.get("changed_variants") or []),
        "deployed_at": deployed_at,
    }


def emit_result(events_client: Any, event_bus_name: str, detail: Mapping[str, Any]) -> None:
    """PutEvents reports per-entry failures in its answer: raise, so the task fails and Step Functions retries."""
    answer = events_client.put_events(Entries=[{
        "Source": RESULT_SOURCE, "DetailType": RESULT_DETAIL_TYPE, "EventBusName": event_bus_name,
        "Detail": json.dumps(dict(detail), sort_keys=True), "Resources": [str(detail["model_package_arn"])]}])
    if answer.get("FailedEntryCount", 0):
        failures = [entry for entry in answer.get("Entries", []) if entry.get("ErrorCode")]
        raise RuntimeError(f"PutEvents to {event_bus_name} failed: {failures}")


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
        reason=str(detail.get("reason", ""))[:_DESCRIPTION_LIMIT],
        actor=str(detail.get("requested_by") or "deployer"))
    newest = ledger.record_deployment(deployment)
    stage_now = (description.get("ModelLifeCycle") or {}).get("Stage")
    marked = newest and stage_now == result.stage
    if marked:
        status = STATUS_DEPLOYED if deployment.outcome == DEPLOYED else STATUS_DEPLOY_FAILED
        text = (f"{detail.get('endpoint_name', '')} ({', '.join(detail.get('changed_variants') or [])}): "
                f"{deployment.reason}")[:_DESCRIPTION_LIMIT]
        # Only ModelLifeCycle: UpdateModelPackage leaves every field that is not in the request unchanged.
        sagemaker_client.update_model_package(
            ModelPackageArn=arn, ModelLifeCycle={"Stage": result.stage, "StageStatus": status,
                                                 "StageDescription": text})
    why = "" if marked else (" (older than the evidence already recorded)" if not newest
                             else f" (the version is now in {stage_now}; its status there is left alone)")
    return {"outcome": "recorded", "version": deployment.version, "stage": result.stage,
            "deployment_outcome": deployment.outcome, "health_check": deployment.health_check,
            "stage_status_updated": marked, "reason": f"{result.stage} result from {detail['environment']}{why}"}


__all__ = ["RESULT_DETAIL_TYPE", "RESULT_SOURCE", "DeploymentResult", "StageServer", "emit_result",
           "parse_result", "parse_servers", "record_result", "result_detail"]
