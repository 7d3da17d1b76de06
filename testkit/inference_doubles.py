"""In-process stand-ins for the inference service's AWS-backed collaborators, for the tests and the benchmark.

They honour the same contracts as the DynamoDB and Firehose classes (the breaker store is a real
compare-and-set under a lock, the cache stores what DynamoDB would and checks it on read as the real one does)
so that the fault-injection test and the benchmark exercise the real state machine at in-memory speed;
tests/functional/test_testkit_fidelity.py runs the same assertions on each double and on its real adapter
(on moto). They live with the tests, outside every package a Lambda bundle can hold (formerly
``lambdas/inference/local_backends.py``).
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.response import StreamingBody

from mlplatform.inference.circuit_breaker import BreakerRecord
from mlplatform.inference.prediction_log import PredictionLogError, encode_record
from mlplatform.inference.response_cache import CachedAnswer, ResponseCacheError
from mlsettings.vocabulary import CHAMPION


class InMemoryBreakerStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._record = BreakerRecord()
        self.writes = 0
        self.conflicts = 0

    def read(self, *, consistent: bool) -> BreakerRecord:
        with self._lock:
            return self._record

    def compare_and_set(self, new: BreakerRecord, *, expected_version: int) -> bool:
        with self._lock:
            if self._record.version != expected_version:
                self.conflicts += 1
                return False
            self._record = new
            self.writes += 1
            return True


class InMemoryResponseCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[CachedAnswer, float]] = {}

    def get(self, key: str, *, now: float) -> CachedAnswer | None:
        with self._lock:
            entry = self._items.get(key)
        if entry is None or entry[1] <= now:
            return None
        # What DynamoDbResponseCache refuses on read: an item that does not hold answers (numbers or objects).
        if not all(isinstance(a, dict) or (isinstance(a, int | float) and not isinstance(a, bool)
                                           and math.isfinite(a)) for a in entry[0].answers):
            raise ResponseCacheError(f"cache entry {key[:12]} holds values that are not answers")
        return entry[0]

    def put(self, key: str, answer: CachedAnswer, *, expires_at: float) -> None:
        with self._lock:
            # Whole seconds, rounded up, as DynamoDbResponseCache stores its TTL attribute (epoch seconds).
            self._items[key] = (answer, float(math.ceil(expires_at)))

    def __len__(self) -> int:
        return len(self._items)


class InMemoryPredictionLog:
    """Keeps the encoded JSONL lines; ``fail_next`` simulates a Firehose outage for a number of writes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lines: list[bytes] = []
        self.fail_next = 0

    def write(self, record: Mapping[str, Any]) -> None:
        try:
            data = encode_record(record)
        except (TypeError, ValueError) as err:  # as FirehosePredictionLog reports a record it cannot encode
            raise PredictionLogError(f"capture record is not serialisable: {err}") from err
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                raise PredictionLogError("simulated Firehose outage")
            self.lines.append(data)


class CountingMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fallbacks: Counter[str] = Counter()
        self.served_by: Counter[str] = Counter()
        self.rows_by: Counter[str] = Counter()
        self.dependency_errors: Counter[str] = Counter()
        self.rejections = 0

    def served(self, *, source: str, rows: int) -> None:
        with self._lock:
            self.served_by[source] += 1
            self.rows_by[source] += rows

    def fallback(self, *, reason: str) -> None:
        with self._lock:
            self.fallbacks[reason] += 1

    def dependency_error(self, *, dependency: str) -> None:
        with self._lock:
            self.dependency_errors[dependency] += 1

    def rejected(self) -> None:
        with self._lock:
            self.rejections += 1


