"""Each kind of model served by the XGBoost image's real toolkit (issue 25): a multiclass model (wine) and a
regression model (diabetes) trained by the local run on their bundled data, unpacked into /opt/ml/model as
SageMaker does, started with the Environment the Register step gives every model, and asked for CSV and JSON.
Their answers have their kind's shape (mlcore.outputs) and pass the deployer's golden check; the binary model is
the rest of this tier (test_serving_contract.py, from the synthesized pipeline).
"""

from __future__ import annotations

import csv
import json
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from mlcore.outputs import output_for, parse_csv_answers, parse_json_answers
from mlplatform.serving.golden_check import check_answer, parse_golden
from mlplatform.serving.transform_job import BatchSettings, transform_request
from mlsettings.schema import DataSchema
from pipelines.datasets import REPO_SCHEMAS, write_bundled_csv
from pipelines.definition import DEFAULT_ACCEPT, OFFLINE_CODE_INSTALL, SERVING_CODE_DIR, SERVING_PROGRAM
from pipelines.local_run import run_local
from tests.contract.container import Container
from tests.contract.local_pipeline import HttpAnswer, serve

CSV, JSON = "text/csv", "application/json"
# The model Environment of pipelines.definition.model_package_request (what every endpoint's model gets).
_JOB = transform_request(name="contract", model_name="m", input_uri="s3://capture/batch/input/rows.csv",
                         settings=BatchSettings(endpoint_name="e", capture_bucket="capture",
                                                instance_type="ml.m5.xlarge"),
                         now=datetime(2026, 12, 1, tzinfo=UTC), model_version="1")
transform = {"ContentType": _JOB["TransformInput"]["ContentType"], "Accept": _JOB["TransformOutput"]["Accept"]}
ENVIRONMENT = {"SAGEMAKER_PROGRAM": SERVING_PROGRAM, "SAGEMAKER_SUBMIT_DIRECTORY": SERVING_CODE_DIR,
               "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": DEFAULT_ACCEPT, "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
               **OFFLINE_CODE_INSTALL}


@dataclass
class ServedKind:
    schema: DataSchema
    golden: dict[str, object]
    answers: dict[str, HttpAnswer]
    batch_body: str


@pytest.fixture(scope="module", params=["wine", "diabetes"])
def served_kind(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ServedKind:
    name = request.param
    workdir = tmp_path_factory.mktemp(f"kind-{name}")
    schema_path = REPO_SCHEMAS / f"{name}.json"
    gate = {"wine": ("accuracy", 0.5), "diabetes": ("rmse", 120.0)}[name]
    run = run_local(workdir / "run", schema_path=schema_path, data_csv=write_bundled_csv(name, workdir / "data.csv"),
                    hyperparameters={"num_round": 30, "device": "cpu"}, quality_metric=gate[0], threshold=gate[1],
                    evaluation_options={"single_row_requests": 5, "batch_repeats": 1, "bootstrap_resamples": 10})
    assert run.succeeded, run.failure
    container = Container(workdir / "serve")
    model_dir = container.path("/opt/ml/model")
    model_dir.mkdir(parents=True)
    with tarfile.open(run.paths["model_artifact"], "r:gz") as tar:
        tar.extractall(model_dir, filter="data")
    golden = json.loads(run.paths["golden"].read_text())
    batch = {case["content_type"]: case["body"] for case in golden["cases"] if case["name"].startswith("batch_")}
    requests = [(f"golden:{case['name']}", case["content_type"], case["accept"], case["body"])
                for case in golden["cases"]]
    requests += [(f"{content_type}->{accept}", content_type, accept, body) for content_type, body in batch.items()
                 for accept in (CSV, JSON)]
    # Batch transform as lambdas/batch_scoring asks for it: header-less CSV rows in, CSV out, line by line.
    rows = next((workdir / "run").rglob("test_raw.csv")).read_text().splitlines()[1:]  # header, label last
    requests.append(("batch", transform["ContentType"], transform["Accept"], "\n".join(row.rsplit(",", 1)[0]
                                                                                        for row in rows) + "\n"))
    answers = serve(container, ENVIRONMENT, [("GET", "/ping", {}, b"")] + [
        ("POST", "/invocations", {"Content-Type": content_type, "Accept": accept}, body.encode())
        for _, content_type, accept, body in requests])
    assert answers[0].status == 200
    return ServedKind(schema=DataSchema.load(schema_path), golden=golden,
                      answers={name: answer for (name, *_), answer in zip(requests, answers[1:], strict=True)},
                      batch_body=requests[-1][3])


def test_every_golden_case_passes_the_deployers_check(served_kind: ServedKind) -> None:
    golden = parse_golden(served_kind.golden)
    assert golden.label == served_kind.schema.label
    for case in golden.cases:
        answer = served_kind.answers[f"golden:{case.name}"]
        result = check_answer(case, body=answer.body.decode(), content_type=answer.content_type,
                              tolerance=golden.tolerance, label=golden.label)
        assert result.passed, f"{case.name}: {answer.status} {answer.content_type}: {result.reasons}"


def test_csv_and_json_answers_have_the_kinds_shape(served_kind: ServedKind) -> None:
    label = served_kind.schema.label
    output = output_for(label)
    for content_type in (CSV, JSON):
        as_csv = served_kind.answers[f"{content_type}->{CSV}"]
        as_json = served_kind.answers[f"{content_type}->{JSON}"]
        assert (as_csv.status, as_csv.content_type, as_json.status, as_json.content_type) == (200, CSV, 200, JSON)
        csv_answers = parse_csv_answers(as_csv.body.decode(), label)
        document = json.loads(as_json.body)
        json_answers = parse_json_answers(document["predictions"], label)
        assert document["malformed"] == 0 and len(csv_answers) == len(json_answers) > 0
        for from_csv, from_json in zip(csv_answers, json_answers, strict=True):
            assert output.problem(from_json, label) is None
            assert output.difference(from_csv, from_json) == 0.0  # one model, one answer in either encoding


def test_batch_output_joins_to_its_inputs_in_the_kinds_columns(served_kind: ServedKind) -> None:
    """JoinSource=Input appends each output line to its input line with a comma: the joined line is the row's
    features followed by the answer's columns (1 for a score or a value, 1 + k for a label and k probabilities)."""
    label = served_kind.schema.label
    answer = served_kind.answers["batch"]
    assert (answer.status, answer.content_type) == (200, CSV)
    inputs, outputs = served_kind.batch_body.splitlines(), answer.body.decode().splitlines()
    assert len(inputs) == len(outputs) > 0
    width = len(served_kind.schema.feature_names)
    answers = parse_csv_answers(answer.body.decode(), label)
    for row, line, parsed in zip(inputs, outputs, answers, strict=True):
        joined = next(csv.reader([f"{row},{line}"]))
        assert len(joined) == width + 1 + len(label.classes)
        assert output_for(label).problem(parsed, label) is None
