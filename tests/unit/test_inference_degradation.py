"""The degradation ladder, the response shape and the exactly-once prediction log, with in-memory doubles."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mlplatform.inference.circuit_breaker import BreakerSettings, CircuitBreaker
from mlplatform.inference.degradation import InferenceService, ServiceSettings
from mlplatform.inference.request_validation import Row, ValidationLimits, rows_to_csv
from mlplatform.inference.response_cache import CachedAnswer, cache_key
from mlsettings.schema import DataSchema
from testkit.inference_doubles import (
    CountingMetrics,
    InMemoryBreakerStore,
    InMemoryPredictionLog,
    InMemoryResponseCache,
    SilentLogger,
    StubbedEndpoint,
    healthy_probability,
)

SCHEMA = DataSchema.load(Path(__file__).resolve().parents[2] / "pipelines" / "schemas" / "breast_cancer.json")
ROW = [float(i + 1) for i in range(30)]
NOW = 1_750_000_000.0


class ConstantFallback:
    model_version = "fallback/v7"

    def __init__(self, probability: float = 0.3, *, broken: bool = False) -> None:
        self.probability = probability
        self.broken = broken

    def score(self, rows: Sequence[Row]) -> tuple[float, ...]:
        if self.broken:
            raise ArithmeticError("corrupt coefficients")
        return (self.probability,) * len(rows)


class Harness:
    def __init__(self, *, fault: str | None = None, fallback: ConstantFallback | None = None,
                 threshold: int = 3) -> None:
        self.fault = fault
        self.endpoint = StubbedEndpoint(lambda: self.fault)
        self.store = InMemoryBreakerStore()
        self.cache = InMemoryResponseCache()
        self.log = InMemoryPredictionLog()
        self.metrics = CountingMetrics()
        self.logger = SilentLogger()
        self.service = InferenceService(
            schema=SCHEMA,
            settings=ServiceSettings(endpoint_name="ep", limits=ValidationLimits(max_rows=10, max_body_bytes=65536),
                                     safe_default_probability=0.5, cache_ttl_seconds=60),
            sagemaker_runtime=self.endpoint,
            breaker=CircuitBreaker(store=self.store, clock=lambda: NOW, settings=BreakerSettings(
                failure_threshold=threshold, cooldown_seconds=30, state_cache_seconds=0, trial_timeout_seconds=5)),
            response_cache=self.cache, prediction_log=self.log, fallback_model=fallback, metrics=self.metrics,
            logger=self.logger, clock=lambda: NOW)

    def call(self, rows: list[list[float]] | None = None, **extra: Any) -> tuple[int, dict[str, Any]]:
        event = {"body": json.dumps({"instances": rows or [ROW], **extra}),
                 "requestContext": {"requestId": "r-1"}}
        response = self.service.handle(event, request_id="r-1")
        assert response["headers"] == {"content-type": "application/json"}
        return response["statusCode"], json.loads(response["body"])

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.lines]


def test_a_healthy_endpoint_answers_undegraded_and_fills_the_cache() -> None:
    h = Harness()
    status, body = h.call([ROW, ROW[::-1]], inference_id="client-7")
    p0, p1 = healthy_probability(rows_to_csv([tuple(ROW)])), healthy_probability(rows_to_csv([tuple(ROW[::-1])]))
    assert status == 200
    assert body == {"inference_id": "client-7", "source": "endpoint", "degraded": False,
                    "degradation_reason": None, "model_version": "ep/Champion",
                    "predictions": [{"probability": p0, "label": int(p0 >= 0.5)},
                                    {"probability": p1, "label": int(p1 >= 0.5)}]}
    assert len(h.cache) == 1
    assert h.metrics.fallbacks == {}


def test_a_failing_endpoint_is_answered_by_the_fallback_model_first() -> None:
    h = Harness(fault="model_error", fallback=ConstantFallback(0.7))
    _, body = h.call()
    assert (body["source"], body["degraded"], body["degradation_reason"]) == ("fallback_model", True, "model_error")
    assert body["model_version"] == "fallback/v7"
    assert body["predictions"] == [{"probability": 0.7, "label": 1}]
    assert h.metrics.fallbacks == {"model_error": 1}


def test_without_a_fallback_model_a_cached_answer_for_the_same_input_is_served() -> None:
    h = Harness()
    _, fresh = h.call([ROW])
    h.fault = "throttling"
    _, cached = h.call([[int(v) for v in ROW]])  # the same input, written differently
    assert (cached["source"], cached["degradation_reason"]) == ("cache", "throttled")
    assert cached["predictions"] == fresh["predictions"]
    assert cached["model_version"] == "ep/Champion"


def test_a_broken_fallback_model_degrades_to_the_cache_and_is_counted() -> None:
    h = Harness(fallback=ConstantFallback(broken=True))
    h.call()
    h.fault = "server_error"
    _, body = h.call()
    assert body["source"] == "cache"
    assert h.metrics.dependency_errors == {"fallback_model": 1}


def test_with_nothing_else_the_safe_default_is_served() -> None:
    h = Harness(fault="read_timeout")
    _, body = h.call([ROW, ROW])
    assert (body["source"], body["degradation_reason"], body["model_version"]) == ("default", "timeout",
                                                                                   "safe-default")
    assert body["predictions"] == [{"probability": 0.5, "label": 1}] * 2


def test_an_expired_cache_entry_is_not_served() -> None:
    h = Harness(fault="throttling")
    key = cache_key(SCHEMA, rows_to_csv([tuple(ROW)]))
    h.cache.put(key, CachedAnswer(answers=(0.9,), model_version="old", stored_at=NOW - 100),
                expires_at=NOW - 1)
    assert h.call()[1]["source"] == "default"


def test_an_open_circuit_skips_the_endpoint_and_says_so() -> None:
    h = Harness(fault="service_unavailable", threshold=2, fallback=ConstantFallback())
    h.call()
    h.call()
    calls = h.endpoint.calls
    _, body = h.call()
    assert h.endpoint.calls == calls
    assert body["degradation_reason"] == "circuit_open"
    assert h.metrics.fallbacks == {"server_error": 2, "circuit_open": 1}


def test_a_bad_request_is_refused_without_calling_the_endpoint_or_logging_a_prediction() -> None:
    h = Harness()
    status, body = h.call([[1.0, 2.0]])
    assert status == 400
    assert body == {"message": "instances[0] has 2 values; the schema has 30 features (" +
                    ", ".join(SCHEMA.feature_names) + ")", "request_id": "r-1"}
    assert h.endpoint.calls == 0
    assert h.log.lines == []
    assert h.metrics.rejections == 1


@pytest.mark.parametrize("fault", [None, "model_error"])
def test_every_answer_is_logged_once_in_the_capture_format_with_source_and_version(fault: str | None) -> None:
    h = Harness(fault=fault, fallback=ConstantFallback(0.25))
    _, body = h.call([ROW, ROW])
    (record,) = h.records()
    assert record["eventMetadata"]["eventId"] == "r-1"
    assert record["eventMetadata"]["inferenceId"] == body["inference_id"] == "r-1"
    assert record["eventMetadata"]["inferenceTime"].startswith("2025-06-15T")
    custom = record["eventMetadata"]["customAttributes"]
    assert custom["source"] == body["source"]
    assert custom["model_version"] == body["model_version"]
    assert custom["degraded"] == ("true" if fault else "false")
    assert custom["request_id"] == "r-1"
    assert custom["fallback_reason"] == (fault or "")
    assert record["captureData"]["endpointInput"]["observedContentType"] == "text/csv"
    assert record["captureData"]["endpointInput"]["data"] == rows_to_csv([tuple(ROW)] * 2)
    output = record["captureData"]["endpointOutput"]["data"]
    assert [float(v) for v in output.replace(",", "\n").split()] == [
        p["probability"] for p in body["predictions"]]


def test_a_log_outage_still_answers_counts_it_and_keeps_the_record_in_the_function_log() -> None:
    h = Harness()
    h.log.fail_next = 1
    status, body = h.call()
    assert status == 200 and body["source"] == "endpoint"
    assert h.metrics.dependency_errors == {"prediction_log": 1}
    level, message, extra = h.logger.entries[-1]
    assert (level, message) == ("error", "prediction log delivery failed")
    assert extra["capture_record"]["eventMetadata"]["eventId"] == "r-1"


def test_a_defect_while_serving_still_answers_with_the_safe_default() -> None:
    h = Harness()
    h.service._breaker = None  # type: ignore[assignment]  # any unexpected exception will do
    status, body = h.call()
    assert (status, body["source"], body["degradation_reason"]) == (200, "default", "internal_error")
    assert h.logger.entries[-1][0] == "exception"
    assert len(h.records()) == 1
