"""The drift run as a SageMaker Processing job (``monitoring.drift.engine: processing``).

Same code as the Lambda (``mlcore.drift.run``), on local folders: the job's ProcessingInputs copy (or stream with
``S3InputMode: Pipe``/FastFile) the window's capture prefixes to the container, the output folder is
uploaded to the report prefix, and the drift Lambda publishes the metrics when the report lands
(S3 notification → ``{"Records": [...]}``). Run it locally the same way::

    python -m pipelines.processing.drift_entry --endpoint E \\
        --variant Champion=/opt/ml/processing/baseline/Champion.json:/opt/ml/processing/capture/Champion \\
        --prediction-log /opt/ml/processing/prediction-log --out /opt/ml/processing/report

``--baseline FILE --capture-dir DIR`` is the one-variant shorthand (variant ``Champion``).

``--shard`` is one instance of a sharded job (``ShardedByS3Key``: each instance holds some of the window's
objects): instead of a report it writes each object's partial result (``mlcore.drift.partials``) under
``--partials-out`` at the object's key (``--object-prefix`` names the objects, ``--identities`` gives their sizes and
ETags) and a shard summary (the ground-truth join entries it found) under ``--shards-out``; the drift Lambda merges
the window when every instance's summary has landed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlcore.drift.baseline import BaselineError, baseline_schema, load_baseline
from mlcore.drift.ground_truth import QualityJoin, read_labels
from mlcore.drift.partials import (
    PARTIAL_SUFFIX,
    join_objects,
    labels_fingerprint,
    reduce_objects,
    shard_summary,
)
from mlcore.drift.run import (
    DEFAULT_CHUNK_LINES,
    REPORT_FILE,
    LineSource,
    QualitySettings,
    VariantPlan,
    local_source,
    render_variant_pages,
    run_drift,
)
from mlcore.drift.statistics import DriftThresholds
from mlcore.drift.window import iter_local_lines, local_capture_files
from mlsettings.vocabulary import CHAMPION


def _sources(folder: Path, kind: str) -> list[LineSource]:
    return [local_source(path, kind) for path in local_capture_files(folder)]  # type: ignore[arg-type]


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
    parser.add_argument("--out", type=Path, help="the report folder (one instance, one report)")
    parser.add_argument("--shard", action="store_true", help="one instance of a sharded job: partial results")
    parser.add_argument("--object-prefix", default="", help="--shard: s3://bucket/ of the objects (their names)")
    parser.add_argument("--job-settings", type=Path,
                        help="JSON with thresholds, quality and identities ({key: {size, etag}} of the window's "
                             "objects) in place of --thresholds and --quality (a container argument holds 256 "
                             "characters)")
    parser.add_argument("--partials-out", type=Path, help="--shard: where partial results go, at the objects' keys")
    parser.add_argument("--shards-out", type=Path, help="--shard: where this instance's summary goes")
    parser.add_argument("--host", help="--shard: this instance's name (default: the job's resource config)")
    args = parser.parse_args(argv)
    if args.shard and not (args.partials_out and args.shards_out):
        parser.error("--shard needs --partials-out and --shards-out")
    args.identities = {}
    if args.job_settings is not None:
        settings = json.loads(args.job_settings.read_text(encoding="utf-8"))
        args.thresholds = json.dumps(settings.get("thresholds") or {})
        args.quality = json.dumps(settings.get("quality") or {})
        args.identities = settings.get("identities") or {}
    if not args.shard and args.out is None:
        parser.error("the following arguments are required: --out (or --shard)")
    return args


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
    if args.shard:
        return run_shard(args, variants)
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


RESOURCE_CONFIG = "config/resourceconfig.json"
"""SageMaker's description of the job's instances in the container, below /opt/ml (``current_host``, ``hosts``);
``SAGEMAKER_BASE_DIR`` (the SageMaker toolkits' own variable) moves /opt/ml elsewhere, as the contract tests do."""


def _host(args: argparse.Namespace) -> str:
    if args.host:
        return str(args.host)
    base = Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))
    try:
        return str(json.loads((base / RESOURCE_CONFIG).read_text())["current_host"])
    except (OSError, ValueError, KeyError):
        return socket.gethostname()


def _named_sources(folder: Path, kind: str, prefix: str, identities: dict[str, Any]) -> list[LineSource]:
    """This instance's files of one input as the objects they are: ``<prefix><key>`` (a ManifestFile input lays
    each object out at its key below the input's folder, the manifest's prefix being the bucket)."""
    sources = []
    for path in local_capture_files(folder) if folder.exists() else []:
        key = path.relative_to(folder).as_posix()
        identity = identities.get(key) or {}
        local = local_source(path, kind)  # type: ignore[arg-type]
        sources.append(dataclasses.replace(local, name=f"{prefix}{key}", size=identity.get("size", local.size),
                                           etag=identity.get("etag")))
    return sources


def run_shard(args: argparse.Namespace, variants: Sequence[tuple[str, Path, Path]]) -> int:
    identities = args.identities
    prefix = args.object_prefix
    quality_doc = json.loads(args.quality)
    plans = []
    for name, baseline_path, capture_dir in variants:
        sources = _named_sources(capture_dir, "endpoint_capture", prefix, identities)
        if args.prediction_log is not None and name == args.prediction_log_variant:
            sources += _named_sources(args.prediction_log, "prediction_log", prefix, identities)
        try:
            plans.append(VariantPlan(variant=name, sources=sources, baseline=load_baseline(baseline_path)))
        except BaselineError as err:
            print(f"variant {name}: {err}", file=sys.stderr)
    join, _, _, _ = _quality(args, quality_doc, plans)
    labels = labels_fingerprint(join._labels.labels) if join is not None else None
    delayed = bool(args.quality_capture)
    same_pass = join if join is not None and not delayed else None

    def write(source: LineSource, document: dict[str, Any]) -> None:
        target = args.partials_out / (source.name.removeprefix(prefix) + PARTIAL_SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, separators=(",", ":"), allow_nan=False), encoding="utf-8")

    drift_joins: dict[str, Any] = {}
    objects: list[str] = []
    for plan in plans:
        assert plan.baseline is not None
        drift_joins.update(reduce_objects(plan.sources, variant=plan.variant, baseline=plan.baseline, write=write,
                                          workers=args.workers, quality=same_pass, labels=labels,
                                          chunk_lines=args.chunk_lines))
        objects += [source.name for source in plan.sources]
    quality_joins: dict[str, Any] = {}
    unreadable: list[dict[str, str]] = []
    if join is not None and delayed:
        folders = dict(spec.partition("=")[::2] for spec in args.quality_capture)
        for plan in plans:
            assert plan.baseline is not None
            sources = _named_sources(Path(folders.get(plan.variant, "")), "endpoint_capture", prefix, identities) \
                if plan.variant in folders else []
            found, lost = join_objects(sources, baseline=plan.baseline, quality=join, workers=args.workers,
                                       chunk_lines=args.chunk_lines)
            quality_joins.update(found)
            unreadable += lost
    host = _host(args)
    args.shards_out.mkdir(parents=True, exist_ok=True)
    summary = shard_summary(host=host, objects=objects, labels=labels, drift_joins=drift_joins,
                            quality_joins=quality_joins, unreadable=unreadable)
    (args.shards_out / f"{host}.json").write_text(json.dumps(summary, allow_nan=False), encoding="utf-8")
    print(json.dumps({"shard": host, "objects": len(objects), "partials": str(args.partials_out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
