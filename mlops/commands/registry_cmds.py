"""`mlops status`, `mlops promote`, `mlops rollback`: the model registry's staged promotion for operators.

They act on the registry environment of ``--env`` (registry.registry_environment in cdk.json), with
credentials for its account: the versions, the ledger and the promotion bus live there; a rollback's
promotion is forwarded from there to the production environment's account.
Resource names come from SSM (``/mlops/<registry env>/model-package-group``, ``ledger-table``, ``event-bus-name``);
the logic lives in ``mlops.registry_ops``, imported by the handlers (it pulls in boto3 and the gate's code,
which `mlops --help` must not pay for).
"""

from __future__ import annotations

import argparse
from typing import Any

from mlops.arguments import integer
from mlops.aws_session import AwsSession, add_aws_options, aws_session, selected_model
from mlops.output import emit_json
from mlsettings.vocabulary import Published

# registry_ops.TARGET_STAGES' keys, spelled here so registering the command imports nothing heavy
# (tests/unit/test_cli_options.py keeps the two equal).
TARGET_STAGE_NAMES = ("production", "staging")


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status", help="which model version is in which stage, what waits for approval, recent decisions"
    )
    add_aws_options(status, env_help="environment whose registry and ledger to read (acts in its registry "
                                     "environment's account)")
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.set_defaults(handler=run_status)

    promote = subparsers.add_parser(
        "promote",
        help="move a model version to staging or production (the same registry update as Studio); "
        "the promotion gate decides",
    )
    add_aws_options(promote, env_help="environment whose model registry holds the version (acts in its registry "
                                      "environment's account)")
    promote.add_argument("--version", type=integer("--version", low=1), required=True, metavar="N",
                         help="model package version")
    promote.add_argument("--to", required=True, type=str.lower, choices=TARGET_STAGE_NAMES,
                         help="target stage: staging or production (case-insensitive)")
    promote.add_argument("--note", default="", help="why; written into the stage/approval description")
    promote.add_argument("--json", action="store_true", help="print the result as JSON")
    promote.set_defaults(handler=run_promote)

    rollback = subparsers.add_parser(
        "rollback", help="redeploy one of the two previous production versions through the normal deployment"
    )
    add_aws_options(rollback, env_help="environment whose production endpoint to roll back (acts in its registry "
                                       "environment's account)")
    rollback.add_argument(
        "--to-version", type=integer("--to-version", low=1), default=None, metavar="N",
        help="default: the production version before the current one",
    )
    rollback.add_argument("--json", action="store_true", help="print the result as JSON")
    rollback.set_defaults(handler=run_rollback)


def _ledger(session: AwsSession, resources: Any) -> Any:
    from mlops.project_config import environment_config
    from mlplatform.registry.deployment_ledger import DeploymentLedger

    # The same count the deployer protects with (registry.protected_production_versions of that environment).
    assert session.target.environment is not None
    protected = environment_config(session.target.environment).registry.protected_production_versions
    return DeploymentLedger(
        session.client("dynamodb"), resources[Published.LEDGER_TABLE], resources[Published.MODEL_PACKAGE_GROUP],
        protected_versions=protected,
    )


def _resources(session: AwsSession, env: str, args: argparse.Namespace) -> Any:
    """The registry environment's published names, a model's own (group, …) those of ``--model``."""
    from mlops.resources import load_resources

    model = selected_model(args)  # a config check: before any AWS call
    return load_resources(env, session.client("ssm")).for_model(model)


def run_status(args: argparse.Namespace) -> int:
    from mlops import registry_ops

    session = aws_session(args, registry=True)
    resources = _resources(session, session.target.environment or args.env, args)
    report = registry_ops.status_report(
        session.client("sagemaker"), _ledger(session, resources), group=resources[Published.MODEL_PACKAGE_GROUP]
    )
    if args.json:
        emit_json(report)
    else:
        print(registry_ops.format_status(report))
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from mlops import registry_ops

    session = aws_session(args, registry=True)
    resources = _resources(session, session.target.environment or args.env, args)
    result = registry_ops.request_promotion(
        session.client("sagemaker"),
        group=resources[Published.MODEL_PACKAGE_GROUP],
        version=args.version,
        target=args.to,
        requested_by=session.caller_arn(),
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
    from mlops import registry_ops

    session = aws_session(args, registry=True)
    resources = _resources(session, session.target.environment or args.env, args)
    result = registry_ops.request_rollback(
        session.client("events"),
        _ledger(session, resources),
        group=resources[Published.MODEL_PACKAGE_GROUP],
        model=selected_model(args),
        event_bus_name=resources[Published.EVENT_BUS_NAME],
        requested_by=session.caller_arn(),
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
