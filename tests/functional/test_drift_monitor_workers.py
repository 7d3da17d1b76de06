"""Counting a window in several forked processes gives exactly the one-process report."""

from __future__ import annotations

import math
from typing import Any

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


def _same(left: Any, right: Any, path: str = "") -> list[str]:
    """Exact equality, but for float sums, whose order differs across processes (1e-12 relative)."""
    if isinstance(left, dict) and isinstance(right, dict):
        keys = set(left) | set(right)
        return [d for k in sorted(keys, key=str) for d in _same(left.get(k), right.get(k), f"{path}.{k}")]
    if isinstance(left, float) and isinstance(right, float):
        return [] if math.isclose(left, right, rel_tol=1e-12, abs_tol=1e-15) else [f"{path}: {left} != {right}"]
    return [] if left == right else [f"{path}: {left!r} != {right!r}"]


def test_two_and_three_workers_match_one() -> None:
    one = analyse_variant(_plan(), thresholds=DriftThresholds(), workers=1)
    assert one["drift"]["rows"] == 750 and one["drift"]["malformed"] == 5
    for workers in (2, 3):
        assert _same(analyse_variant(_plan(), thresholds=DriftThresholds(), workers=workers), one) == []
