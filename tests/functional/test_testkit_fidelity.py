"""Every stand-in of testkit/ checked against a real reference: a double may stand in for the network, never
for the behaviour. The demo's endpoint double (what ``ModelRuntime`` answers) is checked against the serving
toolkit in tests/contract/test_serving_contract.py; this module checks the rest.

| stand-in | reference |
|---|---|
| registry patch (create/update/describe, ModelLifeCycle) | botocore's sagemaker model: output shapes, enums, patterns |
| its "SageMaker Model Package State Change" event | AWS's sample event (tests/fixtures/events) |
| cross-account DescribeModelPackage | the owner's own description; DescribeModelPackage's output shape |
| event envelopes delivered to SQS | the envelope of AWS's sample event |
| SimulatedRollouts (UpdateEndpoint) | UpdateEndpoint/DescribeEndpoint shapes and errors |
| StubbedEndpoint, ModelRuntime, patch_invoke_endpoint | InvokeEndpoint's output; errors as botocore parses them |
| capture_record | AWS's documented capture file record |
| publish_emf | the EMF specification (its example), real Powertools output, PutMetricData's input shape |
| evaluate_alarm | the alarms the stacks synthesize; ComparisonOperator/StateValue/SetAlarmState; AWS's alarm message |
| EndpointMetrics | GetMetricData's shapes and the A/B report's own queries |
| breaker store, response cache, prediction log | the real DynamoDB/Firehose adapters on moto, same assertions |
| CountingMetrics, SilentLogger | the handler's Powertools metrics (their EMF) and Powertools' Logger |
| AttributePatcher | pytest's MonkeyPatch |

What no offline reference can confirm is listed in docs/VERIFICATION.md, "Test kit".
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws

from mlplatform.inference.circuit_breaker import (
    BreakerRecord,
    BreakerSettings,
    CircuitBreaker,
    DynamoDbBreakerStore,
)
from mlplatform.inference.prediction_log import FirehosePredictionLog, PredictionLogError, encode_record
from mlplatform.inference.response_cache import CachedAnswer, DynamoDbResponseCache, ResponseCacheError
from testkit.inference_doubles import (
    FAULT_REASONS,
    CountingMetrics,
    InMemoryBreakerStore,
    InMemoryPredictionLog,
    InMemoryResponseCache,
    SilentLogger,
    StubbedEndpoint,
)
from testkit.model_sample import sampled_project_context
from testkit.moto_gaps import (
    _OPERATORS,
    MATH_FUNCTIONS,
    AttributePatcher,
    EndpointMetrics,
    ModelRuntime,
    SimulatedRollouts,
    UnsupportedAlarm,
    capture_record,
    emf_data_points,
    evaluate_alarm,
    patch_cross_account_packages,
    patch_event_envelopes,
    patch_invoke_endpoint,
    patch_moto_registry,
    patch_update_endpoint,
    publish_emf,
    supports_statistic,
)
from testkit.serving_world import CAPTURE_BUCKET, ENDPOINT, ROLE
from tests.api_rules.shapes import _check, service_model, validate, validate_output
from tests.functional.promotion_testkit import register_package
from tests.functional.serving_testkit import (  # noqa: F401  (fixtures)
    TrainedModel,
    register_trained_package,
    serving_aws,
    trained_model,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
REGION = "us-east-1"
GROUP = "fidelity-models"
# SageMaker API Reference, "Common Errors": the errors every action may answer, with their HTTP status.
COMMON_ERRORS = {"AccessDeniedException": 400, "IncompleteSignature": 400, "InternalFailure": 500,
                 "InvalidAction": 400, "InvalidClientTokenId": 403, "NotAuthorized": 400, "OptInRequired": 403,
                 "RequestExpired": 400, "ServiceUnavailable": 503, "ThrottlingException": 400,
                 "ValidationError": 400}


def _sample(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


def _layout(text: str) -> str:
    """How a formatted time is laid out: its digits blanked (2021-02-24T17:00:14Z -> 0000-00-00T00:00:00Z)."""
    return re.sub(r"\d", "0", text)


def _error_codes(service: str, operation: str) -> set[str]:
    """The error codes ``operation`` can answer: those its service model declares, AWS's common errors, and
    the codes botocore's own waiters for the service expect from it (SageMaker's control plane answers
    ValidationException for a missing resource: botocore's sagemaker waiters-2.json)."""
    session = botocore.session.get_session()
    declared = {shape.metadata.get("error", {}).get("code", shape.name)
                for shape in service_model(service).operation_model(operation).error_shapes}
    waited: set[str] = set()
    with contextlib.suppress(Exception):  # a service without waiters
        waiters = session.get_waiter_model(service)
        for name in waiters.waiter_names:
            waiter = waiters.get_waiter(name)
            waited |= {a.expected for a in waiter.acceptors if a.matcher == "error"}
    return declared | set(COMMON_ERRORS) | waited


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


# ------------------------------------------------------------------------------------------- registry
def test_the_registry_double_answers_in_sagemakers_output_shapes(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's sagemaker model (the API's source of truth): UpdateModelPackage's answer and
    DescribeModelPackage after the create and after each update — every member known, the required ones there,
    ModelApprovalStatus in its enum, ModelLifeCycle's Stage and StageStatus matching their EntityName pattern."""
    patch_moto_registry(monkeypatch)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = register_package(sagemaker, GROUP)
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert validate_output("sagemaker", "DescribeModelPackage", described) == []
    assert described["ModelLifeCycle"]["Stage"] == "Development"  # moto alone drops it
    for update in ({"ModelApprovalStatus": "Approved", "ApprovalDescription": "by bob"},
                   {"ModelLifeCycle": {"Stage": "Staging", "StageStatus": "Deployed", "StageDescription": "d1"}},
                   {"CustomerMetadataProperties": {"deployed_to": "staging"},
                    "CustomerMetadataPropertiesToRemove": ["training_job_name"]}):
        answer = sagemaker.update_model_package(ModelPackageArn=arn, **update)
        assert validate_output("sagemaker", "UpdateModelPackage", answer) == [], update
        described = sagemaker.describe_model_package(ModelPackageName=arn)
        assert validate_output("sagemaker", "DescribeModelPackage", described) == [], update
    assert described["ModelLifeCycle"] == {"Stage": "Staging", "StageStatus": "Deployed", "StageDescription": "d1"}


