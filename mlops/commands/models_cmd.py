"""`mlops models --env X [--json]`: every model of cdk.json with its problem type, owner and, read from the
registry environment of ``--env``, its versions per stage and the production version it serves.

It acts in the registry environment of ``--env`` (its account), where every model's group and the ledger live;
what it lists comes from cdk.json's ``models``, so a model that is configured but not yet trained shows no
versions."""

from __future__ import annotations

import argparse
from typing import Any

from mlops.aws_session import add_aws_options, aws_session
from mlops.output import emit_json
from mlsettings.vocabulary import Published


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("models", help="every model: problem type, owner, versions per stage, the "
                                                  "production version")
    add_aws_options(parser, model=False,
                    env_help="environment whose registry to read (acts in its registry environment)")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mlops import registry_ops
    from mlops.project_config import environment_config
    from mlops.resources import load_resources
    from mlplatform.registry.deployment_ledger import DeploymentLedger

    config = environment_config(args.env)
    session = aws_session(args, registry=True)
    registry = session.target.environment or args.env
    resources = load_resources(registry, session.client("ssm"))
    sagemaker, dynamodb = session.client("sagemaker"), session.client("dynamodb")
    rows = []
    for view in config.models:
        assert view.model is not None
        model = resources.for_model(view.model.name)
        group = model[Published.MODEL_PACKAGE_GROUP]
        ledger = DeploymentLedger(dynamodb, model[Published.LEDGER_TABLE], group,
                                  protected_versions=view.registry.protected_production_versions)
        status = registry_ops.status_report(sagemaker, ledger, group=group)
        production = (status["serving"] or {}).get("production")
        rows.append({"model": view.model.name, "problem_type": view.model.problem_type, "owner": view.model.owner,
                     "model_package_group": group,
                     "versions": {stage: [entry["version"] for entry in entries]
                                  for stage, entries in status["stages"].items()},
                     "production_version": production["version"] if production else None})
    if args.json:
        emit_json({"environment": args.env, "registry_environment": registry, "models": rows})
    else:
        print(format_models(rows))
    return 0


def format_models(rows: list[dict[str, Any]]) -> str:
    header = f"{'model':<24} {'type':<11} {'owner':<20} {'production':>10}  versions by stage"
    lines = [header, "-" * len(header)]
    for row in rows:
        stages = ", ".join(f"{stage} {'/'.join(f'v{v}' for v in versions) or '-'}"
                           for stage, versions in row["versions"].items())
        production = f"v{row['production_version']}" if row["production_version"] else "-"
        lines.append(f"{row['model']:<24} {row['problem_type']:<11} {row['owner'] or '-':<20} {production:>10}  "
                     f"{stages}")
    return "\n".join(lines)
