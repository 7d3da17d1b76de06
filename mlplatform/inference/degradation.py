"""Answers every valid request: from the endpoint when it can, otherwise by degrading in a fixed order.

    endpoint ──fails / circuit open──► fallback model ──missing or broken──► cached answer for the same
    input ──miss──► configured safe default

Every answer says which source served it (``source``), whether it is degraded and why, and which model
produced the numbers; every answer is logged exactly once to the prediction log. The order puts the
fallback model before the cache because it answers every input with a model (the cache only repeats
inputs seen before, possibly from an older model) and costs no network call.

This module takes all of its collaborators as arguments; ``handler.py`` wires the AWS-backed ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from mlcore.drift.capture import build_capture_record
from mlcore.outputs import output_for
from mlplatform.inference.circuit_breaker import CircuitBreaker
from mlplatform.inference.endpoint_invoker import EndpointFailure, SageMakerRuntime, invoke_endpoint
from mlplatform.inference.prediction_log import PredictionLog, PredictionLogError
from mlplatform.inference.request_validation import (
    InferenceRequest,
    RequestRejected,
    Row,
    ValidationLimits,
    parse_request,
    rows_to_csv,
)
from mlplatform.inference.response_cache import CachedAnswer, ResponseCache, ResponseCacheError, cache_key
from mlsettings.schema import DataSchema

SOURCE_ENDPOINT = "endpoint"
SOURCE_FALLBACK_MODEL = "fallback_model"
SOURCE_CACHE = "cache"
SOURCE_DEFAULT = "default"
SOURCES = (SOURCE_ENDPOINT, SOURCE_FALLBACK_MODEL, SOURCE_CACHE, SOURCE_DEFAULT)
CIRCUIT_OPEN = "circuit_open"
INTERNAL_ERROR = "internal_error"
SAFE_DEFAULT_MODEL_VERSION = "safe-default"


class FallbackScorer(Protocol):
    @property
    def model_version(self) -> str: ...

    def score(self, rows: Sequence[Row]) -> tuple[Any, ...]: ...


class ServiceMetrics(Protocol):
    def served(self, *, source: str, rows: int) -> None: ...

    def fallback(self, *, reason: str) -> None: ...

    def dependency_error(self, *, dependency: str) -> None: ...

    def rejected(self) -> None: ...


class EventLogger(Protocol):
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...

    def error(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    endpoint_name: str
    limits: ValidationLimits
    safe_default_probability: float
    decision_threshold: float = 0.5
    cache_ttl_seconds: float = 86_400.0

    def __post_init__(self) -> None:
        for name in ("safe_default_probability", "decision_threshold"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


@dataclass(frozen=True, kw_only=True)
class InferenceAnswer:
    inference_id: str
    source: str
    degradation_reason: str | None
    model_version: str
    answers: tuple[Any, ...]
    """One answer per row in the model's kind's shape (mlcore.outputs)."""
    items: tuple[dict[str, Any], ...]
    """The API's prediction per row: ``{"probability", "label"}`` (binary, the label from the decision
    threshold), ``{"label", "probabilities"}`` (multiclass) or ``{"value"}`` (regression)."""

    @property
    def degraded(self) -> bool:
        return self.source != SOURCE_ENDPOINT

    @property
    def labels(self) -> tuple[Any, ...]:
        """Each row's label (binary and multiclass; empty for regression)."""
        return tuple(item["label"] for item in self.items if "label" in item)

    def to_body(self) -> dict[str, Any]:
        return {
            "inference_id": self.inference_id,
            "source": self.source,
            "degraded": self.degraded,
            "degradation_reason": self.degradation_reason,
            "model_version": self.model_version,
            "predictions": list(self.items),
        }


