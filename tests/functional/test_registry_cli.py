"""`mlops status | promote | rollback` against moto, through `mlops.cli.main`."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from mlops import cli
from mlplatform.registry.deployment_ledger import DEPLOYED, DeploymentLedger, DeploymentRecord
from mlsettings.vocabulary import PRODUCTION
from tests.functional.promotion_testkit import (  # noqa: F401  (promotion_aws is a fixture)
    IMAGE,
    REGION,
    drain,
    promotion_aws,
    register_package,
)


@pytest.fixture
def mlops(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("mlops.commands.registry_cmds",))

    def run(*argv: str) -> int:
        # The kit's moto resources live in its REGION, not in the region cdk.json gives dev; --region is how an
        # operator reaches them (tests/functional/test_cli_aws_session.py covers the cdk.json default).
        return cli.main([*argv, "--region", REGION, "--model", "breast-cancer"])

    return run


def deployed_to_production(ledger: DeploymentLedger, version: int, arn: str, reason: str = "promotion") -> None:
    ledger.record_deployment(DeploymentRecord(
        deployed_at=ledger.now(), version=version, stage=PRODUCTION, outcome=DEPLOYED, health_check="passed",
        model_package_arn=arn, model_data_url=f"s3://models/v{version}/model.tar.gz", image=IMAGE,
        reason=reason, actor="deployer",
    ))


@pytest.fixture
def world(promotion_aws: Any) -> dict[str, Any]:  # noqa: F811
    _, resources = promotion_aws
    sagemaker = boto3.client("sagemaker")
    arns = [register_package(sagemaker, resources.group) for _ in range(4)]
    ledger = DeploymentLedger(boto3.client("dynamodb"), resources.ledger_table, resources.group)
    return {"resources": resources, "sagemaker": sagemaker, "arns": arns, "ledger": ledger}


def test_promote_makes_the_studio_update(world: dict[str, Any], mlops: Any, capsys: Any) -> None:
    assert mlops("promote", "--env", "dev", "--version", "2", "--to", "staging", "--note", "ticket 42") == 0
    package = world["sagemaker"].describe_model_package(ModelPackageName=world["arns"][1])
    assert package["ModelApprovalStatus"] == "Approved"
    assert (package["ModelLifeCycle"]["Stage"], package["ModelLifeCycle"]["StageStatus"]) == ("Staging", "Approved")
    assert "ticket 42" in package["ModelLifeCycle"]["StageDescription"]
    assert package["CustomerMetadataProperties"]["quality_gate_passed"] == "true"  # untouched
    assert "Development → Staging" in capsys.readouterr().out


def test_promote_unknown_version_names_the_known_ones(world: dict[str, Any], mlops: Any, capsys: Any) -> None:
    assert mlops("promote", "--env", "dev", "--version", "9", "--to", "production") == 2
    assert "has no version 9 (versions: 1, 2, 3, 4)" in capsys.readouterr().err


def test_rollback_refuses_versions_outside_the_retained_set(world: dict[str, Any], mlops: Any, capsys: Any) -> None:
    for version in (1, 2, 3, 4):
        deployed_to_production(world["ledger"], version, world["arns"][version - 1])
    assert mlops("rollback", "--env", "dev", "--to-version", "1") == 2
    error = capsys.readouterr().err
    assert "v1 is not a rollback target; allowed versions: 3, 2 (current production: v4)" in error
    assert drain(boto3.client("sqs"), world["resources"].promotions_queue_url) == []


def test_rollback_defaults_to_the_previous_version_and_records_it(
    world: dict[str, Any], mlops: Any, capsys: Any
) -> None:
    for version in (1, 2, 3):
        deployed_to_production(world["ledger"], version, world["arns"][version - 1])
    assert mlops("rollback", "--env", "dev", "--json") == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["version"], answer["from_version"], answer["reason"]) == (2, 3, "rollback")
    [event] = drain(boto3.client("sqs"), world["resources"].promotions_queue_url)
    assert event["source"] == "mlops.promotion" and event["detail-type"] == "Model Promotion Accepted"
    assert event["detail"] == {
        "model": "breast-cancer", "model_package_group": world["resources"].group,
        "model_package_arn": world["arns"][1], "version": 2,
        "target_stage": "Production", "reason": "rollback", "requested_by": answer["requested_by"],
    }
    [row] = world["ledger"].recent_decisions(1)
    assert (row.outcome, row.version, row.reason) == ("rollback_requested", 2, "rollback from v3 to v2 requested")


def test_rollback_without_history_is_refused(world: dict[str, Any], mlops: Any, capsys: Any) -> None:
    assert mlops("rollback", "--env", "dev") == 2
    assert "no production deployment" in capsys.readouterr().err
    deployed_to_production(world["ledger"], 1, world["arns"][0])
    assert mlops("rollback", "--env", "dev") == 2
    assert "only one production version (v1)" in capsys.readouterr().err


def test_retained_versions_are_protected_and_keep_redeploy_data(world: dict[str, Any]) -> None:
    ledger: DeploymentLedger = world["ledger"]
    for version in (1, 2, 3, 4, 2):  # v2 rolled back to at the end: counted once, as current
        deployed_to_production(ledger, version, world["arns"][version - 1])
    retained = ledger.retained_production()
    assert retained.current is not None and retained.current.version == 2
    assert retained.rollback_versions == (4, 3)
    protected = {p.version: p for p in ledger.packages() if p.protected}
    assert sorted(protected) == [2, 3, 4]
    assert protected[3].model_data_url == "s3://models/v3/model.tar.gz" and protected[3].image == IMAGE
    assert len(ledger.deployments(PRODUCTION)) == 5  # every production deployment is kept


def test_the_configured_number_of_production_versions_is_protected(world: dict[str, Any]) -> None:
    # registry.protected_production_versions: 4 keeps three rollback targets, not the default two.
    ledger = DeploymentLedger(boto3.client("dynamodb"), world["resources"].ledger_table, world["resources"].group,
                              protected_versions=4)
    for version in (1, 2, 3, 4):
        deployed_to_production(ledger, version, world["arns"][version - 1])
    assert ledger.retained_production().rollback_versions == (3, 2, 1)
    assert sorted(p.version for p in ledger.packages() if p.protected) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="at least 3"):
        DeploymentLedger(boto3.client("dynamodb"), "t", "g", protected_versions=2)


def test_status_reports_stages_waiting_approvals_and_decisions(
    world: dict[str, Any], mlops: Any, capsys: Any
) -> None:
    sagemaker = world["sagemaker"]
    sagemaker.update_model_package(
        ModelPackageArn=world["arns"][0], ModelApprovalStatus="Approved",
        ModelLifeCycle={"Stage": "Production", "StageStatus": "Deployed"},
    )
    deployed_to_production(world["ledger"], 1, world["arns"][0])
    assert mlops("status", "--env", "dev", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [entry["version"] for entry in report["stages"]["Production"]] == [1]
    assert [entry["version"] for entry in report["stages"]["Development"]] == [4, 3, 2]
    assert [item["version"] for item in report["awaiting_approval"]] == [4, 3, 2]
    assert all(item["next_stage"] == "Staging" and item["ready"] for item in report["awaiting_approval"])
    assert report["serving"]["production"]["version"] == 1
    assert report["serving"]["rollback_targets"] == []

    assert mlops("status", "--env", "dev") == 0
    text = capsys.readouterr().out
    assert "Production   v1 (Deployed, Approved)" in text
    assert "v4    → Staging     ready" in text


def test_missing_ssm_parameter_is_an_operator_error(promotion_aws: Any, mlops: Any, capsys: Any) -> None:  # noqa: F811
    import boto3

    boto3.client("ssm").delete_parameter(Name="/mlops/dev/ledger-table")
    assert mlops("status", "--env", "prod") == 2  # acts on prod's registry environment, dev
    assert "publishes no '/mlops/dev/ledger-table'" in capsys.readouterr().err
