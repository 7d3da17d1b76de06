"""`mlops cost`: what each environment costs a month, from the synthesized templates, cdk.json and a dated price
table; `--compare` sets main against a change for the pull-request comment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops.errors import OperatorError
from mlops.output import emit_json

REPO_ROOT = Path(__file__).resolve().parents[2]
# GitHub refuses comment bodies over 65,536 characters; each environment's `cdk diff` gets at most this much.
DIFF_LIMIT = 15_000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cost", help="monthly cost estimate of an environment, per model and per line",
        description="Estimate what an environment costs a month from cdk.out (run `make synth` first), cdk.json and "
                    "the vendored price table (mlops/cost/prices.json, dated, sources named). Unknown prices are "
                    "shown as unknown, never as zero. Exit 2 for an unknown environment or a missing cdk.out.")
    parser.add_argument("--env", metavar="NAME", help="environment name from cdk.json")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--cdk-out", type=Path, default=REPO_ROOT / "cdk.out", metavar="DIR",
                        help="the synthesized cloud assembly (default: ./cdk.out)")
    parser.add_argument("--prices", type=Path, metavar="FILE", help="a price table with the vendored file's layout")
    parser.add_argument("--compare", type=Path, metavar="BASE_DIR",
                        help="a checkout of main with its own cdk.out: print Markdown comparing every environment's "
                             "estimate of main (BASE_DIR/cdk.json, BASE_DIR/cdk.out) with this tree's")
    parser.add_argument("--with-diffs", type=Path, metavar="DIR",
                        help="with --compare: append DIR/diff-<env>.txt (the output of `make diff ENV=<env>`)")
    parser.set_defaults(handler=run)


def estimate_document(env: str, *, cdk_out: Path, config_file: Path | None = None, repo_root: Path = REPO_ROOT,
                      prices: Path | None = None) -> dict[str, Any]:
    from mlops.cost.assembly import read_assembly
    from mlops.cost.estimate import estimate
    from mlops.cost.price_table import load_prices
    from mlops.project_config import environment_config

    config = environment_config(env, config_file)
    table = load_prices(prices)
    return estimate(config, read_assembly(cdk_out, env), table, repo_root).to_dict()


def run(args: argparse.Namespace) -> int:
    if args.compare is not None:
        print(compare(args.compare, cdk_out=args.cdk_out, prices=args.prices, diffs=args.with_diffs), end="")
        return 0
    if not args.env:
        raise OperatorError("--env NAME is required (or --compare BASE_DIR)")
    document = estimate_document(args.env, cdk_out=args.cdk_out, prices=args.prices)
    if args.json:
        emit_json(document)
    else:
        from mlops.cost.report import render_text

        print(render_text(document), end="")
    return 0


def compare(base: Path, *, cdk_out: Path, prices: Path | None, diffs: Path | None) -> str:
    from mlops.cost.report import render_comparison
    from mlops.project_config import load_configs

    if not (base / "cdk.json").is_file():
        raise OperatorError(f"{base}/cdk.json is missing: --compare needs a checkout of main with `make synth` run")
    change = load_configs()
    notes: list[str] = []
    try:
        main_envs = list(load_configs(base / "cdk.json"))
    except OperatorError as err:
        main_envs, notes = [], [f"main's configuration cannot be read by this change's code: {err}"]
    pairs = []
    for env in sorted(set(change) | set(main_envs), key=lambda e: (e not in change, e)):
        old = None
        if env in main_envs:
            try:
                old = estimate_document(env, cdk_out=base / "cdk.out", config_file=base / "cdk.json",
                                        repo_root=base, prices=prices)
            except OperatorError as err:  # main did not synthesize: show the change alone and say why
                notes.append(f"main's estimate of {env} is missing: {err}")
        new = estimate_document(env, cdk_out=cdk_out, prices=prices) if env in change else None
        pairs.append((env, old, new))
    text = render_comparison(pairs) + "".join(f"\n{note}\n" for note in notes)
    if diffs is not None:
        for env, _, _ in pairs:
            path = diffs / f"diff-{env}.txt"
            if path.is_file():
                body = path.read_text(encoding="utf-8", errors="replace")
                if len(body) > DIFF_LIMIT:
                    body = body[:DIFF_LIMIT] + f"\n... ({len(body) - DIFF_LIMIT} more characters: see the job log)\n"
                fenced = body.replace("```", "'''")  # a fence inside the diff would end the block
                text += f"\n<details><summary>cdk diff: {env}</summary>\n\n```\n{fenced}\n```\n</details>\n"
    return text
