"""`mlops train`: the local run on moto (gate, registration, lineage) and the AWS start (parameters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops import cli
from mlops.local_env import provision
from mlops.project_config import model_config
from mlops.resources import load_resources
from mlops.training_run import config_hash, start_pipeline, train_local
from mlsettings.naming import pipeline_name
from pipelines.datasets import shuffle_labels, write_breast_cancer_csv
from testkit.serving_world import MODEL

LINEAGE_KEYS = ("git_commit", "config_hash", "data_uri", "data_version", "data_sha256", "data_lineage_uri",
                "pipeline_execution_arn", "training_job_name", "training_log_location", "quality_gate_passed",
                "quality_metric", "quality_value", "quality_threshold", "input_schema", "output_schema",
                "expected_p99_latency_ms", "instance_type", "memory_mb")


def _run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = cli.main(["train", "--local", "--model", MODEL, "--json", "--num-round", "30", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_local_training_gates_and_registers_with_full_lineage(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    code, summary = _run_cli(capsys, "--workdir", str(tmp_path))
    assert code == 0
    assert summary["status"] == "succeeded"
    gate = summary["gate"]
    assert gate["metric"] == "auc" and gate["passed"] is True and gate["value"] >= gate["threshold"] == 0.95
    package = summary["model_package"]
    assert package["version"] == 1
    assert package["stage"] == "Development"
    assert package["approval_status"] == "PendingManualApproval"
    for key in LINEAGE_KEYS:
        assert package["metadata"][key], key
    assert package["metadata"]["data_sha256"] == summary["lineage"]["data_version"]["sha256"]
    assert package["metadata"]["quality_gate_passed"] == "true"
    assert summary["data_uri"] == f"s3://mlops-dev-data/training/{MODEL}/breast_cancer.csv"


def test_degraded_data_fails_the_gate_and_registers_nothing(tmp_path: Path) -> None:
    config = model_config("dev", MODEL)
    clean = write_breast_cancer_csv(tmp_path / "clean.csv")
    degraded = shuffle_labels(clean, tmp_path / "degraded.csv", label="target", seed=3)
    with mock_aws():
        env = provision(config)
        outcome = train_local(env, data_csv=degraded, workdir=tmp_path / "run", num_round=30)
        packages = env.client("sagemaker").list_model_packages(ModelPackageGroupName=env.model_package_group)
    assert outcome.run.status == "failed_gate"
    assert outcome.model_package is None
    assert outcome.run.gate is not None and outcome.run.gate.passed is False
    assert packages["ModelPackageSummaryList"] == []


def test_bad_data_fails_validation_with_a_named_problem(tmp_path: Path) -> None:
    config = model_config("dev", MODEL)
    clean = write_breast_cancer_csv(tmp_path / "clean.csv")
    lines = clean.read_text().splitlines()
    header = lines[0].split(",")
    dropped = header.index("mean radius")
    broken = [",".join(v for i, v in enumerate(line.split(",")) if i != dropped) for line in lines]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(broken) + "\n")
    with mock_aws():
        outcome = train_local(provision(config), data_csv=bad, workdir=tmp_path / "run", num_round=5)
    assert outcome.run.status == "failed_validation"
    assert outcome.model_package is None
    problems = outcome.to_dict()["validation"]["violations"]
    assert any(v["feature"] == "mean radius" for v in problems)


def test_missing_data_file_is_an_operator_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = cli.main(["train", "--local", "--model", MODEL, "--data", str(tmp_path / "nope.csv")])
    assert code == 2
    assert "is not a file" in capsys.readouterr().err


def test_aws_mode_starts_the_deployed_pipeline_with_lineage_parameters() -> None:
    config = model_config("dev", MODEL)
    with mock_aws():
        env = provision(config)
        sagemaker = env.client("sagemaker")
        sagemaker.create_pipeline(PipelineName=pipeline_name(config), RoleArn="arn:aws:iam::123456789012:role/p",
                                  PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}))
        resources = load_resources("dev", boto3.client("ssm", region_name=config.region)).for_model(MODEL)
        started = start_pipeline(config=config, resources=resources, sagemaker=sagemaker)
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=started["pipeline_execution_arn"])
    assert started["parameters"]["DataUri"] == f"s3://mlops-dev-data/training/{MODEL}/"
    assert started["parameters"]["ConfigHash"] == config_hash(config)
    assert len(started["parameters"]["GitCommit"]) >= 7
    assert execution["PipelineExecutionArn"] == started["pipeline_execution_arn"]
