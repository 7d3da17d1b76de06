"""Config rules: every wrong value fails with the key path, the value and what is allowed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mlsettings.config import (
    ConfigError,
    consumers_of,
    load_environments,
    other_account,
    parse_environment,
    project_context,
    render_reference,
    select_environments,
    to_plain,
)

REPO = Path(__file__).resolve().parents[2]


def _context_with(env: str, patch: dict[str, Any]) -> dict[str, Any]:
    context = copy.deepcopy(project_context())

    def merge(target: dict[str, Any], update: dict[str, Any]) -> None:
        for key, value in update.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            else:
                target[key] = value

    merge(context["environments"][env], patch)
    return context


def test_the_shipped_cdk_json_is_valid() -> None:
    configs = load_environments(project_context())
    assert list(configs) == ["dev", "staging", "prod"]
    assert configs["prod"].serving.champion.min_instances >= 2
    assert configs["dev"].lambda_.architecture == "arm64"


@pytest.mark.parametrize(("env", "patch", "message"), [
    ("prod", {"serving": {"champion": {"min_instances": 1}}},
     "environments.prod.serving.champion.min_instances is 1; allowed: at least 2 in a production environment"),
    ("prod", {"serving": {"challenger": {"min_instances": 1}}},
     "environments.prod.serving.challenger.min_instances is 1; allowed: at least 2"),
    ("staging", {"serving": {"deployment": {"canary_percent": 60}}},
     "environments.staging.serving.deployment.canary_percent is 60; allowed: a number from 1 to 50"),
    ("dev", {"serving": {"sla": {"p99_latency_ms": 0}}},
     "environments.dev.serving.sla.p99_latency_ms is 0; allowed: a positive number"),
    ("dev", {"serving": {"sla": {"p99_latency_ms": "fast"}}},
     "environments.dev.serving.sla.p99_latency_ms is 'fast'; allowed: a number"),
    ("dev", {"serving": {"sla": {"latency": 10}}},
     "environments.dev.serving.sla has unknown keys ['latency']"),
    ("staging", {"monitoring": {"alarms": {"idle_endpoint_days": 8}}},
     "environments.staging.monitoring.alarms.idle_endpoint_days is 8; allowed: a number from 1 to 7"),
    ("staging", {"monitoring": {"alarms": {"idle_endpoint_days": 0}}},
     "environments.staging.monitoring.alarms.idle_endpoint_days is 0; allowed: a number from 1 to 7"),
    ("dev", {"delivery": {"github_repository": "just-a-name"}},
     "environments.dev.delivery.github_repository is 'just-a-name'; allowed: 'owner/name' of a GitHub repository"),
    ("dev", {"delivery": {"bootstrap_qualifier": "much-too-long"}},
     "environments.dev.delivery.bootstrap_qualifier is 'much-too-long'; allowed: the bootstrap template's "
     "Qualifier pattern"),
    ("dev", {"colour": "blue"}, "environments.dev has unknown keys ['colour']"),
    ("dev", {"training": {"max_run_seconds": 7200, "max_wait_seconds": 3600}},
     "environments.dev.training.max_wait_seconds is 3600; allowed: more than training.max_run_seconds (7200)"),
    # Rules AWS states in prose (tests/api_rules/prose.py cites each): negative controls.
    ("dev", {"training": {"max_run_seconds": 3600, "max_wait_seconds": 3600}},
     "environments.dev.training.max_wait_seconds is 3600; allowed: more than training.max_run_seconds (3600)"),
    ("dev", {"training": {"checkpointing": False, "max_run_seconds": 1800, "max_wait_seconds": 7200}},
     "environments.dev.training.max_wait_seconds is 7200; allowed: at most 3600 when use_spot is true and "
     "checkpointing is false"),
    ("dev", {"training": {"volume_size_gb": 200}},
     "environments.dev.training.volume_size_gb is 200; allowed: at most 50 while training.instance_type "
     "(ml.g5.xlarge) has local NVMe storage"),
    ("staging", {"serving": {"deployment": {"strategy": "LINEAR", "canary_percent": 5}}},
     "environments.staging.serving.deployment.canary_percent is 5; allowed: 10-50 with strategy LINEAR"),
    ("staging", {"serving": {"deployment": {"strategy": "LINEAR", "canary_percent": 10, "wait_minutes": 60}}},
     "environments.staging.serving.deployment.wait_minutes is 60; allowed: bake and termination waits that fit"),
    ("staging", {"serving": {"challenger": {"instance_type": "ml.inf1.xlarge"}}},
     "environments.staging.serving.challenger.instance_type is ml.inf1.xlarge; allowed: a type other than ml.inf1 "
     "with serving.deployment.strategy CANARY"),
    ("dev", {"training": {"instance_type": "g5.xlarge"}},
     "environments.dev.training.instance_type is 'g5.xlarge'; allowed: a SageMaker training instance type"),
    # What AWS would refuse must fail synth: instance types per purpose from botocore's SageMaker model.
    ("dev", {"training": {"instance_type": "ml.m5.huge"}},
     "environments.dev.training.instance_type is 'ml.m5.huge'; allowed: a SageMaker training instance type "
     "(botocore's TrainingInstanceType"),
    ("dev", {"serving": {"champion": {"instance_type": "ml.banana.split"}}},
     "environments.dev.serving.champion.instance_type is 'ml.banana.split'; allowed: a SageMaker endpoint"),
    ("dev", {"serving": {"batch_instance_type": "ml.t2.medium"}},
     "environments.dev.serving.batch_instance_type is 'ml.t2.medium'; allowed: a SageMaker batch transform"),
    ("dev", {"training": {"processing_instance_type": "ml.p5e.48xlargeX"}},
     "allowed: a SageMaker processing instance type"),
    ("dev", {"region": "xx-mars-9"}, "environments.dev.region is 'xx-mars-9'; allowed: an AWS region where "
     "SageMaker is available"),
    ("dev", {"monitoring": {"drift": {"schedule": "cron(0 6 * * *)"}}}, "(got 5 fields)"),
    ("dev", {"monitoring": {"drift": {"schedule": "cron(every day)"}}}, "(got 2 fields)"),
    ("dev", {"monitoring": {"drift": {"schedule": "cron(0 6 * * 1 *)"}}},
     "exactly one of day-of-month and day-of-week must be '?'"),
    ("dev", {"monitoring": {"drift": {"schedule": "cron(0 25 * * ? *)"}}}, "hours '25' is out of range 0-23"),
    ("dev", {"serving": {"health_check_schedule": "rate(1 days)"}}, "(singular unit needed for 1)"),
    ("dev", {"serving": {"health_check_schedule": "rate(0 minutes)"}}, "(the rate is 0)"),
    ("dev", {"serving": {"health_check_schedule": "rate(2 day)"}}, "(plural unit needed for 2)"),
    ("dev", {"serving": {"sla": {"p99_latency_ms": float("inf")}}},
     "environments.dev.serving.sla.p99_latency_ms is inf; allowed: a number"),
    ("dev", {"serving": {"sla": {"peak_requests_per_second": float("nan")}}},
     "environments.dev.serving.sla.peak_requests_per_second is nan; allowed: a number"),
    ("dev", {"training": {"schema_file": "pipelines/schemas/breast_cancer.json"}},
     "environments.dev.training.schema_file is a model's setting: a model's schema is models.<name>.schema_file"),
    ("dev", {"training": {"quality_gate": {"metric": "accuracy"}}},
     "models.breast-cancer.environments.dev.training.quality_gate.metric is 'accuracy', a multiclass metric; "
     "model 'breast-cancer' is binary: allowed: auc, f1, precision, recall"),
    ("dev", {"training": {"quality_gate": {"metric": "accuracyy"}}},
     "environments.dev.training.quality_gate.metric is 'accuracyy'; allowed: one of ['auc', 'f1'"),
    ("dev", {"training": {"quality_gate": {"threshold": 1.5}}},
     "environments.dev.training.quality_gate.threshold is 1.5; allowed: a threshold for auc lies in [0, 1]"),
    ("dev", {"training": {"retrain_schedule": "every day"}},
     "environments.dev.training.retrain_schedule is 'every day'; allowed: an EventBridge schedule"),
    ("dev", {"account": "12345"}, "environments.dev.account is '12345'; allowed: a 12-digit AWS account id"),
    ("dev", {"region": "moon-1"}, "environments.dev.region is 'moon-1'; allowed: an AWS region"),
    ("dev", {"region": "eu-west-1x"}, "environments.dev.region is 'eu-west-1x'; allowed: an AWS region"),
    ("dev", {"lambda": {"architecture": "sparc"}},
     "environments.dev.lambda.architecture is 'sparc'; allowed: one of 'arm64', 'x86_64'"),
    ("dev", {"lambda": {"log_retention_days": 10}},
     "environments.dev.lambda.log_retention_days is 10; allowed: one of [1, 3, 5"),
    ("dev", {"use_spot": True}, "environments.dev has unknown keys ['use_spot']"),
    ("dev", {"serving": {"capture_sampling_percent": 0}},
     "environments.dev.serving.capture_sampling_percent is 0; allowed: a number from 1 to 100"),
    ("dev", {"serving": {"challenger_weight_percent": 80}},
     "environments.dev.serving.challenger_weight_percent is 80; allowed: a number from 1 to 50"),
    ("dev", {"serving": {"champion": {"min_instances": 3, "max_instances": 2}}},
     "environments.dev.serving.champion.max_instances is 2; allowed: at least min_instances (3)"),
    ("dev", {"monitoring": {"alarms": {"page": {"emails": ["oncall"]}}}},
     "environments.dev.monitoring.alarms.page.emails is ['oncall']; allowed: a list of an e-mail address"),
    ("dev", {"monitoring": {"alarms": {"page": {"https": ["http://pager.example/hook"]}}}},
     "allowed: a list of an https:// URL"),
    ("dev", {"monitoring": {"drift": {"engine": "spark"}}},
     "environments.dev.monitoring.drift.engine is 'spark'; allowed: one of ['lambda', 'partials', 'processing']"),
    ("dev", {"registry": {"cross_account_readers": ["111122223333"]}},
     "environments.dev.registry.cross_account_readers was removed; the registry's resource policies now name"),
    ("staging", {"registry": {"location": "per_environment"}},
     "environments.staging.registry.location was removed; every environment now deploys from one registry"),
    ("dev", {"account": "1234"}, "environments.dev.account is '1234'; allowed: a 12-digit AWS account id"),
    ("prod", {"storage": {"retain_data": False}},
     "environments.prod.storage.retain_data is false; allowed: true in a production environment"),
    ("dev", {"training": {"use_spot": "yes"}},
     "environments.dev.training.use_spot is 'yes'; allowed: true or false"),
    ("dev", {"training": {"num_round": 2.5}},
     "environments.dev.training.num_round is 2.5; allowed: an integer"),
    ("dev", {"serving": {"served_stages": ["Development"]}},
     "environments.dev.serving.served_stages is ['Development']; allowed: a list of one of ['Staging', "),
    ("dev", {"serving": {"served_stages": ["Staging", "Staging"]}},
     "environments.dev.serving.served_stages is ['Staging', 'Staging']; allowed: a list of distinct stages"),
    ("staging", {"serving": {"served_stages": ["Staging", "Production"]}},
     "environments.staging.serving.served_stages is ['Staging', 'Production']; allowed: at most one stage (an "
     "endpoint that serves both would put a version approved for Staging in front of production users"),
    ("prod", {"serving": {"served_stages": ["Staging"]}},
     "environments.prod.serving.served_stages is ['Staging']; allowed: [] or ['Production'] in a production"),
    ("staging", {"training": {"retrain_schedule": "rate(1 day)"}},
     "environments.staging.training sets retraining triggers; allowed: none outside the registry environment"),
])
def test_a_bad_value_names_key_value_and_allowed(env: str, patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_environments(_context_with(env, patch))
    assert message in str(caught.value)


def _topology(served: dict[str, list[str]], **patches: dict[str, Any]) -> dict[str, Any]:
    """The default context with each environment in ``served`` deploying the stages given."""
    context = copy.deepcopy(project_context())
    for env, stages in served.items():
        context["environments"][env].setdefault("serving", {})["served_stages"] = stages
    for env, patch in patches.items():
        context["environments"][env].update(patch)
    return context


def test_the_default_is_one_registry_and_one_environment_per_stage() -> None:
    configs = load_environments(project_context())
    assert [(configs[env].is_registry, configs[env].serving.served_stages) for env in ("dev", "staging", "prod")] == [
        (True, ()), (False, ("Staging",)), (False, ("Production",))]
    assert {c.registry.registry_environment for c in configs.values()} == {"dev"}


THREE_ACCOUNTS = {"dev": {"account": "111111111111"}, "staging": {"account": "222222222222"},
                  "prod": {"account": "333333333333"}}


def test_each_environment_may_be_its_own_account() -> None:
    configs = load_environments(_topology({}, **THREE_ACCOUNTS))
    assert [configs[env].account for env in ("dev", "staging", "prod")] == [
        "111111111111", "222222222222", "333333333333"]
    assert [c.name for c in consumers_of(configs, configs["dev"])] == ["prod", "staging"]
    assert other_account(configs["prod"], configs["dev"]) and not other_account(configs["dev"], configs["dev"])


@pytest.mark.parametrize(("served", "patches", "message"), [
    ({"prod": ["Staging"], "staging": ["Staging"]}, {"prod": {"production": False}},
     "serving.served_stages has 'Staging', which environment "),
    ({"prod": []}, {},
     "no environment's serving.served_stages has 'Production' for the registry in 'dev'"),
    ({}, {"prod": {"account": "444455556666"}},
     "environments.prod.account is 444455556666 and environments.dev.account is None; allowed: both account ids"),
    ({}, {"prod": {"region": "us-east-1"}},
     "environments.prod.region is us-east-1 but its registry environment 'dev' is in eu-west-1; allowed: "
     "eu-west-1"),
    ({}, {"staging": {"registry": {"registry_environment": "prod"}}},
     "environments.staging.registry.registry_environment is 'prod', whose own registry_environment is 'dev'"),
    ({}, {"staging": {"registry": {"registry_environment": "ops"}}},
     "environments.staging.registry.registry_environment is 'ops'; allowed: one of ['dev', 'prod', 'staging']"),
    ({}, {"dev": {"storage": {"retain_data": False}}},
     "environments.dev.storage.retain_data is false; allowed: true, since production environment 'prod' deploys"),
    ({}, {**THREE_ACCOUNTS, "prod": {"account": "333333333333",
                                     "monitoring": {"drift": {"retrain_on_sustained_drift": True}}}},
     "environments.prod.monitoring.drift.retrain_on_sustained_drift is true; allowed: false when 'prod' is in "
     "another account"),
    ({}, {"prod": {"registry": {"protected_production_versions": 4}}},
     "environments.prod.registry.protected_production_versions is 4; allowed: the registry environment's value"),
])
def test_registry_rules(served: dict[str, list[str]], patches: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_environments(_topology(served, **patches))
    assert message in str(caught.value)


def test_environment_names_are_checked() -> None:
    context = copy.deepcopy(project_context())
    context["environments"]["Prod_EU"] = {}
    with pytest.raises(ConfigError, match="'Prod_EU' is not a valid name"):
        load_environments(context)


def test_defaults_merge_under_each_environment() -> None:
    config = parse_environment("x", {"serving": {"sla": {"p99_latency_ms": 90}}},
                               {"serving": {"sla": {"peak_requests_per_second": 7}}, "region": "us-east-1"})
    assert config.serving.sla.p99_latency_ms == 90
    assert config.serving.sla.peak_requests_per_second == 7
    assert config.region == "us-east-1"
    assert config.serving.sla.availability_percent == 99.9  # dataclass default


def test_select_one_environment_or_refuse_an_unknown_one() -> None:
    assert [c.name for c in select_environments(project_context(), "prod")] == ["prod"]
    with pytest.raises(ConfigError, match="context env is 'qa'; allowed: one of"):
        select_environments(project_context(), "qa")


def test_plain_form_round_trips() -> None:
    config = load_environments(project_context())["staging"]
    plain = to_plain(config)
    assert plain["lambda"]["architecture"] == "arm64"
    json.dumps(plain)
    name = plain.pop("name")
    del plain["training"]["schema_file"]  # a model's, set by its entry in context.models
    assert parse_environment(name, plain, models=project_context()["models"]) == config


def test_configuration_reference_is_current() -> None:
    """docs/CONFIGURATION.md is generated (`mlops config reference > docs/CONFIGURATION.md`)."""
    assert (REPO / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8") == render_reference()


def test_vpc_settings_go_together_and_are_checked() -> None:
    with pytest.raises(ConfigError, match="subnet_ids and security_group_ids go together"):
        load_environments(_context_with("dev", {"network": {"subnet_ids": ["subnet-0abc12345"]}}))
    with pytest.raises(ConfigError, match=r"network.subnet_ids is \['subnet-x'\]; allowed: a list of a subnet id"):
        load_environments(_context_with("dev", {"network": {"subnet_ids": ["subnet-x"]}}))
    configs = load_environments(_context_with("dev", {"network": {"subnet_ids": ["subnet-0abc12345"],
                                                                   "security_group_ids": ["sg-0abc12345"]}}))
    assert configs["dev"].network.subnet_ids == ("subnet-0abc12345",)


@pytest.mark.parametrize("schedule", ["cron(0 6 * * ? *)", "cron(0/15 * ? * MON-FRI *)", "cron(0 18 L * ? *)",
                                      "cron(0 10 ? * 6#3 *)", "cron(15 10 ? * 6L 2026-2030)", "rate(1 day)",
                                      "rate(5 minutes)", "cron(0 8 1,15 JAN-MAR ? *)"])
def test_schedules_eventbridge_accepts_pass(schedule: str) -> None:
    configs = load_environments(_context_with("dev", {"monitoring": {"drift": {"schedule": schedule}}}))
    assert configs["dev"].monitoring.drift.schedule == schedule


def test_infinity_in_cdk_json_is_refused_not_printed_as_invalid_json() -> None:
    # json.loads accepts the token Infinity; the parser must refuse it before `config show --json` sees it.
    context = _context_with("dev", {"serving": {"sla": {"p99_latency_ms": json.loads("Infinity")}}})
    with pytest.raises(ConfigError, match="p99_latency_ms is inf"):
        load_environments(context)


def test_the_drift_defaults_are_one_set() -> None:
    """The configuration's drift defaults and the engine's DriftThresholds defaults are the same numbers (issue #23:
    0.1/0.1 against 0.2/0.15 for js/ks)."""
    from mlcore.drift.statistics import DriftThresholds
    from mlsettings.config import drift_thresholds

    defaults = parse_environment("defaults", {}, {})
    assert DriftThresholds.from_dict(drift_thresholds(defaults)) == DriftThresholds()
