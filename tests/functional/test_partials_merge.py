"""Merging per-object partial results gives the one-pass report bit for bit, in any order and any grouping, and
says what it did with late, duplicate, missing, stale and invalid partial results."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcore.drift.capture import build_capture_record
from mlcore.drift.exact_sum import BLOCK_VALUES
from mlcore.drift.ground_truth import LabelSet, QualityJoin
from mlcore.drift.partials import PartialError, labels_fingerprint, load_partial, merge_variant, object_partial
from mlcore.drift.run import LineSource, VariantPlan, analyse_variant, run_drift
from mlcore.drift.statistics import DriftAccumulator, DriftThresholds
from tests.functional import drift_monitor_testkit as kit

NOW = datetime(2025, 3, 2, 6, tzinfo=UTC)
BASELINE = kit.baseline_document()


def _lines(part: int, rows: int) -> list[bytes]:
    """Traffic of one object: single-row and multi-row requests, malformed lines, an unseen category."""
    data = kit.traffic_rows(rows, seed=part, shift_tenure=15.0 * (part % 2))
    scores = kit.scores(rows, seed=part)
    lines = []
    at = 0
    while at < rows:
        width = 1 + (at // 7) % 3 if part % 3 == 0 else 1
        chunk = data[at:at + width]
        lines.append(kit.csv_line(chunk, scores[at:at + width], event_id=f"e{part}-{at}",
                                  inference_id=f"i{part}-{at}").encode())
        at += width
    lines.insert(len(lines) // 2, b"not json")
    lines.append(kit.csv_line([["9", "x"]], [0.5], event_id=f"short{part}").encode())
    unseen = list(data[0])
    unseen[kit.NAMES.index("plan")] = f"unseen-{part % 4}"
    lines.append(kit.csv_line([unseen], [0.25], event_id=f"u{part}").encode())
    return lines


def _log_lines(rows: int) -> list[bytes]:
    data = kit.traffic_rows(rows, seed=99)
    return [json.dumps(build_capture_record(
        rows=[row], probabilities=[0.3], inference_time=NOW - timedelta(hours=2), event_id=f"log{i}",
        custom={"source": "fallback_model" if i % 2 else "endpoint", "model_version": "1"})).encode()
        for i, row in enumerate(data)]


def _objects() -> list[LineSource]:
    """Objects both as line sources and as raw bytes; one larger than a canonical sum block."""
    sources = []
    sizes = [40, 120, BLOCK_VALUES + 300, 60, 90, 30]
    for part, rows in enumerate(sizes):
        lines = _lines(part, rows)
        if part % 2:
            blob = b"\n".join(lines) + b"\n"
            sources.append(LineSource(name=f"s3://b/k{part}", kind="endpoint_capture", open=lambda: iter(()),
                                      open_blocks=lambda blob=blob: iter([blob[:7777], blob[7777:]]),
                                      size=len(blob), etag=f"etag{part}"))
        else:
            sources.append(LineSource(name=f"s3://b/k{part}", kind="endpoint_capture",
                                      open=lambda lines=lines: iter(lines), size=sum(map(len, lines))))
    log = _log_lines(50)
    sources.append(LineSource(name="s3://b/log", kind="prediction_log", open=lambda: iter(log)))
    return sources


OBJECTS = _objects()


def _plan() -> VariantPlan:
    return VariantPlan(variant="Champion", sources=list(OBJECTS), baseline=BASELINE)


def _labels() -> LabelSet:
    labels = LabelSet()
    for part in (0, 2, 3):
        for at in range(0, 40, 3):
            labels.add(f"i{part}-{at}", None, at % 2)
    labels.add("e1-5", None, 1)
    labels.add("log1", None, 0)
    return labels


@pytest.fixture(scope="module")
def partial_docs() -> list[dict[str, Any]]:
    return [object_partial(source, variant="Champion", baseline=BASELINE, now=NOW) for source in OBJECTS]


def _canonical(entry: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in entry.items() if k != "partials"}, sort_keys=True, allow_nan=False)


@pytest.fixture(scope="module")
def one_pass() -> str:
    return _canonical(analyse_variant(_plan(), thresholds=DriftThresholds(), chunk_lines=333))


@given(order=st.randoms(use_true_random=False), duplicates=st.integers(0, 3))
@settings(max_examples=8, deadline=None)
def test_merged_partials_equal_the_one_pass_report_in_any_order(
        partial_docs: list[dict[str, Any]], one_pass: str, order: random.Random, duplicates: int) -> None:
    docs = [*partial_docs, *partial_docs[:duplicates]]
    order.shuffle(docs)
    merged = merge_variant(_plan(), docs, thresholds=DriftThresholds(), now=NOW)
    assert _canonical(merged) == one_pass
    assert merged["partials"]["merged"] == len(OBJECTS)
    assert merged["partials"]["duplicates"] == duplicates


@given(cuts=st.lists(st.integers(0, len(OBJECTS)), max_size=4), order=st.randoms(use_true_random=False))
@settings(max_examples=8, deadline=None)
def test_states_merge_associatively_in_any_grouping(partial_docs: list[dict[str, Any]], cuts: list[int],
                                                     order: random.Random) -> None:
    """Partial states grouped at random (a merge tree of depth two), each group merged on its own, then the
    groups merged in shuffled order: the report equals merging every object's state in plan order."""
    flat = DriftAccumulator(BASELINE)
    for doc in partial_docs:
        flat.add_state(doc["state"])
    states = [doc["state"] for doc in partial_docs]
    order.shuffle(states)
    bounds = sorted({0, len(states), *cuts})
    groups = []
    for start, end in itertools.pairwise(bounds):
        group = DriftAccumulator(BASELINE)
        for state in states[start:end]:
            group.add_state(json.loads(json.dumps(state)))  # through JSON, as stored
        groups.append(group.state())
    order.shuffle(groups)
    tree = DriftAccumulator(BASELINE)
    for state in groups:
        tree.add_state(state)
    assert json.dumps(tree.report().to_dict(), sort_keys=True) == json.dumps(flat.report().to_dict(), sort_keys=True)


