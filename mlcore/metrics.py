"""Quality metrics of the three kinds of model and SageMaker's model-quality JSON format. numpy only.

Binary (AUC, F1, precision, recall; closed-form lower bounds), multiclass (accuracy, macro-F1, log loss) and
regression (RMSE, MAE, R²); ``quality_report(problem_type, ...)`` picks the kind's report. Every gate metric carries
the 95 % confidence bound that the gate compares: the lower bound of a higher-is-better metric
(``lower_bound_95``), the upper bound of a lower-is-better one (``upper_bound_95``; mlsettings.problem_types).

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

from mlsettings.problem_types import BINARY, LOWER_BOUND_KEY, MULTICLASS, REGRESSION, TYPES, UPPER_BOUND_KEY

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


# --------------------------------------------------------------------------------------------------------
# multiclass and regression (issue 25): the same report format, their own section and metrics
# --------------------------------------------------------------------------------------------------------

BOUND_RESAMPLES = 1000
"""Bootstrap resamples behind a percentile confidence bound (macro-F1, R²): 1000, so the 2.5 % quantile rests on
25 resampled values rather than 2 or 3."""


def _multiclass_arrays(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 3:
        raise ValueError(f"multiclass probabilities must be a (rows, classes >= 3) matrix, got shape {p.shape}")
    if y.size != p.shape[0]:
        raise ValueError(f"labels has {y.size} values, probabilities has {p.shape[0]} rows")
    if y.size == 0:
        raise ValueError("metrics need at least one row")
    if np.any((y < 0) | (y >= p.shape[1])):
        raise ValueError(f"labels must be class indices in [0, {p.shape[1] - 1}]")
    if not np.all(np.isfinite(p)) or np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("probabilities must be finite numbers in [0, 1]")
    return y, p


def _regression_arrays(labels: npt.ArrayLike, values: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if y.size != v.size:
        raise ValueError(f"labels has {y.size} values, predictions has {v.size}")
    if y.size == 0:
        raise ValueError("metrics need at least one row")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v))):
        raise ValueError("labels and predictions must be finite numbers")
    return y, v


def macro_f1(labels: IntArray, predicted: IntArray, classes: int) -> float:
    """Unweighted mean of the per-class F1 over every declared class (a class never predicted nor present counts
    0, as scikit-learn's ``f1_score(average="macro", labels=range(k), zero_division=0)``)."""
    scores = []
    for cls in range(classes):
        tp = float(np.sum((predicted == cls) & (labels == cls)))
        fp = float(np.sum((predicted == cls) & (labels != cls)))
        fn = float(np.sum((predicted != cls) & (labels == cls)))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def _row_log_losses(labels: IntArray, probabilities: FloatArray) -> FloatArray:
    """Each row's -log p(true class), rows renormalised to sum 1 and clipped away from 0 (scikit-learn's log_loss
    per row)."""
    normalised = probabilities / probabilities.sum(axis=1, keepdims=True)
    chosen = np.clip(normalised[np.arange(labels.size), labels], _PROBABILITY_FLOOR, 1.0)
    losses: FloatArray = -np.log(chosen)
    return losses


def multiclass_metrics(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> dict[str, float]:
    """Accuracy (of the top class), macro-F1 and log loss of a probability matrix against class indices."""
    y, p = _multiclass_arrays(labels, probabilities)
    predicted = np.argmax(p, axis=1)
    return {"accuracy": float(np.mean(predicted == y)), "macro_f1": macro_f1(y, predicted, p.shape[1]),
            "log_loss": float(np.mean(_row_log_losses(y, p)))}


def regression_metrics(labels: npt.ArrayLike, values: npt.ArrayLike) -> dict[str, float]:
    """RMSE, MAE and R² (1 - SSE/SST; NaN when the labels are constant, as R² is then undefined)."""
    y, v = _regression_arrays(labels, values)
    errors = v - y
    total = float(np.sum((y - y.mean()) ** 2))
    return {"rmse": float(np.sqrt(np.mean(errors ** 2))), "mae": float(np.mean(np.abs(errors))),
            "r2": 1.0 - float(np.sum(errors ** 2)) / total if total > 0 else float("nan")}


def mean_upper_bound(values: FloatArray, z: float = CONFIDENCE_Z) -> float:
    """95 % upper bound of a mean by the normal approximation: ``mean + z·s/√n`` (s the sample standard deviation,
    ddof 1): the closed form behind the upper bounds of log loss, MAE and (through the MSE) RMSE."""
    if values.size < 2:
        return float("inf")
    return float(values.mean() + z * values.std(ddof=1) / math.sqrt(values.size))


def _resampled(rows: int, resamples: int, seed: int, strata: IntArray | None = None) -> list[IntArray]:
    rng = np.random.default_rng(seed)
    if strata is None:
        return [rng.integers(0, rows, rows) for _ in range(resamples)]
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    return [np.concatenate([rng.choice(g, size=g.size, replace=True) for g in groups]) for _ in range(resamples)]


def _bootstrap(statistic: Any, rows: int, *, resamples: int, seed: int, strata: IntArray | None = None
               ) -> dict[str, FloatArray]:
    samples: dict[str, list[float]] = {}
    for index in _resampled(rows, resamples, seed, strata):
        for name, value in statistic(index).items():
            samples.setdefault(name, []).append(value)
    return {name: np.asarray(values, dtype=np.float64) for name, values in samples.items()}


def _percentile(values: FloatArray, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else float("nan")


def _sd(values: FloatArray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.std()) if finite.size else float("nan")


def multiclass_bounds(labels: npt.ArrayLike, probabilities: npt.ArrayLike, *, resamples: int = BOUND_RESAMPLES,
                      seed: int = 0) -> dict[str, tuple[str, float]]:
    """The 95 % bound that counts for each gate metric: accuracy's Wilson lower bound, macro-F1's stratified
    bootstrap percentile (2.5 %) lower bound, log loss's normal-approximation upper bound on the mean row loss."""
    y, p = _multiclass_arrays(labels, probabilities)
    predicted = np.argmax(p, axis=1)
    f1s = _bootstrap(lambda i: {"macro_f1": macro_f1(y[i], predicted[i], p.shape[1])}, y.size,
                     resamples=resamples, seed=seed, strata=y)["macro_f1"]
    return {"accuracy": (LOWER_BOUND_KEY, _wilson_lower(float(np.sum(predicted == y)), int(y.size))),
            "macro_f1": (LOWER_BOUND_KEY, _percentile(f1s, 0.025)),
            "log_loss": (UPPER_BOUND_KEY, mean_upper_bound(_row_log_losses(y, p)))}


def regression_bounds(labels: npt.ArrayLike, values: npt.ArrayLike, *, resamples: int = BOUND_RESAMPLES,
                      seed: int = 0) -> dict[str, tuple[str, float]]:
    """The 95 % bound that counts for each gate metric: MAE's normal-approximation upper bound on the mean absolute
    error; RMSE's the square root of the same bound on the mean squared error (the root is monotone, so the bound
    carries over); R²'s bootstrap percentile (2.5 %) lower bound."""
    y, v = _regression_arrays(labels, values)
    errors = v - y
    r2s = _bootstrap(lambda i: {"r2": regression_metrics(y[i], v[i])["r2"]}, y.size, resamples=resamples,
                     seed=seed)["r2"]
    return {"rmse": (UPPER_BOUND_KEY, math.sqrt(mean_upper_bound(errors ** 2))),
            "mae": (UPPER_BOUND_KEY, mean_upper_bound(np.abs(errors))),
            "r2": (LOWER_BOUND_KEY, _percentile(r2s, 0.025))}


def _report(section: str, values: Mapping[str, float], deviations: Mapping[str, float],
            bounds: Mapping[str, tuple[str, float]], extra_metrics: Mapping[str, tuple[float, float]] | None
            ) -> dict[str, Any]:
    metrics: dict[str, Any] = {name: {"value": values[name], "standard_deviation": deviations.get(name, 0.0)}
                               for name in values}
    for name, (key, bound) in bounds.items():
        metrics[name][key] = bound
    for name, (value, deviation) in (extra_metrics or {}).items():
        metrics[name] = {"value": float(value), "standard_deviation": float(deviation)}
    return {section: metrics}


def multiclass_quality_report(labels: npt.ArrayLike, probabilities: npt.ArrayLike, *, resamples: int = 100,
                              seed: int = 0, extra_metrics: Mapping[str, tuple[float, float]] | None = None
                              ) -> dict[str, Any]:
    """SageMaker's model-quality document for a multiclass model: ``multiclass_classification_metrics`` with each
    metric's value, bootstrap standard deviation and bound, and the confusion matrix by class index."""
    y, p = _multiclass_arrays(labels, probabilities)
    deviations = {name: _sd(values) for name, values in _bootstrap(
        lambda i: multiclass_metrics(y[i], p[i]), y.size, resamples=max(resamples, 2), seed=seed, strata=y).items()}
    report = _report(TYPES[MULTICLASS].report_section, multiclass_metrics(y, p), deviations,
                     multiclass_bounds(y, p, seed=seed), extra_metrics)
    predicted = np.argmax(p, axis=1)
    report[TYPES[MULTICLASS].report_section]["confusion_matrix"] = {
        str(actual): {str(guess): int(np.sum((y == actual) & (predicted == guess))) for guess in range(p.shape[1])}
        for actual in range(p.shape[1])}
    return report


def regression_quality_report(labels: npt.ArrayLike, values: npt.ArrayLike, *, resamples: int = 100, seed: int = 0,
                              extra_metrics: Mapping[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """SageMaker's model-quality document for a regression model: ``regression_metrics`` (rmse, mae, r2) with each
    metric's value, bootstrap standard deviation and bound."""
    y, v = _regression_arrays(labels, values)
    deviations = {name: _sd(values) for name, values in _bootstrap(
        lambda i: regression_metrics(y[i], v[i]), y.size, resamples=max(resamples, 2), seed=seed).items()}
    return _report(TYPES[REGRESSION].report_section, regression_metrics(y, v), deviations,
                   regression_bounds(y, v, seed=seed), extra_metrics)


def quality_metrics(problem_type: str, labels: npt.ArrayLike, predictions: npt.ArrayLike) -> dict[str, float]:
    """The kind's metrics of one set of rows (binary: scores; multiclass: a probability matrix; regression:
    values)."""
    metrics: dict[str, float] = _METRICS[problem_type](labels, predictions)
    return metrics


def quality_bounds(problem_type: str, labels: npt.ArrayLike, predictions: npt.ArrayLike
                   ) -> dict[str, tuple[str, float]]:
    """Each gate metric's 95 % bound on the side its direction needs: ``{metric: (bound key, value)}``."""
    bounds: dict[str, tuple[str, float]] = _BOUNDS[problem_type](labels, predictions)
    return bounds


def _binary_bounds(labels: npt.ArrayLike, scores: npt.ArrayLike) -> dict[str, tuple[str, float]]:
    return {name: (LOWER_BOUND_KEY, value) for name, value in lower_confidence_bounds(labels, scores).items()}


def quality_report(problem_type: str, labels: npt.ArrayLike, predictions: npt.ArrayLike, *, resamples: int = 100,
                   seed: int = 0, extra_metrics: Mapping[str, tuple[float, float]] | None = None,
                   threshold: float = 0.5) -> dict[str, Any]:
    """The evaluation report (SageMaker's model-quality format) of the kind ``problem_type`` (``threshold``: the
    binary score that predicts the positive class)."""
    report: dict[str, Any] = _REPORTS[problem_type](labels, predictions, resamples=resamples, seed=seed,
                                                    extra_metrics=extra_metrics, threshold=threshold)
    return report


_BOUNDS: dict[str, Any] = {BINARY: _binary_bounds, MULTICLASS: multiclass_bounds, REGRESSION: regression_bounds}
_METRICS: dict[str, Any] = {BINARY: classification_metrics, MULTICLASS: multiclass_metrics,
                            REGRESSION: regression_metrics}
def _without_threshold(report: Any) -> Any:
    """A report function of a kind with no probability threshold (the threshold is the binary kind's alone)."""
    def build(labels: npt.ArrayLike, predictions: npt.ArrayLike, *, threshold: float, **options: Any) -> Any:
        return report(labels, predictions, **options)
    return build


_REPORTS: dict[str, Any] = {BINARY: model_quality_report, MULTICLASS: _without_threshold(multiclass_quality_report),
                            REGRESSION: _without_threshold(regression_quality_report)}
