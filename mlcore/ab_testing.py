"""The A/B report's statistics: per variant a quality metric with a bootstrap interval, and Challenger against
Champion with a significance test (`mlops ab-report`); per kind of model the test that fits, with the minimum sample
size per variant it needs (``compare_variants``: binary the AUC difference, multiclass chi-square on accuracy,
regression Welch's t on absolute errors). Pure: numpy and scipy over (label, score) pairs, which come
from the same capture/label join the drift monitor uses (``mlcore.drift.ground_truth.QualityJoin``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from mlcore.metrics import hanley_mcneil_se, roc_auc
from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION

ALPHA = 0.05
BOOTSTRAP_SAMPLES = 1000


def quality_metric(labels: Sequence[int], scores: Sequence[float]) -> tuple[str, float]:
    """AUC when both classes occur, else accuracy at 0.5 (AUC is undefined on one class)."""
    y = np.asarray(labels)
    if 0 < y.sum() < y.size:
        return "auc", float(roc_auc(y, np.asarray(scores)))
    return "accuracy", float(np.mean((np.asarray(scores) >= 0.5).astype(int) == y))


def bootstrap_interval(labels: Sequence[int], scores: Sequence[float], metric: str, *,
                       samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    y, p = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    values = []
    for _ in range(samples):
        index = rng.integers(0, y.size, y.size)
        ys, ps = y[index], p[index]
        if metric == "auc":
            if not 0 < ys.sum() < ys.size:
                continue
            values.append(float(roc_auc(ys, ps)))
        else:
            values.append(float(np.mean((ps >= 0.5).astype(int) == ys)))
    if not values:
        return (math.nan, math.nan)
    low, high = np.quantile(values, [0.025, 0.975]).tolist()
    return (float(low), float(high))


def compare_quality(champion: tuple[Sequence[int], Sequence[float]],
                    challenger: tuple[Sequence[int], Sequence[float]]) -> dict[str, Any]:
    """Challenger minus Champion with a two-sided test: AUCs of independent samples by the Hanley-McNeil
    standard errors (z-test); accuracies by Fisher's exact test on the 2x2 table of correct answers."""
    metric_a, value_a = quality_metric(*champion)
    metric_b, value_b = quality_metric(*challenger)
    metric = "auc" if metric_a == metric_b == "auc" else "accuracy"
    if metric == "accuracy":
        value_a, value_b = (float(np.mean((np.asarray(s) >= 0.5).astype(int) == np.asarray(y)))
                            for y, s in (champion, challenger))
        correct = [[round(v * len(y)), len(y) - round(v * len(y))]
                   for v, (y, _) in ((value_b, challenger), (value_a, champion))]
        p_value = float(stats.fisher_exact(correct).pvalue)
        test = "fisher_exact"
    else:
        ses = [hanley_mcneil_se(v, int(np.sum(y)), len(y) - int(np.sum(y))) for v, (y, _) in
               ((value_a, champion), (value_b, challenger))]
        z = (value_b - value_a) / math.sqrt(ses[0] ** 2 + ses[1] ** 2)
        p_value = float(2 * stats.norm.sf(abs(z)))
        test = "hanley_mcneil_z"
    return {"metric": metric, "champion": value_a, "challenger": value_b, "difference": value_b - value_a,
            "p_value": p_value, "test": test, "significant": p_value < ALPHA}


def compare_error_rates(champion: Mapping[str, Any], challenger: Mapping[str, Any]) -> dict[str, Any] | None:
    if not champion.get("requests") or not challenger.get("requests"):
        return None
    table = [[int(challenger["errors_5xx"]), int(challenger["requests"] - challenger["errors_5xx"])],
             [int(champion["errors_5xx"]), int(champion["requests"] - champion["errors_5xx"])]]
    result = stats.fisher_exact(table, alternative="greater")
    return {"test": "fisher_exact (challenger worse)", "p_value": float(result.pvalue),
            "significant": float(result.pvalue) < ALPHA}


# --------------------------------------------------------------------------------------------------------
# per kind of model (issue 25): the significance test that fits, with the sample size it needs
# --------------------------------------------------------------------------------------------------------

POWER = 0.8
MIN_DETECTABLE_ACCURACY = 0.05
"""The smallest accuracy difference (absolute) the stated sample size is for."""
MIN_DETECTABLE_MAE_FRACTION = 0.05
"""The smallest change of the mean absolute error, as a fraction of the Champion's, the stated sample size is for."""
MIN_DETECTABLE_AUC = 0.05


def _z(alpha: float = ALPHA, power: float = POWER) -> tuple[float, float]:
    return float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(power))


