"""Scheduled health check: each endpoint variant answers its package's golden payloads correctly, or fails.

Handler string: ``lambdas.health_check.handler.handler`` (EventBridge schedule; the event is ignored).

Environment (read once at cold start): ``mlsettings.functions.contracts.HealthCheckEnvironment``.

Metrics (EMF, one data point per checked variant per run): ``HealthCheckPassed`` (1 or 0, unit Count) with
dimensions ``Endpoint`` and ``Variant``. Nothing is published while the endpoint is being created or
updated, or before it exists: alarms on the metric should treat missing data as not breaching and rely
on the deployer (which checks the new model itself) during rollouts.
The function never raises for an unhealthy endpoint (that is a result, not an error); it raises only when
SageMaker cannot be asked at all, so its own Errors metric means "the health check is blind".
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from mlplatform.serving.golden_check import GoldenPayloads
from mlplatform.serving.health_run import HealthReport, run_health_check
from mlsettings.functions.contracts import HealthCheckEnvironment
from mlsettings.vocabulary import Metric

# Powertools reads POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE itself (the contract writes them).
logger = Logger()
tracer = Tracer()
# service="" keeps Powertools from adding a "service" dimension: alarms match exactly {Endpoint, Variant}.
metrics = Metrics(service="")

SETTINGS = HealthCheckEnvironment.from_env(os.environ)
# Golden payloads per package ARN: a package's artifacts never change, so warm invocations skip S3.
_GOLDEN_CACHE: dict[str, GoldenPayloads] = {}


@cache
def clients() -> tuple[Any, Any, Any]:
    """Created on first use (not at import) so tests can import the module before mocking AWS."""
    runtime_config = Config(read_timeout=SETTINGS.invoke_timeout_seconds, connect_timeout=3,
                            retries={"mode": "standard", "total_max_attempts": 2})
    return (boto3.client("sagemaker"), boto3.client("s3"),
            boto3.client("sagemaker-runtime", config=runtime_config))


def publish(report: HealthReport) -> None:
    """One EMF document per variant (each carries its own Variant dimension value)."""
    for verdict in report.verdicts:
        metrics.add_dimension(name=Metric.ENDPOINT_DIMENSION, value=report.endpoint_name)
        metrics.add_dimension(name=Metric.VARIANT_DIMENSION, value=verdict.variant)
        metrics.add_metric(name=Metric.HEALTH_CHECK_PASSED, unit=MetricUnit.Count, value=1 if verdict.passed else 0)
        version = (verdict.model_package_arn or "").rsplit("/", 1)[-1]
        if version.isdigit():  # the dashboard's "model version per variant"
            metrics.add_metric(name=Metric.SERVED_MODEL_VERSION, unit=MetricUnit.NoUnit, value=int(version))
        metrics.flush_metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sagemaker, s3, runtime = clients()
    report = run_health_check(sagemaker_client=sagemaker, s3_client=s3, runtime_client=runtime,
                              endpoint_name=SETTINGS.endpoint_name, golden_cache=_GOLDEN_CACHE)
    publish(report)
    summary = report.to_dict()
    if report.skipped_reason:
        logger.info("health check skipped", extra={"reason": report.skipped_reason})
    elif report.healthy:
        logger.info("health check passed", extra={"variants": [v.summary() for v in report.verdicts]})
    else:
        logger.error("health check failed", extra=summary)
    return summary
