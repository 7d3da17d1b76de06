"""Prediction-log records in the SageMaker data-capture format: parse them (drift Lambda) and build them
(the inference Lambda's own prediction log, e.g. for fallback responses).

One JSON object per line::

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "1.0,2.0\\n3.0,4.0", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "0.91\\n0.12", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2025-01-01T00:00:00Z",
                       "customAttributes": {"source": "fallback_model", "model_version": "7"}},
     "eventVersion": "0"}

``encoding`` is CSV, JSON or BASE64 (SageMaker uses BASE64 for content types not listed in
CaptureContentTypeHeader; the decoded bytes are then read by ``observedContentType``).

Accepted request bodies (one request may carry several rows):

* CSV: one row per line, fields in schema order; an empty field (or ``nan``) is a missing value.
* JSON: ``{"instances": [...]}`` or a bare list, whose items are rows as lists, ``{"features": [...]}``
  objects (the SageMaker JSON format), or objects keyed by feature name (needs ``feature_names``);
  a bare list of scalars is one row. ``null`` is a missing value.

Accepted response bodies of a binary model: CSV probabilities (one per row, separated by newlines or commas) or
JSON (a number, a list of numbers, ``{"predictions": [...]}`` / ``{"probabilities": [...]}`` whose items are
numbers or ``{"score": p}`` / ``{"probability": p}`` objects). A multiclass or regression model's responses (given
its ``label``) are read in its kind's shape (``mlcore.outputs``: one CSV line or one JSON ``predictions`` item per
row, each answer valid for the label) into ``CaptureRecord.answers``; their ``probabilities`` stay empty.

``eventMetadata.customAttributes`` is our addition (string -> string): SageMaker's own capture records do
not have it and are read as ``source="endpoint"``. Keys used by the inference Lambda: ``source``
(``endpoint``, ``fallback_model``, ``cache``, ``default``), ``model_version``, ``variant``,
``degraded`` (``"true"``/``"false"``), ``fallback_reason``.

STANDARD LIBRARY ONLY: the light inference Lambda imports this module.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import numbers
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlcore.outputs import OutputCodec, OutputError, output_for
from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION
from mlsettings.schema import LabelSpec

ENDPOINT_SOURCE = "endpoint"
_ENCODINGS = frozenset({"CSV", "JSON", "BASE64"})
_MISSING_FIELDS = frozenset({"", "nan", "NaN", "NAN"})
_PROBABILITY_KEYS = ("score", "probability")


class CaptureFormatError(ValueError):
    """A capture line that cannot be used.

    ``reason`` is a short, stable category (e.g. ``wrong_column_count``) for counting malformed records
    in metrics and reports; the message has the details (row, column) for logs.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class CaptureRecord:
    event_id: str
    inference_id: str | None
    inference_time: str
    rows: list[list[str]]
    """Raw field strings per request row, in schema order; "" for a missing value."""
    probabilities: list[float]
    """Positive-class probability per row (a binary model); empty when the output was not captured or the model is
    of another kind."""
    answers: list[Any] = field(default_factory=list)
    """Each row's answer in its kind's shape (mlcore.outputs); for a binary model the probabilities again."""
    source: str = ENDPOINT_SOURCE
    model_version: str | None = None
    custom: Mapping[str, str] = field(default_factory=dict)

    @property
    def degraded(self) -> bool:
        return self.custom.get("degraded", "false").lower() == "true"


# --------------------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------------------


def parse_capture_line(line: str | bytes, *, n_features: int, categorical_columns: Collection[int] = (),
                       feature_names: Sequence[str] | None = None, label: LabelSpec | None = None) -> CaptureRecord:
    """Parse one JSONL capture line into rows of field strings and the answers (``label``: the model's label
    declaration, whose form is its kind; None reads a binary model's probabilities).

    Every column not in ``categorical_columns`` (0-based positions) must hold a number or a missing value.
    Raises ``CaptureFormatError`` (and nothing else) for anything malformed.
    """
    try:
        return _parse(line, n_features=n_features, categorical_columns=frozenset(categorical_columns),
                      feature_names=feature_names, label=label)
    except CaptureFormatError:
        raise
    except RecursionError:
        raise CaptureFormatError("JSON nested too deeply", reason="not_json") from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
        # A safety net: the helpers below check types explicitly, but a capture line must never crash a
        # batch, so any slip (e.g. json's ValueError for integers over 4300 digits) is a malformed line.
        raise CaptureFormatError(f"unreadable record ({type(err).__name__})", reason="bad_record") from err


