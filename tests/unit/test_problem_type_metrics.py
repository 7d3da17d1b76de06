"""Quality metrics and their confidence bounds for multiclass and regression models (issue 25), against the
reference implementations on the same arrays: scikit-learn's metrics, scipy's binomial (Wilson) interval, normal
interval and bootstrap; and the quality gate's direction per metric."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sk

from mlcore.metrics import (
    multiclass_bounds,
    multiclass_metrics,
    quality_report,
    regression_bounds,
    regression_metrics,
)
from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION, TYPES
from mlsettings.quality import decide_gate, gate_checks


@pytest.fixture(scope="module")
def multiclass_rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4))
    logits[np.arange(300), labels] += 1.2  # informative, not perfect
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probabilities


@pytest.fixture(scope="module")
def regression_rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    labels = rng.normal(150.0, 70.0, 250)
    return labels, labels + rng.normal(0.0, 40.0, 250)


def test_multiclass_metrics_equal_scikit_learn(multiclass_rows: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = multiclass_rows
    got = multiclass_metrics(y, p)
    predicted = p.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted), abs=1e-12)
    assert got["macro_f1"] == pytest.approx(sk.f1_score(y, predicted, average="macro"), abs=1e-12)
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, p, labels=[0, 1, 2, 3]), abs=1e-12)


def test_macro_f1_counts_a_class_never_predicted_as_zero() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    p = np.tile([0.5, 0.3, 0.2], (6, 1))  # always class 0
    p[1] = [0.1, 0.8, 0.1]
    expected = sk.f1_score(y, p.argmax(axis=1), average="macro", labels=[0, 1, 2], zero_division=0)
    assert multiclass_metrics(y, p)["macro_f1"] == pytest.approx(expected, abs=1e-12)


def test_regression_metrics_equal_scikit_learn(regression_rows: tuple[np.ndarray, np.ndarray]) -> None:
    y, v = regression_rows
    got = regression_metrics(y, v)
    assert got["rmse"] == pytest.approx(math.sqrt(sk.mean_squared_error(y, v)), rel=1e-12)
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, v), rel=1e-12)
    assert got["r2"] == pytest.approx(sk.r2_score(y, v), rel=1e-12)


def test_r2_of_constant_labels_is_undefined() -> None:
    assert math.isnan(regression_metrics([3.0, 3.0, 3.0], [2.0, 3.0, 4.0])["r2"])


def test_accuracy_bound_is_scipys_wilson_interval(multiclass_rows: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = multiclass_rows
    correct = int(np.sum(p.argmax(axis=1) == y))
    reference = stats.binomtest(correct, y.size).proportion_ci(confidence_level=0.95, method="wilson").low
    key, bound = multiclass_bounds(y, p)["accuracy"]
    assert key == "lower_bound_95"
    assert bound == pytest.approx(reference, abs=1e-9)


def test_mean_loss_bounds_are_the_normal_interval(multiclass_rows: tuple[np.ndarray, np.ndarray],
                                                  regression_rows: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = multiclass_rows
    losses = -np.log(p[np.arange(y.size), y])
    reference = stats.norm.interval(0.95, loc=losses.mean(), scale=stats.sem(losses))[1]
    assert multiclass_bounds(y, p)["log_loss"] == ("upper_bound_95", pytest.approx(reference, rel=1e-9))

    y, v = regression_rows
    absolute = np.abs(v - y)
    mae_upper = stats.norm.interval(0.95, loc=absolute.mean(), scale=stats.sem(absolute))[1]
    mse_upper = stats.norm.interval(0.95, loc=((v - y) ** 2).mean(), scale=stats.sem((v - y) ** 2))[1]
    bounds = regression_bounds(y, v)
    assert bounds["mae"] == ("upper_bound_95", pytest.approx(mae_upper, rel=1e-9))
    assert bounds["rmse"] == ("upper_bound_95", pytest.approx(math.sqrt(mse_upper), rel=1e-9))


def test_bootstrap_bounds_agree_with_scipys_bootstrap(multiclass_rows: tuple[np.ndarray, np.ndarray],
                                                      regression_rows: tuple[np.ndarray, np.ndarray]) -> None:
    """Percentile bounds from our resampling and from scipy.stats.bootstrap (different random streams): equal up
    to the bootstrap's own Monte Carlo error."""
    y, v = regression_rows
    reference = stats.bootstrap((y, v), sk.r2_score, paired=True, vectorized=False,
                                n_resamples=2000, method="percentile", confidence_level=0.95,
                                rng=np.random.default_rng(3)).confidence_interval.low
    key, bound = regression_bounds(y, v)["r2"]
    assert key == "lower_bound_95"
    assert bound == pytest.approx(reference, abs=0.02)
    assert bound < regression_metrics(y, v)["r2"]

    y, p = multiclass_rows
    _, f1_bound = multiclass_bounds(y, p)["macro_f1"]
    assert f1_bound < multiclass_metrics(y, p)["macro_f1"]


