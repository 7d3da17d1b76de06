"""The chunk parser's fast path gives exactly what ``mlcore.drift.capture.parse_capture_line`` gives, line by line:
same rows in the same order, same probabilities, same malformed reasons — on generated, edited and fuzzed lines."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcore.drift.capture_chunks import CaptureChunkParser, ParsedChunk
from tests.functional import drift_monitor_testkit as kit


def assert_same(lines: Sequence[bytes | str]) -> ParsedChunk:
    fast = CaptureChunkParser(kit.SCHEMA).parse(lines)
    exact = CaptureChunkParser(kit.SCHEMA, fast=False).parse(lines)
    assert fast.rows == exact.rows
    assert fast.records == exact.records
    assert fast.malformed == exact.malformed
    # In line order, not only the same values: the window's means are summed in that order (exact_sum).
    np.testing.assert_array_equal(fast.probabilities, exact.probabilities)
    for name in kit.NAMES:
        fast_column, exact_column = fast.columns[name], exact.columns[name]
        if isinstance(fast_column, np.ndarray):
            np.testing.assert_array_equal(fast_column, np.asarray(exact_column))
        else:
            assert Counter(fast_column) == Counter(exact_column)
    return fast


def test_regular_lines_take_the_fast_path_and_match() -> None:
    rows, probabilities = kit.traffic_rows(50), kit.scores(50)
    lines = [kit.csv_line([r], [p], event_id=f"e{i}", inference_id=f"i{i}")
             for i, (r, p) in enumerate(zip(rows, probabilities, strict=True))]
    lines.append(kit.csv_line(rows[:4], probabilities[:4], event_id="multi"))
    lines.append(kit.csv_line(rows[:2], [], event_id="no-output"))

    chunk = assert_same([line.encode() for line in lines])

    assert chunk.rows == 56
    assert chunk.probabilities.size == 54
    assert chunk.columns["plan"][:2] == [rows[0][2], rows[1][2]]


EDITS: list[tuple[str, str]] = [
    (",", ", "),                 # blanks around fields: the exact parser strips them
    ('"data":"', '"data":"\\n'),  # a leading blank line
    ("0", "inf"),                # infinity in a numeric column
    ("1", "x"),                  # text in a numeric column
    ('"CSV"', '"csv"'),          # lower-case encoding
    ("basic", "b\\u00e4sic"),     # a JSON escape in a categorical value
    ("0.", "\\u0661."),          # an Arabic-Indic digit (float() accepts it)
    (",", ",,"),                 # wrong column count
    ('"eventId":"', '"eventId":"\\"'),
    ('"inferenceTime":"2025', '"inferenceTime":"'),
    ("\\n", "\\r\\n"),
    ("\\n", "\\u2028"),
    ("premium", "nan"),
    ("plus", ""),
    ("{", "{ "),
    ("}", "} x"),
    ("0.", "-0."),               # numeric spellings pandas' reader and float() might judge differently
    ("1", "1_0"),
    ("2", "+2"),
    ("3", "3e"),
    ("4", "4e308"),              # overflows to infinity
    ("5", "NaN"),
    ("6", "0x6"),
    ("7", "True"),
]


@given(st.lists(st.tuples(st.integers(0, 19), st.sampled_from(EDITS), st.integers(0, 3)), max_size=12))
@settings(max_examples=150, deadline=None)
def test_edited_lines_give_the_exact_parsers_answer(edits: list[tuple[int, tuple[str, str], int]]) -> None:
    rows, probabilities = kit.traffic_rows(20, seed=3), kit.scores(20, seed=4)
    lines = [kit.csv_line(rows[i:i + 1 + i % 3], probabilities[i:i + 1 + i % 3], event_id=f"e{i}")
             for i in range(20)]
    for position, (old, new), occurrence in edits:
        parts = lines[position].split(old)
        if len(parts) > 1:
            at = 1 + occurrence % (len(parts) - 1)
            lines[position] = old.join(parts[:at]) + new + old.join(parts[at:])
    assert_same(lines)


_PAYLOAD_TEXT = st.text(alphabet=st.sampled_from(list("0123456789.,-\\n ae\"x\u2028\t")), max_size=30)


@given(st.lists(st.one_of(
    st.builds(lambda d, o: json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": d, "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": o, "encoding": "CSV"}},
        "eventMetadata": {"eventId": "e", "inferenceTime": "t"}, "eventVersion": "0"}, separators=(",", ":")),
        _PAYLOAD_TEXT, _PAYLOAD_TEXT),
    st.binary(max_size=60),
), max_size=10))
@settings(max_examples=200, deadline=None)
def test_fuzzed_lines_never_crash_and_match(lines: list[Any]) -> None:
    assert_same(lines)


@pytest.mark.parametrize("spelling", [
    ["7", "-0", "+3", "0012", "18446744073709551617", "9007199254740993"],  # integers: pandas types them int
    ["True", "False", "True", "True", "False", "True"],                     # pandas: bool, float(): no
    ["1e-400", "2.5E3", ".5", "5.", "nan", "-inf"],
    ["0.1", "0.30000000000000004", "1.7976931348623157e308", "5e-324", "4.9406564584124654e-324", "1"],
])
def test_whole_numeric_columns_in_unusual_spellings_match(spelling: list[str]) -> None:
    """pandas types a column by all its values; every column it cannot type as numbers is converted the
    way ``float()`` does, and the answer (values, or the chunk's malformed count) is the exact parser's."""
    rows = kit.traffic_rows(len(spelling), seed=5)
    numeric = [index for index, spec in enumerate(kit.SCHEMA.features) if spec.is_numeric]
    for row, value in zip(rows, spelling, strict=True):
        for index in numeric:
            row[index] = value
    lines = [kit.csv_line([row], [0.25], event_id=f"e{i}") for i, row in enumerate(rows)]
    assert_same(lines)


def test_prediction_log_skips_endpoint_answers_and_keeps_degraded_features_without_scores() -> None:
    rows = kit.traffic_rows(3)
    lines = [kit.log_line([rows[0]], [0.9], event_id="a", source="endpoint"),
             kit.log_line([rows[1]], [0.5], event_id="b", source="safe_default"),
             kit.log_line([rows[2]], [0.7], event_id="c", source="fallback_model")]

    chunk = CaptureChunkParser(kit.SCHEMA, prediction_log=True).parse([line.encode() for line in lines])

    assert chunk.rows == 2
    assert chunk.probabilities.size == 0
    assert chunk.skipped == Counter({"endpoint_answer_in_prediction_log": 1, "scores_not_compared_safe_default": 1,
                                     "scores_not_compared_fallback_model": 1})


def test_the_common_line_pattern_uses_only_characters_the_general_checks_allow() -> None:
    """The single-row pattern skips ``_parse_fast``'s per-line checks, so its classes must be subsets of
    what those checks let through: printable ASCII, no quote or backslash, and in a field no blank or comma."""
    import re

    from mlcore.drift.capture_chunks import _ASCII_PLAIN, _FIELD

    printable = {chr(c) for c in range(0x20, 0x7F)}
    every = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    assert {c for c in every if re.fullmatch(_ASCII_PLAIN, c)} == printable - set('"\\')
    assert {c for c in every if re.fullmatch(_FIELD, c)} == printable - set('"\\ ,')
