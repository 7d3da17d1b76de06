"""`mlops train`: start a training pipeline execution in AWS (`--env X`), or run every step locally (`--local`).

One of the two is required: a bare `mlops train` used to start the dev pipeline in whatever account the
shell's credentials reached, which on day one in a real account is the wrong default.
The step scripts (xgboost, pandas) and boto3 are imported by the handler only."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlops.arguments import integer
from mlops.aws_session import add_aws_options, aws_session
from mlops.errors import OperatorError
from mlops.output import emit_json
from mlops.project_config import model_config

__all__ = ["model_config", "register", "run"]

# The environment whose settings a local run uses when --env is not given (the embedded default's).
LOCAL_DEFAULT_ENV = "dev"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train", help="start a training pipeline execution (--env X) or run it locally (--local)",
        description="In AWS (--env X): start the deployed pipeline with the git commit, data URI and config hash "
                    "as parameters. With --local: run validate, preprocess, train, evaluate, the quality gate and "
                    "baseline on local files, and register a passing model in the embedded moto registry. One of "
                    "--env and --local is required.")
    add_aws_options(parser, env_required=False,
                    env_help="environment from cdk.json whose deployed pipeline to start; with --local, whose "
                             f"settings to use (default there: {LOCAL_DEFAULT_ENV})")
    parser.add_argument("--local", action="store_true", help="run the steps here, on moto S3 and registry")
    parser.add_argument("--data", type=Path, metavar="FILE.csv",
                        help="--local: a CSV file (default: the bundled data set)")
    parser.add_argument("--data-uri", metavar="S3_URI",
                        help="AWS: s3:// prefix of the training data (default: the data bucket's)")
    parser.add_argument("--num-round", type=integer("--num-round", low=1, high=100000), metavar="N",
                        help="--local: boosting rounds (default: from config)")
    parser.add_argument("--workdir", type=Path, metavar="DIR",
                        help="--local: a new or empty folder for the run's files (kept)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="--local without --workdir: keep the temporary folder (removed by default)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.local and not args.env:
        raise OperatorError("give --env NAME to start the deployed pipeline in AWS, or --local to run the steps "
                            "here on moto")
    if not args.local:
        from mlops.resources import load_resources
        from mlops.training_run import start_pipeline

        config = model_config(args.env, args.model)
        session = aws_session(args)
        assert config.model is not None
        resources = load_resources(args.env, session.client("ssm")).for_model(config.model.name)
        started = start_pipeline(config=config, resources=resources, data_uri=args.data_uri,
                                 sagemaker=session.client("sagemaker"))
        if args.json:
            emit_json(started)
        else:
            print(f"started {started['pipeline_execution_arn']}")
            for key, value in started["parameters"].items():
                print(f"  {key:<20} {value}")
        return 0
    if args.region or args.profile:
        raise OperatorError("--region and --profile select AWS; --local runs on moto and takes neither")
    if args.data_uri:
        raise OperatorError(f"--data-uri {args.data_uri} names data in S3 for the deployed pipeline; --local trains on "
                            "a local file: give --data FILE.csv (or nothing, for the bundled data)")
    if args.num_round is not None and args.num_round < 1:
        raise OperatorError(f"--num-round is {args.num_round}; allowed: at least 1")
    config = model_config(args.env or LOCAL_DEFAULT_ENV, args.model)
    if args.data is not None and not args.data.is_file():
        raise OperatorError(f"--data {args.data} is not a file")
    workdir = _workdir(args)
    try:
        summary, outcome = _train_locally(args, config, workdir)
    finally:
        if args.workdir is None and not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.workdir is None and not args.keep_workdir:
        summary["workdir_removed"] = True
    if args.json:
        emit_json(summary)
    else:
        print_summary(summary)
    if outcome.run.succeeded:
        return 0
    # Data the validate step refuses is bad input (exit 2, the violations printed); a model below the gate is 1.
    return 2 if outcome.run.status == "failed_validation" else 1


def _workdir(args: argparse.Namespace) -> Path:
    """The run's folder: --workdir (created here; a path that cannot be a folder is one line), else a temporary
    one that the caller removes whatever happens, unless --keep-workdir."""
    if args.workdir is None:
        return Path(tempfile.mkdtemp(prefix="mlops-train-"))
    try:
        args.workdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OperatorError(f"--workdir {args.workdir} cannot be created: {err.strerror or err}") from None
    return Path(args.workdir)


def _train_locally(args: argparse.Namespace, config: Any, workdir: Path) -> tuple[dict[str, Any], Any]:
    from mlops.local_env import embedded_aws, provision
    from mlops.training_run import train_local

    progress = None if args.json else _progress_printer()
    # The step scripts log to stdout as they do in their containers; with --json stdout is the document.
    step_output = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with embedded_aws(), step_output:
        env = provision(config)
        outcome = train_local(env, data_csv=args.data, workdir=workdir, num_round=args.num_round,
                              progress=progress)
    return outcome.to_dict(), outcome


def _progress_printer() -> Any:
    started: dict[str, float] = {}

    def progress(step: str, event: str) -> None:
        if event == "started":
            started[step] = time.perf_counter()
            print(f"  {step:<11} ...", end="", flush=True, file=sys.stdout)
            return
        elapsed = time.perf_counter() - started.get(step, time.perf_counter())
        if event == "skipped":
            print(f"  {step:<11} skipped")
        else:
            print(f"\r  {step:<11} {event} ({elapsed:.1f} s)")

    return progress


def print_summary(summary: dict[str, Any]) -> None:
    print(f"\nstatus: {summary['status']}" + (f" — {summary['failure']}" if summary["failure"] else ""))
    gate = summary["gate"]
    if gate:
        side, bound = next(((key.split("_")[0], gate[key]) for key in ("lower_bound_95", "upper_bound_95")
                            if gate.get(key) is not None), ("", None))
        bound_text = "" if bound is None else f" (95 % {side} bound {bound:.4f})"
        print(f"quality gate: {gate['metric']} {gate['value']:.4f}{bound_text} {gate['comparison']} "
              f"{gate['threshold']} -> {'passed' if gate['passed'] else 'FAILED'}")
    if summary["validation"] and not summary["validation"]["passed"]:
        for violation in summary["validation"]["violations"]:
            print(f"  {violation['feature']}: {violation['problem']} — {violation['detail']}")
    metrics = summary.get("metrics") or {}
    if metrics:
        print("metrics: " + ", ".join(f"{k} {v['value']:.4f}" for k, v in sorted(metrics.items())
                                      if isinstance(v, dict) and isinstance(v.get("value"), int | float)))
    package = summary["model_package"]
    if package:
        print(f"registered: version {package['version']} ({package['stage']}, {package['approval_status']})")
        for key, value in sorted(package["metadata"].items()):
            print(f"  {key:<24} {value}")
    else:
        print("registered: nothing (a run that fails validation or the gate never registers a model)")
