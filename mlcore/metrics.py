"""Binary-classification quality metrics and SageMaker's model-quality JSON format. numpy only.

The evaluate step writes these metrics; the pipeline's quality gate reads one of them through a
PropertyFile (``binary_classification_metrics.<metric>.value``) and the model package registers the same
file as ``ModelMetrics.ModelQuality.Statistics``. The format is SageMaker's model-quality one: every
metric is ``{"value": v, "standard_deviation": s}``.

Standard deviations come from a *stratified* bootstrap (each resample keeps the class counts, so AUC is
always defined) with a fixed seed: the same predictions give the same file, which keeps reruns
comparable and tests exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_PROBABILITY_FLOOR = 1e-15


def _as_arrays(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if y.size != p.size:
        raise ValueError(f"labels has {y.size} values, probabilities has {p.size}")
    if y.size == 0:
        raise ValueError("metrics need at least one row")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    if not np.all(np.isfinite(p)) or np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("probabilities must be finite numbers in [0, 1]")
    return y, p


def average_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks with ties sharing their average rank (what the Mann-Whitney statistic needs)."""
    order = np.argsort(values, kind="mergesort")
    _, starts, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return ranks


def roc_auc(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """Area under the ROC curve via the rank statistic; NaN when only one class is present."""
    y, p = _as_arrays(labels, probabilities)
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = average_ranks(p)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def log_loss(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    y, p = _as_arrays(labels, probabilities)
    clipped = np.clip(p, _PROBABILITY_FLOOR, 1.0 - _PROBABILITY_FLOOR)
    return float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1.0 - clipped)))


