"""The drift thresholds the deployed drift Lambda runs with, from the same configuration fields.

stacks/monitoring.py hands the drift Lambda ``DRIFT_THRESHOLDS`` built from ``monitoring.drift`` and
``monitoring.alarms.confidence_shift_psi``; ``mlops drift`` must judge a window exactly as the Lambda
would, so it builds the same mapping here (stacks may not import mlops, and this module may not change
stacks). tests/functional/test_drift_cli_config.py synthesizes the monitoring stack and checks that the
two stay identical for every environment. Thresholds the stack does not set keep
``mlcore.drift.DriftThresholds``' defaults on both sides.
"""

from __future__ import annotations

from typing import Any

from stacks.config import EnvironmentConfig


def lambda_thresholds(config: EnvironmentConfig) -> dict[str, Any]:
    """The DriftThresholds overrides of the environment's drift Lambda (the DRIFT_THRESHOLDS variable)."""
    drift, alarms = config.monitoring.drift, config.monitoring.alarms
    return {"psi": drift.psi_threshold, "js": drift.js_threshold, "ks": drift.ks_threshold,
            "drifted_share": drift.drifted_share_alarm, "min_rows": drift.min_rows,
            "prediction_psi": alarms.confidence_shift_psi, "confidence_psi": alarms.confidence_shift_psi}