class SilentLogger:
    """Collects what the service would log, without formatting cost (benchmarks) or output (tests)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.entries.append(("warning", msg, dict(kwargs.get("extra") or {})))

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.entries.append(("error", msg, dict(kwargs.get("extra") or {})))

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.entries.append(("exception", msg, dict(kwargs.get("extra") or {})))


# Faults a stubbed endpoint can produce, and the failure reason the invoker must report for each.
FAULT_REASONS: Mapping[str, str] = {
    "throttling": "throttled",
    "server_error": "server_error",
    "service_unavailable": "server_error",
    "model_error": "model_error",
    "read_timeout": "timeout",
    "connect_timeout": "timeout",
    "malformed_output": "invalid_output",
    "wrong_count": "invalid_output",
    "out_of_range": "invalid_output",
    "endpoint_updating": "endpoint_unavailable",
    "endpoint_missing": "endpoint_unavailable",
}


def healthy_probability(csv_line: str) -> float:
    """A deterministic stand-in score, so tests can check that endpoint answers arrive unchanged."""
    digest = hashlib.sha256(csv_line.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


class StubbedEndpoint:
    """A SageMaker runtime client stand-in: healthy answers, or the fault ``plan`` names for this call.

    moto's invoke_endpoint never fails, so fault injection needs this (or a Stubber for single calls).
    """

    def __init__(self, plan: Callable[[], str | None] = lambda: None, *, variant: str = CHAMPION) -> None:
        self._plan = plan
        self._variant = variant
        self._lock = threading.Lock()
        self.calls = 0
        self.faults: Counter[str] = Counter()

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            fault = self._plan()
            if fault is not None:
                self.faults[fault] += 1
        lines = kwargs["Body"].decode("utf-8").split("\n")
        if fault is None:
            return self._answer("\n".join(repr(healthy_probability(line)) for line in lines) + "\n")
        if fault == "malformed_output":
            return self._answer("<html>502 Bad Gateway</html>")
        if fault == "wrong_count":
            return self._answer("0.5\n" * (len(lines) + 1))
        if fault == "out_of_range":
            return self._answer("\n".join("1.7" for _ in lines))
        if fault == "read_timeout":
            raise ReadTimeoutError(endpoint_url=_RUNTIME_URL)
        if fault == "connect_timeout":
            raise ConnectTimeoutError(endpoint_url=_RUNTIME_URL)
        code, status, members = _CLIENT_ERRORS[fault]
        raise sagemaker_runtime_error(code, status, str(members.get("Message", "Rate exceeded")),
                                      **{k: v for k, v in members.items() if k != "Message"})

    def _answer(self, text: str) -> dict[str, Any]:
        data = text.encode("utf-8")
        return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "text/csv",
                "InvokedProductionVariant": self._variant}


def sagemaker_runtime_error(code: str, status: int, message: str, **members: Any) -> ClientError:
    """An InvokeEndpoint error as botocore hands it to the caller: ``Error`` (code and message), the HTTP status
    in ``ResponseMetadata`` and, for an error the service model declares, the error shape's members at the top
    level (its ``Message``, and ModelError's ``OriginalStatusCode``/``OriginalMessage``), where botocore's
    parser puts them. ThrottlingException is one of AWS's common errors and has no shape of its own."""
    modeled = {} if code == "ThrottlingException" else {"Message": message, **members}
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status},
                        **modeled}, "InvokeEndpoint")


_RUNTIME_URL = "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/stub/invocations"
# fault: error code, HTTP status, the error's members (its message among them)
_CLIENT_ERRORS: Mapping[str, tuple[str, int, Mapping[str, Any]]] = {
    "throttling": ("ThrottlingException", 400, {"Message": "Rate exceeded"}),
    "server_error": ("InternalFailure", 500, {"Message": "An internal error occurred"}),
    "service_unavailable": ("ServiceUnavailable", 503, {"Message": "Service unavailable"}),
    "model_error": ("ModelError", 424, {
        "Message": 'Received server error (500) from primary with message "worker died".',
        "OriginalStatusCode": 500, "OriginalMessage": "worker died"}),
    "endpoint_updating": ("ValidationError", 400,
                          {"Message": "Endpoint stub of account 123456789012 is in Updating status"}),
    "endpoint_missing": ("ValidationError", 400, {"Message": "Endpoint stub of account 123456789012 not found."}),
}
