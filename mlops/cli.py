"""`mlops`: the operator CLI. Each subcommand lives in its own module under `mlops.commands` and exposes
`register(subparsers)`; this module only collects them, so adding a command never touches the others.

Start-up stays light: command modules import only the standard library and the CLI's own small modules at
import time; numpy, pandas, scipy, xgboost, boto3 and the Lambda code are imported inside the handlers
that need them (tests/unit/test_cli_startup.py checks this for `mlops --help` and `mlops config validate`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from mlops.errors import OperatorError

# Order is the order of `mlops --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "mlops.commands.config_cmd",
    "mlops.commands.synth_cmd",
    "mlops.commands.train_cmd",
    "mlops.commands.conformance_cmd",
    "mlops.commands.models_cmd",
    "mlops.commands.registry_cmds",
    "mlops.commands.serving_cmds",
    "mlops.commands.drift_cmds",
    "mlops.commands.demo_cmd",
    "mlops.commands.cost_cmd",
    "mlops.commands.workflow_cmd",
)
DISTRIBUTION = "serverless-mlops"  # [project].name in pyproject.toml


class _VersionAction(argparse.Action):
    """`--version`, read from the installed package's metadata only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"mlops {package_version()}")
        parser.exit()


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (the serverless-mlops package is not installed; run make bootstrap)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Operate the serverless MLOps stack: configuration, training, promotion, serving, drift.",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the installed version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (`mlops status | head`): what was asked for was printed. Python's documented
        # remedy ("Note on SIGPIPE"): point stdout at devnull so the flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except OperatorError as err:  # an argument type's check (mlops.arguments): before any AWS call
        words = list(argv if argv is not None else sys.argv[1:])
        print(f"mlops {' '.join(w for w in words[:2] if not w.startswith('-'))}: {err}", file=sys.stderr)
        return 2
    # "mlops config validate: …" rather than "mlops config: …" for commands with an action
    name = " ".join(part for part in (args.command, getattr(args, "action", None)) if part)
    try:
        result: int = args.handler(args)
    except OperatorError as err:
        print(f"mlops {name}: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from mlops.aws_errors import explain

        message = explain(err, args)
        if message is None:
            raise
        print(f"mlops {name}: {message}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
