"""What a deployer works with: the environment's serving settings and the names of what it deploys to.

``lambdas/deployer/settings.py`` builds ``DeployerSettings`` from the function's environment once per
execution environment. ``SERVING_SETTINGS`` is ``json.dumps(mlsettings.config.to_plain(config.serving))``: the
stack passes the validated per-environment settings through unchanged, so the runtime never re-derives them
(and never imports the CDK-side config module). Only the keys the deployer uses are read; a missing or
mistyped one fails the cold start with its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlsettings.vocabulary import CHALLENGER, CHAMPION

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
    event_bus_name: str = "default"
    variant_parameter_prefix: str = ""
    """``Published.variant_prefix`` of the environment and model."""
    result_parameter_prefix: str = ""
    """``Published.deployer_prefix`` of the environment and model."""

    def variant_parameter(self, variant: str, key: str) -> str:
        """SSM parameter publishing what a variant serves (the drift monitor and dashboard read it)."""
        return f"{self.variant_parameter_prefix}/{variant}/{key}"

    def result_parameter(self, stage: str) -> str:
        """SSM parameter with this deployer's last result for ``stage`` (its own record; the ledger is the
        registry's)."""
        return f"{self.result_parameter_prefix}/{stage}/last-result"


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
