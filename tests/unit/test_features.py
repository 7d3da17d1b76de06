"""The shared feature transform: parsing, one-hot encoding, errors that name the feature."""

from __future__ import annotations

import math

import pytest

from mlcore.features import FeatureError, FeatureTransformer, encode_label, parse_number
from mlsettings.schema import DataSchema, LabelSpec


@pytest.fixture
def schema() -> DataSchema:
    return DataSchema.from_dict({
        "name": "mixed",
        "label": {"name": "churned", "positive": "yes", "negative": "no"},
        "features": [
            {"name": "age", "type": "numeric", "min": 0, "max": 120},
            {"name": "plan", "type": "categorical", "categories": ["basic", "plus", "premium"]},
            {"name": "income", "type": "numeric", "nullable": True},
        ],
    })


def test_output_names_expand_categoricals_in_schema_order(schema: DataSchema) -> None:
    transformer = FeatureTransformer.from_schema(schema)
    assert transformer.output_names == ("age", "plan=basic", "plan=plus", "plan=premium", "income")


def test_sequence_and_mapping_rows_give_the_same_features(schema: DataSchema) -> None:
    transformer = FeatureTransformer.from_schema(schema)
    by_position = transformer.transform_row(["42", "plus", "1000.5"])
    by_name = transformer.transform_row({"income": 1000.5, "plan": "plus", "age": 42, "extra": "ignored"})
    assert by_position == by_name == [42.0, 0.0, 1.0, 0.0, 1000.5]


@pytest.mark.parametrize("missing", [None, "", "  ", "NA", "nan", float("nan"), "null"])
def test_missing_numeric_is_nan_and_missing_category_is_all_zeros(schema: DataSchema, missing: object) -> None:
    features = FeatureTransformer.from_schema(schema).transform_row([missing, missing, missing])
    assert math.isnan(features[0]) and math.isnan(features[4])
    assert features[1:4] == [0.0, 0.0, 0.0]


def test_absent_mapping_keys_are_missing_values(schema: DataSchema) -> None:
    features = FeatureTransformer.from_schema(schema).transform_row({"plan": "basic"})
    assert math.isnan(features[0]) and features[1:4] == [1.0, 0.0, 0.0]


def test_unknown_category_encodes_as_all_zeros(schema: DataSchema) -> None:
    assert FeatureTransformer.from_schema(schema).transform_row([1, "gold", 2])[1:4] == [0.0, 0.0, 0.0]


def test_non_numeric_text_raises_naming_the_feature(schema: DataSchema) -> None:
    with pytest.raises(FeatureError, match=r"'income'.*'lots'"):
        FeatureTransformer.from_schema(schema).transform_row([1, "basic", "lots"])


def test_transform_rows_names_the_bad_row(schema: DataSchema) -> None:
    with pytest.raises(FeatureError, match=r"row 1: feature 'age'"):
        FeatureTransformer.from_schema(schema).transform_rows([[1, "basic", 2], ["old", "basic", 2]])


def test_a_row_with_the_wrong_number_of_values_is_rejected(schema: DataSchema) -> None:
    with pytest.raises(FeatureError, match="has 2 values"):
        FeatureTransformer.from_schema(schema).transform_row([1, "basic"])


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(FeatureError, match="'flag'"):
        parse_number(True, feature="flag")


def test_labels_accept_numeric_spellings() -> None:
    numeric = LabelSpec(name="target", positive=1, negative=0)
    assert [encode_label(v, numeric) for v in ("1", "0", "1.0", 1, 0.0)] == [1, 0, 1, 1, 0]
    text = LabelSpec(name="churned", positive="yes", negative="no")
    assert [encode_label(v, text) for v in ("yes", " no ")] == [1, 0]
    with pytest.raises(FeatureError, match=r"'churned'.*'maybe'"):
        encode_label("maybe", text)
