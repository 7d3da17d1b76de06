"""Values derived from an environment's settings that more than one side needs (the stack writes them into a
function's environment, the CLI uses them locally)."""

from __future__ import annotations

from typing import Any

from mlsettings.config.model import EnvironmentConfig


def drift_thresholds(config: EnvironmentConfig) -> dict[str, Any]:
    """The ``mlcore.drift.statistics.DriftThresholds`` overrides an environment's drift runs use: the Lambda's
    ``DRIFT_THRESHOLDS`` (its contract, mlsettings/functions), `mlops drift --env` and the pipeline's Validate step
    alike, so a window is judged the same locally, in the pipeline and in AWS."""
    drift, alarms = config.monitoring.drift, config.monitoring.alarms
    return {"psi": drift.psi_threshold, "js": drift.js_threshold, "ks": drift.ks_threshold,
            "weighted_drift": drift.weighted_drift_alarm, "min_rows": drift.min_rows,
            "missing_rate_delta": drift.missing_rate_min_effect,
            "out_of_range_rate": drift.quality_min_effect, "unseen_share": drift.quality_min_effect,
            "top_features": drift.page_top_features,
            "prediction_psi": alarms.confidence_shift_psi, "confidence_psi": alarms.confidence_shift_psi}
