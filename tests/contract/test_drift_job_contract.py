"""`monitoring.drift.engine: processing`: the job the drift Lambda starts, run in the contract container.

The drift Lambda's own code (`start_processing_job`, against moto) plans the window and creates the job; the
job's inputs are then laid out as SageMaker would (S3Prefix objects by name, ManifestFile entries by their
key below the manifest's prefix), the code bundle is the synthesized assembly's step-code asset under its
uploaded name, and the job's ContainerEntrypoint + ContainerArguments run with the image's Python and pins.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from moto import mock_aws

from lambdas.drift_monitor.settings import settings_from_environment
from mlcore.drift.capture import build_capture_record
from mlcore.drift.run import REPORT_FILE
from mlcore.drift.window import Window
from mlplatform.monitoring.monitor_flow import MonitorClients
from mlplatform.monitoring.processing_job import ProcessingJobSettings, start_processing_job
from tests.contract.container import Container, fail_with_logs
from tests.contract.synthesized import SynthesizedTraining
from tests.functional import drift_monitor_testkit as kit

JOB = ProcessingJobSettings(role_arn="arn:aws:iam::123456789012:role/drift-job",
                            image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0",
                            code_uri="", instance_type="ml.m5.xlarge",
                            kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_DEFAULT_REGION", kit.REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


def test_the_drift_job_runs_from_its_own_request(aws: None, training: SynthesizedTraining, tmp_path: Path) -> None:
    code = next(i for i in training.definition["Steps"][0]["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
    asset = training.asset_for_uri(code["S3Input"]["S3Uri"])
    assert asset is not None
    job_settings = dataclasses.replace(JOB, code_uri=code["S3Input"]["S3Uri"])

    made = kit.provision(variants=("Champion",), registered={"Champion": {}})
    rows = kit.traffic_rows(120)
    kit.put_capture(made["s3"], "Champion", [kit.csv_line([r], [0.4], event_id=f"c{i}") for i, r in enumerate(rows)])
    # Fallback answers in the inference API's prediction log (endpoint answers there are skipped: data capture
    # has them already).
    kit.put_log(made["s3"], [json.dumps(build_capture_record(
        rows=[r], probabilities=[0.3], inference_time=kit.WINDOW_END - timedelta(hours=3), event_id=f"l{i}",
        custom={"source": "fallback_model", "model_version": "1"})) for i, r in enumerate(rows[:30])])
    settings = settings_from_environment(kit.environment(DRIFT_ENGINE="processing"))
    window = Window(start=kit.WINDOW_END - timedelta(hours=24), end=kit.WINDOW_END)
    clients = MonitorClients(s3=made["s3"], sagemaker=made["sagemaker"], ssm=made["ssm"])
    started = start_processing_job(settings, job_settings, clients, window=window, now=kit.WINDOW_END)
    job = made["sagemaker"].describe_processing_job(ProcessingJobName=started["started"])

    container = Container(tmp_path / "drift-job")
    kit.lay_out_job_inputs(made["s3"], job, container.root, reroot=container.reroot,
                           files={"code": asset.source})
    output = container.path(job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"])
    output.mkdir(parents=True, exist_ok=True)
    app = job["AppSpecification"]
    argv = [container.reroot(part) for part in app["ContainerEntrypoint"] + app["ContainerArguments"]]
    result = container.run(argv, env=job.get("Environment", {}))
    assert result.returncode == 0, fail_with_logs(result, "drift job")

    report = json.loads((output / REPORT_FILE).read_text())
    champion = report["variants"]["Champion"]
    assert champion["status"] == "analysed"
    assert champion["drift"]["rows"] == 150  # the capture and the prediction log, both read in the job
    assert (output / "Champion.html").is_file()
