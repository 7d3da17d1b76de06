"""CloudWatch metrics of a finished drift run, published through Powertools (EMF) from the run report.

Publishing reads only the report, so a report written by the SageMaker Processing job is published by the
Lambda exactly as one it computed itself.

Dimension sets (every metric also carries Powertools' ``service`` dimension, the function's service name):

* ``Endpoint, Variant``: RowsAnalysed, MalformedRecords, VariantSkipped, and — only when the window
  has at least ``min_rows`` rows, so small windows never feed alarms with noise — MaxDrift,
  DriftedFeatureShare, WeightedDriftScore (drifted features' share of the model's importance),
  DataQualityViolations and DataQualityTopFeatureViolations (features with a missing/out-of-range/unseen
  violation; of them, the top features by importance), PredictionShift, ConfidenceShift (PSI values) and the
  0/1 decisions DriftDetected (the importance-weighted verdict),
  PredictionDrifted, ConfidenceDrifted (these respect the sample-size floors: alarm on them);
  ground truth: LabelledRows, and with labels the kind's quality metrics (QualityAUC, QualityAccuracy, QualityF1,
  …, QualityRMSE, QualityMAE, QualityR2: mlsettings.problem_types.QUALITY_METRIC_NAMES), QualityDrop
  (registered - observed, of the configured metric) and QualityDegraded (0/1, needs enough labels);
  engines ``partials`` and ``processing``: PartialsMerged, ObjectsCountedInline, ObjectsNotAnalysed.
* ``Endpoint, Variant, Feature``: FeatureDrift (the feature's PSI), one EMF document per feature, because
  a dimension set applies to every metric of a document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from mlsettings.problem_types import QUALITY_METRIC_NAMES
from mlsettings.vocabulary import Metric

_QUALITY_NAMES = QUALITY_METRIC_NAMES  # every kind's ground-truth metrics (mlsettings.problem_types)


class MetricsSink(Protocol):
    """The part of ``aws_lambda_powertools.Metrics`` used here."""

    def add_dimension(self, name: str, value: str) -> None: ...

    def add_metric(self, name: str, unit: MetricUnit | str, value: float, resolution: Any = ...) -> None: ...

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None: ...


def publish_run_metrics(metrics: MetricsSink, run_report: Mapping[str, Any]) -> int:
    """Publish every metric of a run report; returns the number of EMF documents flushed."""
    endpoint = str(run_report["endpoint"])
    quality = (run_report.get("quality") or {}).get("variants", {})
    documents = 0
    for variant, item in run_report["variants"].items():
        metrics.add_dimension(Metric.ENDPOINT_DIMENSION, endpoint)
        metrics.add_dimension(Metric.VARIANT_DIMENSION, variant)
        skipped = item["status"] != "analysed"
        metrics.add_metric(name=Metric.VARIANT_SKIPPED, unit=MetricUnit.Count, value=1 if skipped else 0)
        feature_scores: dict[str, float] = {}
        if not skipped:
            drift = item["drift"]
            metrics.add_metric(name=Metric.ROWS_ANALYSED, unit=MetricUnit.Count, value=drift["rows"])
            metrics.add_metric(name=Metric.MALFORMED_RECORDS, unit=MetricUnit.Count, value=drift["malformed"])
            if drift["enough_data"]:
                metrics.add_metric(name=Metric.MAX_DRIFT, unit=MetricUnit.NoUnit, value=drift["max_drift"])
                metrics.add_metric(name=Metric.DRIFTED_FEATURE_SHARE, unit=MetricUnit.NoUnit,
                                   value=drift["drifted_share"])
                metrics.add_metric(name=Metric.DRIFT_DETECTED, unit=MetricUnit.Count, value=int(drift["drifted"]))
                metrics.add_metric(name=Metric.WEIGHTED_DRIFT_SCORE, unit=MetricUnit.NoUnit,
                                   value=drift["weighted_drift_score"])
                metrics.add_metric(name=Metric.DATA_QUALITY_VIOLATIONS, unit=MetricUnit.Count,
                                   value=drift["data_quality_violations"])
                metrics.add_metric(name=Metric.DATA_QUALITY_TOP_FEATURE_VIOLATIONS, unit=MetricUnit.Count,
                                   value=drift["data_quality_top_violations"])
                for key, name in (("prediction", Metric.PREDICTION_SHIFT), ("confidence", Metric.CONFIDENCE_SHIFT)):
                    score = drift[key]
                    if score.get("psi") is not None:
                        metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=score["psi"])
                        metrics.add_metric(name=f"{key.capitalize()}Drifted", unit=MetricUnit.Count,
                                           value=int(score["drifted"]))
                feature_scores = {name: feature["psi"] for name, feature in drift["features"].items()
                                  if feature.get("psi") is not None}
        _add_quality(metrics, quality.get(variant))
        _add_partials(metrics, item.get("partials"))
        metrics.flush_metrics()
        documents += 1
        for feature, psi in feature_scores.items():
            metrics.add_dimension(Metric.ENDPOINT_DIMENSION, endpoint)
            metrics.add_dimension(Metric.VARIANT_DIMENSION, variant)
            metrics.add_dimension(Metric.FEATURE_DIMENSION, feature)
            metrics.add_metric(name=Metric.FEATURE_DRIFT, unit=MetricUnit.NoUnit, value=psi)
            metrics.flush_metrics()
            documents += 1
    return documents


def _add_partials(metrics: MetricsSink, book: Mapping[str, Any] | None) -> None:
    """Engines ``partials`` and ``processing``: how the window's objects were counted (mlcore.drift.partials)."""
    if book is None:
        return
    metrics.add_metric(name=Metric.PARTIALS_MERGED, unit=MetricUnit.Count, value=book["merged"])
    metrics.add_metric(name=Metric.OBJECTS_COUNTED_INLINE, unit=MetricUnit.Count,
                       value=sum(book[outcome] for outcome in ("missing", "late", "stale", "invalid")))
    metrics.add_metric(name=Metric.OBJECTS_NOT_ANALYSED, unit=MetricUnit.Count, value=book["not_analysed"])


def _add_quality(metrics: MetricsSink, item: Mapping[str, Any] | None) -> None:
    if item is None:
        return
    metrics.add_metric(name=Metric.LABELLED_ROWS, unit=MetricUnit.Count, value=item["labelled_rows"])
    for key, name in _QUALITY_NAMES.items():
        value = (item.get("metrics") or {}).get(key)
        if value is not None:
            metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=value)
    if item.get("drop") is not None:
        metrics.add_metric(name=Metric.QUALITY_DROP, unit=MetricUnit.NoUnit, value=item["drop"])
    if item.get("enough_labels"):
        metrics.add_metric(name=Metric.QUALITY_DEGRADED, unit=MetricUnit.Count, value=int(item["degraded"]))
