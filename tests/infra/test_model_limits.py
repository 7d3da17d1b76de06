"""The limits that grow with the models (stacks/constructs/limits.py), checked at synth: resources per stack
(CloudFormation's 500, with this project's budget of 450) and rules per event bus (EventBridge's 300, and 30 with
wildcards), counted per account's bus over every environment deployed to it. Concurrency and names with N models
are refused by the configuration (tests/unit/test_config_models.py, tests/infra/test_concurrency.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events

from stacks.app_builder import build_app
from stacks.constructs import limits
from stacks.stage import MlopsStage
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp, three_account_context


def _one_model_context(base: dict[str, Any]) -> dict[str, Any]:
    context = copy.deepcopy(base)
    context["models"] = {MODEL: context["models"][MODEL]}
    return context


def _build(context: dict[str, Any], env: str | None = None) -> tuple[cdk.App, list[MlopsStage]]:
    """The app of ``context`` (``env``: only that environment's stage, as `cdk synth -c env=ENV` builds it)."""
    app = cdk.App(context={**context, "aws:cdk:bundling-stacks": [], **({"env": env} if env else {})})
    return app, build_app(app, context=context, with_nag=False)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_synth_time_count_is_the_templates_and_every_stack_is_within_budget(synthesized: SynthesizedApp,
                                                                                env: str) -> None:
    stage = synthesized.stages[env]
    for stack in (stage.storage, stage.alerting, stage.registry, stage.models[MODEL]):
        template = json.loads((synthesized.outdir / f"assembly-{env}" / stack.template_file).read_text())
        assert limits.resource_count(stack) == len(template["Resources"]), stack.node.path
        assert limits.resource_count(stack) <= limits.STACK_RESOURCE_BUDGET < \
            limits.CLOUDFORMATION_RESOURCES_PER_TEMPLATE


def test_a_model_stack_over_the_budget_fails_synth_naming_the_model(monkeypatch: pytest.MonkeyPatch,
                                                                   synthesized: SynthesizedApp) -> None:
    count = limits.resource_count(synthesized.stages["dev"].models[MODEL])
    shared = max(limits.resource_count(s) for s in (synthesized.stages["dev"].storage,
                                                     synthesized.stages["dev"].alerting,
                                                     synthesized.stages["dev"].registry))
    assert shared < count  # so only the model's stack crosses the budget below
    monkeypatch.setattr(limits, "STACK_RESOURCE_BUDGET", count - 1)
    app, _stages = _build(_one_model_context(sampled_project_context()), env="dev")
    with pytest.raises(Exception, match=rf"model '{MODEL}': stack dev/Model-{MODEL} would declare {count} resources, "
                                        rf"over this project's budget of {count - 1}"):
        app.synth()


def test_rules_per_bus_stay_flat_in_the_number_of_models(synthesized: SynthesizedApp) -> None:
    """The one-account topology puts every environment on one default bus: counted together, and the same with one
    model as with every model of cdk.json (the event router matches the models by pattern)."""
    shipped = limits.rules_per_bus(synthesized.stages.values())
    assert len(synthesized.stages[ENVIRONMENTS[0]].models) > 1
    _app, one_model = _build(_one_model_context(sampled_project_context()))
    assert limits.rules_per_bus(one_model) == shipped
    ((_account, _region, bus), (rules, wildcards)), = shipped.items()  # one account, one region, one bus
    assert bus == "default"
    assert 0 < rules <= limits.RULES_PER_BUS and wildcards <= limits.WILDCARD_RULES_PER_BUS


def test_rules_are_counted_per_account_when_each_environment_has_its_own(three_accounts: SynthesizedApp) -> None:
    counts = limits.rules_per_bus(three_accounts.stages.values())
    assert {account for account, _region, _bus in counts} == \
        {three_account_context()["environments"][env]["account"] for env in ENVIRONMENTS}
    for rules, wildcards in counts.values():
        assert rules <= limits.RULES_PER_BUS and wildcards <= limits.WILDCARD_RULES_PER_BUS


def _app_with_rules(patterns: list[dict[str, Any]]) -> cdk.App:
    app = cdk.App()
    stack = cdk.Stack(app, "Rules", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    for index, pattern in enumerate(patterns):
        events.CfnRule(stack, f"Rule{index}", event_pattern=pattern, state="ENABLED")
    limits.check_rules_per_bus(app, [stack])
    return app


def test_a_bus_over_its_wildcard_quota_fails_synth_naming_the_bus() -> None:
    wildcard = {"source": ["mlops.promotion"], "detail": {"model": [{"wildcard": "breast-*"}]}}
    prefix = {"source": ["mlops.promotion"], "detail": {"model": [{"prefix": "breast-"}]}}
    assert limits.has_wildcard(wildcard) and not limits.has_wildcard(prefix)
    _app_with_rules([wildcard] * limits.WILDCARD_RULES_PER_BUS + [prefix]).synth()  # at the quota: fine
    with pytest.raises(Exception, match=r"event bus 'default' of 111111111111 in eu-west-1 would hold 31 rules with "
                                        r"wildcards; EventBridge allows 30 per bus"):
        _app_with_rules([wildcard] * (limits.WILDCARD_RULES_PER_BUS + 1)).synth()


def test_a_bus_over_its_rule_quota_fails_synth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "RULES_PER_BUS", 2)
    pattern = {"source": ["mlops.deployment"]}
    _app_with_rules([pattern] * 2).synth()
    with pytest.raises(Exception, match=r"would hold 3 rules; EventBridge allows 2 per bus"):
        _app_with_rules([pattern] * 3).synth()
