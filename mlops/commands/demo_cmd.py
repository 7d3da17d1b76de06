"""`mlops demo`: the newcomer's first run on the embedded default (no AWS account)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops.commands.synth_cmd import print_summary, synthesize_with_gates
from mlops.security_gates import REPO_ROOT


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the lifecycle locally on moto and the bundled data")
    parser.add_argument("--out", default=str(REPO_ROOT / "cdk.out"), help="cloud assembly folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print("[1] synthesizing dev, staging and prod with the pinned CDK CLI (cdk-nag runs inside synth)")
    summaries, gates, _ = synthesize_with_gates(Path(args.out))
    print_summary(summaries, gates)
    ok = all(g.passed for g in gates)
    print(f"\ndemo: {'all gates green' if ok else 'a gate failed'}; cloud assembly in {args.out}")
    return 0 if ok else 1