def test_the_registry_doubles_error_is_one_sagemaker_answers(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """An UpdateModelPackage of a package that does not exist: the code is one the service model, AWS's common
    errors or botocore's sagemaker waiters name."""
    patch_moto_registry(monkeypatch)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    missing = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/7"
    with pytest.raises(ClientError) as raised:
        sagemaker.update_model_package(ModelPackageArn=missing, ModelApprovalStatus="Approved")
    assert raised.value.response["Error"]["Code"] in _error_codes("sagemaker", "UpdateModelPackage")


def test_the_registry_double_sends_the_documented_state_change_event(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS's sample "SageMaker Model Package State Change" (tests/fixtures/events): exactly its envelope keys,
    detail keys among its detail keys, each value of the sample's type and times laid out as the sample's.

    The one detail member beyond the sample is ModelLifeCycle: the sample predates it, and the Developer Guide
    ("Get event notifications for ModelLifeCycle") sends ModelLifeCycle updates as this very event, pointing to
    this sample. Its value must then be botocore's ModelLifeCycle structure. The detail's times carry
    microseconds, the sample's whole seconds: a known divergence (docs/VERIFICATION.md, "Test kit")."""
    sample = _sample("sagemaker-model-package-state-change.json")
    sagemaker_model = service_model("sagemaker")
    registry = patch_moto_registry(monkeypatch)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = register_package(sagemaker, GROUP)
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    sagemaker.update_model_package(ModelPackageArn=arn, ModelLifeCycle={"Stage": "Staging", "StageStatus": "Approved"})
    events = registry.take_events()
    assert len(events) == 3
    for event in events:
        assert set(event) == set(sample)
        assert {key: type(value) for key, value in event.items()} == {
            key: type(value) for key, value in sample.items()}
        assert _layout(event["time"]) == _layout(sample["time"])
        assert event["resources"] == [event["detail"]["ModelPackageArn"]]
        detail, documented = event["detail"], sample["detail"]
        assert set(detail) - set(documented) <= {"ModelLifeCycle"}, set(detail) - set(documented)
        for key in set(detail) & set(documented):
            assert type(detail[key]) is type(documented[key]), key
        for key in ("CreationTime", "LastModifiedTime"):  # but for the fraction of a second the double adds
            assert _layout(re.sub(r"\.\d+Z$", "Z", detail[key])) == _layout(documented[key]), key
        assert detail["ModelApprovalStatus"] in sagemaker_model.shape_for("ModelApprovalStatus").enum
        problems: list[str] = []
        _check(sagemaker_model.shape_for("ModelLifeCycle"), detail["ModelLifeCycle"], "ModelLifeCycle", problems)
        assert problems == []
    assert events[-1]["detail"]["ModelLifeCycle"] == {"Stage": "Staging", "StageStatus": "Approved"}


# ------------------------------------------------------------------------------------------- accounts
def test_a_package_described_from_another_account_is_the_owners_description(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The consumer's DescribeModelPackage of the registry account's ARN answers what the owner's own
    DescribeModelPackage answers, in the output shape. (That AWS admits it through the group's resource
    policy is not confirmable offline: docs/VERIFICATION.md.)"""
    patch_moto_registry(monkeypatch)
    patch_cross_account_packages(monkeypatch)
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn="arn:aws:iam::111111111111:role/registry", RoleSessionName="registry")["Credentials"]
    owner = boto3.client("sagemaker", region_name=REGION, aws_access_key_id=credentials["AccessKeyId"],
                         aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"])
    owner.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = register_package(owner, GROUP)
    assert ":111111111111:" in arn
    consumer = boto3.client("sagemaker", region_name=REGION)
    theirs = consumer.describe_model_package(ModelPackageName=arn)
    own = owner.describe_model_package(ModelPackageName=arn)
    theirs.pop("ResponseMetadata")
    own.pop("ResponseMetadata")
    assert theirs == own
    assert validate_output("sagemaker", "DescribeModelPackage", theirs) == []


def test_an_sqs_target_receives_the_documented_envelope(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The envelope of AWS's sample event (version, id, detail-type, source, account, time, region, resources,
    detail: EventBridge User Guide, "Amazon EventBridge events") reaches an SQS target whole. Negative control:
    moto alone leaves ``account`` out, which is what the patch fills."""
    envelope = set(_sample("sagemaker-model-package-state-change.json"))
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    url = sqs.create_queue(QueueName="observer")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="observe", EventPattern=json.dumps({"source": ["mlops.fidelity"]}))
    events.put_targets(Rule="observe", Targets=[{"Id": "queue", "Arn": queue}])

    def delivered() -> dict[str, Any]:
        events.put_events(Entries=[{"Source": "mlops.fidelity", "DetailType": "Fidelity", "Detail": "{}",
                                    "Resources": ["arn:aws:s3:::bucket"]}])
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return dict(json.loads(message["Body"]))

    assert envelope - set(delivered()) == {"account"}  # moto 5.2.5 without the patch
    patch_event_envelopes(monkeypatch)
    event = delivered()
    assert set(event) == envelope
    assert event["account"] == "123456789012"


# ------------------------------------------------------------------------------------------- rollouts
def _endpoint(sagemaker: Any) -> None:
    sagemaker.create_model(ModelName="m", ExecutionRoleArn=ROLE,
                           PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/x:1"})
    for config in ("blue", "green"):
        sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "Champion", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 1.0}])
    sagemaker.create_endpoint(EndpointName="fidelity", EndpointConfigName="blue")


