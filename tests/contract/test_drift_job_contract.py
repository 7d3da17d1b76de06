"""`monitoring.drift.engine: processing`: the sharded job the drift Lambda starts, run in the contract container.

The drift Lambda's own code (`start_processing_job`, against moto) plans the window and creates the job; each of
two instances' inputs is then laid out as SageMaker would (S3Prefix objects by name, ManifestFile entries by their
key below the manifest's prefix, half of the ShardedByS3Key inputs' objects each), the code bundle is the
synthesized assembly's step-code asset under its uploaded name, and the job's ContainerEntrypoint +
ContainerArguments run with the image's Python and pins (pandas 2.2.3, numpy 2.1.0). The instances' outputs go
to their S3Uris, and the Lambda's merge must give the one-pass engine's report bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from lambdas.drift_monitor.settings import settings_from_environment
from mlcore.drift.capture import build_capture_record
from mlcore.drift.window import Window
from mlplatform.monitoring.monitor_flow import MonitorClients, MonitorOutcome, monitor_endpoint
from mlplatform.monitoring.processing_job import ProcessingJobSettings, finish_sharded_job, start_processing_job
from tests.contract.container import Container, fail_with_logs
from tests.contract.synthesized import SynthesizedTraining
from tests.functional import drift_monitor_testkit as kit

JOB = ProcessingJobSettings(role_arn="arn:aws:iam::123456789012:role/drift-job",
                            image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0",
                            code_uri="", instance_type="ml.m5.xlarge",
                            kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k")
INSTANCES = 2


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_DEFAULT_REGION", kit.REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


def _comparable(report: dict[str, Any]) -> str:
    variants = {n: {k: v for k, v in item.items() if k != "partials"} for n, item in report["variants"].items()}
    return json.dumps({**report, "variants": variants, "generated_at": None, "html_reports": None, "job": None},
                      sort_keys=True)


def test_the_sharded_drift_job_runs_from_its_own_request(aws: None, training: SynthesizedTraining,
                                                         tmp_path: Path) -> None:
    code = next(i for i in training.definition["Steps"][0]["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
    asset = training.asset_for_uri(code["S3Input"]["S3Uri"])
    assert asset is not None
    job_settings = dataclasses.replace(JOB, code_uri=code["S3Input"]["S3Uri"])

    made = kit.provision(variants=("Champion",), registered={"Champion": {}})
    rows = kit.traffic_rows(240)
    for part in range(4):  # four objects: each instance gets two
        kit.put_capture(made["s3"], "Champion", [kit.csv_line([r], [0.4], event_id=f"c{part}-{i}")
                                                 for i, r in enumerate(rows[part::4])], name=f"part-{part}.jsonl")
    # Fallback answers in the inference API's prediction log (endpoint answers there are skipped: data capture
    # has them already).
    kit.put_log(made["s3"], [json.dumps(build_capture_record(
        rows=[r], probabilities=[0.3], inference_time=kit.WINDOW_END - timedelta(hours=3), event_id=f"l{i}",
        custom={"source": "fallback_model", "model_version": "1"})) for i, r in enumerate(rows[:30])])
    window = Window(start=kit.WINDOW_END - timedelta(hours=24), end=kit.WINDOW_END)
    clients = MonitorClients(s3=made["s3"], sagemaker=made["sagemaker"], ssm=made["ssm"])
    one_pass = monitor_endpoint(settings_from_environment(kit.environment()), clients, window=window,
                                now=kit.WINDOW_END).report
    settings = settings_from_environment(kit.environment(DRIFT_ENGINE="processing"))
    started = start_processing_job(settings, job_settings, clients, window=window, now=kit.WINDOW_END)
    job = made["sagemaker"].describe_processing_job(ProcessingJobName=started["started"])
    plan_key = f"drift-reports/{kit.ENDPOINT}/2025/03/02/06/manifests/plan.json"
    plan = json.loads(made["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=plan_key)["Body"].read())
    made["s3"].put_object(Bucket=kit.REPORT_BUCKET, Key=plan_key, Body=json.dumps({**plan, "instances": INSTANCES}))

    summaries = []
    for instance in range(INSTANCES):
        container = Container(tmp_path / f"drift-job-{instance}")
        kit.lay_out_job_inputs(made["s3"], job, container.root, reroot=container.reroot,
                               files={"code": asset.source}, shard=(instance, INSTANCES))
        config = container.path("/opt/ml/config/resourceconfig.json")
        config.parent.mkdir(parents=True, exist_ok=True)
        hosts = [f"algo-{n + 1}" for n in range(INSTANCES)]
        config.write_text(json.dumps({"current_host": hosts[instance], "hosts": hosts}))
        for output in job["ProcessingOutputConfig"]["Outputs"]:
            container.path(output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        app = job["AppSpecification"]
        argv = [container.reroot(part) for part in app["ContainerEntrypoint"] + app["ContainerArguments"]]
        result = container.run(argv, env=job.get("Environment", {}))
        assert result.returncode == 0, fail_with_logs(result, f"drift job instance {instance}")
        kit.upload_job_outputs(made["s3"], job, reroot=container.reroot)
        summaries.append(f"drift-reports/{kit.ENDPOINT}/2025/03/02/06/shards/{hosts[instance]}.json")

    merged = finish_sharded_job(settings, clients, key=summaries[-1], now=kit.WINDOW_END)
    assert isinstance(merged, MonitorOutcome)
    champion = merged.report["variants"]["Champion"]
    assert champion["status"] == "analysed"
    assert champion["drift"]["rows"] == 270  # the capture and the prediction log, both read in the job
    assert champion["partials"]["merged"] == 5 and champion["partials"]["missing"] == 0
    assert merged.report["job"]["shards"] == ["algo-1", "algo-2"]
    # pandas 2.2.3 and numpy 2.1 in the container, pandas 3.1 and numpy 2.4 here: the same report, bit for bit
    assert _comparable(merged.report) == _comparable(one_pass)
