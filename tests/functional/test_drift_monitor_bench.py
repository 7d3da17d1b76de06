"""The drift benchmark runs end to end on a small window (speed is measured in bench/, never asserted)."""

from __future__ import annotations

import json

import pytest

from bench import bench_drift


def test_bench_smoke_run_reports_every_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    status = bench_drift.main(["--rows", "2000", "--no-evidently", "--rounds", "1", "--json"])

    results = json.loads(capsys.readouterr().out)
    assert status == 0
    assert results["ours"]["rows"] == results["bare"]["rows"] == results["cli"]["rows"] == 2000
    assert results["partials"]["rows"] == results["ours_ground_truth"]["rows"] == 2000
    assert results["ours_ground_truth"]["labelled_rows"] == 200  # every 10th request is labelled
    assert results["ours"]["malformed"] == 0
    # the generator shifts n03, n07, n11 and brings an unseen category into c3
    assert results["ours"]["drifted_features"] == ["c3", "n03", "n07", "n11"]
    assert results["ours"]["emf_documents"] == 1 + 25
    assert results["ours"]["peak_mb"] > 0
    assert len(results["rounds"]) == 1 and set(results["rounds"][0]) == {"ours", "bare"}
    assert results["load_average"]["max"] >= results["load_average"]["min"] >= 0


def test_markdown_summary_states_each_target() -> None:
    results = {"rows": 1000, "features": 25, "workers": 2, "capture_bytes": 5_000_000,
               "rounds": [{"ours": {"seconds": 2.0}, "bare": {"seconds": 1.8}}],
               "ours": {"seconds": 2.0, "peak_mb": 300.0, "all_seconds": [2.0], "loads": [1.0]},
               "bare": {"seconds": 1.8, "peak_mb": 400.0, "all_seconds": [1.8], "loads": [1.2]},
               "evidently": {"seconds": 60.0, "peak_mb": 2000.0, "load": 1.1},
               "ours_vs_bare": {"median": 1.11, "min": 1.11, "max": 1.11}, "evidently_vs_ours": 30.0,
               "load_average": {"min": 1.0, "max": 1.2}}
    text = bench_drift.markdown(results).replace("≥ ", ">= ").replace("≤ ", "<= ")
    assert "| >= 25x faster than Evidently's DataDriftPreset | 30.0x | yes |" in text
    assert "| <= 1.2x the independent bare read, same process count | 1.11x (rounds 1.11-1.11) | yes |" in text
    assert "| peak memory < 512 MB | 300 MB | yes |" in text
    assert "load average 1.0-1.2" in text
