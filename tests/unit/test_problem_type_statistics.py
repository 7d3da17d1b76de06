"""A/B significance tests and prediction drift per kind of model (issue 25), against reference values: textbook
closed forms, scipy on the same arrays, and the stated sample sizes reaching their stated power in seeded
simulations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlcore.ab_testing import (
    compare_variants,
    mean_difference_sample_size,
    two_proportions_sample_size,
)
from mlcore.drift.predictions import PredictionDriftError, compare_predictions, prediction_baseline, psi
from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION
from mlsettings.schema import LabelSpec

MULTI = LabelSpec(name="y", classes=("a", "b", "c"), problem_type=MULTICLASS)
VALUE = LabelSpec(name="y", min=0.0, max=400.0, problem_type=REGRESSION)
SCORE = LabelSpec(name="y")


# ------------------------------------------------------------------------------------------ sample sizes
def test_two_proportions_sample_size_is_fleiss() -> None:
    """0.5 against 0.6 at alpha 0.05 and power 0.8: 387.3 → 388 per group (Fleiss 1981, no continuity
    correction)."""
    assert two_proportions_sample_size(0.5, 0.6) == 388


def test_mean_difference_sample_size_is_the_normal_formula() -> None:
    """A difference of half a standard deviation: 2·(1.95996 + 0.84162)²/0.25 = 62.8 → 63 per group."""
    assert mean_difference_sample_size(1.0, 0.5) == 63


def test_the_stated_sizes_reach_their_power() -> None:
    rng = np.random.default_rng(5)
    n = two_proportions_sample_size(0.7, 0.8)
    rejections = 0
    for _ in range(400):
        a, b = rng.random(n) < 0.7, rng.random(n) < 0.8
        table = [[int(b.sum()), n - int(b.sum())], [int(a.sum()), n - int(a.sum())]]
        rejections += stats.chi2_contingency(table, correction=False).pvalue < 0.05
    assert rejections / 400 == pytest.approx(0.8, abs=0.06)

    n = mean_difference_sample_size(10.0, 4.0)
    rejections = sum(stats.ttest_ind(rng.normal(4.0, 10.0, n), rng.normal(0.0, 10.0, n), equal_var=False).pvalue
                     < 0.05 for _ in range(400))
    assert rejections / 400 == pytest.approx(0.8, abs=0.06)


# ------------------------------------------------------------------------------------------ A/B per kind
def _multiclass_pair(correct: int, wrong: int) -> tuple[list[int], list[list[float]]]:
    labels = [0] * (correct + wrong)
    rows = [[0.8, 0.1, 0.1]] * correct + [[0.1, 0.8, 0.1]] * wrong
    return labels, rows


def test_multiclass_accuracy_chi_square_is_pearsons() -> None:
    """Challenger 20 right / 5 wrong against Champion 10 / 15: expected 15 and 10 per row, Pearson's chi-square
    2·(25/15 + 25/10) = 8.333, p = 0.00389 (one degree of freedom)."""
    result = compare_variants(MULTICLASS, _multiclass_pair(10, 15), _multiclass_pair(20, 5))
    assert result["statistic"] == pytest.approx(25 / 3, rel=1e-12)
    assert result["p_value"] == pytest.approx(stats.chi2.sf(25 / 3, 1), rel=1e-12)
    assert result["p_value"] == pytest.approx(0.00389, abs=1e-5)
    assert (result["champion"], result["challenger"], result["significant"]) == (0.4, 0.8, True)
    assert result["improvement"] == pytest.approx(0.4)
    assert result["minimum_sample_size"] == two_proportions_sample_size(0.4, 0.45)


def test_regression_compares_absolute_errors_by_welch() -> None:
    rng = np.random.default_rng(3)
    y_a, y_b = rng.normal(150, 50, 120), rng.normal(150, 50, 90)
    champion = (y_a, y_a + rng.normal(0, 40, 120))
    challenger = (y_b, y_b + rng.normal(0, 25, 90))
    result = compare_variants(REGRESSION, champion, challenger)
    reference = stats.ttest_ind(np.abs(challenger[1] - y_b), np.abs(champion[1] - y_a), equal_var=False)
    assert result["statistic"] == pytest.approx(reference.statistic, rel=1e-12)
    assert result["p_value"] == pytest.approx(reference.pvalue, rel=1e-12)
    assert result["improvement"] > 0 and result["significant"]
    assert result["minimum_sample_size"] > 0


def test_binary_keeps_the_auc_test_and_states_its_sample_size() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    a = 1 / (1 + np.exp(-(1.0 * (2 * labels - 1) + rng.normal(0, 1, 400))))
    b = 1 / (1 + np.exp(-(2.0 * (2 * labels - 1) + rng.normal(0, 1, 400))))
    result = compare_variants(BINARY, (labels, a), (labels, b))
    assert result["metric"] == "auc" and result["test"] == "hanley_mcneil_z"
    assert result["improvement"] == result["difference"] > 0
    assert result["minimum_sample_size"] > 50


# ------------------------------------------------------------------------------------------ prediction drift
def test_class_mix_chi_square_and_psi_against_references() -> None:
    def answer(cls: str) -> dict[str, object]:
        return {"label": cls, "probabilities": [0.6 if c == cls else 0.2 for c in "abc"]}

    base = [answer(c) for c in "a" * 50 + "b" * 30 + "c" * 20]
    window = [answer(c) for c in "a" * 20 + "b" * 30 + "c" * 50]
    baseline = prediction_baseline(MULTI, base)
    report = compare_predictions(baseline, MULTI, window)
    reference = stats.chisquare([20, 30, 50], f_exp=[50, 30, 20])
    assert report["chi_square"]["statistic"] == pytest.approx(reference.statistic, rel=1e-9)
    assert report["chi_square"]["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    # PSI of class a against the rest: (0.2-0.5)·ln(0.2/0.5) + (0.8-0.5)·ln(0.8/0.5)
    expected_a = (0.2 - 0.5) * np.log(0.2 / 0.5) + (0.8 - 0.5) * np.log(0.8 / 0.5)
    assert report["psi_per_class"]["a"] == pytest.approx(expected_a, rel=1e-9)
    assert report["drifted"] is True
    same = compare_predictions(baseline, MULTI, base)
    assert same["drifted"] is False and same["chi_square"]["statistic"] == pytest.approx(0.0)


def test_value_drift_is_scipys_ks_and_wasserstein() -> None:
    rng = np.random.default_rng(2)
    train = rng.normal(150, 40, 800).clip(0, 400)
    shifted = rng.normal(190, 40, 300).clip(0, 400)
    baseline = prediction_baseline(VALUE, list(train))
    report = compare_predictions(baseline, VALUE, list(shifted))
    assert report["ks"]["statistic"] == pytest.approx(stats.ks_2samp(train, shifted).statistic, rel=1e-12)
    assert report["wasserstein"] == pytest.approx(stats.wasserstein_distance(train, shifted), rel=1e-12)
    assert report["drifted"] is True and report["confidence_shifted"] is None
    steady = compare_predictions(baseline, VALUE, list(rng.normal(150, 40, 300).clip(0, 400)))
    assert steady["drifted"] is False


def test_score_drift_psi_and_confidence_shift() -> None:
    rng = np.random.default_rng(4)
    train = rng.beta(2, 5, 1000)
    baseline = prediction_baseline(SCORE, list(train))
    assert baseline["bins"] == np.histogram(train, bins=10, range=(0, 1))[0].tolist()
    window = rng.beta(5, 2, 400)
    report = compare_predictions(baseline, SCORE, list(window))
    assert report["psi"] == pytest.approx(psi(baseline["bins"], np.histogram(window, bins=10, range=(0, 1))[0]))
    assert report["drifted"] is True


def test_answers_of_another_shape_are_refused() -> None:
    with pytest.raises(PredictionDriftError, match="sum to"):
        prediction_baseline(MULTI, [{"label": "a", "probabilities": [0.5, 0.4, 0.4]}])
    with pytest.raises(PredictionDriftError, match="outside the target's range"):
        prediction_baseline(VALUE, [500.0])
    baseline = prediction_baseline(VALUE, [1.0, 2.0])
    with pytest.raises(PredictionDriftError, match="a multiclass model's is 'class_mix'"):
        compare_predictions(baseline, MULTI, [{"label": "a", "probabilities": [1.0, 0.0, 0.0]}])


def test_each_variants_headline_quality_has_its_reference_interval() -> None:
    from mlcore.ab_testing import variant_quality

    labels = [0, 1, 2, 0, 1, 2, 0, 1]
    rows = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1],
            [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.8, 0.1, 0.1]]
    multi = variant_quality(MULTICLASS, labels, rows)
    wilson = stats.binomtest(6, 8).proportion_ci(method="wilson")
    assert multi == {"metric": "accuracy", "value": 0.75, "ci95": [pytest.approx(wilson.low),
                                                                  pytest.approx(wilson.high)]}
    y, v = [100.0, 150.0, 200.0, 250.0], [110.0, 140.0, 230.0, 250.0]
    errors = np.abs(np.subtract(v, y))
    interval = stats.t.interval(0.95, 3, loc=errors.mean(), scale=stats.sem(errors))
    value = variant_quality(REGRESSION, y, v)
    assert value["metric"] == "mae" and value["value"] == 12.5
    assert value["ci95"] == [pytest.approx(interval[0]), pytest.approx(interval[1])]


def test_ground_truth_quality_per_kind_equals_scikit_learn() -> None:
    """The drift monitor's capture/label join computes a regression model's metrics (and their bounds) from
    captured values and late labels."""
    from sklearn import metrics as sk

    from mlcore.drift.capture import CaptureRecord
    from mlcore.drift.ground_truth import LabelSet, QualityJoin

    truth = LabelSet(problem_type=REGRESSION)
    values = {"a": (100.0, 120.0), "b": (200.0, 180.0), "c": (50.0, 65.0), "d": (300.0, 310.0)}
    join = QualityJoin(truth)
    for key, (label, served) in values.items():
        truth.add(key, None, label)
        join.add_record("Champion", CaptureRecord(event_id=key, inference_id=key, inference_time="t",
                                                  rows=[["1"]], probabilities=[], answers=[served]))
    report = join.report("Champion", registered={"rmse": 10.0}, metric="rmse", margin=0.5, min_rows=4)
    y, p = [v[0] for v in values.values()], [v[1] for v in values.values()]
    assert report["metrics"]["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, p)))
    assert report["metrics"]["r2"] == pytest.approx(sk.r2_score(y, p))
    assert report["bounds_95"]["mae"] > report["metrics"]["mae"]
    # rmse is lower-is-better and in the target's units: a rise from 10 to 16.0 is a relative drop of 0.6 > 0.5
    assert report["drop"] == pytest.approx((report["metrics"]["rmse"] - 10.0) / 10.0) and report["degraded"] is True
    assert report["drop_relative"] is True
