"""The drift thresholds the deployed drift Lambda runs with: `mlops drift --env X` judges a window exactly as
that environment's Lambda would, because both take them from ``mlsettings.config.drift_thresholds``.
tests/functional/test_drift_cli_config.py synthesizes the monitoring stack and checks that the Lambda's
``DRIFT_THRESHOLDS`` equals this mapping for every environment.
"""

from __future__ import annotations

from typing import Any

from mlsettings.config import EnvironmentConfig, drift_thresholds


def lambda_thresholds(config: EnvironmentConfig) -> dict[str, Any]:
    """The DriftThresholds overrides of the environment's drift Lambda (the DRIFT_THRESHOLDS variable)."""
    return drift_thresholds(config)
