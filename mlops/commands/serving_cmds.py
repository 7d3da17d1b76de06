"""`mlops promote-challenger`, `shift-weights`, `ab-report`, `batch-score`: operating the serving endpoint.

Names come from SSM (``/mlops/<env>/endpoint-name``, ``model-package-group``, ``event-bus-name``,
``capture-bucket``; optional ``capture-destination-uri`` (default ``s3://<capture-bucket>/endpoint``),
``ground-truth-uri`` (default ``s3://<capture-bucket>/ground-truth/``), ``batch-scoring-function``).
The logic lives in ``mlops.serving_ops`` (numpy, scipy), imported by the handlers only.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlops.arguments import integer
from mlops.aws_session import AwsSession, add_aws_options, aws_session, selected_model
from mlops.errors import OperatorError
from mlops.output import emit_json
from mlops.project_config import model_config
from mlops.resources import DeployedResources, load_resources
from mlsettings.vocabulary import PRODUCTION, STAGING, Published

REPO_ROOT = Path(__file__).resolve().parents[2]
# The registry's stage names; the CLI spells stages lowercase everywhere (`promote --to` does too).
# The capitalised spellings of earlier releases (`--stage Production`) still work: the value is lowercased.
SERVED_STAGES = {"staging": STAGING, "production": PRODUCTION}


def register(subparsers: Any) -> None:
    promote = subparsers.add_parser(
        "promote-challenger", help="make the Challenger's model the Champion (and the Champion's the Challenger) "
                                   "through the deployer's safe deployment")
    add_aws_options(promote, env_help="environment whose endpoint runs the A/B test")
    promote.add_argument("--stage", default="production", type=str.lower, choices=sorted(SERVED_STAGES),
                         help="stage the endpoint serves: staging or production (default: production; "
                              "case-insensitive, so the older Staging/Production spellings work)")
    promote.add_argument("--json", action="store_true", help="print the result as JSON")
    promote.set_defaults(handler=run_promote_challenger)

    shift = subparsers.add_parser("shift-weights", help="change the Challenger's traffic share without redeploying")
    add_aws_options(shift, env_help="environment whose endpoint's weights to change")
    shift.add_argument("--challenger-percent", type=integer("--challenger-percent", low=0, high=100), required=True,
                       metavar="N",
                       help="0-100; the Champion gets the rest")
    shift.add_argument("--json", action="store_true", help="print the result as JSON")
    shift.set_defaults(handler=run_shift_weights)

    report = subparsers.add_parser("ab-report", help="compare Champion and Challenger: traffic, latency, errors, "
                                                     "predictions, quality with ground truth; recommend")
    add_aws_options(report, env_help="environment whose endpoint runs the A/B test")
    report.add_argument("--hours", type=integer("--hours", low=1, high=24 * 90), default=24, metavar="N",
                        help="window ending now (default 24)")
    report.add_argument("--min-labelled", type=integer("--min-labelled", low=1), default=100, metavar="N",
                        help="labelled rows per variant before quality decides (default 100)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(handler=run_ab_report)

    batch = subparsers.add_parser("batch-score", help="score an S3 prefix with the production Champion's model "
                                                      "(batch transform, outputs joined to inputs)")
    add_aws_options(batch, env_help="environment whose batch scoring function to start")
    batch.add_argument("--input", required=True, metavar="S3_URI",
                       help="s3:// prefix of header-less CSV rows in schema order")
    batch.add_argument("--json", action="store_true", help="print the result as JSON")
    batch.set_defaults(handler=run_batch_score)


def _resources(session: AwsSession, env: str, args: argparse.Namespace) -> DeployedResources:
    """The environment's published names, a model's own (endpoint, …) those of ``--model``."""
    model = selected_model(args)  # a config check: before any AWS call
    return load_resources(env, session.client("ssm")).for_model(model)


def _print(result: Any, as_json: bool, text: str) -> None:
    if as_json:
        emit_json(result)
    else:
        print(text)


def run_promote_challenger(args: argparse.Namespace) -> int:
    from mlops import serving_ops

    session = aws_session(args)
    resources = _resources(session, args.env, args)
    result = serving_ops.request_challenger_promotion(
        session.client("sagemaker"), session.client("events"), endpoint=resources[Published.ENDPOINT_NAME],
        group=resources[Published.MODEL_PACKAGE_GROUP], model=selected_model(args),
        event_bus_name=resources[Published.EVENT_BUS_NAME], requested_by=session.caller_arn(),
        stage=SERVED_STAGES[args.stage])
    _print(result, args.json, f"requested: Challenger v{result['challenger_version']} becomes Champion, Champion "
                              f"v{result['champion_version']} becomes Challenger; {result['note']}")
    return 0


def run_shift_weights(args: argparse.Namespace) -> int:
    from mlops import serving_ops

    session = aws_session(args)
    resources = _resources(session, args.env, args)
    result = serving_ops.shift_weights(session.client("sagemaker"), endpoint=resources[Published.ENDPOINT_NAME],
                                       challenger_percent=args.challenger_percent)
    _print(result, args.json, f"{result['endpoint']}: weights {result['before']} → {result['after']}; "
                              f"{result['note']}")
    return 0


def _schema(args: argparse.Namespace) -> tuple[Any, float]:
    from mlsettings.schema import DataSchema

    config = model_config(args.env, getattr(args, "model", None))
    return DataSchema.load(REPO_ROOT / config.training.schema_file), config.serving.sla.p99_latency_ms


def run_ab_report(args: argparse.Namespace) -> int:
    from mlops import serving_ops

    if args.hours < 1:
        raise OperatorError(f"--hours is {args.hours}; allowed: at least 1")
    session = aws_session(args)
    resources = _resources(session, args.env, args)
    schema, sla_p99 = _schema(args)
    end = datetime.now(UTC)
    report = serving_ops.ab_report(
        sagemaker_client=session.client("sagemaker"), cloudwatch_client=session.client("cloudwatch"),
        s3_client=session.client("s3"), endpoint=resources[Published.ENDPOINT_NAME],
        capture_uri=resources[Published.CAPTURE_DESTINATION_URI],
        start=end - timedelta(hours=args.hours), end=end, n_features=len(schema.feature_names),
        feature_names=tuple(schema.feature_names), label_spec=schema.label,
        ground_truth_uri=resources[Published.GROUND_TRUTH_URI],
        sla_p99_ms=sla_p99, min_labelled=args.min_labelled)
    _print(report, args.json, serving_ops.format_ab_report(report))
    return 0


def run_batch_score(args: argparse.Namespace) -> int:
    session = aws_session(args)
    resources = _resources(session, args.env, args)
    answer = session.client("lambda").invoke(FunctionName=resources[Published.BATCH_SCORING_FUNCTION],
                                             Payload=json.dumps({"input_uri": args.input}).encode())
    result = json.loads(answer["Payload"].read() or b"{}")
    if answer.get("FunctionError") or not result.get("started"):
        raise OperatorError(f"batch scoring did not start: {result.get('reason') or result}")
    _print(result, args.json, f"started {result['transform_job_name']} with {result['model_name']}; "
                              f"results under {result['output_uri']}")
    return 0
