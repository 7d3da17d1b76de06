"""`mlops`: the operator CLI. Each subcommand lives in its own module under `mlops.commands` and exposes
`register(subparsers)`; this module only collects them, so adding a command never touches the others."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mlops.errors import OperatorError

# Order is the order of `mlops --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "mlops.commands.config_cmd",
    "mlops.commands.synth_cmd",
    "mlops.commands.train_cmd",
    "mlops.commands.registry_cmds",
    "mlops.commands.serving_cmds",
    "mlops.commands.drift_cmds",
    "mlops.commands.demo_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Operate the serverless MLOps stack: configuration, training, promotion, serving, drift.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except OperatorError as err:
        print(f"mlops {args.command}: {err}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
