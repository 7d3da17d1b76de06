"""Promotion gate: EventBridge "SageMaker Model Package State Change" → judge → ledger, revert/alert, emit;
and "Model Deployment Result" (source mlops.deployment, from the serving environments' deployers, forwarded
from their accounts) → ledger evidence and the version's StageStatus (mlplatform.registry.deployment_results).

Environment (parsed once at cold start):
  MODEL_PACKAGE_GROUP_PREFIX  every model's group starts with it (events of other groups are rejected); each
                        model's history stays apart: its ledger partition is its group's
  LEDGER_TABLE          the deployment ledger table (mlplatform.registry.deployment_ledger)
  IDEMPOTENCY_TABLE     Powertools idempotency table (partition key ``id``, TTL attribute ``expiration``)
  PROMOTION_TOPIC_ARN   SNS topic for promotion notices and revert alerts
  EVENT_BUS_NAME        bus that receives "Model Promotion Accepted" for the serving deployer
  STAGE_SERVERS         JSON: per stage the environment and account whose results are trusted
  IDEMPOTENCY_TTL_SECONDS  optional, default 86400

Malformed and foreign events are logged with the reason and answered with ``{"outcome": "rejected"}``:
raising would only make EventBridge retry an event that can never succeed. Errors talking to AWS do
raise, so the delivery is retried and finally lands in the failure queue.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.promotion_gate.settings import ForeignGroup, settings_from_environment
from mlplatform.registry.deployment_ledger import DeploymentLedger
from mlplatform.registry.package_events import RejectedEvent, parse_state_change
from mlplatform.registry.promotion_flow import ChangeToJudge, GateClients, judge_change
from mlplatform.registry.result_recording import parse_result, record_result
from mlsettings.vocabulary import RESULT_SOURCE

# Powertools reads POWERTOOLS_SERVICE_NAME itself (the contract writes it).
logger = Logger()
tracer = Tracer()

RUNTIME = settings_from_environment(os.environ)
IDEMPOTENCY_CONFIG = IdempotencyConfig(event_key_jmespath="dedup_key",
                                       expires_after_seconds=RUNTIME.idempotency_ttl_seconds)
PERSISTENCE = DynamoDBPersistenceLayer(table_name=RUNTIME.idempotency_table)


@cache
def clients() -> GateClients:
    """Created on first use (not at import) so that tests can import the module before mocking AWS."""
    return GateClients(
        sagemaker=boto3.client("sagemaker"),
        dynamodb=boto3.client("dynamodb"),
        sns=boto3.client("sns"),
        events=boto3.client("events"),
    )


@idempotent_function(  # type: ignore[untyped-decorator]  # Powertools' decorator is untyped
    data_keyword_argument="change", persistence_store=PERSISTENCE, config=IDEMPOTENCY_CONFIG
)
def judge_once(change: dict[str, Any]) -> dict[str, Any]:
    """Judged at most once per distinct change (``dedup_key``); a repeat returns the stored answer."""
    settings = RUNTIME.settings_for(change["group"])
    return judge_change(
        ChangeToJudge(
            model_package_arn=change["model_package_arn"],
            version=change["version"],
            event_id=change["event_id"],
            actor_hint=change["actor_hint"],
        ),
        settings=settings,
        clients=clients(),
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY_CONFIG.register_lambda_context(context)
    if isinstance(event, dict) and event.get("source") == RESULT_SOURCE:
        return _record(event)
    try:
        detail = event.get("detail") if isinstance(event, dict) else None
        claimed = str(detail.get("ModelPackageGroupName")) if isinstance(detail, dict) else ""
        parsed = parse_state_change(event, expected_group=claimed)  # well formed first, then ours
        group = RUNTIME.settings_for(parsed.detail.ModelPackageGroupName).model_package_group
    except (RejectedEvent, ForeignGroup) as rejection:
        event_id = event.get("id") if isinstance(event, dict) else None
        logger.warning("event rejected", extra={"reason": str(rejection), "event_id": event_id})
        return {"outcome": "rejected", "reason": str(rejection)}
    logger.append_keys(
        event_id=parsed.id,
        model_package_version=parsed.detail.ModelPackageVersion,
        event_approval_status=parsed.detail.ModelApprovalStatus,
    )
    result: dict[str, Any] = judge_once(
        change={
            "dedup_key": parsed.dedup_key(),
            "group": group,
            "model_package_arn": parsed.detail.ModelPackageArn,
            "version": parsed.detail.ModelPackageVersion,
            "event_id": parsed.id,
            "actor_hint": parsed.actor_hint(),
        }
    )
    logger.info("gate decision", extra=result)
    return result


def _record(event: dict[str, Any]) -> dict[str, Any]:
    """A deployer's result: trusted only from the stage's environment and account; recorded idempotently."""
    try:
        settings = RUNTIME.settings_for((event.get("detail") or {}).get("model_package_group"))
        result = parse_result(event, group=settings.model_package_group, servers=RUNTIME.servers)
    except (RejectedEvent, ForeignGroup) as rejection:
        logger.warning("deployment result rejected", extra={"reason": str(rejection), "event_id": event.get("id")})
        return {"outcome": "rejected", "reason": str(rejection)}
    ledger = DeploymentLedger(clients().dynamodb, RUNTIME.ledger_table, settings.model_package_group,
                              protected_versions=RUNTIME.protected_versions)
    recorded = record_result(result, ledger=ledger, sagemaker_client=clients().sagemaker)
    logger.info("deployment result", extra=recorded)
    return recorded
