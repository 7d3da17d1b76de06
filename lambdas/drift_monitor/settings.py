"""The drift Lambda's environment, read once per execution environment through its contract
(mlsettings.functions.contracts.DriftMonitorEnvironment, the class the monitoring stack writes it with)."""

from __future__ import annotations

from collections.abc import Mapping

from mlcore.drift.statistics import DriftThresholds
from mlplatform.monitoring.monitor_settings import DriftMonitorSettings
from mlplatform.monitoring.processing_job import ProcessingJobSettings
from mlsettings.drift_partials import ENGINE_PROCESSING
from mlsettings.functions.base import EnvironmentSettingError
from mlsettings.functions.contracts import DriftMonitorEnvironment


class SettingsError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


def contract(environment: Mapping[str, str]) -> DriftMonitorEnvironment:
    try:
        return DriftMonitorEnvironment.from_env(environment)
    except EnvironmentSettingError as err:
        raise SettingsError(str(err)) from None


def settings_from_environment(environment: Mapping[str, str]) -> DriftMonitorSettings:
    read = contract(environment)
    try:
        thresholds = DriftThresholds.from_dict(read.drift_thresholds)
    except (ValueError, TypeError) as err:
        raise SettingsError(f"environment variable DRIFT_THRESHOLDS: {err}") from None
    ground_truth = read.ground_truth_prefix.strip("/") if read.ground_truth_prefix else None
    return DriftMonitorSettings(
        endpoint_name=read.endpoint_name,
        capture_bucket=read.capture_bucket,
        capture_prefix=read.capture_prefix.strip("/"),
        prediction_log_prefix=read.prediction_log_prefix.strip("/") if read.prediction_log_prefix else None,
        prediction_log_variant=read.prediction_log_variant,
        report_bucket=read.report_bucket,
        report_prefix=read.report_prefix.strip("/"),
        variant_parameter_prefix=read.variant_parameter_prefix,
        window_hours=read.window_hours,
        thresholds=thresholds,
        chunk_lines=read.chunk_lines,
        workers=read.drift_workers,
        engine=read.drift_engine,
        ground_truth_bucket=(read.ground_truth_bucket or read.capture_bucket) if ground_truth else None,
        ground_truth_prefix=ground_truth,
        ground_truth_delay_hours=read.ground_truth_delay_hours,
        quality_metric=read.quality_metric,
        quality_margin=read.quality_margin,
        quality_min_rows=read.quality_min_rows,
        partials_prefix=read.partials_prefix.strip("/"),
    )


def processing_job_settings(environment: Mapping[str, str]) -> ProcessingJobSettings:
    """Where and as whom the drift job runs (engine ``processing``; the contract requires all of it then)."""
    read = contract(environment)
    if read.drift_engine != ENGINE_PROCESSING:
        raise SettingsError("the drift job's settings exist only with DRIFT_ENGINE processing")
    assert read.processing_role_arn and read.processing_image_uri and read.processing_code_uri
    assert read.processing_instance_type and read.kms_key_arn
    return ProcessingJobSettings(role_arn=read.processing_role_arn, image_uri=read.processing_image_uri,
                                 code_uri=read.processing_code_uri, instance_type=read.processing_instance_type,
                                 kms_key_arn=read.kms_key_arn, max_instances=read.processing_max_instances)
