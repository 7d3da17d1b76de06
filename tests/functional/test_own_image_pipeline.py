"""An own image's model through the platform's steps (training.code.kind image, issue #26): the image's real train
and serve programs (examples/byoc, in the conformance check's namespaces) answer the score rows; Evaluate and Baseline
judge those answers; the golden payloads are what its serve answers again, kept running (ServingSandbox); a serve
that breaks the row contract fails the run in one line; the deployer finds the fallback beside the report."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlcore.outputs import parse_csv_answers
from mlops.conformance_inputs import train_step
from mlplatform.conformance import byoc_check
from mlplatform.conformance.byoc_check import ServingSandbox
from mlplatform.serving.deployment_actions import read_fallback
from mlsettings.schema import DataSchema
from mlsettings.training_code import IMAGE, TRAINING_KIND_KEY
from mlsettings.vocabulary import EVALUATION_FILE, FALLBACK_FILE, SCORE_FILES, TRANSFORM_OUTPUT_SUFFIX
from pipelines.local_run import LocalRunResult, TeamCode, run_local
from pipelines.steps.evaluate import AnswersError, read_answers

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "byoc"
SCHEMA = REPO / "pipelines/schemas/breast_cancer.json"
_REASON = byoc_check.sandbox_available()
needs_sandbox = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


def _run(workdir: Path, image: Path = EXAMPLE) -> LocalRunResult:
    schema = DataSchema.load(SCHEMA)
    return run_local(workdir, schema_path=SCHEMA, data_csv=REPO / "pipelines/data/breast_cancer.csv",
                     hyperparameters=train_step(schema)["HyperParameters"], quality_metric="auc", threshold=0.9,
                     team_code=TeamCode(source_dir=image, entry_point="train.py", kind=IMAGE),
                     evaluation_options={"bootstrap_resamples": 30})


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> LocalRunResult:
    if _REASON is not None:
        pytest.skip(_REASON)
    return _run(tmp_path_factory.mktemp("own-image"))


@needs_sandbox
def test_the_example_image_trains_is_scored_evaluated_and_baselined(example_run: LocalRunResult) -> None:
    assert example_run.status == "succeeded", example_run.failure
    report = json.loads(example_run.paths["evaluation"].read_text())
    assert report["binary_classification_metrics"]["auc"]["value"] > 0.9
    assert "single_row_latency_ms_p99" not in report["binary_classification_metrics"]
    assert report["evaluation"]["latency"].startswith("not measured")
    # the platform's fallback model, fitted in Evaluate and written beside the report (the image's artifact has none)
    assert example_run.paths["fallback"] == example_run.paths["evaluation"].with_name(FALLBACK_FILE)
    assert json.loads(example_run.paths["fallback"].read_text())["metrics"] == report["evaluation"]["fallback"]
    assert not (example_run.paths["model_dir"] / FALLBACK_FILE).exists()
    baseline = json.loads(example_run.paths["baseline"].read_text())
    assert baseline["unscored_rows"] == 0 and "feature_importances" not in baseline  # uniform: use unknown


@needs_sandbox
def test_the_golden_payloads_are_what_its_serve_answers_again(example_run: LocalRunResult) -> None:
    """What the deployer's health check replays against the endpoint, replayed against the image's serve kept
    running on the registered artifact: every case answers within the golden tolerance."""
    golden = json.loads(example_run.paths["golden"].read_text())
    assert [case["name"] for case in golden["cases"]] == ["single_row_0", "single_row_1", "batch_csv"]
    label = DataSchema.load(SCHEMA).label
    sandbox = ServingSandbox(EXAMPLE, example_run.paths["model_artifact"])
    try:
        for case in golden["cases"]:
            answer = sandbox.invoke(case["body"].encode(), case["content_type"], case["accept"])
            assert answer["status"] == 200
            served = parse_csv_answers(answer["body"], label)
            assert len(served) == len(case["expected"])
            assert all(abs(a - b) <= golden["tolerance"] for a, b in zip(served, case["expected"], strict=True))
    finally:
        sandbox.close()


@needs_sandbox
def test_a_serve_that_answers_fewer_rows_fails_the_run_in_one_line(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated"
    shutil.copytree(EXAMPLE, truncated)
    (truncated / "serve").write_text(textwrap.dedent("""\
        #!/usr/bin/env python3
        import http.server
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers()
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200); self.send_header("Content-Type", "text/csv"); self.end_headers()
                self.wfile.write(b"0.5\\n")
        http.server.HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
    """), encoding="utf-8")
    (truncated / "serve").chmod(0o755)
    failed = _run(tmp_path / "failed", truncated)
    assert failed.status == "failed_training"
    assert failed.failure is not None and "\n" not in failed.failure
    assert failed.failure.startswith("own image: serve.invocations: POST /invocations (train, ")
    assert "answered 1 rows, not one per input row" in failed.failure


def test_batch_answers_are_joined_to_their_rows_and_a_file_that_is_not_is_refused(tmp_path: Path) -> None:
    """The Score step joins each answer to its input row (DataProcessing.JoinSource Input): the answer is what
    follows the row's values; an empty answer, one of another shape and a probability above 1 are malformed (None),
    never fatal; blank lines are not records; a file of other rows or another length is refused in one line."""
    label = DataSchema.load(SCHEMA).label
    rows = [["1", "2"], ["3", "4"], ["5", "6"], ["7", "8"], ["9", "10"]]
    name = f"{SCORE_FILES['test']}{TRANSFORM_OUTPUT_SUFFIX}"
    (tmp_path / name).write_text("1,2,0.25\n3,4,\n\n5,6,not a number\n7,8,1.7\n9,10,0.9\n", encoding="utf-8")
    assert read_answers(tmp_path, "test", label, rows) == [0.25, None, None, None, 0.9]
    with pytest.raises(AnswersError, match=r"holds 5 answers for 6 rows: the image's serve must answer one line"):
        read_answers(tmp_path, "test", label, [*rows, ["11", "12"]])
    with pytest.raises(AnswersError, match=r"line 2 is not joined to row 2 of test\.csv"):
        read_answers(tmp_path, "test", label, [rows[0], ["0", "0"], *rows[2:]])
    with pytest.raises(AnswersError, match=r"no batch answers train\.csv\.out"):
        read_answers(tmp_path, "train", label, rows)


@mock_aws
def test_the_deployer_reads_an_own_images_fallback_beside_its_evaluation_report() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="artifacts")
    fallback = {"format": "mlops-fallback/1", "kind": "logistic_regression"}
    s3.put_object(Bucket="artifacts", Key=f"pipelines/m/e1/Evaluate/evaluation/{FALLBACK_FILE}",
                  Body=json.dumps(fallback).encode())
    description: dict[str, Any] = {
        "InferenceSpecification": {"Containers": [{"Image": "x", "ModelDataUrl": "s3://artifacts/models/m.tar.gz"}]},
        "ModelMetrics": {"ModelQuality": {"Statistics": {
            "S3Uri": f"s3://artifacts/pipelines/m/e1/Evaluate/evaluation/{EVALUATION_FILE}"}}},
        "CustomerMetadataProperties": {TRAINING_KIND_KEY: IMAGE}}
    assert read_fallback(s3, description) == fallback
    description["ModelMetrics"] = {}
    with pytest.raises(ValueError, match=r"no ModelMetrics\.ModelQuality\.Statistics S3Uri"):
        read_fallback(s3, description)


def test_score_rows_are_the_raw_features_one_per_line_and_a_line_break_in_a_value_is_refused(tmp_path: Path) -> None:
    from pipelines.steps.preprocess import PreprocessError, write_score_rows

    schema = DataSchema.load(SCHEMA)
    names = list(schema.feature_names)
    raw = tmp_path / "test_raw.csv"
    raw.write_text(",".join([*names, schema.label.name]) + "\n" + ",".join(["1.5"] * len(names) + ["1"]) + "\n",
                   encoding="utf-8")
    write_score_rows(raw, tmp_path / "score" / "test.csv", schema)
    assert (tmp_path / "score" / "test.csv").read_text() == ",".join(["1.5"] * len(names)) + "\n"
    raw.write_text(",".join([*names, schema.label.name]) + "\n" + '"1\n2",' + ",".join(["1.5"] * (len(names) - 1))
                   + ",1\n", encoding="utf-8")
    with pytest.raises(PreprocessError, match=r"test_raw\.csv row 1 holds a value with a line break") as refused:
        write_score_rows(raw, tmp_path / "score" / "test.csv", schema)
    assert "\n" not in str(refused.value)
