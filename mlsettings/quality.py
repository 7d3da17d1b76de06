"""Model-quality metrics and the quality gate: the one definition both the pipeline and the local run use.

The quality gate (training.quality_gate.metric) chooses among ``GATE_METRICS``, every kind of model's gate metrics
(mlsettings.problem_types: each name belongs to exactly one kind, so the metric alone names the report section and
the direction); the drift monitor's ground-truth quality (which receives the same setting, to compare live quality
with the registered one) publishes ``QUALITY_METRICS``, a superset, so every value the configuration accepts is one
the monitor accepts.

``gate_checks`` is the rule itself: the JSON paths in the evaluation report and the comparison each must pass.
The pipeline definition turns each check into a condition of its Condition step (``condition_type``), and the
local runner evaluates the same checks on the same report (``decide_gate``); so the two cannot disagree on a
path, a direction or whether the confidence bound counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlsettings.problem_types import (
    ALL_GATE_METRICS,
    ALL_QUALITY_METRICS,
    LOWER_BOUND_KEY,
    UPPER_BOUND_KEY,
    gate_metric,
)

GATE_METRICS = ALL_GATE_METRICS
"""Metrics the quality gate may compare; each has a 95 % confidence bound on the side that counts (mlcore.metrics):
the lower one of a higher-is-better metric, the upper one of a lower-is-better one."""

QUALITY_METRICS = ALL_QUALITY_METRICS
"""Metrics ground-truth quality computes per variant and the drift monitor accepts as its quality metric."""

VALUE = "value"
LOWER_BOUND = LOWER_BOUND_KEY
UPPER_BOUND = UPPER_BOUND_KEY
"""Keys of one metric in the report: its value on the test set and its 95 % confidence bounds."""

AT_LEAST = ">="
AT_MOST = "<="
_CONDITION_TYPES = {AT_LEAST: "GreaterThanOrEqualTo", AT_MOST: "LessThanOrEqualTo"}


@dataclass(frozen=True)
class GateCheck:
    """One comparison of the gate: ``report[path] <comparison> threshold``."""

    path: str
    comparison: str
    label: str

    @property
    def condition_type(self) -> str:
        """The SageMaker Pipelines condition that performs this comparison."""
        return _CONDITION_TYPES[self.comparison]

    def holds(self, value: float, threshold: float) -> bool:
        if math.isnan(value):
            return False
        return value >= threshold if self.comparison == AT_LEAST else value <= threshold


def metric_path(metric: str, key: str = VALUE) -> str:
    """The dotted path of ``metric``'s ``key`` in the evaluation report (the pipeline's JsonGet path), in the
    section of the kind of model the metric belongs to."""
    kind, _ = gate_metric(metric)
    return f"{kind.report_section}.{metric}.{key}"


def gate_checks(metric: str) -> tuple[GateCheck, ...]:
    """The gate for ``metric``: its value reaches the threshold, and so does its 95 % confidence bound on the side
    that counts (the lower bound of a higher-is-better metric, the upper bound of a lower-is-better one), so a
    test set too small to show the quality never passes."""
    _, spec = gate_metric(metric)
    bound = "95 % lower bound" if spec.bound_key == LOWER_BOUND else "95 % upper bound"
    return (GateCheck(metric_path(metric, VALUE), spec.comparison, "value"),
            GateCheck(metric_path(metric, spec.bound_key), spec.comparison, bound))


def _lookup(report: Mapping[str, Any], path: str) -> float:
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"the evaluation report has no {path!r}")
        node = node[part]
    return float(node)


@dataclass(frozen=True, kw_only=True)
class GateDecision:
    metric: str
    threshold: float
    values: tuple[tuple[GateCheck, float], ...]

    @property
    def passed(self) -> bool:
        return all(check.holds(value, self.threshold) for check, value in self.values)

    @property
    def value(self) -> float:
        return self.values[0][1]

    @property
    def comparison(self) -> str:
        return self.values[0][0].comparison

    @property
    def lower_bound(self) -> float | None:
        return next((value for check, value in self.values if check.path.endswith(LOWER_BOUND)), None)

    @property
    def upper_bound(self) -> float | None:
        return next((value for check, value in self.values if check.path.endswith(UPPER_BOUND)), None)

    @property
    def bound(self) -> float:
        """The confidence bound the gate compared (lower or upper, by the metric's direction)."""
        return self.values[-1][1]

    def to_dict(self) -> dict[str, Any]:
        bound_key = self.values[-1][0].path.rsplit(".", 1)[-1]
        return {"metric": self.metric, "value": self.value, "threshold": self.threshold,
                "comparison": self.comparison, "passed": self.passed, bound_key: self.bound}


def decide_gate(report: Mapping[str, Any], *, metric: str, threshold: float) -> GateDecision:
    """The gate's decision on an evaluation report: every check of ``gate_checks(metric)`` holds."""
    return GateDecision(metric=metric, threshold=float(threshold),
                        values=tuple((check, _lookup(report, check.path)) for check in gate_checks(metric)))