class InferenceService:
    def __init__(self, *, schema: DataSchema, settings: ServiceSettings, sagemaker_runtime: SageMakerRuntime,
                 breaker: CircuitBreaker, response_cache: ResponseCache, prediction_log: PredictionLog,
                 fallback_model: FallbackScorer | None, metrics: ServiceMetrics, logger: EventLogger,
                 clock: Callable[[], float]) -> None:
        self._schema = schema
        self._output = output_for(schema.label)
        self._settings = settings
        self._sagemaker_runtime = sagemaker_runtime
        self._breaker = breaker
        self._cache = response_cache
        self._log = prediction_log
        self._fallback_model = fallback_model
        self._metrics = metrics
        self._logger = logger
        self._clock = clock

    def handle(self, event: Mapping[str, Any], *, request_id: str) -> dict[str, Any]:
        """One API Gateway (payload 2.0) event in, one HTTP response out; never raises."""
        try:
            request = parse_request(event, schema=self._schema, limits=self._settings.limits)
        except RequestRejected as rejected:
            self._metrics.rejected()
            return _http_response(400, {"message": str(rejected), "request_id": request_id})
        answer = self.answer(request, request_id=request_id)
        return _http_response(200, answer.to_body())

    def answer(self, request: InferenceRequest, *, request_id: str) -> InferenceAnswer:
        inference_id = request.inference_id or request_id
        try:
            answer = self._serve(request, inference_id)
        except Exception:
            # A defect here must not cost the caller an answer; it is logged and counted instead.
            self._logger.exception("serving failed unexpectedly; answering with the safe default")
            answer = self._safe_default(len(request.rows), inference_id, INTERNAL_ERROR)
            self._metrics.fallback(reason=INTERNAL_ERROR)
        self._metrics.served(source=answer.source, rows=len(answer.answers))
        self._write_log(request, answer, request_id)
        return answer

    def _serve(self, request: InferenceRequest, inference_id: str) -> InferenceAnswer:
        csv_payload = rows_to_csv(request.rows)
        key = cache_key(self._schema, csv_payload)
        permit = self._breaker.before_call()
        if not permit.allowed:
            reason = CIRCUIT_OPEN
        else:
            try:
                endpoint_answer = invoke_endpoint(
                    self._sagemaker_runtime, endpoint_name=self._settings.endpoint_name,
                    csv_payload=csv_payload, row_count=len(request.rows), inference_id=request.inference_id,
                    label=self._schema.label)
            except EndpointFailure as failure:
                self._breaker.record_failure(permit)
                reason = failure.reason
                self._logger.warning("endpoint call failed", extra={"reason": failure.reason,
                                                                    "detail": failure.detail[:500]})
            else:
                self._breaker.record_success(permit)
                self._remember(key, endpoint_answer.answers, endpoint_answer.model_version)
                return self._answer(SOURCE_ENDPOINT, None, endpoint_answer.model_version,
                                    endpoint_answer.answers, inference_id)
        self._metrics.fallback(reason=reason)
        return self._degrade(request, key, reason, inference_id)

    def _degrade(self, request: InferenceRequest, key: str, reason: str,
                 inference_id: str) -> InferenceAnswer:
        if self._fallback_model is not None:
            try:
                answers = self._fallback_model.score(request.rows)
                self._check_answers(answers, len(request.rows))
            except Exception as err:  # the fallback is third-party-shaped code: any failure means "next"
                self._metrics.dependency_error(dependency="fallback_model")
                self._logger.error("fallback model failed", extra={"error": repr(err)[:500]})
            else:
                return self._answer(SOURCE_FALLBACK_MODEL, reason, self._fallback_model.model_version,
                                    tuple(answers), inference_id)
        try:
            cached = self._cache.get(key, now=self._clock())
            if cached is not None and len(cached.answers) == len(request.rows):
                self._check_answers(cached.answers, len(request.rows))
        except (ResponseCacheError, ValueError) as err:
            self._metrics.dependency_error(dependency="response_cache")
            self._logger.warning("response cache read failed", extra={"error": str(err)[:500]})
            cached = None
        if cached is not None and len(cached.answers) == len(request.rows):
            return self._answer(SOURCE_CACHE, reason, cached.model_version, cached.answers, inference_id)
        return self._safe_default(len(request.rows), inference_id, reason)

    def _safe_default(self, rows: int, inference_id: str, reason: str) -> InferenceAnswer:
        answer = self._output.default_answer(self._schema.label, self._settings.safe_default_probability)
        return self._answer(SOURCE_DEFAULT, reason, SAFE_DEFAULT_MODEL_VERSION, (answer,) * rows, inference_id)

    def _check_answers(self, answers: Sequence[Any], rows: int) -> None:
        """ValueError unless there is one valid answer of the model's kind per row."""
        if len(answers) != rows:
            raise ValueError(f"{len(answers)} answers for {rows} rows")
        for answer in answers:
            problem = self._output.problem(answer, self._schema.label)
            if problem is not None:
                raise ValueError(problem)

    def _answer(self, source: str, reason: str | None, model_version: str, answers: Sequence[Any],
                inference_id: str) -> InferenceAnswer:
        threshold = self._settings.decision_threshold
        return InferenceAnswer(inference_id=inference_id, source=source, degradation_reason=reason,
                               model_version=model_version, answers=tuple(answers),
                               items=tuple(self._output.api_item(a, threshold) for a in answers))

    def _remember(self, key: str, answers: tuple[Any, ...], model_version: str) -> None:
        now = self._clock()
        try:
            self._cache.put(key, CachedAnswer(answers=answers, model_version=model_version, stored_at=now),
                            expires_at=now + self._settings.cache_ttl_seconds)
        except ResponseCacheError as err:
            self._metrics.dependency_error(dependency="response_cache")
            self._logger.warning("response cache write failed", extra={"error": str(err)[:500]})

    def _write_log(self, request: InferenceRequest, answer: InferenceAnswer, request_id: str) -> None:
        record: Mapping[str, Any] | None = None
        try:
            record = build_capture_record(
                rows=request.rows, probabilities=answer.answers, output=self._output,
                inference_time=datetime.fromtimestamp(self._clock(), UTC), event_id=request_id,
                inference_id=answer.inference_id, content_type="text/csv",
                custom={"source": answer.source, "model_version": answer.model_version,
                        "degraded": "true" if answer.degraded else "false",
                        "fallback_reason": answer.degradation_reason or "",
                        "request_id": request_id})
            self._log.write(record)
        except (PredictionLogError, TypeError, ValueError) as err:
            # The answer is already decided; losing the caller's response over a log outage would be
            # worse than a gap. The record goes to CloudWatch Logs instead, so it is not lost.
            self._metrics.dependency_error(dependency="prediction_log")
            self._logger.error("prediction log delivery failed",
                               extra={"error": str(err)[:500], "capture_record": record,
                                      "request_id": request_id, "source": answer.source})


def _http_response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body, separators=(",", ":"), allow_nan=False)}
