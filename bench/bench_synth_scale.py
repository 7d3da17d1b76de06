"""Synthesis at scale (issue 24): the whole app — every environment's Storage, Alerting and Registry stacks, one
stack per model and the Overview — synthesized in-process with 1, 10 and 50 models, and the infra test fixtures'
synthesis with cdk.json's models against 10 and 50: the fixtures synthesize the sample of the models
(testkit/model_sample.py), so what they cost must not grow with N.

    .venv/bin/python -m bench.bench_synth_scale [--sizes 1,10,50] [--fixture-sizes N,10,50] [--gates]

The models are copies of cdk.json's models (overrides included) under generated names, cycling the shipped kinds
(``scale_context``). Each measurement runs in a fresh interpreter (this module with ``--child``), so no memory,
import cache or jsii kernel carries over from one size to the next; the child synthesizes as the infra tests do
(``cdk.App`` with ``aws:cdk:bundling-stacks: []``: no Lambda bundle is built, ``build_app(with_nag=False)``) and
prints one JSON line. When the Lambda concurrency quota of cdk.json cannot hold N models, the generated context
raises it to what the configuration's planner needs (``needed_quota``), and the output says so.

Peak memory is read at the end of the child from /proc: the Python process's and its jsii node process's high
water marks (VmHWM), reported separately (their sum bounds the pair's peak). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlsettings.config import (
    LAMBDA_UNRESERVED_MINIMUM,
    load_environments,
    planned_reservation,
    project_context,
)
from testkit.model_sample import sampled_context

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1, 10, 50)
FIXTURE_SIZES = (len(project_context()["models"]), 10, 50)  # cdk.json's own models, then generated
# Each environment in its own account, as the infra tests' three-account fixture (tests/infra/conftest.py).
OWN_ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
SHARED_STACKS = ("Storage", "Alerting", "Registry", "Overview")
# The quota the planner is asked first when it computes what N models need (any quota it would accept).
_ROOMY_QUOTA = 1_000_000  # the largest value the setting accepts


# ---------------------------------------------------------------------------------------------- the contexts
@dataclass(frozen=True)
class QuotaPlan:
    """Lambda's 'Concurrent executions' quota: cdk.json's, what the planner needs for the generated models (the
    largest account and region group), and what the generated context configures."""

    shipped: int
    needed: int
    configured: int

    @property
    def raised(self) -> bool:
        return self.configured > self.shipped


def generated_models(shipped: Mapping[str, Any], count: int) -> dict[str, Any]:
    """``count`` copies of the ``shipped`` models (their settings and overrides), cycling through them in order,
    named ``<shipped name, at most 13 characters>-<index>`` (1-based): breast-cancer-1, wine-2, diabetes-3 ... (a
    model name has at most 18 characters in the shipped environments: mlsettings.naming)."""
    kinds = list(shipped)
    if not kinds:
        raise ValueError("cdk.json declares no models to copy")
    return {f"{generated_prefix(kinds[i % len(kinds)])}-{i + 1}": copy.deepcopy(shipped[kinds[i % len(kinds)]])
            for i in range(count)}


def generated_prefix(name: str) -> str:
    """A shipped model's name cut to 13 characters (and no trailing '-'), so '-<index up to 999>' still fits."""
    return name[:13].rstrip("-")


def with_quota(context: Mapping[str, Any], quota: int) -> dict[str, Any]:
    """``context`` with every ``lambda.account_concurrency_quota`` (defaults and any environment's) at ``quota``."""
    changed = copy.deepcopy(dict(context))
    changed.setdefault("defaults", {}).setdefault("lambda", {})["account_concurrency_quota"] = quota
    for environment in changed.get("environments", {}).values():
        if "account_concurrency_quota" in environment.get("lambda", {}):
            environment["lambda"]["account_concurrency_quota"] = quota
    return changed


def needed_quota(context: Mapping[str, Any]) -> int:
    """The quota the largest account and region group of ``context`` needs: what its functions reserve plus
    max(what Lambda keeps unreserved, the inference functions' SLA demand), as check_concurrency_quota sums it."""
    groups: dict[tuple[str, str], tuple[int, int]] = {}
    for config in load_environments(with_quota(context, _ROOMY_QUOTA)).values():
        reserved, demand = planned_reservation(config)
        key = (config.account or "the default account", config.region)
        total_reserved, total_demand = groups.get(key, (0, 0))
        groups[key] = (total_reserved + reserved, total_demand + demand)
    return max(reserved + max(LAMBDA_UNRESERVED_MINIMUM, demand) for reserved, demand in groups.values())


