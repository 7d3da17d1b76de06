"""`mlops config show|validate|reference`: the resolved per-environment settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mlops.errors import OperatorError
from mlops.output import emit_json
from mlops.project_config import config_warnings, environment_config, load_configs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="show and check the settings in cdk.json")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the resolved settings of one environment (defaults merged)")
    show.add_argument("--env", required=True, metavar="NAME", help="environment name from cdk.json")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)
    validate = actions.add_parser(
        "validate", help="parse every environment of a cdk.json; exit 2 naming the bad key",
        description="Parse and check every environment of ./cdk.json (or --file). Prints the file it validated. "
                    "Exit 0 when valid (warnings are printed), 2 when the file is missing, empty, not JSON, "
                    "has no 'context', or a setting is wrong; with --strict also 2 when there are warnings.")
    validate.add_argument("--file", type=Path, metavar="PATH",
                          help="the cdk.json to validate (default: cdk.json in the current folder)")
    validate.add_argument("--strict", action="store_true",
                          help="treat warnings (e.g. a production environment that pages nobody) as errors")
    validate.set_defaults(handler=_validate)
    reference = actions.add_parser("reference", help="print the configuration reference (Markdown)")
    reference.set_defaults(handler=_reference)


def _show(args: argparse.Namespace) -> int:
    from mlsettings.config import to_plain

    plain = to_plain(environment_config(args.env))
    if args.json:
        emit_json(plain)
    else:
        for key, value in _flatten(plain):
            print(f"{key:<48} {value}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    path = (args.file if args.file is not None else Path.cwd() / "cdk.json").resolve()
    configs = load_configs(path)
    warnings = [warning for config in configs.values() for warning in config_warnings(config)]
    for warning in warnings:
        print(f"mlops config validate: warning: {warning}", file=sys.stderr)
    if warnings and args.strict:
        raise OperatorError(f"{path}: {len(warnings)} warning(s) with --strict; the first: {warnings[0]}")
    print(f"{path} is valid: {', '.join(configs)}" + (f" ({len(warnings)} warning(s))" if warnings else ""))
    return 0


def _reference(args: argparse.Namespace) -> int:
    from mlsettings.config import render_reference

    print(render_reference(), end="")
    return 0


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows.extend(_flatten(item, f"{prefix}{key}."))
        return rows
    return [(prefix.rstrip("."), value)]
