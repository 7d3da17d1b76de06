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
    for name in ("auc", "f1", "precision", "recall", "log_loss", "calibration_error", "batch_latency_ms"):
        assert set(metrics[name]) == {"value", "standard_deviation"}
    assert metrics["auc"]["standard_deviation"] > 0
    counts = metrics["confusion_matrix"]
    assert counts["1"]["1"] + counts["1"]["0"] == int(y.sum())
    assert report == model_quality_report(y, p, resamples=20, extra_metrics={"batch_latency_ms": (3.0, 0.5)})
