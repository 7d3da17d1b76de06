"""The step scripts end to end through pipelines.local_run: bundled data, a second differently shaped data
set with the same code, a degraded data set stopped by the gate, drift against the previous baseline."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mlcore.drift.baseline import load_baseline
from mlcore.fallback import FallbackModel
from mlsettings.quality import decide_gate
from pipelines.datasets import shuffle_labels, synthetic_schema, write_breast_cancer_csv, write_synthetic_csv
from pipelines.local_run import LocalRunResult, run_local
from pipelines.serving import inference

BREAST_CANCER_SCHEMA = Path("pipelines/schemas/breast_cancer.json")
FAST = {"hyperparameters": {"num_round": 30, "checkpoint_interval": 10},
        "evaluation_options": {"single_row_requests": 10, "batch_repeats": 1, "bootstrap_resamples": 10}}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalRunResult, Path, list[tuple[str, str]]]:
    root = tmp_path_factory.mktemp("bundled")
    data = write_breast_cancer_csv(root / "data" / "breast_cancer.csv")
    events: list[tuple[str, str]] = []
    result = run_local(root / "work", schema_path=BREAST_CANCER_SCHEMA, data_csv=data, threshold=0.9,
                       progress=lambda step, event: events.append((step, event)),
                       s3_object_versions={"s3://data/breast_cancer.csv": "v123"}, data_uri="s3://data/", **FAST)
    return result, data, events


def test_bundled_data_trains_passes_the_gate_and_writes_every_artifact(
        bundled: tuple[LocalRunResult, Path, list[tuple[str, str]]]) -> None:
    result, _, events = bundled
    assert result.status == "succeeded", result.failure
    assert [s.name for s in result.steps] == ["validate", "preprocess", "train", "evaluate", "gate", "baseline"]
    assert all(s.status == "succeeded" for s in result.steps)
    assert ("train", "started") in events and ("baseline", "succeeded") in events
    assert result.gate is not None and result.gate.passed and result.gate.metric == "auc"
    for role in ("validation_report", "model_artifact", "evaluation", "baseline", "golden", "sample_payload",
                 "lineage", "fallback", "schema"):
        assert result.paths[role].is_file(), role
    with tarfile.open(result.paths["model_artifact"]) as tar:
        names = set(tar.getnames())
    assert {"xgboost-model.json", "schema.json", "fallback.json", "code/inference.py",
            "code/mlcore/features.py"} <= names


def test_lineage_records_the_data_hash_and_s3_versions(
        bundled: tuple[LocalRunResult, Path, list[tuple[str, str]]]) -> None:
    result, data, _ = bundled
    lineage = json.loads(result.paths["lineage"].read_text())
    assert lineage["data_version"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert lineage["data_version"]["s3_object_versions"] == {"s3://data/breast_cancer.csv": "v123"}
    rows = lineage["rows"]
    assert rows["train"] + rows["validation"] + rows["test"] == rows["input"] == 569


def test_evaluation_json_paths_the_gate_reads(bundled: tuple[LocalRunResult, Path, list[tuple[str, str]]]) -> None:
    result, _, _ = bundled
    metrics = json.loads(result.paths["evaluation"].read_text())["binary_classification_metrics"]
    for name in ("auc", "f1", "precision", "recall", "log_loss", "calibration_error", "batch_latency_ms",
                 "single_row_latency_ms_p99"):
        assert isinstance(metrics[name]["value"], float), name
    assert metrics["auc"]["value"] > 0.9


def test_golden_payloads_replay_through_the_handler(
        bundled: tuple[LocalRunResult, Path, list[tuple[str, str]]]) -> None:
    result, _, _ = bundled
    golden = json.loads(result.paths["golden"].read_text())
    model = inference.model_fn(result.paths["model_dir"])
    assert {case["name"] for case in golden["cases"]} >= {"single_row_0", "batch_csv", "batch_json"}
    assert set(golden["labels"]) == {0, 1}
    for case in golden["cases"]:
        answer = inference.transform_fn(model, case["body"], case["content_type"], inference.JSON)
        served = json.loads(answer.body)["predictions"]
        assert served == pytest.approx(case["expected"], abs=golden["tolerance"])


def test_baseline_is_a_valid_drift_baseline_with_predictions(
        bundled: tuple[LocalRunResult, Path, list[tuple[str, str]]]) -> None:
    result, _, _ = bundled
    baseline = load_baseline(result.paths["baseline"])
    assert baseline["rows"] == result.lineage["rows"]["train"]  # type: ignore[index]
    assert baseline["prediction"] is not None and baseline["confidence"] is not None


def test_fallback_model_is_exported_with_test_metrics(
        bundled: tuple[LocalRunResult, Path, list[tuple[str, str]]]) -> None:
    result, _, _ = bundled
    fallback = FallbackModel.load(result.paths["fallback"])
    assert fallback.metrics["evaluated_on"] == "test" and fallback.metrics["auc"] > 0.9


def test_rerun_against_the_previous_baseline_checks_drift_and_passes(
        bundled: tuple[LocalRunResult, Path, list[tuple[str, str]]], tmp_path: Path) -> None:
    result, data, _ = bundled
    again = run_local(tmp_path, schema_path=BREAST_CANCER_SCHEMA, data_csv=data,
                      previous_baseline=result.paths["baseline"], **FAST)
    assert again.succeeded, again.failure
    assert again.validation_report is not None
    assert again.validation_report["drift"]["status"] == "checked"
    assert again.validation_report["drift"]["drifted"] is False


@pytest.mark.slow
def test_second_differently_shaped_data_set_runs_through_the_same_code(tmp_path: Path) -> None:
    schema_path = tmp_path / "synthetic.json"
    schema_path.write_text(json.dumps(synthetic_schema()))
    data = write_synthetic_csv(tmp_path / "synthetic.csv", rows=1500, seed=3)
    result = run_local(tmp_path / "work", schema_path=schema_path, data_csv=data, threshold=0.7, **FAST)
    assert result.status == "succeeded", result.failure
    model = inference.model_fn(result.paths["model_dir"])
    assert "plan=premium" in model.transformer.output_names  # one-hot columns from the other schema
    report = result.validation_report or {}
    assert report["features"]["monthly_charges"]["missing_rate"] > 0  # the nulls really are there


def test_degraded_data_fails_the_gate_and_writes_no_baseline(
        bundled: tuple[LocalRunResult, Path, list[tuple[str, str]]], tmp_path: Path) -> None:
    _, data, _ = bundled
    degraded = shuffle_labels(data, tmp_path / "shuffled.csv", label="target", seed=7)
    result = run_local(tmp_path / "work", schema_path=BREAST_CANCER_SCHEMA, data_csv=degraded,
                       threshold=0.9, **FAST)
    assert result.status == "failed_gate"
    assert result.gate is not None and not result.gate.passed and result.gate.value < 0.9
    assert "auc" in (result.failure or "") and "0.9" in (result.failure or "")
    assert [s.status for s in result.steps][-2:] == ["failed", "skipped"]
    assert "baseline" not in result.paths


@pytest.mark.parametrize(("metric", "value", "bound", "threshold", "passed"), [
    ("auc", 0.95, 0.92, 0.9, True), ("auc", 0.85, 0.80, 0.9, False), ("f1", 0.95, 0.85, 0.9, False),
    ("recall", 0.9, 0.9, 0.9, True), ("auc", float("nan"), 0.9, 0.5, False)])
def test_gate_needs_value_and_lower_bound(metric: str, value: float, bound: float, threshold: float,
                                          passed: bool) -> None:
    metrics: dict[str, Any] = {"binary_classification_metrics": {metric: {"value": value, "lower_bound_95": bound}}}
    assert decide_gate(metrics, metric=metric, threshold=threshold).passed is passed


def test_gate_names_unknown_metrics_and_missing_values() -> None:
    with pytest.raises(ValueError, match="'ks'"):
        decide_gate({"binary_classification_metrics": {"auc": {"value": 1.0}}}, metric="ks", threshold=0.5)
    with pytest.raises(KeyError, match="lower_bound_95"):
        decide_gate({"binary_classification_metrics": {"auc": {"value": 1.0}}}, metric="auc", threshold=0.5)
