"""The synth-scale benchmark's context generator (bench/bench_synth_scale.py): N copies of cdk.json's models.

GIVEN cdk.json, WHEN the generator makes N models, THEN their names are valid and unique, the shipped kinds
cycle in order with their settings copied, and the configuration accepts the result; WHEN N models need more
Lambda concurrency than cdk.json's quota, THEN the quota is raised to exactly what the planner needs. No synthesis.
"""

from __future__ import annotations

import copy
import re

import pytest

from bench import bench_synth_scale as bench
from mlsettings.config import ConfigError, load_environments, project_context
from mlsettings.config.model import MODEL_NAME_PATTERN


def test_generated_names_are_valid_unique_and_cycle_the_shipped_kinds() -> None:
    shipped = project_context()["models"]
    models = bench.generated_models(shipped, 50)
    assert len(models) == 50
    assert all(re.fullmatch(MODEL_NAME_PATTERN, name) for name in models)
    kinds = list(shipped)
    for index, (name, entry) in enumerate(models.items()):
        kind = kinds[index % len(kinds)]
        assert name == f"{bench.generated_prefix(kind)}-{index + 1}" and kind.startswith(bench.generated_prefix(kind))
        assert entry == shipped[kind]
        assert entry is not shipped[kind]  # a copy: changing one model never changes another
    problem_types = [entry["problem_type"] for entry in models.values()]
    assert problem_types[:2 * len(kinds)] == [shipped[k]["problem_type"] for k in kinds] * 2


def test_no_shipped_models_is_refused() -> None:
    with pytest.raises(ValueError, match="no models"):
        bench.generated_models({}, 3)


@pytest.mark.parametrize("count", [1, 10, 50])
def test_the_configuration_accepts_every_generated_size(count: int) -> None:
    context, quota = bench.scale_context(count)
    configs = load_environments(context)  # names fit every derived limit; the quota holds the models
    assert {env: len(c.models) for env, c in configs.items()} == dict.fromkeys(configs, count)
    assert quota.configured == max(quota.shipped, quota.needed)


def test_the_quota_is_raised_to_exactly_what_the_planner_needs() -> None:
    context, quota = bench.scale_context(50)
    assert quota.raised and quota.needed > quota.shipped
    too_small = bench.with_quota(context, quota.needed - 1)
    with pytest.raises(ConfigError, match=rf"account_concurrency_quota is {quota.needed - 1}; allowed: at least "
                                          rf"{quota.needed} "):
        load_environments(too_small)


def test_one_model_keeps_the_shipped_quota_and_context() -> None:
    base = project_context()
    shipped = copy.deepcopy(base)
    context, quota = bench.scale_context(1, base=base, own_accounts=True)
    assert not quota.raised
    assert base == shipped  # the base context is never changed in place
    assert context["defaults"] == shipped["defaults"]


def test_own_accounts_put_each_environment_in_its_account() -> None:
    context, _ = bench.scale_context(10, own_accounts=True)
    assert {env: c.account for env, c in load_environments(context).items()} == bench.OWN_ACCOUNTS