@pytest.mark.parametrize(("mode", "status", "config", "reason"), [
    ("succeed", "InService", "green", False), ("rollback", "InService", "blue", True),
    ("in_progress", "Updating", "green", False), ("rollback_failed", "UpdateRollbackFailed", "green", True)])
def test_simulated_rollouts_answer_in_sagemakers_shapes(aws: None, monkeypatch: pytest.MonkeyPatch, mode: str,
                                                        status: str, config: str, reason: bool) -> None:
    """botocore's sagemaker model: UpdateEndpoint's answer, DescribeEndpoint after each mode (EndpointStatus
    in its enum), and the recorded request is UpdateEndpoint's input as sent."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    _endpoint(sagemaker)
    rollouts = patch_update_endpoint(monkeypatch, region=REGION, endpoint_name="fidelity")
    rollouts.mode = mode
    answer = sagemaker.update_endpoint(EndpointName="fidelity", EndpointConfigName="green",
                                       RetainAllVariantProperties=True)
    assert validate_output("sagemaker", "UpdateEndpoint", answer) == []
    described = sagemaker.describe_endpoint(EndpointName="fidelity")
    assert validate_output("sagemaker", "DescribeEndpoint", described) == []
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == (status, config)
    assert ("FailureReason" in described) is reason
    assert rollouts.requests == [{"EndpointName": "fidelity", "EndpointConfigName": "green",
                                  "RetainAllVariantProperties": True}]
    assert validate("sagemaker", "UpdateEndpoint", rollouts.requests[0]) == []


def test_an_update_of_an_updating_endpoint_is_refused_with_a_sagemaker_error(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    _endpoint(sagemaker)
    patch_update_endpoint(monkeypatch, region=REGION, endpoint_name="fidelity").mode = "in_progress"
    sagemaker.update_endpoint(EndpointName="fidelity", EndpointConfigName="green")
    with pytest.raises(ClientError) as raised:
        sagemaker.update_endpoint(EndpointName="fidelity", EndpointConfigName="blue")
    assert raised.value.response["Error"]["Code"] in _error_codes("sagemaker", "UpdateEndpoint")


# ------------------------------------------------------------------------------------------- InvokeEndpoint
class _Raw:
    """What urllib3 would hand botocore: the body, streamed once."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        if self._data is not None:
            data, self._data = self._data, None
            yield data


def _parsed_off_the_wire(error: ClientError, status: int) -> dict[str, Any]:
    """The same error as botocore's client returns it after parsing an HTTP answer of the rest-json protocol:
    the code in x-amzn-ErrorType, a body with the error shape's members (the double's values where it has them)."""
    code = error.response["Error"]["Code"]
    model = service_model("sagemaker-runtime")
    members = model.shape_for(code).members if code in model.shape_names else {}
    samples = {"string": "sample", "integer": 500}
    body = {name: error.response.get(name, samples.get(shape.type_name)) for name, shape in members.items()}
    body["Message"] = error.response["Error"]["Message"]
    client = boto3.client("sagemaker-runtime", region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", lambda request, **_: AWSResponse(
        request.url, status, {"x-amzn-errortype": code, "x-amzn-requestid": "r", "content-type": "application/json"},
        _Raw(json.dumps(body).encode())))
    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName="e", Body=b"1")
    return dict(raised.value.response)


def _assert_is_what_botocore_parses(error: ClientError) -> None:
    code, response = error.response["Error"]["Code"], error.response
    operation = service_model("sagemaker-runtime").operation_model("InvokeEndpoint")
    declared = {shape.name: shape.metadata["error"]["httpStatusCode"] for shape in operation.error_shapes}
    assert code in declared or code in COMMON_ERRORS, code
    status = declared.get(code, COMMON_ERRORS.get(code))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, code
    parsed = _parsed_off_the_wire(error, status)
    assert set(response) <= set(parsed), set(response) - set(parsed)
    assert set(response["ResponseMetadata"]) <= set(parsed["ResponseMetadata"])
    assert response["Error"] == parsed["Error"]
    for name in set(response) - {"Error", "ResponseMetadata"}:
        assert response[name] == parsed[name], name


def test_stubbed_endpoint_answers_fit_invoke_endpoint_output() -> None:
    """botocore's sagemaker-runtime model: every answer the stub gives (healthy or wrong) is InvokeEndpoint's output."""
    for fault in (None, "malformed_output", "wrong_count", "out_of_range"):
        answer = StubbedEndpoint(lambda fault=fault: fault).invoke_endpoint(  # type: ignore[misc]
            EndpointName="stub", Body=b"1,2\n3,4", ContentType="text/csv")
        assert validate_output("sagemaker-runtime", "InvokeEndpoint", answer) == [], fault


@pytest.mark.parametrize("fault", [f for f in FAULT_REASONS if f not in (
    "malformed_output", "wrong_count", "out_of_range", "read_timeout", "connect_timeout")])
def test_stubbed_endpoint_errors_are_what_botocore_parses_off_the_wire(fault: str) -> None:
    """Each error is declared for InvokeEndpoint (with the model's HTTP status) or one of AWS's common errors,
    and has the structure botocore's parser gives the same error: Error, ResponseMetadata, the error shape's
    members at the top level."""
    with pytest.raises(ClientError) as raised:
        StubbedEndpoint(lambda: fault).invoke_endpoint(EndpointName="stub", Body=b"1,2", ContentType="text/csv")
    _assert_is_what_botocore_parses(raised.value)


