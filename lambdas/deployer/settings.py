"""The deployer's environment, parsed and checked once per execution environment.

``SERVING_SETTINGS`` is ``json.dumps(stacks.config.to_plain(config.serving))``: the stack passes the
validated per-environment settings through unchanged, so the runtime never re-derives them (and never
imports the CDK-side config module). Only the keys the deployer uses are read; a missing or mistyped one
fails the cold start with its name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.health_check.endpoint_state import CHALLENGER, CHAMPION

DEFAULT_FALLBACK_MODEL_KEY = "serving/fallback_model.json"
STRATEGIES = ("CANARY", "LINEAR", "ALL_AT_ONCE")


class SettingsError(RuntimeError):
    """An environment variable is missing or malformed; the message names it."""


@dataclass(frozen=True, kw_only=True)
class VariantConfig:
    name: str
    instance_type: str
    min_instances: int
    max_instances: int


@dataclass(frozen=True, kw_only=True)
class RolloutConfig:
    strategy: str
    canary_percent: int
    wait_minutes: int
    termination_wait_minutes: int


@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    champion: VariantConfig
    challenger: VariantConfig | None  # None when the environment runs no Challenger
    challenger_weight_percent: int
    rollout: RolloutConfig
    capture_sampling_percent: int
    network_isolation: bool
    peak_requests_per_second: float
    p99_latency_ms: float

    @property
    def variants(self) -> tuple[VariantConfig, ...]:
        return (self.champion,) if self.challenger is None else (self.champion, self.challenger)

    def variant(self, name: str) -> VariantConfig:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(name)

    def weight_percent(self, name: str) -> int:
        """Configured traffic share of a variant (SageMaker weights are relative; we use percentages)."""
        if self.challenger is None:
            return 100
        return self.challenger_weight_percent if name == CHALLENGER else 100 - self.challenger_weight_percent


@dataclass(frozen=True, kw_only=True)
class DeployerSettings:
    environment_name: str
    endpoint_name: str
    model_package_group: str
    ledger_table: str
    served_stages: tuple[str, ...]
    execution_role_arn: str
    capture_destination_uri: str
    kms_key_arn: str
    artifact_bucket: str
    fallback_model_key: str
    rollback_alarm_names: tuple[str, ...]
    serving: ServingConfig
    vpc_config: Mapping[str, Any] | None = None
    poll_seconds: int = 60
    protected_production_versions: int = 3

    def variant_parameter(self, variant: str, key: str) -> str:
        """SSM parameter publishing what a variant serves (the drift monitor and dashboard read it)."""
        return f"/mlops/{self.environment_name}/variant/{variant}/{key}"


def _get(mapping: Mapping[str, Any], path: str, kind: type | tuple[type, ...]) -> Any:
    value: Any = mapping
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise SettingsError(f"SERVING_SETTINGS.{path} is missing")
        value = value[part]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        raise SettingsError(f"SERVING_SETTINGS.{path} is {value!r}; expected {kind}")
    return value


def _variant(raw: Mapping[str, Any], key: str, name: str) -> VariantConfig:
    minimum, maximum = _get(raw, f"{key}.min_instances", int), _get(raw, f"{key}.max_instances", int)
    if not 1 <= minimum <= maximum:
        raise SettingsError(f"SERVING_SETTINGS.{key}: need 1 <= min_instances <= max_instances, "
                            f"got {minimum} and {maximum}")
    return VariantConfig(name=name, instance_type=_get(raw, f"{key}.instance_type", str),
                         min_instances=minimum, max_instances=maximum)


def parse_serving(raw: Mapping[str, Any]) -> ServingConfig:
    strategy = _get(raw, "deployment.strategy", str)
    if strategy not in STRATEGIES:
        raise SettingsError(f"SERVING_SETTINGS.deployment.strategy is {strategy!r}; allowed: {list(STRATEGIES)}")
    weight = _get(raw, "challenger_weight_percent", int)
    if not 0 <= weight <= 100:
        raise SettingsError(f"SERVING_SETTINGS.challenger_weight_percent is {weight}; allowed: 0 to 100")
    return ServingConfig(
        champion=_variant(raw, "champion", CHAMPION),
        challenger=_variant(raw, "challenger", CHALLENGER) if _get(raw, "challenger_enabled", bool) else None,
        challenger_weight_percent=weight,
        rollout=RolloutConfig(strategy=strategy, canary_percent=_get(raw, "deployment.canary_percent", int),
                              wait_minutes=_get(raw, "deployment.wait_minutes", int),
                              termination_wait_minutes=_get(raw, "deployment.termination_wait_minutes", int)),
        capture_sampling_percent=_get(raw, "capture_sampling_percent", int),
        network_isolation=_get(raw, "network_isolation", bool),
        peak_requests_per_second=float(_get(raw, "sla.peak_requests_per_second", (int, float))),
        p99_latency_ms=float(_get(raw, "sla.p99_latency_ms", (int, float))),
    )


def _json(environment: Mapping[str, str], name: str, default: str | None = None) -> Any:
    text = environment.get(name) or default
    if text is None:
        raise SettingsError(f"environment variable {name} is required (JSON)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SettingsError(f"environment variable {name} is not valid JSON ({err.msg})") from None


def settings_from_environment(environment: Mapping[str, str]) -> DeployerSettings:
    required = ("ENVIRONMENT_NAME", "ENDPOINT_NAME", "MODEL_PACKAGE_GROUP", "LEDGER_TABLE",
                "MODEL_EXECUTION_ROLE_ARN", "CAPTURE_DESTINATION_URI", "ARTIFACT_BUCKET", "SERVING_SETTINGS")
    missing = [name for name in required if not environment.get(name)]
    if missing:
        raise SettingsError(f"deployer misconfigured: environment variables {missing} are not set")
    capture = environment["CAPTURE_DESTINATION_URI"].rstrip("/")
    if not capture.startswith("s3://"):
        raise SettingsError(f"CAPTURE_DESTINATION_URI is {capture!r}; expected an s3:// URI")
    alarms = _json(environment, "ROLLBACK_ALARM_NAMES", "[]")
    if not isinstance(alarms, list) or not all(isinstance(a, str) and a for a in alarms):
        raise SettingsError("ROLLBACK_ALARM_NAMES must be a JSON list of alarm names")
    vpc = _json(environment, "VPC_CONFIG", "null")
    if vpc is not None and (not isinstance(vpc, dict) or not vpc.get("Subnets")
                            or not vpc.get("SecurityGroupIds")):
        raise SettingsError("VPC_CONFIG must be null or {\"Subnets\": [...], \"SecurityGroupIds\": [...]}")
    stages = tuple(s.strip() for s in environment.get("SERVED_STAGES", "Staging,Production").split(",") if s.strip())
    unknown = [s for s in stages if s not in ("Staging", "Production")]
    if unknown:  # empty is allowed: with a central registry other environments may deploy every stage
        raise SettingsError(f"SERVED_STAGES has {unknown}; allowed: Staging, Production (comma-separated)")
    poll = environment.get("POLL_SECONDS", "60")
    if not poll.isdigit() or not 10 <= int(poll) <= 600:
        raise SettingsError(f"POLL_SECONDS is {poll!r}; allowed: an integer from 10 to 600")
    protected = environment.get("PROTECTED_PRODUCTION_VERSIONS", "3")
    if not protected.isdigit() or int(protected) < 3:
        raise SettingsError(f"PROTECTED_PRODUCTION_VERSIONS is {protected!r}; allowed: an integer of at least 3")
    serving = _json(environment, "SERVING_SETTINGS")
    if not isinstance(serving, dict):
        raise SettingsError("SERVING_SETTINGS must be a JSON object")
    return DeployerSettings(
        environment_name=environment["ENVIRONMENT_NAME"],
        endpoint_name=environment["ENDPOINT_NAME"],
        model_package_group=environment["MODEL_PACKAGE_GROUP"],
        ledger_table=environment["LEDGER_TABLE"],
        served_stages=stages,
        execution_role_arn=environment["MODEL_EXECUTION_ROLE_ARN"],
        capture_destination_uri=capture,
        kms_key_arn=environment.get("KMS_KEY_ARN", ""),
        artifact_bucket=environment["ARTIFACT_BUCKET"],
        fallback_model_key=environment.get("FALLBACK_MODEL_KEY") or DEFAULT_FALLBACK_MODEL_KEY,
        rollback_alarm_names=tuple(alarms),
        serving=parse_serving(serving),
        vpc_config=vpc,
        poll_seconds=int(poll),
    )
