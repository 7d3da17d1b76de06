"""Building the CDK app from context: used by app.py, the tests and `mlops synth`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks, WriteNagSuppressionsToCloudFormationAspect

from stacks.config import ConfigError, select_environments
from stacks.constructs.lambda_function import MlopsFunction
from stacks.constructs.nag import WildcardAllowancePlugin
from stacks.stage import MlopsStage


def nag_packs(app: cdk.App) -> list[NagPack]:
    return [AwsSolutionsChecks(app), ServerlessChecks(app)]


def build_app(app: cdk.App, *, context: Mapping[str, Any] | None = None, with_nag: bool = True
              ) -> list[MlopsStage]:
    """Add one Stage per selected environment (`-c env=NAME` selects one) and the cdk-nag packs."""
    if context is None:
        context = {key: app.node.try_get_context(key) for key in ("environments", "defaults")}
    selected = app.node.try_get_context("env")
    stages = [MlopsStage(app, config.name, config=config,
                         default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
              for config in select_environments(context, selected)]
    check_concurrency_quota(stages)
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


def check_concurrency_quota(stages: list[MlopsStage]) -> None:
    """Fail synth, naming lambda.account_concurrency_quota, when the environments that share an account and
    region reserve so much that Lambda would refuse the deployment or the unreserved functions' SLA demand
    could not be met. An environment without an account id shares the CLI's default account."""
    groups: dict[tuple[str, str], list[MlopsStage]] = {}
    for stage in stages:
        account = stage.config.account or "the default account"
        groups.setdefault((account, stage.config.region), []).append(stage)
    for (account, region), members in groups.items():
        names = [s.config.name for s in members]
        quotas = {s.config.lambda_.account_concurrency_quota for s in members}
        if len(quotas) > 1:
            raise ConfigError(
                f"environments.{{{','.join(names)}}}.lambda.account_concurrency_quota are {sorted(quotas)}; "
                f"allowed: one value, since {', '.join(names)} share the quota of {account} in {region}")
        quota = quotas.pop()
        functions = [f for s in members for f in s.node.find_all() if isinstance(f, MlopsFunction)]
        reserved = sum(f.reserved_concurrency or 0 for f in functions)
        demand = sum(f.concurrency_demand for f in functions)
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
