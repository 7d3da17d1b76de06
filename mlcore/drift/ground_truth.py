"""Ground truth: labels that arrive later, joined to captured predictions by inference id, and the
quality each variant really delivers compared with what was registered for its model.

Label files are dropped under ``<labels prefix>/yyyy/mm/dd/hh/`` (the hour they were written), as

* CSV with a header naming at least ``inference_id`` and ``label`` (``time`` and ``row`` optional), or
* JSONL: ``{"inference_id": "...", "label": 1, "time": "...", "row": 0}``, or SageMaker's ground-truth
  record ``{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"}}``.

``row`` picks one row of a multi-row request (0-based); a label without ``row`` only joins a single-row
request (anything else would guess). Labels are spelled as the schema's label (``yes``/``no``, ``1``/``0``).

Memory is bounded by the labels of the window, never by the traffic: capture lines are pre-filtered by a
regex on their ids and only the few lines that carry a labelled id are parsed.

The join is mergeable: each labelled capture line becomes a ``JoinEntry`` at a position (variant plan, object,
line), and the pairs are taken in position order when the join is read, so entries collected by several worker
processes or Processing instances, in any order, give the report one process gives.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from mlcore.drift.capture import CaptureFormatError, CaptureRecord
from mlcore.features import FeatureError, encode_label
from mlcore.metrics import quality_bounds, quality_metrics
from mlsettings.problem_types import BINARY, HIGHER, TYPES, gate_metric
from mlsettings.schema import LabelSpec

ID_PATTERN = re.compile(rb'"(?:inferenceId|eventId)"\s*:\s*"([^"\\]*)"')
"""Ids anywhere in a raw capture line: the pre-filter that decides which lines are parsed for the join."""
MALFORMED_LABELLED_LINE = "labelled_capture_line_malformed"


@dataclass
class LabelSet:
    """Encoded labels by inference id: ``{id: {row or None: label}}`` (0|1, a class index or a value, by the kind
    of model: ``problem_type``)."""

    labels: dict[str, dict[int | None, float]] = field(default_factory=dict)
    rows: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    problem_type: str = BINARY

    def add(self, inference_id: str, row: int | None, label: float) -> None:
        per_id = self.labels.setdefault(inference_id, {})
        if row in per_id:
            self.malformed["duplicate_label"] += 1
        per_id[row] = label
        self.rows += 1


def read_labels(objects: Iterable[tuple[str, Iterable[bytes]]], label_spec: LabelSpec) -> LabelSet:
    """Labels from ``(name, lines)`` pairs; ``.csv`` names are CSV with a header, anything else JSONL."""
    labels = LabelSet(problem_type=label_spec.problem_type)
    for name, lines in objects:
        if name.lower().endswith(".csv"):
            _read_csv_labels(lines, label_spec, labels)
        else:
            for line in lines:
                if line.strip():
                    _read_json_label(line, label_spec, labels)
    return labels


def _read_csv_labels(lines: Iterable[bytes], label_spec: LabelSpec, labels: LabelSet) -> None:
    iterator = iter(lines)
    header_line = next(iterator, None)
    if header_line is None:
        return
    header = [h.strip() for h in next(csv.reader([header_line.decode("utf-8", "replace")]))]
    if "inference_id" not in header or "label" not in header:
        labels.malformed["csv_header_lacks_inference_id_or_label"] += 1
        return
    id_at, label_at = header.index("inference_id"), header.index("label")
    row_at = header.index("row") if "row" in header else None
    for raw in iterator:
        if not raw.strip():
            continue
        try:
            values = next(csv.reader(io.StringIO(raw.decode("utf-8"))))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            labels.malformed["bad_csv"] += 1
            continue
        if len(values) != len(header):
            labels.malformed["wrong_column_count"] += 1
            continue
        _add_label(labels, label_spec, values[id_at], values[label_at],
                   values[row_at] if row_at is not None else None)


def _read_json_label(raw: bytes, label_spec: LabelSpec, labels: LabelSet) -> None:
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        labels.malformed["not_json"] += 1
        return
    if not isinstance(doc, dict):
        labels.malformed["bad_label_record"] += 1
        return
    if "groundTruthData" in doc:  # SageMaker's ground-truth record
        data, metadata = doc.get("groundTruthData"), doc.get("eventMetadata")
        if not isinstance(data, dict) or not isinstance(metadata, dict):
            labels.malformed["bad_label_record"] += 1
            return
        _add_label(labels, label_spec, metadata.get("eventId"), data.get("data"), None)
        return
    _add_label(labels, label_spec, doc.get("inference_id"), doc.get("label"), doc.get("row"))


def _add_label(labels: LabelSet, label_spec: LabelSpec, inference_id: Any, label: Any, row: Any) -> None:
    if not isinstance(inference_id, str) or not inference_id.strip():
        labels.malformed["missing_inference_id"] += 1
        return
    try:
        encoded = encode_label(label, label_spec)
    except FeatureError:
        labels.malformed["unknown_label"] += 1
        return
    position: int | None = None
    if row not in (None, ""):
        try:
            position = int(str(row))
        except ValueError:
            labels.malformed["bad_row"] += 1
            return
        if position < 0:
            labels.malformed["bad_row"] += 1
            return
    labels.add(inference_id.strip(), position, encoded)


class JoinEntry(NamedTuple):
    """One capture line that carries a labelled id: its ordinal among the object's non-empty lines and what the
    exact parser makes of it (``malformed`` names the problem when it cannot be parsed)."""

    line: int
    event_id: str | None = None
    inference_id: str | None = None
    probabilities: tuple[Any, ...] = ()
    """Per row what the kind's metrics take (mlcore.outputs ``metric_input``): a score, a list of class
    probabilities or a value."""
    rows: int = 0
    malformed: str | None = None

    def to_list(self) -> list[Any]:
        return [self.line, self.event_id, self.inference_id, list(self.probabilities), self.rows, self.malformed]

    @classmethod
    def from_list(cls, item: Any) -> JoinEntry:
        if not isinstance(item, list) or len(item) != 6:
            raise ValueError("a join entry is a list of six items")
        line, event_id, inference_id, probabilities, rows, malformed = item
        if not isinstance(line, int) or not isinstance(rows, int) or not isinstance(probabilities, list) or \
                any(not isinstance(v, str | type(None)) for v in (event_id, inference_id, malformed)):
            raise ValueError(f"join entry {item!r} has wrong types")
        return cls(line, event_id, inference_id, tuple(_metric_input(p) for p in probabilities), rows, malformed)


def _metric_input(answer: Any) -> Any:
    """A captured answer as the metrics take it: a multiclass answer's probabilities, else the number."""
    if isinstance(answer, Mapping):
        return [float(p) for p in answer["probabilities"]]
    if isinstance(answer, list):
        return [float(p) for p in answer]
    return float(answer)


