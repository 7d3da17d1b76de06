"""The served answer of each kind (mlcore.outputs), its fallback model (mlcore.fallback) and the golden check
(mlplatform.serving.golden_check) on each kind's answers (issue 25)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from mlcore.fallback import FALLBACK_FORMAT, FallbackModelError, fallback_from_dict
from mlcore.outputs import OutputError, output_for, parse_csv_answers, parse_json_answers
from mlplatform.serving.golden_check import check_answer, parse_golden
from mlsettings.problem_types import MULTICLASS, REGRESSION
from mlsettings.schema import DataSchema, LabelSpec
from mlsettings.vocabulary import GOLDEN_FORMAT

MULTI = LabelSpec(name="cultivar", classes=(0, 1, 2), problem_type=MULTICLASS)
VALUE = LabelSpec(name="progression", min=0.0, max=400.0, problem_type=REGRESSION)
SCORE = LabelSpec(name="target")


@pytest.mark.parametrize(("label", "raw", "csv_line", "json_item"), [
    (SCORE, 0.25, "0.25", 0.25),
    (MULTI, [0.1, 0.7, 0.2], "1,0.1,0.7,0.2", {"label": 1, "probabilities": [0.1, 0.7, 0.2]}),
    (VALUE, 151.5, "151.5", 151.5),
])
def test_each_kind_writes_and_reads_its_shape(label: LabelSpec, raw: Any, csv_line: str, json_item: Any) -> None:
    output = output_for(label)
    answer = output.from_model(raw, label)
    assert answer == json_item
    assert output.csv_line(answer) == csv_line
    assert parse_csv_answers(f"{csv_line}\n\n", label) == [answer, None]
    assert parse_json_answers(json.loads(json.dumps([answer, None])), label) == [answer, None]
    assert output.problem(answer, label) is None


@pytest.mark.parametrize(("label", "answer", "problem"), [
    (SCORE, 1.2, "not a probability"),
    (SCORE, math.nan, "not a probability"),
    (MULTI, {"label": 1, "probabilities": [0.1, 0.7]}, "2 probabilities for 3 declared classes"),
    (MULTI, {"label": 1, "probabilities": [0.1, 0.7, 0.3]}, "sum to 1.1"),
    (MULTI, {"label": 1, "probabilities": [-0.1, 0.9, 0.2]}, "not all in [0, 1]"),
    (MULTI, {"label": 5, "probabilities": [0.1, 0.7, 0.2]}, "not one of the declared classes"),
    (MULTI, {"label": 0, "probabilities": [0.1, 0.7, 0.2]}, "not the most probable class"),
    (VALUE, 401.0, "outside the target's range [0.0, 400.0]"),
    (VALUE, math.inf, "not a finite number"),
])
def test_each_kind_judges_its_answers(label: LabelSpec, answer: Any, problem: str) -> None:
    assert problem in (output_for(label).problem(answer, label) or "")


def test_a_label_outside_the_declared_classes_does_not_parse() -> None:
    with pytest.raises(OutputError, match="not one of the declared classes"):
        parse_csv_answers("7,0.1,0.7,0.2\n", MULTI)
    with pytest.raises(OutputError, match="expected the label and 3 probabilities"):
        parse_csv_answers("1,0.5,0.5\n", MULTI)


def _schema(label: LabelSpec) -> dict[str, Any]:
    return DataSchema(name="s", label=label, features=()).to_dict() | {
        "features": [{"name": "x", "type": "numeric", "nullable": True}]}


def test_fallbacks_per_kind_answer_in_their_shape_and_refuse_what_the_endpoint_refuses() -> None:
    priors = fallback_from_dict({"format": FALLBACK_FORMAT, "kind": "class_priors", "schema": _schema(MULTI),
                                 "priors": [0.2, 0.5, 0.3]})
    answer = priors.predict_row(["3.5"])
    assert answer == {"label": 1, "probabilities": [0.2, 0.5, 0.3]}
    assert output_for(MULTI).problem(answer, MULTI) is None
    median = fallback_from_dict({"format": FALLBACK_FORMAT, "kind": "target_median", "schema": _schema(VALUE),
                                 "median": 140.0})
    assert median.predict_row([""]) == 140.0
    with pytest.raises(ValueError, match="is not a number"):
        median.predict_row(["lots"])
    with pytest.raises(FallbackModelError, match="whose fallback is 'class_priors'"):
        fallback_from_dict({"format": FALLBACK_FORMAT, "kind": "target_median", "schema": _schema(MULTI),
                            "median": 1.0})
    with pytest.raises(FallbackModelError, match="sum to 1"):
        fallback_from_dict({"format": FALLBACK_FORMAT, "kind": "class_priors", "schema": _schema(MULTI),
                            "priors": [0.2, 0.2, 0.2]})


def _golden(label: LabelSpec, expected: list[Any]) -> dict[str, Any]:
    return {"format": GOLDEN_FORMAT, "tolerance": 1e-4, "label": label.to_dict(),
            "cases": [{"name": "c", "content_type": "text/csv", "accept": "text/csv", "body": "1\n",
                       "expected": expected}]}


@pytest.mark.parametrize(("label", "expected", "body", "reason"), [
    (MULTI, [{"label": 1, "probabilities": [0.1, 0.7, 0.2]}], "1,0.1,0.7,0.2\n", None),
    (MULTI, [{"label": 1, "probabilities": [0.1, 0.7, 0.2]}], "1,0.1,0.6,0.3\n", "differs from the golden"),
    (MULTI, [{"label": 1, "probabilities": [0.1, 0.7, 0.2]}], "1,0.1,0.7,0.3\n", "sum to"),
    (MULTI, [{"label": 1, "probabilities": [0.1, 0.7, 0.2]}], "9,0.1,0.7,0.2\n", "is not a label with one"),
    (VALUE, [151.0], "151.004\n", None),  # relative to the value's size: 151.004 is within 1e-4
    (VALUE, [151.0], "152\n", "differs from the golden"),
    (VALUE, [151.0], "-3\n", "outside the target's range"),
])
def test_the_golden_check_judges_each_kind(label: LabelSpec, expected: list[Any], body: str,
                                           reason: str | None) -> None:
    golden = parse_golden(_golden(label, expected))
    assert golden.label == label
    result = check_answer(golden.cases[0], body=body, content_type="text/csv", tolerance=golden.tolerance,
                          label=golden.label)
    assert result.passed is (reason is None), result.reasons
    if reason:
        assert reason in " ".join(result.reasons)


def _capture_line(output: str, rows: str = "1.0,2.0") -> str:
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": rows, "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": output, "encoding": "CSV"}},
        "eventMetadata": {"eventId": "e", "inferenceTime": "2026-12-01T00:00:00Z"}, "eventVersion": "0"})


def test_capture_parsing_reads_each_kinds_answers() -> None:
    from mlcore.drift.capture import CaptureFormatError, parse_capture_line

    multi = parse_capture_line(_capture_line("1,0.1,0.7,0.2\n0,0.8,0.1,0.1", "1,2\n3,4"), n_features=2, label=MULTI)
    assert multi.answers == [{"label": 1, "probabilities": [0.1, 0.7, 0.2]},
                             {"label": 0, "probabilities": [0.8, 0.1, 0.1]}]
    assert multi.probabilities == []
    value = parse_capture_line(_capture_line("151.5"), n_features=2, label=VALUE)
    assert (value.answers, value.probabilities) == ([151.5], [])
    score = parse_capture_line(_capture_line("0.25"), n_features=2)
    assert score.answers == score.probabilities == [0.25]
    with pytest.raises(CaptureFormatError, match="outside the target's range") as caught:
        parse_capture_line(_capture_line("999"), n_features=2, label=VALUE)
    assert caught.value.reason == "bad_output"
    with pytest.raises(CaptureFormatError, match="sum to"):
        parse_capture_line(_capture_line("1,0.5,0.7,0.2"), n_features=2, label=MULTI)


@pytest.mark.parametrize(("schema_name", "output", "values", "confidences"), [
    ("wine", "1,0.1,0.7,0.2", [1.0] * 3, [0.7] * 3), ("diabetes", "151.5", [151.5] * 3, [])])
def test_the_drift_engine_reads_other_kinds_capture_as_records_not_malformed(
        schema_name: str, output: str, values: list[float], confidences: list[float]) -> None:
    """The engine's block parser takes a multiclass or regression model's capture through the exact parser: its
    rows count for feature drift; its answers give their drift values (class index, value) and confidences (the
    top-class probability; none for regression), not binary scores."""
    from mlcore.drift.capture_blocks import BlockParser
    from pipelines.datasets import REPO_SCHEMAS

    schema = DataSchema.load(REPO_SCHEMAS / f"{schema_name}.json")
    row = ",".join("1.5" for _ in schema.feature_names)
    block = "\n".join(_capture_line(output, row) for _ in range(3)).encode()
    parsed = BlockParser(schema).parse(block)
    assert (parsed.records, parsed.rows, sum(parsed.malformed.values())) == (3, 3, 0)
    assert parsed.probabilities.tolist() == values
    assert parsed.confidences is not None and parsed.confidences.tolist() == confidences


def test_each_kinds_answers_are_summarised_for_the_ab_report() -> None:
    from mlcore.outputs import summarise_answers

    multi = summarise_answers([{"label": 1, "probabilities": [0.1, 0.7, 0.2]},
                               {"label": 0, "probabilities": [0.6, 0.3, 0.1]}], MULTI)
    assert multi["class_mix"] == {"0": 0.5, "1": 0.5, "2": 0.0}
    assert multi["top_probability"]["p50"] == pytest.approx(0.65)
    values = summarise_answers([100.0, 150.0, 200.0], VALUE)
    assert (values["rows"], values["mean"], values["p50"]) == (3, 150.0, 150.0)
    assert summarise_answers([], VALUE) == {"rows": 0}
