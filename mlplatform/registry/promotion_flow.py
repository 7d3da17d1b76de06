"""One gate invocation: read the current state, judge it against the ledger, act, record.

Order of effects, chosen so that a crash at any point is repaired by the retry (Lambda async retries and
the EventBridge target's retry policy re-run the whole invocation; Powertools idempotency forgets a failed
attempt):
* accepted: emit the promotion event, then commit the ledger. A crash in between re-emits on retry
  (at-least-once; the deployer treats a repeated version/stage as a no-op), never loses the event.
* reverted: commit the ledger (the decision and the unchanged restore point), then revert the registry,
  then alert. A crash after the commit leaves the registry still changed; the retry sees the same
  difference and reverts again (one more, identical decision row).
* recorded: commit the ledger.
The ledger commit is conditional on the package record's revision: a concurrent invocation that judged
the same package first makes this one fail with LedgerConflict and be retried against the new state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mlplatform.registry import registry_actions
from mlplatform.registry.deployment_ledger import PENDING, RECORDED, DecisionRecord, DeploymentLedger, PackageRecord
from mlplatform.registry.gate_rules import NO_CHANGE, Decision, RegistryState, decide, restore_point_after


@dataclass(frozen=True, kw_only=True)
class GateSettings:
    """One judgement's settings: the group (and model) of the event, the environment's shared resources."""

    model_package_group: str
    model: str
    ledger_table: str
    promotion_topic_arn: str
    event_bus_name: str


@dataclass(frozen=True, kw_only=True)
class GateClients:
    sagemaker: Any
    dynamodb: Any
    sns: Any
    events: Any


@dataclass(frozen=True, kw_only=True)
class ChangeToJudge:
    """What the gate takes from an event: which package, and hints for the ledger row."""

    model_package_arn: str
    version: int
    event_id: str = ""
    actor_hint: str = ""


def judge_change(change: ChangeToJudge, *, settings: GateSettings, clients: GateClients) -> dict[str, Any]:
    """Judge the package's current state; returns a JSON-serialisable summary (also the idempotent result)."""
    current = registry_actions.describe_package(clients.sagemaker, change.model_package_arn)
    if current is None:
        return {"outcome": "ignored", "version": change.version, "reason": "model package no longer exists"}
    ledger = DeploymentLedger(clients.dynamodb, settings.ledger_table, settings.model_package_group)
    known = ledger.package(current.version)
    restore_point = known or PackageRecord(
        version=current.version, model_package_arn=current.model_package_arn
    )
    if known is None and current.stage is None and current.approval_status == PENDING:
        # Registered without a lifecycle (e.g. a RegisterModel step that cannot set it): give it the
        # registration stage quietly instead of "reverting" an unknown stage with an alert.
        registry_actions.initialise_life_cycle(clients.sagemaker, current.model_package_arn, restore_point)
        current = replace(current, stage=restore_point.stage, stage_status=restore_point.stage_status)
    decision = decide(restore_point, current)
    if decision.outcome == NO_CHANGE:
        if known is not None:
            return _summary(decision, current)
        # First sight of a package still in its registration state: record it so the ledger explains it.
        decision = Decision(
            outcome=RECORDED, from_stage=decision.from_stage, to_stage=decision.to_stage,
            reason=f"v{current.version} registered ({current.quality_summary()})",
        )
    actor = current.actor or change.actor_hint or "unknown"
    new_restore_point = restore_point_after(decision, restore_point, current)
    record = DecisionRecord(
        decided_at=ledger.now(),
        actor=actor,
        version=current.version,
        model_package_arn=current.model_package_arn,
        from_stage=decision.from_stage,
        to_stage=decision.to_stage,
        outcome=decision.outcome,
        reason=decision.reason,
        resulting_stage=new_restore_point.stage,
        resulting_approval_status=new_restore_point.approval_status,
        event_id=change.event_id,
    )
    notice = {
        "model_package_group": settings.model_package_group,
        "version": current.version,
        "model_package_arn": current.model_package_arn,
        "from_stage": decision.from_stage,
        "to_stage": decision.to_stage,
        "outcome": decision.outcome,
        "reason": decision.reason,
        "actor": actor,
        "decided_at": record.decided_at,
    }
    if decision.emits_promotion:
        registry_actions.emit_promotion(
            clients.events,
            settings.event_bus_name,
            registry_actions.promotion_detail(
                group=settings.model_package_group,
                model=settings.model,
                model_package_arn=current.model_package_arn,
                version=current.version,
                target_stage=decision.to_stage,
                reason=registry_actions.PROMOTION,
                requested_by=actor,
            ),
        )
    ledger.record_decision(record, new_restore_point, expected_revision=restore_point.revision)
    if decision.reverts:
        registry_actions.revert_package(
            clients.sagemaker, current.model_package_arn, restore_point, decision.reason
        )
    if decision.emits_promotion or decision.reverts:
        registry_actions.publish_notice(
            clients.sns,
            settings.promotion_topic_arn,
            outcome=decision.outcome,
            group=settings.model_package_group,
            version=current.version,
            to_stage=decision.to_stage,
            body=notice,
        )
    return _summary(decision, current)


def _summary(decision: Decision, current: RegistryState) -> dict[str, Any]:
    return {
        "outcome": decision.outcome,
        "version": current.version,
        "from_stage": decision.from_stage,
        "to_stage": decision.to_stage,
        "reason": decision.reason,
    }
