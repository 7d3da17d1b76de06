"""The endpoint invoker: output validation and the mapping of every failure to a reason."""

from __future__ import annotations

import io
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from mlplatform.inference.endpoint_invoker import (
    EndpointFailure,
    invoke_endpoint,
    parse_probabilities,
    sagemaker_runtime_config,
)
from testkit.inference_doubles import FAULT_REASONS, StubbedEndpoint


@pytest.mark.parametrize(("body", "rows", "expected"), [
    (b"0.1\n0.9\n", 2, (0.1, 0.9)),
    (b"0.1,0.9", 2, (0.1, 0.9)),
    (b"1\n0", 2, (1.0, 0.0)),
])
def test_csv_answers_in_either_layout_parse(body: bytes, rows: int, expected: tuple[float, ...]) -> None:
    assert parse_probabilities(body, rows) == expected


@pytest.mark.parametrize(("body", "rows", "message"), [
    (b"0.1\n", 2, "returned 1 values for 2 rows"),
    (b"0.1\n0.2\n0.3", 2, "returned 3 values for 2 rows"),
    (b"0.1\nabc", 2, "value 1 is not a number"),
    (b"nan", 1, "not a probability"),
    (b"1.5", 1, "not a probability"),
    (b"-0.01", 1, "not a probability"),
    (b"\xff\xfe", 1, "not UTF-8"),
    (b"", 1, "returned 0 values for 1 rows"),
])
def test_unusable_answers_are_invalid_output(body: bytes, rows: int, message: str) -> None:
    with pytest.raises(EndpointFailure) as caught:
        parse_probabilities(body, rows)
    assert caught.value.reason == "invalid_output"
    assert message in caught.value.detail


@pytest.mark.parametrize("fault", sorted(FAULT_REASONS))
def test_every_injected_fault_maps_to_its_reason(fault: str) -> None:
    endpoint = StubbedEndpoint(lambda: fault)
    with pytest.raises(EndpointFailure) as caught:
        invoke_endpoint(endpoint, endpoint_name="ep", csv_payload="1.0,2.0", row_count=1, inference_id=None)
    assert caught.value.reason == FAULT_REASONS[fault]


def test_a_real_client_sends_csv_with_the_inference_id_and_reports_the_variant() -> None:
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    expected: dict[str, Any] = {"EndpointName": "ep", "Body": b"1.0,2.0\n3.0,4.0", "ContentType": "text/csv",
                                "Accept": "text/csv", "InferenceId": "id-1"}
    with Stubber(client) as stubber:
        stubber.add_response("invoke_endpoint", {
            "Body": StreamingBody(io.BytesIO(b"0.25\n0.75\n"), 10), "InvokedProductionVariant": "Challenger"},
            expected)
        stubber.add_client_error("invoke_endpoint", service_error_code="ModelError", http_status_code=424)
        answer = invoke_endpoint(client, endpoint_name="ep", csv_payload="1.0,2.0\n3.0,4.0", row_count=2,
                                 inference_id="id-1")
        with pytest.raises(EndpointFailure) as caught:
            invoke_endpoint(client, endpoint_name="ep", csv_payload="1.0", row_count=1, inference_id=None)
    assert answer.answers == (0.25, 0.75)
    assert answer.model_version == "ep/Challenger"
    assert caught.value.reason == "model_error"


def test_the_client_config_bounds_attempts_and_time() -> None:
    config = sagemaker_runtime_config(connect_timeout=0.5, read_timeout=1.5, max_attempts=2)
    assert (config.connect_timeout, config.read_timeout) == (0.5, 1.5)
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
