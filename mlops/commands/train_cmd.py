"""`mlops train`: start a training pipeline execution in AWS, or run every step locally (`--local`)."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from mlops.errors import OperatorError
from mlops.local_env import embedded_aws, provision
from mlops.output import emit_json
from mlops.resources import load_resources
from mlops.training_run import start_pipeline, train_local
from stacks.config import ConfigError, EnvironmentConfig, load_environments, project_context


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train", help="start a training pipeline execution (or run it locally with --local)",
        description="In AWS: start the deployed pipeline with the git commit, data URI and config hash as "
                    "parameters. With --local: run validate, preprocess, train, evaluate, the quality gate and "
                    "baseline on local files, and register a passing model in the embedded moto registry.")
    parser.add_argument("--env", default="dev", help="environment from cdk.json (default: dev)")
    parser.add_argument("--local", action="store_true", help="run the steps here, on moto S3 and registry")
    parser.add_argument("--data", type=Path, help="--local: a CSV file (default: the bundled data set)")
    parser.add_argument("--data-uri", help="AWS: s3:// prefix of the training data (default: the data bucket's)")
    parser.add_argument("--num-round", type=int, help="--local: boosting rounds (default: from config)")
    parser.add_argument("--workdir", type=Path, help="--local: a new or empty folder for the run's files (kept)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="--local without --workdir: keep the temporary folder (removed by default)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def environment_config(name: str) -> EnvironmentConfig:
    try:
        configs = load_environments(project_context())
    except ConfigError as err:
        raise OperatorError(f"cdk.json: {err}") from err
    if name not in configs:
        raise OperatorError(f"unknown environment {name!r}; cdk.json has {sorted(configs)}")
    return configs[name]


def run(args: argparse.Namespace) -> int:
    config = environment_config(args.env)
    if not args.local:
        resources = load_resources(args.env, boto3.client("ssm", region_name=config.region))
        started = start_pipeline(config=config, resources=resources, data_uri=args.data_uri,
                                 sagemaker=boto3.client("sagemaker", region_name=config.region))
        if args.json:
            emit_json(started)
        else:
            print(f"started {started['pipeline_execution_arn']}")
            for key, value in started["parameters"].items():
                print(f"  {key:<20} {value}")
        return 0
    if args.data is not None and not args.data.is_file():
        raise OperatorError(f"--data {args.data} is not a file")
    progress = None if args.json else _progress_printer()
    # The step scripts log to stdout as they do in their containers; with --json stdout is the document.
    step_output = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with embedded_aws(), step_output:
        env = provision(config)
        outcome = train_local(env, data_csv=args.data, workdir=args.workdir, num_round=args.num_round,
                              progress=progress)
    summary = outcome.to_dict()
    if args.workdir is None and not args.keep_workdir:
        shutil.rmtree(outcome.run.workdir.parent, ignore_errors=True)
        summary["workdir_removed"] = True
    if args.json:
        emit_json(summary)
    else:
        print_summary(summary)
    if outcome.run.succeeded:
        return 0
    # Data the validate step refuses is bad input (exit 2, the violations printed); a model below the gate is 1.
    return 2 if outcome.run.status == "failed_validation" else 1


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
        bound = gate.get("lower_bound_95")
        bound_text = "" if bound is None else f" (95 % lower bound {bound:.4f})"
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
