"""`mlops baseline` and `mlops drift`: the drift baseline from a CSV file, and a drift report of captured
traffic (a folder of capture files or an s3:// prefix) against a baseline — the code the training
pipeline and the drift Lambda run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlops.arguments import integer
from mlops.aws_session import add_aws_options, aws_session
from mlops.errors import OperatorError
from mlops.output import emit_json
from mlops.project_config import defaults_config, model_config

# `mlops drift --fail-on-drift` exit statuses (2 stays "bad input", as for every command).
EXIT_NOT_DRIFTED = 0
EXIT_DRIFTED = 1
EXIT_NOT_ENOUGH_DATA = 3
EXIT_DATA_QUALITY = 4


def register(subparsers: Any) -> None:
    baseline = subparsers.add_parser(
        "baseline", help="build a drift baseline from a CSV file",
        description="Bin every schema feature of a raw CSV file (header row) into the drift baseline format "
                    "(mlops-drift-baseline/1), as the training pipeline's baseline step does.")
    baseline.add_argument("--data", type=Path, required=True, help="raw CSV file with a header row")
    baseline.add_argument("--schema", type=Path, required=True, help="schema JSON (pipelines/schemas/…)")
    baseline.add_argument("--out", type=Path, required=True, help="where to write BASELINE.json")
    baseline.add_argument("--bins", type=integer("--bins", low=2, high=100), default=10,
                          help="quantile bins per numeric feature (default 10)")
    baseline.add_argument("--probability-column",
                          help="column with the model's positive-class probabilities (prediction baseline)")
    baseline.set_defaults(handler=run_baseline)

    drift = subparsers.add_parser(
        "drift", help="compare captured traffic with a baseline",
        description="Stream data-capture JSONL (a file, a folder, or an s3://bucket/prefix) through the drift "
                    "statistics against BASELINE.json, with the thresholds the deployed drift Lambda uses "
                    "(--env's monitoring settings; without --env, cdk.json's defaults). Exit status 0; with "
                    f"--fail-on-drift, in this order: {EXIT_DATA_QUALITY} when the data breaks the schema "
                    f"(data-quality violations, judged at any window size), {EXIT_NOT_ENOUGH_DATA} when there was not "
                    "enough data to judge drift (fewer rows than monitoring.drift.min_rows: an empty capture, every "
                    f"line malformed), {EXIT_DRIFTED} when the window drifted; 2 for bad input.")
    drift.add_argument("--baseline", type=Path, required=True, metavar="BASELINE.json",
                       help="the drift baseline (mlops baseline, or the pipeline's baseline step)")
    drift.add_argument("--capture", required=True, metavar="PATH_OR_S3_URI",
                       help="capture file, folder, or s3://bucket/prefix")
    drift.add_argument("--prediction-log", metavar="PATH_OR_S3_URI",
                       help="the inference API's prediction log (folder or s3:// prefix)")
    drift.add_argument("--thresholds", metavar="JSON",
                       help="JSON object of DriftThresholds overrides on top of the configured ones, "
                            "e.g. '{\"psi\": 0.25}'")
    drift.add_argument("--html", type=Path, metavar="FILE.html",
                       help="also write the HTML report here (missing folders are created)")
    drift.add_argument("--json", action="store_true", help="print the drift report as JSON")
    drift.add_argument("--workers", type=_positive_int, metavar="N",
                       help="parsing processes (default: one per CPU, at most 4 — what the drift Lambda and the "
                            "Processing job use)")
    drift.add_argument("--fail-on-drift", action="store_true",
                       help=f"exit {EXIT_DATA_QUALITY} when the data breaks the schema (data-quality violations), "
                            f"else {EXIT_NOT_ENOUGH_DATA} when there was not enough data to judge drift, else "
                            f"{EXIT_DRIFTED} when the window drifted")
    add_aws_options(drift, env_required=False,
                    env_help="take the drift thresholds (and the region for s3://) from this environment "
                             "(default: cdk.json's defaults, the region from AWS_DEFAULT_REGION)")
    drift.set_defaults(handler=run_drift_command)


def run_baseline(args: argparse.Namespace) -> int:
    from mlcore.drift.baseline import BaselineError, build_baseline
    from mlsettings.schema import DataSchema, SchemaError
    from pipelines.datasets import RawDataError, read_raw_csv

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
        if args.probability_column == schema.label.name:
            raise OperatorError(f"--probability-column {args.probability_column!r} is the schema's label column; "
                                "allowed: the column of the model's predicted probabilities (the baseline of the "
                                "prediction distribution is the model's scores, not the true labels)")
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
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise OperatorError(f"--out {args.out}: cannot write ({err.strerror or err})") from None
    print(f"baseline of {baseline['rows']} rows, {len(baseline['features'])} features -> {args.out}")
    return 0


def capture_sources(location: str, kind: Any, s3: Any = None) -> list[Any]:
    """Line sources (``LineSource``) of a local file/folder or every object under an s3:// prefix."""
    from mlcore.drift.run import local_source
    from mlcore.drift.window import local_capture_files
    from mlcore.s3_uri import split_s3_uri
    from mlplatform.monitoring.capture_window import list_all_keys, s3_line_source

    if location.startswith("s3://"):
        if s3 is None:
            raise OperatorError(f"{location}: an s3:// location needs an S3 client")
        try:
            bucket, prefix = split_s3_uri(location, key_required=False)
        except ValueError:
            raise OperatorError(f"{location}: no bucket; allowed: s3://BUCKET/PREFIX") from None
        try:
            keys = list_all_keys(s3, bucket=bucket, prefix=prefix)
        except s3.exceptions.NoSuchBucket:
            raise OperatorError(f"{location}: bucket {bucket!r} does not exist (or is in another account)") from None
        if not keys:
            raise OperatorError(f"{location}: no objects under this prefix")
        return [s3_line_source(s3, bucket=bucket, key=key, kind=kind) for key in keys]
    path = Path(location)
    if not path.exists():
        raise OperatorError(f"{location}: no such file or folder")
    return [local_source(file, kind) for file in local_capture_files(path)]


