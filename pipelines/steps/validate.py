"""Validate step: does the new data match the schema, and does it look like the data the last model saw?

Runs unchanged in a SageMaker processing container and locally (every path is an argument whose default
is the container path). Checks, each reported per feature in one JSON report:

* the file: missing or empty input, missing schema columns (extra columns are reported as warnings);
* per feature: non-numeric text in numeric features (``wrong_type``), values outside the schema's
  [min, max] (``out_of_range``), categories not in the schema (``unknown_category``), nulls in a
  non-nullable feature (``null_not_allowed``), a missing-value rate above ``max_missing_rate``
  (``too_many_nulls``);
* the label: nulls, values other than the schema's positive/negative, a single class;
* drift against the previous training baseline (optional input; skipped with a note when there is none),
  with the same statistics as the monitoring Lambda (``mlcore.drift.statistics``).

Any violation writes the report, writes a short reason to ``/opt/ml/output/message`` (SageMaker shows it as
the job's exit message) and raises ``DataValidationError`` so the process exits non-zero and the pipeline
step fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file inside a container: make the code bundle's root (holding mlcore/, pipelines/) importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd

from mlcore.drift.baseline import BaselineError, load_baseline, out_of_range_mask
from mlcore.drift.statistics import DriftThresholds, compare_columns
from mlcore.features import MISSING_MARKERS, FeatureError, category_text, encode_label
from mlsettings.instance_types import has_local_storage
from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION
from mlsettings.schema import DataSchema, FeatureSpec
from mlsettings.vocabulary import BASELINE_FILE, NO_BASELINE_FORMAT
from pipelines.datasets import RawDataError, csv_files_in, read_raw_csv

REPORT_NAME = "validation_report.json"
MAX_EXAMPLES = 5
# Per label class: the stratified split needs 3, and a test set of ~15 % of 10 rows per class is the least on
# which the quality gate's confidence bound can clear a typical threshold (training.min_rows_per_class).
MIN_ROWS_PER_CLASS = 10


class DataValidationError(RuntimeError):
    """The data failed validation; the message summarises the violations, the report has the details."""


def _violation(feature: str, problem: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"feature": feature, "problem": problem, "detail": detail, **extra}


def _missing_mask(values: np.ndarray) -> np.ndarray:
    return np.fromiter((v.strip() in MISSING_MARKERS for v in values), dtype=bool, count=values.size)


def _check_numeric(spec: FeatureSpec, values: np.ndarray, missing: np.ndarray,
                   violations: list[dict[str, Any]]) -> tuple[dict[str, Any], np.ndarray]:
    parsed = np.full(values.size, np.nan)
    bad_positions: list[int] = []
    for position in np.flatnonzero(~missing):
        try:
            parsed[position] = float(values[position])
        except ValueError:
            bad_positions.append(int(position))
    summary: dict[str, Any] = {"type": "numeric", "non_numeric": len(bad_positions)}
    if bad_positions:
        examples = [str(values[p]) for p in bad_positions[:MAX_EXAMPLES]]
        violations.append(_violation(spec.name, "wrong_type",
                                     f"{len(bad_positions)} value(s) are not numbers, e.g. {examples}",
                                     count=len(bad_positions), examples=examples))
    present = parsed[~np.isnan(parsed)]
    out_of_range = out_of_range_mask(spec, present)
    summary["out_of_range"] = int(out_of_range.sum())
    if present.size:
        finite = present[np.isfinite(present)]
        summary["min"] = float(finite.min()) if finite.size else None
        summary["max"] = float(finite.max()) if finite.size else None
    if out_of_range.any():
        outliers = [float(v) for v in present[out_of_range][:MAX_EXAMPLES]]
        violations.append(_violation(
            spec.name, "out_of_range",
            f"{int(out_of_range.sum())} value(s) outside the allowed range [{spec.min}, {spec.max}], "
            f"e.g. {outliers}", count=int(out_of_range.sum()), examples=outliers,
            allowed={"min": spec.min, "max": spec.max}))
    return summary, parsed


def _check_categorical(spec: FeatureSpec, values: np.ndarray, missing: np.ndarray,
                       violations: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str | None]]:
    texts = [None if m else category_text(v) for v, m in zip(values, missing, strict=True)]
    known = set(spec.categories)
    unknown: dict[str, int] = {}
    for text in texts:
        if text is not None and text not in known:
            unknown[text] = unknown.get(text, 0) + 1
    summary: dict[str, Any] = {"type": "categorical", "unknown_categories": sum(unknown.values())}
    if unknown:
        examples = sorted(unknown, key=lambda c: -unknown[c])[:MAX_EXAMPLES]
        violations.append(_violation(
            spec.name, "unknown_category",
            f"{sum(unknown.values())} value(s) are not among the schema's categories {list(spec.categories)}, "
            f"e.g. {examples}", count=sum(unknown.values()), examples=examples))
    return summary, texts


def _check_label(schema: DataSchema, frame: pd.DataFrame, violations: list[dict[str, Any]], *,
                 min_rows_per_class: int = MIN_ROWS_PER_CLASS) -> dict[str, Any]:
    """The label's checks of the schema's kind of model (binary, multiclass, regression)."""
    return _LABEL_CHECKS[schema.problem_type](schema, frame, violations, min_rows_per_class=min_rows_per_class)


def _check_binary_label(schema: DataSchema, frame: pd.DataFrame, violations: list[dict[str, Any]], *,
                        min_rows_per_class: int = MIN_ROWS_PER_CLASS) -> dict[str, Any]:
    label = schema.label
    values = frame[label.name].to_numpy(dtype=object)
    counts = {"positive": 0, "negative": 0, "missing": 0, "invalid": 0}
    invalid: dict[str, int] = {}
    for value in values:
        if str(value).strip() in MISSING_MARKERS:
            counts["missing"] += 1
            continue
        try:
            counts["positive" if encode_label(value, label) == 1 else "negative"] += 1
        except FeatureError:
            counts["invalid"] += 1
            invalid[str(value)] = invalid.get(str(value), 0) + 1
    if counts["missing"]:
        violations.append(_violation(label.name, "label_missing", f"{counts['missing']} row(s) have no label",
                                     count=counts["missing"]))
    if invalid:
        examples = sorted(invalid, key=lambda v: -invalid[v])[:MAX_EXAMPLES]
        violations.append(_violation(
            label.name, "label_invalid_value",
            f"{counts['invalid']} label(s) are neither {label.positive!r} (positive) nor {label.negative!r} "
            f"(negative), e.g. {examples}", count=counts["invalid"], examples=examples))
    present_classes = [name for name in ("positive", "negative") if counts[name]]
    if len(present_classes) < 2:
        only = present_classes[0] if present_classes else "none"
        violations.append(_violation(label.name, "label_single_class",
                                     f"the label needs both classes; found only: {only}",
                                     positives=counts["positive"], negatives=counts["negative"]))
    elif min(counts["positive"], counts["negative"]) < min_rows_per_class:
        smaller = "positive" if counts["positive"] < counts["negative"] else "negative"
        violations.append(_violation(
            label.name, "too_few_rows",
            f"the {smaller} class has {counts[smaller]} row(s); at least {min_rows_per_class} per class are needed "
            "for a stratified train/validation/test split and a quality gate that means something "
            "(training.min_rows_per_class)", positives=counts["positive"], negatives=counts["negative"],
            min_rows_per_class=min_rows_per_class))
    return counts


def _encoded_labels(schema: DataSchema, frame: pd.DataFrame, violations: list[dict[str, Any]]
                    ) -> tuple[list[float], dict[str, int]]:
    """Every present label encoded; missing and invalid ones counted and reported as violations."""
    label = schema.label
    encoded: list[float] = []
    counts = {"missing": 0, "invalid": 0}
    invalid: dict[str, int] = {}
    reason = ""
    for value in frame[label.name].to_numpy(dtype=object):
        if str(value).strip() in MISSING_MARKERS:
            counts["missing"] += 1
            continue
        try:
            encoded.append(encode_label(value, label))
        except FeatureError as err:
            counts["invalid"] += 1
            invalid[str(value)] = invalid.get(str(value), 0) + 1
            reason = str(err).split(": ", 1)[-1]
    if counts["missing"]:
        violations.append(_violation(label.name, "label_missing", f"{counts['missing']} row(s) have no label",
                                     count=counts["missing"]))
    if invalid:
        examples = sorted(invalid, key=lambda v: -invalid[v])[:MAX_EXAMPLES]
        violations.append(_violation(label.name, "label_invalid_value",
                                     f"{counts['invalid']} label(s) are invalid (e.g. {reason}), e.g. {examples}",
                                     count=counts["invalid"], examples=examples))
    return encoded, counts


def _check_multiclass_label(schema: DataSchema, frame: pd.DataFrame, violations: list[dict[str, Any]], *,
                            min_rows_per_class: int = MIN_ROWS_PER_CLASS) -> dict[str, Any]:
    """Every declared class present with at least ``min_rows_per_class`` rows (a stratified split per class)."""
    label = schema.label
    encoded, counts = _encoded_labels(schema, frame, violations)
    per_class = {str(cls): sum(1 for e in encoded if e == index) for index, cls in enumerate(label.classes)}
    short = {cls: count for cls, count in per_class.items() if count < min_rows_per_class}
    if short:
        violations.append(_violation(
            label.name, "too_few_rows",
            f"class(es) {sorted(short)} have {sorted(short.values())} row(s); at least {min_rows_per_class} per "
            "declared class are needed for a stratified train/validation/test split and a quality gate that means "
            "something (training.min_rows_per_class)", classes=per_class, min_rows_per_class=min_rows_per_class))
    return {**counts, "classes": per_class}


def _check_regression_label(schema: DataSchema, frame: pd.DataFrame, violations: list[dict[str, Any]], *,
                            min_rows_per_class: int = MIN_ROWS_PER_CLASS) -> dict[str, Any]:
    """Numbers within the schema's range; not constant (R² is undefined and nothing can be learnt); at least
    ``3 · min_rows_per_class`` rows (the split stratifies by target tercile at least)."""
    label = schema.label
    encoded, counts = _encoded_labels(schema, frame, violations)
    summary: dict[str, Any] = {**counts, "rows": len(encoded)}
    if encoded:
        summary.update(min=min(encoded), max=max(encoded), mean=sum(encoded) / len(encoded))
    if encoded and min(encoded) == max(encoded):
        violations.append(_violation(label.name, "label_constant",
                                     f"every label is {encoded[0]}: a regression target must vary",
                                     value=encoded[0]))
    elif len(encoded) < 3 * min_rows_per_class:
        violations.append(_violation(
            label.name, "too_few_rows",
            f"{len(encoded)} labelled row(s); at least {3 * min_rows_per_class} (3 x training.min_rows_per_class) "
            "are needed for the train/validation/test split and a quality gate that means something",
            rows=len(encoded), min_rows_per_class=min_rows_per_class))
    return summary


_LABEL_CHECKS: dict[str, Callable[..., dict[str, Any]]] = {
    BINARY: _check_binary_label, MULTICLASS: _check_multiclass_label, REGRESSION: _check_regression_label}


def _header_hint(columns: Sequence[str], expected: Sequence[str]) -> str | None:
    """Why most schema columns are missing, when the file's first line says so: a wrong delimiter, or data
    where the header should be."""
    if len(columns) == 1:
        for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if columns[0].count(delimiter) >= min(3, len(expected) - 1):
                return (f"the header is one column holding {name}: the data must be comma-separated CSV "
                        f"(found {columns[0][:60]!r}...)")

    def looks_like_data(name: str) -> bool:
        text = name.strip()
        try:
            float(text.split(".")[0] if text.count(".") > 1 else text)  # pandas renames duplicates to "x.1"
        except ValueError:
            return text in MISSING_MARKERS or text == ""
        return True

    if columns and sum(looks_like_data(c) for c in columns) >= len(columns) / 2:
        return ("the first line looks like data, not a header: the file needs a header row with the schema's "
                f"column names ({', '.join(expected[:3])}, ...)")
    return None


def _drift_section(baseline_path: Path | None, schema: DataSchema, columns: Mapping[str, Sequence[Any]],
                   thresholds: DriftThresholds, can_compare: bool, violations: list[dict[str, Any]],
                   warnings: list[dict[str, Any]]) -> dict[str, Any]:
    if baseline_path is None or _is_no_baseline_marker(baseline_path):
        return {"status": "skipped", "note": "no previous training baseline was given (first training run?)"}
    try:
        baseline = load_baseline(baseline_path)
    except BaselineError as err:
        violations.append(_violation("<baseline>", "baseline_unreadable", str(err)))
        return {"status": "failed", "note": str(err)}
    if not can_compare:
        return {"status": "skipped", "note": "the data lacks schema columns; drift was not computed"}
    baseline_features = set(baseline["features"])
    if baseline_features != set(schema.feature_names):
        note = (f"the previous baseline's features {sorted(baseline_features)} differ from this schema's; "
                "drift against a different feature set is meaningless")
        warnings.append(_violation("<baseline>", "baseline_schema_changed", note))
        return {"status": "skipped", "note": note}
    report = compare_columns(baseline, {name: columns[name] for name in baseline_features},
                             thresholds=thresholds).to_dict()
    for name, item in report["features"].items():
        if item["drifted"]:
            entry = _violation(name, "drift", f"distribution drifted against the previous baseline: "
                               f"signals {item['signals']} (psi={item['psi']}, js={item['js']}, ks={item['ks']})",
                               signals=item["signals"])
            (violations if report["drifted"] else warnings).append(entry)
    return {"status": "checked", "drifted": report["drifted"], "report": report}


def _is_no_baseline_marker(path: Path) -> bool:
    """The pipeline's PreviousBaselineUri defaults to a marker document that stands for "no baseline"
    (a processing input cannot be optional), so the marker means "skip", not "unreadable baseline"."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("format") == NO_BASELINE_FORMAT