def test_patch_invoke_endpoint_answers_behind_botocores_own_client(aws: None,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Through patch_invoke_endpoint a real client validates the request itself (ParamValidationError) and hands
    over the target's answer (InvokeEndpoint's output shape) or its error unchanged."""
    route = patch_invoke_endpoint(monkeypatch, StubbedEndpoint())
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    answer = client.invoke_endpoint(EndpointName="fidelity", Body=b"1,2\n3,4", ContentType="text/csv")
    assert validate_output("sagemaker-runtime", "InvokeEndpoint", answer) == []
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ParamValidationError):
        client.invoke_endpoint(EndpointName="fidelity")
    route.target = StubbedEndpoint(lambda: "model_error")
    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName="fidelity", Body=b"1,2", ContentType="text/csv")
    _assert_is_what_botocore_parses(raised.value)


def test_the_model_runtime_answers_and_captures_like_sagemaker(
        serving_aws: SimulatedRollouts, trained_model: TrainedModel) -> None:  # noqa: F811
    """ModelRuntime's answer is InvokeEndpoint's output; its ModelErrors (a variant set to fail, a container's
    4xx) are what botocore parses off the wire; the capture line it writes has the structure of AWS's
    documented capture record."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    arn = register_trained_package(trained_model)
    sagemaker.create_model(ModelName="served", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": arn})
    sagemaker.create_endpoint_config(EndpointConfigName="served", ProductionVariants=[{
        "VariantName": "Champion", "ModelName": "served", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large",
        "InitialVariantWeight": 1.0}])
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="served")
    runtime = ModelRuntime(capture_bucket=CAPTURE_BUCKET)
    row = ",".join(["1.0"] * 30).encode()
    answer = runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=row, ContentType="text/csv", Accept="text/csv")
    assert validate_output("sagemaker-runtime", "InvokeEndpoint", answer) == []
    with pytest.raises(ClientError) as refused:  # the serving code answers 415 for a type it does not read
        runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=b"1.0,2.0", ContentType="application/x-npy")
    _assert_is_what_botocore_parses(refused.value)
    with pytest.raises(ClientError) as failed:
        ModelRuntime(errors={"Champion"}).invoke_endpoint(EndpointName=ENDPOINT, TargetVariant="Champion", Body=row,
                                                          ContentType="text/csv")
    _assert_is_what_botocore_parses(failed.value)
    s3 = boto3.client("s3", region_name=REGION)
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=CAPTURE_BUCKET)["Contents"]]
    line = s3.get_object(Bucket=CAPTURE_BUCKET, Key=key)["Body"].read().decode().splitlines()[0]
    _assert_has_the_documented_capture_structure(json.loads(line))


# ------------------------------------------------------------------------------------------- data capture
def _tree(value: Any) -> Any:
    """The keys and value types of a JSON document, nested."""
    if isinstance(value, dict):
        return {key: _tree(inner) for key, inner in value.items()}
    return type(value).__name__


def _assert_has_the_documented_capture_structure(record: dict[str, Any]) -> None:
    sample = _sample("sagemaker-data-capture-record.json")
    assert _tree(record) == _tree(sample)
    assert _layout(record["eventMetadata"]["inferenceTime"]) == _layout(sample["eventMetadata"]["inferenceTime"])
    for part, mode in (("endpointInput", "INPUT"), ("endpointOutput", "OUTPUT")):
        assert record["captureData"][part]["mode"] == mode
        assert record["captureData"][part]["encoding"] in ("CSV", "JSON", "BASE64")


@pytest.mark.parametrize(("content_type", "encoding"), [
    ("text/csv", "CSV"), ("application/json", "JSON"), ("application/x-npy", "BASE64")])
def test_capture_records_have_the_documented_structure(content_type: str, encoding: str) -> None:
    """AWS's documented capture record (SageMaker Developer Guide, "Capture data from real-time endpoint"):
    the same keys at every level, the same value types, inferenceTime laid out alike."""
    record = capture_record(request_body=b"1,2,3", request_content_type=content_type, response_body=b"0.5",
                            response_content_type="text/csv")
    _assert_has_the_documented_capture_structure(record)
    assert record["captureData"]["endpointInput"]["encoding"] == encoding