def _parse(line: str | bytes, *, n_features: int, categorical_columns: frozenset[int],
           feature_names: Sequence[str] | None, label: LabelSpec | None = None) -> CaptureRecord:
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise CaptureFormatError("line is not UTF-8", reason="not_utf8") from None
    if not line.strip():
        raise CaptureFormatError("empty line", reason="empty_line")
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as err:
        raise CaptureFormatError(f"line is not JSON ({err.msg})", reason="not_json") from None
    if not isinstance(doc, dict):
        raise CaptureFormatError("record is not a JSON object", reason="bad_record")
    capture = doc.get("captureData")
    if not isinstance(capture, dict):
        raise CaptureFormatError("record has no captureData object", reason="bad_record")
    metadata = doc.get("eventMetadata")
    if not isinstance(metadata, dict):
        raise CaptureFormatError("record has no eventMetadata object", reason="bad_record")
    event_id, inference_time = metadata.get("eventId"), metadata.get("inferenceTime")
    if not isinstance(event_id, str) or not event_id:
        raise CaptureFormatError("eventMetadata.eventId is missing", reason="bad_record")
    if not isinstance(inference_time, str) or not inference_time:
        raise CaptureFormatError("eventMetadata.inferenceTime is missing", reason="bad_record")
    inference_id = metadata.get("inferenceId")
    if inference_id is not None and not isinstance(inference_id, str):
        raise CaptureFormatError("eventMetadata.inferenceId is not a string", reason="bad_record")
    custom = _custom_attributes(metadata.get("customAttributes"))

    if "endpointInput" not in capture:
        raise CaptureFormatError("captureData has no endpointInput", reason="bad_record")
    kind, body = _decode_payload(capture["endpointInput"], "endpointInput")
    rows = _csv_rows(body) if kind == "csv" else _json_rows(body, feature_names)
    if not rows:
        raise CaptureFormatError("request has no rows", reason="empty_request")
    for position, row in enumerate(rows):
        _check_row(position, row, n_features, categorical_columns)

    probabilities: list[float] = []
    answers: list[Any] = []
    if capture.get("endpointOutput") is not None:
        kind, body = _decode_payload(capture["endpointOutput"], "endpointOutput")
        reader = _ANSWER_READERS[label.problem_type if label is not None else BINARY]
        answers, probabilities = reader(kind, body, label)
        if len(answers) != len(rows):
            noun = "probabilities" if probabilities else "answers"
            raise CaptureFormatError(f"output has {len(answers)} {noun} for {len(rows)} rows",
                                     reason="output_row_mismatch")

    return CaptureRecord(event_id=event_id, inference_id=inference_id or None, inference_time=inference_time,
                         rows=rows, probabilities=probabilities, answers=answers,
                         source=custom.get("source", ENDPOINT_SOURCE),
                         model_version=custom.get("model_version"), custom=custom)


def _custom_attributes(value: Any) -> dict[str, str]:
    # SageMaker may record the caller's opaque CustomAttributes header as a string; only our own
    # object form carries metadata we understand.
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str | int | float | bool)}


def _decode_payload(payload: Any, where: str) -> tuple[str, str]:
    """(``"csv"`` | ``"json"``, text) of one captured payload."""
    if not isinstance(payload, dict):
        raise CaptureFormatError(f"{where} is not an object", reason="bad_payload")
    data, encoding = payload.get("data"), payload.get("encoding")
    content_type = payload.get("observedContentType", "")
    if not isinstance(data, str):
        raise CaptureFormatError(f"{where}.data is not a string", reason="bad_payload")
    if not isinstance(encoding, str) or encoding.upper() not in _ENCODINGS:
        raise CaptureFormatError(f"{where}.encoding is {encoding!r}; expected CSV, JSON or BASE64",
                                 reason="bad_payload")
    if not isinstance(content_type, str):
        raise CaptureFormatError(f"{where}.observedContentType is not a string", reason="bad_payload")
    encoding = encoding.upper()
    if encoding == "CSV":
        return "csv", data
    if encoding == "JSON":
        return "json", data
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise CaptureFormatError(f"{where}.data is not valid base64 of UTF-8 text",
                                 reason="bad_base64") from None
    media = content_type.split(";", 1)[0].strip().lower()
    if media.endswith(("/csv", "+csv")):
        return "csv", text
    if media.endswith(("/json", "+json", "/jsonlines")):
        return "json", text
    raise CaptureFormatError(f"{where}: cannot read base64 content of type {content_type!r}",
                             reason="bad_base64")


def _csv_rows(text: str) -> list[list[str]]:
    if '"' not in text:
        # Fast path for unquoted CSV (what numeric models receive): str.split is several times faster
        # than the csv module plus a per-field strip, and the drift Lambda parses millions of rows.
        rows = []
        for line in text.splitlines():
            if not line.strip():
                continue  # blank line; a row of empty fields (",,") is kept
            fields = line.split(",")
            rows.append([f.strip() for f in fields] if (" " in line or "\t" in line) else fields)
        return rows
    try:
        return [[f.strip() for f in row] for row in csv.reader(io.StringIO(text, newline=""), strict=True)
                if len(row) > 1 or (row and row[0].strip())]  # skip blank lines, keep ",," rows
    except csv.Error as err:
        raise CaptureFormatError(f"request is not valid CSV ({err})", reason="bad_csv") from None


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CaptureFormatError(f"{where} is not valid JSON ({err.msg})", reason="bad_json") from None