@pytest.mark.parametrize("kind", [MULTICLASS, REGRESSION])
def test_report_holds_each_gate_metric_with_the_bound_its_direction_needs(
        kind: str, multiclass_rows: tuple[np.ndarray, np.ndarray],
        regression_rows: tuple[np.ndarray, np.ndarray]) -> None:
    y, predictions = multiclass_rows if kind == MULTICLASS else regression_rows
    report = quality_report(kind, y, predictions, resamples=20)
    section = report[TYPES[kind].report_section]
    for metric in TYPES[kind].gate_metrics:
        assert set(section[metric.name]) == {"value", "standard_deviation", metric.bound_key}
        value, bound = section[metric.name]["value"], section[metric.name][metric.bound_key]
        assert (bound <= value) if metric.better == "higher" else (bound >= value)


def _report(kind: str, metric: str, value: float, bound: float) -> dict[str, object]:
    key = next(m.bound_key for m in TYPES[kind].gate_metrics if m.name == metric)
    return {TYPES[kind].report_section: {metric: {"value": value, key: bound}}}


@pytest.mark.parametrize(("kind", "metric", "value", "bound", "threshold", "passed"), [
    (BINARY, "auc", 0.95, 0.91, 0.9, True),
    (BINARY, "auc", 0.95, 0.89, 0.9, False),  # the lower bound of a higher-is-better metric decides
    (MULTICLASS, "accuracy", 0.9, 0.82, 0.8, True),
    (MULTICLASS, "log_loss", 0.3, 0.45, 0.5, True),
    (MULTICLASS, "log_loss", 0.3, 0.55, 0.5, False),  # the upper bound of a lower-is-better one
    (REGRESSION, "rmse", 50.0, 60.0, 75.0, True),
    (REGRESSION, "rmse", 50.0, 80.0, 75.0, False),
    (REGRESSION, "mae", 80.0, 70.0, 75.0, False),  # the value itself on the wrong side fails too
    (REGRESSION, "r2", 0.5, 0.3, 0.25, True),
    (REGRESSION, "r2", 0.5, 0.2, 0.25, False),
])
def test_gate_direction(kind: str, metric: str, value: float, bound: float, threshold: float, passed: bool) -> None:
    decision = decide_gate(_report(kind, metric, value, bound), metric=metric, threshold=threshold)
    assert decision.passed is passed
    assert decision.bound == bound
    expected = "<=" if metric in ("log_loss", "rmse", "mae") else ">="
    assert [check.comparison for check in gate_checks(metric)] == [expected, expected]
    assert all(check.path.startswith(TYPES[kind].report_section + ".") for check in gate_checks(metric))


@pytest.mark.parametrize("kind", [BINARY, MULTICLASS, REGRESSION])
def test_the_pipeline_definition_follows_the_gate_metrics_kind(kind: str) -> None:
    """Task, objective and the training job's metric definitions are the kind's (the kind of the gate metric, which
    the configuration only accepts for a model of that kind); the Condition step reads the kind's section."""
    import dataclasses

    from pipelines.definition import build_definition
    from tests.unit.test_pipeline_definition import SETTINGS

    spec = TYPES[kind]
    definition = build_definition(dataclasses.replace(SETTINGS, quality_metric=spec.default_gate_metric))
    steps = {step["Type"]: step for step in definition["Steps"]}
    train = steps["Training"]["Arguments"]
    assert train["HyperParameters"]["objective"] == spec.objective
    assert [d["Name"] for d in train["AlgorithmSpecification"]["MetricDefinitions"]] == [
        f"validation:{name}" for name in spec.eval_metric.split(",")]
    (register,) = [s for s in steps["Condition"]["Arguments"]["IfSteps"] if "Task" in s.get("Arguments", {})]
    assert register["Arguments"]["Task"] == spec.task
    paths = json.dumps(steps["Condition"])
    assert f"{spec.report_section}.{spec.default_gate_metric}." in paths
