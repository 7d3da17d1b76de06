"""`mlops baseline` / `mlops drift` on local files and an s3:// prefix (moto), and the Processing entry
point on the same files."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlops import cli
from pipelines.datasets import synthetic_schema, write_synthetic_csv
from pipelines.processing import drift_entry
from tests.functional import drift_monitor_testkit as kit


@pytest.fixture
def mlops(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("mlops.commands.drift_cmds",))
    return cli.main


@pytest.fixture
def baseline_file(tmp_path: Path, mlops: object) -> Path:
    data = write_synthetic_csv(tmp_path / "train.csv", rows=1500)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(synthetic_schema()))
    out = tmp_path / "baseline.json"
    assert cli.main(["baseline", "--data", str(data), "--schema", str(schema), "--out", str(out)]) == 0
    return out


def write_capture(folder: Path, *, shifted: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = kit.traffic_rows(400, seed=9, shift_tenure=50 if shifted else 0)
    lines = [kit.csv_line([r], [0.4], event_id=str(i)) for i, r in enumerate(rows[:300])]
    lines += [kit.base64_line([r], [0.4], event_id=f"b{i}") for i, r in enumerate(rows[300:])]
    (folder / "2025" / "03").mkdir(parents=True, exist_ok=True)
    (folder / "2025" / "03" / "a.jsonl").write_text("\n".join(lines[:200]) + "\n")
    (folder / "b.jsonl").write_text("\n".join(lines[200:]) + "\nnot json\n")


def test_baseline_matches_the_schema_and_rejects_a_wrong_schema(baseline_file: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(baseline_file.read_text())
    assert doc["format"] == "mlops-drift-baseline/1"
    assert doc["rows"] == 1500
    assert set(doc["features"]) == set(kit.NAMES)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**synthetic_schema(), "features": [{"name": "absent", "type": "numeric"}]}))

    status = cli.main(["baseline", "--data", str(tmp_path / "train.csv"), "--schema", str(other),
                       "--out", str(tmp_path / "x.json")])

    assert status == 2
    assert "lacks the schema's features ['absent']" in capsys.readouterr().err


def test_drift_on_a_local_folder_prints_the_report_json(baseline_file: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    write_capture(tmp_path / "capture", shifted=True)
    capsys.readouterr()

    status = cli.main(["drift", "--baseline", str(baseline_file), "--capture", str(tmp_path / "capture"),
                       "--json", "--fail-on-drift", "--html", str(tmp_path / "report.html")])

    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["rows"] == 400
    assert report["malformed"] == 1
    assert report["objects"] == 2
    tenure = report["features"]["tenure_months"]
    assert {"psi", "js", "ks", "missing_rate", "drifted"} <= set(tenure)
    assert tenure["drifted"] is True
    assert report["features"]["plan"]["drifted"] is False
    assert report["drifted_share"] == 0.2
    assert "prediction" in report
    assert "tenure_months" in (tmp_path / "report.html").read_text()


def test_drift_reads_an_s3_prefix(baseline_file: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    write_capture(tmp_path / "capture", shifted=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=kit.REGION)
        s3.create_bucket(Bucket="capture", CreateBucketConfiguration={"LocationConstraint": kit.REGION})
        for path in (tmp_path / "capture").rglob("*.jsonl"):
            s3.put_object(Bucket="capture", Key=f"data-capture/ep/Champion/{path.name}", Body=path.read_bytes())
        capsys.readouterr()

        status = cli.main(["drift", "--baseline", str(baseline_file), "--capture",
                           "s3://capture/data-capture/ep/Champion/", "--json"])
        missing = cli.main(["drift", "--baseline", str(baseline_file), "--capture", "s3://capture/nothing/"])

    out = capsys.readouterr()
    report = json.loads(out.out.split("\n}\n")[0] + "\n}")
    assert status == 0
    assert report["rows"] == 400
    assert report["drifted"] is False
    assert missing == 2
    assert "no objects under this prefix" in out.err


def test_drift_with_a_bad_baseline_is_an_operator_error(tmp_path: Path, mlops: object,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")

    assert cli.main(["drift", "--baseline", str(bad), "--capture", str(tmp_path)]) == 2
    assert "--baseline: baseline.format is None" in capsys.readouterr().err


def test_processing_entry_writes_the_same_report_as_the_cli(baseline_file: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_capture(tmp_path / "capture", shifted=True)
    cli.main(["drift", "--baseline", str(baseline_file), "--capture", str(tmp_path / "capture"), "--json"])
    from_cli = json.loads(capsys.readouterr().out)

    status = drift_entry.main(["--endpoint", "ep", "--baseline", str(baseline_file),
                               "--capture-dir", str(tmp_path / "capture"), "--out", str(tmp_path / "out")])

    assert status == 0
    run = json.loads((tmp_path / "out" / "drift_report.json").read_text())
    assert run["format"] == "mlops-drift-run/1"
    drift = run["variants"]["Champion"]["drift"]
    assert drift["features"] == from_cli["features"]
    assert run["drifted_variants"] == ["Champion"]
    assert (tmp_path / "out" / "Champion.html").is_file()
