"""The whole promotion story on moto: register → staging → production → a new version → an illegal skip
refused → rollback to the previous version; the ledger rows and SNS messages of each step are asserted.

Approvers act through `mlops promote` (the same registry update as Studio), SageMaker's events are the
ones the realistic registry patch records, the serving deployer is simulated by its two ledger writes
(deployment row + evidence) and its StageStatus update.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from mlops import cli
from mlplatform.registry.deployment_ledger import DEPLOYED, DeploymentLedger, DeploymentRecord
from mlsettings.vocabulary import PRODUCTION, STAGING
from tests.functional.promotion_testkit import (  # noqa: F401  (promotion_aws is a fixture)
    IMAGE,
    REGION,
    FakeLambdaContext,
    drain,
    load_gate_handler,
    promotion_aws,
    register_package,
)

# The kit's moto resources live in its REGION, not in the region cdk.json gives dev: hence --region.
GATE = "arn:aws:sts::123456789012:assumed-role/PromotionGate/gate"


def test_register_promote_supersede_refuse_and_roll_back(
    promotion_aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    registry, resources = promotion_aws
    gate = load_gate_handler(monkeypatch, resources)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("mlops.commands.registry_cmds",))
    sagemaker, sqs = boto3.client("sagemaker"), boto3.client("sqs")
    ledger = DeploymentLedger(boto3.client("dynamodb"), resources.ledger_table, resources.group)

    def settle() -> list[str]:
        outcomes = []
        while events := registry.take_events():
            with registry.acting_as(GATE):
                outcomes += [gate.handler(event, FakeLambdaContext())["outcome"] for event in events]
        return outcomes

    def promote(version: int, to: str) -> list[str]:
        assert cli.main(["promote", "--env", "dev", "--model", "breast-cancer", "--region", REGION, "--version",
                         str(version), "--to", to]) == 0
        return settle()

    def deployer(version: int, arn: str, stage: str) -> None:
        """The serving deployer after a healthy deployment (consumes the promotion event)."""
        ledger.record_deployment(DeploymentRecord(
            deployed_at=ledger.now(), version=version, stage=stage, outcome=DEPLOYED, health_check="passed",
            model_package_arn=arn, model_data_url=f"s3://models/v{version}/model.tar.gz", image=IMAGE,
            reason="promotion", actor="deployer",
        ))
        sagemaker.update_model_package(ModelPackageArn=arn,
                                       ModelLifeCycle={"Stage": stage, "StageStatus": "Deployed"})
        settle()

    def notices() -> list[tuple[str, str]]:
        return [(n["MessageAttributes"]["outcome"]["Value"], n["Subject"])
                for n in drain(sqs, resources.notices_queue_url)]

    def promotions() -> list[tuple[int, str, str]]:
        return [(e["detail"]["version"], e["detail"]["target_stage"], e["detail"]["reason"])
                for e in drain(sqs, resources.promotions_queue_url)]

    # 1. register v1 and take it through staging to production
    v1 = register_package(sagemaker, resources.group)
    assert settle() == ["recorded"]
    assert promote(1, "staging") == ["accepted"]
    deployer(1, v1, STAGING)
    assert promote(1, "production") == ["accepted"]
    deployer(1, v1, PRODUCTION)
    assert promotions() == [(1, "Staging", "promotion"), (1, "Production", "promotion")]
    assert [outcome for outcome, _ in notices()] == ["accepted", "accepted"]

    # 2. a new version follows the same path and supersedes v1
    v2 = register_package(sagemaker, resources.group, quality_value="0.98")
    settle()
    assert promote(2, "staging") == ["accepted"]
    deployer(2, v2, STAGING)
    assert promote(2, "production") == ["accepted"]
    deployer(2, v2, PRODUCTION)
    assert promotions() == [(2, "Staging", "promotion"), (2, "Production", "promotion")]
    notices()

    # 3. v3 tries to skip staging: refused, reverted, alerted
    v3 = register_package(sagemaker, resources.group)
    settle()
    assert promote(3, "production") == ["reverted", "no_change"]
    package = sagemaker.describe_model_package(ModelPackageName=v3)
    assert (package["ModelLifeCycle"]["Stage"], package["ModelApprovalStatus"]) == (
        "Development", "PendingManualApproval"
    )
    assert notices() == [("reverted", f"[mlops] {resources.group} v3 → Production: reverted")]
    assert promotions() == []

    # 4. roll production back to the previous version
    capsys.readouterr()
    assert cli.main(["rollback", "--env", "dev", "--model", "breast-cancer", "--region", REGION, "--to-version",
                     "3"]) == 2
    assert "allowed versions: 1 (current production: v2)" in capsys.readouterr().err
    assert cli.main(["rollback", "--env", "dev", "--model", "breast-cancer", "--region", REGION]) == 0
    assert promotions() == [(1, "Production", "rollback")]
    ledger.record_deployment(DeploymentRecord(
        deployed_at=ledger.now(), version=1, stage=PRODUCTION, outcome=DEPLOYED, health_check="passed",
        model_package_arn=v1, model_data_url="s3://models/v1/model.tar.gz", image=IMAGE, reason="rollback",
        actor="deployer",
    ))
    assert ledger.retained_production().current.version == 1  # type: ignore[union-attr]

    # The ledger tells the whole story, newest last.
    story = [(d.version, d.from_stage, d.to_stage, d.outcome) for d in ledger.decisions()
             if d.outcome != "recorded"]
    assert story == [
        (1, "Development", "Staging", "accepted"),
        (1, "Staging", "Production", "accepted"),
        (2, "Development", "Staging", "accepted"),
        (2, "Staging", "Production", "accepted"),
        (3, "Development", "Production", "reverted"),
        (1, "Production", "Production", "rollback_requested"),
    ]
    capsys.readouterr()
    assert cli.main(["status", "--env", "dev", "--model", "breast-cancer", "--region", REGION, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["serving"]["production"]["version"] == 1
    assert [r["version"] for r in report["serving"]["rollback_targets"]] == [2]
    assert report["recent_decisions"][0]["outcome"] == "rollback_requested"
    assert len(report["recent_decisions"]) == 10
