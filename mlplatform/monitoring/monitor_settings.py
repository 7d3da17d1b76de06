"""What one drift monitor run works with: the endpoint, where its capture, prediction log, ground truth and
reports live, the thresholds and the engine. ``lambdas/drift_monitor/settings.py`` builds it from the
function's environment once per execution environment."""

from __future__ import annotations

from dataclasses import dataclass

from mlcore.drift.statistics import DriftThresholds
from mlsettings.drift_partials import PARTIALS_PREFIX


@dataclass(frozen=True, kw_only=True)
class DriftMonitorSettings:
    endpoint_name: str
    capture_bucket: str
    capture_prefix: str
    prediction_log_prefix: str | None
    prediction_log_variant: str
    report_bucket: str
    report_prefix: str
    variant_parameter_prefix: str
    window_hours: int
    thresholds: DriftThresholds
    chunk_lines: int
    workers: int
    engine: str
    ground_truth_bucket: str | None
    ground_truth_prefix: str | None
    ground_truth_delay_hours: int
    quality_metric: str
    quality_margin: float
    quality_min_rows: int
    partials_prefix: str = PARTIALS_PREFIX
