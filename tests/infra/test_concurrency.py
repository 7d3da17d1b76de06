"""Reserved concurrency against the account's Lambda quota, read from cdk.out: Lambda keeps 100 concurrent
executions per account and region unreserved and refuses a deployment that would leave less (Lambda
Developer Guide, "Configuring reserved concurrency"); a new account's quota can be far below 1,000."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

import pytest

from mlsettings.config import (
    LAMBDA_UNRESERVED_MINIMUM,
    ConfigError,
    check_concurrency_quota,
    inference_concurrency_demand,
    load_environments,
    planned_reservation,
    project_context,
)
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp


def _reserved_from_cdk_out(synthesized: SynthesizedApp) -> dict[str, dict[str, int | None]]:
    """environment -> {function logical id: ReservedConcurrentExecutions or None}."""
    found: dict[str, dict[str, int | None]] = defaultdict(dict)
    for env in ENVIRONMENTS:
        for path in sorted((synthesized.outdir / f"assembly-{env}").glob("*.template.json")):
            for logical, resource in json.loads(path.read_text())["Resources"].items():
                if resource["Type"] == "AWS::Lambda::Function":
                    found[env][logical] = resource["Properties"].get("ReservedConcurrentExecutions")
    return found


def test_the_environments_sharing_an_account_fit_the_configured_quota(synthesized: SynthesizedApp) -> None:
    configs = load_environments(project_context())
    reserved = _reserved_from_cdk_out(synthesized)
    # cdk.json leaves every account null: all three share the CLI's default account and one region
    assert {(c.account, c.region) for c in configs.values()} == {(None, "eu-west-1")}
    total = sum(v or 0 for env in ENVIRONMENTS for v in reserved[env].values())
    demand = sum(inference_concurrency_demand(configs[env]) for env in ENVIRONMENTS)
    quota = configs["prod"].lambda_.account_concurrency_quota
    assert quota - total >= max(LAMBDA_UNRESERVED_MINIMUM, demand)
    # what synth assumes for an environment it does not build (`-c env=` selects another) is what is built
    assert {env: sum(v or 0 for v in reserved[env].values()) for env in ENVIRONMENTS} == {
        env: planned_reservation(configs[env])[0] for env in ENVIRONMENTS}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_inference_function_is_unreserved_and_its_demand_follows_the_sla(synthesized: SynthesizedApp,
                                                                           env: str) -> None:
    reserved = _reserved_from_cdk_out(synthesized)[env]
    (inference,) = [logical for logical in reserved if logical.startswith("InferenceFunction")]
    assert reserved[inference] is None
    config = load_environments(project_context())[env]
    api = config.inference_api
    expected = config.serving.sla.peak_requests_per_second * api.max_attempts * (1 + api.endpoint_timeout_ms / 1000)
    assert inference_concurrency_demand(config) == pytest.approx(expected * 1.5, abs=1)
    assert synthesized.stages[env].inference_api.function.concurrency_demand == inference_concurrency_demand(config)


def _with_quota(quotas: dict[str, int]) -> list:  # type: ignore[type-arg]
    configs = load_environments(project_context())
    return [dataclasses.replace(config, lambda_=dataclasses.replace(
        config.lambda_, account_concurrency_quota=quotas.get(name, config.lambda_.account_concurrency_quota)))
        for name, config in configs.items()]


def test_a_quota_too_small_for_the_shared_account_fails_naming_the_key() -> None:
    check_concurrency_quota(list(load_environments(project_context()).values()))  # the repository's cdk.json fits
    with pytest.raises(ConfigError, match=r"environments\.\{dev,staging,prod\}\.lambda\.account_concurrency_quota "
                                          r"is 500; allowed: at least 858 .*reserve 78"):
        check_concurrency_quota(_with_quota(dict.fromkeys(ENVIRONMENTS, 500)))


def test_environments_sharing_an_account_must_agree_on_its_quota() -> None:
    with pytest.raises(ConfigError, match=r"account_concurrency_quota are \[1000, 2000\]; allowed: one value"):
        check_concurrency_quota(_with_quota({"dev": 2000}))


def test_a_single_environment_synth_still_counts_the_others_in_its_account() -> None:
    """`cdk deploy -c env=prod` builds prod only; dev and staging in the same account still count: the check runs
    on every configured environment whatever synth selects (and `mlops config validate` runs the same)."""
    import copy

    from mlsettings.config import select_environments

    context = copy.deepcopy(project_context())
    context["defaults"].setdefault("lambda", {})["account_concurrency_quota"] = 700
    prod_alone = _with_quota(dict.fromkeys(ENVIRONMENTS, 700))
    check_concurrency_quota([c for c in prod_alone if c.name == "prod"])  # prod alone: 28 + max(100, 600) fits
    with pytest.raises(ConfigError, match=r"\{dev,staging,prod\}\.lambda\.account_concurrency_quota is 700"):
        select_environments(context, "prod")
