"""Rules across environments: the registry environment and the environments that serve its stages (one account
or several), and the Lambda concurrency they share in an account and region."""

from __future__ import annotations

import math
from collections.abc import Mapping

from mlsettings.config.fields import ConfigError
from mlsettings.config.model import EnvironmentConfig
from mlsettings.drift_partials import ENGINE_PARTIALS, PARTIALS_CONCURRENCY
from mlsettings.vocabulary import SERVABLE_STAGES


def check_registries(configs: Mapping[str, EnvironmentConfig]) -> None:
    """Each environment names a registry environment that names itself; consumers share its region (a model
    package and its artifacts are regional: SageMaker creates models from them in their own region only) and
    its retention rule; accounts are all given or all null (null is the CLI's account: a mix cannot tell which
    hops cross accounts); and every stage of a registry has exactly one deployer (two would race on the
    version's stage status and the ledger's staging evidence; none would strand promotions)."""
    servers: dict[tuple[str, str], str] = {}
    for config in configs.values():
        owner_name = config.registry.registry_environment
        owner = configs.get(owner_name)
        where = f"environments.{config.name}.registry"
        if owner is None:
            raise ConfigError(f"{where}.registry_environment is {owner_name!r}; allowed: one of {sorted(configs)}")
        if not owner.is_registry:
            raise ConfigError(f"{where}.registry_environment is {owner_name!r}, whose own registry_environment is "
                              f"{owner.registry.registry_environment!r}; allowed: an environment that names itself "
                              "(the registry environment)")
        if config.region != owner.region:
            raise ConfigError(
                f"environments.{config.name}.region is {config.region} but its registry environment {owner_name!r} "
                f"is in {owner.region}; allowed: {owner.region} (SageMaker creates a model from a package and its "
                "artifacts in their own region only; accounts may differ, docs/ACCOUNTS.md)")
        if (config.account is None) != (owner.account is None):
            raise ConfigError(
                f"environments.{config.name}.account is {config.account} and environments.{owner_name}.account is "
                f"{owner.account}; allowed: both account ids (each environment in its own account, or the same "
                "id twice) or both null (one account: the CLI's)")
        if not config.is_registry and (config.training.retrain_schedule or config.training.retrain_on_new_data):
            raise ConfigError(
                f"environments.{config.name}.training sets retraining triggers; allowed: none outside the registry "
                f"environment ({owner_name!r} runs the training pipeline; set them there)")
        if config.monitoring.drift.retrain_on_sustained_drift and config.account != owner.account:
            raise ConfigError(
                f"environments.{config.name}.monitoring.drift.retrain_on_sustained_drift is true; allowed: false "
                f"when {config.name!r} is in another account than its registry environment {owner_name!r} "
                "(the alarm would have to start the pipeline across accounts, which is not built; "
                "docs/ACCOUNTS.md, 'Not built yet')")
        if owner.storage.retain_data is False and config.production:
            raise ConfigError(
                f"environments.{owner_name}.storage.retain_data is false; allowed: true, since production "
                f"environment {config.name!r} deploys from its registry (the ledger and the retained production "
                "versions' artifacts live there)")
        if config.registry.protected_production_versions != owner.registry.protected_production_versions:
            # One ledger, one retention rule: the recorder protects with the registry's count.
            raise ConfigError(
                f"{where}.protected_production_versions is {config.registry.protected_production_versions}; "
                f"allowed: the registry environment's value ({owner.registry.protected_production_versions})")
        for stage in config.serving.served_stages:
            other = servers.setdefault((owner_name, stage), config.name)
            if other != config.name:
                raise ConfigError(
                    f"environments.{config.name}.serving.served_stages has {stage!r}, which environment {other!r} "
                    "already serves from the same registry; allowed: each stage served by one environment")
    for owner_name in sorted(name for name, config in configs.items() if config.is_registry):
        for stage in SERVABLE_STAGES:
            if (owner_name, stage) not in servers:
                raise ConfigError(
                    f"no environment's serving.served_stages has {stage!r} for the registry in {owner_name!r}; "
                    "allowed: every stage served by exactly one environment")


# Lambda refuses a reservation that leaves fewer unreserved concurrent executions than this in the account and
# region (Lambda Developer Guide, "Configuring reserved concurrency").
LAMBDA_UNRESERVED_MINIMUM = 100
# The inference function's SLA demand: Little's law at the peak rate when every request uses its whole endpoint
# budget (attempts x (connect + read timeout)), with 50 % headroom.
INFERENCE_CONNECT_TIMEOUT_SECONDS = 1
INFERENCE_CONCURRENCY_HEADROOM = 1.5


