"""The promotion-gate handler against moto: registry (patched to real-AWS behaviour, see promotion_testkit),
ledger and idempotency tables, SNS (observed through SQS) and EventBridge (observed through a rule → SQS)."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest

from mlplatform.registry.deployment_ledger import DEPLOYED, FAILED, DeploymentLedger
from mlplatform.registry.deployment_results import RESULT_DETAIL_TYPE, result_detail
from mlsettings.vocabulary import RESULT_SOURCE, STAGING
from tests.functional.promotion_testkit import (  # noqa: F401  (promotion_aws is a fixture)
    ACCOUNT,
    IMAGE,
    REGION,
    FakeLambdaContext,
    PromotionResources,
    RealisticRegistry,
    drain,
    load_gate_handler,
    promotion_aws,
    register_package,
)

GATE = "arn:aws:sts::123456789012:assumed-role/PromotionGate/gate"
APPROVER = "arn:aws:sts::123456789012:assumed-role/Approver/bob"


class Harness:
    def __init__(self, registry: RealisticRegistry, resources: PromotionResources, gate: Any) -> None:
        self.registry, self.resources, self.gate = registry, resources, gate
        self.sagemaker = boto3.client("sagemaker")
        self.sqs = boto3.client("sqs")
        self.ledger = DeploymentLedger(boto3.client("dynamodb"), resources.ledger_table, resources.group)
        self.clock = 0

    def deliver(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.registry.acting_as(GATE):
            return [self.gate.handler(event, FakeLambdaContext()) for event in events]

    def settle(self) -> list[dict[str, Any]]:
        """Deliver pending events until the gate's own reverts produce no more."""
        results: list[dict[str, Any]] = []
        while events := self.registry.take_events():
            results += self.deliver(events)
        return results

    def move(self, arn: str, stage: str, approval: str = "Approved", status: str = "Approved") -> None:
        with self.registry.acting_as(APPROVER):
            self.sagemaker.update_model_package(
                ModelPackageArn=arn, ModelApprovalStatus=approval,
                ModelLifeCycle={"Stage": stage, "StageStatus": status, "StageDescription": "by bob"},
            )

    def result(self, version: int, arn: str, *, healthy: bool, deployed_at: str = "",
               environment: str = "staging", account: str = "123456789012", stage: str = STAGING,
               group: str = "") -> dict[str, Any]:
        """A staging deployer's "Model Deployment Result" (the deployer's own ``result_detail``) in the envelope
        EventBridge delivers it in (``account``: the sender's)."""
        self.clock += 1
        plan = {"endpoint_name": f"mlops-{environment}", "changed_variants": ["Champion"], "request": {
            "model_package_group": group or self.resources.group, "model_package_arn": arn, "version": version,
            "target_stage": stage, "reason": "promotion", "requested_by": APPROVER}}
        detail = result_detail(plan=plan, environment=environment, outcome=DEPLOYED if healthy else FAILED,
                               health_check="passed" if healthy else "failed", reason="test",
                               deployed_at=deployed_at or f"2026-12-01T00:00:{self.clock:02d}.000000Z")
        return {"version": "0", "id": f"result-{self.clock}", "source": RESULT_SOURCE,
                "detail-type": RESULT_DETAIL_TYPE, "account": account, "region": "eu-west-1",
                "time": "2026-12-01T00:00:00Z", "resources": [arn], "detail": detail}

    def staging_deployment(self, version: int, arn: str, *, healthy: bool) -> dict[str, Any]:
        """The staging deployer's result, recorded by the gate's function (ledger evidence + StageStatus)."""
        [answer] = self.deliver([self.result(version, arn, healthy=healthy)])
        return answer

    def describe(self, arn: str) -> dict[str, Any]:
        return dict(self.sagemaker.describe_model_package(ModelPackageName=arn))

    def notices(self) -> list[dict[str, Any]]:
        return [
            {"outcome": n["MessageAttributes"]["outcome"]["Value"], "subject": n["Subject"],
             **json.loads(n["Message"])}
            for n in drain(self.sqs, self.resources.notices_queue_url)
        ]

    def promotions(self) -> list[dict[str, Any]]:
        return [event["detail"] for event in drain(self.sqs, self.resources.promotions_queue_url)]