def _json_rows(text: str, feature_names: Sequence[str] | None) -> list[list[str]]:
    body = _load_json(text, "request")
    if isinstance(body, dict):
        if "instances" not in body:
            raise CaptureFormatError("JSON request object has no 'instances' list", reason="bad_request")
        body = body["instances"]
    if not isinstance(body, list):
        raise CaptureFormatError("JSON request is not a list of rows", reason="bad_request")
    if body and all(_is_scalar(v) for v in body):
        body = [body]  # a bare list of scalars is one row
    rows: list[list[str]] = []
    for position, item in enumerate(body):
        values = _json_row_values(position, item, feature_names)
        row: list[str] = []
        for value in values:
            if not _is_scalar(value):
                raise CaptureFormatError(f"row {position} has a nested value", reason="bad_request")
            row.append(_field_text(value))
        rows.append(row)
    return rows


def _json_row_values(position: int, item: Any, feature_names: Sequence[str] | None) -> list[Any]:
    if isinstance(item, dict) and "features" in item:
        item = item["features"]
    if isinstance(item, dict):
        if feature_names is None:
            raise CaptureFormatError("JSON rows keyed by feature name need the schema's feature names",
                                     reason="bad_request")
        unknown = sorted(str(k) for k in set(item) - set(feature_names))
        if unknown:
            raise CaptureFormatError(f"row {position} has unknown features {unknown[:5]}",
                                     reason="bad_request")
        return [item.get(name) for name in feature_names]
    if not isinstance(item, list):
        raise CaptureFormatError(f"row {position} is not a list of values", reason="bad_request")
    return item


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # rejected later in numeric columns
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):  # float() first: numpy scalars repr as "np.float64(...)"
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    return str(value).strip()


def _check_row(position: int, row: list[str], n_features: int, categorical_columns: frozenset[int]) -> None:
    if len(row) != n_features:
        raise CaptureFormatError(f"row {position} has {len(row)} fields, expected {n_features}",
                                 reason="wrong_column_count")
    if not categorical_columns:
        # Fast path: a complete all-numeric row converts in one C-level pass.
        try:
            if all(map(math.isfinite, map(float, row))):
                return
        except ValueError:
            pass
    for column, value in enumerate(row):
        if column in categorical_columns or value in _MISSING_FIELDS:
            continue
        try:
            number = float(value)
        except ValueError:
            raise CaptureFormatError(f"row {position} column {column} is not a number",
                                     reason="non_numeric") from None
        if math.isinf(number):
            raise CaptureFormatError(f"row {position} column {column} is not a finite number",
                                     reason="non_numeric")
        if math.isnan(number):
            row[column] = ""  # spellings of NaN that float() accepts ("+nan", "NAN ") become missing


def _probability(value: Any) -> float:
    if isinstance(value, dict):
        for key in _PROBABILITY_KEYS:
            if key in value:
                return _probability(value[key])
        raise CaptureFormatError(f"output item has none of the keys {list(_PROBABILITY_KEYS)}",
                                 reason="bad_output")
    if isinstance(value, list) and len(value) == 1:
        return _probability(value[0])
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CaptureFormatError("output value is not a number", reason="non_numeric")
    try:
        number = float(value)
    except ValueError:
        raise CaptureFormatError("output value is not a number", reason="non_numeric") from None
    if not 0.0 <= number <= 1.0:  # also rejects NaN
        raise CaptureFormatError("output probability is outside [0, 1]", reason="bad_output")
    return number


def _csv_probabilities(text: str) -> list[float]:
    return [_probability(token.strip()) for line in text.splitlines() for token in line.split(",")
            if token.strip()]


def _json_probabilities(text: str) -> list[float]:
    body = _load_json(text, "output")
    if isinstance(body, dict):
        for key in ("predictions", "probabilities"):
            if key in body:
                body = body[key]
                break
        else:
            return [_probability(body)]
    if isinstance(body, list):
        return [_probability(item) for item in body]
    return [_probability(body)]


def _binary_answers(kind: str, body: str, label: LabelSpec | None) -> tuple[list[Any], list[float]]:
    probabilities = _csv_probabilities(body) if kind == "csv" else _json_probabilities(body)
    return list(probabilities), probabilities


