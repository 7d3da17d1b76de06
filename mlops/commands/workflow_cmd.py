"""`mlops workflow show|write|check|order`: the GitHub Actions workflow generated from cdk.json, and the deploy
order it follows."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops.errors import OperatorError

REPO_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("workflow", help="the GitHub Actions workflow generated from cdk.json")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("show", help="print the workflow").set_defaults(handler=_show)
    write = actions.add_parser("write", help="write it to .github/workflows/delivery.yml")
    write.set_defaults(handler=_write)
    check = actions.add_parser("check", help="exit 1 when .github/workflows/delivery.yml differs from cdk.json's")
    check.set_defaults(handler=_check)
    order = actions.add_parser("order", help="the order a push to main deploys the environments in, and why")
    order.set_defaults(handler=_order)


def _render() -> str:
    from mlops.delivery.workflow import render_workflow
    from mlops.project_config import load_configs

    return render_workflow(load_configs())


def _path() -> Path:
    from mlops.delivery.workflow import WORKFLOW_PATH

    return REPO_ROOT / WORKFLOW_PATH


def _show(args: argparse.Namespace) -> int:
    print(_render(), end="")
    return 0


def _write(args: argparse.Namespace) -> int:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_render(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    path = _path()
    if not path.is_file():
        raise OperatorError(f"{path} is missing: run `mlops workflow write`")
    if path.read_text(encoding="utf-8") != _render():
        print(f"{path} differs from what cdk.json generates: run `mlops workflow write` and commit it")
        return 1
    print(f"{path} matches cdk.json")
    return 0


def _order(args: argparse.Namespace) -> int:
    from mlops.delivery.topology import deploy_plan
    from mlops.project_config import load_configs

    for index, step in enumerate(deploy_plan(load_configs()), 1):
        after = f" (after {', '.join(step.needs)})" if step.needs else ""
        print(f"{index}. {step.environment}{after}: {step.reason}")
    return 0
