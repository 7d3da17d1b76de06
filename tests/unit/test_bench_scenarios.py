"""The detector benchmark's scenario generator makes what it claims (bench/bench_drift_quality.py).

GIVEN the benchmark's baseline (10,000 generated training rows, three high-importance features), WHEN a
1,000-row window comes from the no-drift family, THEN our detector stays quiet; WHEN it carries the large
mean shift or a missing-value jump in its target features, THEN exactly those targets trip. No timing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench import bench_drift_quality as bench
from mlcore.drift.statistics import compare_columns


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    return bench.make_baseline(bench.training_window())


def test_baseline_carries_the_generated_schema_and_importances(baseline: dict[str, Any]) -> None:
    assert baseline["rows"] == bench.BASELINE_ROWS
    assert len(baseline["features"]) == 25
    top = sorted(baseline["feature_importances"], key=lambda n: -baseline["feature_importances"][n])[:3]
    assert top == ["n00", "c0", "n01"]
    # every declared category occurs in training, so none is "unseen" by construction
    for i, name in enumerate(bench.CATEGORICAL_NAMES):
        assert all(count > 0 for count in baseline["features"][name]["categories"].values()), name
        assert list(baseline["features"][name]["categories"]) == bench.category_labels(i)
    # training values lie inside the schema bounds
    assert all(baseline["features"][f.name]["out_of_range_rate"] == 0.0 for f in bench.NUMERIC_FEATURES)


def test_generator_is_deterministic_and_injects_only_into_targets() -> None:
    a = bench.generate_window(1_000, "mean_shift", 1.0, seed=5)
    b = bench.generate_window(1_000, "mean_shift", 1.0, seed=5)
    quiet = bench.generate_window(1_000, "no_drift", seed=5)
    np.testing.assert_array_equal(a.numeric, b.numeric)
    for j, feature in enumerate(bench.NUMERIC_FEATURES):
        moved = np.nanmean(a.numeric[:, j]) - feature.mean
        if feature.name in bench.FAMILY["mean_shift"].targets:
            assert moved == pytest.approx(feature.sd, abs=0.2 * feature.sd)
        assert abs(np.nanmean(quiet.numeric[:, j]) - feature.mean) < 0.2 * feature.sd
    missing = bench.generate_window(1_000, "missing", 0.2, seed=6)
    assert np.isnan(missing.numeric[:, 0]).mean() == pytest.approx(0.2, abs=0.05)
    assert (missing.codes[:, 1] == -1).mean() == pytest.approx(0.2, abs=0.05)
    assert np.isnan(missing.numeric[:, 1]).mean() == 0.0


def test_no_drift_window_is_quiet(baseline: dict[str, Any]) -> None:
    window = bench.generate_window(1_000, "no_drift", seed=bench.window_seed("no_drift", "none", 1_000, 0))
    report = compare_columns(baseline, window.columns(), probabilities=window.probabilities).to_dict()
    assert not report["drifted"]
    assert report["data_quality_violations"] == 0
    assert [n for n, f in report["features"].items() if f["signals"] or f["quality_signals"]] == []
    assert bench.score_ours(report, bench.FAMILY["no_drift"])["false_alarms"] == 0


def test_strong_shift_in_the_top_feature_is_detected(baseline: dict[str, Any]) -> None:
    spec = bench.FAMILY["mean_shift"]
    window = bench.generate_window(1_000, "mean_shift", 1.0, seed=7)
    report = compare_columns(baseline, window.columns(), probabilities=window.probabilities).to_dict()
    assert report["drifted"]
    assert sorted(n for n, f in report["features"].items() if f["signals"]) == sorted(spec.targets)
    assert bench.score_ours(report, spec) == {"hits": 3, "injected": 3, "false_alarms": 0, "off_tests": 22,
                                              "prediction_false_alarm": 0, "drifted": 1, "dq": 0}


def test_missing_jump_is_a_data_quality_violation_not_drift(baseline: dict[str, Any]) -> None:
    spec = bench.FAMILY["missing"]
    window = bench.generate_window(1_000, "missing", 0.2, seed=8)
    report = compare_columns(baseline, window.columns(), probabilities=window.probabilities).to_dict()
    assert sorted(report["data_quality_features"]) == sorted(spec.targets)
    assert not report["drifted"]


@pytest.mark.parametrize("family", ["out_of_range", "unseen", "missing"])
def test_failures_present_counts_what_the_injection_left(family: str) -> None:
    """A 100-row window at a small injected share often holds no bad value at all; the benchmark's
    "present" column must count from the generated values, and agree with them in both directions."""
    spec = bench.FAMILY[family]
    effect = spec.effects["small"]
    seen_empty = seen_full = False
    for seed in range(40):
        window = bench.generate_window(100, family, effect, seed=seed)
        present = bench.failures_present(window, spec)
        assert set(present) <= set(spec.targets)
        for j, f in enumerate(bench.NUMERIC_FEATURES):
            if f.name in spec.targets:
                values = window.numeric[:, j]
                low, high = f.bounds
                bad = (np.isnan(values).sum() if family == "missing"
                       else ((values < low) | (values > high)).sum())
                assert (f.name in present) == (bad >= 1), (seed, f.name)  # one in 100 reaches every minimum effect
        for j, name in enumerate(bench.CATEGORICAL_NAMES):
            if name in spec.targets:
                codes = window.codes[:, j]
                bad = (codes < 0).sum() if family == "missing" else (codes >= bench.CATEGORY_COUNTS[j]).sum()
                assert (name in present) == (bad >= 1), (seed, name)
        seen_empty |= not present
        seen_full |= len(present) == len(spec.targets)
    assert bench.failures_present(bench.generate_window(100, "no_drift", seed=1), bench.FAMILY["no_drift"]) == []
    assert seen_full and (seen_empty or family == "missing")


def test_a_failure_present_in_a_small_window_is_flagged(baseline: dict[str, Any]) -> None:
    for family in ("out_of_range", "unseen", "missing"):
        spec = bench.FAMILY[family]
        for seed in range(20):
            window = bench.generate_window(100, family, spec.effects["small"], seed=seed)
            scored = bench.run_ours(baseline, window, spec)
            assert scored["present_hits"] == scored["present"], (family, seed)
            assert scored["present_windows_dq"] == scored["present_windows"]


def test_every_window_of_the_benchmark_has_its_own_seed() -> None:
    plan = bench.FULL
    seeds = [bench.window_seed(spec.name, effect_name, n, r)
             for spec in bench.FAMILIES for effect_name, _effect, n in bench._cells(spec, plan)
             for r in range(plan.replicates(spec.name, n, evidently=False))]
    assert len(seeds) > 8_000
    assert len(set(seeds)) == len(seeds)
    assert bench.SEED not in seeds
    first = bench.generate_window(100, "no_drift", seed=bench.window_seed("no_drift", "none", 100, 0))
    second = bench.generate_window(100, "no_drift", seed=bench.window_seed("no_drift", "none", 100, 1))
    assert not np.array_equal(first.numeric, second.numeric)