def inference_concurrency_demand(config: EnvironmentConfig) -> int:
    """Concurrent executions the unreserved inference function needs at the SLA's peak rate."""
    api = config.inference_api
    budget_seconds = api.max_attempts * (INFERENCE_CONNECT_TIMEOUT_SECONDS + api.endpoint_timeout_ms / 1000)
    return math.ceil(config.serving.sla.peak_requests_per_second * budget_seconds * INFERENCE_CONCURRENCY_HEADROOM)


DEPLOYER_TASKS = 4
DEPLOYER_TASK_CONCURRENCY = 1
"""Each deployer task reserves 1: a model's deployments run one at a time (a second waits on EndpointBusy), and
Step Functions retries a throttled task (Lambda.TooManyRequestsException), so a reservation of 1 is a cap, not a
failure; with many models the account's reserved pool is what runs out first."""
SCHEDULED_FUNCTIONS = 3
"""Health check, batch scoring, drift monitor: one run at a time each."""


def model_reservation(view: EnvironmentConfig) -> int:
    """What one model's functions reserve in an environment."""
    partials = PARTIALS_CONCURRENCY if view.monitoring.drift.engine == ENGINE_PARTIALS else 0
    return DEPLOYER_TASKS * DEPLOYER_TASK_CONCURRENCY + SCHEDULED_FUNCTIONS + partials


def planned_reservation(config: EnvironmentConfig) -> tuple[int, int]:
    """(reserved, SLA demand) of an environment's functions: the promotion gate (registry environment only) at
    lambda.reserved_concurrency, and per model its deployer tasks, scheduled functions and (engine ``partials``)
    its partials function (``model_reservation``); each model's inference function is unreserved and adds its SLA
    demand. tests/infra/test_concurrency.py keeps this equal to what the synthesized stacks reserve."""
    gate = config.lambda_.reserved_concurrency if config.is_registry else 0
    return (gate + sum(model_reservation(view) for view in config.models),
            sum(inference_concurrency_demand(view) for view in config.models))


def check_concurrency_quota(configs: list[EnvironmentConfig]) -> None:
    """Fail, naming lambda.account_concurrency_quota, when the environments that share an account and region
    reserve so much that Lambda would refuse the deployment or the unreserved functions' SLA demand could not be
    met. An environment without an account id shares the CLI's default account."""
    groups: dict[tuple[str, str], list[tuple[EnvironmentConfig, int, int]]] = {}
    for config in configs:
        groups.setdefault((config.account or "the default account", config.region), []).append(
            (config, *planned_reservation(config)))
    for (account, region), members in groups.items():
        names = [c.name for c, _, _ in members]
        quotas = {c.lambda_.account_concurrency_quota for c, _, _ in members}
        if len(quotas) > 1:
            raise ConfigError(
                f"environments.{{{','.join(names)}}}.lambda.account_concurrency_quota are {sorted(quotas)}; "
                f"allowed: one value, since {', '.join(names)} share the quota of {account} in {region}")
        quota = quotas.pop()
        reserved = sum(r for _, r, _ in members)
        demand = sum(d for _, _, d in members)
        needed = reserved + max(LAMBDA_UNRESERVED_MINIMUM, demand)
        if quota < needed:
            where = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
            raise ConfigError(
                f"environments.{where}.lambda.account_concurrency_quota is {quota}; allowed: at least {needed} "
                f"for {', '.join(names)} in {account} and {region}: their functions reserve {reserved}, and "
                f"max({LAMBDA_UNRESERVED_MINIMUM} that Lambda keeps unreserved, {demand} the inference functions "
                "need at their SLA peak) must stay unreserved. Request a higher 'Concurrent executions' quota "
                "(L-B99A9384) or lower lambda.reserved_concurrency / serving.sla.peak_requests_per_second "
                "(docs/CONFIGURATION.md, 'Lambda concurrency quota')")


def consumers_of(configs: Mapping[str, EnvironmentConfig], registry: EnvironmentConfig) -> list[EnvironmentConfig]:
    """The environments that serve a stage of ``registry``'s group, in a stable order."""
    return [c for _, c in sorted(configs.items())
            if c.registry.registry_environment == registry.name and c.serving.served_stages]


def other_account(config: EnvironmentConfig, registry: EnvironmentConfig) -> bool:
    """True when ``config`` lives in another account than its registry (cross-account hops need resource
    policies and event forwarding); null accounts are one account (the rule above)."""
    return config.account != registry.account


def check_names(configs: Mapping[str, EnvironmentConfig]) -> None:
    """Every name derived from a model fits its service's limit (mlsettings.naming, which imports this package)."""
    from mlsettings.naming import check_names as check

    check(dict(configs))
