"""Prediction-distribution drift per kind of model: the baseline the baseline step stores from the training rows'
answers, and the comparison of a window's answers with it (issue 25).

* binary (``score``): the positive-class score — PSI over ten equal-width bins of [0, 1] and the two-sample KS
  test; confidence shift: KS of ``max(p, 1 - p)``.
* multiclass (``class_mix``): the predicted-class mix — Pearson's chi-square goodness-of-fit test of the window's
  class counts against the baseline's shares, and PSI per class (each class against the rest); confidence shift:
  KS of the top-class probability.
* regression (``value``): the predicted value — the two-sample KS test and the Wasserstein-1 distance, also
  divided by the baseline values' standard deviation so one threshold fits any target scale. A regression model
  has no confidence: the value's own distribution replaces confidence shift, and ground truth's absolute-error
  distribution (the A/B report's Welch test) judges whether the values got worse.

The baseline keeps a deterministic sample of at most ``SAMPLE_SIZE`` training answers per distribution (every
``k``-th row), which is what the KS test and the Wasserstein distance compare against: scipy's ``ks_2samp`` and
``wasserstein_distance`` on the two samples, so the statistics are exactly the library's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from mlcore.outputs import output_for
from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION
from mlsettings.schema import LabelSpec

SAMPLE_SIZE = 2000
SCORE_BINS = 10
P_VALUE = 0.01
"""A test's p-value below this flags drift (the KS and chi-square tests)."""
PSI_THRESHOLD = 0.2
"""A population stability index above this flags drift (the usual "significant shift" rule of thumb)."""
WASSERSTEIN_THRESHOLD = 0.25
"""A Wasserstein distance above a quarter of the baseline values' standard deviation flags drift."""
_SHARE_FLOOR = 1e-4


class PredictionDriftError(ValueError):
    """A prediction baseline that cannot be used, or answers that do not fit it."""


def _sample(values: npt.ArrayLike) -> list[float]:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    step = max(1, math.ceil(array.size / SAMPLE_SIZE))
    return [float(v) for v in array[::step]]


def psi(baseline_counts: npt.ArrayLike, window_counts: npt.ArrayLike) -> float:
    """Population stability index ``Σ (w - b)·ln(w / b)`` over shares, each floored at 1e-4 (an empty bin)."""
    b = np.asarray(baseline_counts, dtype=np.float64)
    w = np.asarray(window_counts, dtype=np.float64)
    b = np.maximum(b / b.sum(), _SHARE_FLOOR)
    w = np.maximum(w / w.sum(), _SHARE_FLOOR)
    return float(np.sum((w - b) * np.log(w / b)))


def _ks(reference: Sequence[float], window: npt.ArrayLike) -> dict[str, float]:
    result = stats.ks_2samp(np.asarray(reference), np.asarray(window, dtype=np.float64))
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue)}


def _score_bins(values: npt.ArrayLike) -> list[int]:
    counts, _ = np.histogram(np.asarray(values, dtype=np.float64), bins=SCORE_BINS, range=(0.0, 1.0))
    return [int(c) for c in counts]


class ScoreDrift:
    kind = "score"

    def baseline(self, label: LabelSpec, answers: Sequence[Any]) -> dict[str, Any]:
        scores = np.asarray(answers, dtype=np.float64)
        confidence = np.maximum(scores, 1.0 - scores)
        return {"kind": self.kind, "rows": int(scores.size), "bins": _score_bins(scores), "sample": _sample(scores),
                "confidence_sample": _sample(confidence), "scores": scores.tolist()}

    def compare(self, baseline: Mapping[str, Any], label: LabelSpec, answers: Sequence[Any]) -> dict[str, Any]:
        scores = np.asarray(answers, dtype=np.float64)
        value_psi = psi(baseline["bins"], _score_bins(scores))
        ks = _ks(baseline["sample"], scores)
        confidence = _ks(baseline["confidence_sample"], np.maximum(scores, 1.0 - scores))
        return {"kind": self.kind, "rows": int(scores.size), "psi": value_psi, "ks": ks, "confidence_ks": confidence,
                "drifted": value_psi > PSI_THRESHOLD or ks["p_value"] < P_VALUE,
                "confidence_shifted": confidence["p_value"] < P_VALUE}


