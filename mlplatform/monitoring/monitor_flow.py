"""The drift Lambda's work for one window, over the AWS clients it is given (moto in tests).

variants (DescribeEndpoint) → model package per variant (SSM) → baseline + registered metrics (registry,
S3) → capture objects of the window per variant (+ the prediction log for the production variant) → labels
→ ``mlcore.drift.run.run_drift`` (engine ``lambda``: one pass over the objects) or, with engine ``partials``,
the objects' partial results merged (``mlcore.drift.partials.merge_variant``; what they lack is counted from
the objects, within ``INLINE_LIMIT_BYTES``) → JSON and HTML reports in S3.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlcore.drift.baseline import baseline_schema, load_baseline
from mlcore.drift.ground_truth import JoinEntry, QualityJoin, read_labels
from mlcore.drift.partials import merge_variant
from mlcore.drift.run import (
    REPORT_FILE,
    LineSource,
    QualitySettings,
    SourceKind,
    VariantPlan,
    assemble_run_report,
    join_ground_truth,
    render_variant_pages,
    report_prefix,
    run_drift,
)
from mlcore.drift.window import Window, endpoint_capture_prefix
from mlplatform.monitoring.capture_window import (
    ListedObject,
    iter_s3_lines,
    list_window_keys,
    list_window_objects,
    s3_line_source,
)
from mlplatform.monitoring.monitor_settings import DriftMonitorSettings
from mlplatform.monitoring.partial_store import list_partial_keys, read_partials
from mlplatform.monitoring.variant_models import VariantModel, endpoint_variants, resolve_variant_models
from mlsettings.drift_partials import ENGINE_PARTIALS
from mlsettings.schema import LabelSpec


@dataclass(frozen=True)
class JobJoins:
    """Ground-truth join entries a sharded job's instances found, by object name: in the window's objects
    (labels joined in the drift pass) and in the delayed predictions window's (``quality``)."""

    drift: Mapping[str, Sequence[JoinEntry]]
    quality: Mapping[str, Sequence[JoinEntry]]


INLINE_LIMIT_BYTES = 8 << 30
"""Objects the partials engine counts itself when their partial result is missing, at most this many bytes per
variant (~15 million records): with S3 reads at ~100 MB/s per process that fits the function's 15 minutes.
The rest are reported as not analysed (``ObjectsNotAnalysed``)."""


@dataclass(frozen=True)
class MonitorClients:
    s3: Any
    sagemaker: Any
    ssm: Any


@dataclass(frozen=True)
class MonitorOutcome:
    report: dict[str, Any]
    report_uri: str
    html_uris: dict[str, str]


def _s3_source(s3: Any, bucket: str, listed: ListedObject, kind: SourceKind) -> LineSource:
    return s3_line_source(s3, bucket=bucket, key=listed.key, kind=kind, size=listed.size, etag=listed.etag,
                          modified=listed.modified)


def source_prefixes(settings: DriftMonitorSettings, variant: str) -> list[tuple[str, SourceKind]]:
    """The key prefixes (without the hour) of a variant's traffic: its data capture, and for the prediction-log
    variant the inference API's log."""
    prefixes: list[tuple[str, SourceKind]] = [
        (endpoint_capture_prefix(settings.capture_prefix, settings.endpoint_name, variant), "endpoint_capture")]
    if settings.prediction_log_prefix and variant == settings.prediction_log_variant:
        prefixes.append((settings.prediction_log_prefix, "prediction_log"))
    return prefixes


def variant_plans(settings: DriftMonitorSettings, clients: MonitorClients, models: list[VariantModel],
                  window: Window) -> list[VariantPlan]:
    plans: list[VariantPlan] = []
    for model in models:
        sources = [_s3_source(clients.s3, settings.capture_bucket, listed, kind)
                   for prefix, kind in source_prefixes(settings, model.variant)
                   for listed in list_window_objects(clients.s3, bucket=settings.capture_bucket, prefix=prefix,
                                                     window=window)]
        plans.append(VariantPlan(
            variant=model.variant, sources=sources, baseline=model.baseline, skip_reason=model.skip_reason,
            model_package_arn=model.model_package_arn, baseline_uri=model.baseline_uri,
            registered_quality=model.registered_quality, quality_problem=model.quality_problem))
    return plans


def label_spec(models: list[VariantModel]) -> LabelSpec | None:
    """The label of the first variant whose baseline schema can be read (every variant serves one schema)."""
    for model in models:
        if model.baseline is None:
            continue
        try:
            return baseline_schema(load_baseline(model.baseline)).label
        except ValueError:
            continue
    return None


@dataclass
class PreparedWindow:
    """What a window's run needs besides the objects' contents: each variant's plan and the ground-truth join."""

    plans: list[VariantPlan]
    quality: QualityJoin | None = None
    quality_plans: list[VariantPlan] | None = None
    labels_summary: dict[str, Any] | None = None
    label_keys: list[str] | None = None
    quality_settings: QualitySettings | None = None


