"""The deployer's pure decisions: event parsing, who serves what, requests, rollout status, golden answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambdas.deployer.settings import SettingsError, settings_from_environment
from mlplatform.registry.deployment_ledger import DeploymentRecord
from mlplatform.serving.deployment_plan import (
    DeploymentRefused,
    EndpointBusy,
    InvalidPromotion,
    PromotionRequest,
    assign_variants,
    deployment_config,
    parse_promotion,
    plan_deployment,
    rollout_seconds,
)
from mlplatform.serving.deployment_status import judge_endpoint
from mlplatform.serving.endpoint_state import EndpointState, VariantState
from mlplatform.serving.golden_check import GoldenCase, GoldenFormatError, check_answer, parse_golden
from mlsettings.instance_types import has_local_storage
from tests.functional.serving_testkit import deployer_environment, serving_settings

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-models/{}"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _settings(**serving: Any) -> Any:
    return settings_from_environment(deployer_environment(**serving))


def _request(version: int, *, stage: str = "Production", reason: str = "promotion",
             variant: str | None = None) -> PromotionRequest:
    return PromotionRequest(model_package_group="mlops-dev-models", model_package_arn=ARN.format(version),
                            version=version, target_stage=stage, reason=reason, requested_by="me", variant=variant)


def _endpoint(mapping: dict[str, int], *, status: str = "InService",
              instance_type: str = "ml.m5.large") -> EndpointState:
    return EndpointState(endpoint_name="mlops-dev", status=status, endpoint_config_name="old", variants={
        name: VariantState(name=name, model_name=f"m{v}", model_package_arn=ARN.format(v), instance_type=instance_type,
                           instance_count=2, weight=50) for name, v in mapping.items()})


# ------------------------------------------------------------------------------------------- events
def test_the_gate_event_and_its_bare_detail_both_parse() -> None:
    detail = {"model_package_group": "g", "model_package_arn": ARN.format(3), "version": 3,
              "target_stage": "Staging", "reason": "promotion", "requested_by": "alice"}
    event = {"source": "mlops.promotion", "detail-type": "Model Promotion Accepted", "id": "e1", "detail": detail}
    assert parse_promotion(event) == parse_promotion(detail).__class__(**{**parse_promotion(detail).__dict__,
                                                                           "event_id": "e1"})


@pytest.mark.parametrize(("change", "message"), [
    ({"version": 4}, "does not match"), ({"target_stage": "Development"}, "target_stage"),
    ({"reason": "whim"}, "reason"), ({"model_package_arn": ""}, "model_package_arn"),
    ({"version": True}, "positive integer"), ({"variant": "Shadow"}, "variant")])
def test_malformed_promotions_are_refused_with_the_field_named(change: dict[str, Any], message: str) -> None:
    detail = {"model_package_group": "g", "model_package_arn": ARN.format(3), "version": 3,
              "target_stage": "Staging", **change}
    with pytest.raises(InvalidPromotion, match=message):
        parse_promotion({"detail": detail})


# ------------------------------------------------------------------------------------------- roles
def test_variant_roles() -> None:
    ab = _settings(challenger=True).serving
    single = _settings(challenger=False).serving
    current = {"Champion": ARN.format(1), "Challenger": ARN.format(1)}
    assert assign_variants(_request(2), {}, ab) == {"Champion": ARN.format(2), "Challenger": ARN.format(2)}
    assert assign_variants(_request(2), current, ab) == {"Champion": ARN.format(1), "Challenger": ARN.format(2)}
    assert assign_variants(_request(2, stage="Staging"), current, ab) == {"Champion": ARN.format(2),
                                                                          "Challenger": ARN.format(1)}
    assert assign_variants(_request(2), {"Champion": ARN.format(1)}, single) == {"Champion": ARN.format(2)}
    both = {"Champion": ARN.format(1), "Challenger": ARN.format(2)}
    assert assign_variants(_request(1, reason="rollback"), both, ab) == {"Champion": ARN.format(1),
                                                                        "Challenger": ARN.format(1)}
    assert assign_variants(_request(2, reason="challenger_swap"), both, ab) == {"Champion": ARN.format(2),
                                                                               "Challenger": ARN.format(1)}
    assert assign_variants(_request(3, variant="Champion"), both, ab) == {"Champion": ARN.format(3),
                                                                         "Challenger": ARN.format(2)}
    with pytest.raises(DeploymentRefused, match="not the Challenger"):
        assign_variants(_request(3, reason="challenger_swap"), both, ab)


# ------------------------------------------------------------------------------------------- plans
def test_a_busy_endpoint_is_retried_and_an_unknown_state_needs_an_operator() -> None:
    settings = _settings()
    with pytest.raises(EndpointBusy):
        plan_deployment(_request(2), _endpoint({"Champion": 1}, status="RollingBack"), None, settings, now=NOW,
                        deployment_id="x")
    with pytest.raises(DeploymentRefused, match="operator"):
        plan_deployment(_request(2), _endpoint({"Champion": 1}, status="UpdateRollbackFailed"), None, settings,
                        now=NOW, deployment_id="x")


def test_foreign_groups_and_unserved_stages_are_skipped() -> None:
    settings = settings_from_environment({**deployer_environment(), "SERVED_STAGES": "Staging"})
    assert "not served" in plan_deployment(_request(2), None, None, settings, now=NOW, deployment_id="x")["skip_reason"]
    foreign = PromotionRequest(model_package_group="other", model_package_arn=ARN.format(2), version=2,
                               target_stage="Staging", reason="promotion", requested_by="me")
    assert plan_deployment(foreign, None, None, settings, now=NOW, deployment_id="x")["action"] == "skip"
    nothing = settings_from_environment({**deployer_environment(), "SERVED_STAGES": ""})
    for stage in ("Staging", "Production"):
        decision = plan_deployment(_request(2, stage=stage), None, None, nothing, now=NOW, deployment_id="x")
        assert decision["skip_reason"] == f"{stage} is not served by this environment (serves no stage)"
    with pytest.raises(SettingsError, match=r"SERVED_STAGES is \('Staging', 'Development'\); allowed: one of"):
        settings_from_environment({**deployer_environment(), "SERVED_STAGES": "Staging,Development"})


def test_an_instance_type_change_deregisters_scaling_and_does_not_retain_counts() -> None:
    settings = _settings(challenger=False, instance_type="ml.c5.xlarge")
    plan = plan_deployment(_request(2, stage="Staging"), _endpoint({"Champion": 1}), None, settings, now=NOW,
                           deployment_id="abc")
    assert plan["deregister_scaling"] == ["Champion"]
    assert "RetainAllVariantProperties" not in plan["update_endpoint"]
    assert "DeploymentConfig" in plan["update_endpoint"]


def test_same_mapping_without_a_ledger_success_is_only_verified() -> None:
    settings = _settings(challenger=False)
    plan = plan_deployment(_request(1, stage="Staging"), _endpoint({"Champion": 1}), None, settings, now=NOW,
                           deployment_id="abc")
    assert plan["operation"] == "verify_only" and plan["endpoint_config_name"] == "old"
    assert plan["endpoint_config"] is None and plan["changed_variants"] == ["Champion"]
    done = DeploymentRecord(deployed_at="t", version=1, stage="Staging", outcome="deployed", health_check="passed",
                            model_package_arn=ARN.format(1), model_data_url="", image="", reason="", actor="")
    assert plan_deployment(_request(1, stage="Staging"), _endpoint({"Champion": 1}), done, settings, now=NOW,
                           deployment_id="abc")["action"] == "skip"


@pytest.mark.parametrize(("instance_type", "local"), [
    ("ml.m5.large", False), ("ml.c5.xlarge", False), ("ml.m5d.large", True), ("ml.g4dn.xlarge", True),
    ("ml.g5.2xlarge", True), ("ml.c6id.large", True), ("ml.m6gd.large", True), ("ml.inf2.xlarge", False)])
def test_local_instance_storage(instance_type: str, local: bool) -> None:
    assert has_local_storage(instance_type) is local


def test_no_endpoint_config_kms_key_on_instances_with_local_storage() -> None:
    plan = plan_deployment(_request(1), None, None, _settings(instance_type="ml.g4dn.xlarge"), now=NOW,
                           deployment_id="abc")
    assert "KmsKeyId" not in plan["endpoint_config"]
    assert plan["endpoint_config"]["DataCaptureConfig"]["KmsKeyId"]  # S3 encryption is still ours


@pytest.mark.parametrize(("strategy", "expected_type", "seconds"), [
    ("CANARY", "CANARY", 1800 + 600 + 300), ("LINEAR", "LINEAR", 1800 + 10 * 600 + 300),
    ("ALL_AT_ONCE", "ALL_AT_ONCE", 1800 + 600 + 300)])
def test_rollout_policies(strategy: str, expected_type: str, seconds: int) -> None:
    settings = _settings(strategy=strategy)
    config = deployment_config(settings)
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == expected_type
    assert rollout_seconds(settings) == seconds
    assert len(config["AutoRollbackConfiguration"]["Alarms"]) == 4


def test_settings_errors_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="ENDPOINT_NAME"):
        settings_from_environment({k: v for k, v in deployer_environment().items() if k != "ENDPOINT_NAME"})
    broken = serving_settings()
    broken["deployment"]["strategy"] = "YOLO"
    with pytest.raises(SettingsError, match=r"deployment\.strategy"):
        settings_from_environment({**deployer_environment(), "SERVING_SETTINGS": json.dumps(broken)})


# ------------------------------------------------------------------------------------------- status
def _describe(status: str, config: str = "new", reason: str = "") -> dict[str, Any]:
    return {"EndpointStatus": status, "EndpointConfigName": config, "FailureReason": reason}


@pytest.mark.parametrize(("describe", "alarms", "now_offset", "decision"), [
    (_describe("Updating"), [], 0, "wait"),
    (_describe("RollingBack"), ["a"], 0, "wait"),
    (_describe("Updating"), [], 3600, "timed_out"),
    (_describe("InService"), [], 0, "succeeded"),
    (_describe("InService", "old", "alarm fired"), [], 0, "rolled_back"),
    (_describe("InService"), ["mlops-dev-Champion-5xx"], 0, "failed"),
    (_describe("UpdateRollbackFailed"), [], 0, "failed"),
    (_describe("Failed", reason="capacity"), [], 0, "failed"),
    (None, [], 0, "failed")])
def test_rollout_status_decisions(describe: dict[str, Any] | None, alarms: list[str], now_offset: int,
                                  decision: str) -> None:
    verdict = judge_endpoint(describe=describe, target_config="new", deadline=NOW + timedelta(seconds=60),
                             now=NOW + timedelta(seconds=now_offset), alarms_in_alarm=alarms)
    assert verdict["decision"] == decision


# ------------------------------------------------------------------------------------------- golden answers
CASE = GoldenCase(name="c", content_type="text/csv", accept="text/csv", body="1,2\n3,4", expected=(0.9, 0.1))


@pytest.mark.parametrize(("body", "content_type", "passed", "reason"), [
    ("0.90001\n0.1\n", "text/csv", True, ""),
    ("0.95\n0.1\n", "text/csv", False, "differs from the golden"),
    ("0.9\n", "text/csv", False, "1 prediction(s) for 2 row(s)"),
    ("0.9\n\n", "text/csv", False, "not a probability"),
    ("0.9\n1.5\n", "text/csv", False, "not a probability"),
    ('{"predictions": [0.9, 0.1]}', "application/json", False, "answered"),
    ("<html>error</html>", "text/csv", False, "1 prediction(s) for 2 row(s)"),
    ("<p>a</p>\n<p>b</p>\n", "text/csv", False, "not a probability")])
def test_answers_are_checked_for_schema_rows_range_and_values(body: str, content_type: str, passed: bool,
                                                              reason: str) -> None:
    result = check_answer(CASE, body=body, content_type=content_type, tolerance=1e-3)
    assert result.passed is passed
    assert reason in " ".join(result.reasons)


def test_json_answers_must_report_no_malformed_rows() -> None:
    case = GoldenCase(name="j", content_type="application/json", accept="application/json", body="{}",
                      expected=(0.9,))
    ok = check_answer(case, body='{"predictions": [0.9], "malformed": 0}', content_type="application/json",
                      tolerance=1e-4)
    bad = check_answer(case, body='{"predictions": [0.9], "malformed": 1}', content_type="application/json",
                       tolerance=1e-4)
    assert ok.passed and not bad.passed


def test_golden_documents_are_validated() -> None:
    with pytest.raises(GoldenFormatError, match="format"):
        parse_golden({"format": "other"})
    with pytest.raises(GoldenFormatError, match="expected_probabilities"):
        parse_golden({"format": "mlops-golden/1", "tolerance": 0.1, "cases": [
            {"name": "a", "content_type": "text/csv", "accept": "text/csv", "body": "1",
             "expected_probabilities": []}]})


def test_a_removed_autoscaled_variant_is_deregistered_before_the_update() -> None:
    """Developer Guide, "Update endpoints that use auto scaling": deregister a variant's scalable target before
    removing it, or UpdateEndpoint fails. GIVEN Champion and Challenger WHEN the Challenger is switched off THEN the
    plan deregisters it (and never excludes DataCaptureConfig, "(Not currently supported.)")."""
    plan = plan_deployment(_request(3), _endpoint({"Champion": 1, "Challenger": 2}), None,
                           _settings(challenger=False), now=NOW, deployment_id="abc")
    assert plan["operation"] == "update" and set(plan["variants"]) == {"Champion"}
    assert plan["deregister_scaling"] == ["Challenger"]
    same = plan_deployment(_request(3), _endpoint({"Champion": 1}), None, _settings(challenger=False), now=NOW,
                           deployment_id="abd")
    assert same["deregister_scaling"] == []
    assert same["update_endpoint"]["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]
