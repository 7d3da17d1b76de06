"""`mlops synth`: synthesize with the pinned CDK CLI, then summarize stacks and the security gates."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import OperatorError
from mlops.output import emit_json

if TYPE_CHECKING:
    from mlops.security_gates import GateResult, StackSummary

# mlops.security_gates.REPO_ROOT; the gate runner itself (subprocess, cfn-lint) is imported when synth runs.
REPO_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "synth", help="synthesize every environment (or one) and run cdk-nag, cfn-lint and checkov")
    parser.add_argument("--env", metavar="NAME", help="only this environment (default: all in cdk.json)")
    parser.add_argument("--out", default=str(REPO_ROOT / "cdk.out"), help="cloud assembly folder")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def synthesize_with_gates(outdir: Path, environment: str | None = None
                          ) -> tuple[list[StackSummary], list[GateResult], dict[str, int]]:
    from mlops.security_gates import (
        GateResult,
        acknowledgement_counts,
        cdk_synth,
        run_cfn_lint,
        run_checkov,
        stack_summaries,
    )

    completed = cdk_synth(outdir, environment=environment)
    if completed.returncode != 0:
        # cdk-nag findings and config errors both end synth here; show the CLI's own words.
        raise OperatorError("cdk synth failed:\n" + (completed.stderr or completed.stdout)[-4000:])
    summaries = stack_summaries(outdir)
    acknowledged = acknowledgement_counts(outdir)
    gates = [
        GateResult("cdk-nag", [], detail="AwsSolutions + Serverless packs: 0 unacknowledged findings, "
                   f"{sum(acknowledged.values())} resources carry acknowledgements with reasons"),
        run_cfn_lint([s.template for s in summaries]),
        run_checkov(outdir),
    ]
    return summaries, gates, dict(acknowledged)


def run(args: argparse.Namespace) -> int:
    summaries, gates, acknowledged = synthesize_with_gates(Path(args.out), args.env)
    if args.json:
        emit_json({
            "stacks": [{"stage": s.stage, "stack": s.stack, "resources": s.resource_counts} for s in summaries],
            "gates": [{"name": g.name, "passed": g.passed, "findings": g.findings, "detail": g.detail}
                      for g in gates],
            "acknowledged": acknowledged,
        })
    else:
        print_summary(summaries, gates)
    return 0 if all(g.passed for g in gates) else 1


def print_summary(summaries: list[StackSummary], gates: list[GateResult]) -> None:
    for stage in sorted({s.stage for s in summaries}):
        stacks = [s for s in summaries if s.stage == stage]
        print(f"\n== {stage}: {len(stacks)} stacks, {sum(s.resources for s in stacks)} resources")
        for summary in stacks:
            print(f"  {summary.stack} ({summary.resources} resources)")
            for rtype, count in summary.resource_counts.items():
                print(f"      {count:>3}  {rtype}")
    print("\n== security gates")
    for gate in gates:
        print(f"  {gate.name:<9} {'PASS' if gate.passed else 'FAIL'}  {gate.detail}")
        for finding in gate.findings[:20]:
            print(f"      {finding}")
