"""The demo's lifecycle (steps 2-9 of `make demo`) end to end on small settings, for the lifecycle sample of cdk.json's
models (testkit/model_sample.py LIFECYCLE: MODEL, one of each problem type and each serving, inference or monitoring
override shape; how a model is trained is played by the training tests; `make demo` plays every model).

The same scenario `mlops demo` runs — moto in server mode on a loopback port, three accounts (the registry
environment dev in 111111111111, staging in 222222222222, prod in 333333333333) and, for each model of the sample
(with the shipped cdk.json: breast-cancer, wine and diabetes, one of each kind: binary, multiclass, regression),
local training and registration in the registry's account, promotion through the one gate, promotions forwarded to
the account that serves their stage and routed there to the model's deployer, results forwarded back to the
registry, Champion/Challenger traffic through the model's inference Lambda with injected endpoint faults, a drift
run that pages, an illegal skip the gate reverts, a rollback and the report folder — with fewer boosting rounds and
requests so it fits in
`make test`. Synthesis (step 1) is covered by tests/infra and skipped here.

What each model went through is read back from what the demo left — the ledger, the hops, the accounts, the
report — and compared with cdk.json, never with values written here.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlplatform.registry.deployment_ledger import ACCEPTED, RECORDED, REVERTED, ROLLBACK_REQUESTED
from mlsettings.config import load_environments
from mlsettings.naming import endpoint_name, model_package_group_name
from mlsettings.problem_types import PROBLEM_TYPES, problem_type
from mlsettings.vocabulary import Published
from testkit.model_sample import LIFECYCLE, sampled_project_context

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
STAGE_SERVERS = {"Staging": "staging", "Production": "prod"}
MOTO_DEFAULT_ACCOUNT = "123456789012"  # the credentials the demo starts with, before any AssumeRole
CONFIGS = load_environments(sampled_project_context(LIFECYCLE))
MODELS = CONFIGS["prod"].model_names  # the sample of cdk.json's models, each played by the demo


def _view(env: str, model: str) -> Any:
    return CONFIGS[env].for_model(model)


def _where_things_are(world: Any) -> dict[str, list[str]]:
    """Per resource, the accounts in which it can be described, each asked with its own credentials (and
    moto's default account with the demo's starting credentials)."""
    import boto3
    from botocore.exceptions import ClientError

    def found(operation: Any, **request: Any) -> bool:
        try:
            operation(**request)
        except ClientError:
            return False
        return True

    clients = {account.account: account.client for account in world.accounts.values()}
    default = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name=world.config.region)
    clients[MOTO_DEFAULT_ACCOUNT] = default.client
    where: dict[str, list[str]] = {}
    for account, client in sorted(clients.items()):
        sagemaker, dynamodb, ssm, s3 = (client(s) for s in ("sagemaker", "dynamodb", "ssm", "s3"))
        checks = [(f"endpoint {name}", sagemaker.describe_endpoint, {"EndpointName": name})
                  for name in world.endpoints.values()]
        checks += [(f"model package group {model.group}", sagemaker.describe_model_package_group,
                    {"ModelPackageGroupName": model.group}) for model in world.models.values()]
        checks += [(f"table {world.ledger_table}", dynamodb.describe_table, {"TableName": world.ledger_table})]
        for what, operation, request in checks:
            if found(operation, **request):
                where.setdefault(what, []).append(account)
        names = [p["Name"] for page in ssm.get_paginator("get_parameters_by_path").paginate(
            Path="/mlops/", Recursive=True) for p in page["Parameters"]]
        for name in names:
            if name.endswith("/last-result"):
                where.setdefault(f"parameter {name}", []).append(account)
        for bucket in s3.list_buckets()["Buckets"]:
            where.setdefault(f"bucket {bucket['Name']}", []).append(account)
    return where


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    """One run of the scenario for the whole module; the process environment and the handler modules the
    demo configures are put back afterwards, so tests that share this worker see what they saw before. Where
    each resource lives, each model's deployment records and each model's ledger partition are looked up while
    moto still runs (``summary["where"]``, ``summary["deployments"]``, ``summary["partitions"]``)."""
    from mlops.demo.lifecycle import DemoOptions, run_lifecycle

    saved_environ = dict(os.environ)
    saved_modules = {name: module for name, module in sys.modules.items() if name.startswith("lambdas.")}
    report_dir = tmp_path_factory.mktemp("demo-report")
    observed: dict[str, Any] = {}

    def inspect(world: Any) -> None:
        observed["where"] = _where_things_are(world)
        observed["deployments"] = {name: [(d.version, d.stage, d.outcome, d.health_check)
                                          for stage in ("Staging", "Production")
                                          for d in world.ledger(name).deployments(stage)]
                                   for name in world.models}
        observed["partitions"] = {name: [d.model_package_arn for d in world.ledger(name).decisions()]
                                  for name in world.models}

    try:
        summary = run_lifecycle(CONFIGS["prod"], CONFIGS["staging"],
                                DemoOptions(out_dir=report_dir, num_round=30, requests=80, say=lambda _: None,
                                            inspect=inspect), registry=CONFIGS["dev"])
        summary.update(observed)
        yield summary, report_dir
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        # Powertools keeps metric dimensions (default ones included) per process, shared by every Metrics
        # object; the demo's functions leave theirs (service=inference, service=drift_monitor) behind.
        from aws_lambda_powertools import Metrics

        shared = Metrics()
        shared.clear_default_dimensions()
        shared.clear_metrics()
        for name in [n for n in sys.modules if n.startswith("lambdas.")]:
            if name not in saved_modules:
                del sys.modules[name]
                # ... and from its package, or `import lambdas.x.handler` would still find the demo's copy
                parent, _, child = name.rpartition(".")
                if parent in saved_modules and hasattr(saved_modules[parent], child):
                    delattr(saved_modules[parent], child)
        sys.modules.update(saved_modules)
        for name, module in saved_modules.items():  # the demo re-imported some: packages point back too
            parent, _, child = name.rpartition(".")
            if parent in saved_modules:
                setattr(saved_modules[parent], child, module)


def _report_json(report_dir: Path, name: str) -> Any:
    return json.loads((report_dir / name).read_text(encoding="utf-8"))


def _decisions(report_dir: Path, model: str) -> list[dict[str, Any]]:
    return [d for d in _report_json(report_dir, "ledger.json") if d["model"] == model]


def test_every_lifecycle_step_succeeds(demo_run: tuple[dict[str, Any], Path]) -> None:
    summary, _ = demo_run
    failed = {number: step.get("error") for number, step in summary["steps"].items() if not step["ok"]}
    assert failed == {}
    assert sorted(int(number) for number in summary["steps"]) == list(range(2, 10))


def test_moto_server_is_stopped_and_its_endpoint_forgotten(demo_run: tuple[dict[str, Any], Path]) -> None:
    # The fixture restores os.environ only after the module; inside, run_lifecycle itself must have
    # removed the endpoint override, or later boto3 clients would talk to a stopped server.
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_the_demo_plays_every_model_it_is_given_one_of_each_kind(demo_run: tuple[dict[str, Any], Path]) -> None:
    _, report_dir = demo_run
    models = _report_json(report_dir, "models.json")
    assert list(models) == list(MODELS)
    kinds = {name: _view("prod", name).model.problem_type for name in MODELS}
    assert {name: row["problem_type"] for name, row in models.items()} == kinds
    assert sorted(set(kinds.values())) == sorted(PROBLEM_TYPES)  # the sample holds every kind


# ------------------------------------------------------------------------------------------- per model
@pytest.mark.parametrize("model", MODELS)
def test_each_model_is_trained_gated_and_promoted_through_both_stages(
        demo_run: tuple[dict[str, Any], Path], model: str) -> None:
    summary, report_dir = demo_run
    versions = summary["versions"][model]
    assert sorted(versions) == ["v1", "v2", "v3"] and len(set(versions.values())) == 3
    gate = _view("dev", model).training.quality_gate
    row = _report_json(report_dir, "models.json")[model]
    for entry in row["training"].values():  # every version passed the model's own gate, by its own metric
        assert (entry["gate"]["metric"], entry["gate"]["threshold"], entry["gate"]["passed"]) == (
            gate.metric, gate.threshold, True)
    accepted = {(d["version"], d["to_stage"]) for d in _decisions(report_dir, model) if d["outcome"] == ACCEPTED}
    v1, v2 = versions["v1"], versions["v2"]
    assert {(v1, "Staging"), (v1, "Production"), (v2, "Staging"), (v2, "Production")} <= accepted


@pytest.mark.parametrize("model", MODELS)
def test_each_model_is_deployed_and_health_checked_in_both_serving_accounts(
        demo_run: tuple[dict[str, Any], Path], model: str) -> None:
    summary, _ = demo_run
    versions = summary["versions"][model]
    results = [hop for hop in summary["hops"] if hop["event"] == "Model Deployment Result" and hop["model"] == model]
    deployed = {(hop["version"], hop["stage"]) for hop in results
                if (hop["outcome"], hop["health_check"], hop["gate"]) == ("deployed", "passed", "recorded")}
    assert {(versions["v1"], "Staging"), (versions["v1"], "Production"), (versions["v2"], "Staging"),
            (versions["v2"], "Production")} <= deployed
    assert Counter(summary["deployments"][model]) == Counter(
        (hop["version"], hop["stage"], hop["outcome"], hop["health_check"]) for hop in results)


@pytest.mark.parametrize("model", MODELS)
def test_each_model_serves_its_api_with_fallbacks_and_gets_an_ab_report(
        demo_run: tuple[dict[str, Any], Path], model: str) -> None:
    _, report_dir = demo_run
    sources = _report_json(report_dir, "models.json")[model]["api_sources"]
    assert sources.get("endpoint", 0) > 0 and sources.get("fallback_model", 0) > 0, sources
    report = _report_json(report_dir, f"{model}/ab_report.json")
    variants = report["variants"]
    assert {"Champion", "Challenger"} <= set(variants)
    versions = {variants[name]["version"] for name in ("Champion", "Challenger")}
    assert len(versions) == 2  # v1 against v2 of this model


@pytest.mark.parametrize("model", MODELS)
def test_each_models_injected_drift_raises_its_drift_ticket_and_its_fallbacks_page(
        demo_run: tuple[dict[str, Any], Path], model: str) -> None:
    # GIVEN drifted traffic and every 12th endpoint call failing (~8 % fallbacks) WHEN the model's drift run and
    # alarms are evaluated THEN its Champion's data drift opens a ticket and its FallbackRate (5 %) pages —
    # messages on the environment's shared topics that name this model's endpoint, and only those.
    _, report_dir = demo_run
    endpoint = endpoint_name(_view("prod", model))
    drift = _report_json(report_dir, f"{model}/drift_report.json")
    assert drift["endpoint"] == endpoint
    assert any(feature["drifted"] for feature in drift["variants"]["Champion"]["drift"]["features"].values())
    states = {alarm["alarm"]: alarm["state"] for alarm in _report_json(report_dir, f"{model}/alarms.json")}
    assert states[f"{endpoint}-ChampionDataDrift"] == "ALARM"
    assert states[f"{endpoint}-ChampionQualityDegraded"] == "OK"  # no ground truth in the demo: nothing to judge
    has_confidence = problem_type(_view("prod", model).model.problem_type).output.confidence is not None
    assert (f"{endpoint}-ChampionConfidenceShift" in states) == has_confidence
    pages = _report_json(report_dir, f"{model}/page.json")
    assert [(page["AlarmName"], page["NewStateValue"]) for page in pages] == [(f"{endpoint}-FallbackRate", "ALARM")]
    assert pages[0]["AlarmDescription"].startswith("[page] prod:")
    assert _report_json(report_dir, "models.json")[model]["pages"] == [f"{endpoint}-FallbackRate"]


@pytest.mark.parametrize("model", MODELS)
def test_each_models_illegal_skip_is_reverted_and_its_production_rolled_back(
        demo_run: tuple[dict[str, Any], Path], model: str) -> None:
    summary, report_dir = demo_run
    decisions = _decisions(report_dir, model)
    versions = summary["versions"][model]
    skips = [d for d in decisions if d["outcome"] == REVERTED and d["from_stage"] == "Development"
             and d["to_stage"] == "Production"]
    assert [(d["version"], d["resulting_stage"]) for d in skips] == [(versions["v3"], "Development")]
    assert [d["outcome"] for d in decisions].count(ROLLBACK_REQUESTED) == 1
    row = _report_json(report_dir, "models.json")[model]
    # after the rollback the registry's production version and the production Champion are v1 again
    assert row["production_version"] == versions["v1"]
    assert row["serving"]["Champion"].startswith(f"v{versions['v1']} ")


def test_the_ledger_keeps_each_models_history_apart(demo_run: tuple[dict[str, Any], Path]) -> None:
    # One table, one partition per model's group: each partition holds only its own group's packages, and
    # the report's ledger is exactly the partitions together.
    summary, report_dir = demo_run
    partitions = summary["partitions"]
    assert set(partitions) == set(MODELS)
    for model, arns in partitions.items():
        group = model_package_group_name(_view("dev", model))
        assert arns and all(f":model-package/{group}/" in arn for arn in arns), (model, arns)
    rows = _report_json(report_dir, "ledger.json")
    assert Counter(row["model"] for row in rows) == Counter({m: len(arns) for m, arns in partitions.items()})


def test_the_report_names_every_model_with_its_kinds_metrics(demo_run: tuple[dict[str, Any], Path]) -> None:
    _, report_dir = demo_run
    models = _report_json(report_dir, "models.json")
    for model in MODELS:
        view = _view("prod", model)
        kind = problem_type(view.model.problem_type)
        row = models[model]
        metrics = row["metrics"]  # of the version in production
        assert set(metrics) == set(kind.quality_metrics), (model, metrics)
        assert all(math.isfinite(value) for value in metrics.values())
        gate = view.training.quality_gate
        value = metrics[gate.metric]
        assert value >= gate.threshold if kind.gate_metric(gate.metric).better == "higher" else value <= gate.threshold
        assert row["drift"]["drifted"] is True and row["drift"]["drifted_features"]
    # each kind reports its own set of metrics: models of one kind the same set, of different kinds different sets
    by_kind: dict[str, set[frozenset[str]]] = {}
    for model in MODELS:
        by_kind.setdefault(_view("prod", model).model.problem_type, set()).add(frozenset(models[model]["metrics"]))
    assert all(len(sets) == 1 for sets in by_kind.values())
    assert len({next(iter(sets)) for sets in by_kind.values()}) == len(by_kind)


@pytest.mark.parametrize("model", MODELS)
def test_each_models_report_section_holds_plots_and_the_drift_html(
        demo_run: tuple[dict[str, Any], Path], model: str) -> None:
    _, report_dir = demo_run
    for plot in ("request_volume.png", "latency.png", "fallback_rate.png", "feature_drift.png"):
        assert (report_dir / model / plot).read_bytes().startswith(PNG_SIGNATURE), plot
    html = (report_dir / model / "drift_report_Champion.html").read_text(encoding="utf-8")
    assert "<html" in html.lower()


# ------------------------------------------------------------------------------------------ three accounts
def test_the_demo_plays_three_accounts(demo_run: tuple[dict[str, Any], Path]) -> None:
    summary, _ = demo_run
    assert summary["accounts"] == ACCOUNTS


def test_each_endpoint_and_the_registry_live_only_in_their_own_account(
        demo_run: tuple[dict[str, Any], Path]) -> None:
    # Described from every account's credentials: each is found in exactly one.
    where = demo_run[0]["where"]
    assert where["table mlops-demo-ledger"] == [ACCOUNTS["dev"]]  # one ledger for every model
    for model in MODELS:
        for env, stage in (("staging", "Staging"), ("prod", "Production")):
            assert where[f"endpoint {endpoint_name(_view(env, model))}"] == [ACCOUNTS[env]]
            # Each model's deployer remembers its last result in its own account (the registry records it).
            parameter = f"{Published.deployer_prefix(env, model)}/{stage}/last-result"
            assert where[f"parameter {parameter}"] == [ACCOUNTS[env]]
        assert where[f"model package group {model_package_group_name(_view('dev', model))}"] == [ACCOUNTS["dev"]]


def test_each_environments_buckets_are_in_its_account_and_nothing_in_motos_default(
        demo_run: tuple[dict[str, Any], Path]) -> None:
    # The buckets are the environment's, shared by its models (each model under its own prefixes): three per
    # environment, however many models.
    where = demo_run[0]["where"]
    buckets = {what.removeprefix("bucket "): accounts for what, accounts in where.items()
               if what.startswith("bucket ")}
    for env, account in ACCOUNTS.items():
        for purpose in ("data", "artifacts", "capture"):
            assert buckets.pop(f"mlops-{env}-{purpose}") == [account]
    assert buckets == {}  # the demo made no other bucket anywhere
    assert [what for what, accounts in where.items() if MOTO_DEFAULT_ACCOUNT in accounts] == []


def test_every_accepted_promotion_reached_exactly_its_stages_account(
        demo_run: tuple[dict[str, Any], Path]) -> None:
    # GIVEN every promotion that arrived on a consumer account's bus (the demo observes each bus, whatever
    # the stage) THEN each came from the registry's account, into the account that serves its stage, once
    # per accepted promotion and rollback in that model's ledger.
    summary, report_dir = demo_run
    arrived = [hop for hop in summary["hops"] if hop["event"] == "Model Promotion Accepted"]
    assert {hop["model"] for hop in arrived} == set(MODELS)
    for hop in arrived:
        assert (hop["from"], hop["to"], hop["to_environment"]) == (
            ACCOUNTS["dev"], ACCOUNTS[STAGE_SERVERS[hop["stage"]]], STAGE_SERVERS[hop["stage"]]), hop
    decisions = _report_json(report_dir, "ledger.json")
    sent = Counter((d["model"], d["version"], d["to_stage"]) for d in decisions
                   if d["outcome"] in (ACCEPTED, ROLLBACK_REQUESTED))
    assert Counter((hop["model"], hop["version"], hop["stage"]) for hop in arrived) == sent
    assert _report_json(report_dir, "hops.json") == summary["hops"]


def test_deployment_results_came_back_from_the_serving_accounts_and_were_recorded(
        demo_run: tuple[dict[str, Any], Path]) -> None:
    summary, report_dir = demo_run
    results = [hop for hop in summary["hops"] if hop["event"] == "Model Deployment Result"]
    assert {hop["from"] for hop in results} == {ACCOUNTS["staging"], ACCOUNTS["prod"]}
    for hop in results:
        server = STAGE_SERVERS[hop["stage"]]
        assert (hop["from"], hop["from_environment"], hop["to"]) == (ACCOUNTS[server], server, ACCOUNTS["dev"]), hop
        assert (hop["outcome"], hop["health_check"], hop["gate"]) == ("deployed", "passed", "recorded"), hop
    recorded = {(d["model"], d["version"], d["to_stage"]) for d in _report_json(report_dir, "ledger.json")
                if d["outcome"] == RECORDED}
    assert {(hop["model"], hop["version"], hop["stage"]) for hop in results} <= recorded
    # one result per promotion that reached a consumer
    assert len(results) == len([hop for hop in summary["hops"] if hop["event"] == "Model Promotion Accepted"])


def test_registry_commands_refuse_credentials_for_a_consumer_account(demo_run: tuple[dict[str, Any], Path]) -> None:
    # `mlops status --env prod` acts on prod's registry environment (dev): prod's credentials are refused.
    check = demo_run[0]["account_check"]
    assert (check["credentials_account"], check["exit_code"]) == (ACCOUNTS["prod"], 2)
    assert ACCOUNTS["prod"] in check["message"] and f"is account {ACCOUNTS['dev']}" in check["message"]
