"""The demo's lifecycle (steps 2-9 of `make demo`) end to end on small settings.

The same scenario `mlops demo` runs — moto in server mode on a loopback port, local training and
registration, promotion through the gate, the deployer's tasks, Champion/Challenger traffic through the
inference Lambda with injected endpoint faults, a drift run that pages, an illegal skip the gate reverts,
a rollback and the report folder — with fewer boosting rounds and requests so it fits in `make test`.
Synthesis (step 1) is covered by tests/infra and skipped here.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlplatform.registry.deployment_ledger import ACCEPTED, REVERTED, ROLLBACK_REQUESTED
from stacks.config import load_environments, project_context

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    """One run of the scenario for the whole module; the process environment and the handler modules the
    demo configures are put back afterwards, so tests that share this worker see what they saw before."""
    from mlops.demo.lifecycle import DemoOptions, run_lifecycle

    saved_environ = dict(os.environ)
    saved_modules = {name: module for name, module in sys.modules.items() if name.startswith("lambdas.")}
    report_dir = tmp_path_factory.mktemp("demo-report")
    configs = load_environments(project_context())
    try:
        summary = run_lifecycle(configs["prod"], configs["staging"],
                                DemoOptions(out_dir=report_dir, num_round=30, requests=80, say=lambda _: None))
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
