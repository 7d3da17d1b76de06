"""The order a push to main deploys the environments in, derived from cdk.json's topology
(mlops/delivery/topology.py): the registry first, a Production server after its registry's Staging server."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops.delivery.topology import deploy_plan
from mlsettings.config import load_environments, project_context


def _plan(environments: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    defaults = copy.deepcopy(project_context()["defaults"])
    # several environments in one (the default) account: a quota large enough for all of them
    defaults.setdefault("lambda", {})["account_concurrency_quota"] = 100_000
    models = {"m": {"problem_type": "binary", "schema_file": "pipelines/schemas/breast_cancer.json"}}
    context = {"defaults": defaults, "environments": environments, "models": models}
    return [(step.environment, step.needs) for step in deploy_plan(load_environments(context))]


def _env(registry: str, stages: list[str], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"registry": {"registry_environment": registry}, "serving": {"served_stages": stages}}
    return {**body, **extra}


def test_the_shipped_topology_deploys_dev_then_staging_then_prod() -> None:
    plan = deploy_plan(load_environments(project_context()))
    assert [(s.environment, s.needs) for s in plan] == [("dev", ()), ("staging", ("dev",)),
                                                        ("prod", ("dev", "staging"))]
    assert "registry" in plan[0].reason and "after staging which serves Staging" in plan[2].reason


def test_stage_order_wins_over_names() -> None:
    """'alpha' serves Production and 'zulu' Staging: zulu deploys first, whatever the alphabet says."""
    plan = _plan({"alpha": _env("hub", ["Production"], production=True,
                                serving={"served_stages": ["Production"],
                                         "champion": {"min_instances": 2, "max_instances": 2}}),
                  "zulu": _env("hub", ["Staging"]),
                  "hub": _env("hub", [])})
    assert plan == [("hub", ()), ("zulu", ("hub",)), ("alpha", ("hub", "zulu"))]


def test_a_registry_that_serves_staging_itself_is_needed_once() -> None:
    plan = _plan({"dev": _env("dev", ["Staging"]),
                  "prod": _env("dev", ["Production"], production=True,
                               serving={"served_stages": ["Production"],
                                        "champion": {"min_instances": 2, "max_instances": 2}})})
    assert plan == [("dev", ()), ("prod", ("dev",))]


def test_two_registries_are_independent_chains_and_a_consumer_serving_nothing_waits_for_its_registry() -> None:
    prod = {"production": True, "serving": {"served_stages": ["Production"],
                                            "champion": {"min_instances": 2, "max_instances": 2}}}
    plan = _plan({"a": _env("a", []), "a-stage": _env("a", ["Staging"]), "a-prod": _env("a", [], **prod),
                  "b": _env("b", []), "b-stage": _env("b", ["Staging"]), "b-prod": _env("b", [], **prod),
                  "sandbox": _env("a", [])})
    order = [env for env, _ in plan]
    needs = dict(plan)
    assert needs == {"a": (), "b": (), "a-stage": ("a",), "b-stage": ("b",), "sandbox": ("a",),
                     "a-prod": ("a", "a-stage"), "b-prod": ("b", "b-stage")}
    for env, wanted in needs.items():
        assert all(order.index(need) < order.index(env) for need in wanted), env
    assert order[:2] == ["a", "b"]  # registries first


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_environment_appears_once(env: str) -> None:
    plan = deploy_plan(load_environments(project_context()))
    assert [s.environment for s in plan].count(env) == 1