# ------------------------------------------------------------------------------------------- EMF
class _RecordingCloudWatch:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def put_metric_data(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {}


def _points(requests: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter((r["Namespace"], d["MetricName"], tuple((x["Name"], x["Value"]) for x in d["Dimensions"]),
                    d["Unit"], d["Value"], d["StorageResolution"], d.get("Timestamp")) for r in requests
                   for d in r["MetricData"])


def test_the_specifications_example_yields_its_one_metric() -> None:
    """The EMF specification's own example (CloudWatch User Guide, "Specification: Embedded metric format"):
    one metric, ``time``, with the dimension ``functionVersion``, at the document's timestamp; ``requestId`` is
    neither metric nor dimension. The PutMetricData request is valid for botocore's cloudwatch model."""
    document = json.dumps(_sample("cloudwatch-emf-example.json"))
    cloudwatch = _RecordingCloudWatch()
    assert publish_emf(cloudwatch, f"2019-11-18T20:42:12.004Z\tc0ffee\t{document}\nnot a metric\n") == 1
    assert [validate("cloudwatch", "PutMetricData", r) for r in cloudwatch.requests] == [[]]
    assert _points(cloudwatch.requests) == Counter({
        ("lambda-function-metrics", "time", (("functionVersion", "$LATEST"),), "Milliseconds", 100.0, 60,
         datetime(2019, 11, 18, 20, 42, 12, 4000, tzinfo=UTC)): 1})


def test_emf_that_powertools_writes_yields_the_specifications_data_points() -> None:
    """Real Powertools output: a repeated metric (Powertools aggregates its values into an array: one data
    point each), a high-resolution one (StorageResolution 1), a single metric with its own dimension set; and
    every unit Powertools can write is one of CloudWatch's StandardUnit values."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricResolution, MetricUnit, single_metric

    metrics = Metrics(namespace="Fidelity", service="fidelity")
    metrics.clear_metrics()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        metrics.add_dimension(name="Endpoint", value="mlops-dev")
        metrics.add_metric(name="Responses", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="Responses", unit=MetricUnit.Count, value=2)
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=12.5, resolution=MetricResolution.High)
        metrics.flush_metrics()
        with single_metric(name="Fallbacks", unit=MetricUnit.Count, value=1, namespace="Fidelity",
                           default_dimensions={"service": "fidelity", "reason": "timeout"}):
            pass
    stamps = [datetime.fromtimestamp(json.loads(line)["_aws"]["Timestamp"] / 1000, UTC)
              for line in printed.getvalue().splitlines()]
    cloudwatch = _RecordingCloudWatch()
    assert publish_emf(cloudwatch, printed.getvalue()) == 4
    assert all(validate("cloudwatch", "PutMetricData", r) == [] for r in cloudwatch.requests)
    both = (("Endpoint", "mlops-dev"), ("service", "fidelity"))
    assert _points(cloudwatch.requests) == Counter({
        ("Fidelity", "Responses", both, "Count", 1.0, 60, stamps[0]): 1,
        ("Fidelity", "Responses", both, "Count", 2.0, 60, stamps[0]): 1,
        ("Fidelity", "Latency", both, "Milliseconds", 12.5, 1, stamps[0]): 1,
        ("Fidelity", "Fallbacks", (("service", "fidelity"), ("reason", "timeout")), "Count", 1.0, 60, stamps[1]): 1})
    assert {unit.value for unit in MetricUnit} <= set(service_model("cloudwatch").shape_for("StandardUnit").enum)


# ------------------------------------------------------------------------------------------- alarms
class _RecordingClient:
    """A real client whose SetAlarmState requests are kept (everything else passes through)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.set_alarm_state_requests: list[dict[str, Any]] = []

    def set_alarm_state(self, **request: Any) -> Any:
        self.set_alarm_state_requests.append(request)
        return self._client.set_alarm_state(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_each_comparison_means_what_cloudwatch_names_it() -> None:
    """PutMetricAlarm's ComparisonOperator (botocore's cloudwatch model): each operator the evaluator knows is
    in the enum, and "the specified statistic value is used as the first operand" (API reference)."""
    assert set(_OPERATORS) <= set(service_model("cloudwatch").shape_for("ComparisonOperator").enum)
    for name, compare in _OPERATORS.items():
        holds = {relation for relation, value in (("Greater", 2.0), ("EqualTo", 1.0), ("Less", 0.0))
                 if compare(value, 1.0)}
        named = {relation for relation in ("Greater", "EqualTo", "Less") if relation in name}
        assert holds == named, name


def _synthesized_alarms() -> list[dict[str, Any]]:
    """Every AWS::CloudWatch::Alarm of every environment in cdk.json (its sample of models), as the stacks synthesize
    them."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.app_builder import build_app

    app = cdk.App(context={**sampled_project_context(), "aws:cdk:bundling-stacks": []})
    alarms = []
    for stage in build_app(app, context=sampled_project_context(), with_nag=False):
        for stack in stage.node.children:
            if isinstance(stack, cdk.Stack):
                resources = Template.from_stack(stack).to_json().get("Resources", {})
                alarms += [{"LogicalId": f"{stage.config.name}-{name}", **resource["Properties"]}
                           for name, resource in resources.items() if resource["Type"] == "AWS::CloudWatch::Alarm"]
    return alarms


def _resolved(value: Any) -> Any:
    """A template value with CloudFormation's intrinsic functions replaced by a placeholder name."""
    if isinstance(value, dict) and len(value) == 1 and (next(iter(value)) == "Ref" or next(iter(value)).startswith(
            "Fn::")):
        return "resolved-at-deploy"
    if isinstance(value, dict):
        return {key: _resolved(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_resolved(inner) for inner in value]
    return value


def _put_alarm(cloudwatch: Any, properties: dict[str, Any], values: list[float], actions: list[str] | None = None
               ) -> str:
    """The alarm as PutMetricAlarm would create it (its template's actions left out, ``actions`` on ALARM), and
    ``values`` for each metric it reads."""
    request = {key: _resolved(value) for key, value in properties.items()
               if key in service_model("cloudwatch").operation_model("PutMetricAlarm").input_shape.members
               and not key.endswith("Actions")}
    request["AlarmName"] = properties["LogicalId"]
    if actions:
        request["AlarmActions"] = actions
    cloudwatch.put_metric_alarm(**request)
    metrics = [q["MetricStat"]["Metric"] for q in request.get("Metrics", []) if "MetricStat" in q] or [request]
    for metric in metrics:
        cloudwatch.put_metric_data(Namespace=metric["Namespace"], MetricData=[
            {"MetricName": metric["MetricName"], "Dimensions": metric.get("Dimensions", []), "Value": value}
            for value in values])
    return str(request["AlarmName"])


def test_every_alarm_the_stacks_synthesize_is_one_evaluate_alarm_computes(aws: None) -> None:
    """The alarms of stacks/ (all environments of cdk.json): each comparison, statistic, extended statistic and
    metric-math function is one the evaluator computes, and each alarm, put into moto as synthesized with data
    for its metrics, is judged (ALARM or OK) without UnsupportedAlarm. A new alarm the evaluator cannot judge
    fails here instead of being misjudged in the demo."""
    alarms = _synthesized_alarms()
    assert len(alarms) >= 20
    operators = {a["ComparisonOperator"] for a in alarms}
    statistics = {a.get("ExtendedStatistic") or a.get("Statistic") for a in alarms if "MetricName" in a} | {
        q["MetricStat"]["Stat"] for a in alarms for q in a.get("Metrics", []) if "MetricStat" in q}
    functions = {name for a in alarms for q in a.get("Metrics", []) if "Expression" in q
                 for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", q["Expression"])}
    assert operators <= set(_OPERATORS), operators - set(_OPERATORS)
    assert all(supports_statistic(str(s)) for s in statistics), statistics
    assert functions <= MATH_FUNCTIONS, functions - MATH_FUNCTIONS
    cloudwatch, sns = boto3.client("cloudwatch", region_name=REGION), boto3.client("sns", region_name=REGION)
    for alarm in alarms:
        name = _put_alarm(cloudwatch, alarm, [1.0, 3.0])
        assert evaluate_alarm(cloudwatch, sns, name)["state"] in ("ALARM", "OK"), name


@pytest.mark.parametrize("unsupported", [
    {"ExtendedStatistic": "tm90"},
    {"Statistic": "Maximum", "ComparisonOperator": "GreaterThanUpperThreshold"},
    {"Metrics": [{"Id": "m", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": "Fidelity",
                  "MetricName": "Errors"}, "Period": 60, "Stat": "Sum"}},
                 {"Id": "e", "Expression": "FILL(m, 0)", "ReturnData": True}]}])
def test_an_alarm_the_evaluator_cannot_compute_is_refused(aws: None, unsupported: dict[str, Any]) -> None:
    """Negative controls: a trimmed mean, an anomaly-detection comparison, a metric-math function it does not
    implement — refused, not judged with another statistic."""
    alarm = {"LogicalId": "unsupported", "EvaluationPeriods": 1, "Threshold": 1.0,
             "ComparisonOperator": "GreaterThanThreshold", **unsupported}
    if "Metrics" not in alarm:
        alarm.update(Namespace="Fidelity", MetricName="Errors", Period=60)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    with contextlib.suppress(ClientError):  # moto may refuse the alarm itself; then there is nothing to judge
        name = _put_alarm(cloudwatch, alarm, [1.0, 3.0])
        with pytest.raises(UnsupportedAlarm):
            evaluate_alarm(cloudwatch, boto3.client("sns", region_name=REGION), name)


def test_a_percentile_alarm_is_judged_on_the_percentile(aws: None) -> None:
    """p99 of 1..100 is 99 (CloudWatch User Guide, "Percentiles": 99 percent of the data lower or equal), not
    the Maximum 100; a negative value leaves no percentile ("not available for metrics when any of the metric
    values are negative numbers"), judged as missing data."""
    cloudwatch, sns = boto3.client("cloudwatch", region_name=REGION), boto3.client("sns", region_name=REGION)
    alarm = {"LogicalId": "p99", "Namespace": "Fidelity", "MetricName": "Latency", "Period": 60,
             "EvaluationPeriods": 1, "Threshold": 99.5, "ComparisonOperator": "GreaterThanThreshold",
             "ExtendedStatistic": "p99", "TreatMissingData": "missing"}
    name = _put_alarm(cloudwatch, alarm, [float(v) for v in range(1, 101)])
    judged = evaluate_alarm(cloudwatch, sns, name)
    assert (judged["value"], judged["state"]) == (99.0, "OK")
    _put_alarm(cloudwatch, {**alarm, "MetricName": "Signed", "LogicalId": "signed"}, [-1.0, 5.0])
    assert evaluate_alarm(cloudwatch, sns, "signed")["state"] == "INSUFFICIENT_DATA"


def test_the_alarm_notification_carries_awss_members(aws: None) -> None:
    """AWS's alarm notification (tests/fixtures/events/cloudwatch-alarm-sns-message-*.json): every member the
    evaluator sends is one AWS sends, with the value type of AWS's sample and StateChangeTime laid out alike;
    state values in StateValue's enum; the SetAlarmState requests valid for botocore's cloudwatch model."""
    samples = [_sample("cloudwatch-alarm-sns-message-single-metric.json"),
               _sample("cloudwatch-alarm-sns-message-metric-math.json")]
    cloudwatch = _RecordingClient(boto3.client("cloudwatch", region_name=REGION))
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="page")["TopicArn"]
    url = sqs.create_queue(QueueName="page")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue)
    single = {"LogicalId": "errors", "Namespace": "Fidelity", "MetricName": "Errors", "Period": 60,
              "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
              "Statistic": "Sum", "AlarmDescription": "[page] errors"}
    math_alarm = {"LogicalId": "rate", "EvaluationPeriods": 1, "Threshold": 10.0, "AlarmDescription": "[page] rate",
                  "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Metrics": [
                      {"Id": "errors", "ReturnData": False, "MetricStat": {"Metric": {
                          "Namespace": "Fidelity", "MetricName": "Failed"}, "Period": 60, "Stat": "Sum"}},
                      {"Id": "rate", "Expression": "IF(errors > 0, 100 * errors / 4, 0)", "ReturnData": True}]}
    for alarm in (single, math_alarm):
        name = _put_alarm(cloudwatch, alarm, [1.0, 3.0], actions=[topic])
        assert evaluate_alarm(cloudwatch, sns, name)["state"] == "ALARM"
    states = set(service_model("cloudwatch").shape_for("StateValue").enum)
    assert [validate("cloudwatch", "SetAlarmState", r) for r in cloudwatch.set_alarm_state_requests] == [[], []]
    messages = [json.loads(json.loads(m["Body"])["Message"]) for m in sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert len(messages) == 2
    for message, sample in zip(sorted(messages, key=lambda m: m["AlarmName"]), samples, strict=True):
        assert set(message) <= set(sample), set(message) - set(sample)
        for key in message:
            assert type(message[key]) is type(sample[key]), key
        assert _layout(message["StateChangeTime"]) == _layout(sample["StateChangeTime"])
        assert {message["NewStateValue"], message["OldStateValue"]} <= states


# ------------------------------------------------------------------------------------------- EndpointMetrics
def test_endpoint_metrics_answer_the_ab_reports_queries_in_get_metric_data_shapes() -> None:
    """The A/B report's own request (mlops.serving_ops.variant_traffic) is GetMetricData's input; each answer
    is its output, with as many Timestamps as Values ("The number of timestamps always matches the number of
    values", MetricDataResult); latency percentiles computed on the latencies, counts summed."""
    from mlops.serving_ops import variant_traffic

    class Recording:
        def __init__(self, double: EndpointMetrics) -> None:
            self.double = double
            self.exchanges: list[tuple[dict[str, Any], dict[str, Any]]] = []

        def get_metric_data(self, **request: Any) -> dict[str, Any]:
            answer = self.double.get_metric_data(**request)
            self.exchanges.append((request, answer))
            return answer

    double = EndpointMetrics(runtime=ModelRuntime(served={"Champion": [1, 2, 1]}),
                             latencies_ms={"Champion": [float(v) for v in range(1, 101)]}, errors={"Champion": 1})
    recording = Recording(double)
    end = datetime(2026, 1, 1, 12, tzinfo=UTC)
    traffic = variant_traffic(recording, endpoint="mlops-dev", variants=["Champion", "Challenger"],
                              start=end - timedelta(hours=1), end=end)
    for request, answer in recording.exchanges:
        assert validate("cloudwatch", "GetMetricData", request) == []
        assert validate_output("cloudwatch", "GetMetricData", answer) == []
        assert all(len(r["Timestamps"]) == len(r["Values"]) for r in answer["MetricDataResults"])
    assert traffic["Champion"]["requests"] == 3.0 and traffic["Champion"]["errors_5xx"] == 1.0
    assert (traffic["Champion"]["latency_p50_ms"], traffic["Champion"]["latency_p99_ms"]) == (50.0, 99.0)
    assert traffic["Challenger"]["latency_p99_ms"] is None


# ------------------------------------------------------------------------------------------- inference ports
def _dynamodb_table(key: str) -> tuple[Any, str]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(TableName=key, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
    return dynamodb, key


BREAKER_STORES: dict[str, Callable[[], Any]] = {
    "in-memory double": InMemoryBreakerStore,
    "DynamoDbBreakerStore on moto": lambda: DynamoDbBreakerStore(
        _dynamodb_table("breaker_id")[0], table_name="breaker_id", breaker_id="mlops-dev", clock=lambda: 1.0)}


@pytest.mark.parametrize("store", BREAKER_STORES)
def test_the_breaker_store_is_a_compare_and_set_on_whole_records(aws: None, store: str) -> None:
    """The same assertions on the double and on the real DynamoDB adapter: an empty store reads as a fresh
    record; a write succeeds only on the version it replaces; what is read back is what was written, fields
    cleared included (PutItem replaces the whole item)."""
    breaker_store = BREAKER_STORES[store]()
    assert breaker_store.read(consistent=True) == BreakerRecord()
    opened = BreakerRecord(state="open", consecutive_failures=3, opened_at=10.5, version=1)
    assert breaker_store.compare_and_set(opened, expected_version=0)
    assert not breaker_store.compare_and_set(BreakerRecord(version=1), expected_version=0)
    assert breaker_store.read(consistent=True) == opened
    trial = BreakerRecord(state="half_open", consecutive_failures=3, opened_at=10.5, trial_id="ab12",
                          trial_started_at=20.25, version=2)
    assert breaker_store.compare_and_set(trial, expected_version=1)
    assert not breaker_store.compare_and_set(BreakerRecord(version=2), expected_version=1)
    assert breaker_store.read(consistent=False) == trial
    closed = BreakerRecord(state="closed", version=3)
    assert breaker_store.compare_and_set(closed, expected_version=2)
    assert breaker_store.read(consistent=True) == closed


@pytest.mark.parametrize("store", BREAKER_STORES)
def test_the_circuit_breaker_runs_alike_on_either_store(aws: None, store: str) -> None:
    """The real CircuitBreaker on each store: three failures open it, the cool-down lets one trial through, the
    trial's success closes it — the same records on both."""
    now = [0.0]
    breaker = CircuitBreaker(store=BREAKER_STORES[store](), clock=lambda: now[0], settings=BreakerSettings(
        failure_threshold=3, cooldown_seconds=5, state_cache_seconds=0, trial_timeout_seconds=10))
    seen = []
    for _ in range(3):
        breaker.record_failure(breaker.before_call())
    seen.append(breaker._store.read(consistent=True))
    assert not breaker.before_call().allowed
    now[0] = 6.0
    trial = breaker.before_call()
    assert trial.is_trial and not breaker.before_call().allowed
    breaker.record_success(trial)
    seen.append(breaker._store.read(consistent=True))
    assert [(r.state, r.consecutive_failures, r.opened_at, r.version) for r in seen] == [
        ("open", 3, 0.0, 3), ("closed", 0, None, 5)]


CACHES: dict[str, Callable[[], Any]] = {
    "in-memory double": InMemoryResponseCache,
    "DynamoDbResponseCache on moto": lambda: DynamoDbResponseCache(_dynamodb_table("cache_key")[0],
                                                                   table_name="cache_key")}


@pytest.mark.parametrize("cache", CACHES)
def test_the_response_cache_keeps_answers_until_they_expire(aws: None, cache: str) -> None:
    """The same assertions on the double and on the real DynamoDB adapter: a miss is None; an answer comes back
    as stored until its expiry, which is kept in whole seconds rounded up (the TTL attribute); a later put
    replaces it; an entry that does not hold answers (numbers or objects) is refused on read."""
    response_cache = CACHES[cache]()
    assert response_cache.get("k", now=0.0) is None
    answer = CachedAnswer(answers=(0.25, 0.1 + 0.2), model_version="mlops-dev/Champion", stored_at=3.14159)
    response_cache.put("k", answer, expires_at=100.5)
    assert response_cache.get("k", now=100.7) == answer
    assert response_cache.get("k", now=101.0) is None
    newer = CachedAnswer(answers=({"label": 1, "probabilities": [0.2, 0.7, 0.1]},),
                         model_version="mlops-dev/Challenger", stored_at=4.0)
    response_cache.put("k", newer, expires_at=200)
    assert response_cache.get("k", now=150.0) == newer
    response_cache.put("bad", CachedAnswer(answers=("1.5",), model_version="v", stored_at=1.0), expires_at=200)
    with pytest.raises(ResponseCacheError):
        response_cache.get("bad", now=150.0)


def _firehose_log() -> tuple[Any, Callable[[], list[bytes]], Callable[[], None]]:
    s3, firehose = boto3.client("s3", region_name=REGION), boto3.client("firehose", region_name=REGION)
    s3.create_bucket(Bucket="capture")
    firehose.create_delivery_stream(DeliveryStreamName="predictions", DeliveryStreamType="DirectPut",
                                    ExtendedS3DestinationConfiguration={
                                        "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                                        "BucketARN": "arn:aws:s3:::capture", "Prefix": "inference-api/"})

    def delivered() -> list[bytes]:
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="capture").get("Contents", []))
        return [s3.get_object(Bucket="capture", Key=k)["Body"].read() for k in keys]

    return (FirehosePredictionLog(firehose, stream_name="predictions"), delivered,
            lambda: firehose.delete_delivery_stream(DeliveryStreamName="predictions"))


def _memory_log() -> tuple[Any, Callable[[], list[bytes]], Callable[[], None]]:
    log = InMemoryPredictionLog()

    def outage() -> None:
        log.fail_next = 1

    return log, lambda: list(log.lines), outage


@pytest.mark.parametrize("log", ["in-memory double", "FirehosePredictionLog on moto"])
def test_the_prediction_log_delivers_each_record_as_one_line(aws: None, log: str) -> None:
    """The same assertions on the double and on the real Firehose adapter (moto delivers to S3): a record
    arrives as its JSON line; a record that cannot be encoded and an unreachable stream are PredictionLogError."""
    prediction_log, delivered, outage = _memory_log() if log == "in-memory double" else _firehose_log()
    record = {"eventMetadata": {"eventId": "req-1"}, "captureData": {"endpointOutput": {"data": "0.5"}}}
    prediction_log.write(record)
    assert delivered() == [encode_record(record)]
    with pytest.raises(PredictionLogError):
        prediction_log.write({"probability": float("nan")})
    outage()
    with pytest.raises(PredictionLogError):
        prediction_log.write(record)


def test_counting_metrics_count_what_the_handlers_metrics_publish() -> None:
    """The inference handler's PowertoolsServiceMetrics, as CloudWatch would extract its EMF
    (``emf_data_points``, checked against the specification above), and CountingMetrics fed the same calls."""
    import lambdas.inference.handler as handler

    calls: list[tuple[str, dict[str, Any]]] = [
        ("served", {"source": "endpoint", "rows": 3}), ("served", {"source": "cache", "rows": 2}),
        ("served", {"source": "default", "rows": 1}), ("fallback", {"reason": "circuit_open"}),
        ("fallback", {"reason": "timeout"}), ("fallback", {"reason": "timeout"}),
        ("dependency_error", {"dependency": "response_cache"}), ("dependency_error", {"dependency": "breaker_store"}),
        ("dependency_error", {"dependency": "prediction_log"}), ("rejected", {}), ("rejected", {})]
    counting, real = CountingMetrics(), handler.PowertoolsServiceMetrics()
    handler.metrics.clear_metrics()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for method, arguments in calls:
            getattr(real, method)(**arguments)
            getattr(counting, method)(**arguments)
        handler.metrics.flush_metrics()
    published: Counter[tuple[str, str]] = Counter()
    for data in emf_data_points(printed.getvalue()).values():
        for datum in data:
            reason = {d["Name"]: d["Value"] for d in datum["Dimensions"]}.get("reason", "")
            published[(datum["MetricName"], reason)] += int(datum["Value"])
    counted: Counter[tuple[str, str]] = Counter({
        ("Responses", ""): sum(counting.served_by.values()), ("Predictions", ""): sum(counting.rows_by.values()),
        ("DegradedResponses", ""): sum(n for source, n in counting.served_by.items() if source != "endpoint"),
        ("RejectedRequests", ""): counting.rejections,
        **{("Fallbacks", reason): n for reason, n in counting.fallbacks.items()},
        **{(str(handler._DEPENDENCY_METRICS[d]), ""): n for d, n in counting.dependency_errors.items()}})
    assert published == counted


def test_the_silent_logger_keeps_what_powertools_logs() -> None:
    """Powertools' Logger (what the handler logs with) and SilentLogger fed the same calls: each entry keeps the
    message, the level and every ``extra`` field the JSON log line carries."""
    from aws_lambda_powertools import Logger

    stream = io.StringIO()
    real, silent = Logger(service="fidelity", stream=stream), SilentLogger()
    for target in (real, silent):
        target.warning("circuit breaker state store failed; failing open", extra={"error": "timeout"})
        target.error("endpoint answer unusable", extra={"reason": "invalid_output", "rows": 3})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            target.exception("fallback model could not be loaded")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == len(silent.entries) == 3
    for line, (level, message, extra) in zip(lines, silent.entries, strict=True):
        assert (line["level"], line["message"]) == ({"exception": "ERROR"}.get(level, level.upper()), message)
        assert extra.items() <= line.items()
        assert ("exception" in line) == (level == "exception")
    logging.getLogger("fidelity").handlers.clear()


def test_the_attribute_patcher_undoes_like_monkeypatch() -> None:
    """pytest's MonkeyPatch: several settings of one attribute, undone in reverse, leave the original."""
    class Target:
        value = "original"

    def observed(patcher: Any, undo: Callable[[], None]) -> list[str]:
        seen = []
        for value in ("first", "second"):
            patcher.setattr(Target, "value", value)
            seen.append(Target.value)
        undo()
        return [*seen, Target.value]

    ours = AttributePatcher()
    theirs = pytest.MonkeyPatch()
    assert observed(ours, ours.undo) == observed(theirs, theirs.undo) == ["first", "second", "original"]