def two_proportions_sample_size(p1: float, p2: float, *, alpha: float = ALPHA, power: float = POWER) -> int:
    """Rows per variant for a two-sided test of two proportions to detect ``p1`` against ``p2`` (Fleiss, Statistical
    Methods for Rates and Proportions, 1981, without continuity correction)."""
    if p1 == p2:
        raise ValueError("the two proportions must differ")
    z_alpha, z_beta = _z(alpha, power)
    mean = (p1 + p2) / 2
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root * root / (p1 - p2) ** 2)


def mean_difference_sample_size(sd: float, difference: float, *, alpha: float = ALPHA, power: float = POWER) -> int:
    """Rows per variant for a two-sided test of two means with standard deviation ``sd`` to detect ``difference``
    (normal approximation: ``2·(z_(1-alpha/2) + z_power)²·sd²/Δ²``)."""
    if difference <= 0 or sd < 0:
        raise ValueError("the difference must be positive and the standard deviation non-negative")
    z_alpha, z_beta = _z(alpha, power)
    return max(2, math.ceil(2 * (z_alpha + z_beta) ** 2 * sd * sd / (difference * difference)))


def auc_difference_sample_size(auc: float, prevalence: float, *, difference: float = MIN_DETECTABLE_AUC,
                               alpha: float = ALPHA, power: float = POWER) -> int:
    """Rows per variant for the Hanley-McNeil z-test to detect an AUC ``difference`` at the Champion's AUC and
    class balance: the smallest n with ``(z_(1-alpha/2) + z_power)·√(se₁² + se₂²) ≤ Δ``."""
    z_alpha, z_beta = _z(alpha, power)
    other = min(auc + difference, 0.999) if auc + difference <= 0.999 else auc - difference
    prevalence = min(max(prevalence, 1e-3), 1 - 1e-3)

    def enough(n: int) -> bool:
        positives, negatives = max(1, round(n * prevalence)), max(1, n - round(n * prevalence))
        se = math.hypot(hanley_mcneil_se(auc, positives, negatives), hanley_mcneil_se(other, positives, negatives))
        return (z_alpha + z_beta) * se <= abs(other - auc)

    low, high = 2, 2
    while not enough(high):
        low, high = high, high * 2
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if not enough(middle) else (low, middle)
    return high


def _accuracy_chi_square(champion_correct: Sequence[bool], challenger_correct: Sequence[bool]) -> dict[str, Any]:
    a, b = np.asarray(champion_correct, dtype=bool), np.asarray(challenger_correct, dtype=bool)
    table = [[int(b.sum()), int(b.size - b.sum())], [int(a.sum()), int(a.size - a.sum())]]
    if min(sum(row) for row in table) == 0 or min(table[0][0] + table[1][0], table[0][1] + table[1][1]) == 0:
        statistic, p_value = 0.0, 1.0  # one variant has no rows, or every row is right (or wrong) in both
    else:
        result = stats.chi2_contingency(table, correction=False)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    champion, challenger = float(a.mean()), float(b.mean())
    needed = two_proportions_sample_size(champion, min(champion + MIN_DETECTABLE_ACCURACY, 0.999)
                                         if champion + MIN_DETECTABLE_ACCURACY <= 0.999
                                         else champion - MIN_DETECTABLE_ACCURACY)
    return {"metric": "accuracy", "champion": champion, "challenger": challenger, "difference": challenger - champion,
            "improvement": challenger - champion, "test": "chi_square_2x2 (Pearson, no continuity correction)",
            "statistic": statistic, "p_value": p_value, "significant": p_value < ALPHA,
            "minimum_sample_size": needed,
            "minimum_sample_size_for": f"an accuracy difference of {MIN_DETECTABLE_ACCURACY} at alpha {ALPHA}, "
                                       f"power {POWER} (two proportions, Fleiss 1981)"}


def compare_binary(champion: tuple[Sequence[int], Sequence[float]],
                   challenger: tuple[Sequence[int], Sequence[float]]) -> dict[str, Any]:
    """Binary: the AUC difference (Hanley-McNeil z) or, without both classes, accuracy by Fisher's exact test
    (``compare_quality``), with the rows per variant the AUC test needs for a 0.05 difference."""
    result = compare_quality(champion, challenger)
    labels = np.asarray(champion[0])
    auc = result["champion"] if result["metric"] == "auc" else 0.5
    result["improvement"] = result["difference"]
    result["minimum_sample_size"] = auc_difference_sample_size(min(max(auc, 0.5), 0.99),
                                                               float(labels.mean()) if labels.size else 0.5)
    result["minimum_sample_size_for"] = (f"an AUC difference of {MIN_DETECTABLE_AUC} at alpha {ALPHA}, power "
                                         f"{POWER} (Hanley-McNeil standard errors)")
    return result


