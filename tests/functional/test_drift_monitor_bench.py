"""The drift benchmark runs end to end on a small window (speed is measured in bench/, never asserted)."""

from __future__ import annotations

import json

import pytest

from bench import bench_drift


def test_bench_smoke_run_reports_every_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    status = bench_drift.main(["--rows", "2000", "--no-evidently"])

    results = json.loads(capsys.readouterr().out)
    assert status == 0
    assert results["ours"]["rows"] == results["parse"]["rows"] == results["exact_parse"]["rows"] == 2000
    assert results["ours"]["malformed"] == 0
    # the generator shifts n03, n07, n11 and brings an unseen category into c3
    assert results["ours"]["drifted_features"] == ["c3", "n03", "n07", "n11"]
    assert results["ours"]["emf_documents"] == 1 + 25
    assert results["ours"]["peak_mb"] > 0
