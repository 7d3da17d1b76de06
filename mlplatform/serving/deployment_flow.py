"""The four Step Functions tasks of a deployment, as functions over clients, settings and a clock.

State in, state out: each task receives the execution's current state (a JSON object) and returns it with
its own part added, so the state machine needs no ResultPath juggling:

  start_deployment(event)  → the plan (``action`` "skip" | "deploy", every request, ``deadline``, …)
  check_deployment(plan)   → plan + ``status``  {decision: wait|succeeded|rolled_back|failed|timed_out, …}
  verify_and_record(plan)  → plan + ``result``  {outcome: deployed|failed, health, published, …}
  record_failure(state)    → state + ``result`` {outcome: failed, reason, recorded}

Errors: ``EndpointBusy`` (retry with back-off), ``DeploymentRefused`` (no retry: record and page); any other
exception is an AWS/runtime error for the task's Retry, then the Catch → record_failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlplatform.registry.deployment_ledger import DEPLOYED, HEALTH_FAILED, HEALTH_PASSED, utc_timestamp
from mlplatform.registry.deployment_ledger import FAILED as OUTCOME_FAILED
from mlplatform.registry.deployment_results import HEALTH_NOT_RUN
from mlplatform.serving import deployment_actions as actions
from mlplatform.serving.deployment_plan import (
    CREATE,
    DEPLOY,
    UPDATE,
    DeploymentRefused,
    EndpointBusy,
    InvalidPromotion,
    parse_promotion,
    plan_deployment,
    revert_config_name,
    skip,
)
from mlplatform.serving.deployment_settings import DeployerSettings
from mlplatform.serving.deployment_status import judge_endpoint
from mlplatform.serving.endpoint_state import FAILED, IN_SERVICE, read_endpoint_state
from mlplatform.serving.golden_check import VariantVerdict
from mlplatform.serving.variant_probe import check_variant
from mlsettings.vocabulary import CHAMPION


@dataclass(frozen=True, kw_only=True)
class DeployerClients:
    sagemaker: Any
    runtime: Any
    s3: Any
    ssm: Any
    events: Any
    cloudwatch: Any
    autoscaling: Any


def _report(clients: DeployerClients, settings: DeployerSettings, *, plan: Mapping[str, Any], outcome: str,
            health_check: str, reason: str) -> None:
    actions.report(clients.events, clients.ssm, settings, plan=plan, outcome=outcome, health_check=health_check,
                   reason=reason, deployed_at=utc_timestamp())


def start_deployment(event: Mapping[str, Any], *, clients: DeployerClients, settings: DeployerSettings,
                     now: datetime, deployment_id: str) -> dict[str, Any]:
    try:
        request = parse_promotion(event)
    except InvalidPromotion as err:
        return {**skip(None, f"not an accepted promotion: {err}", settings), "invalid": True}
    current = read_endpoint_state(clients.sagemaker, settings.endpoint_name)
    if current is not None and current.status == FAILED:
        # A failed creation cannot be updated; deleting it lets the retry create the endpoint anew.
        clients.sagemaker.delete_endpoint(EndpointName=settings.endpoint_name)
        raise EndpointBusy(f"{settings.endpoint_name} was Failed ({current.failure_reason}); deleted it, "
                           "the retry creates it")
    latest = actions.last_result(clients.ssm, settings, request.target_stage)
    plan = plan_deployment(request, current, latest, settings, now=now, deployment_id=deployment_id)
    if plan["action"] != DEPLOY:
        return plan
    actions.ensure_models(clients.sagemaker, plan, settings)
    actions.ensure_endpoint_config(clients.sagemaker, plan)
    if not actions.endpoint_config_visible(clients.sagemaker, plan):
        raise EndpointBusy(f"{plan['endpoint_config_name']} is not readable yet (eventual consistency, API reference "
                           "CreateEndpoint); the retry launches it")
    if plan["deregister_scaling"]:
        actions.deregister_scaling(clients.autoscaling, settings.endpoint_name, plan["deregister_scaling"])
    try:
        actions.launch(clients.sagemaker, plan)
    except clients.sagemaker.exceptions.ClientError as err:
        message = str(err)
        if ("in-progress" in message or "Cannot update" in message or "already existing endpoint" in message
                or "Could not find endpoint configuration" in message):
            raise EndpointBusy(f"{settings.endpoint_name}: {message[:300]}") from err
        raise
    return plan


def check_deployment(state: Mapping[str, Any], *, clients: DeployerClients, settings: DeployerSettings,
                     now: datetime) -> dict[str, Any]:
    describe = actions.describe_endpoint_or_none(clients.sagemaker, state["endpoint_name"])
    alarms = (actions.alarms_in_alarm(clients.cloudwatch, settings.rollback_alarm_names)
              if settings.rollback_alarm_names and state["operation"] in (UPDATE, CREATE) else [])
    status = judge_endpoint(describe=describe, target_config=state["endpoint_config_name"],
                            deadline=datetime.fromisoformat(state["deadline"]), now=now, alarms_in_alarm=alarms)
    return {**state, "status": status}


def _probe(state: Mapping[str, Any], clients: DeployerClients, mapping: Mapping[str, str]) -> list[VariantVerdict]:
    verdicts = []
    for variant in state["changed_variants"]:
        planned = state["variants"][variant]["model_package_arn"]
        serving = mapping.get(variant, "")
        if serving != planned:
            verdicts.append(VariantVerdict(variant=variant, model_package_arn=serving,
                                           error=f"serves {serving or 'nothing'}, not the planned {planned}"))
            continue
        verdicts.append(check_variant(clients.sagemaker, clients.s3, clients.runtime,
                                      endpoint_name=state["endpoint_name"], variant=variant,
                                      model_package_arn=planned))
    return verdicts


def verify_and_record(state: Mapping[str, Any], *, clients: DeployerClients,
                      settings: DeployerSettings) -> dict[str, Any]:
    """Health-check the new model's variants with their golden payloads, then publish and record."""
    current = read_endpoint_state(clients.sagemaker, state["endpoint_name"])
    mapping = current.serving_map() if current is not None else {}
    verdicts = _probe(state, clients, mapping)
    health = [verdict.to_dict() for verdict in verdicts]
    if verdicts and all(verdict.passed for verdict in verdicts):
        published: dict[str, Any] = {"variants": actions.publish_variant_map(clients.ssm, settings, mapping)}
        warnings: list[str] = []
        if state["champion_changed"]:
            try:
                published["fallback_model"] = actions.publish_fallback(
                    clients.sagemaker, clients.s3, settings, mapping[CHAMPION])
            except (ValueError, KeyError, clients.s3.exceptions.ClientError) as err:
                # The endpoint is healthy; a missing fallback only degrades the API's last-resort answers.
                warnings.append(f"fallback model not published: {err}")
        published["autoscaling"] = actions.register_autoscaling(clients.autoscaling, state["endpoint_name"],
                                                                state["variants"])
        reason = "; ".join(verdict.summary() for verdict in verdicts)
        _report(clients, settings, plan=state, outcome=DEPLOYED, health_check=HEALTH_PASSED,
                reason=f"deployed and healthy ({reason})")
        return {**state, "result": {"outcome": DEPLOYED, "health": health, "published": published,
                                    "warnings": warnings, "reason": reason}}

    failures = "; ".join(v.summary() for v in verdicts if not v.passed) or "no variant was checked"
    reverted_to = None
    previous = state.get("previous_endpoint_config_name")
    if state["operation"] == UPDATE and previous and current is not None and current.status == IN_SERVICE:
        actions.revert_endpoint(clients.sagemaker, state["endpoint_name"], previous,
                                revert_config_name(state["endpoint_config_name"]))
        reverted_to = previous
        actions.publish_variant_map(clients.ssm, settings, state["previous_variants"])
    else:
        actions.publish_variant_map(clients.ssm, settings, mapping)
    reason = f"health check failed: {failures}" + (f"; reverting to {reverted_to}" if reverted_to else
                                                   "; no previous config to revert to")
    _report(clients, settings, plan=state, outcome=OUTCOME_FAILED, health_check=HEALTH_FAILED, reason=reason)
    return {**state, "result": {"outcome": OUTCOME_FAILED, "health": health, "reverted_to": reverted_to,
                                "reason": reason}}


