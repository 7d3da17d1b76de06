"""The gate's decision function: every rule, plus a property over all (restore point, state) pairs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlplatform.registry.deployment_ledger import ACCEPTED, APPROVED, PENDING, RECORDED, REVERTED, PackageRecord
from mlplatform.registry.gate_rules import NO_CHANGE, RegistryState, decide, restore_point_after
from mlsettings.vocabulary import DEVELOPMENT, PRODUCTION, REJECTED, STAGING

PASSED_METADATA = {
    "quality_gate_passed": "true",
    "quality_metric": "roc_auc",
    "quality_value": "0.97",
    "quality_threshold": "0.90",
}


def registered(**changes: object) -> PackageRecord:
    return replace(PackageRecord(version=7, model_package_arn="arn:mp/7"), **changes)  # type: ignore[arg-type]


def state(stage: str | None, approval: str = APPROVED, status: str = "Approved", **changes: object) -> RegistryState:
    base = RegistryState(
        version=7,
        model_package_arn="arn:mp/7",
        stage=stage,
        stage_status=status,
        approval_status=approval,
        customer_metadata=PASSED_METADATA,
        actor="arn:aws:sts::123456789012:assumed-role/Approver/bob",
        model_data_url="s3://models/7/model.tar.gz",
        image="xgboost:3.0-5",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


IN_STAGING = registered(stage=STAGING, stage_status="Approved", approval_status=APPROVED)
STAGING_HEALTHY = replace(IN_STAGING, staging_deployed=True, staging_health_check="passed")


def test_registration_state_is_no_change() -> None:
    assert decide(registered(), state(DEVELOPMENT, PENDING, "PendingApproval")).outcome == NO_CHANGE


def test_development_to_staging_with_quality_gate_passed_is_accepted() -> None:
    decision = decide(registered(), state(STAGING))
    assert (decision.outcome, decision.from_stage, decision.to_stage) == (ACCEPTED, DEVELOPMENT, STAGING)
    assert "roc_auc=0.97" in decision.reason
    assert decision.emits_promotion


@pytest.mark.parametrize("flag", ["false", "", "yes", None])
def test_staging_without_quality_gate_is_reverted(flag: str | None) -> None:
    metadata = {**PASSED_METADATA, "quality_gate_passed": flag} if flag is not None else {}
    decision = decide(registered(), state(STAGING, customer_metadata=metadata))
    assert decision.outcome == REVERTED
    assert "quality gate did not pass" in decision.reason


def test_promotion_without_approval_is_reverted() -> None:
    decision = decide(registered(), state(STAGING, approval=PENDING))
    assert decision.outcome == REVERTED
    assert "needs ModelApprovalStatus Approved" in decision.reason


def test_skipping_staging_is_reverted() -> None:
    decision = decide(registered(), state(PRODUCTION))
    assert decision.outcome == REVERTED
    assert "skipped stage Staging" in decision.reason
    assert decision.reverts


def test_production_without_staging_deployment_is_reverted() -> None:
    decision = decide(IN_STAGING, state(PRODUCTION))
    assert decision.outcome == REVERTED
    assert "no successful staging deployment" in decision.reason


def test_production_after_failed_staging_health_check_is_reverted() -> None:
    failed = replace(IN_STAGING, staging_deployed=True, staging_health_check="failed")
    decision = decide(failed, state(PRODUCTION))
    assert decision.outcome == REVERTED
    assert "'failed'" in decision.reason


def test_production_after_healthy_staging_is_accepted() -> None:
    decision = decide(STAGING_HEALTHY, state(PRODUCTION))
    assert (decision.outcome, decision.from_stage, decision.to_stage) == (ACCEPTED, STAGING, PRODUCTION)


@pytest.mark.parametrize("target", [STAGING, PRODUCTION, DEVELOPMENT])
def test_rejected_package_cannot_move(target: str) -> None:
    rejected = registered(approval_status=REJECTED)
    decision = decide(rejected, state(target, approval=APPROVED))
    assert decision.outcome == REVERTED
    assert "Rejected" in decision.reason


def test_rejecting_is_recorded_not_reverted() -> None:
    decision = decide(registered(), state(DEVELOPMENT, REJECTED, "PendingApproval"))
    assert decision.outcome == RECORDED


def test_moving_back_down_is_recorded() -> None:
    assert decide(IN_STAGING, state(DEVELOPMENT, PENDING, "PendingApproval")).outcome == RECORDED


def test_deployer_status_update_is_recorded() -> None:
    assert decide(IN_STAGING, state(STAGING, status="Deployed")).outcome == RECORDED


@pytest.mark.parametrize("stage", ["QA", None])
def test_unknown_or_missing_stage_is_reverted(stage: str | None) -> None:
    decision = decide(registered(), state(stage))
    assert decision.outcome == REVERTED
    assert "unknown stage" in decision.reason


def test_restore_point_follows_accepted_change_and_ignores_reverted_one() -> None:
    accepted = decide(registered(), state(STAGING))
    after = restore_point_after(accepted, registered(), state(STAGING))
    assert (after.stage, after.approval_status, after.model_data_url) == (
        STAGING, APPROVED, "s3://models/7/model.tar.gz"
    )
    reverted = decide(registered(), state(PRODUCTION))
    kept = restore_point_after(reverted, registered(), state(PRODUCTION))
    assert (kept.stage, kept.approval_status) == (DEVELOPMENT, PENDING)


STAGES = st.sampled_from([DEVELOPMENT, STAGING, PRODUCTION, "QA"])
APPROVALS = st.sampled_from([APPROVED, PENDING, REJECTED])
STATUSES = st.sampled_from(["PendingApproval", "Approved", "Deployed", "DeployFailed"])


@given(
    known_stage=st.sampled_from([DEVELOPMENT, STAGING, PRODUCTION]),
    known_approval=APPROVALS,
    known_status=STATUSES,
    deployed=st.booleans(),
    health=st.sampled_from(["", "passed", "failed"]),
    stage=STAGES,
    approval=APPROVALS,
    status=STATUSES,
    quality=st.sampled_from(["true", "false"]),
)
def test_only_healthy_staging_packages_are_accepted_into_production(
    known_stage: str, known_approval: str, known_status: str, deployed: bool, health: str,
    stage: str, approval: str, status: str, quality: str,
) -> None:
    restore = registered(stage=known_stage, approval_status=known_approval, stage_status=known_status,
                         staging_deployed=deployed, staging_health_check=health)
    current = state(stage, approval, status, customer_metadata={**PASSED_METADATA, "quality_gate_passed": quality})
    decision = decide(restore, current)
    after = restore_point_after(decision, restore, current)
    if after.stage == PRODUCTION and known_stage != PRODUCTION:
        assert known_stage == STAGING and deployed and health == "passed" and approval == APPROVED
        assert decision.outcome == ACCEPTED
    if after.stage == STAGING and known_stage == DEVELOPMENT:
        assert quality == "true" and approval == APPROVED
    if decision.outcome == REVERTED:
        assert (after.stage, after.approval_status, after.stage_status) == (
            known_stage, known_approval, known_status
        )
    if known_approval == REJECTED:
        assert decision.outcome in (REVERTED, NO_CHANGE)
