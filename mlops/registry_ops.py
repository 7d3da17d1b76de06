"""What `mlops status`, `mlops promote` and `mlops rollback` do, as functions over boto3 clients.

* promote: the same UpdateModelPackage an approver makes in Studio (ModelLifeCycle + ModelApprovalStatus).
  It only *requests*: the promotion gate judges the change like any other and may revert it.
* rollback: asks the serving deployer to redeploy one of the two production versions before the current
  one (the same "Model Promotion Accepted" event a promotion emits, with reason "rollback") and records
  the request in the ledger. The deployer's normal safe deployment does the work and records it.
* status: per stage which versions are where (registry), what serves where (ledger), what waits for an
  approver, and the last ten decisions.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mlops.errors import OperatorError
from mlplatform.registry.deployment_ledger import (
    APPROVED,
    DEPLOYED,
    HEALTH_PASSED,
    PENDING,
    ROLLBACK_REQUESTED,
    STAGE_ORDER,
    STATUS_APPROVED,
    DecisionRecord,
    DeploymentLedger,
)
from mlplatform.registry.gate_rules import RegistryState
from mlplatform.registry.registry_actions import (
    ROLLBACK,
    describe_package,
    emit_promotion,
    promotion_detail,
)
from mlsettings.vocabulary import DEVELOPMENT, PRODUCTION, STAGING

TARGET_STAGES = {"staging": STAGING, "production": PRODUCTION}
STATUS_PACKAGE_LIMIT = 50  # newest versions described for `status`; older ones are history, not state


def package_versions(sagemaker_client: Any, group: str) -> dict[int, str]:
    """Version → ARN for every package in the group (ListModelPackages pages, no Describe calls)."""
    versions: dict[int, str] = {}
    paginator = sagemaker_client.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group, ModelPackageType="Versioned"):
        for summary in page["ModelPackageSummaryList"]:
            versions[int(summary["ModelPackageVersion"])] = str(summary["ModelPackageArn"])
    return versions


def find_package(sagemaker_client: Any, group: str, version: int) -> RegistryState:
    versions = package_versions(sagemaker_client, group)
    if version not in versions:
        known = ", ".join(str(v) for v in sorted(versions)) or "none"
        raise OperatorError(f"model package group {group!r} has no version {version} (versions: {known})")
    state = describe_package(sagemaker_client, versions[version])
    if state is None:
        raise OperatorError(f"{group} v{version} was deleted while it was being read")
    return state


def request_promotion(
    sagemaker_client: Any, *, group: str, version: int, target: str, requested_by: str, note: str = ""
) -> dict[str, Any]:
    """Set stage + approval exactly as an approver does in Studio; the gate decides asynchronously."""
    if target not in TARGET_STAGES:
        raise OperatorError(f"--to must be one of {sorted(TARGET_STAGES)}, not {target!r}")
    stage = TARGET_STAGES[target]
    package = find_package(sagemaker_client, group, version)
    description = f"requested by {requested_by} via mlops promote" + (f": {note}" if note else "")
    sagemaker_client.update_model_package(
        ModelPackageArn=package.model_package_arn,
        ModelApprovalStatus=APPROVED,
        ApprovalDescription=description[:1024],
        ModelLifeCycle={
            "Stage": stage,
            "StageStatus": STATUS_APPROVED,
            "StageDescription": description[:1024],
        },
    )
    return {
        "model_package_group": group,
        "version": version,
        "model_package_arn": package.model_package_arn,
        "requested_stage": stage,
        "previous_stage": package.stage,
        "note": "the promotion gate judges this change; see `mlops status` for its decision",
    }


def request_rollback(
    events_client: Any,
    ledger: DeploymentLedger,
    *,
    group: str,
    model: str,
    event_bus_name: str,
    requested_by: str,
    to_version: int | None = None,
) -> dict[str, Any]:
    retained = ledger.retained_production()
    if retained.current is None:
        raise OperatorError(f"{group} has no production deployment in the ledger; nothing to roll back from")
    allowed = retained.rollback_versions
    if not allowed:
        raise OperatorError(
            f"{group} has only one production version (v{retained.current.version}); nothing to roll back to"
        )
    target_version = allowed[0] if to_version is None else to_version
    if target_version not in allowed:
        raise OperatorError(
            f"v{target_version} is not a rollback target; allowed versions: "
            f"{', '.join(str(v) for v in allowed)} (current production: v{retained.current.version})"
        )
    target = next(record for record in retained.previous if record.version == target_version)
    detail = promotion_detail(
        group=group,
        model=model,
        model_package_arn=target.model_package_arn,
        version=target.version,
        target_stage=PRODUCTION,
        reason=ROLLBACK,
        requested_by=requested_by,
    )
    emit_promotion(events_client, event_bus_name, detail)
    ledger.append_decision(
        DecisionRecord(
            decided_at=ledger.now(),
            actor=requested_by,
            version=target.version,
            model_package_arn=target.model_package_arn,
            from_stage=PRODUCTION,
            to_stage=PRODUCTION,
            outcome=ROLLBACK_REQUESTED,
            reason=f"rollback from v{retained.current.version} to v{target.version} requested",
            resulting_stage=PRODUCTION,
            resulting_approval_status=APPROVED,
        )
    )
    return {**detail, "from_version": retained.current.version, "model_data_url": target.model_data_url,
            "image": target.image}


def status_report(sagemaker_client: Any, ledger: DeploymentLedger, *, group: str) -> dict[str, Any]:
    versions = package_versions(sagemaker_client, group)
    newest = sorted(versions, reverse=True)[:STATUS_PACKAGE_LIMIT]
    states = [state for v in newest if (state := describe_package(sagemaker_client, versions[v])) is not None]
    records = {record.version: record for record in ledger.packages()}
    stages: dict[str, list[dict[str, Any]]] = {stage: [] for stage in STAGE_ORDER}
    awaiting: list[dict[str, Any]] = []
    for state in states:
        entry = {
            "version": state.version,
            "stage_status": state.stage_status,
            "approval_status": state.approval_status,
        }
        stages.setdefault(state.stage or "(none)", []).append(entry)
        record = records.get(state.version)
        if state.stage == DEVELOPMENT and state.approval_status == PENDING:
            awaiting.append({
                "version": state.version,
                "next_stage": STAGING,
                "ready": state.quality_gate_passed,
                "why": f"quality gate {'passed' if state.quality_gate_passed else 'NOT passed'}: "
                       f"{state.quality_summary()}",
            })
        elif state.stage == STAGING and record is not None and record.stage == STAGING:
            healthy = record.staging_deployed and record.staging_health_check == HEALTH_PASSED
            awaiting.append({
                "version": state.version,
                "next_stage": PRODUCTION,
                "ready": healthy,
                "why": "staging deployment healthy" if healthy
                       else f"staging health check: {record.staging_health_check or 'not yet deployed'}",
            })
    staging = next((d for d in ledger.deployments(STAGING) if d.outcome == DEPLOYED), None)
    retained = ledger.retained_production()
    return {
        "model_package_group": group,
        "stages": stages,
        "serving": {
            "staging": asdict(staging) if staging else None,
            "production": asdict(retained.current) if retained.current else None,
            "rollback_targets": [asdict(record) for record in retained.previous],
        },
        "awaiting_approval": awaiting,
        "recent_decisions": [asdict(decision) for decision in ledger.recent_decisions(10)],
    }


def format_status(report: dict[str, Any]) -> str:
    """Aligned text for people; `--json` prints the report itself."""
    lines = [f"model package group: {report['model_package_group']}", "", "registry stages:"]
    for stage, entries in report["stages"].items():
        listed = ", ".join(f"v{e['version']} ({e['stage_status']}, {e['approval_status']})" for e in entries)
        lines.append(f"  {stage:<12} {listed or '-'}")
    serving = report["serving"]
    lines += ["", "serving (ledger):"]
    staging, production = serving["staging"], serving["production"]
    lines.append(f"  {STAGING:<12} " + (f"v{staging['version']} since {staging['deployed_at']}" if staging
                                          else "-"))
    lines.append(f"  {PRODUCTION:<12} " + (f"v{production['version']} since {production['deployed_at']}"
                                             if production else "-"))
    targets = ", ".join(f"v{r['version']}" for r in serving["rollback_targets"]) or "-"
    lines.append(f"  {'rollback to':<12} {targets}")
    lines += ["", "waiting for approval:"]
    for item in report["awaiting_approval"] or [{"version": None}]:
        if item["version"] is None:
            lines.append("  -")
            continue
        ready = "ready" if item["ready"] else "not ready"
        lines.append(f"  v{item['version']:<4} → {item['next_stage']:<11} {ready:<10} {item['why']}")
    lines += ["", "last decisions:"]
    for decision in report["recent_decisions"] or [None]:
        if decision is None:
            lines.append("  -")
            continue
        lines.append(
            f"  {decision['decided_at']}  v{decision['version']:<4} {decision['from_stage']:>11} → "
            f"{decision['to_stage']:<11} {decision['outcome']:<18} {decision['actor']}: {decision['reason']}"
        )
    return "\n".join(lines)
