"""Judging an endpoint's answers to the golden payloads ("mlops-golden/1", written by the baseline step).

A golden document pins the whole serving path of one model package: request bodies built from test rows,
each with the answers that exact artifact returned through the handler, the model's kind and label declaration,
and a tolerance. An answer passes only if it has the output shape of its kind (``mlcore.outputs``: CSV one line
per row, JSON ``{"predictions": [...], "malformed": 0, ...}``), one answer per request row, every answer valid
for its kind (a score in [0, 1]; probabilities in [0, 1] that sum to 1 within a tolerance and a label among the
declared classes, the most probable one; a finite value within the schema's target range) and within the
tolerance of the expected answer. An HTTP 200 carrying the wrong
model's answers, a broken transform's NaNs or a truncated body is therefore a failure, which is the point:
SageMaker's own health check only proves that the container answers ``/ping``.

Standard library only (the health-check Lambda imports it on every cold start).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlcore.outputs import OutputError, output_for
from mlsettings.schema import LabelSpec, SchemaError
from mlsettings.vocabulary import GOLDEN_FILE, GOLDEN_FORMAT

CSV, JSON = "text/csv", "application/json"
_MAX_REASONS = 5


class GoldenFormatError(ValueError):
    """A golden document that cannot be used; the message names the field."""


@dataclass(frozen=True, kw_only=True)
class GoldenCase:
    name: str
    content_type: str
    accept: str
    body: str
    expected: tuple[Any, ...]
    """One answer per row in the kind's shape (a float, or a dict for multiclass)."""


@dataclass(frozen=True, kw_only=True)
class GoldenPayloads:
    tolerance: float
    cases: tuple[GoldenCase, ...]
    label: LabelSpec = field(default_factory=lambda: LabelSpec(name="label"))
    """The model's label declaration; its form is the kind of model (a document without one is binary)."""


@dataclass(frozen=True, kw_only=True)
class CaseResult:
    name: str
    passed: bool
    reasons: tuple[str, ...] = ()
    max_abs_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "reasons": list(self.reasons),
                "max_abs_error": self.max_abs_error}


@dataclass(frozen=True, kw_only=True)
class VariantVerdict:
    """The health of one variant: passed only when it answered every case correctly."""

    variant: str
    model_package_arn: str
    cases: tuple[CaseResult, ...] = ()
    error: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.cases) and all(case.passed for case in self.cases)

    def summary(self) -> str:
        if self.error:
            return f"{self.variant}: {self.error}"
        failed = [case for case in self.cases if not case.passed]
        if not failed:
            return f"{self.variant}: {len(self.cases)} golden case(s) passed"
        first = failed[0]
        return (f"{self.variant}: {len(failed)}/{len(self.cases)} golden case(s) failed; "
                f"{first.name}: {'; '.join(first.reasons)}")

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "model_package_arn": self.model_package_arn, "passed": self.passed,
                "error": self.error, "summary": self.summary(), "cases": [c.to_dict() for c in self.cases]}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_golden(document: Any) -> GoldenPayloads:
    if not isinstance(document, Mapping):
        raise GoldenFormatError("golden payloads must be a JSON object")
    if document.get("format") != GOLDEN_FORMAT:
        raise GoldenFormatError(f"golden.format is {document.get('format')!r}; expected {GOLDEN_FORMAT!r}")
    tolerance: Any = document.get("tolerance")
    if not _number(tolerance) or tolerance < 0:
        raise GoldenFormatError(f"golden.tolerance is {tolerance!r}; expected a number >= 0")
    raw_cases = document.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise GoldenFormatError("golden.cases must be a non-empty list")
    try:
        label = LabelSpec.from_dict(document.get("label", {"name": "label"}))
    except SchemaError as err:
        raise GoldenFormatError(f"golden.label: {err}") from None
    output = output_for(label)
    cases = []
    for position, case in enumerate(raw_cases):
        where = f"golden.cases[{position}]"
        if not isinstance(case, Mapping):
            raise GoldenFormatError(f"{where} must be an object")
        for key in ("name", "content_type", "accept", "body"):
            if not isinstance(case.get(key), str) or not case.get(key):
                raise GoldenFormatError(f"{where}.{key} must be a non-empty string")
        # "expected_probabilities": the binary-only spelling of documents written before issue 25.
        key = "expected" if "expected" in case else "expected_probabilities"
        expected = case.get(key)
        if not isinstance(expected, list) or not expected:
            raise GoldenFormatError(f"{where}.{key} must be a non-empty list of answers")
        try:
            answers = tuple(output.parse_json_item(item, label) for item in expected)
        except OutputError as err:
            raise GoldenFormatError(f"{where}.{key}: {err}") from None
        cases.append(GoldenCase(name=case["name"], content_type=case["content_type"], accept=case["accept"],
                                body=case["body"], expected=answers))
    return GoldenPayloads(tolerance=float(tolerance), cases=tuple(cases), label=label)


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _answers(body: str, media: str, label: LabelSpec) -> tuple[list[Any], list[str]]:
    """The answer's per-row values (a row that does not parse stays as its raw text, an unscored one None) and any
    schema violations of the envelope itself."""
    output = output_for(label)
    if media == CSV:
        # splitlines drops only the final terminator: "0.9\n\n" is two rows, the second unscored (empty).
        values: list[Any] = []
        for line in body.splitlines():
            text = line.strip()
            try:
                values.append(output.parse_csv_line(text, label) if text else None)
            except OutputError:
                values.append(text)
        return values, []
    if media == JSON:
        try:
            document = json.loads(body)
        except json.JSONDecodeError as err:
            return [], [f"response is not JSON ({err.msg})"]
        if not isinstance(document, Mapping) or not isinstance(document.get("predictions"), list):
            return [], ["response has no 'predictions' list"]
        problems = []
        if document.get("malformed", 0) != 0:
            problems.append(f"response reports {document.get('malformed')!r} malformed row(s)")
        parsed: list[Any] = []
        for item in document["predictions"]:
            try:
                parsed.append(None if item is None else output.parse_json_item(item, label))
            except OutputError:
                parsed.append(item if not isinstance(item, dict) else json.dumps(item))
        return parsed, problems
    return [], [f"response content type {media!r} is neither {CSV} nor {JSON}"]


