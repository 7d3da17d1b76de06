"""The inference handler wired from its environment against moto (DynamoDB, S3, Firehose), with the
SageMaker runtime replaced by a stubbed endpoint (moto's never fails)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.inference import handler as handler_module
from lambdas.inference.settings import InferenceSettings
from mlcore.fallback import FallbackModel
from mlplatform.inference.request_validation import rows_to_csv
from mlsettings.vocabulary import Metric
from testkit import inference_world as kit
from testkit.inference_doubles import StubbedEndpoint, healthy_probability

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Context:
    aws_request_id: str = "lambda-req-1"
    function_name: str = "inference"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{kit.REGION}:{kit.ACCOUNT}:function:inference"


@dataclass
class Deployed:
    session: boto3.session.Session
    endpoint: StubbedEndpoint
    fault: list[str | None]

    def invoke(self, body: Any, request_id: str = "req-1") -> tuple[int, dict[str, Any]]:
        response = handler_module.handler(kit.api_event(body, request_id=request_id), Context())
        return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    for name, value in kit.environment().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        session = boto3.session.Session(region_name=kit.REGION)
        kit.create_resources(session, kit.load_schema())
        fault: list[str | None] = [None]
        endpoint = StubbedEndpoint(lambda: fault[0])
        settings = InferenceSettings.from_environ(kit.environment())
        monkeypatch.setattr(handler_module, "_service",
                            handler_module.build_service(settings, session=session, sagemaker_runtime=endpoint))
        yield Deployed(session=session, endpoint=endpoint, fault=fault)


ROW = [round(1.0 + 0.5 * i, 2) for i in range(30)]


def test_a_healthy_request_is_served_by_the_endpoint_cached_and_logged(deployed: Deployed) -> None:
    status, body = deployed.invoke({"instances": [ROW], "inference_id": "client-1"})
    assert status == 200
    kit.assert_valid_answer(body, 1)
    assert (body["source"], body["model_version"]) == ("endpoint", f"{kit.ENDPOINT_NAME}/Champion")
    assert body["predictions"][0]["probability"] == healthy_probability(rows_to_csv([tuple(ROW)]))
    items = deployed.session.client("dynamodb").scan(TableName=kit.CACHE_TABLE)["Items"]
    assert len(items) == 1 and int(items[0]["expires_at"]["N"]) > int(float(items[0]["stored_at"]["N"]))
    (line,) = kit.logged_lines(deployed.session)
    assert line["eventMetadata"]["eventId"] == "req-1"
    assert line["eventMetadata"]["inferenceId"] == "client-1"
    assert line["eventMetadata"]["customAttributes"]["source"] == "endpoint"


def test_a_failing_endpoint_is_answered_by_the_fallback_model_loaded_from_s3(deployed: Deployed) -> None:
    deployed.fault[0] = "model_error"
    status, body = deployed.invoke({"instances": [ROW, ROW]})
    expected = FallbackModel.from_dict(kit.fallback_document(kit.load_schema())).predict_proba_row(ROW)
    assert status == 200
    kit.assert_valid_answer(body, 2)
    assert (body["source"], body["degradation_reason"]) == ("fallback_model", "model_error")
    assert body["model_version"] == f"fallback/s3://{kit.ARTIFACT_BUCKET}/{kit.FALLBACK_KEY}"
    assert [p["probability"] for p in body["predictions"]] == [expected, expected]
    (line,) = kit.logged_lines(deployed.session)
    assert line["eventMetadata"]["customAttributes"]["source"] == "fallback_model"


def test_the_breaker_opens_in_dynamodb_after_the_configured_failures(deployed: Deployed) -> None:
    deployed.fault[0] = "throttling"
    for i in range(3):
        deployed.invoke({"instances": [ROW]}, request_id=f"r{i}")
    item = deployed.session.client("dynamodb").get_item(
        TableName=kit.BREAKER_TABLE, Key={"breaker_id": {"S": kit.ENDPOINT_NAME}}, ConsistentRead=True)["Item"]
    assert (item["state"]["S"], item["consecutive_failures"]["N"]) == ("open", "3")
    calls = deployed.endpoint.calls
    _, body = deployed.invoke({"instances": [ROW]}, request_id="r4")
    assert deployed.endpoint.calls == calls
    assert body["degradation_reason"] == "circuit_open"
    assert len(kit.logged_lines(deployed.session)) == 4


def test_a_bad_request_gets_a_400_naming_the_problem_and_nothing_else_happens(deployed: Deployed) -> None:
    status, body = deployed.invoke({"instances": [ROW[:5]]})
    assert status == 400
    assert body["message"].startswith("instances[0] has 5 values; the schema has 30 features")
    assert deployed.endpoint.calls == 0
    assert kit.logged_lines(deployed.session) == []


def test_fallbacks_are_counted_by_reason_in_emf(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    deployed.fault[0] = "read_timeout"
    capsys.readouterr()
    deployed.invoke({"instances": [ROW]})
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    fallback = [doc for doc in emf if "Fallbacks" in doc]
    assert len(fallback) == 1 and fallback[0]["reason"] == "timeout" and fallback[0]["Fallbacks"] == [1.0]
    # each model's endpoint is a dimension: one model's fallbacks never count in another's dashboard or alarm
    assert fallback[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "reason",
                                                                         Metric.ENDPOINT_DIMENSION]]
    assert fallback[0][Metric.ENDPOINT_DIMENSION] == InferenceSettings.from_environ(kit.environment()).endpoint_name
    assert any(doc.get("DegradedResponses") == [1.0] for doc in emf)


def test_a_firehose_outage_still_answers_and_counts_it(deployed: Deployed, capsys: pytest.CaptureFixture[str],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    deployed.session.client("firehose").delete_delivery_stream(DeliveryStreamName=kit.STREAM_NAME)
    capsys.readouterr()
    status, body = deployed.invoke({"instances": [ROW]})
    assert status == 200 and body["source"] == "endpoint"
    output = capsys.readouterr().out
    assert '"PredictionLogFailures":[1.0]' in output
    (failure,) = [r for r in caplog.records if r.getMessage() == "prediction log delivery failed"]
    assert failure.capture_record["eventMetadata"]["eventId"] == "req-1"  # type: ignore[attr-defined]


def test_the_service_is_built_from_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in kit.environment(FALLBACK_MODEL_KEY="fallback/missing.json").items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setattr(handler_module, "_service", None)
    with mock_aws():
        session = boto3.session.Session(region_name=kit.REGION)
        kit.create_resources(session, kit.load_schema())
        service = handler_module.current_service()
        assert handler_module.current_service() is service
        # moto's endpoint does not exist, so the real client gets a failure; the missing fallback document
        # was reported at cold start, so the answer degrades to the safe default.
        response = handler_module.handler(kit.api_event({"instances": [ROW]}), Context())
        body = json.loads(response["body"])
        kit.assert_valid_answer(body, 1)
        assert body["degraded"] is True
        assert body["source"] in ("default", "cache")
        assert len(kit.logged_lines(session)) == 1
    monkeypatch.setattr(handler_module, "_service", None)


def test_the_handler_module_imports_no_numpy_pandas_or_scipy() -> None:
    code = ("import sys, lambdas.inference.handler; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'numpy', 'pandas', 'scipy', 'pydantic'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
