"""The drift Lambda's work for one window, over the AWS clients it is given (moto in tests).

variants (DescribeEndpoint) → model package per variant (SSM) → baseline + registered metrics (registry,
S3) → capture keys of the window per variant (+ the prediction log for the production variant) → labels
→ ``mlcore.drift.run.run_drift`` → JSON and HTML reports in S3.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlcore.drift.baseline import baseline_schema, load_baseline
from mlcore.drift.ground_truth import QualityJoin, read_labels
from mlcore.drift.run import (
    REPORT_FILE,
    LineSource,
    QualitySettings,
    SourceKind,
    VariantPlan,
    render_variant_pages,
    report_prefix,
    run_drift,
)
from mlcore.drift.window import Window, endpoint_capture_prefix
from mlplatform.monitoring.capture_window import iter_s3_lines, list_window_keys, s3_line_source
from mlplatform.monitoring.monitor_settings import DriftMonitorSettings
from mlplatform.monitoring.variant_models import VariantModel, endpoint_variants, resolve_variant_models
from mlsettings.schema import LabelSpec


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


def _s3_source(s3: Any, bucket: str, key: str, kind: SourceKind) -> LineSource:
    return s3_line_source(s3, bucket=bucket, key=key, kind=kind)


def variant_plans(settings: DriftMonitorSettings, clients: MonitorClients, models: list[VariantModel],
                  window: Window) -> list[VariantPlan]:
    plans: list[VariantPlan] = []
    for model in models:
        prefix = endpoint_capture_prefix(settings.capture_prefix, settings.endpoint_name, model.variant)
        sources = [_s3_source(clients.s3, settings.capture_bucket, key, "endpoint_capture")
                   for key in list_window_keys(clients.s3, bucket=settings.capture_bucket, prefix=prefix,
                                               window=window)]
        if settings.prediction_log_prefix and model.variant == settings.prediction_log_variant:
            sources += [_s3_source(clients.s3, settings.capture_bucket, key, "prediction_log")
                        for key in list_window_keys(clients.s3, bucket=settings.capture_bucket,
                                                    prefix=settings.prediction_log_prefix, window=window)]
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


def monitor_endpoint(settings: DriftMonitorSettings, clients: MonitorClients, *, window: Window,
                     now: datetime) -> MonitorOutcome:
    variants = endpoint_variants(clients.sagemaker, settings.endpoint_name)
    models = resolve_variant_models(sagemaker=clients.sagemaker, ssm=clients.ssm, s3=clients.s3,
                                    variants=variants, parameter_prefix=settings.variant_parameter_prefix)
    plans = variant_plans(settings, clients, models, window)

    quality: QualityJoin | None = None
    quality_plans: list[VariantPlan] | None = None
    labels_summary: dict[str, Any] | None = None
    spec = label_spec(models)
    if settings.ground_truth_prefix and settings.ground_truth_bucket and spec is not None:
        quality_window = window.shifted(settings.ground_truth_delay_hours)
        # Labels for the predictions of quality_window arrive from its start until now (the window end).
        label_window = Window(start=quality_window.start, end=window.end)
        bucket = settings.ground_truth_bucket
        keys = list_window_keys(clients.s3, bucket=bucket, prefix=settings.ground_truth_prefix,
                                window=label_window)
        labels = read_labels(((key, iter_s3_lines(clients.s3, bucket=bucket, key=key)) for key in keys), spec)
        labels_summary = {"objects": len(keys), "rows": labels.rows, "window": label_window.to_dict(),
                          "predictions_window": quality_window.to_dict(),
                          "malformed": dict(sorted(labels.malformed.items()))}
        quality = QualityJoin(labels)
        if settings.ground_truth_delay_hours:
            quality_plans = variant_plans(settings, clients, models, quality_window)

    report = run_drift(plans, endpoint=settings.endpoint_name, window=window, thresholds=settings.thresholds,
                       quality=quality, quality_plans=quality_plans,
                       quality_settings=QualitySettings(metric=settings.quality_metric,
                                                        margin=settings.quality_margin,
                                                        min_rows=settings.quality_min_rows),
                       labels_summary=labels_summary, chunk_lines=settings.chunk_lines, now=now,
                       workers=settings.workers)
    return write_reports(clients.s3, settings, report, plans, window)


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
