"""The bundled data set and schema of each kind of model (issue 25): the shipped files equal scikit-learn's copies,
each schema's label form gives its kind, and malformed labels fail with a message naming what is allowed."""

from __future__ import annotations

import pandas as pd
import pytest

from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION
from mlsettings.schema import DataSchema, SchemaError
from pipelines.datasets import (
    BUNDLED_FILES,
    DATA_DIR,
    REPO_SCHEMAS,
    read_raw_csv,
    scikit_learn_frames,
    write_bundled_csv,
)

KINDS = {"breast_cancer": BINARY, "wine": MULTICLASS, "diabetes": REGRESSION}


@pytest.mark.parametrize("name", sorted(BUNDLED_FILES))
def test_shipped_file_equals_scikit_learns_copy(name: str) -> None:
    shipped = pd.read_csv(DATA_DIR / BUNDLED_FILES[name])
    pd.testing.assert_frame_equal(shipped, scikit_learn_frames()[name], check_dtype=False)


@pytest.mark.parametrize("name", sorted(BUNDLED_FILES))
def test_schema_matches_its_data_and_kind(name: str, tmp_path) -> None:
    schema = DataSchema.load(REPO_SCHEMAS / f"{name}.json")
    assert schema.name == name
    assert schema.problem_type == KINDS[name]
    frame = read_raw_csv(write_bundled_csv(name, tmp_path / "data.csv"))
    assert list(frame.columns) == [*schema.feature_names, schema.label.name]
    for feature in schema.features:
        values = frame[feature.name].astype(float)
        assert feature.min is not None and feature.max is not None
        assert feature.min <= values.min() and values.max() <= feature.max, feature.name
    assert DataSchema.from_dict(schema.to_dict()) == schema


def _schema(label: object) -> dict[str, object]:
    return {"name": "s", "label": label, "features": [{"name": "x", "type": "numeric"}]}


def test_label_forms_give_the_kind() -> None:
    assert DataSchema.from_dict(_schema({"name": "y"})).problem_type == BINARY
    multiclass = DataSchema.from_dict(_schema({"name": "y", "classes": ["a", "b", "c"]}))
    assert (multiclass.problem_type, multiclass.label.classes) == (MULTICLASS, ("a", "b", "c"))
    regression = DataSchema.from_dict(_schema({"name": "y", "min": 0, "max": 10}))
    assert (regression.problem_type, regression.label.min, regression.label.max) == (REGRESSION, 0.0, 10.0)


@pytest.mark.parametrize(("label", "message"), [
    ({"name": "y", "classes": ["a", "b", "c"], "positive": "a"}, "mixes the keys"),
    ({"name": "y", "classes": ["a", "b"]}, "at least 3 classes"),
    ({"name": "y", "classes": ["a", "b", "a"]}, "duplicates"),
    ({"name": "y", "classes": ["a", "", "c"]}, "non-empty string"),
    ({"name": "y", "min": 0}, "needs both"),
    ({"name": "y", "min": 5, "max": 5}, "min < max"),
    ({"name": "y", "positive": "a", "negative": "a"}, "both 'a'"),
    ({"name": "y", "mean": 3}, "unknown keys"),
])
def test_malformed_labels_are_named(label: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        DataSchema.from_dict(_schema(label))


def test_a_regression_split_stratifies_by_quantile_with_at_least_three_rows_per_stratum() -> None:
    import numpy as np

    from pipelines.steps.preprocess import split_strata, stratified_split

    values = np.arange(100.0)
    assert np.bincount(split_strata(values, REGRESSION)).tolist() == [20] * 5
    tied = np.array([1.0] * 20 + [2.0, 3.0, 4.0, 5.0])  # ties: no quantile bin but the last holds a row
    strata = split_strata(tied, REGRESSION)
    counts = np.bincount(strata)
    assert counts[counts > 0].min() >= 3
    split = stratified_split(strata, validation_fraction=0.15, test_fraction=0.15, seed=1)
    assert sum(len(rows) for rows in split.values()) == tied.size


def _frame(name: str) -> tuple[DataSchema, pd.DataFrame]:
    import tempfile
    from pathlib import Path

    schema = DataSchema.load(REPO_SCHEMAS / f"{name}.json")
    with tempfile.TemporaryDirectory() as folder:
        frame = read_raw_csv(write_bundled_csv(name, Path(folder) / "data.csv"))
    return schema, frame


def _codes(report: dict[str, object]) -> list[str]:
    return [v["problem"] for v in report["violations"]]  # type: ignore[attr-defined, index]


@pytest.mark.parametrize("name", ["wine", "diabetes"])
def test_the_validate_step_passes_each_kinds_bundled_data(name: str) -> None:
    from pipelines.steps.validate import validate_frame

    schema, frame = _frame(name)
    report = validate_frame(frame, schema)
    assert report["passed"] is True, report["violations"]


def test_the_validate_step_refuses_each_kinds_bad_labels() -> None:
    from pipelines.steps.validate import validate_frame

    schema, frame = _frame("wine")
    few = frame[(frame["target"] != "2") | (frame.index % 10 == 0)].reset_index(drop=True)  # 5 rows of class 2
    report = validate_frame(few, schema)
    assert "too_few_rows" in _codes(report)
    assert report["label"]["classes"]["2"] == 5
    unknown = frame.copy()
    unknown.loc[0, "target"] = "7"
    assert "label_invalid_value" in _codes(validate_frame(unknown, schema))

    schema, frame = _frame("diabetes")
    constant = frame.copy()
    constant["target"] = "100.0"
    assert "label_constant" in _codes(validate_frame(constant, schema))
    outside = frame.copy()
    outside.loc[3, "target"] = "999"
    assert "label_invalid_value" in _codes(validate_frame(outside, schema))
    assert "too_few_rows" in _codes(validate_frame(frame.head(20), schema))
