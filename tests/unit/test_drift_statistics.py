"""Drift statistics on generated scenarios with known answers.

GIVEN a baseline of 10,000 training rows, WHEN a window comes from the same distribution, THEN nothing
trips at any window size (100 ... 1,000,000 rows); WHEN one thing changes (mean, variance, a new
category, nulls, an outlier burst), THEN the signal made for it trips and the others stay quiet.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr
from scipy.stats import chi2, ks_2samp

from mlcore.drift.baseline import build_baseline
from mlcore.drift.statistics import (
    DriftAccumulator,
    DriftInputError,
    DriftThresholds,
    binned_ks_statistic,
    columns_from_rows,
    compare_columns,
    jensen_shannon_distance,
    noise_floors,
    population_stability_index,
    smoothed_shares,
)
from mlsettings.schema import DataSchema

SCHEMA = DataSchema.from_dict({
    "name": "scenarios",
    "label": {"name": "y"},
    "features": [
        {"name": "normal", "type": "numeric", "min": -20, "max": 20},
        {"name": "skewed", "type": "numeric", "min": 0, "max": 1e6, "nullable": True},
        {"name": "zero_inflated", "type": "numeric", "min": 0, "max": 1000},
        {"name": "plan", "type": "categorical", "categories": ["basic", "plus", "pro", "max"],
         "nullable": True},
    ],
})
NUMERIC_ONLY = DataSchema.from_dict({
    "name": "numeric_only",
    "label": {"name": "y"},
    "features": [{"name": "normal", "type": "numeric", "min": -20, "max": 20},
                 {"name": "skewed", "type": "numeric", "min": 0, "max": 1e6, "nullable": True}],
})
PLANS = np.array(["basic", "plus", "pro", "max"], dtype=object)
DATA_SIGNALS = {"missing_rate", "out_of_range_rate", "unseen_share"}
DISTRIBUTION_SIGNALS = {"psi", "js", "ks"}


def generate(rng: np.random.Generator, n: int, *, shift: float = 0.0, scale: float = 1.0,
             null_spike: float = 0.0, new_category: float = 0.0, outliers: float = 0.0,
             numeric_only: bool = False) -> tuple[dict[str, Any], np.ndarray]:
    normal = rng.normal(shift, scale, n)
    if outliers:
        normal[: int(n * outliers)] = 1e9  # exactly this share, so the expected rate is known
    skewed = rng.lognormal(0.0, 1.0, n)
    skewed[rng.random(n) < 0.05 + null_spike] = np.nan
    columns: dict[str, Any] = {"normal": normal, "skewed": skewed}
    probabilities = 1.0 / (1.0 + np.exp(-np.clip(normal, -50, 50)))
    if numeric_only:
        return columns, probabilities
    columns["zero_inflated"] = np.where(rng.random(n) < 0.6, 0.0, rng.exponential(3.0, n))
    plan = rng.choice(PLANS, n, p=[0.5, 0.3, 0.15, 0.05])
    plan[rng.random(n) < 0.02] = None
    if new_category:
        plan[rng.random(n) < new_category] = "enterprise"
    columns["plan"] = plan
    return columns, probabilities


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    columns, probabilities = generate(np.random.default_rng(0), 10_000)
    return build_baseline(columns, SCHEMA, probabilities=probabilities)


@pytest.fixture(scope="module")
def numeric_baseline() -> dict[str, Any]:
    columns, probabilities = generate(np.random.default_rng(0), 10_000, numeric_only=True)
    return build_baseline(columns, NUMERIC_ONLY, probabilities=probabilities)


def all_signals(report: dict[str, Any]) -> dict[str, list[str]]:
    """Distribution and data-quality signals together, per feature."""
    return {name: item["signals"] + item["quality_signals"] for name, item in report["features"].items()}


# ---------------------------------------------------------------- the statistics against scipy oracles


def test_psi_is_the_symmetric_kl_divergence_of_smoothed_shares() -> None:
    baseline, window = [100, 80, 60, 0, 10], [50, 90, 70, 5, 0]
    p, q = smoothed_shares(baseline), smoothed_shares(window)
    expected = float(np.sum(rel_entr(q, p) + rel_entr(p, q)))
    assert population_stability_index(baseline, window) == pytest.approx(expected, rel=1e-12)
    assert population_stability_index(baseline, baseline) == 0.0


def test_js_distance_matches_scipy_in_base_two() -> None:
    baseline, window = [100, 80, 60, 0, 10], [50, 90, 70, 5, 0]
    expected = jensenshannon(smoothed_shares(baseline), smoothed_shares(window), base=2)
    assert jensen_shannon_distance(baseline, window) == pytest.approx(expected, rel=1e-9)
    assert 0.0 <= jensen_shannon_distance([1000, 0], [0, 1000]) <= 1.0


def test_binned_ks_approximates_the_raw_two_sample_ks_from_below() -> None:
    rng = np.random.default_rng(3)
    train, live = rng.normal(0, 1, 20_000), rng.normal(0.3, 1.2, 5_000)
    edges = np.quantile(train, np.linspace(0, 1, 51)[1:-1])
    train_counts = np.bincount(np.searchsorted(edges, train), minlength=50)
    live_counts = np.bincount(np.searchsorted(edges, live), minlength=50)
    raw = ks_2samp(train, live).statistic
    binned = binned_ks_statistic(train_counts, live_counts)
    assert binned <= raw + 1e-12
    assert raw - binned < 0.02


def test_psi_noise_floor_holds_its_false_alarm_rate() -> None:
    """GIVEN same-distribution windows of 200 rows THEN PSI exceeds the alpha=1% floor ~1% of the time."""
    rng = np.random.default_rng(4)
    shares = np.full(10, 0.1)
    baseline_counts = (shares * 100_000).astype(int)
    floors = noise_floors(10, 200, 100_000, 0.01)
    windows = rng.multinomial(200, shares, size=4000)
    psis = np.array([population_stability_index(baseline_counts, w) for w in windows])
    ks = np.array([binned_ks_statistic(baseline_counts, w) for w in windows])
    assert (psis > floors.psi).mean() < 0.03
    assert (ks > floors.ks).mean() < 0.03
    # and the floor is not absurdly conservative: the median PSI is near its chi-square expectation
    assert np.median(psis) == pytest.approx(chi2.median(9) * (1 / 200 + 1 / 100_000), rel=0.25)


def test_noise_floor_shrinks_with_window_size_down_to_the_baseline_limit() -> None:
    small, large, huge = (noise_floors(10, n, 10_000, 1e-4) for n in (100, 10_000, 10_000_000))
    assert small.psi > large.psi > huge.psi
    assert small.psi > DriftThresholds().psi  # a 100-row window needs more than the default to trip
    assert huge.psi == pytest.approx(noise_floors(10, 10**12, 10_000, 1e-4).psi, rel=1e-3)


# ---------------------------------------------------------------- no drift stays quiet


@pytest.mark.parametrize(("window", "repeats"), [(100, 20), (1_000, 10), (10_000, 3), (100_000, 1)])
def test_no_drift_stays_quiet_across_window_sizes(baseline: dict, window: int, repeats: int) -> None:
    for seed in range(repeats):
        columns, probabilities = generate(np.random.default_rng(10_000 + seed * 7 + window), window)
        report = compare_columns(baseline, columns, probabilities=probabilities).to_dict()
        assert report["enough_data"]
        assert all_signals(report) == {name: [] for name in SCHEMA.feature_names}, (window, seed)
        assert report["prediction"]["signals"] == report["confidence"]["signals"] == []
        assert report["drifted"] is False
        assert report["drifted_share"] == 0.0


def test_no_drift_stays_quiet_on_a_million_rows(numeric_baseline: dict) -> None:
    accumulator = DriftAccumulator(numeric_baseline)
    rng = np.random.default_rng(99)
    for _ in range(4):  # streamed in 250k-row chunks, as the Lambda does
        columns, probabilities = generate(rng, 250_000, numeric_only=True)
        accumulator.add_columns(columns)
        accumulator.add_probabilities(probabilities)
    report = accumulator.report().to_dict()
    assert report["rows"] == 1_000_000
    assert all_signals(report) == {"normal": [], "skewed": []}
    assert report["drifted"] is False
    # with a million rows the floor is the baseline's own sampling noise, so the thresholds decide
    assert report["features"]["normal"]["floors"]["psi"] < DriftThresholds().psi / 10


# ---------------------------------------------------------------- each change trips the right signal


@pytest.mark.parametrize("window", [1_000, 100_000])
def test_mean_shift_trips_distribution_signals_only_on_that_feature(baseline: dict, window: int) -> None:
    columns, probabilities = generate(np.random.default_rng(5), window, shift=1.0)
    report = compare_columns(baseline, columns, probabilities=probabilities).to_dict()
    signals = all_signals(report)
    assert set(signals["normal"]) == DISTRIBUTION_SIGNALS
    assert {k: v for k, v in signals.items() if k != "normal"} == {"skewed": [], "zero_inflated": [],
                                                                     "plan": []}
    assert report["features"]["normal"]["mean"] == pytest.approx(1.0, abs=0.1)
    assert report["prediction"]["drifted"] is True  # the model's scores follow the shifted feature
    assert report["drifted"] is True
    assert report["max_drift"] == report["features"]["normal"]["psi"]


def test_variance_change_is_seen_by_psi_and_js(baseline: dict) -> None:
    columns, probabilities = generate(np.random.default_rng(6), 10_000, scale=2.0)
    report = compare_columns(baseline, columns, probabilities=probabilities).to_dict()
    signals = all_signals(report)
    assert {"psi", "js"} <= set(signals["normal"])
    assert not set(signals["normal"]) & DATA_SIGNALS
    assert signals["skewed"] == signals["zero_inflated"] == signals["plan"] == []
    # the mean did not move: a mean-based check would miss this
    assert report["features"]["normal"]["mean"] == pytest.approx(0.0, abs=0.1)
    assert report["confidence"]["drifted"] is True  # wider inputs make the model more confident


@pytest.mark.parametrize("window", [1_000, 100_000])
def test_new_category_trips_unseen_share(baseline: dict, window: int) -> None:
    columns, _ = generate(np.random.default_rng(7), window, new_category=0.05)
    report = compare_columns(baseline, columns).to_dict()
    plan = report["features"]["plan"]
    assert "unseen_share" in plan["quality_signals"] and plan["quality_violation"]
    assert plan["unseen_share"] == pytest.approx(0.05, abs=0.02)
    assert plan["unseen_categories"].keys() == {"enterprise"}
    assert plan["ks"] is None
    assert {k: v for k, v in all_signals(report).items() if k != "plan"} == {
        "normal": [], "skewed": [], "zero_inflated": []}


@pytest.mark.parametrize("window", [100, 1_000, 100_000])
def test_null_spike_trips_missing_rate_only(baseline: dict, window: int) -> None:
    columns, _ = generate(np.random.default_rng(8), window, null_spike=0.3)
    report = compare_columns(baseline, columns).to_dict()
    signals = all_signals(report)
    # the distribution of the values that are present did not change: only the missing rate says so
    assert signals["skewed"] == ["missing_rate"]
    assert report["features"]["skewed"]["missing_rate"] == pytest.approx(0.35, abs=0.1)
    assert signals["normal"] == signals["zero_inflated"] == signals["plan"] == []


@pytest.mark.parametrize("window", [1_000, 100_000])
def test_outlier_burst_trips_out_of_range_but_not_the_distribution_signals(baseline: dict,
                                                                           window: int) -> None:
    columns, _ = generate(np.random.default_rng(9), window, outliers=0.03)
    clean, _ = generate(np.random.default_rng(9), window)
    report = compare_columns(baseline, columns).to_dict()
    clean_report = compare_columns(baseline, clean).to_dict()
    normal = report["features"]["normal"]
    assert normal["signals"] == [] and normal["quality_signals"] == ["out_of_range_rate"]
    assert normal["out_of_range_rate"] == pytest.approx(0.03, abs=0.01)
    # 3% of values at 1e9 land in the open last bin: PSI moves by little, the mean is wrecked
    assert normal["psi"] - clean_report["features"]["normal"]["psi"] < 0.05
    assert normal["mean"] > 1e6
    assert all_signals(report)["skewed"] == all_signals(report)["plan"] == []


def test_a_handful_of_extreme_outliers_trips_nothing(baseline: dict) -> None:
    columns, _ = generate(np.random.default_rng(10), 10_000)
    columns["normal"][:5] = [1e300, -1e300, np.inf, -np.inf, 1e12]
    report = compare_columns(baseline, columns).to_dict()
    assert all_signals(report)["normal"] == []
    assert report["features"]["normal"]["out_of_range_rate"] == pytest.approx(5 / 10_000)


# ---------------------------------------------------------------- streaming, small windows, bad input


def test_streaming_in_chunks_gives_the_one_shot_report(baseline: dict) -> None:
    columns, probabilities = generate(np.random.default_rng(11), 5_000, shift=0.3, null_spike=0.1)
    one_shot = compare_columns(baseline, columns, probabilities=probabilities).to_dict()
    accumulator = DriftAccumulator(baseline)
    for start in range(0, 5_000, 777):
        accumulator.add_columns({k: v[start:start + 777] for k, v in columns.items()})
        accumulator.add_probabilities(probabilities[start:start + 777])
    streamed = accumulator.report().to_dict()
    assert streamed["features"]["skewed"]["histogram"] == one_shot["features"]["skewed"]["histogram"]
    assert _close(streamed, one_shot)


def _close(left: Any, right: Any) -> bool:
    if isinstance(left, dict):
        assert left.keys() == right.keys()
        return all(_close(left[k], right[k]) for k in left)
    if isinstance(left, list):
        assert len(left) == len(right)
        return all(_close(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, float):
        assert left == pytest.approx(right, rel=1e-9, abs=1e-12)
        return True
    assert left == right
    return True


def test_below_min_rows_nothing_is_decided(baseline: dict) -> None:
    columns, probabilities = generate(np.random.default_rng(12), 50, shift=5.0)
    report = compare_columns(baseline, columns, probabilities=probabilities).to_dict()
    assert report["enough_data"] is False
    assert report["drifted"] is False
    assert report["features"]["normal"]["psi"] > 1.0  # the statistic is still reported
    assert all_signals(report)["normal"] == []


def test_empty_window_reports_without_statistics(baseline: dict) -> None:
    accumulator = DriftAccumulator(baseline)
    accumulator.add_malformed(3, "bad json")
    report = accumulator.report().to_dict()
    assert report["rows"] == 0
    assert report["malformed"] == 3
    assert report["malformed_reasons"] == {"bad json": 3}
    assert report["features"]["normal"]["psi"] is None
    assert report["prediction"]["psi"] is None
    assert report["drifted"] is False
    json.dumps(report, allow_nan=False)


def test_invalid_probabilities_are_counted_as_malformed(baseline: dict) -> None:
    accumulator = DriftAccumulator(baseline)
    accumulator.add_probabilities([0.2, 1.5, float("nan"), 0.9])
    report = accumulator.report().to_dict()
    assert report["malformed_reasons"] == {"probability outside [0, 1]": 2}
    assert report["prediction"]["count"] == 2


def test_string_rows_from_capture_feed_the_accumulator(baseline: dict) -> None:
    rows = [["0.5", "1.2", "0", "basic"], ["-0.3", "", "2.5", ""], ["1.1", "nan", "0", "pro"]] * 40
    accumulator = DriftAccumulator(baseline)
    accumulator.add_columns(columns_from_rows(rows, SCHEMA.feature_names))
    report = accumulator.report().to_dict()
    assert report["rows"] == 120
    assert report["features"]["skewed"]["missing_rate"] == pytest.approx(2 / 3)
    assert report["features"]["plan"]["missing_rate"] == pytest.approx(1 / 3)
    with pytest.raises(DriftInputError, match="3 fields, expected 4"):
        columns_from_rows([["1", "2", "3"]], SCHEMA.feature_names)


def test_chunks_must_carry_every_feature_with_equal_lengths(baseline: dict) -> None:
    accumulator = DriftAccumulator(baseline)
    with pytest.raises(DriftInputError, match=r"lacks feature columns.*plan"):
        accumulator.add_columns({"normal": [1.0], "skewed": [1.0], "zero_inflated": [1.0]})
    with pytest.raises(DriftInputError, match="different lengths"):
        accumulator.add_columns({"normal": [1.0, 2.0], "skewed": [1.0], "zero_inflated": [1.0],
                                 "plan": ["basic"]})


def test_thresholds_from_config_name_bad_keys_and_values() -> None:
    thresholds = DriftThresholds.from_dict({"psi": 0.1, "min_rows": 500})
    assert thresholds.psi == 0.1
    assert thresholds.min_rows == 500
    assert thresholds.ks == DriftThresholds().ks
    with pytest.raises(ValueError, match=r"unknown drift threshold keys \['pis'\]; allowed: \['psi'"):
        DriftThresholds.from_dict({"pis": 0.1})
    with pytest.raises(ValueError, match="js is 2"):
        DriftThresholds.from_dict({"js": 2})
    with pytest.raises(ValueError, match="min_rows"):
        DriftThresholds.from_dict({"min_rows": 0})


def test_stricter_thresholds_trip_earlier(baseline: dict) -> None:
    columns, _ = generate(np.random.default_rng(13), 100_000, shift=0.3)
    default = compare_columns(baseline, columns).to_dict()
    strict = compare_columns(baseline, columns, thresholds=DriftThresholds(psi=0.05)).to_dict()
    assert "psi" not in default["features"]["normal"]["signals"]
    assert "psi" in strict["features"]["normal"]["signals"]


def test_report_is_strict_json(baseline: dict) -> None:
    columns, probabilities = generate(np.random.default_rng(14), 1_000, new_category=0.1, outliers=0.01)
    report = compare_columns(baseline, columns, probabilities=probabilities).to_dict()
    text = json.dumps(report, allow_nan=False)
    assert {"rows", "malformed", "malformed_reasons", "features", "prediction", "confidence",
            "drifted_share", "max_drift", "drifted", "enough_data"} <= json.loads(text).keys()
    for item in report["features"].values():
        assert {"psi", "js", "ks", "missing_rate", "out_of_range_rate", "drifted", "signals"} <= item.keys()


def test_merged_accumulators_report_like_one() -> None:
    """A window counted in parts (worker processes) is the sum of its parts."""
    from mlcore.drift.statistics import DriftAccumulator

    rng = np.random.default_rng(7)
    schema = DataSchema.from_dict({"name": "m", "label": {"name": "y"}, "features": [
        {"name": "x", "type": "numeric", "min": -10, "max": 10, "nullable": True, "max_missing_rate": 1.0},
        {"name": "c", "type": "categorical", "categories": ["a", "b"], "nullable": True, "max_missing_rate": 1.0}]})
    train = {"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], size=2000)}
    baseline = build_baseline(train, schema, probabilities=rng.uniform(size=2000))
    window = {"x": np.append(rng.normal(1, 1, 999), np.nan), "c": np.append(rng.choice(["a", "z"], 999), None)}
    probabilities = rng.uniform(size=1000)
    whole = DriftAccumulator(baseline)
    whole.add_columns(window)
    whole.add_probabilities(probabilities)
    first, second = DriftAccumulator(baseline), DriftAccumulator(baseline)
    first.add_columns({k: v[:400] for k, v in window.items()})
    first.add_probabilities(probabilities[:400])
    second.add_columns({k: v[400:] for k, v in window.items()})
    second.add_probabilities(probabilities[400:])
    second.add_malformed(2, "not_json")
    whole.add_malformed(2, "not_json")
    first.merge(second)
    merged, expected = first.report().to_dict(), whole.report().to_dict()
    assert merged["rows"] == expected["rows"] == 1000
    assert merged["features"]["c"] == expected["features"]["c"]
    assert merged["features"]["x"]["psi"] == pytest.approx(expected["features"]["x"]["psi"], rel=1e-12)
    assert merged["malformed_reasons"] == {"not_json": 2}


# ---------------------------------------------------------------- data quality and importance weighting


def test_the_exact_binomial_tail_matches_scipy() -> None:
    from scipy.stats import binom

    from mlcore.drift.statistics import rate_excess_p_value

    for events, trials, rate in [(3, 100, 0.001), (150, 50_000, 0.0016), (60, 1_000, 0.04), (5_400, 100_000, 0.05),
                                 (51_000, 1_000_000, 0.05)]:
        assert rate_excess_p_value(events, trials, rate) == pytest.approx(binom.sf(events - 1, trials, rate),
                                                                          rel=1e-6, abs=1e-300)
    assert rate_excess_p_value(10, 1_000, 0.05) == 1.0  # below the mean: no evidence of an excess


@pytest.mark.parametrize("window", [100, 1_000, 10_000, 100_000])
def test_quality_rates_at_the_baseline_rate_stay_quiet(window: int) -> None:
    """The false-alarm side: windows drawn at the baseline's own rates violate in far fewer than 0.5 % of
    feature-tests, at every window size."""
    from mlcore.drift.statistics import rate_violation

    rng = np.random.default_rng(window)
    tests = violations = 0
    for baseline_rate, min_effect in ((0.05, 0.01), (0.0, 0.001), (0.2, 0.01)):
        baseline_rows = 2_000
        for _ in range(400):
            observed_baseline = rng.binomial(baseline_rows, baseline_rate) / baseline_rows
            events = int(rng.binomial(window, baseline_rate))
            tests += 1
            violations += rate_violation(events, window, baseline_rate=observed_baseline,
                                         baseline_rows=baseline_rows, min_effect=min_effect,
                                         false_alarm_rate=1e-4)
    assert violations / tests <= 0.005


def test_a_small_share_of_impossible_values_is_a_violation_in_a_large_window(baseline: dict) -> None:
    columns, _ = generate(np.random.default_rng(11), 50_000, outliers=0.003)  # 0.3 %: under the old fixed 1 %
    report = compare_columns(baseline, columns).to_dict()
    assert report["features"]["normal"]["quality_signals"] == ["out_of_range_rate"]
    assert report["data_quality_violations"] == 1 and report["data_quality_features"] == ["normal"]


@pytest.mark.parametrize("window", [100, 200, 1_000])
def test_what_the_schema_forbids_is_a_violation_at_its_minimum_effect(baseline: dict, window: int) -> None:
    """Out of the declared range, outside the declared categories, missing where the schema says not nullable:
    valid data never produces these (the baseline's rate is 0), so they count as soon as they reach the
    minimum effect, however small the window (one value of 100 ... 1,000 for the 0.1 % range and category
    effects; 1 % missing). The binomial test alone needed 3 such values in 100 rows."""
    columns, _ = generate(np.random.default_rng(15), window)
    columns["normal"][0] = 1e9
    columns["zero_inflated"][1:1 + window // 100] = np.nan  # missing_rate_delta: 1 %
    columns["plan"][2] = "enterprise"
    report = compare_columns(baseline, columns).to_dict()
    quality = {name: feature["quality_signals"] for name, feature in report["features"].items()}
    assert quality == {"normal": ["out_of_range_rate"], "skewed": [], "zero_inflated": ["missing_rate"],
                       "plan": ["unseen_share"]}
    assert report["data_quality_violations"] == 3
    clean, _ = generate(np.random.default_rng(15), window)
    assert compare_columns(baseline, clean).to_dict()["data_quality_violations"] == 0


def test_the_contract_test_keeps_the_minimum_effect_and_the_baseline_rate(baseline: dict) -> None:
    from mlcore.drift.statistics import rate_violation

    # one impossible value in 10,000 rows is under the 0.1 % minimum effect: quiet
    assert not rate_violation(1, 10_000, baseline_rate=0.0, baseline_rows=10_000, min_effect=0.001,
                              false_alarm_rate=1e-4, forbidden=True)
    assert rate_violation(10, 10_000, baseline_rate=0.0, baseline_rows=10_000, min_effect=0.001,
                          false_alarm_rate=1e-4, forbidden=True)
    # not forbidden by the schema: one in 100 is within the noise of a baseline rate of 0
    assert not rate_violation(1, 100, baseline_rate=0.0, baseline_rows=10_000, min_effect=0.001,
                              false_alarm_rate=1e-4)
    # the baseline itself had such events: the binomial test decides, not the contract
    assert not rate_violation(1, 100, baseline_rate=0.005, baseline_rows=10_000, min_effect=0.001,
                              false_alarm_rate=1e-4, forbidden=True)
    # a nullable feature's missing values are judged against its baseline rate (skewed: 5 % missing)
    columns, _ = generate(np.random.default_rng(16), 100)
    assert compare_columns(baseline, columns).to_dict()["features"]["skewed"]["quality_signals"] == []


def test_a_declared_category_training_never_saw_is_judged_by_the_binomial_test() -> None:
    schema = DataSchema.from_dict({
        "name": "declared", "label": {"name": "y"},
        "features": [{"name": "plan", "type": "categorical", "categories": ["basic", "plus", "rare"]}]})
    rng = np.random.default_rng(17)
    trained = build_baseline({"plan": rng.choice(np.array(["basic", "plus"], dtype=object), 5_000)}, schema)
    window = rng.choice(np.array(["basic", "plus"], dtype=object), 100)
    window[0] = "rare"  # declared, so valid data may carry it: one in 100 is not evidence
    assert compare_columns(trained, {"plan": window}).to_dict()["features"]["plan"]["quality_signals"] == []
    window[1] = "unknown"  # not declared: a broken contract
    assert compare_columns(trained, {"plan": window}).to_dict()["features"]["plan"]["quality_signals"] == [
        "unseen_share"]


def _weighted(baseline: dict, importances: dict[str, float]) -> dict[str, Any]:
    return {**baseline, "feature_importances": importances}


def test_a_strongly_drifted_top_feature_alone_trips_the_window(baseline: dict) -> None:
    weighted = _weighted(baseline, {"normal": 0.7, "skewed": 0.1, "zero_inflated": 0.1, "plan": 0.1})
    columns, _ = generate(np.random.default_rng(12), 5_000, shift=1.0)
    report = compare_columns(weighted, columns).to_dict()
    assert [n for n, f in report["features"].items() if f["drifted"]] == ["normal"]
    assert report["weighted_drift_score"] == pytest.approx(0.7)
    assert report["drifted"] is True
    assert report["top_features"][0] == "normal" and report["importance_source"] == "baseline"


def test_a_drifted_feature_the_model_does_not_use_does_not_trip_the_window(baseline: dict) -> None:
    # normal has no importance: one drifted feature of four is 25 % (over drifted_share 0.2), weighted 0.
    weighted = _weighted(baseline, {"normal": 0.0, "skewed": 0.5, "zero_inflated": 0.3, "plan": 0.2})
    columns, _probabilities = generate(np.random.default_rng(13), 5_000, shift=1.0)
    report = compare_columns(weighted, columns).to_dict()
    assert report["drifted_share"] == pytest.approx(0.25)
    assert report["weighted_drift_score"] == 0.0
    assert report["drifted"] is False


def test_without_importances_the_weights_are_uniform(baseline: dict) -> None:
    columns, _ = generate(np.random.default_rng(14), 5_000, shift=1.0)
    report = compare_columns(baseline, columns).to_dict()
    assert report["importance_source"] == "uniform"
    assert report["weighted_drift_score"] == pytest.approx(report["drifted_share"])


def test_importances_sum_gain_back_to_raw_features() -> None:
    from mlcore.drift.baseline import normalised_importances

    shares = normalised_importances({"f0": 3.0, "f2": 1.0, "f3": 4.0}, ["normal", "skewed", "plan=basic", "plan=pro"],
                                    ["normal", "skewed", "plan"])
    assert shares == pytest.approx({"normal": 0.375, "skewed": 0.0, "plan": 0.625})
