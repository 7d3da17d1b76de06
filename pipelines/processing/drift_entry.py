"""The drift run as a SageMaker Processing job (``monitoring.drift.engine: processing``).

Same code as the Lambda (``mlcore.drift.run``), on local folders: the job's ProcessingInputs copy (or stream with
``S3InputMode: Pipe``/FastFile) the window's capture prefixes to the container, the output folder is
uploaded to the report prefix, and the drift Lambda publishes the metrics when the report lands
(S3 notification → ``{"Records": [...]}``). Run it locally the same way::

    python -m pipelines.processing.drift_entry --endpoint E \\
        --variant Champion=/opt/ml/processing/baseline/Champion.json:/opt/ml/processing/capture/Champion \\
        --prediction-log /opt/ml/processing/prediction-log --out /opt/ml/processing/report

``--baseline FILE --capture-dir DIR`` is the one-variant shorthand (variant ``Champion``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from mlcore.drift.baseline import BaselineError, baseline_schema, load_baseline
from mlcore.drift.ground_truth import QualityJoin, read_labels
from mlcore.drift.run import (
    DEFAULT_CHUNK_LINES,
    REPORT_FILE,
    LineSource,
    QualitySettings,
    VariantPlan,
    render_variant_pages,
    run_drift,
)
from mlcore.drift.statistics import DriftThresholds
from mlcore.drift.window import iter_local_lines, local_capture_files
from mlsettings.vocabulary import CHAMPION


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


def _quality(args: argparse.Namespace, quality: dict[str, Any], plans: list[VariantPlan]) -> tuple[
        QualityJoin | None, list[VariantPlan] | None, dict[str, Any] | None, QualitySettings | None]:
    """The ground-truth join, as monitor_flow.monitor_endpoint builds it in the Lambda engine."""
    spec = next((baseline_schema(plan.baseline).label for plan in plans if plan.baseline is not None), None)
    if args.ground_truth is None or spec is None:
        return None, None, None, None
    files = local_capture_files(args.ground_truth) if args.ground_truth.exists() else []
    labels = read_labels(((str(path), iter_local_lines(path)) for path in files), spec)
    summary = {"objects": quality.get("label_objects", len(files)), "rows": labels.rows,
               "window": quality.get("labels_window"), "predictions_window": quality.get("predictions_window"),
               "malformed": dict(sorted(labels.malformed.items()))}
    settings = QualitySettings(**{key: quality[key] for key in ("metric", "margin", "min_rows") if key in quality})
    delayed: dict[str, Path] = {}
    for spec_text in args.quality_capture:
        name, _, folder = spec_text.partition("=")
        delayed[name] = Path(folder)
    quality_plans = None
    if delayed:
        quality_plans = [dataclasses.replace(plan, sources=_sources(delayed[plan.variant], "endpoint_capture")
                                             if plan.variant in delayed and delayed[plan.variant].exists() else [])
                         for plan in plans]
    return QualityJoin(labels), quality_plans, summary, settings


def _json_argument(text: str) -> Any:
    """Inline JSON, or ``@path`` of a file holding it: a processing job's ContainerArguments take at most 256
    characters each (botocore's ContainerArgument), so the job planner passes its settings as an input file."""
    if text.startswith("@"):
        return json.loads(Path(text[1:]).read_text(encoding="utf-8"))
    return json.loads(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint", default="endpoint")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=BASELINE:CAPTURE_DIR")
    parser.add_argument("--baseline", type=Path, help="one-variant shorthand: the baseline file")
    parser.add_argument("--capture-dir", type=Path, help="one-variant shorthand: the capture folder")
    parser.add_argument("--prediction-log", type=Path)
    parser.add_argument("--prediction-log-variant", default=CHAMPION)
    parser.add_argument("--thresholds", default="{}", help="DriftThresholds overrides as JSON, or @FILE holding it")
    parser.add_argument("--ground-truth", type=Path, help="folder of ground-truth label files (CSV or JSONL)")
    parser.add_argument("--quality", default="{}",
                        help="JSON (or @FILE holding it): metric, margin, min_rows, the label and prediction windows, "
                             "and per variant the registered metrics (what the drift Lambda's job planner passes)")
    parser.add_argument("--quality-capture", action="append", default=[], metavar="VARIANT=DIR",
                        help="the capture of the delayed predictions window the labels belong to")
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
        variants.append((CHAMPION, args.baseline, args.capture_dir))
    if not variants:
        print("give --variant NAME=BASELINE:CAPTURE_DIR or --baseline with --capture-dir", file=sys.stderr)
        return 2
    plans = build_plans(variants, args.prediction_log, args.prediction_log_variant)
    quality = _json_argument(args.quality)
    registered = quality.get("registered", {})
    plans = [dataclasses.replace(plan, registered_quality=(registered.get(plan.variant) or {}).get("metrics"),
                                 quality_problem=(registered.get(plan.variant) or {}).get("problem"))
             for plan in plans]
    join, quality_plans, labels_summary, quality_settings = _quality(args, quality, plans)
    report = run_drift(plans, endpoint=args.endpoint, window=None,
                       thresholds=DriftThresholds.from_dict(_json_argument(args.thresholds)),
                       quality=join, quality_plans=quality_plans, quality_settings=quality_settings,
                       labels_summary=labels_summary, chunk_lines=args.chunk_lines, workers=args.workers)
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