def compare_multiclass(champion: tuple[Sequence[int], Sequence[Sequence[float]]],
                       challenger: tuple[Sequence[int], Sequence[Sequence[float]]]) -> dict[str, Any]:
    """Multiclass: accuracy of the top class, Challenger against Champion, by the chi-square test of the 2x2 table
    of right and wrong answers. Pairs are (class indices, probability rows)."""
    def correct(pair: tuple[Sequence[int], Sequence[Sequence[float]]]) -> Sequence[bool]:
        return list(np.argmax(np.asarray(pair[1], dtype=np.float64), axis=1) == np.asarray(pair[0]))
    return _accuracy_chi_square(correct(champion), correct(challenger))


def compare_regression(champion: tuple[Sequence[float], Sequence[float]],
                       challenger: tuple[Sequence[float], Sequence[float]]) -> dict[str, Any]:
    """Regression: the mean absolute error, Challenger against Champion, by Welch's t-test on the two samples of
    absolute errors (unequal variances). ``improvement`` is the Champion's MAE minus the Challenger's."""
    a = np.abs(np.asarray(champion[1], dtype=np.float64) - np.asarray(champion[0], dtype=np.float64))
    b = np.abs(np.asarray(challenger[1], dtype=np.float64) - np.asarray(challenger[0], dtype=np.float64))
    if a.size < 2 or b.size < 2:
        raise ValueError("Welch's t-test needs at least 2 labelled rows per variant")
    result = stats.ttest_ind(b, a, equal_var=False)
    p_value = float(result.pvalue) if math.isfinite(result.pvalue) else 1.0
    sd = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    needed = mean_difference_sample_size(sd, max(MIN_DETECTABLE_MAE_FRACTION * float(a.mean()), 1e-12))
    return {"metric": "mae", "champion": float(a.mean()), "challenger": float(b.mean()),
            "difference": float(b.mean() - a.mean()), "improvement": float(a.mean() - b.mean()),
            "test": "welch_t (absolute errors)", "statistic": float(result.statistic)
            if math.isfinite(result.statistic) else 0.0, "p_value": p_value, "significant": p_value < ALPHA,
            "minimum_sample_size": needed,
            "minimum_sample_size_for": f"an MAE change of {MIN_DETECTABLE_MAE_FRACTION:.0%} of the Champion's at "
                                       f"alpha {ALPHA}, power {POWER} (normal approximation)"}


_COMPARISONS: dict[str, Any] = {BINARY: compare_binary, MULTICLASS: compare_multiclass,
                                REGRESSION: compare_regression}


def compare_variants(problem_type: str, champion: tuple[Sequence[Any], Sequence[Any]],
                     challenger: tuple[Sequence[Any], Sequence[Any]]) -> dict[str, Any]:
    """Challenger against Champion with the test of the kind of model (mlsettings.problem_types ``ab_test``): the
    values, the difference, ``improvement`` (positive = Challenger better), the p-value, whether it is
    significant at ``ALPHA`` and the minimum sample size per variant for the stated effect."""
    return dict(_COMPARISONS[problem_type](champion, challenger))


def _binary_variant_quality(labels: Sequence[Any], predictions: Sequence[Any]) -> dict[str, Any]:
    metric, value = quality_metric(labels, predictions)
    low, high = bootstrap_interval(labels, predictions, metric)
    return {"metric": metric, "value": value, "ci95": [low, high]}


def _multiclass_variant_quality(labels: Sequence[Any], predictions: Sequence[Any]) -> dict[str, Any]:
    correct = np.argmax(np.asarray(predictions, dtype=np.float64), axis=1) == np.asarray(labels)
    interval = stats.binomtest(int(correct.sum()), int(correct.size)).proportion_ci(method="wilson")
    return {"metric": "accuracy", "value": float(correct.mean()), "ci95": [float(interval.low), float(interval.high)]}


def _regression_variant_quality(labels: Sequence[Any], predictions: Sequence[Any]) -> dict[str, Any]:
    errors = np.abs(np.asarray(predictions, dtype=np.float64) - np.asarray(labels, dtype=np.float64))
    if errors.size < 2:
        return {"metric": "mae", "value": float(errors.mean()), "ci95": [math.nan, math.nan]}
    low, high = stats.t.interval(0.95, errors.size - 1, loc=errors.mean(), scale=stats.sem(errors))
    return {"metric": "mae", "value": float(errors.mean()), "ci95": [float(low), float(high)]}


_VARIANT_QUALITY: dict[str, Any] = {BINARY: _binary_variant_quality, MULTICLASS: _multiclass_variant_quality,
                                    REGRESSION: _regression_variant_quality}


def variant_quality(problem_type: str, labels: Sequence[Any], predictions: Sequence[Any]) -> dict[str, Any]:
    """One variant's headline quality with its 95 % interval: binary AUC (bootstrap), multiclass accuracy (Wilson),
    regression MAE (t interval of the mean absolute error)."""
    return dict(_VARIANT_QUALITY[problem_type](labels, predictions))
