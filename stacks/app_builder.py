"""Building the CDK app from context: used by app.py, the tests and `mlops synth`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks, WriteNagSuppressionsToCloudFormationAspect

from stacks.config import ConfigError, EnvironmentConfig, load_environments, select_environments
from stacks.constructs.lambda_function import MlopsFunction
from stacks.constructs.nag import WildcardAllowancePlugin
from stacks.delivery import build_delivery
from stacks.delivery_naming import DELIVERY_CONTEXT_KEY
from stacks.inference_api import inference_concurrency_demand
from stacks.stage import MlopsStage


def nag_packs(app: cdk.App) -> list[NagPack]:
    return [AwsSolutionsChecks(app), ServerlessChecks(app)]


def build_app(app: cdk.App, *, context: Mapping[str, Any] | None = None, with_nag: bool = True
              ) -> list[MlopsStage]:
    """Add one Stage per selected environment (`-c env=NAME` selects one) and the cdk-nag packs."""
    if context is None:
        context = {key: app.node.try_get_context(key) for key in ("environments", "defaults")}
    selected = app.node.try_get_context("env")
    configs = load_environments(context)
    # `-c delivery=ENV` synthesizes only the OIDC stack of ENV's account (stacks/delivery.py); without `-c env`
    # the OIDC stacks come beside every environment's stage when cdk.json names a repository.
    delivery = app.node.try_get_context(DELIVERY_CONTEXT_KEY)
    stages = [] if delivery else [MlopsStage(app, config.name, config=config, configs=configs,
                                             default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
                                  for config in select_environments(context, selected)]
    if delivery or selected is None:
        build_delivery(app, configs, only=delivery, default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
    built = {stage.config.name for stage in stages}
    check_concurrency_quota(stages, others=[c for c in configs.values() if c.name not in built])
    for stage in stages:
        # Keeps an audit trail of every acknowledgement in the templates' metadata (cdk_nag.rules_to_suppress).
        # Aspects do not cross Stage boundaries, so each stage gets its own.
        cdk.Aspects.of(stage).add(WriteNagSuppressionsToCloudFormationAspect())
    if with_nag:
        # The allowance resolver must run before the packs (plugins run in the order they are added).
        cdk.Validations.of(app).add_plugins(WildcardAllowancePlugin(app), *nag_packs(app))
    return stages


# Lambda refuses a reservation that leaves fewer unreserved concurrent executions than this in the account and
# region (Lambda Developer Guide, "Configuring reserved concurrency").
LAMBDA_UNRESERVED_MINIMUM = 100


def planned_reservation(config: EnvironmentConfig) -> tuple[int, int]:
    """(reserved, SLA demand) of an environment that is not synthesized in this run (`-c env=` selects
    another): the promotion gate (registry environment only) and four deployer tasks at
    lambda.reserved_concurrency, the three scheduled
    functions at 1, the inference function unreserved. tests/infra/test_concurrency.py keeps this equal to
    what the synthesized stacks reserve."""
    reserved_functions = 5 if config.is_registry else 4  # the promotion gate lives in the registry environment
    return reserved_functions * config.lambda_.reserved_concurrency + 3, inference_concurrency_demand(config)


def check_concurrency_quota(stages: list[MlopsStage], *, others: list[EnvironmentConfig] | None = None) -> None:
    """Fail synth, naming lambda.account_concurrency_quota, when the environments that share an account and
    region reserve so much that Lambda would refuse the deployment or the unreserved functions' SLA demand
    could not be met. An environment without an account id shares the CLI's default account. ``others``: the
    configured environments not synthesized in this run, counted by ``planned_reservation``."""
    groups: dict[tuple[str, str], list[tuple[EnvironmentConfig, int, int]]] = {}
    for stage in stages:
        functions = [f for f in stage.node.find_all() if isinstance(f, MlopsFunction)]
        entry = (stage.config, sum(f.reserved_concurrency or 0 for f in functions),
                 sum(f.concurrency_demand for f in functions))
        groups.setdefault((stage.config.account or "the default account", stage.config.region), []).append(entry)
    for config in others or []:
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