def check_answer(case: GoldenCase, *, body: str, content_type: str, tolerance: float,
                 label: LabelSpec | None = None) -> CaseResult:
    """Judge one answer against its golden case (shape, row count, validity for the kind, values within
    tolerance). ``label``: the model's label declaration (``GoldenPayloads.label``; None: binary)."""
    label = label or LabelSpec(name="label")
    output = output_for(label)
    media = _media(content_type) or _media(case.accept)
    reasons: list[str] = []
    if media != _media(case.accept):
        reasons.append(f"answered {content_type!r} to Accept {case.accept!r}")
    values, problems = _answers(body, media, label)
    reasons += problems
    if not problems and len(values) != len(case.expected):
        reasons.append(f"{len(values)} prediction(s) for {len(case.expected)} row(s)")
    worst: float | None = None
    if not problems and len(values) == len(case.expected):
        for row, (value, expected) in enumerate(zip(values, case.expected, strict=True)):
            unreadable = value is None or isinstance(value, str)
            problem = f"{value!r} is not {output.what}" if unreadable else output.problem(value, label)
            if problem is not None:
                reasons.append(f"row {row}: {problem}")
                continue
            error = output.difference(value, expected)
            worst = error if worst is None else max(worst, error)
            if error > tolerance:
                reasons.append(f"row {row}: {value!r} differs from the golden {expected!r} by {error:.2e} "
                               f"(tolerance {tolerance:.0e})")
    return CaseResult(name=case.name, passed=not reasons, reasons=tuple(reasons[:_MAX_REASONS]),
                      max_abs_error=worst)


def golden_uri_for_baseline(baseline_uri: str) -> str:
    """The baseline step writes ``golden_payloads.json`` into the same folder as ``baseline.json``."""
    folder = baseline_uri.rsplit("/", 1)[0]
    return f"{folder}/{GOLDEN_FILE}"


def golden_uri_of_package(package_description: Mapping[str, Any]) -> str:
    """Where a registered package's golden payloads live (beside its DriftCheckBaselines statistics)."""
    baseline = (((package_description.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {})
                .get("Statistics") or {}).get("S3Uri")
    if not isinstance(baseline, str) or not baseline.startswith("s3://"):
        arn = package_description.get("ModelPackageArn", "the package")
        raise GoldenFormatError(f"{arn} has no DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri; "
                                "the golden payloads are stored beside it")
    return golden_uri_for_baseline(baseline)


