"""The drift Lambda's environment, parsed and checked once per execution environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from mlcore.drift.statistics import DriftThresholds
from mlplatform.monitoring.monitor_settings import DriftMonitorSettings
from mlplatform.monitoring.processing_job import ProcessingJobSettings
from mlsettings.quality import QUALITY_METRICS
from mlsettings.vocabulary import CHAMPION, REPORT_PREFIX


class SettingsError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


def settings_from_environment(env: Mapping[str, str]) -> DriftMonitorSettings:
    def required(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            raise SettingsError(f"environment variable {name} is required and must not be empty")
        return value

    def integer(name: str, default: int, low: int, high: int) -> int:
        raw = env.get(name, "").strip() or str(default)
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"environment variable {name} is {raw!r}; allowed: an integer in "
                                f"[{low}, {high}]") from None
        if not low <= value <= high:
            raise SettingsError(f"environment variable {name} is {value}; allowed: [{low}, {high}]")
        return value

    raw_thresholds = env.get("DRIFT_THRESHOLDS", "").strip() or "{}"
    try:
        thresholds = DriftThresholds.from_dict(json.loads(raw_thresholds))
    except (json.JSONDecodeError, ValueError, TypeError) as err:
        raise SettingsError(f"environment variable DRIFT_THRESHOLDS: {err}") from None
    raw_margin = env.get("QUALITY_MARGIN", "").strip() or "0.05"
    try:
        margin = float(raw_margin)
    except ValueError:
        margin = -1.0
    if not 0.0 <= margin <= 1.0:
        raise SettingsError(f"environment variable QUALITY_MARGIN is {raw_margin!r}; allowed: [0, 1]")
    metric = env.get("QUALITY_METRIC", "").strip() or "auc"
    if metric not in QUALITY_METRICS:
        raise SettingsError(f"environment variable QUALITY_METRIC is {metric!r}; allowed: {', '.join(QUALITY_METRICS)}")
    capture_bucket = required("CAPTURE_BUCKET")
    ground_truth_prefix = env.get("GROUND_TRUTH_PREFIX", "").strip() or None
    return DriftMonitorSettings(
        endpoint_name=required("ENDPOINT_NAME"),
        capture_bucket=capture_bucket,
        capture_prefix=env.get("CAPTURE_PREFIX", "").strip().strip("/"),
        prediction_log_prefix=env.get("PREDICTION_LOG_PREFIX", "").strip().strip("/") or None,
        prediction_log_variant=env.get("PREDICTION_LOG_VARIANT", "").strip() or CHAMPION,
        report_bucket=required("REPORT_BUCKET"),
        report_prefix=env.get("REPORT_PREFIX", "").strip().strip("/") or REPORT_PREFIX,
        variant_parameter_prefix=required("VARIANT_PARAMETER_PREFIX"),
        window_hours=integer("WINDOW_HOURS", 24, 1, 720),
        thresholds=thresholds,
        chunk_lines=integer("CHUNK_LINES", 20_000, 100, 1_000_000),
        # parsing processes; Lambda gives a function ceil(memory / 1,769 MB) vCPUs
        workers=integer("DRIFT_WORKERS", min(os.cpu_count() or 1, 4), 1, 8),
        engine=_engine(env.get("DRIFT_ENGINE", "lambda")),
        ground_truth_bucket=(env.get("GROUND_TRUTH_BUCKET", "").strip() or capture_bucket)
        if ground_truth_prefix else None,
        ground_truth_prefix=ground_truth_prefix.strip("/") if ground_truth_prefix else None,
        ground_truth_delay_hours=integer("GROUND_TRUTH_DELAY_HOURS", 0, 0, 24 * 90),
        quality_metric=metric,
        quality_margin=margin,
        quality_min_rows=integer("QUALITY_MIN_ROWS", 50, 1, 10_000_000),
    )


def _engine(value: str) -> str:
    engine = value.strip() or "lambda"
    if engine not in ("lambda", "processing"):
        raise SettingsError(f"DRIFT_ENGINE is {value!r}; allowed: 'lambda', 'processing'")
    return engine


def processing_job_settings(environment: Mapping[str, str]) -> ProcessingJobSettings:
    """Where and as whom the drift job runs (engine ``processing``), read when the engine is used."""
    names = ("PROCESSING_ROLE_ARN", "PROCESSING_IMAGE_URI", "PROCESSING_CODE_URI", "PROCESSING_INSTANCE_TYPE",
             "KMS_KEY_ARN")
    missing = [name for name in names if not environment.get(name)]
    if missing:
        raise RuntimeError(f"drift engine 'processing' needs environment variables {missing}")
    return ProcessingJobSettings(role_arn=environment["PROCESSING_ROLE_ARN"],
                                 image_uri=environment["PROCESSING_IMAGE_URI"],
                                 code_uri=environment["PROCESSING_CODE_URI"],
                                 instance_type=environment["PROCESSING_INSTANCE_TYPE"],
                                 kms_key_arn=environment["KMS_KEY_ARN"])
