"""Ground truth: labels (CSV, JSONL, SageMaker's record) joined to captured predictions by inference id, and
the quality drop against the registered evaluation metrics — through the handler against moto."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
from moto import mock_aws

from mlcore.drift.capture import parse_capture_line
from mlcore.drift.ground_truth import QualityJoin, read_labels, registered_quality
from mlsettings.schema import LabelSpec
from tests.functional import drift_monitor_testkit as kit

CONTEXT = SimpleNamespace(function_name="drift", memory_limit_in_mb=1024, aws_request_id="req",
                          invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:drift")
LABEL = LabelSpec(name="churned", positive="yes", negative="no")


def test_labels_in_every_format_are_read_and_bad_rows_counted() -> None:
    csv_lines = [b"inference_id,label,time", b"a,yes,2025-03-02T05:00:00Z", b"b,no,t", b"c,maybe,t", b"d,yes"]
    jsonl = [json.dumps({"inference_id": "e", "label": "no", "time": "t"}).encode(),
             json.dumps({"inference_id": "f", "label": "yes", "row": 1}).encode(),
             json.dumps({"groundTruthData": {"data": "yes", "encoding": "CSV"},
                         "eventMetadata": {"eventId": "g"}, "eventVersion": "0"}).encode(),
             b"{broken", json.dumps({"label": "yes"}).encode()]

    labels = read_labels([("day/labels.csv", csv_lines), ("day/labels.jsonl", jsonl)], LABEL)

    assert labels.labels == {"a": {None: 1}, "b": {None: 0}, "e": {None: 0}, "f": {1: 1}, "g": {None: 1}}
    assert labels.malformed == {"unknown_label": 1, "wrong_column_count": 1, "not_json": 1,
                                "missing_inference_id": 1}


def test_join_pairs_labels_with_the_right_row_and_reports_what_could_not_join() -> None:
    labels = read_labels([("l.jsonl", [json.dumps(doc).encode() for doc in (
        {"inference_id": "single", "label": "yes"},
        {"inference_id": "multi", "label": "no", "row": 1},
        {"inference_id": "multi-no-row", "label": "no"},
        {"inference_id": "never-seen", "label": "no"},
    )])], LABEL)
    join = QualityJoin(labels)
    rows = kit.traffic_rows(3)
    lines = [kit.csv_line([rows[0]], [0.9], event_id="1", inference_id="single"),
             kit.csv_line(rows[:3], [0.1, 0.2, 0.3], event_id="2", inference_id="multi"),
             kit.csv_line(rows[:2], [0.1, 0.2], event_id="3", inference_id="multi-no-row"),
             kit.csv_line([rows[0]], [0.9], event_id="4", inference_id="unlabelled")]

    def parse(line: bytes) -> object:
        return parse_capture_line(line, n_features=5, categorical_columns=(2, 3), feature_names=kit.NAMES)

    for line in lines:
        join.add_line("Champion", line.encode(), parse)

    report = join.report("Champion", registered={"auc": 0.9}, metric="auc", margin=0.05, min_rows=1)
    assert report["labelled_rows"] == 2           # single (p=0.9, yes) and multi row 1 (p=0.2, no)
    assert report["metrics"]["accuracy"] == 1.0
    assert join.problems == {"label_without_row_for_multi_row_request": 1}
    assert join.unmatched_labels == 1


def test_registered_quality_reads_sagemakers_model_quality_document() -> None:
    assert registered_quality(kit.quality_document(auc=0.91)) == {"auc": 0.91, "accuracy": 0.85, "f1": 0.8}
    # Each kind's section is read (issue 25); a document with none of them is refused, naming the three.
    assert registered_quality({"regression_metrics": {"rmse": {"value": 55.0}}}) == {"rmse": 55.0}
    with pytest.raises(ValueError, match="binary_classification_metrics"):
        registered_quality({"clustering_metrics": {}})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in kit.environment(GROUND_TRUTH_PREFIX=kit.LABELS_PREFIX, QUALITY_MARGIN="0.05",
                                       QUALITY_MIN_ROWS="100").items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def load_handler() -> ModuleType:
    import lambdas.drift_monitor.handler as handler

    handler = importlib.reload(handler)
    handler.clients.cache_clear()
    return handler


def test_silent_degradation_shows_as_a_quality_drop_for_the_variant_that_degraded(
        aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    env = kit.provision(registered={"Champion": {"quality": kit.quality_document(auc=0.9)},
                                    "Challenger": {"quality": kit.quality_document(auc=0.9)}})
    rng = np.random.default_rng(7)
    truth = rng.random(400) < 0.4
    # Champion's scores separate the classes well; Challenger's are noise (AUC ~0.5).
    good = np.where(truth, rng.beta(5, 2, 400), rng.beta(2, 5, 400))
    noise = rng.random(400)
    rows = kit.traffic_rows(400)
    for variant, probabilities in (("Champion", good), ("Challenger", noise)):
        kit.put_capture(env["s3"], variant, [
            kit.csv_line([rows[i]], [round(float(probabilities[i]), 6)], event_id=f"{variant}-{i}",
                         inference_id=f"{variant}-{i}") for i in range(400)])
        label_lines = ["inference_id,label,time"] + [
            f"{variant}-{i},{'yes' if truth[i] else 'no'},2025-03-02T05:00:00Z" for i in range(400)]
        env["s3"].put_object(Bucket=kit.CAPTURE_BUCKET, Key=f"{kit.LABELS_PREFIX}/2025/03/02/05/{variant}.csv",
                             Body="\n".join(label_lines).encode())
    handler = load_handler()
    capsys.readouterr()

    result = handler.lambda_handler({"time": "2025-03-02T06:00:00Z"}, CONTEXT)

    key = result["report_uri"].split("/", 3)[3]
    quality = json.loads(env["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=key)["Body"].read())["quality"]
    assert quality["labels"]["rows"] == 800
    champion, challenger = quality["variants"]["Champion"], quality["variants"]["Challenger"]
    assert champion["labelled_rows"] == challenger["labelled_rows"] == 400
    assert champion["degraded"] is False and champion["metrics"]["auc"] > 0.85
    assert challenger["degraded"] is True and challenger["drop"] > 0.3
    values = kit.metric_values(kit.emf_documents(capsys.readouterr().out))
    published = values[(("Endpoint", kit.ENDPOINT), ("Variant", "Challenger"), ("service", "drift_monitor"))]
    assert published["QualityDegraded"] == [1.0]
    assert published["LabelledRows"] == [400.0]
    assert published["QualityDrop"][0] == pytest.approx(challenger["drop"])
    assert set(published) >= {"QualityAUC", "QualityAccuracy", "QualityF1"}


def test_labels_arriving_later_join_the_earlier_window_when_a_delay_is_configured(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROUND_TRUTH_DELAY_HOURS", "24")
    monkeypatch.setenv("QUALITY_MIN_ROWS", "5")
    env = kit.provision(registered={"Champion": {}})
    rows = kit.traffic_rows(10)
    # predictions of the previous day, labels written during the current window
    kit.put_capture(env["s3"], "Champion", [kit.csv_line([rows[i]], [0.8 if i % 2 else 0.2], event_id=str(i),
                                                         inference_id=f"id-{i}") for i in range(10)],
                    hour="2025/03/01/03")
    env["s3"].put_object(Bucket=kit.CAPTURE_BUCKET, Key=f"{kit.LABELS_PREFIX}/2025/03/02/04/l.jsonl",
                         Body="\n".join(json.dumps({"inference_id": f"id-{i}", "label": "yes" if i % 2 else "no"})
                                        for i in range(10)).encode())
    handler = load_handler()

    result = handler.lambda_handler({"time": "2025-03-02T06:00:00Z"}, CONTEXT)

    assert result["rows"] == {"Champion": 0}  # drift looks at the current window only
    key = result["report_uri"].split("/", 3)[3]
    quality = json.loads(env["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=key)["Body"].read())["quality"]
    assert quality["variants"]["Champion"]["labelled_rows"] == 10
    assert quality["variants"]["Champion"]["metrics"]["accuracy"] == 1.0
    assert quality["labels"]["predictions_window"]["start"] == "2025-02-28T06:00:00Z"