def test_workers_give_the_one_process_report_bit_for_bit(one_pass: str) -> None:
    for workers in (2, 3):
        assert _canonical(analyse_variant(_plan(), thresholds=DriftThresholds(), workers=workers)) == one_pass


def test_missing_late_stale_and_invalid_partials_are_counted_inline_and_reported(
        partial_docs: list[dict[str, Any]], one_pass: str) -> None:
    plan = _plan()
    # k0 missing; k1 landed 5 minutes ago without a partial (late); k2's partial is for other content;
    # k3's is garbage; k4's was counted on another baseline; an orphan for an object not in the window.
    plan.sources[1] = LineSource(**{**plan.sources[1].__dict__, "modified": NOW - timedelta(minutes=5)})
    stale = json.loads(json.dumps(partial_docs[2]))
    stale["object"]["size"] += 1
    invalid = {"format": "mlops-drift-partial/1", "object": {"name": "s3://b/k3", "kind": "endpoint_capture"}}
    other = json.loads(json.dumps(partial_docs[4]))
    other["baseline"] = "0" * 64
    orphan = json.loads(json.dumps(partial_docs[5]))
    orphan["object"]["name"] = "s3://b/elsewhere"
    docs = [stale, invalid, other, orphan, partial_docs[5], partial_docs[6]]

    merged = merge_variant(plan, docs, thresholds=DriftThresholds(), now=NOW)

    assert _canonical(merged) == one_pass  # everything counted, from the objects where needed
    book = merged["partials"]
    assert (book["merged"], book["missing"], book["late"], book["stale"], book["invalid"]) == (2, 1, 1, 2, 1)
    assert book["orphaned"] == 1
    assert book["examples"]["late"] == ["s3://b/k1"] and book["examples"]["missing"] == ["s3://b/k0"]
    assert book["examples"]["stale"] == ["s3://b/k2", "s3://b/k4"]


def test_objects_beyond_the_inline_budget_are_named_not_analysed(partial_docs: list[dict[str, Any]]) -> None:
    merged = merge_variant(_plan(), partial_docs[1:], thresholds=DriftThresholds(), now=NOW, inline_limit_bytes=10)
    assert merged["partials"]["not_analysed"] == 1
    assert merged["partials"]["examples"]["not_analysed"] == ["s3://b/k0"]
    assert merged["drift"]["rows"] < json.loads(_canonical(analyse_variant(_plan(), thresholds=DriftThresholds())))[
        "drift"]["rows"]


def test_ground_truth_joins_in_partials_merge_to_the_one_pass_quality() -> None:
    thresholds = DriftThresholds()
    one = run_drift([_plan()], endpoint="e", window=None, thresholds=thresholds, quality=QualityJoin(_labels()),
                    now=NOW)
    labels = _labels()
    fingerprint = labels_fingerprint(labels.labels)
    docs = [object_partial(s, variant="Champion", baseline=BASELINE, quality=QualityJoin(labels),
                           labels=fingerprint, now=NOW) for s in OBJECTS]
    random.Random(4).shuffle(docs)
    join = QualityJoin(labels)
    entry = merge_variant(_plan(), docs[:-2], thresholds=thresholds, quality=join, labels=fingerprint, now=NOW)
    assert one["quality"]["variants"]["Champion"]["labelled_rows"] > 20
    assert one["quality"]["join_problems"]  # a multi-row request without a row: the same problems either way
    from mlcore.drift.run import assemble_run_report
    merged = assemble_run_report({"Champion": entry}, [_plan()], endpoint="e", window=None, thresholds=thresholds,
                                 quality=join, now=NOW)
    assert json.dumps(merged["quality"], sort_keys=True) == json.dumps(one["quality"], sort_keys=True)


def test_a_partial_result_document_is_checked() -> None:
    with pytest.raises(PartialError, match="format"):
        load_partial({"format": "other"})
    with pytest.raises(PartialError, match="block_values"):
        load_partial({"format": "mlops-drift-partial/1", "block_values": 7})