def scale_context(count: int | None, *, own_accounts: bool = False,
                  base: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], QuotaPlan]:
    """cdk.json's context with ``count`` generated models (None: its own models), each environment in its own
    account when ``own_accounts``, and the concurrency quota raised when the models need more than it holds. The
    result passes every check of the configuration (names, quota), or this raises its ConfigError."""
    base = project_context() if base is None else base
    context = copy.deepcopy(dict(base))
    if count is not None:
        context["models"] = generated_models(base["models"], count)
    if own_accounts:
        for name, account in OWN_ACCOUNTS.items():
            context["environments"][name]["account"] = account
    shipped = max(c.lambda_.account_concurrency_quota for c in load_environments(base).values())
    needed = needed_quota(context)
    if needed > shipped:
        context = with_quota(context, needed)
    load_environments(context)  # the configuration's own checks, as `cdk synth` runs them
    return context, QuotaPlan(shipped=shipped, needed=needed, configured=max(shipped, needed))



# ------------------------------------------------------------------------------------- in the fresh process
def _high_water_mb(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory so far of this process and of its descendants (jsii's node wrapper and the node
    kernel it starts), in MB."""
    parents: dict[str, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[entry.name] = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
    me = str(os.getpid())
    family, grown = {me}, True
    while grown:
        found = {pid for pid, parent in parents.items() if parent in family} - family
        family |= found
        grown = bool(found)
    node = 0.0
    for pid in family - {me}:
        try:
            node += _high_water_mb(pid)
        except OSError:  # ended since
            continue
    return {"python": _high_water_mb(me), "node": node}


def _synthesize(context: Mapping[str, Any], outdir: Path) -> tuple[Any, list[Any], float, float]:
    """(app, stages, build seconds, synth seconds): the infra tests' in-process synthesis."""
    import aws_cdk as cdk

    from stacks.app_builder import build_app

    app = cdk.App(outdir=str(outdir), context={**context, "aws:cdk:bundling-stacks": []})
    started = time.perf_counter()
    stages = build_app(app, context=context, with_nag=False)
    built = time.perf_counter()
    app.synth()
    return app, stages, built - started, time.perf_counter() - built


def _import_cdk() -> float:
    started = time.perf_counter()
    import aws_cdk  # noqa: F401  (loads aws-cdk-lib into the jsii kernel)

    import stacks.app_builder  # noqa: F401
    return time.perf_counter() - started


def measure_scale(count: int) -> dict[str, Any]:
    """Synthesize every environment with ``count`` generated models and count what came out."""
    load_before = os.getloadavg()
    context, quota = scale_context(count)
    imported = _import_cdk()
    from stacks.constructs.limits import STACK_RESOURCE_BUDGET, resource_count, rules_per_bus

    with tempfile.TemporaryDirectory(prefix="synth-scale-") as folder:
        outdir = Path(folder)
        _app, stages, built, synthesized = _synthesize(context, outdir)
        peak = peak_rss_mb()
        resources = {stage.config.name: {
            **{name: resource_count(getattr(stage, name.lower())) for name in SHARED_STACKS},
            **{f"Model-{model}": resource_count(stack) for model, stack in stage.models.items()}}
            for stage in stages}
        buses = [[f"{account} {region} {bus}", rules, wildcards]
                 for (account, region, bus), (rules, wildcards) in sorted(rules_per_bus(stages).items())]
        templates = sorted(outdir.rglob("*.template.json"))
        template_bytes = sum(path.stat().st_size for path in templates)
    return {"models": count, "quota": asdict(quota), "import_s": imported, "build_s": built, "synth_s": synthesized,
            "peak_rss_mb": peak, "stacks": sum(len(r) for r in resources.values()), "templates": len(templates),
            "resources": resources, "buses": buses, "template_bytes": template_bytes,
            "budget": STACK_RESOURCE_BUDGET, "load_before": load_before, "load_after": os.getloadavg()}


def measure_fixtures(count: int, gates: bool) -> dict[str, Any]:
    """What a pytest process of the infra tier pays for its two session fixtures (tests/infra/conftest.py):
    the shipped topology and the three-account one, each with the sample of ``count`` models, synthesized one
    after the other in one process. ``count`` equal to cdk.json's number of models uses cdk.json's own models.
    ``gates``: also the gates test_security_gates runs over the one-account app (both cdk-nag packs, cfn-lint over
    every template)."""
    load_before = os.getloadavg()
    own = None if count == len(project_context()["models"]) else count
    one, quota = scale_context(own)
    three, three_quota = scale_context(own, own_accounts=True)
    one, three = sampled_context(one), sampled_context(three)
    imported = _import_cdk()
    result: dict[str, Any] = {"models": count, "generated": own is not None, "quota": asdict(quota),
                              "three_quota": asdict(three_quota), "import_s": imported,
                              "sampled": list(one["models"])}
    with tempfile.TemporaryDirectory(prefix="synth-fixtures-") as folder:
        app, _stages, built, synthesized = _synthesize(one, Path(folder) / "one")
        result["one_account_s"] = built + synthesized
        _app3, _stages3, built3, synthesized3 = _synthesize(three, Path(folder) / "three")
        result["three_accounts_s"] = built3 + synthesized3
        result["peak_rss_mb"] = peak_rss_mb()
        if gates:
            result.update(_measure_gates(app, Path(folder) / "one"))
    result["load_before"], result["load_after"] = load_before, os.getloadavg()
    return result


def _measure_gates(app: Any, outdir: Path) -> dict[str, Any]:
    from cdk_nag import AwsSolutionsChecks, ServerlessChecks

    from mlops.security_gates import run_cfn_lint, stack_summaries
    from stacks.constructs.nag import resolve_wildcard_allowances

    started = time.perf_counter()
    resolve_wildcard_allowances(app)
    for pack in (AwsSolutionsChecks(), ServerlessChecks()):
        pack.validate_scope(app)
    nag = time.perf_counter() - started
    templates = [s.template for s in stack_summaries(outdir)]
    started = time.perf_counter()
    lint = run_cfn_lint(templates)
    return {"nag_s": nag, "cfn_lint_s": time.perf_counter() - started, "cfn_lint_templates": len(templates),
            "cfn_lint_findings": len(lint.findings)}


# ------------------------------------------------------------------------------------------- the runner
def run_child(*arguments: str) -> tuple[dict[str, Any], float]:
    """One measurement in a fresh interpreter: its JSON line and the process's wall time."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "bench.bench_synth_scale", "--child", *arguments], cwd=ROOT,
                               capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"child {arguments} failed ({completed.returncode}): {completed.stderr.strip()[-3000:]}")
    print(f"child {' '.join(arguments)}: {wall:.1f} s", file=sys.stderr)
    return json.loads(lines[-1]), wall


def _load(before: list[float], after: list[float]) -> str:
    return f"{before[0]:.1f} → {after[0]:.1f}"


def _per_env(resources: dict[str, dict[str, int]], stack: str) -> str:
    return " / ".join(str(stacks[stack]) for stacks in resources.values())


def _model_stacks(resources: dict[str, dict[str, int]]) -> str:
    counts = [{n for name, n in stacks.items() if name.startswith("Model-")} for stacks in resources.values()]
    return " / ".join(f"{min(c)}-{max(c)}" if min(c) != max(c) else str(min(c)) for c in counts)


def scale_table(runs: list[dict[str, Any]]) -> list[str]:
    def row(what: str, cells: list[str]) -> str:
        return f"| {what} | " + " | ".join(cells) + " |"

    envs = " / ".join(runs[0]["resources"])
    lines = [row("measured", [f"{r['models']} model{'s' if r['models'] != 1 else ''}" for r in runs]),
             "|---|" + "---:|" * len(runs)]
    lines += [
        row("synthesis: build_app + app.synth (s)", [f"{r['build_s'] + r['synth_s']:.1f}" for r in runs]),
        row("of which build_app / app.synth (s)", [f"{r['build_s']:.1f} / {r['synth_s']:.1f}" for r in runs]),
        row("imports: aws_cdk + stacks (s)", [f"{r['import_s']:.1f}" for r in runs]),
        row("whole fresh process (s)", [f"{r['process_s']:.1f}" for r in runs]),
        row("peak RSS, Python / jsii node (MB)",
            [f"{r['peak_rss_mb']['python']:,.0f} / {r['peak_rss_mb']['node']:,.0f}" for r in runs]),
        row("stacks (all environments)", [str(r["stacks"]) for r in runs]),
        row(f"resources per model stack ({envs}; min-max)", [_model_stacks(r["resources"]) for r in runs]),
        *(row(f"resources, {stack} ({envs})", [_per_env(r["resources"], stack) for r in runs])
          for stack in SHARED_STACKS),
        row("resources, all stacks", [f"{sum(sum(s.values()) for s in r['resources'].values()):,}" for r in runs]),
        row("largest stack (budget 450)",
            [str(max(max(s.values()) for s in r["resources"].values())) for r in runs]),
        row("every stack within the budget",
            ["yes" if all(n <= r["budget"] for s in r["resources"].values() for n in s.values()) else "**no**"
             for r in runs]),
        row("EventBridge rules per bus (rules / with wildcards; limits 300 / 30)",
            ["; ".join(f"{rules} / {wildcards}" for _bus, rules, wildcards in r["buses"]) for r in runs]),
        row("templates, total bytes (MB)", [f"{r['template_bytes'] / 1e6:.2f}" for r in runs]),
        row("Lambda quota: cdk.json / planner needs / configured",
            [f"{r['quota']['shipped']:,} / {r['quota']['needed']:,} / {r['quota']['configured']:,}"
             + (" (raised)" if r["quota"]["configured"] > r["quota"]["shipped"] else "") for r in runs]),
        row("load average (1 min) before → after", [_load(r["load_before"], r["load_after"]) for r in runs]),
    ]
    return lines


def fixture_table(runs: list[dict[str, Any]]) -> list[str]:
    gates = all("nag_s" in r for r in runs)
    lines = ["| models in cdk.json | synthesized (the sample) | one-account synth (s) | three-account synth (s) "
             "| both (s) | peak RSS Python / node (MB)"
             + (" | cdk-nag, 2 packs (s) | cfn-lint (s) | templates" if gates else "") + " | process (s) | load |",
             "|---:|---|---:|---:|---:|---:|" + ("---:|---:|---:|" if gates else "") + "---:|---|"]
    for r in runs:
        cells = [f"{r['models']}{' (generated)' if r['generated'] else ' (cdk.json)'}",
                 f"{len(r['sampled'])}: {', '.join(r['sampled'])}", f"{r['one_account_s']:.1f}",
                 f"{r['three_accounts_s']:.1f}", f"{r['one_account_s'] + r['three_accounts_s']:.1f}",
                 f"{r['peak_rss_mb']['python']:,.0f} / {r['peak_rss_mb']['node']:,.0f}"]
        if gates:
            cells += [f"{r['nag_s']:.1f}", f"{r['cfn_lint_s']:.1f}", str(r["cfn_lint_templates"])]
        cells += [f"{r['process_s']:.1f}", _load(r["load_before"], r["load_after"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def slope(runs: list[dict[str, Any]], value: str) -> str:
    """Seconds per added model between consecutive sizes."""
    parts = []
    for low, high in itertools.pairwise(runs):
        per_model = (float(high[value]) - float(low[value])) / (high["models"] - low["models"])
        parts.append(f"{per_model:.2f} s per model from {low['models']} to {high['models']}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="models per synthesis")
    parser.add_argument("--fixture-sizes", default=",".join(map(str, FIXTURE_SIZES)),
                        help="models for the infra fixtures' synthesis ('' to skip)")
    parser.add_argument("--gates", action="store_true", help="also time cdk-nag and cfn-lint with the fixtures")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, count = args.child[0], int(args.child[1])
        found = measure_scale(count) if kind == "scale" else measure_fixtures(count, gates="gates" in args.child)
        print(json.dumps(found))
        return 0

    scale = []
    for count in (int(n) for n in args.sizes.split(",") if n):
        found, wall = run_child("scale", str(count))
        scale.append({**found, "process_s": wall})
    fixtures = []
    for count in (int(n) for n in args.fixture_sizes.split(",") if n):
        found, wall = run_child("fixtures", str(count), *(["gates"] if args.gates else []))
        fixtures.append({**found, "process_s": wall, "both_s": found["one_account_s"] + found["three_accounts_s"]})

    for run in scale:
        run["total_s"] = run["build_s"] + run["synth_s"]
    # The table first: `python -m bench` keeps a benchmark's output from its first heading or table on.
    if scale:
        print("\n".join(scale_table(scale)))
        print()
        print(f"Every environment ({', '.join(scale[0]['resources'])}) synthesized in-process as the infra tests do "
              "(no Lambda bundling, no cdk-nag), one fresh process per size, sizes one after another; models are "
              "copies of cdk.json's under generated names. Load average (1 minute) recorded before and after each run.")
        print(f"Synthesis time per added model: {slope(scale, 'total_s')}.")
    if fixtures:
        print()
        print("The infra tier's two session fixtures (one-account and three-account topologies with the sample of "
              "the models, one after the other in one fresh process, as a pytest worker pays them):")
        print()
        print("\n".join(fixture_table(fixtures)))
        print()
        print(f"Both fixtures per added model: {slope(fixtures, 'both_s')}.")
    print(json.dumps({"scale": scale, "fixtures": fixtures}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