def expected_calibration_error(labels: npt.ArrayLike, probabilities: npt.ArrayLike, *, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted mean |observed rate - mean probability| over equal-width
    probability bins (right-closed, the first bin includes 0)."""
    y, p = _as_arrays(labels, probabilities)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = index == b
        count = int(in_bin.sum())
        if count:
            error += count * abs(float(y[in_bin].mean()) - float(p[in_bin].mean()))
    return error / y.size


def confusion_counts(labels: npt.ArrayLike, probabilities: npt.ArrayLike, *,
                     threshold: float = 0.5) -> dict[str, int]:
    """True/false positives/negatives when ``probability >= threshold`` predicts the positive class."""
    y, p = _as_arrays(labels, probabilities)
    predicted = p >= threshold
    actual = y == 1
    return {
        "true_positives": int(np.sum(predicted & actual)),
        "false_positives": int(np.sum(predicted & ~actual)),
        "true_negatives": int(np.sum(~predicted & ~actual)),
        "false_negatives": int(np.sum(~predicted & actual)),
    }


def classification_metrics(labels: npt.ArrayLike, probabilities: npt.ArrayLike, *,
                           threshold: float = 0.5) -> dict[str, float]:
    """AUC, F1, precision, recall, accuracy, log loss and expected calibration error of one set of rows."""
    y, p = _as_arrays(labels, probabilities)
    counts = confusion_counts(y, p, threshold=threshold)
    tp, fp, fn = counts["true_positives"], counts["false_positives"], counts["false_negatives"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "auc": roc_auc(y, p),
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "accuracy": (tp + counts["true_negatives"]) / y.size,
        "log_loss": log_loss(y, p),
        "calibration_error": expected_calibration_error(y, p),
    }


def bootstrap_standard_deviations(labels: npt.ArrayLike, probabilities: npt.ArrayLike, *,
                                  threshold: float = 0.5, resamples: int = 100,
                                  seed: int = 0) -> dict[str, float]:
    """Standard deviation of every ``classification_metrics`` value over stratified bootstrap resamples."""
    y, p = _as_arrays(labels, probabilities)
    if resamples < 2:
        return dict.fromkeys(classification_metrics(y, p, threshold=threshold), 0.0)
    rng = np.random.default_rng(seed)
    positive_rows = np.flatnonzero(y == 1)
    negative_rows = np.flatnonzero(y == 0)
    samples: dict[str, list[float]] = {}
    for _ in range(resamples):
        chosen = np.concatenate([
            rng.choice(positive_rows, size=positive_rows.size, replace=True) if positive_rows.size else positive_rows,
            rng.choice(negative_rows, size=negative_rows.size, replace=True) if negative_rows.size else negative_rows,
        ])
        for name, value in classification_metrics(y[chosen], p[chosen], threshold=threshold).items():
            samples.setdefault(name, []).append(value)
    return {name: float(np.nanstd(values)) if not np.all(np.isnan(values)) else float("nan")
            for name, values in samples.items()}


CONFIDENCE_Z = 1.959963984540054  # two-sided 95 %


def _wilson_lower(successes: float, trials: int, z: float = CONFIDENCE_Z) -> float:
    """Wilson score lower bound of a proportion: defined (and below 1) even for 0 or all successes."""
    if trials <= 0:
        return 0.0
    phat = successes / trials
    centre = phat + z * z / (2 * trials)
    spread = z * math.sqrt(phat * (1 - phat) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - spread) / (1 + z * z / trials))


def _auc_lower(auc: float, positives: int, negatives: int, z: float = CONFIDENCE_Z) -> float:
    """Hanley & McNeil (1982) standard error of the AUC, lower bound ``auc - z·se``.

    Their formula gives se = 0 at AUC 1, which would let two test rows pass any gate; the AUC is therefore
    capped at ``1 - 1/(2·n₁·n₀)`` (half of one mis-ordered pair) before the error is computed, so a perfect
    score on few rows still carries the uncertainty of few rows.
    """
    if positives == 0 or negatives == 0 or math.isnan(auc):
        return 0.0
    a = min(auc, 1.0 - 0.5 / (positives * negatives))
    return max(0.0, a - z * hanley_mcneil_se(a, positives, negatives))


def hanley_mcneil_se(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982): the standard error of an AUC from its value and the two class counts (the quality
    gate's lower bound and the A/B report's AUC comparison both use it)."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives)
    return math.sqrt(max(variance, 0.0))


def lower_confidence_bounds(labels: npt.ArrayLike, probabilities: npt.ArrayLike, *,
                            threshold: float = 0.5) -> dict[str, float]:
    """95 % lower confidence bounds of the metrics the quality gate may use, from the test set's size.

    AUC: Hanley-McNeil (above). Precision and recall: Wilson on their own denominators (predicted and actual
    positives). F1: the harmonic mean of those two bounds (conservative). A gate that requires the bound to
    clear its threshold refuses a test set too small to show that the model does.
    """
    y, p = _as_arrays(labels, probabilities)
    counts = confusion_counts(y, p, threshold=threshold)
    tp, fp, fn = counts["true_positives"], counts["false_positives"], counts["false_negatives"]
    precision = _wilson_lower(tp, tp + fp)
    recall = _wilson_lower(tp, tp + fn)
    positives = int(y.sum())
    return {
        "auc": _auc_lower(roc_auc(y, p), positives, int(y.size - positives)),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


def model_quality_report(labels: npt.ArrayLike, probabilities: npt.ArrayLike, *, threshold: float = 0.5,
                         resamples: int = 100, seed: int = 0,
                         extra_metrics: Mapping[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """SageMaker's model-quality document: ``{"binary_classification_metrics": {name: {value, sd}}}``.

    ``extra_metrics`` adds further ``name -> (value, standard_deviation)`` pairs (the evaluate step puts
    latencies there). The confusion matrix goes in as plain counts, as SageMaker's own report does.
    """
    y, p = _as_arrays(labels, probabilities)
    values = classification_metrics(y, p, threshold=threshold)
    deviations = bootstrap_standard_deviations(y, p, threshold=threshold, resamples=resamples, seed=seed)
    metrics: dict[str, Any] = {name: {"value": values[name], "standard_deviation": deviations[name]}
                               for name in values}
    for name, bound in lower_confidence_bounds(y, p, threshold=threshold).items():
        metrics[name]["lower_bound_95"] = bound
    for name, (value, deviation) in (extra_metrics or {}).items():
        metrics[name] = {"value": float(value), "standard_deviation": float(deviation)}
    counts = confusion_counts(y, p, threshold=threshold)
    metrics["confusion_matrix"] = {
        "1": {"1": counts["true_positives"], "0": counts["false_negatives"]},
        "0": {"1": counts["false_positives"], "0": counts["true_negatives"]},
    }
    return {"binary_classification_metrics": metrics}
