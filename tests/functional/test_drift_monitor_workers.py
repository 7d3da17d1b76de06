"""Counting a window in several forked processes gives exactly the one-process report, bit for bit."""

from __future__ import annotations

from mlcore.drift.run import LineSource, VariantPlan, analyse_variant
from mlcore.drift.statistics import DriftThresholds
from tests.functional import drift_monitor_testkit as kit


def _plan() -> VariantPlan:
    sources = []
    for part in range(5):
        rows = kit.traffic_rows(150, seed=part, shift_tenure=20.0 if part % 2 else 0.0)
        probabilities = kit.scores(150, seed=part)
        lines = [kit.csv_line([row], [p], event_id=f"e{part}-{i}").encode()
                 for i, (row, p) in enumerate(zip(rows, probabilities, strict=True))]
        lines.append(b"not json at all")
        sources.append(LineSource(name=f"part-{part}", kind="endpoint_capture", open=lambda lines=lines: iter(lines)))
    return VariantPlan(variant="Champion", sources=sources, baseline=kit.baseline_document())


def test_two_and_three_workers_match_one() -> None:
    one = analyse_variant(_plan(), thresholds=DriftThresholds(), workers=1)
    assert one["drift"]["rows"] == 750 and one["drift"]["malformed"] == 5
    for workers in (2, 3):
        # Bit for bit: every object is counted whole by one process and means are exact sums (exact_sum).
        assert analyse_variant(_plan(), thresholds=DriftThresholds(), workers=workers) == one
