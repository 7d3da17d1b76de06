"""Building the CDK app from context: used by app.py, the tests and `mlops synth`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks, WriteNagSuppressionsToCloudFormationAspect

from mlsettings.config import load_environments, select_environments
from mlsettings.delivery_naming import DELIVERY_CONTEXT_KEY
from stacks.constructs.limits import check_rules_per_bus
from stacks.constructs.nag import WildcardAllowancePlugin
from stacks.delivery import build_delivery
from stacks.stage import MlopsStage


def nag_packs(app: cdk.App) -> list[NagPack]:
    return [AwsSolutionsChecks(app), ServerlessChecks(app)]


def build_app(app: cdk.App, *, context: Mapping[str, Any] | None = None, with_nag: bool = True
              ) -> list[MlopsStage]:
    """Add one Stage per selected environment (`-c env=NAME` selects one) and the cdk-nag packs."""
    if context is None:
        context = {key: app.node.try_get_context(key) for key in ("environments", "defaults", "models")}
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
    # EventBridge's rules-per-bus quotas, counted over every stage (environments may share an account's bus).
    check_rules_per_bus(app, list(stages))
    for stage in stages:
        # Keeps an audit trail of every acknowledgement in the templates' metadata (cdk_nag.rules_to_suppress).
        # Aspects do not cross Stage boundaries, so each stage gets its own.
        cdk.Aspects.of(stage).add(WriteNagSuppressionsToCloudFormationAspect())
    if with_nag:
        # The allowance resolver must run before the packs (plugins run in the order they are added).
        cdk.Validations.of(app).add_plugins(WildcardAllowancePlugin(app), *nag_packs(app))
    return stages
