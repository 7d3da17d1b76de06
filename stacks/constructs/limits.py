"""Limits that grow with the models, checked when the app synthesizes (a failed check fails `cdk synth` with the
model's or the bus's name, before anything reaches CloudFormation):

- **Resources per stack.** "Resources: Maximum number of resources that you can declare in your CloudFormation
  template: 500" (AWS CloudFormation User Guide, "CloudFormation quotas"; not adjustable). Each model has its own
  stack, so the models do not add up in one template; the check keeps a margin (``STACK_RESOURCE_BUDGET``) for a
  model whose settings add alarms, variants or an engine.
- **Rules per event bus.** "Rules: 300 per event bus" (adjustable) and "Rules containing wildcards: 30 rules per event
  bus ... This quota cannot be adjusted" (Amazon EventBridge User Guide, "Amazon EventBridge quotas"). Rules are per
  bus of an account and region: environments sharing an account (the one-account topology) share its default bus,
  so their rules are counted together. The event router (stacks/constructs/event_router.py) keeps the count flat in
  the number of models; this check proves it stays under both quotas whatever cdk.json says.

Lambda concurrency with N models is checked by the configuration (mlsettings.config.topology.check_concurrency_quota)
and names by mlsettings.naming.check_names, both before any stack is built."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_events as events
from constructs import Construct, IValidation

CLOUDFORMATION_RESOURCES_PER_TEMPLATE = 500
STACK_RESOURCE_BUDGET = 450
"""What a stack of this project may hold: CloudFormation's hard 500, less a margin of 50."""
RULES_PER_BUS = 300
WILDCARD_RULES_PER_BUS = 30


def resource_count(stack: cdk.Stack) -> int:
    """The resources ``stack``'s template will declare (every L1 resource of the stack, CDK's metadata included)."""
    return sum(1 for node in stack.node.find_all()
               if isinstance(node, cdk.CfnResource) and cdk.Stack.of(node) is stack)


@jsii.implements(IValidation)
class _ResourceBudget:
    def __init__(self, stack: cdk.Stack, owner: str, budget: int) -> None:
        self._stack, self._owner, self._budget = stack, owner, budget

    def validate(self) -> list[str]:
        count = resource_count(self._stack)
        if count <= self._budget:
            return []
        return [f"{self._owner}: stack {self._stack.node.path} would declare {count} resources, over this project's "
                f"budget of {self._budget} (CloudFormation refuses a template of more than "
                f"{CLOUDFORMATION_RESOURCES_PER_TEMPLATE}); docs/MODELS.md says what to do"]


def check_resource_budget(stack: cdk.Stack, owner: str, budget: int | None = None) -> None:
    """Fail synthesis naming ``owner`` (e.g. "model 'wine'") when ``stack`` would exceed the budget."""
    stack.node.add_validation(_ResourceBudget(stack, owner, STACK_RESOURCE_BUDGET if budget is None else budget))


def has_wildcard(pattern: Any) -> bool:
    """True when an event pattern uses the ``wildcard`` operator anywhere (what the 30-rule quota counts; a
    ``prefix`` or ``suffix`` match is not a wildcard)."""
    if isinstance(pattern, Mapping):
        return "wildcard" in pattern or any(has_wildcard(v) for v in pattern.values())
    if isinstance(pattern, list):
        return any(has_wildcard(v) for v in pattern)
    return False


def _bus_of(rule: events.CfnRule, stack: cdk.Stack) -> tuple[str, str, str]:
    account = stack.account if not cdk.Token.is_unresolved(stack.account) else "the deploying account"
    region = stack.region if not cdk.Token.is_unresolved(stack.region) else "the deploying region"
    bus = "default" if rule.event_bus_name is None else json.dumps(stack.resolve(rule.event_bus_name))
    return account, region, bus


def rules_per_bus(scopes: Iterable[Construct]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(account, region, bus) -> (rules, rules with a wildcard) of every rule below ``scopes``."""
    counts: dict[tuple[str, str, str], tuple[int, int]] = {}
    for scope in scopes:
        for node in scope.node.find_all():
            if not isinstance(node, events.CfnRule):
                continue
            stack = cdk.Stack.of(node)
            key = _bus_of(node, stack)
            rules, wildcards = counts.get(key, (0, 0))
            counts[key] = (rules + 1, wildcards + int(has_wildcard(stack.resolve(node.event_pattern))))
    return counts


@jsii.implements(IValidation)
class _RuleBudget:
    def __init__(self, scopes: list[Construct]) -> None:
        self._scopes = scopes

    def validate(self) -> list[str]:
        errors = []
        for (account, region, bus), (rules, wildcards) in sorted(rules_per_bus(self._scopes).items()):
            where = f"event bus {bus!r} of {account} in {region}"
            if rules > RULES_PER_BUS:
                errors.append(f"{where} would hold {rules} rules; EventBridge allows {RULES_PER_BUS} per bus")
            if wildcards > WILDCARD_RULES_PER_BUS:
                errors.append(f"{where} would hold {wildcards} rules with wildcards; EventBridge allows "
                              f"{WILDCARD_RULES_PER_BUS} per bus (not adjustable)")
        return errors


def check_rules_per_bus(app: Construct, scopes: list[Construct]) -> None:
    """Fail synthesis when the rules of ``scopes`` (every stage the app deploys) would exceed a bus's quotas."""
    app.node.add_validation(_RuleBudget(scopes))
