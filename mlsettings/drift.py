"""The drift statistics' default thresholds, written once: the configuration's defaults
(``monitoring.drift.*``, ``monitoring.alarms.confidence_shift_psi``) and ``mlcore.drift.statistics.DriftThresholds``
(what the engine uses where nothing is configured: the pipeline's Validate step before issue #23, `mlops drift`
without --env, tests and benchmarks) both take them from here."""

from __future__ import annotations

PSI = 0.2
JS = 0.1
KS = 0.1
WEIGHTED_DRIFT = 0.1
MISSING_RATE_DELTA = 0.01
QUALITY_MIN_EFFECT = 0.001
TOP_FEATURES = 3
MIN_ROWS = 100
SHIFT_PSI = 0.2
"""Prediction and confidence distribution PSI that raises a ticket."""
FALSE_ALARM_RATE = 1e-4
"""The binomial data-quality tests' per-window false-alarm rate (not configurable)."""
