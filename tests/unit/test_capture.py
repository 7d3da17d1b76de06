"""Data-capture records: all three encodings, multi-row requests, our own records, malformed lines, fuzz."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcore.drift.capture import CaptureFormatError, CaptureRecord, build_capture_record, parse_capture_line

FEATURES = ["age", "income", "plan"]


def sagemaker_line(*, input_data: str, input_encoding: str, input_type: str,
                   output_data: str | None = "0.9", output_encoding: str = "CSV",
                   output_type: str = "text/csv", inference_id: str | None = None) -> str:
    """A line shaped like SageMaker's own data capture (no customAttributes)."""
    capture: dict[str, Any] = {"endpointInput": {"observedContentType": input_type, "mode": "INPUT",
                                                 "data": input_data, "encoding": input_encoding}}
    if output_data is not None:
        capture["endpointOutput"] = {"observedContentType": output_type, "mode": "OUTPUT",
                                     "data": output_data, "encoding": output_encoding}
    metadata = {"eventId": "e-1", "inferenceTime": "2025-03-01T10:00:00Z"}
    if inference_id:
        metadata["inferenceId"] = inference_id
    return json.dumps({"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def parse(line: str | bytes, **kwargs: Any) -> CaptureRecord:
    kwargs.setdefault("n_features", 3)
    kwargs.setdefault("categorical_columns", {2})
    return parse_capture_line(line, **kwargs)


# ---------------------------------------------------------------- the three encodings


def test_csv_encoding_single_row() -> None:
    record = parse(sagemaker_line(input_data="42,1000.5,basic", input_encoding="CSV", input_type="text/csv",
                                  inference_id="req-7"))
    assert record.rows == [["42", "1000.5", "basic"]]
    assert record.probabilities == [0.9]
    assert record.event_id == "e-1"
    assert record.inference_id == "req-7"
    assert record.inference_time == "2025-03-01T10:00:00Z"
    assert record.source == "endpoint"
    assert record.model_version is None
    assert record.degraded is False


def test_csv_encoding_several_rows_with_missing_values_and_quotes() -> None:
    record = parse(sagemaker_line(input_data='42,1000.5,basic\n\n17,,"pro, annual"\n,nan,\n',
                                  input_encoding="CSV", input_type="text/csv",
                                  output_data="0.9\n0.2\n0.5"))
    assert record.rows == [["42", "1000.5", "basic"], ["17", "", "pro, annual"], ["", "nan", ""]]
    assert record.probabilities == [0.9, 0.2, 0.5]


def test_csv_output_may_be_comma_separated() -> None:
    record = parse(sagemaker_line(input_data="1,2,a\n3,4,b", input_encoding="CSV", input_type="text/csv",
                                  output_data="0.1,0.7"))
    assert record.probabilities == [0.1, 0.7]


@pytest.mark.parametrize("body", [
    {"instances": [[42, 1000.5, "basic"], [17, None, "pro"]]},
    {"instances": [{"features": [42, 1000.5, "basic"]}, {"features": [17, None, "pro"]}]},
    [[42, 1000.5, "basic"], [17, None, "pro"]],
    [{"age": 42, "income": 1000.5, "plan": "basic"}, {"age": 17, "plan": "pro"}],
])
def test_json_encoding_request_shapes(body: Any) -> None:
    record = parse(sagemaker_line(input_data=json.dumps(body), input_encoding="JSON",
                                  input_type="application/json",
                                  output_data=json.dumps({"predictions": [{"score": 0.8}, {"score": 0.3}]}),
                                  output_encoding="JSON", output_type="application/json"),
                   feature_names=FEATURES)
    assert record.rows == [["42", "1000.5", "basic"], ["17", "", "pro"]]
    assert record.probabilities == [0.8, 0.3]


def test_json_bare_list_of_scalars_is_one_row() -> None:
    record = parse(sagemaker_line(input_data="[1, 2.5, \"x\"]", input_encoding="JSON",
                                  input_type="application/json", output_data="[0.4]", output_encoding="JSON"))
    assert record.rows == [["1", "2.5", "x"]]
    assert record.probabilities == [0.4]


@pytest.mark.parametrize(("output", "expected"), [
    ("0.25", [0.25]),
    ("[0.25]", [0.25]),
    ("[[0.25]]", [0.25]),
    ('{"predictions": [0.25]}', [0.25]),
    ('{"probabilities": [{"probability": 0.25}]}', [0.25]),
    ('{"score": 0.25}', [0.25]),
])
def test_json_output_shapes(output: str, expected: list[float]) -> None:
    record = parse(sagemaker_line(input_data="1,2,a", input_encoding="CSV", input_type="text/csv",
                                  output_data=output, output_encoding="JSON"))
    assert record.probabilities == expected


def test_base64_encoding_is_read_by_its_content_type() -> None:
    csv_line = sagemaker_line(input_data=b64("1,2,a\n3,4,b"), input_encoding="BASE64",
                              input_type="text/csv; charset=utf-8", output_data=b64("0.6\n0.4"),
                              output_encoding="BASE64", output_type="text/csv")
    assert parse(csv_line).rows == [["1", "2", "a"], ["3", "4", "b"]]
    assert parse(csv_line).probabilities == [0.6, 0.4]
    json_line = sagemaker_line(input_data=b64('{"instances": [[1, 2, "a"]]}'), input_encoding="BASE64",
                               input_type="application/json", output_data=b64('{"predictions": [0.6]}'),
                               output_encoding="BASE64", output_type="application/json")
    assert parse(json_line).rows == [["1", "2", "a"]]
    assert parse(json_line.encode()).probabilities == [0.6]


def test_output_is_optional() -> None:
    record = parse(sagemaker_line(input_data="1,2,a", input_encoding="CSV", input_type="text/csv",
                                  output_data=None))
    assert record.probabilities == []


# ---------------------------------------------------------------- our own prediction log


@pytest.mark.parametrize("content_type", ["text/csv", "application/json"])
def test_built_records_round_trip_through_the_parser(content_type: str) -> None:
    when = datetime(2025, 3, 1, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    doc = build_capture_record(rows=[[42, 1000.5, "basic"], [17, None, "pro, annual"]],
                               probabilities=[0.8, 0.3], inference_time=when, event_id="ev-9",
                               inference_id="req-9", content_type=content_type,
                               custom={"source": "fallback_model", "model_version": "7", "degraded": "true",
                                       "fallback_reason": "endpoint_timeout"})
    assert doc["eventMetadata"]["inferenceTime"] == "2025-03-01T10:30:00.123Z"
    assert doc["eventVersion"] == "0"
    record = parse(json.dumps(doc), feature_names=FEATURES)
    assert record.rows == [["42", "1000.5", "basic"], ["17", "", "pro, annual"]]
    assert record.probabilities == [0.8, 0.3]
    assert record.source == "fallback_model"
    assert record.model_version == "7"
    assert record.degraded is True
    assert record.custom["fallback_reason"] == "endpoint_timeout"
    assert record.inference_id == "req-9"


def test_build_capture_record_rejects_naive_times_and_unknown_types() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_capture_record(rows=[[1]], probabilities=[0.5], inference_time=datetime(2025, 1, 1),
                             event_id="e")
    with pytest.raises(ValueError, match="content_type"):
        build_capture_record(rows=[[1]], probabilities=[0.5], inference_time=datetime.now(UTC),
                             event_id="e", content_type="application/x-protobuf")
    with pytest.raises(ValueError, match="2 probabilities for 1 rows"):
        build_capture_record(rows=[[1]], probabilities=[0.5, 0.1], inference_time=datetime.now(UTC),
                             event_id="e")


def test_sagemakers_string_custom_attributes_are_ignored() -> None:
    doc = json.loads(sagemaker_line(input_data="1,2,a", input_encoding="CSV", input_type="text/csv"))
    doc["eventMetadata"]["customAttributes"] = "trace=abc"
    record = parse(json.dumps(doc))
    assert record.source == "endpoint"
    assert record.custom == {}


# ---------------------------------------------------------------- malformed lines


def _line_with(**overrides: Any) -> str:
    base = {"input_data": "1,2,a", "input_encoding": "CSV", "input_type": "text/csv"}
    base.update(overrides)
    return sagemaker_line(**base)


@pytest.mark.parametrize(("line", "reason", "message"), [
    ("", "empty_line", "empty"),
    (b"\xff\xfe", "not_utf8", "UTF-8"),
    ("{not json", "not_json", "not JSON"),
    ("[1, 2]", "bad_record", "not a JSON object"),
    ('{"eventMetadata": {"eventId": "e", "inferenceTime": "t"}}', "bad_record", "captureData"),
    ('{"captureData": {}, "eventMetadata": {"inferenceTime": "t"}}', "bad_record", "eventId"),
    (_line_with(input_data="1,2"), "wrong_column_count", "row 0 has 2 fields, expected 3"),
    (_line_with(input_data="1,2,a\n1,2,a,4"), "wrong_column_count", "row 1 has 4 fields"),
    (_line_with(input_data="1,two,a"), "non_numeric", "row 0 column 1 is not a number"),
    (_line_with(input_data="1,inf,a"), "non_numeric", "not a finite number"),
    (_line_with(input_data="\n\n"), "empty_request", "no rows"),
    (_line_with(input_data="!!!", input_encoding="BASE64"), "bad_base64", "base64"),
    (_line_with(input_data=b64("1,2,a"), input_encoding="BASE64", input_type="application/x-npy"),
     "bad_base64", "cannot read base64 content"),
    (_line_with(input_encoding="XML"), "bad_payload", "encoding is 'XML'"),
    (_line_with(input_data="[[1, 2", input_encoding="JSON"), "bad_json", "request is not valid JSON"),
    (_line_with(input_data='{"rows": []}', input_encoding="JSON"), "bad_request", "instances"),
    (_line_with(input_data='[[1, [2], "a"]]', input_encoding="JSON"), "bad_request", "nested"),
    (_line_with(input_data='[{"age": 1}]', input_encoding="JSON"), "bad_request", "feature names"),
    (_line_with(output_data="0.1\n0.2"), "output_row_mismatch", "2 probabilities for 1 rows"),
    (_line_with(output_data="1.7"), "bad_output", r"outside \[0, 1\]"),
    (_line_with(output_data="yes"), "non_numeric", "output value is not a number"),
    (_line_with(output_data='{"label": 1}', output_encoding="JSON"), "bad_output", "none of the keys"),
])
def test_malformed_lines_raise_capture_format_error_with_a_reason(line: str | bytes, reason: str,
                                                                  message: str) -> None:
    with pytest.raises(CaptureFormatError, match=message) as caught:
        parse(line)
    assert caught.value.reason == reason


def test_unknown_json_feature_keys_are_rejected() -> None:
    line = _line_with(input_data='[{"age": 1, "salary": 2}]', input_encoding="JSON")
    with pytest.raises(CaptureFormatError, match="unknown features"):
        parse(line, feature_names=FEATURES)


def test_huge_integers_and_deep_nesting_are_malformed_not_crashes() -> None:
    with pytest.raises(CaptureFormatError):
        parse('{"captureData": ' + "9" * 5000 + "}")
    with pytest.raises(CaptureFormatError):
        parse("[" * 100_000 + "]" * 100_000)


# ---------------------------------------------------------------- fuzz: only CaptureFormatError escapes

_VALID = _line_with(input_data="1,2,a\n3,4,b", output_data="0.5\n0.6")
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=12,
)


def _mutated(draw_line: str, position: int, replacement: str) -> str:
    position %= max(len(draw_line), 1)
    return draw_line[:position] + replacement + draw_line[position + len(replacement):]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.builds(_mutated, st.just(_VALID), st.integers(min_value=0), st.text(min_size=1, max_size=5)),
    st.builds(lambda v: json.dumps({"captureData": v,
                                    "eventMetadata": {"eventId": "e", "inferenceTime": "t"}}), _json_values),
    st.builds(lambda d, e, t: _line_with(input_data=d, input_encoding=e, input_type=t),
              st.text(max_size=40), st.sampled_from(["CSV", "JSON", "BASE64", "csv", "?"]),
              st.sampled_from(["text/csv", "application/json", "", "image/png"])),
    st.builds(lambda v: _line_with(input_data=json.dumps(v), input_encoding="JSON",
                                   output_data=json.dumps(v), output_encoding="JSON"), _json_values),
))
def test_random_and_garbled_lines_never_raise_anything_but_capture_format_error(line: str | bytes) -> None:
    try:
        record = parse(line, feature_names=FEATURES)
    except CaptureFormatError as err:
        assert err.reason
        return
    assert all(len(row) == 3 for row in record.rows)
    assert all(0.0 <= p <= 1.0 for p in record.probabilities)
