"""The drift baseline: bins, summary statistics, JSON round trip and validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcore.drift.baseline import (
    BASELINE_FORMAT,
    BaselineError,
    as_float_array,
    bin_counts,
    build_baseline,
    load_baseline,
)
from mlsettings.schema import DataSchema

SCHEMA = DataSchema.from_dict({
    "name": "unit",
    "label": {"name": "y"},
    "features": [
        {"name": "x", "type": "numeric", "min": -50, "max": 50},
        {"name": "maybe", "type": "numeric", "nullable": True},
        {"name": "colour", "type": "categorical", "categories": ["red", "green", "blue"], "nullable": True},
    ],
})


def _columns(rng: np.random.Generator, n: int) -> dict[str, object]:
    maybe = rng.exponential(2.0, n)
    maybe[rng.random(n) < 0.1] = np.nan
    colour = rng.choice(np.array(["red", "green", "purple"], dtype=object), n, p=[0.6, 0.3, 0.1])
    colour[:5] = None
    return {"x": rng.normal(0.0, 1.0, n), "maybe": maybe, "colour": colour}


@pytest.fixture(scope="module")
def baseline() -> dict[str, object]:
    rng = np.random.default_rng(1)
    columns = _columns(rng, 5000)
    probabilities = rng.beta(0.5, 0.5, 5000)
    return build_baseline(columns, SCHEMA, probabilities=probabilities)


def test_numeric_feature_has_decile_edges_and_equal_bin_shares(baseline: dict) -> None:
    rng = np.random.default_rng(1)
    x = _columns(rng, 5000)["x"]
    doc = baseline["features"]["x"]
    assert doc["type"] == "numeric"
    np.testing.assert_allclose(doc["edges"], np.quantile(x, np.linspace(0, 1, 11)[1:-1]))
    assert len(doc["counts"]) == 10
    assert sum(doc["counts"]) == doc["count"] == 5000
    assert all(490 <= c <= 510 for c in doc["counts"])
    assert doc["missing_rate"] == 0.0
    assert doc["out_of_range_rate"] == 0.0
    assert doc["mean"] == pytest.approx(float(np.mean(x)))


def test_missing_values_are_counted_outside_the_bins(baseline: dict) -> None:
    doc = baseline["features"]["maybe"]
    assert doc["missing"] + doc["count"] == baseline["rows"] == 5000
    assert doc["missing_rate"] == pytest.approx(0.1, abs=0.015)
    # no min/max in the schema: there is no range to be out of
    assert doc["out_of_range_rate"] is None


def test_categorical_feature_keeps_declared_and_observed_categories(baseline: dict) -> None:
    doc = baseline["features"]["colour"]
    categories = doc["categories"]
    # schema order first (blue never occurred but is a known bin), then other observed values sorted
    assert list(categories) == ["red", "green", "blue", "purple"]
    assert categories["blue"] == 0
    assert categories["purple"] > 0
    assert doc["missing"] == 5
    assert sum(categories.values()) == doc["count"] == 5000 - 5


def test_prediction_and_confidence_distributions(baseline: dict) -> None:
    prediction, confidence = baseline["prediction"], baseline["confidence"]
    assert prediction["count"] == confidence["count"] == 5000
    assert 0.0 <= prediction["min"] <= prediction["max"] <= 1.0
    assert confidence["min"] >= 0.5
    assert all(0.5 <= e <= 1.0 for e in confidence["edges"])


def test_baseline_round_trips_through_json_and_validates(baseline: dict, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline, allow_nan=False), encoding="utf-8")
    loaded = load_baseline(path)
    assert loaded == baseline
    assert loaded["format"] == BASELINE_FORMAT
    assert load_baseline(baseline) == baseline


def test_a_few_extreme_training_outliers_barely_move_the_edges() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 1.0, 2000)
    with_outliers = x.copy()
    with_outliers[:5] = 1e12
    schema = DataSchema.from_dict({"name": "o", "label": {"name": "y"},
                                   "features": [{"name": "x", "type": "numeric"}]})
    clean = build_baseline({"x": x}, schema)["features"]["x"]["edges"]
    dirty = build_baseline({"x": with_outliers}, schema)["features"]["x"]["edges"]
    np.testing.assert_allclose(clean, dirty, atol=0.05)


def test_bins_are_open_ended_and_right_closed() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    counts = bin_counts(edges, np.array([-1e300, 0.0, 0.5, 1.0, 2.0, 2.5, np.inf]))
    assert counts.tolist() == [2, 2, 1, 2]


@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=30, unique=True),
       st.lists(st.floats(allow_nan=False, width=16), max_size=60))
@settings(max_examples=60, deadline=None)
def test_counting_below_each_edge_bins_as_the_binary_search_does(edges: list[float], values: list[float]) -> None:
    """Up to COUNTING_EDGES edges, counts come from "at most this edge" comparisons; beyond, from searchsorted."""
    sorted_edges = np.asarray(sorted(edges), dtype=np.float64)
    array = np.asarray([*values, -0.0, 0.0, np.inf, -np.inf, *sorted_edges[:3]], dtype=np.float64)
    expected = np.bincount(np.searchsorted(sorted_edges, array, side="left"), minlength=sorted_edges.size + 1)
    assert bin_counts(sorted_edges, array).tolist() == expected.tolist()


def test_constant_feature_gets_bins_below_at_and_above_the_constant() -> None:
    schema = DataSchema.from_dict({"name": "c", "label": {"name": "y"},
                                   "features": [{"name": "k", "type": "numeric"}]})
    doc = build_baseline({"k": np.full(100, 3.0)}, schema)["features"]["k"]
    assert len(doc["edges"]) == 2
    assert doc["edges"][1] == 3.0
    assert doc["counts"] == [0, 100, 0]


def test_zero_inflated_feature_keeps_zeros_apart_from_positive_values() -> None:
    schema = DataSchema.from_dict({"name": "z", "label": {"name": "y"},
                                   "features": [{"name": "z", "type": "numeric"}]})
    values = np.concatenate([np.zeros(700), np.linspace(1, 10, 300)])
    doc = build_baseline({"z": values}, schema)["features"]["z"]
    assert doc["edges"][0] == 0.0
    assert doc["counts"][0] == 700


def test_as_float_array_treats_blank_none_and_nan_strings_as_missing() -> None:
    converted = as_float_array(["1.5", "", None, "nan", " 2 "], name="f")
    assert converted[0] == 1.5
    assert converted[4] == 2.0
    assert np.isnan(converted[1:4]).all()
    with pytest.raises(ValueError, match=r"feature 'f'.*'abc'"):
        as_float_array(["1", "abc"], name="f")


@pytest.mark.parametrize(("columns", "kwargs", "message"), [
    ({"x": [1.0]}, {}, "missing features.*maybe"),
    ({"x": [1.0, 2.0], "maybe": [1.0], "colour": ["red"]}, {}, "different lengths"),
    ({"x": [], "maybe": [], "colour": []}, {}, "zero rows"),
    ({"x": [1.0], "maybe": [1.0], "colour": ["red"]}, {"bins": 1}, "bins is 1"),
    ({"x": [1.0], "maybe": [1.0], "colour": ["red"]}, {"probabilities": [0.1, 0.2]}, "2 values for 1 rows"),
    ({"x": [1.0], "maybe": [1.0], "colour": ["red"]}, {"probabilities": [1.5]}, r"in \[0, 1\]"),
])
def test_build_baseline_rejects_bad_input(columns: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(BaselineError, match=message):
        build_baseline(columns, SCHEMA, **kwargs)


def _broken(baseline: dict, change: str) -> dict:
    doc = json.loads(json.dumps(baseline))
    if change == "format":
        doc["format"] = "something/2"
    elif change == "edges":
        doc["features"]["x"]["edges"][3] = doc["features"]["x"]["edges"][2]
    elif change == "counts":
        doc["features"]["x"]["counts"].pop()
    elif change == "feature":
        del doc["features"]["maybe"]
    elif change == "type":
        doc["features"]["colour"]["type"] = "numeric"
    elif change == "schema":
        doc["schema"]["features"] = []
    elif change == "rows":
        doc["rows"] = -1
    elif change == "prediction":
        doc["prediction"]["count"] += 1
    return doc


@pytest.mark.parametrize(("change", "message"), [
    ("format", "baseline.format"),
    ("edges", r"features\['x'\].edges must be strictly increasing"),
    ("counts", r"features\['x'\].counts must be 10"),
    ("feature", r"missing \['maybe'\]"),
    ("type", r"features\['colour'\].type"),
    ("schema", "baseline.schema"),
    ("rows", "baseline.rows"),
    ("prediction", "baseline.prediction.count"),
])
def test_load_baseline_names_what_is_wrong(baseline: dict, change: str, message: str) -> None:
    with pytest.raises(BaselineError, match=message):
        load_baseline(_broken(baseline, change))


def test_load_baseline_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(BaselineError, match="not valid JSON"):
        load_baseline(bad)