def validate_frame(frame: pd.DataFrame, schema: DataSchema, *, baseline_path: Path | None = None,
                   drift_thresholds: DriftThresholds | None = None,
                   min_rows_per_class: int = MIN_ROWS_PER_CLASS) -> dict[str, Any]:
    """Every check on a table of raw strings; returns the report (``passed`` is False on any violation)."""
    violations: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    columns = [str(c) for c in frame.columns]
    expected = [*schema.feature_names, schema.label.name]
    absent = [name for name in expected if name not in columns]
    hint = _header_hint(columns, expected) if len(absent) > len(expected) / 2 else None
    if hint:
        # One violation that says what is wrong, instead of one "missing column" per schema column.
        violations.append(_violation("<file>", "unreadable_header", f"{len(absent)} of {len(expected)} schema "
                                     f"columns are missing; {hint}", missing=len(absent)))
    else:
        for name in absent:
            violations.append(_violation(name, "missing_column", f"column {name!r} required by schema "
                                         f"{schema.name!r} is not in the data"))
    for name in columns:
        if name not in expected:
            warnings.append(_violation(name, "extra_column", f"column {name!r} is not in the schema; ignored"))
    rows = len(frame)
    if rows == 0:
        violations.append(_violation("<file>", "empty_file", "the data has a header but no rows"))

    features: dict[str, Any] = {}
    drift_columns: dict[str, Sequence[Any]] = {}
    if rows:
        for spec in schema.features:
            if spec.name not in columns:
                continue
            values = frame[spec.name].to_numpy(dtype=object).astype(str)
            missing = _missing_mask(values)
            if spec.is_numeric:
                summary, parsed = _check_numeric(spec, values, missing, violations)
                drift_columns[spec.name] = parsed.tolist()
            else:
                summary, texts = _check_categorical(spec, values, missing, violations)
                drift_columns[spec.name] = texts
            missing_count = int(missing.sum())
            summary["missing"] = missing_count
            summary["missing_rate"] = missing_count / rows
            if missing_count and not spec.nullable:
                violations.append(_violation(spec.name, "null_not_allowed",
                                             f"{missing_count} null value(s) in a non-nullable feature",
                                             count=missing_count))
            elif summary["missing_rate"] > spec.max_missing_rate:
                violations.append(_violation(
                    spec.name, "too_many_nulls",
                    f"missing rate {summary['missing_rate']:.4f} exceeds max_missing_rate "
                    f"{spec.max_missing_rate}", missing_rate=summary["missing_rate"],
                    max_missing_rate=spec.max_missing_rate))
            features[spec.name] = summary
    label_counts = (_check_label(schema, frame, violations, min_rows_per_class=min_rows_per_class)
                    if rows and schema.label.name in columns else None)
    can_compare = bool(rows) and all(name in drift_columns for name in schema.feature_names)
    drift = _drift_section(baseline_path, schema, drift_columns, drift_thresholds or DriftThresholds(),
                           can_compare, violations, warnings)
    return {
        "schema": {"name": schema.name, "version": schema.version},
        "rows": rows,
        "columns": columns,
        "passed": not violations,
        "violations": violations,
        "warnings": warnings,
        "features": features,
        "label": label_counts,
        "drift": drift,
    }


