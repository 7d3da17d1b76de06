"""The drift benchmark runs end to end on a small window (speed is measured in bench/, never asserted)."""

from __future__ import annotations

import json

import pytest

from bench import bench_drift


def test_bench_smoke_run_reports_every_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    status = bench_drift.main(["--rows", "2000", "--no-evidently", "--json"])

    results = json.loads(capsys.readouterr().out)
    assert status == 0
    assert results["ours"]["rows"] == results["parse"]["rows"] == results["exact_parse"]["rows"] == 2000
    assert results["ours"]["malformed"] == 0
    # the generator shifts n03, n07, n11 and brings an unseen category into c3
    assert results["ours"]["drifted_features"] == ["c3", "n03", "n07", "n11"]
    assert results["ours"]["emf_documents"] == 1 + 25
    assert results["ours"]["peak_mb"] > 0


def test_markdown_summary_states_each_target() -> None:
    results = {"rows": 1000, "features": 25, "ours": {"seconds": 2.0, "peak_mb": 90.0, "workers": 2},
               "parse": {"seconds": 4.0, "peak_mb": 80.0}, "evidently": {"seconds": 30.0, "peak_mb": 2000.0},
               "ours_vs_parse": 0.5, "evidently_vs_ours": 15.0}
    text = bench_drift.markdown(results)
    assert "| >= 10x faster than Evidently (aim 20x) | 15.0x | yes |" in text.replace("≥ ", ">= ")
    assert "| peak memory < 1 GB | 90 MB | yes |" in text
    assert "2 parsing process(es)" in text
