"""The promotion gate's rules as one pure function: (restore point, current registry state) → decision.

The gate never trusts the event that woke it: it compares the package's *current* registry state with the
restore point the ledger holds (the last state the gate accepted). A difference is a change to judge; no
difference is a duplicate or stale event and a no-op. That one comparison is what makes duplicate and
out-of-order events harmless.

Rules (docs/PROMOTION.md explains them to approvers):
* Staging only from Development, with ModelApprovalStatus Approved and the quality gate passed.
* Production only from Staging, with ModelApprovalStatus Approved, for a package the ledger records as
  deployed to staging with a passed health check.
* A Rejected package stays where it is: any later change to it is reverted (register a new version).
* Moving back down (e.g. Staging → Development), rejecting, un-approving and stage-status updates by the
  deployers are legal and recorded; they deploy nothing.
* Anything else (a skipped stage, an unknown stage, a promotion without approval) is reverted to the
  restore point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from mlplatform.registry.deployment_ledger import (
    ACCEPTED,
    APPROVED,
    HEALTH_PASSED,
    RECORDED,
    REVERTED,
    STAGE_ORDER,
    PackageRecord,
)
from mlsettings.vocabulary import DEVELOPMENT, PRODUCTION, QUALITY_GATE_PASSED, REJECTED, STAGING

NO_CHANGE = "no_change"

QUALITY_GATE_KEY = QUALITY_GATE_PASSED


@dataclass(frozen=True, kw_only=True)
class RegistryState:
    """What DescribeModelPackage says about the package right now."""

    version: int
    model_package_arn: str
    stage: str | None
    stage_status: str | None
    approval_status: str
    customer_metadata: Mapping[str, str]
    actor: str
    model_data_url: str = ""
    image: str = ""

    @property
    def quality_gate_passed(self) -> bool:
        return self.customer_metadata.get(QUALITY_GATE_KEY, "").strip().lower() == "true"

    def quality_summary(self) -> str:
        metric = self.customer_metadata.get("quality_metric", "?")
        value = self.customer_metadata.get("quality_value", "?")
        threshold = self.customer_metadata.get("quality_threshold", "?")
        return f"{metric}={value} (threshold {threshold})"


@dataclass(frozen=True, kw_only=True)
class Decision:
    outcome: str  # ACCEPTED | REVERTED | RECORDED | NO_CHANGE
    from_stage: str
    to_stage: str
    reason: str

    @property
    def emits_promotion(self) -> bool:
        return self.outcome == ACCEPTED

    @property
    def reverts(self) -> bool:
        return self.outcome == REVERTED


def _rank(stage: str) -> int:
    return STAGE_ORDER.index(stage)


def decide(restore_point: PackageRecord, current: RegistryState) -> Decision:
    """Judge the difference between the ledger's restore point and the registry's current state."""
    from_stage = restore_point.stage
    to_stage = current.stage or "(none)"
    label = f"v{current.version} {from_stage}→{to_stage}"

    def outcome(kind: str, reason: str) -> Decision:
        return Decision(outcome=kind, from_stage=from_stage, to_stage=to_stage, reason=reason)

    unchanged = (
        current.stage == restore_point.stage
        and current.approval_status == restore_point.approval_status
        and (current.stage_status or "") == restore_point.stage_status
    )
    if unchanged:
        return outcome(NO_CHANGE, f"{label}: registry already matches the ledger (duplicate or stale event)")

    if restore_point.approval_status == REJECTED:
        return outcome(
            REVERTED,
            f"{label}: v{current.version} was Rejected; a rejected package cannot change stage or approval "
            "(register a new version instead)",
        )

    if current.stage not in STAGE_ORDER:
        return outcome(
            REVERTED, f"{label}: unknown stage {current.stage!r}; allowed stages: {', '.join(STAGE_ORDER)}"
        )

    if current.stage == from_stage or _rank(current.stage) < _rank(from_stage):
        # Same stage (approval/status change) or a move back down: legal, nothing to deploy.
        what = (
            f"approval {restore_point.approval_status}→{current.approval_status}, "
            f"stage status {restore_point.stage_status}→{current.stage_status}"
            if current.stage == from_stage
            else "moved back down"
        )
        return outcome(RECORDED, f"{label}: {what}")

    # A promotion: exactly one step up, approved, with the evidence the target stage needs.
    if _rank(current.stage) - _rank(from_stage) > 1:
        skipped = STAGE_ORDER[_rank(from_stage) + 1 : _rank(current.stage)]
        return outcome(
            REVERTED, f"{label}: skipped stage {', '.join(skipped)}; promote one stage at a time"
        )
    if current.approval_status != APPROVED:
        return outcome(
            REVERTED,
            f"{label}: promotion needs ModelApprovalStatus {APPROVED} (is {current.approval_status}); "
            "approve the package, then change its stage",
        )
    if current.stage == STAGING:
        if not current.quality_gate_passed:
            return outcome(
                REVERTED,
                f"{label}: the training quality gate did not pass ({QUALITY_GATE_KEY}="
                f"{current.customer_metadata.get(QUALITY_GATE_KEY, 'missing')!r}, "
                f"{current.quality_summary()})",
            )
        return outcome(ACCEPTED, f"{label}: quality gate passed, {current.quality_summary()}")
    # current.stage == PRODUCTION, from Staging
    if not restore_point.staging_deployed:
        return outcome(
            REVERTED,
            f"{label}: v{current.version} has no successful staging deployment in the ledger; "
            "wait for the staging deployer and its health check",
        )
    if restore_point.staging_health_check != HEALTH_PASSED:
        return outcome(
            REVERTED,
            f"{label}: the staging health check of v{current.version} is "
            f"{restore_point.staging_health_check or 'missing'!r}, not {HEALTH_PASSED!r}",
        )
    return outcome(ACCEPTED, f"{label}: deployed to staging and its health check passed")


def restore_point_after(
    decision: Decision, restore_point: PackageRecord, current: RegistryState
) -> PackageRecord:
    """The ledger's new restore point: the current state if the change stands, the old one if reverted."""
    redeployable = replace(
        restore_point,
        model_package_arn=current.model_package_arn or restore_point.model_package_arn,
        model_data_url=current.model_data_url or restore_point.model_data_url,
        image=current.image or restore_point.image,
    )
    if decision.outcome in (REVERTED, NO_CHANGE):
        return redeployable
    return replace(
        redeployable,
        stage=current.stage or DEVELOPMENT,
        stage_status=current.stage_status or "",
        approval_status=current.approval_status,
    )


__all__ = [
    "NO_CHANGE",
    "PRODUCTION",
    "QUALITY_GATE_KEY",
    "Decision",
    "RegistryState",
    "decide",
    "restore_point_after",
]
