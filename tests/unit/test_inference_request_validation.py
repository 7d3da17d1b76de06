"""Request validation: every bad request is refused with a message naming the problem."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from mlplatform.inference.request_validation import (
    RequestRejected,
    ValidationLimits,
    parse_request,
    rows_to_csv,
)
from mlsettings.schema import DataSchema

SCHEMA = DataSchema.load(Path(__file__).resolve().parents[2] / "pipelines" / "schemas" / "breast_cancer.json")
LIMITS = ValidationLimits(max_rows=3, max_body_bytes=4096)
MIXED = DataSchema.from_dict({
    "name": "mixed", "label": {"name": "y"},
    "features": [{"name": "age", "type": "numeric", "min": 0, "max": 120},
                 {"name": "plan", "type": "categorical", "categories": ["basic", "pro"]},
                 {"name": "score", "type": "numeric", "nullable": True}],
})


def event(body: Any, *, raw: bool = False) -> dict[str, Any]:
    return {"body": body if raw else json.dumps(body), "isBase64Encoded": False}


def good_row() -> list[float]:
    return [1.0 + i for i in range(len(SCHEMA.features))]


def rejected(body: Any, *, schema: DataSchema = SCHEMA, limits: ValidationLimits = LIMITS,
             raw: bool = False) -> str:
    with pytest.raises(RequestRejected) as caught:
        parse_request(event(body, raw=raw), schema=schema, limits=limits)
    return str(caught.value)


def test_list_and_object_rows_are_normalised_to_the_same_floats_in_schema_order() -> None:
    as_list = good_row()
    as_object = dict(reversed(list(zip(SCHEMA.feature_names, [int(v) for v in as_list], strict=True))))
    request = parse_request(event({"instances": [as_list, as_object], "inference_id": "abc-1"}),
                            schema=SCHEMA, limits=LIMITS)
    assert request.rows[0] == request.rows[1] == tuple(as_list)
    assert all(isinstance(v, float) for v in request.rows[1])
    assert request.inference_id == "abc-1"


def test_base64_encoded_bodies_are_decoded() -> None:
    body = base64.b64encode(json.dumps({"instances": [good_row()]}).encode()).decode()
    request = parse_request({"body": body, "isBase64Encoded": True}, schema=SCHEMA, limits=LIMITS)
    assert request.rows == (tuple(good_row()),)


@pytest.mark.parametrize(("body", "expected"), [
    ({"instances": [[1.0, 2.0]]}, "instances[0] has 2 values; the schema has 30 features"),
    ({"instances": [[*good_row()[:-1], "x"]]}, "feature 'worst fractal dimension' must be a number, got string"),
    ({"instances": [[*good_row()[:-1], True]]}, "must be a number, got boolean"),
    ({"instances": [[*good_row()[:-1], None]]}, "is null but the schema does not allow nulls"),
    ({"instances": [{"mean radius": 1.0}]}, "instances[0] is missing features ['mean texture'"),
    ({"instances": [{**dict(zip(SCHEMA.feature_names, good_row(), strict=True)), "colour": 1}]},
     "unknown features ['colour']"),
    ({"rows": [good_row()]}, "unknown request fields ['rows']"),
    ({}, "missing field 'instances'"),
    ({"instances": []}, "'instances' must be a non-empty list"),
    ({"instances": [good_row()] * 4}, "'instances' has 4 rows; at most 3 are allowed"),
    ({"instances": ["1,2,3"]}, "instances[0] must be a list of values in schema order or an object"),
    ({"instances": [good_row()], "inference_id": " leading-space"}, "'inference_id' must be a string"),
    ({"instances": [good_row()], "inference_id": "x" * 65}, "'inference_id' must be a string"),
    ([good_row()], "request body must be a JSON object, got array"),
])
def test_bad_requests_name_the_problem(body: Any, expected: str) -> None:
    assert expected in rejected(body)


@pytest.mark.parametrize(("raw", "expected"), [
    ("", "request body is empty"),
    ("{not json", "request body is not valid JSON"),
    ('{"instances": [[NaN]]}', "contains NaN, which is not valid JSON"),
    ('{"instances": [[Infinity]]}', "contains Infinity"),
])
def test_unparseable_bodies_are_refused(raw: str, expected: str) -> None:
    assert expected in rejected(raw, raw=True)


def test_numbers_too_large_for_a_float_are_refused_as_not_finite() -> None:
    row = ", ".join(["1"] * 29 + ["1e400"])
    assert "is not a finite number" in rejected(f'{{"instances": [[{row}]]}}', raw=True)


def test_oversized_bodies_are_refused_before_parsing() -> None:
    small = ValidationLimits(max_rows=1000, max_body_bytes=1024)
    message = rejected({"instances": [good_row()] * 20}, limits=small)
    assert "larger than the limit of 1024 bytes" in message


def test_out_of_range_values_are_served_so_monitoring_sees_the_drift() -> None:
    row = good_row()
    row[0] = 10_000.0  # the schema's max for 'mean radius' is 60
    assert parse_request(event({"instances": [row]}), schema=SCHEMA, limits=LIMITS).rows[0][0] == 10_000.0


def test_categorical_nullable_and_unknown_category_rules() -> None:
    ok = parse_request(event({"instances": [[30, "pro", None]]}), schema=MIXED, limits=LIMITS)
    assert ok.rows == ((30.0, "pro", None),)
    assert parse_request(event({"instances": [[30, "gold", 1]]}), schema=MIXED, limits=LIMITS).rows[0][1] == "gold"
    strict = ValidationLimits(max_rows=3, max_body_bytes=4096, allow_unknown_categories=False)
    assert "unknown category 'gold'; allowed: ['basic', 'pro']" in rejected(
        {"instances": [[30, "gold", 1]]}, schema=MIXED, limits=strict)
    assert "must be a string, got number" in rejected({"instances": [[30, 1, 1]]}, schema=MIXED)
    assert "contains a comma, quote or line break" in rejected({"instances": [[30, "a,b", 1]]}, schema=MIXED)


def test_csv_is_canonical_and_round_trips_floats() -> None:
    assert rows_to_csv([(1.0, "pro", None), (0.1 + 0.2, "basic", 3.0)]) == (
        "1.0,pro,\n0.30000000000000004,basic,3.0")
