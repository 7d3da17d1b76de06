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


def test_data_that_breaks_the_schema_fails_the_gate_with_its_own_exit_code(
        baseline_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """GIVEN a window in which every row has a plan the schema does not declare WHEN --fail-on-drift THEN exit 4
    (data quality), not 0: bad data fails the gate whether or not the distributions drifted."""
    folder = tmp_path / "capture"
    folder.mkdir()
    rows = [[*r[:2], "platinum", *r[3:]] for r in kit.traffic_rows(200, seed=9)]
    (folder / "a.jsonl").write_text("\n".join(kit.csv_line([r], [0.4], event_id=str(i))
                                              for i, r in enumerate(rows)) + "\n")
    capsys.readouterr()
    status = cli.main(["drift", "--baseline", str(baseline_file), "--capture", str(folder), "--json",
                       "--fail-on-drift"])
    report = json.loads(capsys.readouterr().out)
    assert "plan" in report["data_quality_features"]
    assert status == 4


@pytest.mark.parametrize(("capture", "expected"), [
    ("s3://", "s3://: no bucket; allowed: s3://BUCKET/PREFIX"),
    ("s3://no-such-bucket/capture/", "s3://no-such-bucket/capture/: bucket 'no-such-bucket' does not exist")])
def test_an_s3_capture_without_a_bucket_is_one_line(baseline_file: Path, capsys: pytest.CaptureFixture[str],
                                                    capture: str, expected: str) -> None:
    with mock_aws():
        capsys.readouterr()
        status = cli.main(["drift", "--baseline", str(baseline_file), "--capture", capture])
    err = capsys.readouterr().err
    assert status == 2 and expected in err and err.count("\n") == 1


def test_baseline_refuses_the_label_as_probabilities_and_an_out_it_cannot_write(
        baseline_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, schema = tmp_path / "train.csv", tmp_path / "schema.json"
    (tmp_path / "a-file").write_text("x")
    capsys.readouterr()
    label = cli.main(["baseline", "--data", str(data), "--schema", str(schema), "--out", str(tmp_path / "b.json"),
                      "--probability-column", "churned"])
    assert label == 2 and "'churned' is the schema's label column" in capsys.readouterr().err
    under_a_file = cli.main(["baseline", "--data", str(data), "--schema", str(schema),
                             "--out", str(tmp_path / "a-file" / "b.json")])
    err = capsys.readouterr().err
    assert under_a_file == 2 and "cannot write" in err and err.count("\n") == 1