@pytest.fixture
def harness(promotion_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Harness:  # noqa: F811
    registry, resources = promotion_aws
    return Harness(registry, resources, load_gate_handler(monkeypatch, resources))


def registered(harness: Harness, **kwargs: Any) -> str:
    arn = register_package(harness.sagemaker, harness.resources.group, **kwargs)
    harness.settle()
    return arn


def test_registration_is_recorded_in_the_ledger(harness: Harness) -> None:
    arn = register_package(harness.sagemaker, harness.resources.group)
    [result] = harness.settle()
    assert result["outcome"] == "recorded"
    [decision] = harness.ledger.decisions()
    assert (decision.version, decision.outcome, decision.model_package_arn) == (1, "recorded", arn)
    assert decision.actor.endswith("/alice")  # who registered it (CreatedBy/LastModifiedBy)
    assert harness.notices() == [] and harness.promotions() == []


def test_package_registered_without_a_lifecycle_gets_one_quietly(harness: Harness) -> None:
    arn = harness.sagemaker.create_model_package(
        ModelPackageGroupName=harness.resources.group, ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://m/model.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        CustomerMetadataProperties={"quality_gate_passed": "true"},
    )["ModelPackageArn"]
    assert [r["outcome"] for r in harness.settle()] == ["recorded", "no_change"]
    package = harness.describe(arn)
    assert (package["ModelLifeCycle"]["Stage"], package["ModelLifeCycle"]["StageStatus"]) == (
        "Development", "PendingApproval"
    )
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert harness.notices() == []


def test_accepted_staging_promotion_emits_the_deployer_event_and_a_notice(harness: Harness) -> None:
    arn = registered(harness)
    harness.move(arn, STAGING)
    [result] = harness.settle()
    assert result["outcome"] == "accepted"
    assert harness.promotions() == [{
        "model": "breast-cancer", "model_package_group": harness.resources.group, "model_package_arn": arn,
        "version": 1,
        "target_stage": "Staging", "reason": "promotion", "requested_by": APPROVER,
    }]
    [notice] = harness.notices()
    assert (notice["outcome"], notice["to_stage"], notice["actor"]) == ("accepted", "Staging", APPROVER)
    record = harness.ledger.package(1)
    assert record is not None
    assert (record.stage, record.approval_status, record.image) == (STAGING, "Approved", IMAGE)
    assert harness.describe(arn)["ModelLifeCycle"]["Stage"] == STAGING


def test_skipped_stage_is_reverted_with_reason_alert_and_ledger_row(harness: Harness) -> None:
    arn = registered(harness)
    harness.move(arn, "Production")
    results = harness.settle()
    assert [r["outcome"] for r in results] == ["reverted", "no_change"]  # the revert's own event is a no-op
    package = harness.describe(arn)
    assert package["ModelLifeCycle"]["Stage"] == "Development"
    assert package["ModelLifeCycle"]["StageStatus"] == "PendingApproval"
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert "skipped stage Staging" in package["ModelLifeCycle"]["StageDescription"]
    assert "skipped stage Staging" in package["ApprovalDescription"]
    # Real UpdateModelPackage keeps what the request leaves out: the revert must not lose the metadata.
    assert package["CustomerMetadataProperties"]["quality_gate_passed"] == "true"
    [alert] = harness.notices()
    assert (alert["outcome"], alert["from_stage"], alert["to_stage"], alert["actor"]) == (
        "reverted", "Development", "Production", APPROVER
    )
    assert harness.promotions() == []
    last = harness.ledger.recent_decisions(1)[0]
    assert (last.outcome, last.from_stage, last.to_stage, last.resulting_stage) == (
        "reverted", "Development", "Production", "Development"
    )


def test_failed_quality_gate_blocks_staging(harness: Harness) -> None:
    arn = registered(harness, quality_passed=False, quality_value="0.71")
    harness.move(arn, STAGING)
    assert harness.settle()[0]["outcome"] == "reverted"
    assert "roc_auc=0.71" in harness.describe(arn)["ModelLifeCycle"]["StageDescription"]


def test_production_needs_a_healthy_staging_deployment(harness: Harness) -> None:
    arn = registered(harness)
    harness.move(arn, STAGING)
    harness.settle()
    harness.staging_deployment(1, arn, healthy=False)
    assert [r["outcome"] for r in harness.settle()] == ["recorded"]  # the deployer's StageStatus update
    harness.move(arn, "Production")
    assert harness.settle()[0]["outcome"] == "reverted"
    package = harness.describe(arn)
    assert (package["ModelLifeCycle"]["Stage"], package["ModelLifeCycle"]["StageStatus"]) == (
        STAGING, "DeployFailed"
    )
    harness.staging_deployment(1, arn, healthy=True)
    harness.settle()
    harness.move(arn, "Production")
    assert harness.settle()[0]["outcome"] == "accepted"
    assert [p["target_stage"] for p in harness.promotions()] == ["Staging", "Production"]


def test_rejected_package_cannot_be_promoted(harness: Harness) -> None:
    arn = registered(harness)
    harness.move(arn, "Development", approval="Rejected", status="PendingApproval")
    assert harness.settle()[0]["outcome"] == "recorded"
    harness.move(arn, STAGING)
    assert harness.settle()[0]["outcome"] == "reverted"
    package = harness.describe(arn)
    assert (package["ModelApprovalStatus"], package["ModelLifeCycle"]["Stage"]) == ("Rejected", "Development")


def test_duplicate_deliveries_are_no_ops(harness: Harness) -> None:
    arn = registered(harness)
    harness.move(arn, STAGING)
    [event] = harness.registry.take_events()
    redelivered = {**event, "id": "a-second-event-for-the-same-change"}
    results = harness.deliver([event, event, redelivered])
    assert results[0]["outcome"] == "accepted"
    assert results[1] == results[0] == results[2]  # Powertools idempotency returns the stored answer
    assert len(harness.promotions()) == 1
    assert len(harness.notices()) == 1
    assert [d.outcome for d in harness.ledger.decisions()] == ["recorded", "accepted"]


def test_out_of_order_events_are_judged_on_the_current_state(harness: Harness) -> None:
    arn = registered(harness)
    harness.move(arn, STAGING)
    staging_event = harness.registry.take_events()
    harness.move(arn, "Development", approval="PendingManualApproval", status="PendingApproval")
    back_event = harness.registry.take_events()
    # The newer event first: the gate sees the package back in Development, matching the ledger.
    assert harness.deliver(back_event)[0]["outcome"] == "no_change"
    # The stale "moved to Staging" event arrives late: the package is not in Staging, so nothing happens.
    assert harness.deliver(staging_event)[0]["outcome"] == "no_change"
    assert harness.promotions() == []


def test_malformed_and_foreign_events_are_logged_and_answered(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # The function's Powertools logger is process-wide: whoever configured it first (the demo runs it at
    # ERROR) keeps its level, so this test sets the level it reads at (caplog restores it afterwards).
    caplog.set_level(logging.INFO, logger="promotion_gate")
    foreign = {"version": "0", "id": "1", "source": "aws.ec2", "detail-type": "EC2 Instance State-change",
               "detail": {}}
    broken = {"version": "0", "id": "2", "source": "aws.sagemaker",
              "detail-type": "SageMaker Model Package State Change", "account": "123456789012",
              "time": "2024-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
              "detail": {"ModelPackageGroupName": harness.resources.group, "CreationTime": "soon"}}
    results = harness.deliver([foreign, broken])
    assert [r["outcome"] for r in results] == ["rejected", "rejected"]
    assert "foreign event" in results[0]["reason"]
    assert "CreationTime" in results[1]["reason"] and "ModelPackageVersion" in results[1]["reason"]
    rejected = [record for record in caplog.records if record.getMessage() == "event rejected"]
    assert [record.event_id for record in rejected] == ["1", "2"]  # type: ignore[attr-defined]
    assert "foreign event" in rejected[0].reason  # type: ignore[attr-defined]
    assert harness.ledger.decisions() == []


def test_event_for_a_deleted_package_is_ignored(harness: Harness) -> None:
    arn = register_package(harness.sagemaker, harness.resources.group)
    [event] = harness.registry.take_events()
    # moto 5.2.5 has no DeleteModelPackage: drop the package from its backend, as a deletion would.
    from moto.sagemaker.models import sagemaker_backends

    del sagemaker_backends[ACCOUNT][REGION].model_packages[arn]
    assert harness.deliver([event])[0]["outcome"] == "ignored"


def test_concurrent_ledger_change_raises_for_retry(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the ledger moved between read and write (another invocation won), the invocation fails and the
    retry judges again; nothing is emitted twice for a revert and nothing is lost."""
    from mlplatform.registry import deployment_ledger

    arn = registered(harness)
    harness.move(arn, "Production")
    [event] = harness.registry.take_events()
    real_package = deployment_ledger.DeploymentLedger.package

    def stale_read(self: Any, version: int) -> Any:
        record = real_package(self, version)
        return record and deployment_ledger.PackageRecord(**{**record.__dict__, "revision": record.revision - 1})

    monkeypatch.setattr(deployment_ledger.DeploymentLedger, "package", stale_read)
    with pytest.raises(deployment_ledger.LedgerConflict):
        harness.deliver([event])
    monkeypatch.setattr(deployment_ledger.DeploymentLedger, "package", real_package)
    assert harness.deliver([event])[0]["outcome"] == "reverted"  # the failed attempt was not remembered


# ------------------------------------------------------------------------------------------ deployment results
def test_a_result_is_recorded_as_evidence_and_stage_status(harness: Harness) -> None:
    arn = registered(harness)
    harness.move(arn, STAGING)
    harness.settle()
    answer = harness.staging_deployment(1, arn, healthy=True)
    assert (answer["outcome"], answer["stage_status_updated"]) == ("recorded", True)
    record = harness.ledger.package(1)
    assert record is not None and (record.staging_deployed, record.staging_health_check) == (True, "passed")
    assert harness.describe(arn)["ModelLifeCycle"]["StageStatus"] == "Deployed"
    assert [d.outcome for d in harness.ledger.deployments(STAGING)] == [DEPLOYED]


def test_an_older_pass_delivered_after_a_newer_failure_does_not_count(harness: Harness) -> None:
    arn = registered(harness)
    harness.move(arn, STAGING)
    harness.settle()
    older_pass = harness.result(1, arn, healthy=True, deployed_at="2026-12-01T10:00:00.000000Z")
    newer_failure = harness.result(1, arn, healthy=False, deployed_at="2026-12-01T11:00:00.000000Z")
    harness.deliver([newer_failure, older_pass, older_pass])  # late, then twice
    record = harness.ledger.package(1)
    assert record is not None and record.staging_health_check == "failed"
    assert harness.describe(arn)["ModelLifeCycle"]["StageStatus"] == "DeployFailed"
    assert len(harness.ledger.deployments(STAGING)) == 2  # both kept as history, the duplicate once
    harness.settle()
    harness.move(arn, "Production")
    assert harness.settle()[0]["outcome"] == "reverted"


@pytest.mark.parametrize(("patch", "reason"), [
    ({"environment": "prod"}, "a Staging result from environment 'prod' in account 123456789012; only 'staging'"),
    ({"account": "444455556666"}, "from environment 'staging' in account 444455556666; only 'staging' in account"),
    ({"group": "someone-elses-models"}, "model package group 'someone-elses-models' is not one of this registry's"),
    ({"stage": "Development"}, "stage 'Development' has no deployer in this registry"),
])
def test_results_from_anywhere_but_the_stages_deployer_are_rejected(harness: Harness, patch: dict[str, Any],
                                                                   reason: str) -> None:
    arn = registered(harness)
    harness.move(arn, STAGING)
    harness.settle()
    [answer] = harness.deliver([harness.result(1, arn, healthy=True, **patch)])
    assert answer["outcome"] == "rejected" and reason in answer["reason"]
    record = harness.ledger.package(1)
    assert record is not None and not record.staging_deployed


def test_a_malformed_result_is_rejected_with_what_is_wrong(harness: Harness) -> None:
    arn = registered(harness)
    event = harness.result(1, arn, healthy=True)
    event["detail"]["version"] = "one"
    del event["detail"]["deployed_at"]
    [answer] = harness.deliver([event])
    assert answer["outcome"] == "rejected"
    assert "deployed_at is None" in answer["reason"] and "version is 'one'" in answer["reason"]


def test_a_late_staging_result_leaves_a_production_version_alone(harness: Harness) -> None:
    arn = registered(harness)
    harness.move(arn, STAGING)
    harness.settle()
    harness.staging_deployment(1, arn, healthy=True)
    harness.settle()
    harness.move(arn, "Production")
    assert harness.settle()[0]["outcome"] == "accepted"
    answer = harness.staging_deployment(1, arn, healthy=False)  # a staging redeploy's result, arriving now
    assert answer["stage_status_updated"] is False and "now in Production" in answer["reason"]
    assert harness.describe(arn)["ModelLifeCycle"]["Stage"] == "Production"