def failure_reason(state: Mapping[str, Any]) -> str:
    status = state.get("status") or {}
    if status.get("decision") not in (None, "wait", "succeeded"):
        return f"{status['decision']}: {status.get('reason', '')}"
    error = state.get("error") or {}
    if error:
        return f"{error.get('Error', 'error')}: {str(error.get('Cause', ''))[:500]}"
    return "deployment failed (no status or error in the state)"


def record_failure(state: Mapping[str, Any], *, clients: DeployerClients,
                   settings: DeployerSettings) -> dict[str, Any]:
    """After a rollback, a failure, a timeout or a task error: ledger row + DeployFailed + what serves now."""
    reason = failure_reason(state)
    plan: dict[str, Any] = dict(state)
    if "request" not in plan or not plan.get("request"):
        try:  # a Catch on start_deployment passes the original event (plus "error")
            request = parse_promotion(state)
        except InvalidPromotion as err:
            return {**state, "result": {"outcome": OUTCOME_FAILED, "reason": reason, "recorded": False,
                                        "why_not_recorded": str(err)}}
        plan.update(endpoint_name=settings.endpoint_name, changed_variants=[], request={
            "model_package_arn": request.model_package_arn, "version": request.version,
            "target_stage": request.target_stage, "reason": request.reason,
            "requested_by": request.requested_by})
    current = read_endpoint_state(clients.sagemaker, settings.endpoint_name)
    published = (actions.publish_variant_map(clients.ssm, settings, current.serving_map())
                 if current is not None and current.status == IN_SERVICE else {})
    _report(clients, settings, plan=plan, outcome=OUTCOME_FAILED, health_check=HEALTH_NOT_RUN, reason=reason)
    return {**state, "result": {"outcome": OUTCOME_FAILED, "reason": reason, "recorded": True,
                                "published": {"variants": published}}}


__all__ = ["DeployerClients", "DeploymentRefused", "EndpointBusy", "check_deployment", "record_failure",
           "start_deployment", "verify_and_record"]
