"""Reserved concurrency against the account's Lambda quota, read from cdk.out: Lambda keeps 100 concurrent
executions per account and region unreserved and refuses a deployment that would leave less (Lambda
Developer Guide, "Configuring reserved concurrency"); a new account's quota can be far below 1,000.

Every model of an environment adds its own functions (stacks/model.py): the expected numbers below are read from
the synthesized templates (what is reserved) and computed from the SLA of each model (what the unreserved inference
functions need), never taken from the planner they check (mlsettings/config/topology.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import defaultdict
from typing import NamedTuple

import pytest

from mlsettings.config import (
    LAMBDA_UNRESERVED_MINIMUM,
    ConfigError,
    EnvironmentConfig,
    check_concurrency_quota,
    inference_concurrency_demand,
    load_environments,
    planned_reservation,
)
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp

INFERENCE_HANDLER = "lambdas.inference.handler.handler"


class Function(NamedTuple):
    stack: str
    logical_id: str
    handler: str
    reserved: int | None


def _functions_from_cdk_out(synthesized: SynthesizedApp) -> dict[str, list[Function]]:
    """environment -> every function of its stacks, with its ReservedConcurrentExecutions (None: unreserved). The
    model stacks share logical ids: a function is its stack and logical id."""
    found: dict[str, list[Function]] = defaultdict(list)
    for env in ENVIRONMENTS:
        for path in sorted((synthesized.outdir / f"assembly-{env}").glob("*.template.json")):
            for logical, resource in json.loads(path.read_text())["Resources"].items():
                if resource["Type"] == "AWS::Lambda::Function":
                    properties = resource["Properties"]
                    found[env].append(Function(path.name.removesuffix(".template.json"), logical,
                                               properties["Handler"], properties.get("ReservedConcurrentExecutions")))
    return found


def _reserved(functions: list[Function]) -> int:
    return sum(f.reserved or 0 for f in functions)


def _sla_demand(view: EnvironmentConfig) -> int:
    """A model's inference function at its SLA's peak rate: Little's law with every request using its whole endpoint
    budget (attempts x (1 s connect + read timeout)), with 50 % headroom (docs/CONFIGURATION.md)."""
    api = view.inference_api
    return math.ceil(view.serving.sla.peak_requests_per_second * api.max_attempts
                     * (1 + api.endpoint_timeout_ms / 1000) * 1.5)


def _needed(synthesized: SynthesizedApp, configs: dict[str, EnvironmentConfig], envs: tuple[str, ...]
            ) -> tuple[int, int]:
    """(reserved, needed quota) of ``envs`` sharing one account: what their synthesized functions reserve, plus
    what must stay unreserved (Lambda's minimum, or their models' SLA demand when larger)."""
    functions = _functions_from_cdk_out(synthesized)
    reserved = sum(_reserved(functions[env]) for env in envs)
    demand = sum(_sla_demand(view) for env in envs for view in configs[env].models)
    return reserved, reserved + max(LAMBDA_UNRESERVED_MINIMUM, demand)


def test_the_environments_sharing_an_account_fit_the_configured_quota(synthesized: SynthesizedApp) -> None:
    configs = load_environments(sampled_project_context())
    functions = _functions_from_cdk_out(synthesized)
    # cdk.json leaves every account null: all three share the CLI's default account and one region
    assert {(c.account, c.region) for c in configs.values()} == {(None, "eu-west-1")}
    total = sum(_reserved(functions[env]) for env in ENVIRONMENTS)
    demand = sum(inference_concurrency_demand(view) for env in ENVIRONMENTS for view in configs[env].models)
    quota = configs["prod"].lambda_.account_concurrency_quota
    assert quota - total >= max(LAMBDA_UNRESERVED_MINIMUM, demand)
    # what synth assumes for an environment it does not build (`-c env=` selects another) is what is built: the
    # reservations of every model's functions, and the demand of every model's inference function
    assert {env: _reserved(functions[env]) for env in ENVIRONMENTS} == {
        env: planned_reservation(configs[env])[0] for env in ENVIRONMENTS}
    assert {env: sum(stack.inference_api.function.concurrency_demand
                     for stack in synthesized.stages[env].models.values()) for env in ENVIRONMENTS} == {
        env: planned_reservation(configs[env])[1] for env in ENVIRONMENTS}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_inference_function_is_unreserved_and_its_demand_follows_the_sla(synthesized: SynthesizedApp,
                                                                           env: str) -> None:
    functions = _functions_from_cdk_out(synthesized)[env]
    inference = [f for f in functions if f.handler == INFERENCE_HANDLER]
    assert {f.reserved for f in inference} == {None}  # every model's
    own = synthesized.stages[env].models[MODEL]
    (mine,) = [f for f in inference if f.stack == own.artifact_id]
    assert mine.reserved is None
    config = load_environments(sampled_project_context())[env].for_model(MODEL)
    api = config.inference_api
    expected = config.serving.sla.peak_requests_per_second * api.max_attempts * (1 + api.endpoint_timeout_ms / 1000)
    assert inference_concurrency_demand(config) == pytest.approx(expected * 1.5, abs=1)
    assert own.inference_api.function.concurrency_demand == inference_concurrency_demand(config)


def _with_quota(quotas: dict[str, int]) -> list:  # type: ignore[type-arg]
    configs = load_environments(sampled_project_context())
    return [dataclasses.replace(config, lambda_=dataclasses.replace(
        config.lambda_, account_concurrency_quota=quotas.get(name, config.lambda_.account_concurrency_quota)))
        for name, config in configs.items()]


def test_a_quota_too_small_for_the_shared_account_fails_naming_the_key(synthesized: SynthesizedApp) -> None:
    configs = load_environments(sampled_project_context())
    check_concurrency_quota(list(configs.values()))  # the repository's cdk.json fits
    reserved, needed = _needed(synthesized, configs, ENVIRONMENTS)
    check_concurrency_quota(_with_quota(dict.fromkeys(ENVIRONMENTS, needed)))  # exactly enough fits
    with pytest.raises(ConfigError, match=rf"environments\.\{{dev,staging,prod\}}\.lambda\.account_concurrency_quota "
                                          rf"is {needed - 1}; allowed: at least {needed} .*reserve {reserved}\b"):
        check_concurrency_quota(_with_quota(dict.fromkeys(ENVIRONMENTS, needed - 1)))


def test_environments_sharing_an_account_must_agree_on_its_quota() -> None:
    configs = load_environments(sampled_project_context())
    (quota,) = {c.lambda_.account_concurrency_quota for c in configs.values()}
    with pytest.raises(ConfigError, match=rf"account_concurrency_quota are {re.escape(str([quota, 2 * quota]))}; "
                                          r"allowed: one value"):
        check_concurrency_quota(_with_quota({"dev": 2 * quota}))


def test_a_single_environment_synth_still_counts_the_others_in_its_account(synthesized: SynthesizedApp) -> None:
    """`cdk deploy -c env=prod` builds prod only; dev and staging in the same account still count: the check runs
    on every configured environment whatever synth selects (and `mlops config validate` runs the same)."""
    import copy

    from mlsettings.config import select_environments

    configs = load_environments(sampled_project_context())
    _, prod_needs = _needed(synthesized, configs, ("prod",))
    _, all_need = _needed(synthesized, configs, ENVIRONMENTS)
    assert prod_needs < all_need
    context = copy.deepcopy(sampled_project_context())
    context["defaults"].setdefault("lambda", {})["account_concurrency_quota"] = prod_needs
    prod_alone = _with_quota(dict.fromkeys(ENVIRONMENTS, prod_needs))
    check_concurrency_quota([c for c in prod_alone if c.name == "prod"])  # prod alone fits exactly
    with pytest.raises(ConfigError,
                       match=rf"\{{dev,staging,prod\}}\.lambda\.account_concurrency_quota is {prod_needs};"):
        select_environments(context, "prod")
