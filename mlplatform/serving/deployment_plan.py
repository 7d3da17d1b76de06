"""Deciding a deployment: which package each variant serves, and the exact SageMaker requests. Pure.

Input: the accepted promotion (``mlops.promotion`` / "Model Promotion Accepted"), what the endpoint serves
now (``endpoint_state``), the deployer's own last result for the same stage (SSM,
``deployment_actions.last_result``), the settings, a clock and an id.
Output: a ``DeploymentPlan`` — a JSON-able dict that travels through the Step Functions execution — or a
refusal. No AWS call happens here, so every rule below is unit-tested and benchmarked on its own.

Who serves what (variant names are stable; a blue/green update must keep them):
* rollback (``reason="rollback"``): every variant serves the rollback target, taking the bad model out of
  traffic entirely;
* ``reason="challenger_swap"`` (``mlops promote-challenger``): Champion ← the Challenger's package,
  Challenger ← the former Champion's (kept for comparison; shift its weight to 0 to retire it);
* an explicit ``detail.variant`` puts the package on that variant only;
* first deployment: every configured variant serves the package;
* a Production promotion in an environment with a Challenger: the package enters as Challenger at the
  configured weight and the Champion keeps serving — the A/B test starts;
* otherwise (Staging, or no Challenger): the package becomes Champion; the Challenger keeps its model.

Idempotency: SageMaker and the gate deliver at least once. A promotion whose mapping the endpoint already
serves, and which this deployer last reported as deployed, is skipped; if it has no such result
(a crash between update and record), the plan only re-verifies and records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlplatform.registry.deployment_ledger import DEPLOYED, DeploymentRecord
from mlplatform.serving.deployment_settings import DeployerSettings, ServingConfig
from mlplatform.serving.endpoint_state import BUSY_STATUSES, FAILED, IN_SERVICE, EndpointState, package_version
from mlsettings.instance_types import has_local_storage
from mlsettings.rollout import rollout_timeout_seconds
from mlsettings.vocabulary import (
    CHALLENGER,
    CHALLENGER_SWAP_REASON,
    CHAMPION,
    PRODUCTION,
    PROMOTION_ACCEPTED,
    PROMOTION_SOURCE,
    STAGING,
)

PROMOTION_DETAIL_TYPE = PROMOTION_ACCEPTED
PROMOTION, ROLLBACK, CHALLENGER_SWAP = "promotion", "rollback", CHALLENGER_SWAP_REASON
REASONS = (PROMOTION, ROLLBACK, CHALLENGER_SWAP)

CREATE, UPDATE, VERIFY_ONLY = "create", "update", "verify_only"
DEPLOY, SKIP = "deploy", "skip"

# Target tracking reacts after a cooldown plus instance start-up (minutes), so each fleet reaches its
# ceiling at this share of the SLA's peak instead of at the peak itself.
SCALING_TARGET_UTILISATION = 0.7
SCALE_IN_COOLDOWN_SECONDS = 300
SCALE_OUT_COOLDOWN_SECONDS = 60
CREATE_DEADLINE = timedelta(minutes=45)
VERIFY_ONLY_DEADLINE = timedelta(minutes=10)
ROLLBACK_ALLOWANCE = timedelta(minutes=20)
_NAME_LIMIT = 63

# Data capture stores payloads of these Content-Types as text (CSV/JSON encoding), others as BASE64. They are
# exactly the media types the serving handler answers with (pipelines/serving/inference.py's Answer):
# tests/contract/ proves the real toolkit sends them unchanged.
CAPTURE_CONTENT_TYPE_HEADER: dict[str, tuple[str, ...]] = {"CsvContentTypes": ("text/csv",),
                                                           "JsonContentTypes": ("application/json",)}


class InvalidPromotion(ValueError):
    """The event is not an accepted promotion this deployer can act on; the message says why."""


class EndpointBusy(RuntimeError):
    """The endpoint is creating/updating/rolling back: retry later (Step Functions Retry on this name)."""


class DeploymentRefused(RuntimeError):
    """The endpoint is in a state that needs an operator (e.g. UpdateRollbackFailed); not retried."""


@dataclass(frozen=True, kw_only=True)
class PromotionRequest:
    model_package_group: str
    model_package_arn: str
    version: int
    target_stage: str
    reason: str
    requested_by: str
    variant: str | None = None
    event_id: str = ""


def parse_promotion(event: Mapping[str, Any]) -> PromotionRequest:
    """An EventBridge "Model Promotion Accepted" event, or its bare ``detail`` (manual runs)."""
    if not isinstance(event, Mapping):
        raise InvalidPromotion(f"the input is {type(event).__name__}, not an event object")
    if "detail" in event:
        if event.get("source") not in (None, PROMOTION_SOURCE):
            raise InvalidPromotion(f"source is {event.get('source')!r}; expected {PROMOTION_SOURCE!r}")
        if event.get("detail-type") not in (None, PROMOTION_DETAIL_TYPE):
            raise InvalidPromotion(f"detail-type is {event.get('detail-type')!r}; expected "
                                   f"{PROMOTION_DETAIL_TYPE!r}")
        detail = event["detail"]
    else:
        detail = event
    if not isinstance(detail, Mapping):
        raise InvalidPromotion("detail is not an object")
    for key in ("model_package_group", "model_package_arn", "target_stage"):
        if not isinstance(detail.get(key), str) or not detail.get(key):
            raise InvalidPromotion(f"detail.{key} must be a non-empty string")
    version = detail.get("version")
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidPromotion(f"detail.version is {detail.get('version')!r}; expected a positive integer")
    if package_version(detail["model_package_arn"]) not in (None, version):
        raise InvalidPromotion(f"detail.version {version} does not match {detail['model_package_arn']}")
    if detail["target_stage"] not in (STAGING, PRODUCTION):
        raise InvalidPromotion(f"detail.target_stage is {detail['target_stage']!r}; allowed: Staging, Production")
    reason = detail.get("reason") or PROMOTION
    if reason not in REASONS:
        raise InvalidPromotion(f"detail.reason is {reason!r}; allowed: {', '.join(REASONS)}")
    variant = detail.get("variant")
    if variant not in (None, CHAMPION, CHALLENGER):
        raise InvalidPromotion(f"detail.variant is {variant!r}; allowed: {CHAMPION}, {CHALLENGER}")
    return PromotionRequest(
        model_package_group=detail["model_package_group"], model_package_arn=detail["model_package_arn"],
        version=version, target_stage=detail["target_stage"], reason=reason,
        requested_by=str(detail.get("requested_by") or "unknown"), variant=variant,
        event_id=str(event.get("id", "")) if "detail" in event else "")


# ------------------------------------------------------------------------------------------- roles
def assign_variants(request: PromotionRequest, current: Mapping[str, str],
                    serving: ServingConfig) -> dict[str, str]:
    """Variant → package ARN after this deployment (see the module docstring for the rules)."""
    names = [variant.name for variant in serving.variants]
    new = request.model_package_arn
    if request.reason == ROLLBACK or not current:
        return dict.fromkeys(names, new)
    if request.reason == CHALLENGER_SWAP:
        if serving.challenger is None:
            raise DeploymentRefused("challenger_swap: this environment runs no Challenger variant")
        if current.get(CHAMPION) == new:
            return {CHAMPION: new, CHALLENGER: current.get(CHALLENGER, new)}
        if current.get(CHALLENGER) != new:
            raise DeploymentRefused(f"challenger_swap: v{request.version} is not the Challenger "
                                    f"(it serves {current.get(CHALLENGER) or 'nothing'})")
        return {CHAMPION: new, CHALLENGER: current.get(CHAMPION, new)}
    keep = {name: current.get(name) or current.get(CHAMPION) or new for name in names}
    if request.variant is not None:
        if request.variant not in names:
            raise DeploymentRefused(f"detail.variant {request.variant} is not configured here "
                                    f"(variants: {', '.join(names)})")
        return {**keep, request.variant: new}
    if request.target_stage == PRODUCTION and serving.challenger is not None and current.get(CHAMPION):
        return {**keep, CHALLENGER: new}
    return {**keep, CHAMPION: new}


# ------------------------------------------------------------------------------------------- requests
def model_name(endpoint_name: str, model_package_arn: str, settings: DeployerSettings) -> str:
    """Deterministic per package and model settings: a retried task reuses the model, a config change
    (role, isolation, VPC) gets a new one."""
    fingerprint = "|".join([model_package_arn, settings.execution_role_arn,
                            str(settings.serving.network_isolation), repr(sorted((settings.vpc_config or {}).items()))])
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:8]
    version = package_version(model_package_arn)
    name = f"{endpoint_name}-v{version if version is not None else 'x'}-{digest}"
    return name[-_NAME_LIMIT:].lstrip("-")


def endpoint_config_name(endpoint_name: str, now: datetime, deployment_id: str) -> str:
    suffix = f"-{now:%Y%m%d%H%M%S}-{deployment_id[:8]}"
    return endpoint_name[: _NAME_LIMIT - len(suffix)] + suffix


def revert_config_name(failed_config_name: str) -> str:
    """The copy of the previous config a failed health check reverts to: unique per deployment (the failed
    config's name is), within SageMaker's 63 characters."""
    suffix = "-revert"
    return failed_config_name[: _NAME_LIMIT - len(suffix)] + suffix


def endpoint_config_request(*, name: str, variants: Mapping[str, Mapping[str, Any]],
                            settings: DeployerSettings) -> dict[str, Any]:
    serving = settings.serving
    production_variants = [{
        "VariantName": variant,
        "ModelName": spec["model_name"],
        "InstanceType": spec["instance_type"],
        "InitialInstanceCount": spec["instance_count"],
        "InitialVariantWeight": float(spec["weight"]),
    } for variant, spec in variants.items()]
    capture: dict[str, Any] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": serving.capture_sampling_percent,
        "DestinationS3Uri": settings.capture_destination_uri,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        # Listed content types are stored as text (CSV/JSON encoding), not BASE64: the drift Lambda and
        # the A/B report read them directly.
        "CaptureContentTypeHeader": {key: list(types) for key, types in CAPTURE_CONTENT_TYPE_HEADER.items()},
    }
    request: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": production_variants,
                               "DataCaptureConfig": capture,
                               "Tags": [{"Key": "mlops:endpoint", "Value": settings.endpoint_name}]}
    if settings.kms_key_arn:
        capture["KmsKeyId"] = settings.kms_key_arn
        if not any(has_local_storage(str(spec["instance_type"])) for spec in variants.values()):
            request["KmsKeyId"] = settings.kms_key_arn
    return request


def traffic_routing(settings: DeployerSettings) -> dict[str, Any]:
    rollout = settings.serving.rollout
    wait = rollout.wait_minutes * 60
    if rollout.strategy == "CANARY":
        return {"Type": "CANARY", "WaitIntervalInSeconds": wait,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent}}
    if rollout.strategy == "LINEAR":
        return {"Type": "LINEAR", "WaitIntervalInSeconds": wait,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent}}
    return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait}


def rollout_seconds(settings: DeployerSettings) -> int:
    """How long a blue/green update may take: provisioning, every bake step, the old fleet's termination."""
    rollout = settings.serving.rollout
    return rollout_timeout_seconds(strategy=rollout.strategy, step_percent=rollout.canary_percent,
                                   wait_minutes=rollout.wait_minutes,
                                   termination_wait_minutes=rollout.termination_wait_minutes)


def deployment_config(settings: DeployerSettings) -> dict[str, Any]:
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": traffic_routing(settings),
        "TerminationWaitInSeconds": settings.serving.rollout.termination_wait_minutes * 60,
        "MaximumExecutionTimeoutInSeconds": rollout_seconds(settings),
    }}
    if settings.rollback_alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in settings.rollback_alarm_names]}
    return config


