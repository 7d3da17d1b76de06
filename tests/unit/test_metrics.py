"""Quality metrics against scikit-learn as the oracle, and the model-quality JSON shape."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, log_loss, precision_score, recall_score, roc_auc_score

from mlcore.metrics import (
    classification_metrics,
    expected_calibration_error,
    model_quality_report,
    roc_auc,
)


@pytest.fixture(scope="module")
def predictions() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1).round(2)  # rounding creates ties
    return y, p


def test_metrics_equal_scikit_learn(predictions: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = predictions
    metrics = classification_metrics(y, p, threshold=0.5)
    predicted = (p >= 0.5).astype(int)
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert metrics["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-9)
    assert metrics["f1"] == pytest.approx(f1_score(y, predicted), abs=1e-12)
    assert metrics["precision"] == pytest.approx(precision_score(y, predicted), abs=1e-12)
    assert metrics["recall"] == pytest.approx(recall_score(y, predicted), abs=1e-12)


def test_auc_is_nan_with_one_class() -> None:
    assert np.isnan(roc_auc([1, 1], [0.2, 0.9]))


def test_calibration_error_of_a_calibrated_and_a_miscalibrated_model() -> None:
    y = np.array([1, 0] * 50)
    assert expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(100, 0.9)) == pytest.approx(0.4)


def test_report_is_in_sagemaker_model_quality_format(predictions: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = predictions
    report = model_quality_report(y, p, resamples=20, extra_metrics={"batch_latency_ms": (3.0, 0.5)})
    metrics = report["binary_classification_metrics"]
    for name in ("auc", "f1", "precision", "recall"):  # the gateable ones also carry their lower bound
        assert set(metrics[name]) == {"value", "standard_deviation", "lower_bound_95"}
    for name in ("log_loss", "calibration_error", "batch_latency_ms"):
        assert set(metrics[name]) == {"value", "standard_deviation"}
    assert metrics["auc"]["standard_deviation"] > 0
    counts = metrics["confusion_matrix"]
    assert counts["1"]["1"] + counts["1"]["0"] == int(y.sum())
    assert report == model_quality_report(y, p, resamples=20, extra_metrics={"batch_latency_ms": (3.0, 0.5)})


def test_the_auc_lower_bound_knows_the_test_set_size() -> None:
    from mlcore.metrics import lower_confidence_bounds

    # A perfect score on one row per class proves nothing; on 30 per class it clears 0.9.
    tiny = lower_confidence_bounds([0, 1], [0.1, 0.9])
    assert tiny["auc"] < 0.5 and tiny["recall"] < 0.3
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    perfect = lower_confidence_bounds(labels, np.where(labels == 1, 0.9, 0.1))
    assert 0.9 < perfect["auc"] < 1.0
    bounds = [lower_confidence_bounds(np.repeat([0, 1], n), np.r_[rng.uniform(0, 0.6, n), rng.uniform(0.4, 1, n)])
              ["auc"] for n in (10, 100, 1000)]
    assert bounds[0] < bounds[1] < bounds[2]


def test_the_bounds_go_into_the_model_quality_report() -> None:
    from mlcore.metrics import model_quality_report
    from mlsettings.problem_types import BINARY, TYPES

    report = model_quality_report([0, 1, 0, 1], [0.2, 0.8, 0.3, 0.7], resamples=2)["binary_classification_metrics"]
    for name in (metric.name for metric in TYPES[BINARY].gate_metrics):
        assert report[name]["lower_bound_95"] <= report[name]["value"]
