"""The demo's lifecycle (steps 2-9 of `make demo`) end to end on small settings.

The same scenario `mlops demo` runs — moto in server mode on a loopback port, three accounts (the registry
environment dev in 111111111111, staging in 222222222222, prod in 333333333333), local training and
registration in the registry's account, promotion through the gate, promotions forwarded to the account that
serves their stage, the deployer's tasks there, results forwarded back to the registry, Champion/Challenger
traffic through the inference Lambda with injected endpoint faults, a drift run that pages, an illegal skip the
gate reverts, a rollback and the report folder — with fewer boosting rounds and requests so it fits in
`make test`. Synthesis (step 1) is covered by tests/infra and skipped here.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlplatform.registry.deployment_ledger import ACCEPTED, RECORDED, REVERTED, ROLLBACK_REQUESTED
from mlsettings.config import load_environments, project_context

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
STAGE_SERVERS = {"Staging": "staging", "Production": "prod"}
MOTO_DEFAULT_ACCOUNT = "123456789012"  # the credentials the demo starts with, before any AssumeRole


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
    group = world.registry.local.model_package_group
    where: dict[str, list[str]] = {}
    for account, client in sorted(clients.items()):
        sagemaker, dynamodb, ssm, s3 = (client(s) for s in ("sagemaker", "dynamodb", "ssm", "s3"))
        checks = [(f"endpoint {name}", sagemaker.describe_endpoint, {"EndpointName": name})
                  for name in world.endpoints.values()]
        checks += [(f"table {world.ledger_table}", dynamodb.describe_table, {"TableName": world.ledger_table}),
                   (f"model package group {group}", sagemaker.describe_model_package_group,
                    {"ModelPackageGroupName": group})]
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
    each resource lives and the ledger's deployment records are looked up while moto still runs
    (``summary["where"]``, ``summary["deployments"]``)."""
    from mlops.demo.lifecycle import DemoOptions, run_lifecycle

    saved_environ = dict(os.environ)
    saved_modules = {name: module for name, module in sys.modules.items() if name.startswith("lambdas.")}
    report_dir = tmp_path_factory.mktemp("demo-report")
    configs = load_environments(project_context())
    observed: dict[str, Any] = {}

    def inspect(world: Any) -> None:
        observed["where"] = _where_things_are(world)
        observed["deployments"] = [(d.version, d.stage, d.outcome, d.health_check)
                                   for stage in ("Staging", "Production") for d in world.ledger().deployments(stage)]

    try:
        summary = run_lifecycle(configs["prod"], configs["staging"],
                                DemoOptions(out_dir=report_dir, num_round=30, requests=80, say=lambda _: None,
                                            inspect=inspect), registry=configs["dev"])
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


def test_every_lifecycle_step_succeeds(demo_run: tuple[dict[str, Any], Path]) -> None:
    summary, _ = demo_run
    failed = {number: step.get("error") for number, step in summary["steps"].items() if not step["ok"]}
    assert failed == {}
    assert sorted(int(number) for number in summary["steps"]) == list(range(2, 10))


def test_moto_server_is_stopped_and_its_endpoint_forgotten(demo_run: tuple[dict[str, Any], Path]) -> None:
    # The fixture restores os.environ only after the module; inside, run_lifecycle itself must have
    # removed the endpoint override, or later boto3 clients would talk to a stopped server.
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_ledger_shows_the_promotions_the_refused_skip_and_the_rollback(
        demo_run: tuple[dict[str, Any], Path]) -> None:
    _, report_dir = demo_run
    decisions = _report_json(report_dir, "ledger.json")
    accepted = {(d["version"], d["to_stage"]) for d in decisions if d["outcome"] == ACCEPTED}
    assert {(1, "Staging"), (1, "Production"), (2, "Staging")} <= accepted
    skips = [d for d in decisions if d["outcome"] == REVERTED and d["from_stage"] == "Development"
             and d["to_stage"] == "Production"]
    assert len(skips) == 1
    assert skips[0]["resulting_stage"] == "Development"
    assert [d["outcome"] for d in decisions].count(ROLLBACK_REQUESTED) == 1


def test_injected_drift_raises_the_champions_drift_ticket(demo_run: tuple[dict[str, Any], Path]) -> None:
    _, report_dir = demo_run
    drift = _report_json(report_dir, "drift_report.json")
    champion = drift["variants"]["Champion"]["drift"]["features"]
    assert any(feature["drifted"] for feature in champion.values())
    states = {alarm["alarm"]: alarm["state"] for alarm in _report_json(report_dir, "alarms.json")}
    assert states["prod-ChampionDataDrift"] == "ALARM"
    assert states["prod-ChampionQualityDegraded"] == "OK"  # no ground truth in the demo: nothing to judge