def summarise(violations: Sequence[Mapping[str, Any]], limit: int = 8) -> str:
    """A one-paragraph summary ("feature: problem; …") short enough for SageMaker's 1 KB exit message."""
    items = [f"{v['feature']}: {v['problem']}" for v in violations]
    more = f"; and {len(items) - limit} more" if len(items) > limit else ""
    return f"data validation failed with {len(items)} violation(s): " + "; ".join(items[:limit]) + more


def write_exit_message(path: Path | None, message: str) -> None:
    """Best effort: SageMaker reads the first 1 KB of this file as the job's ExitMessage."""
    if path is None or not path.parent.is_dir():
        return
    path.write_text(message[:1024], encoding="utf-8")


def run(*, input_dir: Path, schema_path: Path, report_dir: Path, baseline_path: Path | None = None,
        drift_thresholds: Mapping[str, Any] | None = None, message_file: Path | None = None,
        min_rows_per_class: int = MIN_ROWS_PER_CLASS) -> dict[str, Any]:
    """Validate, write ``<report_dir>/validation_report.json`` and raise ``DataValidationError`` on failure."""
    schema = DataSchema.load(schema_path)
    thresholds = DriftThresholds.from_dict(drift_thresholds)
    files = csv_files_in(input_dir) if input_dir.exists() else []
    report: dict[str, Any]
    try:
        frame = read_raw_csv(files)
    except RawDataError as err:
        problem = "empty_file" if "empty" in str(err) else "unreadable_input"
        if not files:
            problem = "no_input_files"
        violation = _violation("<file>", problem, f"{input_dir}: {err}")
        report = {"schema": {"name": schema.name, "version": schema.version}, "rows": 0, "columns": [],
                  "passed": False, "violations": [violation], "warnings": [], "features": {}, "label": None,
                  "drift": {"status": "skipped", "note": "the data could not be read"}}
    else:
        report = validate_frame(frame, schema, baseline_path=baseline_path, drift_thresholds=thresholds,
                                min_rows_per_class=min_rows_per_class)
    report["input_files"] = [p.name for p in files]
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / REPORT_NAME).write_text(json.dumps(report, indent=2, default=_json_default) + "\n",
                                          encoding="utf-8")
    if not report["passed"]:
        message = summarise(report["violations"])
        write_exit_message(message_file, message)
        raise DataValidationError(message)
    return report


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"),
                        help="folder (or file) with the raw CSV data, header row required")
    parser.add_argument("--schema", type=Path, default=Path("/opt/ml/processing/input/schema/schema.json"))
    parser.add_argument("--baseline", type=str, default="",
                        help="previous training baseline JSON (file or folder with baseline.json); "
                             "empty or absent: drift is skipped")
    parser.add_argument("--drift-thresholds", type=str, default="",
                        help="JSON object of mlcore.drift.statistics.DriftThresholds overrides")
    parser.add_argument("--drift-threshold", action="append", default=[], metavar="NAME=VALUE",
                        help="one DriftThresholds override (the pipeline passes the configured ones this way: a "
                             "ContainerArguments item holds at most 256 characters)")
    parser.add_argument("--min-rows-per-class", type=int, default=MIN_ROWS_PER_CLASS,
                        help="fewest rows of each label class the data must have")
    parser.add_argument("--report-dir", type=Path, default=Path("/opt/ml/processing/output/report"))
    parser.add_argument("--message-file", type=Path, default=Path("/opt/ml/output/message"))
    parser.add_argument("--training-instance-type", default="",
                        help="the run's TrainingInstanceType parameter, checked against --training-storage")
    parser.add_argument("--training-storage", choices=("local", "ebs", ""), default="",
                        help="the storage class the Train step's request was built for (local NVMe: no volume key)")
    return parser.parse_args(argv)


