"""`mlops status`, `mlops promote`, `mlops rollback`: the model registry's staged promotion for operators.

Resource names come from SSM (``/mlops/<env>/model-package-group``, ``ledger-table``, ``event-bus-name``);
the logic lives in ``mlops.registry_ops``.
"""

from __future__ import annotations

import argparse
from typing import Any

import boto3

from mlops import registry_ops
from mlops.deployment_ledger import DeploymentLedger
from mlops.output import emit_json
from mlops.resources import DeployedResources, load_resources


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status", help="which model version is in which stage, what waits for approval, recent decisions"
    )
    status.add_argument("--env", required=True, help="environment whose registry and ledger to read")
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.set_defaults(handler=run_status)

    promote = subparsers.add_parser(
        "promote",
        help="move a model version to staging or production (the same registry update as Studio); "
        "the promotion gate decides",
    )
    promote.add_argument("--env", required=True)
    promote.add_argument("--version", type=int, required=True, help="model package version")
    promote.add_argument("--to", required=True, choices=sorted(registry_ops.TARGET_STAGES))
    promote.add_argument("--note", default="", help="why; written into the stage/approval description")
    promote.add_argument("--json", action="store_true")
    promote.set_defaults(handler=run_promote)

    rollback = subparsers.add_parser(
        "rollback", help="redeploy one of the two previous production versions through the normal deployment"
    )
    rollback.add_argument("--env", required=True)
    rollback.add_argument(
        "--to-version", type=int, default=None, help="default: the production version before the current one"
    )
    rollback.add_argument("--json", action="store_true")
    rollback.set_defaults(handler=run_rollback)


def _resources(env: str) -> DeployedResources:
    return load_resources(env, boto3.client("ssm"))


def _ledger(resources: DeployedResources, env: str) -> DeploymentLedger:
    from stacks.config import load_environments, project_context

    # The same count the deployer protects with (registry.protected_production_versions of that environment).
    protected = load_environments(project_context())[env].registry.protected_production_versions
    return DeploymentLedger(
        boto3.client("dynamodb"), resources["ledger-table"], resources["model-package-group"],
        protected_versions=protected,
    )


def _caller() -> str:
    return str(boto3.client("sts").get_caller_identity()["Arn"])


def run_status(args: argparse.Namespace) -> int:
    resources = _resources(args.env)
    report = registry_ops.status_report(
        boto3.client("sagemaker"), _ledger(resources, args.env), group=resources["model-package-group"]
    )
    if args.json:
        emit_json(report)
    else:
        print(registry_ops.format_status(report))
    return 0


def run_promote(args: argparse.Namespace) -> int:
    resources = _resources(args.env)
    result = registry_ops.request_promotion(
        boto3.client("sagemaker"),
        group=resources["model-package-group"],
        version=args.version,
        target=args.to,
        requested_by=_caller(),
        note=args.note,
    )
    if args.json:
        emit_json(result)
    else:
        print(
            f"requested {result['model_package_group']} v{result['version']}: "
            f"{result['previous_stage']} → {result['requested_stage']}; {result['note']}"
        )
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    resources = _resources(args.env)
    result = registry_ops.request_rollback(
        boto3.client("events"),
        _ledger(resources, args.env),
        group=resources["model-package-group"],
        event_bus_name=resources["event-bus-name"],
        requested_by=_caller(),
        to_version=args.to_version,
    )
    if args.json:
        emit_json(result)
    else:
        print(
            f"rollback requested: {result['model_package_group']} production v{result['from_version']} → "
            f"v{result['version']} ({result['model_data_url']}); the serving deployer redeploys it"
        )
    return 0
