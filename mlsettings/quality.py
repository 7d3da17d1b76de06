"""Model-quality metrics: the names the configuration accepts and every function that receives one.

The quality gate (training.quality_gate.metric) chooses among ``GATE_METRICS``; the drift monitor's ground-truth
quality (which receives the same setting, to compare live quality with the registered one) publishes
``QUALITY_METRICS``, a superset, so every value the configuration accepts is one the monitor accepts.
"""

from __future__ import annotations

GATE_METRICS = ("auc", "f1", "precision", "recall")
"""Metrics the quality gate may compare; each has a 95 % lower confidence bound (mlcore.metrics)."""

QUALITY_METRICS = ("auc", "accuracy", "f1", "precision", "recall")
"""Metrics ground-truth quality computes per variant and the drift monitor accepts as its quality metric."""
