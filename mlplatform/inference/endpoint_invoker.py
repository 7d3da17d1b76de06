"""Calls the SageMaker endpoint and turns every way it can fail into one EndpointFailure with a reason.

The client passed in carries the SLA: connect/read timeouts and a small ``max_attempts`` in its botocore
Config (see ``sagemaker_runtime_config``), so throttling and 5XX answers are retried by botocore a bounded
number of times before they reach this module. Anything that comes back here unusable - an error, a
timeout, or an answer that is not one finite probability in [0, 1] per row - is a failure: serving a
malformed score as if it were the model's would be worse than degrading openly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from mlcore.outputs import OutputError, output_for, parse_csv_answers
from mlsettings.schema import LabelSpec

# Reasons double as the value of the `reason` metric dimension: keep them few and stable.
THROTTLED = "throttled"
SERVER_ERROR = "server_error"
MODEL_ERROR = "model_error"
TIMEOUT = "timeout"
INVALID_OUTPUT = "invalid_output"
ENDPOINT_UNAVAILABLE = "endpoint_unavailable"
CLIENT_ERROR = "client_error"
CONNECTION_ERROR = "connection_error"

_THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException",
                               "ModelNotReadyException"})
_SERVER_CODES = frozenset({"InternalFailure", "InternalServerError", "ServiceUnavailable",
                           "InternalDependencyException"})
# ValidationError is also what InvokeEndpoint answers while the endpoint is missing, being created,
# updated or deleted; the message is the only thing that tells those apart from a bad request.
_UNAVAILABLE_MARKERS = ("not found", "not in service", "is in creating", "is in updating", "is in deleting",
                        "is in failed", "is in systemupdating", "does not exist")


class EndpointFailure(Exception):
    """The endpoint did not produce a usable answer; ``reason`` is one of the module's reason constants."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class EndpointAnswer:
    answers: tuple[Any, ...]
    """One answer per row in the model's kind's shape (mlcore.outputs): a probability for a binary model."""
    model_version: str


class SageMakerRuntime(Protocol):
    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]: ...


def sagemaker_runtime_config(*, connect_timeout: float, read_timeout: float, max_attempts: int) -> Config:
    """Botocore settings that bound one endpoint call to about max_attempts * (connect + read) seconds.

    Standard retry mode retries throttling and 5XX with backoff; ``max_attempts`` counts the first try.
    """
    return Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                  retries={"mode": "standard", "total_max_attempts": max_attempts},
                  tcp_keepalive=True)


def invoke_endpoint(client: SageMakerRuntime, *, endpoint_name: str, csv_payload: str, row_count: int,
                    inference_id: str | None, label: LabelSpec | None = None) -> EndpointAnswer:
    """Send the rows as text/csv and return one validated answer per row (``label``: the model's label
    declaration, whose form is its kind; None: binary), or raise EndpointFailure."""
    kwargs: dict[str, Any] = {"EndpointName": endpoint_name, "Body": csv_payload.encode("utf-8"),
                              "ContentType": "text/csv", "Accept": "text/csv"}
    if inference_id is not None:
        # Lets SageMaker's own data capture carry the same id as our prediction log (a join key).
        kwargs["InferenceId"] = inference_id
    try:
        response = client.invoke_endpoint(**kwargs)
        body = response["Body"].read()
    except ClientError as err:
        raise classify_client_error(err) from err
    except (ReadTimeoutError, ConnectTimeoutError) as err:
        raise EndpointFailure(TIMEOUT, str(err)) from err
    except (EndpointConnectionError, ConnectionClosedError) as err:
        raise EndpointFailure(CONNECTION_ERROR, str(err)) from err
    except BotoCoreError as err:
        raise EndpointFailure(CONNECTION_ERROR, f"{type(err).__name__}: {err}") from err
    answers = parse_answers(body, row_count, label)
    variant = response.get("InvokedProductionVariant") or "unknown-variant"
    return EndpointAnswer(answers=answers, model_version=f"{endpoint_name}/{variant}")


def parse_answers(body: bytes, row_count: int, label: LabelSpec | None) -> tuple[Any, ...]:
    """One answer per row of the model's kind; a binary model's by ``parse_probabilities``."""
    if label is None or output_for(label).probability_per_row:
        return parse_probabilities(body, row_count)
    try:
        answers = parse_csv_answers(body.decode("utf-8"), label)
    except UnicodeDecodeError:
        raise EndpointFailure(INVALID_OUTPUT, "endpoint answer is not UTF-8 text") from None
    except OutputError as err:
        raise EndpointFailure(INVALID_OUTPUT, f"endpoint answer: {err}") from None
    if len(answers) != row_count or any(a is None for a in answers):
        raise EndpointFailure(INVALID_OUTPUT, f"endpoint returned {len(answers)} answers for {row_count} rows")
    for position, answer in enumerate(answers):
        problem = output_for(label).problem(answer, label)
        if problem is not None:
            raise EndpointFailure(INVALID_OUTPUT, f"answer {position}: {problem}")
    return tuple(answers)


def classify_client_error(err: ClientError) -> EndpointFailure:
    error = err.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    detail = f"{code}: {message}"
    if code in _THROTTLING_CODES or status == 429:
        return EndpointFailure(THROTTLED, detail)
    if code == "ModelError":
        return EndpointFailure(MODEL_ERROR, detail)
    if code in _SERVER_CODES or (isinstance(status, int) and status >= 500):
        return EndpointFailure(SERVER_ERROR, detail)
    if code == "ValidationError" and any(m in message.lower() for m in _UNAVAILABLE_MARKERS):
        return EndpointFailure(ENDPOINT_UNAVAILABLE, detail)
    return EndpointFailure(CLIENT_ERROR, detail)


def parse_probabilities(body: bytes, row_count: int) -> tuple[float, ...]:
    """One probability per row from a CSV answer (newline- or comma-separated); anything else is invalid."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise EndpointFailure(INVALID_OUTPUT, "endpoint answer is not UTF-8 text") from None
    cells = [c.strip() for c in text.replace(",", "\n").split("\n")]
    cells = [c for c in cells if c]
    if len(cells) != row_count:
        raise EndpointFailure(INVALID_OUTPUT, f"endpoint returned {len(cells)} values for {row_count} rows")
    values: list[float] = []
    for position, cell in enumerate(cells):
        try:
            value = float(cell)
        except ValueError:
            raise EndpointFailure(INVALID_OUTPUT,
                                  f"value {position} is not a number: {cell[:40]!r}") from None
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise EndpointFailure(INVALID_OUTPUT, f"value {position} is not a probability in [0, 1]: {value}")
        values.append(value)
    return tuple(values)