class RunParameterError(ValueError):
    """A pipeline parameter this run was started with contradicts the definition it runs."""


def check_training_instance_type(instance_type: str, storage: str) -> None:
    """The Train step carries a volume KMS key exactly when its configured type has no local storage, and the
    API refuses a key on a type with local storage (mlsettings.instance_types): a run started with a type of the
    other storage class would fail at the Train step, or train without the project key. Refuse it here, before
    any training is paid for."""
    if not (instance_type and storage):
        return
    try:
        local = has_local_storage(instance_type)
    except ValueError as err:
        raise RunParameterError(f"TrainingInstanceType {instance_type!r}: {err}") from err
    if local != (storage == "local"):
        have = "local NVMe storage" if local else "EBS storage only"
        want = "local NVMe storage" if storage == "local" else "EBS storage"
        raise RunParameterError(
            f"TrainingInstanceType {instance_type!r} has {have}, but this pipeline's Train step was built for "
            f"{want} (ResourceConfig.VolumeKmsKeyId {'absent' if storage == 'local' else 'set'}); start the run "
            "with a type of the same storage class or change training.instance_type and deploy")


def resolve_baseline(text: str) -> Path | None:
    """The baseline argument may name a file or a folder (a processing input); absent means "no baseline"."""
    path = _optional_path(text)
    if path is None or not path.exists():
        return None
    if path.is_dir():
        candidates = sorted(path.rglob("*.json"), key=lambda p: (p.name != BASELINE_FILE, str(p)))
        return candidates[0] if candidates else None
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    try:
        check_training_instance_type(args.training_instance_type, args.training_storage)
    except RunParameterError as err:
        write_exit_message(args.message_file, str(err))
        raise
    thresholds = json.loads(args.drift_thresholds) if args.drift_thresholds else {}
    for item in args.drift_threshold:
        name, _, value = item.partition("=")
        thresholds[name] = json.loads(value)
    report = run(input_dir=args.input_dir, schema_path=args.schema, report_dir=args.report_dir,
                 baseline_path=resolve_baseline(args.baseline), drift_thresholds=thresholds or None,
                 message_file=args.message_file, min_rows_per_class=args.min_rows_per_class)
    drift_note = report["drift"].get("note") or f"drifted={report['drift'].get('drifted')}"
    print(f"validation passed: {report['rows']} rows, {len(report['warnings'])} warning(s), drift: {drift_note}")
    return report


if __name__ == "__main__":
    main()
