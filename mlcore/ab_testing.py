"""The A/B report's statistics: per variant a quality metric with a bootstrap interval, and Challenger against
Champion with a significance test (`mlops ab-report`). Pure: numpy and scipy over (label, score) pairs, which come
from the same capture/label join the drift monitor uses (``mlcore.drift.ground_truth.QualityJoin``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from mlcore.metrics import hanley_mcneil_se, roc_auc

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
