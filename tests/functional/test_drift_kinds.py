"""The drift engine on a multiclass and a regression model's captured traffic (issue 25): the baseline step's
prediction (and, for multiclass, confidence) distributions from each kind's answers, and a window whose answers
shifted trips the prediction signal while a window like the training data does not; the state survives the
partial-results round trip."""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import pytest

from mlcore.drift.baseline import build_baseline
from mlcore.drift.run import LineSource, ObjectCounter
from mlcore.drift.statistics import DriftAccumulator, DriftThresholds
from mlcore.outputs import output_for
from mlsettings.schema import DataSchema
from pipelines.datasets import REPO_SCHEMAS

THRESHOLDS = DriftThresholds(min_rows=50)


def _line(row: list[float], answer: str, n: int) -> str:
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                          "data": ",".join(repr(float(v)) for v in row), "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": answer, "encoding": "CSV"}},
        "eventMetadata": {"eventId": f"e{n}", "inferenceTime": "2026-12-01T00:00:00Z"}, "eventVersion": "0"})


def _answers(kind: str, rng: np.random.Generator, n: int, shifted: bool) -> list[object]:
    if kind == "wine":
        mix = [0.2, 0.2, 0.6] if shifted else [0.33, 0.4, 0.27]
        labels = rng.choice(3, size=n, p=mix)
        return [{"label": int(c), "probabilities": [0.8 if i == c else 0.1 for i in range(3)]} for c in labels]
    return [float(v) for v in rng.normal(210.0 if shifted else 150.0, 40.0, n).clip(0, 400)]


def _source(schema: DataSchema, answers: list[object], rows: np.ndarray) -> LineSource:
    output = output_for(schema.label)
    lines = [_line(list(row), output.csv_line(a), i) for i, (row, a) in enumerate(zip(rows, answers, strict=True))]

    def open_lines() -> Iterable[bytes]:
        return iter(line.encode() for line in lines)
    return LineSource(name="capture.jsonl", kind="endpoint_capture", open=open_lines)


@pytest.mark.parametrize("name", ["wine", "diabetes"])
def test_a_shift_in_the_kinds_answers_trips_the_prediction_signal(name: str) -> None:
    schema = DataSchema.load(REPO_SCHEMAS / f"{name}.json")
    output = output_for(schema.label)
    rng = np.random.default_rng(8)
    mid = np.asarray([((f.min or 0.0) + (f.max or 0.0)) / 2 for f in schema.features])
    train_rows = mid + rng.normal(0, 0.01, (600, mid.size))
    train_answers = _answers(name, rng, 600, shifted=False)
    confidences = [c for c in (output.confidence(a) for a in train_answers) if c is not None]
    baseline = build_baseline({f: train_rows[:, i] for i, f in enumerate(schema.feature_names)}, schema,
                              predictions=[output.drift_value(a, schema.label) for a in train_answers],
                              confidences=confidences)
    assert (baseline["confidence"] is None) is (name == "diabetes")

    reports = {}
    for shifted in (False, True):
        counter = ObjectCounter(baseline, THRESHOLDS)
        counter.add(_source(schema, _answers(name, rng, 300, shifted), train_rows[:300]))
        # The partial-results round trip: the state of one object, added into a fresh accumulator.
        merged = DriftAccumulator(baseline, THRESHOLDS)
        merged.add_state(json.loads(json.dumps(counter.accumulator.state())))
        reports[shifted] = merged.report().to_dict()
        assert reports[shifted]["malformed"] == 0 and reports[shifted]["rows"] == 300
        assert reports[shifted]["probabilities"] == 300
    assert reports[False]["prediction"]["drifted"] is False
    assert reports[True]["prediction"]["drifted"] is True
