"""Deployment results: what a serving environment's deployer reports (the event), and whom the registry
trusts for each stage. The recording is mlplatform/registry/result_recording.py (the gate's function only).

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

from mlplatform.registry.deployment_ledger import DEPLOYED, FAILED, HEALTH_FAILED, HEALTH_PASSED, STAGE_ORDER
from mlsettings.vocabulary import DEPLOYMENT_RESULT, RESULT_SOURCE

RESULT_DETAIL_TYPE = DEPLOYMENT_RESULT
HEALTH_NOT_RUN = "not_run"
OUTCOMES = (DEPLOYED, FAILED)
HEALTH_CHECKS = (HEALTH_PASSED, HEALTH_FAILED, HEALTH_NOT_RUN)
DESCRIPTION_LIMIT = 1024


@dataclass(frozen=True)
class StageServer:
    """The one environment that deploys a stage of this registry, and its account."""

    environment: str
    account: str


def parse_servers(raw: Mapping[str, Any]) -> dict[str, StageServer]:
    """``{"Staging": {"environment": "staging", "account": "222233334444"}, ...}`` (the gate's STAGE_SERVERS)."""
    if not isinstance(raw, Mapping):
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
        "reason": f"{request.get('reason', '')}: {reason}"[:DESCRIPTION_LIMIT],
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


__all__ = ["HEALTH_CHECKS", "OUTCOMES", "RESULT_DETAIL_TYPE", "RESULT_SOURCE", "StageServer", "emit_result",
           "parse_servers", "result_detail"]
