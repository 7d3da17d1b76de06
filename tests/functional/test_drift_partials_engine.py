"""``monitoring.drift.engine: partials`` against moto: the per-object function reduces each captured object when
its "Object Created" event arrives; the scheduled drift run merges the partial results into the report the
one-pass engine writes, counts what has none itself, and says so in the report and the metrics."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws

from mlsettings.drift_partials import PARTIALS_PREFIX
from mlsettings.functions.contracts import DriftPartialsEnvironment
from mlsettings.vocabulary import Metric
from tests.functional import drift_monitor_testkit as kit
from tests.functional.test_drift_monitor_handler import EVENT, mixed_champion_traffic

CONTEXT = SimpleNamespace(function_name="drift-partials", memory_limit_in_mb=1769, aws_request_id="req",
                          invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:drift-partials")
REPORT_KEY = "drift-reports/mlops-dev-endpoint/2025/03/02/06/drift_report.json"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in kit.environment().items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def object_created(bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """S3's "Object Created" event as EventBridge delivers it (Amazon S3 User Guide, "EventBridge event message
    structure", the PutObject example)."""
    return {"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
            "source": "aws.s3", "account": "123456789012", "time": "2025-03-02T03:16:00Z", "region": kit.REGION,
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": key, "size": size, "etag": etag, "sequencer": "00617F08299329D189"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                       "source-ip-address": "1.2.3.4", "reason": "PutObject"}}


def _load(module: str) -> ModuleType:
    loaded = importlib.reload(importlib.import_module(module))
    loaded.clients.cache_clear()
    return loaded


def _deliver_all(s3: Any, partials: ModuleType, *, skip: str = "") -> list[dict[str, Any]]:
    outcomes = []
    for item in s3.list_objects_v2(Bucket=kit.CAPTURE_BUCKET)["Contents"]:
        if skip and item["Key"].endswith(skip):
            continue
        event = object_created(kit.CAPTURE_BUCKET, item["Key"], item["Size"], item["ETag"].strip('"'))
        outcomes.append(partials.handler(event, CONTEXT))
    return outcomes


def _traffic(s3: Any) -> None:
    mixed_champion_traffic(s3)
    rows = kit.traffic_rows(200, seed=5, shift_tenure=45)
    kit.put_capture(s3, "Challenger", [kit.csv_line([r], [p], event_id=f"ch-{i}") for i, (r, p) in
                                       enumerate(zip(rows, kit.scores(200, shifted=True), strict=True))])


def _without_partials_section(report: dict[str, Any]) -> str:
    variants = {name: {k: v for k, v in item.items() if k != "partials"} for name, item in report["variants"].items()}
    return json.dumps({**report, "variants": variants, "html_reports": None, "generated_at": None}, sort_keys=True)


def test_partials_of_every_object_merge_into_the_one_pass_report(
        aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env = kit.provision()
    _traffic(env["s3"])
    partials = _load("lambdas.drift_partials.handler")
    outcomes = _deliver_all(env["s3"], partials)
    written = [o for o in outcomes if "partial" in o]
    # the object outside the window gets a partial result too: the window run does not list it
    assert len(written) == 5 and {o["variant"] for o in written} == {"Champion", "Challenger"}
    assert all(o["partial"].startswith(f"s3://{kit.REPORT_BUCKET}/{PARTIALS_PREFIX}/") for o in written)

    one_pass = _load("lambdas.drift_monitor.handler").lambda_handler(EVENT, CONTEXT)
    expected = json.loads(env["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=REPORT_KEY)["Body"].read())
    monkeypatch.setenv("DRIFT_ENGINE", "partials")
    capsys.readouterr()
    merged_run = _load("lambdas.drift_monitor.handler").lambda_handler(EVENT, CONTEXT)
    merged = json.loads(env["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=REPORT_KEY)["Body"].read())

    assert merged_run["rows"] == one_pass["rows"]
    assert _without_partials_section(merged) == _without_partials_section(expected)
    assert merged["variants"]["Champion"]["partials"]["merged"] == 3  # two capture objects and the log
    assert merged["variants"]["Champion"]["partials"]["missing"] == 0
    values = kit.metric_values(kit.emf_documents(capsys.readouterr().out))
    champion = next(v for dims, v in values.items() if ("Variant", "Champion") in dims and len(dims) == 3)
    assert champion[Metric.PARTIALS_MERGED] == [3.0]
    assert champion[Metric.OBJECTS_COUNTED_INLINE] == [0.0]
    assert champion[Metric.OBJECTS_NOT_ANALYSED] == [0.0]


def test_an_object_without_partial_is_counted_from_the_object_and_reported(aws: None, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    env = kit.provision()
    _traffic(env["s3"])
    _deliver_all(env["s3"], _load("lambdas.drift_partials.handler"), skip="b.jsonl")
    _load("lambdas.drift_monitor.handler").lambda_handler(EVENT, CONTEXT)
    expected = json.loads(env["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=REPORT_KEY)["Body"].read())
    monkeypatch.setenv("DRIFT_ENGINE", "partials")
    capsys.readouterr()
    _load("lambdas.drift_monitor.handler").lambda_handler(EVENT, CONTEXT)
    merged = json.loads(env["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=REPORT_KEY)["Body"].read())

    assert _without_partials_section(merged) == _without_partials_section(expected)
    book = merged["variants"]["Champion"]["partials"]
    # it landed seconds ago (moto's LastModified): late, not missing (mlcore.drift.partials.DEFAULT_LATE_AFTER)
    assert (book["merged"], book["late"], book["missing"]) == (2, 1, 0)
    assert book["examples"]["late"][0].endswith("/2025/03/01/07/b.jsonl")
    values = kit.metric_values(kit.emf_documents(capsys.readouterr().out))
    champion = next(v for dims, v in values.items() if ("Variant", "Champion") in dims and len(dims) == 3)
    assert champion[Metric.OBJECTS_COUNTED_INLINE] == [1.0]


def test_events_for_other_keys_and_unbaselined_variants_write_nothing(aws: None) -> None:
    env = kit.provision(registered={"Champion": {}, "Challenger": None})
    kit.put_capture(env["s3"], "Challenger", [kit.csv_line([kit.traffic_rows(1)[0]], [0.5], event_id="c")])
    env["s3"].put_object(Bucket=kit.CAPTURE_BUCKET, Key="elsewhere/x.jsonl", Body=b"{}\n")
    outcomes = _deliver_all(env["s3"], _load("lambdas.drift_partials.handler"))
    assert sorted(o["skipped"].split(" (")[0] for o in outcomes) == [
        "no model package recorded for the variant", "not captured traffic of this endpoint"]
    assert "Contents" not in env["s3"].list_objects_v2(Bucket=kit.REPORT_BUCKET, Prefix=PARTIALS_PREFIX)


def test_the_environment_contract_round_trips_and_names_a_missing_variable() -> None:
    written = DriftPartialsEnvironment(endpoint_name="e", capture_bucket="c", capture_prefix="endpoint",
                                       prediction_log_prefix=None, prediction_log_variant="Champion",
                                       report_bucket="r", partials_prefix=PARTIALS_PREFIX,
                                       variant_parameter_prefix="/mlops/prod/variant")
    assert DriftPartialsEnvironment.from_env(written.to_env()) == written
    with pytest.raises(ValueError, match="REPORT_BUCKET is required"):
        DriftPartialsEnvironment.from_env({k: v for k, v in written.to_env().items() if k != "REPORT_BUCKET"})