def scaling_target(settings: DeployerSettings, variant: str) -> dict[str, Any]:
    """Target tracking on SageMakerVariantInvocationsPerInstance (invocations per instance per minute)."""
    serving = settings.serving
    spec = serving.variant(variant)
    share = serving.weight_percent(variant) / 100
    per_instance_at_peak = serving.peak_requests_per_second * 60 * share / spec.max_instances
    return {"min_capacity": spec.min_instances, "max_capacity": spec.max_instances,
            "target_invocations_per_instance": max(1.0, round(per_instance_at_peak * SCALING_TARGET_UTILISATION, 1)),
            "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS, "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS}


# ------------------------------------------------------------------------------------------- the plan
def _deadline(now: datetime, operation: str, settings: DeployerSettings) -> datetime:
    if operation == CREATE:
        return now + CREATE_DEADLINE
    if operation == VERIFY_ONLY:
        return now + VERIFY_ONLY_DEADLINE
    return now + timedelta(seconds=rollout_seconds(settings)) + ROLLBACK_ALLOWANCE


def _request_dict(request: PromotionRequest) -> dict[str, Any]:
    return {"model_package_group": request.model_package_group, "model_package_arn": request.model_package_arn,
            "version": request.version, "target_stage": request.target_stage, "reason": request.reason,
            "requested_by": request.requested_by, "variant": request.variant, "event_id": request.event_id}