def configured_thresholds(args: argparse.Namespace) -> Any:
    """The deployed drift Lambda's thresholds for --env (or cdk.json's defaults), then --thresholds on top."""
    from mlcore.drift.statistics import DriftThresholds
    from mlsettings.config import drift_thresholds

    # The model's drift settings (its monitoring section over the environment's) with --env; without, the defaults.
    config = model_config(args.env, getattr(args, "model", None)) if args.env else defaults_config()
    values = drift_thresholds(config)  # the drift Lambda's DRIFT_THRESHOLDS for this environment
    if args.thresholds:
        try:
            overrides = json.loads(args.thresholds)
        except json.JSONDecodeError as err:
            raise OperatorError(f"--thresholds is not JSON: {err}") from err
        if not isinstance(overrides, dict):
            raise OperatorError(f"--thresholds is {args.thresholds!r}; allowed: a JSON object")
        values.update(overrides)
    try:
        return DriftThresholds.from_dict(values)
    except (ValueError, TypeError) as err:
        raise OperatorError(f"--thresholds: {err}") from err


def run_drift_command(args: argparse.Namespace) -> int:
    from mlcore.drift.baseline import BaselineError, load_baseline
    from mlcore.drift.html_report import render_drift_html
    from mlcore.drift.run import VariantPlan, analyse_variant, default_workers

    if args.html is not None and args.html.is_dir():
        raise OperatorError(f"--html {args.html} is a folder; allowed: a file path such as {args.html}/drift.html")
    try:
        baseline = load_baseline(args.baseline)
    except BaselineError as err:
        raise OperatorError(f"--baseline: {err}") from err
    thresholds = configured_thresholds(args)
    locations = [args.capture] + ([args.prediction_log] if args.prediction_log else [])
    s3 = aws_session(args).client("s3") if any(loc.startswith("s3://") for loc in locations) else None
    sources = capture_sources(args.capture, "endpoint_capture", s3)
    if args.prediction_log:
        sources += capture_sources(args.prediction_log, "prediction_log", s3)
    entry = analyse_variant(VariantPlan(variant="capture", sources=sources, baseline=baseline),
                            thresholds=thresholds, workers=args.workers or default_workers())
    report = entry["drift"]
    report["objects"] = entry["objects"]
    report["unreadable_objects"] = entry["unreadable_objects"]
    report["skipped_records"] = entry["skipped_records"]
    report["thresholds"] = thresholds.to_dict()
    if args.html:
        try:
            args.html.parent.mkdir(parents=True, exist_ok=True)
            args.html.write_text(render_drift_html(report, baseline, title=f"Drift of {args.capture}"),
                                 encoding="utf-8")
        except OSError as err:
            raise OperatorError(f"--html {args.html}: cannot write ({err.strerror or err})") from err
    if args.json:
        emit_json(report)
    else:
        print_report(report)
    if not report["enough_data"]:
        print(f"mlops drift: not enough data to judge: {report['rows']} rows, fewer than min_rows "
              f"{thresholds.min_rows} ({report['malformed']} malformed lines)", file=sys.stderr)
    if not args.fail_on_drift:
        return EXIT_NOT_DRIFTED
    if report["data_quality_features"]:
        # Values the schema forbids (or a missing rate beyond the noise) fail at any window size: bad data is
        # its own verdict, before "not enough data" and before drift.
        return EXIT_DATA_QUALITY
    if not report["enough_data"]:
        return EXIT_NOT_ENOUGH_DATA
    return EXIT_DRIFTED if report["drifted"] else EXIT_NOT_DRIFTED


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}; allowed: an integer >= 1")
    return value


def print_report(report: dict[str, Any]) -> None:
    print(f"rows {report['rows']}  malformed {report['malformed']}  drifted features "
          f"{report['drifted_features']} ({report['drifted_share']:.0%})  importance-weighted drift "
          f"{report['weighted_drift_score']:.2f} (alarm at {report['thresholds']['weighted_drift']:g})  "
          f"window drifted: {report['drifted']}")
    violations = report["data_quality_features"]
    print(f"data-quality violations: {len(violations)}" + (f" ({', '.join(violations)}; in the top "
          f"{report['thresholds']['top_features']} features: {report['data_quality_top_violations']})"
                                                           if violations else ""))
    for reason, count in report["malformed_reasons"].items():
        print(f"  malformed {reason}: {count}")
    print(f"{'feature':<28} {'psi':>8} {'js':>7} {'ks':>7} {'missing':>8}  signals")
    for name, item in sorted(report["features"].items(), key=lambda kv: -(kv[1]["psi"] or 0.0)):
        print(f"{name[:28]:<28} {_fmt(item['psi']):>8} {_fmt(item['js']):>7} {_fmt(item['ks']):>7} "
              f"{_fmt(item['missing_rate']):>8}  {','.join(item['signals'] + item['quality_signals']) or '-'}")
    for key in ("prediction", "confidence"):
        item = report[key]
        print(f"{key:<28} {_fmt(item['psi']):>8} {_fmt(item['js']):>7} {_fmt(item['ks']):>7} {'':>8}  "
              f"{','.join(item['signals']) or '-'}")


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"