class ClassMixDrift:
    kind = "class_mix"

    def baseline(self, label: LabelSpec, answers: Sequence[Any]) -> dict[str, Any]:
        counts = self._counts(label, answers)
        top = [max(a["probabilities"]) for a in answers]
        return {"kind": self.kind, "rows": len(answers), "counts": counts, "confidence_sample": _sample(top)}

    @staticmethod
    def _counts(label: LabelSpec, answers: Sequence[Any]) -> list[int]:
        counts = [0] * len(label.classes)
        for answer in answers:
            counts[label.classes.index(answer["label"])] += 1
        return counts

    def compare(self, baseline: Mapping[str, Any], label: LabelSpec, answers: Sequence[Any]) -> dict[str, Any]:
        observed = np.asarray(self._counts(label, answers), dtype=np.float64)
        reference = np.asarray(baseline["counts"], dtype=np.float64)
        if reference.size != observed.size:
            raise PredictionDriftError(f"the baseline has {reference.size} classes; the label declares "
                                       f"{observed.size}")
        shares = np.maximum(reference / reference.sum(), _SHARE_FLOOR)
        shares /= shares.sum()
        chi = stats.chisquare(observed, f_exp=shares * observed.sum())
        per_class = {str(cls): psi([reference[i], reference.sum() - reference[i]],
                                   [observed[i], observed.sum() - observed[i]])
                     for i, cls in enumerate(label.classes)}
        confidence = _ks(baseline["confidence_sample"], [max(a["probabilities"]) for a in answers])
        return {"kind": self.kind, "rows": int(observed.sum()), "counts": observed.astype(int).tolist(),
                "chi_square": {"statistic": float(chi.statistic), "p_value": float(chi.pvalue),
                               "dof": int(observed.size - 1)},
                "psi_per_class": per_class, "confidence_ks": confidence,
                "drifted": float(chi.pvalue) < P_VALUE or max(per_class.values()) > PSI_THRESHOLD,
                "confidence_shifted": confidence["p_value"] < P_VALUE}


class ValueDrift:
    kind = "value"

    def baseline(self, label: LabelSpec, answers: Sequence[Any]) -> dict[str, Any]:
        values = np.asarray(answers, dtype=np.float64)
        return {"kind": self.kind, "rows": int(values.size), "mean": float(values.mean()),
                "std": float(values.std()), "sample": _sample(values)}

    def compare(self, baseline: Mapping[str, Any], label: LabelSpec, answers: Sequence[Any]) -> dict[str, Any]:
        values = np.asarray(answers, dtype=np.float64)
        ks = _ks(baseline["sample"], values)
        distance = float(stats.wasserstein_distance(baseline["sample"], values))
        scale = float(baseline["std"]) or 1.0
        return {"kind": self.kind, "rows": int(values.size), "ks": ks, "wasserstein": distance,
                "wasserstein_per_std": distance / scale,
                "drifted": ks["p_value"] < P_VALUE or distance / scale > WASSERSTEIN_THRESHOLD,
                "confidence_shifted": None}


PredictionDrift = ScoreDrift | ClassMixDrift | ValueDrift
STRATEGIES: dict[str, PredictionDrift] = {BINARY: ScoreDrift(), MULTICLASS: ClassMixDrift(), REGRESSION: ValueDrift()}


def _checked(label: LabelSpec, answers: Sequence[Any]) -> None:
    output = output_for(label)
    for row, answer in enumerate(answers):
        problem = output.problem(answer, label)
        if problem is not None:
            raise PredictionDriftError(f"answer {row}: {problem}")
    if not answers:
        raise PredictionDriftError("no answers to compare")


def prediction_baseline(label: LabelSpec, answers: Sequence[Any]) -> dict[str, Any]:
    """The prediction baseline of the label's kind from the training rows' answers (mlcore.outputs shape). A binary
    baseline also carries ``scores`` (every score), which the feature-drift baseline's score histogram takes."""
    _checked(label, answers)
    return STRATEGIES[label.problem_type].baseline(label, answers)


def compare_predictions(baseline: Mapping[str, Any], label: LabelSpec, answers: Sequence[Any]) -> dict[str, Any]:
    """A window's answers against the prediction baseline: the kind's statistics and whether they flag drift
    (``drifted``) and a confidence shift (``confidence_shifted``; None for regression)."""
    strategy = STRATEGIES[label.problem_type]
    if baseline.get("kind") != strategy.kind:
        raise PredictionDriftError(f"the prediction baseline is {baseline.get('kind')!r}; a {label.problem_type} "
                                   f"model's is {strategy.kind!r}")
    _checked(label, answers)
    return strategy.compare(baseline, label, answers)
