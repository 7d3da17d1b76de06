"""Inference API Lambda: API Gateway HTTP API (payload 2.0, IAM auth) → SageMaker endpoint, degrading
gracefully (fallback model → cached answer → safe default) when the endpoint fails or the breaker is open.

Handler string: ``lambdas.inference.handler.handler``. This module stays light on purpose (boto3 and
Powertools only; no numpy/pandas/scipy anywhere in its import graph): its import time is the cold start.
The environment is parsed, the schema and the fallback model loaded and the AWS clients created once per
execution environment, on the first invocation; all logic lives in the modules it wires together.
"""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from lambdas.inference.settings import InferenceSettings
from mlplatform.inference.circuit_breaker import BreakerSettings, CircuitBreaker, DynamoDbBreakerStore
from mlplatform.inference.degradation import FallbackScorer, InferenceService, ServiceSettings
from mlplatform.inference.endpoint_invoker import SageMakerRuntime, sagemaker_runtime_config
from mlplatform.inference.fallback_loading import load_fallback_scorer
from mlplatform.inference.prediction_log import FirehosePredictionLog
from mlplatform.inference.request_validation import ValidationLimits
from mlplatform.inference.response_cache import DynamoDbResponseCache
from mlsettings.schema import DataSchema
from mlsettings.vocabulary import Metric

# Powertools reads POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE itself (the contract writes them).
logger = Logger()
# No Powertools Tracer here, on purpose: creating it imports the X-Ray SDK (~300 ms measured), which alone
# would break the cold-start target of this user-facing function (issue 6: import < 300 ms). Lambda's
# active tracing (set by the Lambda factory) still records every invocation as a trace segment; the
# per-call breakdown comes from the Fallbacks/Responses metrics and the structured logs instead.
metrics = Metrics()

# Supporting stores get tight limits: they sit on the request path but are never worth the endpoint SLA.
_SUPPORT_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=1,
                                retries={"mode": "standard", "total_max_attempts": 2})
_DEPENDENCY_METRICS = {
    "breaker_store": Metric.BREAKER_STORE_ERRORS,
    "response_cache": Metric.RESPONSE_CACHE_ERRORS,
    "prediction_log": "PredictionLogFailures",
    "fallback_model": Metric.FALLBACK_MODEL_ERRORS,
}

_service: InferenceService | None = None


class PowertoolsServiceMetrics:
    """CloudWatch metrics (EMF) for the service; ``Fallbacks`` carries the ``reason`` dimension."""

    def served(self, *, source: str, rows: int) -> None:
        # Responses / DegradedResponses is the fallback rate the paging alarm watches.
        metrics.add_metric(name=Metric.RESPONSES, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=Metric.PREDICTIONS, unit=MetricUnit.Count, value=rows)
        if source != "endpoint":
            metrics.add_metric(name=Metric.DEGRADED_RESPONSES, unit=MetricUnit.Count, value=1)

    def fallback(self, *, reason: str) -> None:
        # EMF applies one dimension set to every metric of a flush; a per-reason count therefore goes
        # out as its own single metric. single_metric prints unconditionally, hence the explicit check.
        if is_metrics_disabled():
            return
        with single_metric(name=Metric.FALLBACKS, unit=MetricUnit.Count, value=1, namespace=metrics.namespace,
                           default_dimensions={"service": str(metrics.service), "reason": reason,
                                               **metrics.default_dimensions}):
            pass

    def dependency_error(self, *, dependency: str) -> None:
        metrics.add_metric(name=_DEPENDENCY_METRICS.get(dependency, Metric.DEPENDENCY_ERRORS),
                           unit=MetricUnit.Count, value=1)

    def rejected(self) -> None:
        metrics.add_metric(name=Metric.REJECTED_REQUESTS, unit=MetricUnit.Count, value=1)


def build_service(settings: InferenceSettings, *, session: boto3.session.Session | None = None,
                  sagemaker_runtime: SageMakerRuntime | None = None) -> InferenceService:
    """Everything one execution environment keeps between invocations.

    ``sagemaker_runtime`` lets tests inject faults (moto's endpoint never fails); the deployed function
    always builds its own client with the SLA's timeouts and retry bound.
    """
    session = session or boto3.session.Session()
    # Every metric names the model's endpoint: one platform serves many models, each with its own alarms and
    # dashboard (stacks/monitoring.py reads the same dimension).
    metrics.set_default_dimensions(**{Metric.ENDPOINT_DIMENSION: settings.endpoint_name})
    service_metrics = PowertoolsServiceMetrics()
    schema = DataSchema.load(settings.data_schema_path)
    if sagemaker_runtime is None:
        sagemaker_runtime = session.client("sagemaker-runtime", config=sagemaker_runtime_config(
            connect_timeout=settings.endpoint_connect_timeout_seconds,
            read_timeout=settings.endpoint_read_timeout_seconds,
            max_attempts=settings.endpoint_max_attempts))
    dynamodb = session.client("dynamodb", config=_SUPPORT_CLIENT_CONFIG)
    firehose = session.client("firehose", config=_SUPPORT_CLIENT_CONFIG)

    def breaker_store_failed(err: Exception) -> None:
        service_metrics.dependency_error(dependency="breaker_store")
        logger.warning("circuit breaker state store failed; failing open", extra={"error": str(err)[:500]})

    breaker = CircuitBreaker(
        store=DynamoDbBreakerStore(dynamodb, table_name=settings.breaker_table_name,
                                   breaker_id=settings.endpoint_name, clock=time.time),
        settings=BreakerSettings(failure_threshold=settings.breaker_failure_threshold,
                                 cooldown_seconds=settings.breaker_cooldown_seconds,
                                 state_cache_seconds=settings.breaker_state_cache_seconds,
                                 trial_timeout_seconds=settings.breaker_trial_timeout_seconds),
        clock=time.time, on_store_error=breaker_store_failed)
    fallback: FallbackScorer | None = None
    if settings.fallback_model_bucket and settings.fallback_model_key:
        try:
            fallback = load_fallback_scorer(session.client("s3", config=_SUPPORT_CLIENT_CONFIG),
                                            bucket=settings.fallback_model_bucket,
                                            key=settings.fallback_model_key, schema=schema)
        except Exception:
            service_metrics.dependency_error(dependency="fallback_model")
            logger.exception("fallback model could not be loaded; degrading to cache and safe default")
    return InferenceService(
        schema=schema,
        settings=ServiceSettings(
            endpoint_name=settings.endpoint_name,
            limits=ValidationLimits(max_rows=settings.max_rows, max_body_bytes=settings.max_body_bytes,
                                    allow_unknown_categories=settings.allow_unknown_categories),
            safe_default_probability=settings.safe_default_probability,
            decision_threshold=settings.decision_threshold,
            cache_ttl_seconds=settings.response_cache_ttl_seconds),
        sagemaker_runtime=sagemaker_runtime,
        breaker=breaker,
        response_cache=DynamoDbResponseCache(dynamodb, table_name=settings.response_cache_table_name),
        prediction_log=FirehosePredictionLog(firehose, stream_name=settings.prediction_log_stream_name),
        fallback_model=fallback,
        metrics=service_metrics,
        logger=logger,
        clock=time.time,
    )


def current_service() -> InferenceService:
    global _service  # noqa: PLW0603 - one service per execution environment is the point
    if _service is None:
        _service = build_service(InferenceSettings.from_environ(os.environ))
    return _service


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_id = str(event.get("requestContext", {}).get("requestId") or context.aws_request_id)
    return current_service().handle(event, request_id=request_id)
