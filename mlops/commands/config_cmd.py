"""`mlops config show|validate|reference`: the resolved per-environment settings."""

from __future__ import annotations

import argparse
from typing import Any

from mlops.errors import OperatorError
from mlops.output import emit_json
from stacks.config import ConfigError, load_environments, project_context, render_reference, to_plain


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="show and check the settings in cdk.json")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the resolved settings of one environment (defaults merged)")
    show.add_argument("--env", required=True, help="environment name from cdk.json")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)
    validate = actions.add_parser("validate", help="parse every environment; exit 2 naming the bad key")
    validate.set_defaults(handler=_validate)
    reference = actions.add_parser("reference", help="print the configuration reference (Markdown)")
    reference.set_defaults(handler=_reference)


def _configs() -> dict[str, Any]:
    try:
        return load_environments(project_context())
    except ConfigError as err:
        raise OperatorError(f"cdk.json: {err}") from err


def _show(args: argparse.Namespace) -> int:
    configs = _configs()
    if args.env not in configs:
        raise OperatorError(f"unknown environment {args.env!r}; cdk.json has {sorted(configs)}")
    plain = to_plain(configs[args.env])
    if args.json:
        emit_json(plain)
    else:
        for key, value in _flatten(plain):
            print(f"{key:<48} {value}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    configs = _configs()
    print(f"cdk.json is valid: {', '.join(configs)}")
    return 0


def _reference(args: argparse.Namespace) -> int:
    print(render_reference(), end="")
    return 0


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows.extend(_flatten(item, f"{prefix}{key}."))
        return rows
    return [(prefix.rstrip("."), value)]
