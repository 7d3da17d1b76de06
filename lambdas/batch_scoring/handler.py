"""Batch scoring: start a batch transform of an S3 prefix with the production Champion's model.

Handler string: ``lambdas.batch_scoring.handler.handler``. Invoked by the EventBridge schedule (the event is
ignored, ``BATCH_INPUT_URI`` is scored) or on demand with ``{"input_uri": "s3://…/prefix/", "job_name": …}``
(``aws lambda invoke`` or ``mlops batch-score``). It only starts the job: SageMaker's "Transform Job State
Change" events report the outcome.

Environment (parsed once): ENDPOINT_NAME, CAPTURE_BUCKET, BATCH_INSTANCE_TYPE, KMS_KEY_ARN (optional),
BATCH_INPUT_URI (optional default), BATCH_INSTANCE_COUNT (default 1).
Metric (EMF, dimension Endpoint): ``BatchScoringStarted`` (Count: 1 started, 0 refused).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.batch_scoring.settings import settings_from_environment
from mlplatform.serving.transform_job import BatchScoringError, start_batch_scoring
from mlsettings.vocabulary import Metric

# Powertools reads POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE itself (the contract writes them).
logger = Logger()
tracer = Tracer()
# service="" keeps Powertools from adding a "service" dimension: alarms match exactly {Endpoint}.
metrics = Metrics(service="")


SETTINGS = settings_from_environment(os.environ)


@cache
def sagemaker_client() -> Any:
    return boto3.client("sagemaker")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A scheduled event carries EventBridge keys, not a request: score the configured default prefix.
    request = event if isinstance(event, dict) and "input_uri" in event else {}
    metrics.add_dimension(name=Metric.ENDPOINT_DIMENSION, value=SETTINGS.endpoint_name)
    try:
        started = start_batch_scoring(sagemaker_client(), settings=SETTINGS, request=request,
                                      now=datetime.now(UTC))
    except BatchScoringError as err:
        logger.error("batch scoring not started", extra={"reason": str(err)})
        metrics.add_metric(name=Metric.BATCH_SCORING_STARTED, unit=MetricUnit.Count, value=0)
        return {"started": False, "reason": str(err)}
    metrics.add_metric(name=Metric.BATCH_SCORING_STARTED, unit=MetricUnit.Count, value=1)
    logger.info("batch scoring started", extra=started)
    return {"started": True, **started}
