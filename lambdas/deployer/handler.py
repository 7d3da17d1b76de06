"""Serving deployer: the Lambda tasks of the deployment state machine (one function per task).

Handler strings: ``lambdas.deployer.handler.start_deployment``, ``….check_deployment``,
``….verify_and_record``, ``….record_failure``. The state machine is started by the EventBridge rule on
``source=mlops.promotion`` / ``detail-type=Model Promotion Accepted`` with the whole event as input.

Environment (parsed once at cold start; see ``settings.py``):
  ENVIRONMENT_NAME, ENDPOINT_NAME, MODEL_PACKAGE_GROUP, MODEL_EXECUTION_ROLE_ARN,
  CAPTURE_DESTINATION_URI, ARTIFACT_BUCKET, SERVING_SETTINGS (JSON of the environment's serving config),
  KMS_KEY_ARN, ROLLBACK_ALARM_NAMES (JSON list), SERVED_STAGES (comma-separated; empty: none),
  EVENT_BUS_NAME (default "default": where results go; forwarded to the registry's account),
  FALLBACK_MODEL_KEY (default serving/fallback_model.json), VPC_CONFIG (JSON or null), POLL_SECONDS (60),
  POWERTOOLS_METRICS_NAMESPACE (default MLOps).

Metrics (EMF, dimensions Endpoint and Stage): ``DeploymentSucceeded`` and ``DeploymentFailed`` (Count).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from lambdas.deployer.settings import settings_from_environment
from mlplatform.serving import deployment_flow
from mlplatform.serving.deployment_flow import DeployerClients
from mlsettings.vocabulary import Metric

# Powertools reads POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE itself (the contract writes them).
logger = Logger()
tracer = Tracer()
# service="" keeps Powertools from adding a "service" dimension: alarms match exactly {Endpoint, Stage}.
metrics = Metrics(service="")

SETTINGS = settings_from_environment(os.environ)


@cache
def clients() -> DeployerClients:
    """Created on first use (not at import) so that tests can import the module before mocking AWS."""
    runtime_config = Config(read_timeout=20, connect_timeout=3, retries={"mode": "standard", "total_max_attempts": 2})
    return DeployerClients(
        sagemaker=boto3.client("sagemaker"), runtime=boto3.client("sagemaker-runtime", config=runtime_config),
        s3=boto3.client("s3"), ssm=boto3.client("ssm"), events=boto3.client("events"),
        cloudwatch=boto3.client("cloudwatch"), autoscaling=boto3.client("application-autoscaling"))


def _now() -> datetime:
    return datetime.now(UTC)


def _count(name: str, state: dict[str, Any]) -> None:
    stage = str((state.get("request") or {}).get("target_stage") or "unknown")
    metrics.add_dimension(name=Metric.ENDPOINT_DIMENSION, value=SETTINGS.endpoint_name)
    metrics.add_dimension(name=Metric.STAGE_DIMENSION, value=stage)
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def start_deployment(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    plan = deployment_flow.start_deployment(event, clients=clients(), settings=SETTINGS, now=_now(),
                                            deployment_id=uuid.uuid4().hex[:12])
    if plan["action"] == "skip":
        logger.info("deployment skipped", extra={"reason": plan["skip_reason"], "request": plan["request"]})
    else:
        logger.info("deployment started", extra={k: plan[k] for k in (
            "deployment_id", "operation", "endpoint_config_name", "changed_variants", "deadline")})
    return plan


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def check_deployment(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = deployment_flow.check_deployment(event, clients=clients(), settings=SETTINGS, now=_now())
    logger.info("deployment status", extra={"deployment_id": state.get("deployment_id"), **state["status"]})
    return state


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def verify_and_record(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = deployment_flow.verify_and_record(event, clients=clients(), settings=SETTINGS)
    result = state["result"]
    _count("DeploymentSucceeded" if result["outcome"] == "deployed" else "DeploymentFailed", state)
    (logger.info if result["outcome"] == "deployed" else logger.error)(
        "deployment verified", extra={"deployment_id": state.get("deployment_id"), **result})
    return state


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def record_failure(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = deployment_flow.record_failure(event, clients=clients(), settings=SETTINGS)
    _count("DeploymentFailed", state)
    logger.error("deployment failed", extra={"deployment_id": state.get("deployment_id"), **state["result"]})
    return state
