"""`mlops baseline` and `mlops drift`: the drift baseline from a CSV file, and a drift report of captured
traffic (a folder of capture files or an s3:// prefix) against a baseline — the code the training
pipeline and the drift Lambda run."""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path
from typing import Any

import boto3

from lambdas.drift_monitor.capture_window import (
    iter_local_lines,
    iter_s3_lines,
    list_all_keys,
    local_capture_files,
)
from lambdas.drift_monitor.drift_run import LineSource, VariantPlan, analyse_variant
from lambdas.drift_monitor.variant_models import split_s3_uri
from mlcore.baseline import BaselineError, build_baseline, load_baseline
from mlcore.drift import DriftThresholds
from mlcore.drift_html import render_drift_html
from mlcore.schema import DataSchema, SchemaError
from mlops.errors import OperatorError
from mlops.output import emit_json
from pipelines.datasets import RawDataError, read_raw_csv


def register(subparsers: Any) -> None:
    baseline = subparsers.add_parser(
        "baseline", help="build a drift baseline from a CSV file",
        description="Bin every schema feature of a raw CSV file (header row) into the drift baseline format "
                    "(mlops-drift-baseline/1), as the training pipeline's baseline step does.")
    baseline.add_argument("--data", type=Path, required=True, help="raw CSV file with a header row")
    baseline.add_argument("--schema", type=Path, required=True, help="schema JSON (pipelines/schemas/…)")
    baseline.add_argument("--out", type=Path, required=True, help="where to write BASELINE.json")
    baseline.add_argument("--bins", type=int, default=10, help="quantile bins per numeric feature (default 10)")
    baseline.add_argument("--probability-column",
                          help="column with the model's positive-class probabilities (prediction baseline)")
    baseline.set_defaults(handler=run_baseline)

    drift = subparsers.add_parser(
        "drift", help="compare captured traffic with a baseline",
        description="Stream data-capture JSONL (a file, a folder, or an s3://bucket/prefix) through the drift "
                    "statistics against BASELINE.json. Exit status 0; with --fail-on-drift 1 when drifted.")
    drift.add_argument("--baseline", type=Path, required=True)
    drift.add_argument("--capture", required=True, help="capture file, folder, or s3://bucket/prefix")
    drift.add_argument("--prediction-log", help="the inference API's prediction log (folder or s3:// prefix)")
    drift.add_argument("--thresholds", help="JSON object of DriftThresholds overrides, e.g. '{\"psi\": 0.25}'")
    drift.add_argument("--html", type=Path, help="also write the HTML report here")
    drift.add_argument("--json", action="store_true", help="print the drift report as JSON")
    drift.add_argument("--fail-on-drift", action="store_true", help="exit 1 when the window drifted")
    drift.set_defaults(handler=run_drift_command)


def run_baseline(args: argparse.Namespace) -> int:
    try:
        schema = DataSchema.load(args.schema)
    except (SchemaError, OSError) as err:
        raise OperatorError(f"--schema {args.schema}: {err}") from err
    if not args.data.is_file():
        raise OperatorError(f"--data {args.data} is not a file")
    try:
        frame = read_raw_csv(args.data)
    except RawDataError as err:
        raise OperatorError(f"--data: {err}") from err
    absent = [name for name in schema.feature_names if name not in frame.columns]
    if absent:
        raise OperatorError(f"--data {args.data} lacks the schema's features {absent}")
    probabilities = None
    if args.probability_column:
        if args.probability_column not in frame.columns:
            raise OperatorError(f"--probability-column {args.probability_column!r} is not a column of the data")
        try:
            probabilities = [float(v) for v in frame[args.probability_column]]
        except ValueError as err:
            raise OperatorError(f"--probability-column: {err}") from err
    try:
        baseline = build_baseline({name: frame[name].tolist() for name in schema.feature_names}, schema,
                                  probabilities=probabilities, bins=args.bins)
    except (BaselineError, ValueError) as err:
        raise OperatorError(str(err)) from err
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
    print(f"baseline of {baseline['rows']} rows, {len(baseline['features'])} features -> {args.out}")
    return 0


def capture_sources(location: str, kind: Any, s3: Any = None) -> list[LineSource]:
    """Line sources of a local file/folder or every object under an s3:// prefix."""
    if location.startswith("s3://"):
        bucket, prefix = split_s3_uri(location if location.count("/") >= 3 else location + "/")
        client = s3 or boto3.client("s3")
        keys = list_all_keys(client, bucket=bucket, prefix=prefix)
        if not keys:
            raise OperatorError(f"{location}: no objects under this prefix")
        return [LineSource(name=f"s3://{bucket}/{key}", kind=kind,
                           open=partial(iter_s3_lines, client, bucket=bucket, key=key)) for key in keys]
    path = Path(location)
    if not path.exists():
        raise OperatorError(f"{location}: no such file or folder")
    return [LineSource(name=str(file), kind=kind, open=partial(iter_local_lines, file))
            for file in local_capture_files(path)]


def run_drift_command(args: argparse.Namespace) -> int:
    try:
        baseline = load_baseline(args.baseline)
    except BaselineError as err:
        raise OperatorError(f"--baseline: {err}") from err
    try:
        thresholds = DriftThresholds.from_dict(json.loads(args.thresholds) if args.thresholds else None)
    except (json.JSONDecodeError, ValueError, TypeError) as err:
        raise OperatorError(f"--thresholds: {err}") from err
    sources = capture_sources(args.capture, "endpoint_capture")
    if args.prediction_log:
        sources += capture_sources(args.prediction_log, "prediction_log")
    entry = analyse_variant(VariantPlan(variant="capture", sources=sources, baseline=baseline),
                            thresholds=thresholds)
    report = entry["drift"]
    report["objects"] = entry["objects"]
    report["unreadable_objects"] = entry["unreadable_objects"]
    report["skipped_records"] = entry["skipped_records"]
    if args.html:
        args.html.write_text(render_drift_html(report, baseline, title=f"Drift of {args.capture}"),
                             encoding="utf-8")
    if args.json:
        emit_json(report)
    else:
        print_report(report)
    return 1 if args.fail_on_drift and report["drifted"] else 0


def print_report(report: dict[str, Any]) -> None:
    print(f"rows {report['rows']}  malformed {report['malformed']}  drifted features "
          f"{report['drifted_features']} ({report['drifted_share']:.0%})  window drifted: {report['drifted']}")
    for reason, count in report["malformed_reasons"].items():
        print(f"  malformed {reason}: {count}")
    print(f"{'feature':<28} {'psi':>8} {'js':>7} {'ks':>7} {'missing':>8}  signals")
    for name, item in sorted(report["features"].items(), key=lambda kv: -(kv[1]["psi"] or 0.0)):
        print(f"{name[:28]:<28} {_fmt(item['psi']):>8} {_fmt(item['js']):>7} {_fmt(item['ks']):>7} "
              f"{_fmt(item['missing_rate']):>8}  {','.join(item['signals']) or '-'}")
    for key in ("prediction", "confidence"):
        item = report[key]
        print(f"{key:<28} {_fmt(item['psi']):>8} {_fmt(item['js']):>7} {_fmt(item['ks']):>7} {'':>8}  "
              f"{','.join(item['signals']) or '-'}")


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"
