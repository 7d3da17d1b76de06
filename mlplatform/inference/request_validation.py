"""Turns an API Gateway (HTTP API, payload 2.0) event into validated feature rows, or a 400 message.

Everything a caller can get wrong is caught here, before the endpoint is called: a request that fails
validation costs no endpoint capacity, does not count against the circuit breaker and is never served a
fallback answer (a fallback for nonsense input would hide the caller's bug behind a plausible number).

The rows are normalised into one canonical form (numbers as floats, schema order) so that the CSV sent
to the endpoint, the response-cache key and the capture record all describe the same input.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlsettings.schema import DataSchema, FeatureSpec

FeatureValue = float | str | None
Row = tuple[FeatureValue, ...]

# SageMaker's InvokeEndpoint accepts an InferenceId of at most 64 printable characters that does not
# start with whitespace; checking it here keeps a bad id a 400 instead of an endpoint ValidationError.
_INFERENCE_ID = re.compile(r"\A\S[\x20-\x7e]{0,63}\Z")
# The endpoint parses CSV without quoting rules, so a category containing a separator, a quote or a
# line break would shift every later column; such values are refused rather than escaped.
_CSV_UNSAFE = re.compile(r"[,\"\r\n]")
_REQUEST_KEYS = frozenset({"instances", "inference_id"})


class RequestRejected(ValueError):
    """The request cannot be served; the message names what is wrong and is returned to the caller."""


@dataclass(frozen=True, kw_only=True)
class ValidationLimits:
    max_rows: int
    max_body_bytes: int
    allow_unknown_categories: bool = True


@dataclass(frozen=True, kw_only=True)
class InferenceRequest:
    rows: tuple[Row, ...]
    inference_id: str | None


def parse_request(event: Mapping[str, Any], *, schema: DataSchema,
                  limits: ValidationLimits) -> InferenceRequest:
    """Validate one API Gateway event; raise RequestRejected with a caller-facing message."""
    body = _body_bytes(event, limits.max_body_bytes)
    try:
        doc = json.loads(body, parse_constant=_reject_constant)
    except RequestRejected:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestRejected(f"request body is not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise RequestRejected(f"request body must be a JSON object, got {_json_type(doc)}")
    unknown = sorted(set(doc) - _REQUEST_KEYS)
    if unknown:
        raise RequestRejected(f"unknown request fields {unknown}; allowed: {sorted(_REQUEST_KEYS)}")
    inference_id = _inference_id(doc.get("inference_id"))
    if "instances" not in doc:
        raise RequestRejected("missing field 'instances': a list of rows (lists in schema order or objects)")
    instances = doc["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestRejected("'instances' must be a non-empty list of rows")
    if len(instances) > limits.max_rows:
        raise RequestRejected(f"'instances' has {len(instances)} rows; at most {limits.max_rows} are allowed")
    rows = tuple(_parse_row(i, raw, schema, limits) for i, raw in enumerate(instances))
    return InferenceRequest(rows=rows, inference_id=inference_id)


def rows_to_csv(rows: Sequence[Row]) -> str:
    """The canonical text/csv payload: one line per row, floats in shortest round-trip form, empty = null."""
    return "\n".join(",".join(_csv_cell(v) for v in row) for row in rows)


def _csv_cell(value: FeatureValue) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def _body_bytes(event: Mapping[str, Any], max_body_bytes: int) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        raise RequestRejected("request body is empty; expected a JSON object with 'instances'")
    if not isinstance(body, str):
        raise RequestRejected("request body must be text")
    # API Gateway base64-encodes bodies it considers binary; the encoded form is 4/3 the size, so the
    # cheap length check on it comes first and the exact one after decoding.
    if len(body) > max_body_bytes * 4 // 3 + 4:
        raise RequestRejected(f"request body is larger than the limit of {max_body_bytes} bytes")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestRejected("request body is marked base64-encoded but is not valid base64") from None
    else:
        raw = body.encode("utf-8")
    if len(raw) > max_body_bytes:
        raise RequestRejected(
            f"request body is {len(raw)} bytes, larger than the limit of {max_body_bytes} bytes")
    return raw


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity by default; they are not JSON and not valid feature values.
    raise RequestRejected(f"request body contains {name}, which is not valid JSON; send finite numbers")


def _inference_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _INFERENCE_ID.match(value):
        raise RequestRejected(
            "'inference_id' must be a string of 1 to 64 printable ASCII characters not starting with a space")
    return value


def _parse_row(position: int, raw: Any, schema: DataSchema, limits: ValidationLimits) -> Row:
    features = schema.features
    where = f"instances[{position}]"
    if isinstance(raw, list):
        if len(raw) != len(features):
            raise RequestRejected(
                f"{where} has {len(raw)} values; the schema has {len(features)} features "
                f"({', '.join(schema.feature_names)})")
        values: Sequence[Any] = raw
    elif isinstance(raw, dict):
        missing = [f.name for f in features if f.name not in raw]
        if missing:
            raise RequestRejected(f"{where} is missing features {missing}")
        unknown = sorted(set(raw) - set(schema.feature_names))
        if unknown:
            raise RequestRejected(f"{where} has unknown features {unknown}")
        values = [raw[f.name] for f in features]
    else:
        raise RequestRejected(
            f"{where} must be a list of values in schema order or an object keyed by feature name, "
            f"got {_json_type(raw)}")
    return tuple(_parse_value(where, spec, value, limits)
                 for spec, value in zip(features, values, strict=True))


def _parse_value(where: str, spec: FeatureSpec, value: Any, limits: ValidationLimits) -> FeatureValue:
    if value is None:
        if spec.nullable:
            return None
        raise RequestRejected(f"{where}: feature {spec.name!r} is null but the schema does not allow nulls")
    if spec.is_numeric:
        # bool is an int subclass in Python, but `true` is not a measurement.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RequestRejected(
                f"{where}: feature {spec.name!r} must be a number, got {_json_type(value)} {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise RequestRejected(f"{where}: feature {spec.name!r} is not a finite number ({value!r})")
        # Out-of-range values are served, not refused: they are exactly the drift that monitoring must
        # see in the prediction log, and refusing them would hide it.
        return number
    if not isinstance(value, str):
        raise RequestRejected(
            f"{where}: feature {spec.name!r} is categorical and must be a string, got {_json_type(value)}")
    if _CSV_UNSAFE.search(value):
        raise RequestRejected(
            f"{where}: feature {spec.name!r} contains a comma, quote or line break, which CSV cannot carry")
    if not limits.allow_unknown_categories and value not in spec.categories:
        raise RequestRejected(
            f"{where}: feature {spec.name!r} has unknown category {value!r}; "
            f"allowed: {list(spec.categories)}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