def entry_of_record(line: int, record: CaptureRecord) -> JoinEntry:
    return JoinEntry(line=line, event_id=record.event_id, inference_id=record.inference_id,
                     probabilities=tuple(_metric_input(a) for a in (record.answers or record.probabilities)),
                     rows=len(record.rows))


EntryFields = tuple[int, str | None, str | None, tuple[Any, ...], int, str | None]
"""A ``JoinEntry``'s fields as a plain tuple (what worker processes send: a plain tuple unpickles ~10x faster
than a named one, and a window can hold millions of labelled lines)."""
Occurrence = tuple[tuple[int, ...], str, EntryFields]
"""(position, group, entry): where the line was in the run's order, and whose quality it counts for."""


@dataclass
class _Pairs:
    labels: list[float] = field(default_factory=list)
    probabilities: list[Any] = field(default_factory=list)


class LabelledIds:
    """The ids that have a label: called with an id as text, or matched as bytes (``raw``) against raw lines."""

    def __init__(self, labels: Mapping[str, Any]) -> None:
        self._text = labels
        self.raw = frozenset(key.encode("utf-8", "surrogatepass") for key in labels)

    def __call__(self, identifier: str) -> bool:
        return identifier in self._text


class QualityJoin:
    """Collects (label, probability) pairs per group (variant) from the capture lines that carry a labelled id.

    Lines arrive as ``JoinEntry`` occurrences at positions; reading the join (``report``, ``problems``, …) takes
    them in position order, so the first prediction of an id wins and later ones count as
    ``prediction_seen_twice``, whatever order the occurrences were added in."""

    def __init__(self, labels: LabelSet) -> None:
        self._labels = labels
        self._occurrences: list[Occurrence] = []
        self._arrivals = 0
        self._settled: tuple[dict[str, _Pairs], set[str], Counter[str]] | None = None
        self._ids: LabelledIds | None = None

    @property
    def label_set(self) -> LabelSet:
        return self._labels

    @property
    def labelled(self) -> LabelledIds:
        """Whether an id has a label (callable); ``.raw`` holds the ids as bytes, for matching raw lines."""
        if self._ids is None:
            self._ids = LabelledIds(self._labels.labels)
        return self._ids

    def wants(self, raw: bytes) -> bool:
        """Cheap pre-filter: does the raw line carry an id that has a label?"""
        return any(m.decode("utf-8", "replace") in self._labels.labels for m in ID_PATTERN.findall(raw))

    def add_entries(self, group: str, position: tuple[int, ...], entries: Iterable[JoinEntry]) -> None:
        """Entries of one object, at ``position`` (e.g. plan and object index) followed by each entry's line."""
        for entry in entries:
            self._occurrences.append(((*position, entry.line), group, entry))
        self._settled = None

    def add_occurrences(self, occurrences: Iterable[Occurrence]) -> None:
        self._occurrences.extend(occurrences)
        self._settled = None

    def occurrences(self) -> list[Occurrence]:
        return list(self._occurrences)

    def add_record(self, group: str, record: CaptureRecord) -> None:
        """One parsed record, after every occurrence added so far."""
        self._arrive(group, entry_of_record(0, record))

    def add_line(self, group: str, raw: bytes, parse: Any) -> None:
        """Parse (with ``parse``, e.g. ``CaptureChunkParser.parse_record``) only lines with a labelled id."""
        if not self.wants(raw):
            return
        try:
            record = parse(raw)
        except CaptureFormatError:
            self._arrive(group, JoinEntry(line=0, malformed=MALFORMED_LABELLED_LINE))
            return
        self._arrive(group, entry_of_record(0, record))

    def _arrive(self, group: str, entry: JoinEntry) -> None:
        self._arrivals += 1
        self.add_entries(group, (1 << 62, self._arrivals), [entry])

    def _settle(self) -> tuple[dict[str, _Pairs], set[str], Counter[str]]:
        if self._settled is not None:
            return self._settled
        pairs: dict[str, _Pairs] = {}
        matched: set[str] = set()
        problems: Counter[str] = Counter()
        labels = self._labels.labels
        for _, group, entry in sorted(self._occurrences, key=lambda occurrence: occurrence[0]):
            _, event_id, inference_id, probabilities, rows, malformed = entry
            if malformed is not None:
                problems[malformed] += 1
                continue
            key = inference_id if inference_id in labels else event_id
            per_id = labels.get(key or "")
            if per_id is None or key is None:
                continue
            if key in matched:
                problems["prediction_seen_twice"] += 1
                continue
            matched.add(key)
            if not probabilities:
                problems["prediction_without_score"] += 1
                continue
            group_pairs = pairs.setdefault(group, _Pairs())
            for row, label in per_id.items():
                if row is None and rows != 1:
                    problems["label_without_row_for_multi_row_request"] += 1
                    continue
                position = 0 if row is None else row
                if position >= len(probabilities):
                    problems["label_row_out_of_range"] += 1
                    continue
                group_pairs.labels.append(label)
                group_pairs.probabilities.append(probabilities[position])
        self._settled = (pairs, matched, problems)
        return self._settled

    @property
    def problems(self) -> Counter[str]:
        return self._settle()[2]

    def pairs(self, group: str) -> tuple[list[float], list[Any]]:
        """(labels, predictions) joined so far for one group (the A/B report's input): per row the label and what
        the kind's metrics take (a score, class probabilities or a value)."""
        found = self._settle()[0].get(group, _Pairs())
        return list(found.labels), list(found.probabilities)

    @property
    def unmatched_labels(self) -> int:
        matched = self._settle()[1]
        return sum(len(rows) for key, rows in self._labels.labels.items() if key not in matched)

    def report(self, group: str, *, registered: Mapping[str, float] | None, metric: str, margin: float,
               min_rows: int) -> dict[str, Any]:
        """Quality of one group against its registered metrics; ``degraded`` needs ``min_rows`` labels."""
        pairs = self._settle()[0].get(group, _Pairs())
        kind = self._labels.problem_type
        names = TYPES[kind].quality_metrics
        observed: dict[str, float | None] | None = None
        bounds: dict[str, float | None] | None = None
        if pairs.labels:
            computed = quality_metrics(kind, pairs.labels, pairs.probabilities)
            observed = {name: _finite(computed[name]) for name in names}
            bounds = {name: _finite(value) for name, (_, value) in
                      quality_bounds(kind, pairs.labels, pairs.probabilities).items()}
        registered_value = _finite(registered.get(metric)) if registered else None
        observed_value = observed.get(metric) if observed else None
        # A drop is a change in the worse direction of the metric, as a fraction of the registered value for a
        # metric in the target's units (mlsettings.problem_types).
        spec = gate_metric(metric)[1]
        sign = 1.0 if spec.better == HIGHER else -1.0
        drop = (sign * (registered_value - observed_value)
                if registered_value is not None and observed_value is not None else None)
        if drop is not None and spec.relative_drop and registered_value:
            drop /= abs(registered_value)
        enough = len(pairs.labels) >= min_rows
        return {
            "labelled_rows": len(pairs.labels),
            "metrics": observed,
            "bounds_95": bounds,
            "registered": {name: _finite(registered.get(name)) for name in names} if registered else None,
            "metric": metric,
            "drop": drop,
            "drop_relative": gate_metric(metric)[1].relative_drop,
            "margin": margin,
            "enough_labels": enough,
            "degraded": bool(enough and drop is not None and drop > margin),
        }

    def groups(self) -> list[str]:
        return sorted(self._settle()[0])


def registered_quality(document: Any) -> dict[str, float]:
    """``{name: value}`` from SageMaker's model-quality JSON, from the section of whichever kind of model wrote it
    (``binary_classification_metrics``, ``multiclass_classification_metrics``, ``regression_metrics``)."""
    if not isinstance(document, Mapping):
        raise ValueError("the model-quality document is not a JSON object")
    sections = [kind.report_section for kind in TYPES.values()]
    metrics = next((document[section] for section in sections if isinstance(document.get(section), Mapping)), None)
    if not isinstance(metrics, Mapping):
        raise ValueError(f"the model-quality document has none of the objects {sections}")
    values: dict[str, float] = {}
    for name, item in metrics.items():
        if isinstance(item, Mapping) and isinstance(item.get("value"), int | float) \
                and not isinstance(item.get("value"), bool) and math.isfinite(item["value"]):
            values[str(name)] = float(item["value"])
    return values


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
