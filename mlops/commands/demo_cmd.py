"""`mlops demo`: the newcomer's first run on the embedded default (no AWS account).

1. synthesize every environment with the pinned CDK CLI and print the security gates;
2-9. the lifecycle of every model of cdk.json on moto in server mode (``mlops.demo.lifecycle``): train, promote
through the gate, deploy through the deployer, A/B with a Challenger and fallbacks, drift → alarm → page, an
illegal skip refused, a rollback, and a report folder with a section per model."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from mlops.commands.synth_cmd import REPO_ROOT, print_summary, synthesize_with_gates
from mlops.project_config import load_configs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the lifecycle locally on moto and the bundled data")
    parser.add_argument("--out", default=str(REPO_ROOT / "cdk.out"), help="cloud assembly folder")
    parser.add_argument("--report", default=str(REPO_ROOT / "demo-report"), help="report folder")
    parser.add_argument("--skip-synth", action="store_true", help="skip step 1 (synthesis and gates)")
    parser.add_argument("--num-round", type=int, default=100, help="boosting rounds per training run")
    parser.add_argument("--requests", type=int, default=200,
                        help="API requests per model and traffic phase (two phases: Challenger traffic, drift)")
    parser.add_argument("--small", action="store_true",
                        help="quick run: 30 boosting rounds and 80 requests per model and phase (what the e2e test "
                             "uses)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mlops.demo.lifecycle import DemoOptions, demo_configs, run_lifecycle

    started = time.perf_counter()
    gates_ok = True
    if not args.skip_synth:
        print("[1] synthesizing dev, staging and prod with the pinned CDK CLI (cdk-nag runs inside synth)")
        summaries, gates, _ = synthesize_with_gates(Path(args.out))
        print_summary(summaries, gates)
        gates_ok = all(g.passed for g in gates)
    if args.small:
        # 30: the fewest rounds whose model passes the quality gate on the bundled data (10 did not)
        args.num_round, args.requests = 30, 80
    load_configs()  # cdk.json as it is must load (one line naming what is wrong, exit 2)
    configs = demo_configs()  # then as the demo plays it: an own image no one pushed, as if it were
    summary = run_lifecycle(configs["prod"], configs["staging"],
                            DemoOptions(out_dir=Path(args.report), num_round=args.num_round, requests=args.requests))
    failed = [f"{number} ({step['title']})" for number, step in summary["steps"].items() if not step["ok"]]
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; report folder: {args.report}")
    if failed or not gates_ok:
        print("not everything worked: " + ", ".join(failed + ([] if gates_ok else ["security gates"])))
        return 1
    return 0
