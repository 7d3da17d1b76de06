"""Cache keys: the same input written differently shares a key; anything that changes the answer does not."""

from __future__ import annotations

import json
from pathlib import Path

from mlplatform.inference.request_validation import ValidationLimits, parse_request, rows_to_csv
from mlplatform.inference.response_cache import cache_key
from mlsettings.schema import DataSchema

SCHEMA = DataSchema.load(Path(__file__).resolve().parents[2] / "pipelines" / "schemas" / "breast_cancer.json")
LIMITS = ValidationLimits(max_rows=5, max_body_bytes=65536)
ROW = [float(i) + 0.5 for i in range(30)]


def key_of(body: str) -> str:
    request = parse_request({"body": body}, schema=SCHEMA, limits=LIMITS)
    return cache_key(SCHEMA, rows_to_csv(request.rows))


def test_formatting_field_order_ints_and_the_inference_id_do_not_change_the_key() -> None:
    as_list = json.dumps({"instances": [ROW]})
    as_object = json.dumps({"instances": [dict(reversed(list(zip(SCHEMA.feature_names, ROW, strict=True))))]},
                           indent=2)
    with_id = json.dumps({"inference_id": "abc", "instances": [ROW]})
    assert key_of(as_list) == key_of(as_object) == key_of(with_id)
    ints = [float(i) for i in range(30)]
    assert key_of(json.dumps({"instances": [ints]})) == key_of(json.dumps({"instances": [[int(v) for v in ints]]}))


def test_values_row_order_row_count_and_schema_version_change_the_key() -> None:
    other = [*ROW[:-1], ROW[-1] + 1e-9]
    keys = {
        key_of(json.dumps({"instances": [ROW]})),
        key_of(json.dumps({"instances": [other]})),
        key_of(json.dumps({"instances": [ROW, other]})),
        key_of(json.dumps({"instances": [other, ROW]})),
        key_of(json.dumps({"instances": [ROW, ROW]})),
    }
    assert len(keys) == 5
    v2 = DataSchema.from_dict({**SCHEMA.to_dict(), "version": 2})
    csv_payload = rows_to_csv([tuple(ROW)])
    assert cache_key(SCHEMA, csv_payload) != cache_key(v2, csv_payload)
    assert len(cache_key(SCHEMA, csv_payload)) == 64
