"""Drift monitor: a scheduled run over the last window of captured traffic for one endpoint.

Events:
* EventBridge schedule (``{"time": "2025-03-01T06:00:00Z", ...}``): the window ends at that hour, so a
  retried delivery analyses the same window and overwrites the same report.
* ``{"window_end": "<ISO time>", "window_hours": N}``: a manual rerun of a past window.
* S3 "Object Created" for a sharded drift job's instance summary (``…/shards/<host>.json``, engine
  ``processing``): once every instance's has landed, merge the window's partial results into the report and
  publish its metrics.
* ``{"report_uri": "s3://…/drift_report.json"}`` or an S3 ObjectCreated notification for such a key: publish the
  metrics of a report computed elsewhere.

Environment (parsed once at cold start; see ``settings.py`` and docs/MONITORING.md): ENDPOINT_NAME,
CAPTURE_BUCKET, CAPTURE_PREFIX, PREDICTION_LOG_PREFIX, PREDICTION_LOG_VARIANT, REPORT_BUCKET, REPORT_PREFIX,
VARIANT_PARAMETER_PREFIX, WINDOW_HOURS, DRIFT_THRESHOLDS, CHUNK_LINES, DRIFT_WORKERS, DRIFT_ENGINE (``lambda``,
``partials``, ``processing``), PARTIALS_PREFIX, GROUND_TRUTH_BUCKET, GROUND_TRUTH_PREFIX, GROUND_TRUTH_DELAY_HOURS,
QUALITY_METRIC, QUALITY_MARGIN, QUALITY_MIN_ROWS; for the processing engine the job's PROCESSING_* and KMS_KEY_ARN.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.drift_monitor.settings import processing_job_settings, settings_from_environment
from mlcore.drift.window import Window
from mlplatform.monitoring.drift_metrics import publish_run_metrics
from mlplatform.monitoring.monitor_flow import MonitorClients, MonitorOutcome, monitor_endpoint
from mlplatform.monitoring.processing_job import finish_sharded_job, is_shard_summary, start_processing_job
from mlplatform.monitoring.variant_models import endpoint_exists, read_s3_json

# Powertools reads POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE itself (the contract writes them); the
# service is a dimension of every drift metric (stacks/monitoring.py matches it).
logger = Logger()
tracer = Tracer()
metrics = Metrics()

SETTINGS = settings_from_environment(os.environ)


@cache
def clients() -> MonitorClients:
    """Created on first use (not at import) so that tests can import the module before mocking AWS."""
    return MonitorClients(s3=boto3.client("s3"), sagemaker=boto3.client("sagemaker"), ssm=boto3.client("ssm"))


def window_of(event: dict[str, Any], now: datetime) -> Window:
    hours = int(event.get("window_hours") or SETTINGS.window_hours)
    raw = event.get("window_end") or event.get("time")
    end = now
    if isinstance(raw, str) and raw:
        end = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
    return Window.ending_at(end, hours)


def _s3_objects(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) of an S3 event: EventBridge "Object Created" or an S3 notification's records."""
    objects = []
    detail = event.get("detail") if event.get("source") == "aws.s3" else None
    if isinstance(detail, dict):
        bucket, key = (detail.get("bucket") or {}).get("name"), (detail.get("object") or {}).get("key")
        if bucket and key:
            objects.append((bucket, key))
    for record in event.get("Records", []) or []:
        s3_part = record.get("s3") or {}
        bucket, key = (s3_part.get("bucket") or {}).get("name"), (s3_part.get("object") or {}).get("key")
        if bucket and key:
            objects.append((bucket, unquote_plus(key)))
    return objects


def _report_uris(event: dict[str, Any]) -> list[str]:
    if isinstance(event.get("report_uri"), str):
        return [event["report_uri"]]
    return [f"s3://{bucket}/{key}" for bucket, key in _s3_objects(event)
            if not is_shard_summary(SETTINGS, key)]


def _shard_summaries(event: dict[str, Any]) -> list[str]:
    """Keys of a sharded drift job's instance summaries in the event (engine ``processing``)."""
    return [key for bucket, key in _s3_objects(event)
            if bucket == SETTINGS.report_bucket and is_shard_summary(SETTINGS, key)]


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    shards = _shard_summaries(event)
    if shards:  # engine "processing": an instance of the sharded job finished; merge once all have
        finished = finish_sharded_job(SETTINGS, clients(), key=shards[-1], now=now)
        if not isinstance(finished, MonitorOutcome):
            logger.info("sharded drift job", extra=finished)
            return finished
        publish_run_metrics(metrics, finished.report)
        logger.info("sharded drift job merged", extra={"report_uri": finished.report_uri})
        return {"report_uri": finished.report_uri, "drifted_variants": finished.report["drifted_variants"],
                "job": finished.report["job"]["name"]}
    report_uris = _report_uris(event)
    if report_uris:  # engine "processing": the job wrote the report, the Lambda publishes it
        published = 0
        for uri in report_uris:
            published += publish_run_metrics(metrics, read_s3_json(clients().s3, uri))
        logger.info("published metrics of reports", extra={"reports": report_uris, "documents": published})
        return {"published_reports": report_uris}
    window = window_of(event, now)
    if not endpoint_exists(clients().sagemaker, SETTINGS.endpoint_name):
        # Nothing deployed yet: no traffic to compare. Not an error (that would page on-call daily).
        skipped = {"skipped": f"endpoint {SETTINGS.endpoint_name} does not exist (nothing deployed yet)",
                   "window": window.to_dict()}
        logger.info("drift run skipped", extra=skipped)
        return skipped
    if SETTINGS.engine == "processing":  # the volume outgrew the function: the same code runs as a job
        started = start_processing_job(SETTINGS, processing_job_settings(os.environ), clients(),
                                       window=window, now=now)
        logger.info("drift processing job", extra=started)
        return started
    outcome = monitor_endpoint(SETTINGS, clients(), window=window, now=now)
    publish_run_metrics(metrics, outcome.report)
    report = outcome.report
    summary = {
        "report_uri": outcome.report_uri,
        "window": report["window"],
        "drifted_variants": report["drifted_variants"],
        "skipped_variants": report["skipped_variants"],
        "rows": {name: item["drift"]["rows"] for name, item in report["variants"].items()
                 if item["status"] == "analysed"},
        "malformed": {name: item["drift"]["malformed"] for name, item in report["variants"].items()
                      if item["status"] == "analysed"},
    }
    logger.info("drift run finished", extra=summary)
    return summary