def skip(request: PromotionRequest | None, reason: str, settings: DeployerSettings) -> dict[str, Any]:
    return {"action": SKIP, "skip_reason": reason, "endpoint_name": settings.endpoint_name,
            "request": _request_dict(request) if request else None}


def _operation(request: PromotionRequest, current: EndpointState | None, latest: DeploymentRecord | None,
               settings: DeployerSettings, mapping: Mapping[str, str], serving_now: Mapping[str, str],
               types_now: Mapping[str, str]) -> str | dict[str, Any]:
    """CREATE, UPDATE or VERIFY_ONLY (the endpoint already serves this mapping), or the skip of a duplicate."""
    same_shape = set(mapping) == set(serving_now) and all(
        types_now.get(name) == settings.serving.variant(name).instance_type for name in mapping)
    if current is not None and current.status == IN_SERVICE and mapping == serving_now and same_shape:
        if (latest is not None and latest.version == request.version and latest.outcome == DEPLOYED
                and latest.model_package_arn == request.model_package_arn):
            return skip(request, f"{settings.endpoint_name} already serves v{request.version} as "
                                 f"{', '.join(n for n, arn in mapping.items() if arn == request.model_package_arn)} "
                                 f"and its last result says so (duplicate event)", settings)
        return VERIFY_ONLY
    if current is None:
        return CREATE
    if current.status == FAILED:
        raise DeploymentRefused(f"{current.endpoint_name} is Failed ({current.failure_reason or 'no reason'}); "
                                "delete it (the next deployment then creates it anew)")
    return UPDATE