def _shaped_answers(kind: str, body: str, label: LabelSpec | None) -> tuple[list[Any], list[float]]:
    """A multiclass or regression model's answers: each line (CSV) or ``predictions`` item (JSON) in its shape."""
    assert label is not None
    output = output_for(label)
    try:
        if kind == "csv":
            answers = [output.parse_csv_line(line, label) for line in body.splitlines() if line.strip()]
        else:
            document = _load_json(body, "output")
            items = document.get("predictions") if isinstance(document, dict) else document
            if not isinstance(items, list):
                raise CaptureFormatError("JSON output has no 'predictions' list", reason="bad_output")
            answers = [output.parse_json_item(item, label) for item in items]
    except OutputError as err:
        raise CaptureFormatError(f"output: {err}", reason="bad_output") from None
    for row, answer in enumerate(answers):
        problem = output.problem(answer, label)
        if problem is not None:
            raise CaptureFormatError(f"output row {row}: {problem}", reason="bad_output")
    return answers, []


_ANSWER_READERS = {BINARY: _binary_answers, MULTICLASS: _shaped_answers, REGRESSION: _shaped_answers}
"""How each kind of model's captured output is read (the binary reader is the lenient one SageMaker's and our own
formats have always been read with)."""


# --------------------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------------------


def build_capture_record(*, rows: Sequence[Sequence[Any]], probabilities: Sequence[Any],
                         inference_time: datetime, event_id: str, inference_id: str | None = None,
                         content_type: str = "text/csv",
                         custom: Mapping[str, str] | None = None, output: OutputCodec | None = None) -> dict[str, Any]:
    """One prediction-log record in the data-capture shape; ``json.dumps`` it as one JSONL line.

    ``content_type`` ``text/csv`` writes CSV input and output; ``application/json`` writes
    ``{"instances": rows}`` and ``{"predictions": [{"score": p}, ...]}``. ``None`` fields become missing.
    ``output``: the model's kind's output shape (mlcore.outputs), when ``probabilities`` holds a multiclass or
    regression model's answers: they are written as the endpoint writes them (a CSV line, a JSON item per row).
    """
    if output is not None and not output.probability_per_row:
        return _shaped_capture_record(rows=rows, answers=probabilities, inference_time=inference_time,
                                      event_id=event_id, inference_id=inference_id, content_type=content_type,
                                      custom=custom, output=output)
    if inference_time.tzinfo is None:
        raise ValueError("inference_time must be timezone-aware (UTC is written)")
    if len(probabilities) not in (0, len(rows)):
        raise ValueError(f"{len(probabilities)} probabilities for {len(rows)} rows")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "text/csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([[_field_text(v) for v in row] for row in rows])
        request, request_encoding = buffer.getvalue().rstrip("\n"), "CSV"
        response, response_encoding = "\n".join(repr(float(p)) for p in probabilities), "CSV"
    elif media == "application/json":
        request = json.dumps({"instances": [[_json_value(v) for v in row] for row in rows]},
                             allow_nan=False)
        response = json.dumps({"predictions": [{"score": float(p)} for p in probabilities]}, allow_nan=False)
        request_encoding = response_encoding = "JSON"
    else:
        raise ValueError(f"content_type is {content_type!r}; allowed: 'text/csv', 'application/json'")
    metadata: dict[str, Any] = {
        "eventId": event_id,
        "inferenceTime": inference_time.astimezone(UTC).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    if custom:
        metadata["customAttributes"] = {str(k): str(v) for k, v in custom.items()}
    capture: dict[str, Any] = {
        "endpointInput": {"observedContentType": media, "mode": "INPUT", "data": request,
                          "encoding": request_encoding},
    }
    if probabilities:
        capture["endpointOutput"] = {"observedContentType": media, "mode": "OUTPUT", "data": response,
                                     "encoding": response_encoding}
    return {"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"}


def _shaped_capture_record(*, rows: Sequence[Sequence[Any]], answers: Sequence[Any], inference_time: datetime,
                           event_id: str, inference_id: str | None, content_type: str,
                           custom: Mapping[str, str] | None, output: OutputCodec) -> dict[str, Any]:
    record = build_capture_record(rows=rows, probabilities=[], inference_time=inference_time, event_id=event_id,
                                  inference_id=inference_id, content_type=content_type, custom=custom)
    if len(answers) not in (0, len(rows)):
        raise ValueError(f"{len(answers)} answers for {len(rows)} rows")
    if answers:
        media = record["captureData"]["endpointInput"]["observedContentType"]
        if media == "text/csv":
            data, encoding = "\n".join(output.csv_line(a) for a in answers), "CSV"
        else:
            data, encoding = json.dumps({"predictions": list(answers)}, allow_nan=False), "JSON"
        record["captureData"]["endpointOutput"] = {"observedContentType": media, "mode": "OUTPUT", "data": data,
                                                   "encoding": encoding}
    return record


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return None if math.isnan(number) else number
    return str(value)
