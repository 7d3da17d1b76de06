"""The model the contract pipeline trained, served by the XGBoost image's toolkit with the model Environment the
Register step gives it: /ping, the golden payloads through the deployer's own golden check, every content type
and Accept, refusals, data capture read back by mlcore.drift.capture, and batch transform as our job requests it.

One model container answers every request of this module (started once: `serve` installs the code first).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlcore.drift.capture import parse_capture_line
from mlplatform.serving.golden_check import check_answer, parse_golden
from mlplatform.serving.transform_job import BatchSettings, transform_request
from mlsettings.schema import DataSchema
from pipelines.datasets import read_raw_csv
from pipelines.definition import OFFLINE_CODE_INSTALL
from pipelines.serving import inference
from testkit.moto_gaps import capture_record
from tests.contract.conftest import PipelineRun
from tests.contract.local_pipeline import HttpAnswer, JobFailedError, serve

CSV, JSON = "text/csv", "application/json"
ACCEPTS = (None, "*/*", CSV, JSON, "text/csv;q=0.5, application/json")


@dataclass(frozen=True)
class Exchange:
    name: str
    content_type: str | None
    accept: str | None
    body: bytes
    answer: HttpAnswer


@dataclass
class Served:
    run: PipelineRun
    environment: dict[str, str]
    ping: HttpAnswer
    exchanges: dict[str, Exchange]
    golden: dict[str, object]
    schema: DataSchema
    batch_request: dict[str, object]
    batch_lines: list[str]
    batch_answers: list[HttpAnswer]
    batch_sizes: list[int]


def _headers(content_type: str | None, accept: str | None) -> dict[str, str]:
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    return headers


def _mini_batches(lines: list[str], max_payload_mb: int, records_per_batch: int) -> list[list[str]]:
    """SplitType=Line + BatchStrategy=MultiRecord: consecutive records, as many as fit the payload limit
    (capped here at ``records_per_batch`` so that several requests are exercised)."""
    batches: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if batches[-1] and (len(batches[-1]) >= records_per_batch or size + len(line) + 1 > max_payload_mb << 20):
            batches.append([])
            size = 0
        batches[-1].append(line)
        size += len(line) + 1
    return batches


@pytest.fixture(scope="module")
def served(pipeline_run: PipelineRun) -> Served:
    pipeline = pipeline_run.pipeline
    baseline_dir = pipeline.outputs["Baseline"]["baseline"]
    golden = json.loads((baseline_dir / "golden_payloads.json").read_text())
    environment = pipeline.serving_environment()
    container = pipeline.served_model()
    schema = DataSchema.load(container.path("/opt/ml/model/schema.json"))

    requests: list[tuple[str, str | None, str | None, bytes]] = []
    for case in golden["cases"]:
        requests.append((f"golden:{case['name']}", case["content_type"], case["accept"], case["body"].encode()))
    by_type = {case["content_type"]: case["body"].encode() for case in golden["cases"]
               if case["name"].startswith("batch_")}
    for content_type, body in by_type.items():
        for accept in ACCEPTS:
            requests.append((f"matrix:{content_type}:{accept}", content_type, accept, body))
    requests += [("refuse:content-type", "application/x-parquet", CSV, by_type[CSV]),
                 ("refuse:no-content-type", None, CSV, by_type[CSV]),
                 ("refuse:accept", CSV, "text/html", by_type[CSV]),
                 ("refuse:bad-json", JSON, JSON, b"{not json")]

    # Batch transform, as lambdas/batch_scoring asks SageMaker to run it.
    settings = BatchSettings(endpoint_name="mlops-dev", capture_bucket="capture", instance_type="ml.m5.xlarge")
    job = transform_request(name="contract", model_name="m", input_uri="s3://capture/batch/input/rows.csv",
                            settings=settings, now=datetime(2026, 12, 1, tzinfo=UTC), model_version="1")
    test_raw = next(iter(pipeline.outputs["Preprocess"]["test_raw"].glob("*.csv")))
    frame = read_raw_csv(test_raw)[list(schema.feature_names)]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(frame.values.tolist())
    lines = buffer.getvalue().splitlines()
    batches = _mini_batches(lines, int(job["MaxPayloadInMB"]), records_per_batch=25)
    transform_input, transform_output = job["TransformInput"], job["TransformOutput"]
    for index, batch in enumerate(batches):
        requests.append((f"batch:{index}", transform_input["ContentType"], transform_output["Accept"],
                         ("\n".join(batch) + "\n").encode()))

    answers = serve(container, environment,
                    [("GET", "/ping", {}, b"")] +
                    [("POST", "/invocations", _headers(ct, accept), body) for _, ct, accept, body in requests])
    exchanges = {name: Exchange(name, ct, accept, body, answer)
                 for (name, ct, accept, body), answer in zip(requests, answers[1:], strict=True)}
    return Served(run=pipeline_run, environment=environment, ping=answers[0], exchanges=exchanges, golden=golden,
                  schema=schema, batch_request=job, batch_lines=lines,
                  batch_answers=[exchanges[f"batch:{i}"].answer for i in range(len(batches))],
                  batch_sizes=[len(b) for b in batches])


def test_the_container_answers_ping(served: Served) -> None:
    assert served.ping.status == 200


def test_every_golden_case_passes_the_deployers_golden_check(served: Served) -> None:
    golden = parse_golden(served.golden)
    for case in golden.cases:
        answer = served.exchanges[f"golden:{case.name}"].answer
        result = check_answer(case, body=answer.body.decode(), content_type=answer.content_type,
                              tolerance=golden.tolerance, label=golden.label)
        assert result.passed, f"{case.name}: {answer.status} {answer.content_type}: {result.reasons}"


@pytest.mark.parametrize("content_type", [CSV, JSON])
@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_answer_carries_exactly_the_negotiated_media_type(served: Served, content_type: str,
                                                             accept: str | None) -> None:
    answer = served.exchanges[f"matrix:{content_type}:{accept}"].answer
    # No Accept or */*: the toolkit substitutes SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, which the model sets to CSV.
    expected = {None: CSV, "*/*": CSV, CSV: CSV, JSON: JSON, "text/csv;q=0.5, application/json": JSON}[accept]
    assert (answer.status, answer.content_type) == (200, expected)
    assert served.environment["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] == CSV


# Without a Content-Type the toolkit reads the body as application/json (sagemaker_containers._worker.Request):
# a CSV body then answers 400, not 415.
@pytest.mark.parametrize(("name", "status"), [("refuse:content-type", 415), ("refuse:no-content-type", 400),
                                              ("refuse:accept", 406), ("refuse:bad-json", 400)])
def test_refusals_have_their_status_and_a_readable_reason(served: Served, name: str, status: int) -> None:
    answer = served.exchanges[name].answer
    assert answer.status == status and answer.content_type == JSON
    document = json.loads(answer.body)
    assert set(document) == {"error", "message"} and len(document["message"]) > 20


def test_captured_answers_read_back_without_a_rejection(served: Served) -> None:
    categorical = [i for i, f in enumerate(served.schema.features) if f.type == "categorical"]
    checked = 0
    for exchange in served.exchanges.values():
        if exchange.answer.status != 200:
            continue
        assert exchange.content_type is not None
        line = json.dumps(capture_record(request_body=exchange.body, request_content_type=exchange.content_type,
                                         response_body=exchange.answer.body,
                                         response_content_type=exchange.answer.content_type))
        record = parse_capture_line(line, n_features=len(served.schema.feature_names),
                                    categorical_columns=categorical, feature_names=served.schema.feature_names)
        assert len(record.probabilities) == len(record.rows) > 0, exchange.name
        # Both payloads are captured as text: their Content-Types are the ones CaptureContentTypeHeader lists.
        assert '"encoding": "BASE64"' not in line, exchange.name
        checked += 1
    assert checked >= 10


def test_batch_transform_answers_one_line_per_record_for_the_join(served: Served) -> None:
    job = served.batch_request
    assert (job["TransformInput"]["SplitType"], job["BatchStrategy"]) == ("Line", "MultiRecord")  # type: ignore[index]
    accept = job["TransformOutput"]["Accept"]  # type: ignore[index]
    assert len(served.batch_sizes) > 1
    joined: list[str] = []
    for size, answer, start in zip(served.batch_sizes, served.batch_answers,
                                   [sum(served.batch_sizes[:i]) for i in range(len(served.batch_sizes))],
                                   strict=True):
        assert (answer.status, answer.content_type) == (200, accept)
        outputs = answer.body.decode().splitlines()
        # JoinSource=Input pairs record i of the input with line i of the output: the counts must match.
        assert len(outputs) == size
        joined += [f"{row},{out}" for row, out in zip(served.batch_lines[start:start + size], outputs, strict=True)]
    assert len(joined) == len(served.batch_lines)
    assert all(0.0 <= float(line.rsplit(",", 1)[1]) <= 1.0 for line in joined)


def test_the_demo_double_answers_what_the_toolkit_answers(served: Served) -> None:
    """testkit/moto_gaps.ModelRuntime calls the handler's transform_fn in-process; here it must agree with
    the real toolkit on status, Content-Type and the values of the body."""
    model = inference.model_fn(Path(served.run.pipeline.workdir / "Serve" / "model"))
    for exchange in served.exchanges.values():
        accept = exchange.accept
        if not accept or accept == "*/*":  # the toolkit's substitutions, which the double copies
            accept = served.environment["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"]
        local = inference.transform_fn(model, exchange.body, exchange.content_type or JSON, accept)
        assert (local.status, local.content_type) == (exchange.answer.status, exchange.answer.content_type), \
            exchange.name
        if local.status == 200 and local.content_type == CSV:
            ours = [float(v) if v else None for v in local.body.decode().splitlines()]
            theirs = [float(v) if v else None for v in exchange.answer.body.decode().splitlines()]
            assert ours == pytest.approx(theirs, abs=1e-6), exchange.name


def test_a_model_without_the_offline_install_never_answers_ping(served: Served) -> None:
    """Negative control: the toolkit's install of the model code needs an index unless the model says otherwise."""
    container = served.run.pipeline.served_model("ServeWithoutOfflineInstall")
    environment = {k: v for k, v in served.environment.items() if k not in OFFLINE_CODE_INSTALL}
    with pytest.raises(JobFailedError, match="InstallModuleError"):
        serve(container, environment, [("GET", "/ping", {}, b"")])