def _variant_plans(request: PromotionRequest, current: EndpointState | None, settings: DeployerSettings,
                   mapping: Mapping[str, str], operation: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per variant: its version, model (reused when it already serves that version) and capacity; and the
    variants the health check must see answering correctly."""
    variants: dict[str, dict[str, Any]] = {}
    changed: list[str] = []
    for name, arn in mapping.items():
        spec = settings.serving.variant(name)
        existing = current.variants.get(name) if current is not None else None
        reuse = existing is not None and existing.model_package_arn == arn and operation != CREATE
        if not reuse or arn == request.model_package_arn:
            changed.append(name)  # the variants the health check must see answering correctly
        variants[name] = {
            "model_package_arn": arn,
            "version": package_version(arn),
            "model_name": existing.model_name if reuse and existing is not None
            else model_name(settings.endpoint_name, arn, settings),
            "create_model": not reuse,
            "instance_type": spec.instance_type,
            "instance_count": spec.min_instances,
            "weight": settings.serving.weight_percent(name),
            "scaling": scaling_target(settings, name),
        }
    return variants, changed


def _update_request(settings: DeployerSettings, config_name: str, *, resized: bool,
                    variant_set_changed: bool) -> dict[str, Any]:
    update: dict[str, Any] = {"EndpointName": settings.endpoint_name, "EndpointConfigName": config_name}
    if not variant_set_changed:
        # Blue/green needs the same variant names in the old and the new config.
        update["DeploymentConfig"] = deployment_config(settings)
    if not resized and not variant_set_changed:
        # Keep the instance counts autoscaling chose; apply the configured weights. DataCaptureConfig is an
        # enum value of VariantPropertyType, but the API reference (VariantProperty) documents it as "(Not
        # currently supported.)": it is never excluded (tests/api_rules/prose.py).
        update["RetainAllVariantProperties"] = True
        update["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": "DesiredWeight"}]
    return update


def plan_deployment(request: PromotionRequest, current: EndpointState | None,
                    latest: DeploymentRecord | None, settings: DeployerSettings, *, now: datetime,
                    deployment_id: str) -> dict[str, Any]:
    """The Step Functions state for this promotion: ``action`` "skip" or "deploy" with every request."""
    if request.model_package_group != settings.model_package_group:
        return skip(request, f"package group {request.model_package_group} is not this deployer's "
                             f"({settings.model_package_group})", settings)
    if request.target_stage not in settings.served_stages:
        return skip(request, f"{request.target_stage} is not served by this environment "
                             f"(serves {', '.join(settings.served_stages) or 'no stage'})", settings)
    if current is not None and current.status in BUSY_STATUSES:
        raise EndpointBusy(f"{current.endpoint_name} is {current.status}")
    if current is not None and current.status not in (IN_SERVICE, FAILED):
        raise DeploymentRefused(f"{current.endpoint_name} is {current.status}"
                                + (f" ({current.failure_reason})" if current.failure_reason else "")
                                + "; an operator must bring it back to InService before the next deployment")
    serving_now = current.serving_map() if current is not None and current.status == IN_SERVICE else {}
    mapping = assign_variants(request, serving_now, settings.serving)
    types_now = {name: v.instance_type for name, v in (current.variants if current else {}).items()}
    operation = _operation(request, current, latest, settings, mapping, serving_now, types_now)
    if isinstance(operation, dict):
        return operation  # a skip
    variants, changed = _variant_plans(request, current, settings, mapping, operation)
    resized = sorted(name for name in mapping if name in types_now
                     and types_now[name] != settings.serving.variant(name).instance_type)
    config_name = (current.endpoint_config_name if operation == VERIFY_ONLY and current is not None
                   else endpoint_config_name(settings.endpoint_name, now, deployment_id))
    update = (_update_request(settings, config_name, resized=bool(resized),
                              variant_set_changed=current is not None and set(mapping) != set(current.variants))
              if operation == UPDATE else None)
    champion_before = serving_now.get(CHAMPION)
    return {
        "action": DEPLOY,
        "deployment_id": deployment_id,
        "operation": operation,
        "endpoint_name": settings.endpoint_name,
        "request": _request_dict(request),
        "variants": variants,
        "changed_variants": sorted(changed),
        "previous_variants": dict(serving_now),
        "previous_endpoint_config_name": current.endpoint_config_name if current is not None else None,
        "endpoint_config_name": config_name,
        "endpoint_config": (None if operation == VERIFY_ONLY
                            else endpoint_config_request(name=config_name, variants=variants, settings=settings)),
        "update_endpoint": update,
        # "Update endpoints that use auto scaling" (Developer Guide): deregister a variant's scalable target before
        # an update that changes its instance type or removes it, or UpdateEndpoint fails.
        "deregister_scaling": sorted(set(resized) | (set(current.variants) - set(mapping))
                                     if current is not None and operation == UPDATE else resized),
        "champion_changed": mapping.get(CHAMPION) != champion_before,
        "started_at": now.isoformat(),
        "deadline": _deadline(now, operation, settings).isoformat(),
        "poll_seconds": settings.poll_seconds,
    }
