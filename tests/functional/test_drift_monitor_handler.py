"""The drift Lambda against moto (S3, SSM, SageMaker endpoint and registry): capture in CSV, JSON and BASE64
plus the prediction log in, metrics (EMF on stdout) and JSON + HTML reports out."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws

from tests.functional import drift_monitor_testkit as kit

CONTEXT = SimpleNamespace(function_name="drift", memory_limit_in_mb=1024, aws_request_id="req",
                          invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:drift")
EVENT = {"time": "2025-03-02T06:00:00Z", "detail-type": "Scheduled Event", "source": "aws.events"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in kit.environment().items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def load_handler() -> ModuleType:
    import lambdas.drift_monitor.handler as handler

    handler = importlib.reload(handler)
    handler.clients.cache_clear()
    return handler


def mixed_champion_traffic(s3: Any) -> None:
    rows, probabilities = kit.traffic_rows(240), kit.scores(240)
    csv_lines = [kit.csv_line([r], [p], event_id=f"csv-{i}") for i, (r, p) in
                 enumerate(zip(rows[:100], probabilities[:100], strict=True))]
    # one request carrying three rows
    csv_lines.append(kit.csv_line(rows[100:103], probabilities[100:103], event_id="csv-multi"))
    json_lines = [kit.json_line([r], [p], event_id=f"json-{i}") for i, (r, p) in
                  enumerate(zip(rows[103:170], probabilities[103:170], strict=True))]
    b64_lines = [kit.base64_line([r], [p], event_id=f"b64-{i}") for i, (r, p) in
                 enumerate(zip(rows[170:230], probabilities[170:230], strict=True))]
    malformed = [
        "this is not json",
        kit.csv_line([rows[0][:3]], [0.5], event_id="short-row"),                  # wrong_column_count
        kit.csv_line([["abc", *rows[1][1:]]], [0.5], event_id="text-in-number"),  # non_numeric
        json.dumps({"captureData": {"endpointInput": {"data": "1", "encoding": "XML"}},
                    "eventMetadata": {"eventId": "x", "inferenceTime": "t"}}),  # bad_payload
    ]
    kit.put_capture(s3, "Champion", csv_lines + malformed, name="a.jsonl")
    kit.put_capture(s3, "Champion", json_lines + b64_lines, name="b.jsonl", hour="2025/03/01/07")
    # outside the window (the hour of the window end itself): never read
    kit.put_capture(s3, "Champion", csv_lines, name="late.jsonl", hour="2025/03/02/06")
    kit.put_log(s3, [kit.log_line([rows[230 + i]], [0.5], event_id=f"fallback-{i}", source="safe_default")
                     for i in range(6)]
                + [kit.log_line([rows[236]], [0.4], event_id="answered", source="endpoint")])


def test_run_reads_all_encodings_and_the_prediction_log_and_publishes_metrics(
        aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    env = kit.provision()
    mixed_champion_traffic(env["s3"])
    challenger_rows = kit.traffic_rows(200, seed=5, shift_tenure=45)
    kit.put_capture(env["s3"], "Challenger", [
        kit.csv_line([r], [p], event_id=f"ch-{i}")
        for i, (r, p) in enumerate(zip(challenger_rows, kit.scores(200, shifted=True), strict=True))])
    handler = load_handler()
    capsys.readouterr()

    result = handler.lambda_handler(EVENT, CONTEXT)

    # GIVEN 230 capture rows (100 + 3 CSV, 67 JSON, 60 BASE64) and 6 degraded log answers
    report_key = "drift-reports/mlops-dev-endpoint/2025/03/02/06/drift_report.json"
    assert result["report_uri"] == f"s3://{kit.REPORT_BUCKET}/{report_key}"
    report = json.loads(env["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=report_key)["Body"].read())
    champion = report["variants"]["Champion"]
    assert champion["status"] == "analysed"
    assert champion["drift"]["rows"] == 103 + 67 + 60 + 6
    assert champion["drift"]["probabilities"] == 103 + 67 + 60  # degraded answers' scores are not compared
    assert champion["drift"]["malformed"] == 4
    assert champion["drift"]["malformed_reasons"] == {"bad_payload": 1, "non_numeric": 1, "not_json": 1,
                                                      "wrong_column_count": 1}
    assert champion["skipped_records"] == {"endpoint_answer_in_prediction_log": 1,
                                           "scores_not_compared_safe_default": 6}
    assert champion["objects"] == 3
    assert champion["model_package_arn"] == env["arns"]["Champion"]
    assert report["drifted_variants"] == ["Challenger"]
    assert report["variants"]["Challenger"]["drift"]["features"]["tenure_months"]["drifted"] is True
    assert report["variants"]["Champion"]["drift"]["drifted"] is False
    # THEN the HTML pages sit beside the JSON
    html = env["s3"].get_object(Bucket=kit.REPORT_BUCKET,
                                Key="drift-reports/mlops-dev-endpoint/2025/03/02/06/Challenger.html")
    assert b"tenure_months" in html["Body"].read()
    assert set(report["html_reports"]) == {"Champion", "Challenger"}

    values = kit.metric_values(kit.emf_documents(capsys.readouterr().out))
    service = ("service", "drift_monitor")
    champion_dims = (("Endpoint", kit.ENDPOINT), ("Variant", "Champion"), service)
    assert values[champion_dims]["RowsAnalysed"] == [236.0]
    assert values[champion_dims]["MalformedRecords"] == [4.0]
    assert values[champion_dims]["DriftDetected"] == [0.0]
    challenger = values[(("Endpoint", kit.ENDPOINT), ("Variant", "Challenger"), service)]
    assert challenger["DriftDetected"] == [1.0]
    assert challenger["PredictionDrifted"] == [1.0]
    assert challenger["MaxDrift"][0] == pytest.approx(
        report["variants"]["Challenger"]["drift"]["max_drift"])
    assert challenger["DriftedFeatureShare"] == [0.2]
    feature = values[(("Endpoint", kit.ENDPOINT), ("Feature", "tenure_months"), ("Variant", "Challenger"),
                      service)]
    assert feature["FeatureDrift"][0] > 0.2
    feature_sets = [dims for dims in values if ("Feature", "plan") in dims]
    assert len(feature_sets) == 2  # one per variant


def test_variant_without_baseline_is_skipped_and_the_other_still_analysed(
        aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    env = kit.provision(registered={"Champion": {}, "Challenger": {"no_baseline": True}})
    kit.put_capture(env["s3"], "Challenger", [kit.csv_line([r], [0.2], event_id=f"c{i}")
                                              for i, r in enumerate(kit.traffic_rows(60))])
    kit.put_capture(env["s3"], "Champion", [kit.csv_line([r], [0.2], event_id=f"p{i}")
                                            for i, r in enumerate(kit.traffic_rows(60))])
    handler = load_handler()
    capsys.readouterr()

    result = handler.lambda_handler(EVENT, CONTEXT)

    assert list(result["skipped_variants"]) == ["Challenger"]
    assert "DriftCheckBaselines" in result["skipped_variants"]["Challenger"]
    assert result["rows"] == {"Champion": 60}
    values = kit.metric_values(kit.emf_documents(capsys.readouterr().out))
    skipped = values[(("Endpoint", kit.ENDPOINT), ("Variant", "Challenger"), ("service", "drift_monitor"))]
    assert skipped == {"VariantSkipped": [1.0]}


def test_unrecorded_variant_and_unreadable_baseline_are_reasons_not_crashes(aws: None) -> None:
    env = kit.provision(registered={"Champion": {"baseline": {"format": "something else"}}, "Challenger": None})
    handler = load_handler()

    result = handler.lambda_handler(EVENT, CONTEXT)

    assert "no model package recorded" in result["skipped_variants"]["Challenger"]
    skipped = result["skipped_variants"]["Challenger"]
    assert f"/mlops/dev/models/{kit.MODEL}/variant/Challenger/model-package-arn" in skipped
    assert result["skipped_variants"]["Champion"].startswith("baseline unusable: baseline.format")
    assert env["s3"].list_objects_v2(Bucket=kit.REPORT_BUCKET, Prefix="drift-reports/")["KeyCount"] == 1


def test_empty_window_reports_zero_rows_and_publishes_no_drift_scores(
        aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    kit.provision()
    handler = load_handler()
    capsys.readouterr()

    result = handler.lambda_handler(EVENT, CONTEXT)

    assert result["rows"] == {"Champion": 0, "Challenger": 0}
    assert result["drifted_variants"] == []
    values = kit.metric_values(kit.emf_documents(capsys.readouterr().out))
    champion = values[(("Endpoint", kit.ENDPOINT), ("Variant", "Champion"), ("service", "drift_monitor"))]
    assert champion == {"VariantSkipped": [0.0], "RowsAnalysed": [0.0], "MalformedRecords": [0.0]}
    assert not [dims for dims in values if any(name == "Feature" for name, _ in dims)]


def test_report_written_elsewhere_is_published_from_its_s3_notification(
        aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    env = kit.provision()
    kit.put_capture(env["s3"], "Champion", [kit.csv_line([r], [0.3], event_id=f"p{i}")
                                            for i, r in enumerate(kit.traffic_rows(80))])
    handler = load_handler()
    first = handler.lambda_handler(EVENT, CONTEXT)
    capsys.readouterr()
    key = first["report_uri"].split("/", 3)[3]
    notification = {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": kit.REPORT_BUCKET},
                                                                 "object": {"key": key}}}]}

    result = handler.lambda_handler(notification, CONTEXT)

    assert result == {"published_reports": [first["report_uri"]]}
    values = kit.metric_values(kit.emf_documents(capsys.readouterr().out))
    assert values[(("Endpoint", kit.ENDPOINT), ("Variant", "Champion"), ("service", "drift_monitor"))][
        "RowsAnalysed"] == [80.0]


def test_misconfigured_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdas.drift_monitor.settings import SettingsError, settings_from_environment

    env = kit.environment(DRIFT_THRESHOLDS='{"psi": 0.2, "bogus": 1}')
    with pytest.raises(SettingsError, match="DRIFT_THRESHOLDS: unknown drift threshold keys"):
        settings_from_environment(env)
    with pytest.raises(SettingsError, match="REPORT_BUCKET"):
        settings_from_environment({k: v for k, v in kit.environment().items() if k != "REPORT_BUCKET"})
    with pytest.raises(SettingsError, match="WINDOW_HOURS"):
        settings_from_environment(kit.environment(WINDOW_HOURS="0"))


def test_an_environment_without_an_endpoint_yet_is_skipped_not_failed(
        aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Before the first deployment (or where a central registry's stages are served elsewhere) the daily run
    has nothing to compare: it says so and succeeds, instead of failing into the error alarm every day."""
    import boto3

    boto3.client("s3", region_name=kit.REGION).create_bucket(
        Bucket=kit.REPORT_BUCKET, CreateBucketConfiguration={"LocationConstraint": kit.REGION})
    handler = load_handler()
    capsys.readouterr()

    result = handler.lambda_handler(EVENT, CONTEXT)

    assert result["skipped"] == f"endpoint {kit.ENDPOINT} does not exist (nothing deployed yet)"
    assert result["window"]["end"] == "2025-03-02T06:00:00Z"
    assert kit.emf_documents(capsys.readouterr().out) == []


def test_other_sagemaker_errors_still_fail_the_run() -> None:
    from botocore.exceptions import ClientError

    from mlplatform.monitoring.variant_models import endpoint_exists

    class Denied:
        def describe_endpoint(self, EndpointName: str) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeEndpoint")

    with pytest.raises(ClientError, match="AccessDenied"):
        endpoint_exists(Denied(), kit.ENDPOINT)