def test_on_call_is_paged_by_the_fallback_rate_the_injected_faults_cause(
        demo_run: tuple[dict[str, Any], Path]) -> None:
    # GIVEN every 12th endpoint call fails (~8 % fallbacks) WHEN the FallbackRate alarm (5 %, severity page)
    # is evaluated THEN its message reaches the queue subscribed to the page topic, and only it does.
    _, report_dir = demo_run
    pages = _report_json(report_dir, "page.json")
    assert [(page["AlarmName"], page["NewStateValue"]) for page in pages] == [("prod-FallbackRate", "ALARM")]
    assert pages[0]["AlarmDescription"].startswith("[page] prod:")


def test_ab_report_compares_champion_and_challenger(demo_run: tuple[dict[str, Any], Path]) -> None:
    _, report_dir = demo_run
    report = _report_json(report_dir, "ab_report.json")
    assert {"Champion", "Challenger"} <= set(json.dumps(report).replace('"', " ").split())


def test_report_folder_holds_plots_and_the_drift_html(demo_run: tuple[dict[str, Any], Path]) -> None:
    _, report_dir = demo_run
    for plot in ("request_volume.png", "latency.png", "fallback_rate.png", "feature_drift.png"):
        assert (report_dir / plot).read_bytes().startswith(PNG_SIGNATURE), plot
    html = (report_dir / "drift_report_Champion.html").read_text(encoding="utf-8")
    assert "<html" in html.lower()


# ------------------------------------------------------------------------------------------ three accounts
def test_the_demo_plays_three_accounts(demo_run: tuple[dict[str, Any], Path]) -> None:
    summary, _ = demo_run
    assert summary["accounts"] == ACCOUNTS


def test_each_endpoint_and_the_registry_live_only_in_their_own_account(
        demo_run: tuple[dict[str, Any], Path]) -> None:
    # Described from every account's credentials: each is found in exactly one.
    where = demo_run[0]["where"]
    assert where["endpoint mlops-staging"] == [ACCOUNTS["staging"]]
    assert where["endpoint mlops-prod"] == [ACCOUNTS["prod"]]
    assert where["table mlops-demo-ledger"] == [ACCOUNTS["dev"]]
    assert where["model package group mlops-dev-models"] == [ACCOUNTS["dev"]]
    # Each deployer remembers its last result in its own account (the registry records it in the ledger).
    assert where["parameter /mlops/staging/deployer/Staging/last-result"] == [ACCOUNTS["staging"]]
    assert where["parameter /mlops/prod/deployer/Production/last-result"] == [ACCOUNTS["prod"]]


def test_each_environments_buckets_are_in_its_account_and_nothing_in_motos_default(
        demo_run: tuple[dict[str, Any], Path]) -> None:
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
    # per accepted promotion and rollback in the ledger.
    summary, report_dir = demo_run
    arrived = [hop for hop in summary["hops"] if hop["event"] == "Model Promotion Accepted"]
    assert arrived
    for hop in arrived:
        assert (hop["from"], hop["to"], hop["to_environment"]) == (
            ACCOUNTS["dev"], ACCOUNTS[STAGE_SERVERS[hop["stage"]]], STAGE_SERVERS[hop["stage"]]), hop
    decisions = _report_json(report_dir, "ledger.json")
    sent = Counter((d["version"], d["to_stage"]) for d in decisions if d["outcome"] in (ACCEPTED, ROLLBACK_REQUESTED))
    assert Counter((hop["version"], hop["stage"]) for hop in arrived) == sent
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
    # ... and each is a deployment record in the registry's ledger (written by the gate's function only)
    recorded = Counter(summary["deployments"])
    assert Counter((hop["version"], hop["stage"], hop["outcome"], hop["health_check"]) for hop in results) == recorded
    assert {(d["version"], d["to_stage"]) for d in _report_json(report_dir, "ledger.json")
            if d["outcome"] == RECORDED} >= {(1, "Staging"), (1, "Production"), (2, "Staging"), (2, "Production")}
    # one result per promotion that reached a consumer
    assert len(results) == len([hop for hop in summary["hops"] if hop["event"] == "Model Promotion Accepted"])


def test_registry_commands_refuse_credentials_for_a_consumer_account(demo_run: tuple[dict[str, Any], Path]) -> None:
    # `mlops status --env prod` acts on prod's registry environment (dev): prod's credentials are refused.
    check = demo_run[0]["account_check"]
    assert (check["credentials_account"], check["exit_code"]) == (ACCOUNTS["prod"], 2)
    assert ACCOUNTS["prod"] in check["message"] and f"is account {ACCOUNTS['dev']}" in check["message"]
