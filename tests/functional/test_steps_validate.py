"""The validate step fails on each kind of bad input with a report that names the feature and problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.datasets import synthetic_frame, synthetic_schema
from pipelines.steps import validate

Mutation = Callable[[pd.DataFrame], pd.DataFrame]


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return synthetic_frame(400, seed=5)


@pytest.fixture
def schema_path(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(synthetic_schema()))
    return path


def run_validate(tmp_path: Path, schema_path: Path, frame: pd.DataFrame | None = None, *, text: str | None = None,
                 extra: list[str] | None = None) -> dict[str, Any]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    if text is not None:
        (data_dir / "data.csv").write_text(text)
    elif frame is not None:
        frame.to_csv(data_dir / "data.csv", index=False)
    validate.main(["--input-dir", str(data_dir), "--schema", str(schema_path),
                   "--report-dir", str(tmp_path / "report"), "--message-file", str(tmp_path / "message"),
                   *(extra or [])])
    return json.loads((tmp_path / "report" / validate.REPORT_NAME).read_text())


def failing_report(tmp_path: Path, schema_path: Path, frame: pd.DataFrame | None = None,
                   **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(validate.DataValidationError) as failure:
        run_validate(tmp_path, schema_path, frame, **kwargs)
    report = json.loads((tmp_path / "report" / validate.REPORT_NAME).read_text())
    assert report["passed"] is False
    assert (tmp_path / "message").read_text() == str(failure.value)[:1024]
    return report


def problems(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(v["feature"], v["problem"]) for v in report["violations"]}


def test_clean_data_passes_and_skips_drift_without_a_baseline(tmp_path: Path, schema_path: Path,
                                                               clean: pd.DataFrame) -> None:
    report = run_validate(tmp_path, schema_path, clean)
    assert report["passed"] and report["violations"] == []
    assert report["drift"]["status"] == "skipped" and "no previous training baseline" in report["drift"]["note"]
    assert report["label"]["positive"] > 0 and report["label"]["negative"] > 0


def test_extra_columns_are_reported_but_do_not_fail(tmp_path: Path, schema_path: Path, clean: pd.DataFrame) -> None:
    report = run_validate(tmp_path, schema_path, clean.assign(customer_id="c1"))
    assert report["passed"]
    assert {(w["feature"], w["problem"]) for w in report["warnings"]} == {("customer_id", "extra_column")}


def _set(column: str, value: str, rows: slice = slice(0, 5)) -> Mutation:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[frame.index[rows], column] = value
        return frame
    return mutate


@pytest.mark.parametrize(("mutation", "expected"), [
    (lambda f: f.drop(columns=["plan"]), ("plan", "missing_column")),
    (lambda f: f.drop(columns=["churned"]), ("churned", "missing_column")),
    (_set("tenure_months", "twelve"), ("tenure_months", "wrong_type")),
    (_set("support_calls", "99"), ("support_calls", "out_of_range")),
    (_set("tenure_months", "-1"), ("tenure_months", "out_of_range")),
    (_set("plan", "platinum"), ("plan", "unknown_category")),
    (_set("tenure_months", ""), ("tenure_months", "null_not_allowed")),
    (_set("region", "", slice(0, 200)), ("region", "too_many_nulls")),
    (_set("churned", "yes", slice(None)), ("churned", "label_single_class")),
    (_set("churned", "maybe"), ("churned", "label_invalid_value")),
    (_set("churned", ""), ("churned", "label_missing")),
], ids=["missing-feature", "missing-label", "wrong-type", "above-max", "below-min", "unknown-category",
        "null-not-allowed", "too-many-nulls", "one-class", "label-outside", "label-null"])
def test_each_bad_input_fails_with_a_report_naming_it(tmp_path: Path, schema_path: Path, clean: pd.DataFrame,
                                                      mutation: Mutation, expected: tuple[str, str]) -> None:
    report = failing_report(tmp_path, schema_path, mutation(clean))
    assert expected in problems(report)
    violation = next(v for v in report["violations"] if (v["feature"], v["problem"]) == expected)
    assert violation["detail"]


def test_several_problems_are_all_reported(tmp_path: Path, schema_path: Path, clean: pd.DataFrame) -> None:
    frame = _set("support_calls", "x")(_set("plan", "gold")(clean))
    report = failing_report(tmp_path, schema_path, frame)
    assert {("support_calls", "wrong_type"), ("plan", "unknown_category")} <= problems(report)


@pytest.mark.parametrize(("text", "problem"), [("", "empty_file"), ("tenure_months,monthly_charges,plan,region,"
                                                                    "support_calls,churned\n", "empty_file")],
                         ids=["zero-bytes", "header-only"])
def test_empty_files_fail(tmp_path: Path, schema_path: Path, text: str, problem: str) -> None:
    report = failing_report(tmp_path, schema_path, text=text)
    assert ("<file>", problem) in problems(report)


def test_no_input_files_fail(tmp_path: Path, schema_path: Path) -> None:
    report = failing_report(tmp_path, schema_path)
    assert ("<file>", "no_input_files") in problems(report)


def test_drift_against_the_previous_baseline_fails_naming_the_features(tmp_path: Path, schema_path: Path,
                                                                       clean: pd.DataFrame) -> None:
    from mlcore.drift.baseline import build_baseline
    from mlsettings.schema import DataSchema

    schema = DataSchema.from_dict(synthetic_schema())
    baseline = build_baseline({name: clean[name].tolist() for name in schema.feature_names}, schema)
    baseline_path = tmp_path / "previous" / "baseline.json"
    baseline_path.parent.mkdir()
    baseline_path.write_text(json.dumps(baseline))
    shifted = clean.copy()
    shifted["tenure_months"] = (pd.to_numeric(shifted["tenure_months"]) // 4).astype(str)
    shifted["support_calls"] = (pd.to_numeric(shifted["support_calls"]) + 6).astype(str)
    shifted["plan"] = "premium"
    report = failing_report(tmp_path, schema_path, shifted,
                            extra=["--baseline", str(baseline_path.parent), "--drift-thresholds",
                                   json.dumps({"weighted_drift": 0.4})])
    assert report["drift"]["status"] == "checked" and report["drift"]["drifted"] is True
    assert {("tenure_months", "drift"), ("support_calls", "drift"), ("plan", "drift")} <= problems(report)


def test_unchanged_data_does_not_drift(tmp_path: Path, schema_path: Path, clean: pd.DataFrame) -> None:
    from mlcore.drift.baseline import build_baseline
    from mlsettings.schema import DataSchema

    schema = DataSchema.from_dict(synthetic_schema())
    baseline_path = tmp_path / "baseline.json"
    baseline_path.write_text(json.dumps(build_baseline({n: clean[n].tolist() for n in schema.feature_names},
                                                       schema)))
    report = run_validate(tmp_path, schema_path, synthetic_frame(400, seed=6), extra=["--baseline",
                                                                                      str(baseline_path)])
    assert report["passed"] and report["drift"]["status"] == "checked"


def test_the_script_runs_as_a_file_and_exits_non_zero_on_a_violation(tmp_path: Path, schema_path: Path,
                                                                      clean: pd.DataFrame) -> None:
    import subprocess
    import sys

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    clean.drop(columns=["plan"]).to_csv(data_dir / "data.csv", index=False)
    script = Path(validate.__file__).resolve()
    completed = subprocess.run(
        [sys.executable, str(script), "--input-dir", str(data_dir), "--schema", str(schema_path),
         "--report-dir", str(tmp_path / "report"), "--message-file", str(tmp_path / "message")],
        cwd=tmp_path, capture_output=True, text=True, check=False)
    assert completed.returncode != 0
    assert "plan: missing_column" in completed.stderr
    assert "plan: missing_column" in (tmp_path / "message").read_text()


def test_the_pipelines_no_baseline_marker_skips_drift(tmp_path: Path, schema_path: Path, clean: pd.DataFrame) -> None:
    marker = tmp_path / "marker" / "no_previous_baseline.json"
    marker.parent.mkdir()
    marker.write_text(Path("pipelines/no_previous_baseline.json").read_text())
    report = run_validate(tmp_path, schema_path, clean, extra=["--baseline", str(marker.parent)])
    assert report["passed"] and report["drift"]["status"] == "skipped"


@pytest.mark.parametrize(("instance_type", "storage", "refused"), [
    ("ml.p3.2xlarge", "local", True), ("ml.g5.xlarge", "ebs", True), ("ml.g4dn.xlarge", "local", False),
    ("ml.m5.xlarge", "ebs", False)])
def test_a_run_whose_training_type_contradicts_the_volume_key_is_refused_first(
        tmp_path: Path, schema_path: Path, clean: pd.DataFrame, instance_type: str, storage: str,
        refused: bool) -> None:
    """The Train step carries a volume KMS key exactly when the configured type has no local storage; a run started
    with a TrainingInstanceType of the other storage class is refused by the first step, before any training."""
    extra = ["--training-instance-type", instance_type, "--training-storage", storage]
    if not refused:
        assert run_validate(tmp_path, schema_path, clean, extra=extra)["passed"] is True
        return
    with pytest.raises(validate.RunParameterError, match=f"TrainingInstanceType '{instance_type}'"):
        run_validate(tmp_path, schema_path, clean, extra=extra)
    assert "storage class" in (tmp_path / "message").read_text()
    assert not (tmp_path / "report").exists()
