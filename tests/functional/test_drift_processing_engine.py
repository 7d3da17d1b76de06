"""engine 'processing': the Lambda plans the window, writes manifests and starts the same code as a job;
the job's entry point then analyses the manifest's files exactly as the Lambda would."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from moto import mock_aws

from lambdas.drift_monitor.settings import settings_from_environment
from mlcore.drift.window import Window
from mlplatform.monitoring.monitor_flow import MonitorClients
from mlplatform.monitoring.processing_job import ProcessingJobSettings, job_name, start_processing_job
from tests.api_rules.shapes import validate
from tests.functional import drift_monitor_testkit as kit

REPO = Path(__file__).resolve().parents[2]
JOB = ProcessingJobSettings(role_arn="arn:aws:iam::123456789012:role/drift-job",
                            image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0",
                            code_uri="s3://cdk-hnb659fds-assets-123456789012-eu-west-1/0123abcd.gz",
                            instance_type="ml.m5.xlarge",
                            kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_DEFAULT_REGION", kit.REGION)
    with mock_aws():
        yield


def test_schedule_starts_one_job_over_the_windows_objects(aws: None) -> None:
    made = kit.provision(variants=("Champion", "Challenger"),
                         registered={"Champion": {}, "Challenger": {"no_baseline": True}})
    rows = kit.traffic_rows(60)
    keys = [kit.put_capture(made["s3"], "Champion", [kit.csv_line([r], [0.4], event_id=f"e{i}") for i, r in
                                                      enumerate(rows)], name=f"part-{n}.jsonl") for n in range(2)]
    kit.put_capture(made["s3"], "Champion", ["{}"], name="too-old.jsonl", hour="2025/02/20/03")
    settings = settings_from_environment(kit.environment(DRIFT_ENGINE="processing"))
    window = Window(start=kit.WINDOW_END - timedelta(hours=24), end=kit.WINDOW_END)
    clients = MonitorClients(s3=made["s3"], sagemaker=made["sagemaker"], ssm=made["ssm"])

    started = start_processing_job(settings, JOB, clients, window=window, now=kit.WINDOW_END)

    assert started["started"] == job_name(kit.ENDPOINT, window)
    assert list(started["skipped"]) == ["Challenger"]  # registered without a baseline: nothing to compare
    job = made["sagemaker"].describe_processing_job(ProcessingJobName=started["started"])
    inputs = {i["InputName"]: i["S3Input"] for i in job["ProcessingInputs"]}
    assert inputs["Champion-capture"]["S3DataType"] == "ManifestFile"
    bucket, _, key = inputs["Champion-capture"]["S3Uri"].removeprefix("s3://").partition("/")
    manifest = json.loads(made["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    assert manifest[0] == {"prefix": f"s3://{kit.CAPTURE_BUCKET}/"}
    assert sorted(manifest[1:]) == sorted(keys)  # the window's objects, not the old one
    assert inputs["Champion-baseline"]["S3Uri"].endswith("/pipelines/exec-champion/Baseline/baseline/baseline.json")
    arguments = job["AppSpecification"]["ContainerArguments"]
    assert "Champion=/opt/ml/processing/input/Champion/baseline/baseline.json:" \
           "/opt/ml/processing/input/Champion/capture" in arguments
    assert job["NetworkConfig"]["EnableNetworkIsolation"] is True


def test_the_prediction_log_is_analysed_by_the_job_too(aws: None) -> None:
    """Engine parity: the inference API's prediction log joins the Champion's traffic in the job as in the Lambda."""
    made = kit.provision(variants=("Champion",), registered={"Champion": {}})
    rows = kit.traffic_rows(20)
    kit.put_capture(made["s3"], "Champion", [kit.csv_line([r], [0.4], event_id=f"c{i}") for i, r in enumerate(rows)])
    log_key = kit.put_log(made["s3"], [kit.csv_line([r], [0.3], event_id=f"l{i}") for i, r in enumerate(rows)])
    settings = settings_from_environment(kit.environment(DRIFT_ENGINE="processing"))
    window = Window(start=kit.WINDOW_END - timedelta(hours=24), end=kit.WINDOW_END)
    clients = MonitorClients(s3=made["s3"], sagemaker=made["sagemaker"], ssm=made["ssm"])

    started = start_processing_job(settings, JOB, clients, window=window, now=kit.WINDOW_END)

    job = made["sagemaker"].describe_processing_job(ProcessingJobName=started["started"])
    inputs = {i["InputName"]: i["S3Input"] for i in job["ProcessingInputs"]}
    bucket, _, key = inputs["prediction-log"]["S3Uri"].removeprefix("s3://").partition("/")
    assert json.loads(made["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())[1:] == [log_key]
    arguments = job["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--prediction-log") + 1] == inputs["prediction-log"]["LocalPath"]
    assert arguments[arguments.index("--prediction-log-variant") + 1] == "Champion"


def test_request_is_a_valid_create_processing_job() -> None:
    from mlplatform.monitoring.processing_job import processing_job_request

    request = processing_job_request(name="mlops-prod-drift-2026112606", job=JOB, inputs=[], arguments=["--out", "x"],
                                     output_uri="s3://reports/drift-reports/mlops-prod/2026/11/26/06/")
    assert validate("sagemaker", "CreateProcessingJob", request) == []


def test_the_job_entry_point_needs_no_lambda_only_packages() -> None:
    """The XGBoost container has numpy, pandas (the pipeline's step scripts use it there) and boto3, but not
    Powertools or scipy: the entry must not import those."""
    code = ("import sys, pipelines.processing.drift_entry; "
            "bad = [m for m in sys.modules if m.startswith(('aws_lambda_powertools', 'scipy'))]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_job_joins_ground_truth_exactly_as_the_lambda_does(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """Engine parity: the same traffic and labels give the same quality verdicts in the Lambda and the job."""
    import numpy as np

    from mlcore.drift.run import REPORT_FILE
    from mlplatform.monitoring.monitor_flow import monitor_endpoint
    from pipelines.processing import drift_entry

    environment = kit.environment(DRIFT_ENGINE="processing", GROUND_TRUTH_PREFIX=kit.LABELS_PREFIX,
                                  QUALITY_MARGIN="0.05", QUALITY_MIN_ROWS="100")
    monkeypatch.setenv("AWS_DEFAULT_REGION", kit.REGION)
    with mock_aws():
        made = kit.provision(registered={"Champion": {"quality": kit.quality_document(auc=0.9)},
                                         "Challenger": {"quality": kit.quality_document(auc=0.9)}})
        rng = np.random.default_rng(7)
        truth = rng.random(300) < 0.4
        good = np.where(truth, rng.beta(5, 2, 300), rng.beta(2, 5, 300))
        rows = kit.traffic_rows(300)
        for variant, probabilities in (("Champion", good), ("Challenger", rng.random(300))):
            kit.put_capture(made["s3"], variant, [
                kit.csv_line([rows[i]], [round(float(probabilities[i]), 6)], event_id=f"{variant}-{i}",
                             inference_id=f"{variant}-{i}") for i in range(300)])
            labels = ["inference_id,label,time"] + [f"{variant}-{i},{'yes' if truth[i] else 'no'},2025-03-02T05:00:00Z"
                                                    for i in range(300)]
            made["s3"].put_object(Bucket=kit.CAPTURE_BUCKET, Key=f"{kit.LABELS_PREFIX}/2025/03/02/05/{variant}.csv",
                                  Body="\n".join(labels).encode())
        settings = settings_from_environment(environment)
        window = Window(start=kit.WINDOW_END - timedelta(hours=24), end=kit.WINDOW_END)
        clients = MonitorClients(s3=made["s3"], sagemaker=made["sagemaker"], ssm=made["ssm"])
        lambda_outcome = monitor_endpoint(settings, clients, window=window, now=kit.WINDOW_END)
        lambda_key = lambda_outcome.report_uri.split("/", 3)[3]
        lambda_quality = json.loads(made["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=lambda_key)["Body"]
                                    .read())["quality"]
        started = start_processing_job(settings, JOB, clients, window=window, now=kit.WINDOW_END)
        job = made["sagemaker"].describe_processing_job(ProcessingJobName=started["started"])
        # With ground truth the quality settings alone are longer than a ContainerArguments item may be (256):
        # they travel as a file of the "settings" input.
        assert all(len(argument) <= 256 for argument in job["AppSpecification"]["ContainerArguments"])
        root = tmp_path / "job"

        def reroot(path: str) -> str:
            return path.replace("/opt/ml", str(root))

        kit.lay_out_job_inputs(made["s3"], job, root, reroot=reroot, files={"code": Path(__file__)})
    arguments = [reroot(a) for a in job["AppSpecification"]["ContainerArguments"]]
    assert drift_entry.main([*arguments, "--workers", "1"]) == 0
    out = Path(arguments[arguments.index("--out") + 1])
    job_quality = json.loads((out / REPORT_FILE).read_text())["quality"]

    assert job_quality["labels"]["rows"] == lambda_quality["labels"]["rows"] == 600
    for variant in ("Champion", "Challenger"):
        ours, theirs = job_quality["variants"][variant], lambda_quality["variants"][variant]
        for key in ("labelled_rows", "degraded", "drop", "metrics"):
            assert ours[key] == theirs[key], (variant, key)
    assert job_quality["variants"]["Challenger"]["degraded"] is True
