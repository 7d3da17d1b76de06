"""Drift partial results: a captured object that just landed → its partial result (``partial_flow``).

Event: S3 "Object Created" through EventBridge (the capture bucket sends its events to EventBridge; the
monitoring stack's rule passes on those under this endpoint's data capture and the inference API's prediction
log). Invoked asynchronously: two retries, then the event goes to the function's failure queue, and the drift
run counts an object without a partial result itself (reported as ``missing``).

Environment: ``mlsettings.functions.contracts.DriftPartialsEnvironment`` (the stack writes it with the same
class).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlplatform.monitoring.partial_flow import BaselineCache, PartialClients, reduce_object
from mlsettings.functions.contracts import DriftPartialsEnvironment

logger = Logger()
tracer = Tracer()

ENVIRONMENT = DriftPartialsEnvironment.from_env(os.environ)
BASELINES = BaselineCache()


@cache
def clients() -> PartialClients:
    """Created on first use (not at import) so that tests can import the module before mocking AWS."""
    return PartialClients(s3=boto3.client("s3"), sagemaker=boto3.client("sagemaker"), ssm=boto3.client("ssm"))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@event_source(data_class=S3EventBridgeNotificationEvent)
def handler(event: S3EventBridgeNotificationEvent, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail
    outcome = reduce_object(ENVIRONMENT, clients(), bucket=detail.bucket.name, key=detail.object.key,
                            size=detail.object.size, etag=detail.object.etag, now=datetime.now(UTC), cache=BASELINES)
    logger.info("partial result", extra=outcome)
    return outcome
