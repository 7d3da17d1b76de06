"""The drift run as a SageMaker Processing job (``monitoring.drift.engine: processing``).

Same code as the Lambda (``drift_run``), on local folders: the job's ProcessingInputs copy (or stream with
``S3InputMode: Pipe``/FastFile) the window's capture prefixes to the container, the output folder is
uploaded to the report prefix, and the drift Lambda publishes the metrics when the report lands
(S3 notification → ``{"Records": [...]}``). Run it locally the same way::

    python -m lambdas.drift_monitor.processing_entry --endpoint E \\
        --variant Champion=/opt/ml/processing/baseline/Champion.json:/opt/ml/processing/capture/Champion \\
        --prediction-log /opt/ml/processing/prediction-log --out /opt/ml/processing/report

``--baseline FILE --capture-dir DIR`` is the one-variant shorthand (variant ``Champion``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from lambdas.drift_monitor.capture_window import iter_local_lines, local_capture_files
from lambdas.drift_monitor.drift_run import (
    DEFAULT_CHUNK_LINES,
    LineSource,
    VariantPlan,
    render_variant_pages,
    run_drift,
)
from lambdas.drift_monitor.monitor_flow import REPORT_FILE
from mlcore.baseline import BaselineError, load_baseline
from mlcore.drift import DriftThresholds


def _sources(folder: Path, kind: str) -> list[LineSource]:
    return [LineSource(name=str(path), kind=kind,  # type: ignore[arg-type]
                       open=partial(iter_local_lines, path)) for path in local_capture_files(folder)]


def build_plans(variants: Sequence[tuple[str, Path, Path]], prediction_log: Path | None,
                prediction_log_variant: str) -> list[VariantPlan]:
    plans = []
    for name, baseline_path, capture_dir in variants:
        sources = _sources(capture_dir, "endpoint_capture") if capture_dir.exists() else []
        if prediction_log is not None and name == prediction_log_variant and prediction_log.exists():
            sources += _sources(prediction_log, "prediction_log")
        try:
            baseline = load_baseline(baseline_path)
            plans.append(VariantPlan(variant=name, sources=sources, baseline=baseline,
                                     baseline_uri=str(baseline_path)))
        except BaselineError as err:
            plans.append(VariantPlan(variant=name, sources=sources, skip_reason=str(err),
                                     baseline_uri=str(baseline_path)))
    return plans


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint", default="endpoint")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=BASELINE:CAPTURE_DIR")
    parser.add_argument("--baseline", type=Path, help="one-variant shorthand: the baseline file")
    parser.add_argument("--capture-dir", type=Path, help="one-variant shorthand: the capture folder")
    parser.add_argument("--prediction-log", type=Path)
    parser.add_argument("--prediction-log-variant", default="Champion")
    parser.add_argument("--thresholds", default="{}", help="DriftThresholds overrides as JSON")
    parser.add_argument("--chunk-lines", type=int, default=DEFAULT_CHUNK_LINES)
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8),
                        help="parsing processes (default: one per CPU, at most 8)")
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    variants: list[tuple[str, Path, Path]] = []
    for spec in args.variant:
        name, _, paths = spec.partition("=")
        baseline, _, capture = paths.partition(":")
        if not name or not baseline or not capture:
            print(f"--variant {spec!r}: expected NAME=BASELINE:CAPTURE_DIR", file=sys.stderr)
            return 2
        variants.append((name, Path(baseline), Path(capture)))
    if args.baseline and args.capture_dir:
        variants.append(("Champion", args.baseline, args.capture_dir))
    if not variants:
        print("give --variant NAME=BASELINE:CAPTURE_DIR or --baseline with --capture-dir", file=sys.stderr)
        return 2
    plans = build_plans(variants, args.prediction_log, args.prediction_log_variant)
    report = run_drift(plans, endpoint=args.endpoint, window=None,
                       thresholds=DriftThresholds.from_dict(json.loads(args.thresholds)),
                       chunk_lines=args.chunk_lines, workers=args.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    pages = render_variant_pages(report, plans)
    for name, page in pages.items():
        (args.out / f"{name}.html").write_text(page, encoding="utf-8")
    report["html_reports"] = {name: f"{name}.html" for name in pages}
    (args.out / REPORT_FILE).write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
    print(json.dumps({"report": str(args.out / REPORT_FILE), "drifted_variants": report["drifted_variants"],
                      "skipped_variants": report["skipped_variants"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