def prepare_window(settings: DriftMonitorSettings, clients: MonitorClients, *, window: Window,
                   label_keys: list[str] | None = None) -> PreparedWindow:
    """Variants, their models and objects, and the labels of the window (``label_keys``: read exactly these, as a
    sharded job's planner listed them)."""
    variants = endpoint_variants(clients.sagemaker, settings.endpoint_name)
    models = resolve_variant_models(sagemaker=clients.sagemaker, ssm=clients.ssm, s3=clients.s3,
                                    variants=variants, parameter_prefix=settings.variant_parameter_prefix)
    prepared = PreparedWindow(plans=variant_plans(settings, clients, models, window),
                              quality_settings=QualitySettings(metric=settings.quality_metric,
                                                               margin=settings.quality_margin,
                                                               min_rows=settings.quality_min_rows))
    spec = label_spec(models)
    if settings.ground_truth_prefix and settings.ground_truth_bucket and spec is not None:
        quality_window = window.shifted(settings.ground_truth_delay_hours)
        # Labels for the predictions of quality_window arrive from its start until now (the window end).
        label_window = Window(start=quality_window.start, end=window.end)
        bucket = settings.ground_truth_bucket
        keys = label_keys if label_keys is not None else list_window_keys(
            clients.s3, bucket=bucket, prefix=settings.ground_truth_prefix, window=label_window)
        labels = read_labels(((key, iter_s3_lines(clients.s3, bucket=bucket, key=key)) for key in keys), spec)
        prepared.labels_summary = {"objects": len(keys), "rows": labels.rows, "window": label_window.to_dict(),
                                   "predictions_window": quality_window.to_dict(),
                                   "malformed": dict(sorted(labels.malformed.items()))}
        prepared.label_keys = keys
        prepared.quality = QualityJoin(labels)
        if settings.ground_truth_delay_hours:
            prepared.quality_plans = variant_plans(settings, clients, models, quality_window)
    return prepared


def monitor_endpoint(settings: DriftMonitorSettings, clients: MonitorClients, *, window: Window,
                     now: datetime) -> MonitorOutcome:
    prepared = prepare_window(settings, clients, window=window)
    if settings.engine == ENGINE_PARTIALS:
        report = merge_window(settings, clients, prepared, window=window, now=now)
    else:
        report = run_drift(prepared.plans, endpoint=settings.endpoint_name, window=window,
                           thresholds=settings.thresholds, quality=prepared.quality,
                           quality_plans=prepared.quality_plans, quality_settings=prepared.quality_settings,
                           labels_summary=prepared.labels_summary, chunk_lines=settings.chunk_lines, now=now,
                           workers=settings.workers)
    return write_reports(clients.s3, settings, report, prepared.plans, window)


def merge_window(settings: DriftMonitorSettings, clients: MonitorClients, prepared: PreparedWindow, *,
                 window: Window, now: datetime, job_joins: JobJoins | None = None) -> dict[str, Any]:
    """The run report from the window's partial results (engine ``partials``, and a sharded job's end, whose
    instances also found the ground-truth join entries: ``job_joins``, by object name)."""
    quality = prepared.quality
    variants: dict[str, dict[str, Any]] = {}
    same_pass = quality if prepared.quality_plans is None else None
    for plan_index, plan in enumerate(prepared.plans):
        keys = [key for prefix, _ in source_prefixes(settings, plan.variant)
                for key in list_partial_keys(clients.s3, bucket=settings.report_bucket,
                                             partials_prefix=settings.partials_prefix, object_prefix=prefix,
                                             window=window)]
        documents = read_partials(clients.s3, bucket=settings.report_bucket, keys=keys,
                                  partials_prefix=settings.partials_prefix, capture_bucket=settings.capture_bucket)
        variants[plan.variant] = merge_variant(
            plan, documents, thresholds=settings.thresholds, quality=same_pass, plan_index=plan_index, now=now,
            inline_limit_bytes=INLINE_LIMIT_BYTES, chunk_lines=settings.chunk_lines, workers=settings.workers,
            joins=job_joins.drift if job_joins is not None and same_pass is not None else None)
    quality_unreadable: list[dict[str, str]] = []
    if quality is not None and prepared.quality_plans is not None:
        known = job_joins.quality if job_joins is not None else {}
        quality_unreadable = join_ground_truth(prepared.quality_plans, quality, workers=settings.workers,
                                               chunk_lines=settings.chunk_lines, known=known)
    return assemble_run_report(variants, prepared.plans, endpoint=settings.endpoint_name, window=window,
                               thresholds=settings.thresholds, quality=quality,
                               quality_settings=prepared.quality_settings, labels_summary=prepared.labels_summary,
                               quality_unreadable=quality_unreadable, now=now)


def write_reports(s3: Any, settings: DriftMonitorSettings, report: Mapping[str, Any], plans: list[VariantPlan],
                  window: Window) -> MonitorOutcome:
    prefix = report_prefix(settings.report_prefix, settings.endpoint_name, window)
    html_uris: dict[str, str] = {}
    for variant, page in render_variant_pages(report, plans).items():
        key = f"{prefix}{variant}.html"
        s3.put_object(Bucket=settings.report_bucket, Key=key, Body=page.encode("utf-8"),
                      ContentType="text/html; charset=utf-8")
        html_uris[variant] = f"s3://{settings.report_bucket}/{key}"
    document = dict(report)
    document["html_reports"] = html_uris
    key = f"{prefix}{REPORT_FILE}"
    s3.put_object(Bucket=settings.report_bucket, Key=key,
                  Body=json.dumps(document, indent=2, allow_nan=False).encode("utf-8"),
                  ContentType="application/json")
    return MonitorOutcome(report=document, report_uri=f"s3://{settings.report_bucket}/{key}", html_uris=html_uris)
