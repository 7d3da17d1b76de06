"""engine 'processing': the Lambda plans the window and starts a Processing job over N instances (ShardedByS3Key)
that writes the same partial results as the per-object function; when every instance's summary has landed the
Lambda merges them into the report the one-pass engine writes (ground truth and the prediction log included)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import botocore.session
import numpy as np
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from lambdas.drift_monitor.settings import settings_from_environment
from mlcore.drift.window import Window
from mlplatform.monitoring.monitor_flow import MonitorClients, MonitorOutcome, monitor_endpoint
from mlplatform.monitoring.processing_job import (
    BYTES_PER_INSTANCE,
    MAX_INPUTS,
    ProcessingJobSettings,
    finish_sharded_job,
    job_name,
    shard_plan,
    start_processing_job,
)
from pipelines.processing import drift_entry
from tests.functional import drift_monitor_testkit as kit

REPO = Path(__file__).resolve().parents[2]
JOB = ProcessingJobSettings(role_arn="arn:aws:iam::123456789012:role/drift-job",
                            image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0",
                            code_uri="s3://cdk-hnb659fds-assets-123456789012-eu-west-1/0123abcd.gz",
                            instance_type="ml.m5.xlarge",
                            kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k", max_instances=3)
WINDOW = Window(start=kit.WINDOW_END - timedelta(hours=24), end=kit.WINDOW_END)
GIB = 2**30


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_DEFAULT_REGION", kit.REGION)
    with mock_aws():
        yield


def _inputs(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["InputName"]: i["S3Input"] for i in job["ProcessingInputs"]}


def test_schedule_starts_one_sharded_job_over_the_windows_objects(aws: None) -> None:
    made = kit.provision(variants=("Champion", "Challenger"),
                         registered={"Champion": {}, "Challenger": {"no_baseline": True}})
    rows = kit.traffic_rows(60)
    keys = [kit.put_capture(made["s3"], "Champion", [kit.csv_line([r], [0.4], event_id=f"e{i}") for i, r in
                                                      enumerate(rows)], name=f"part-{n}.jsonl") for n in range(2)]
    kit.put_capture(made["s3"], "Champion", ["{}"], name="too-old.jsonl", hour="2025/02/20/03")
    settings = settings_from_environment(kit.environment(DRIFT_ENGINE="processing"))
    clients = MonitorClients(s3=made["s3"], sagemaker=made["sagemaker"], ssm=made["ssm"])

    started = start_processing_job(settings, JOB, clients, window=WINDOW, now=kit.WINDOW_END)

    assert started["started"] == job_name(kit.ENDPOINT, WINDOW)
    assert (started["instances"], started["volume_gb"]) == (1, 10)  # a small window: one instance, the least volume
    assert list(started["skipped"]) == ["Challenger"]  # registered without a baseline: nothing to compare
    job = made["sagemaker"].describe_processing_job(ProcessingJobName=started["started"])
    inputs = _inputs(job)
    capture = inputs["Champion-capture"]
    assert (capture["S3DataType"], capture["S3DataDistributionType"]) == ("ManifestFile", "ShardedByS3Key")
    assert inputs["Champion-baseline"]["S3DataDistributionType"] == "FullyReplicated"
    bucket, _, key = capture["S3Uri"].removeprefix("s3://").partition("/")
    manifest = json.loads(made["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    assert manifest[0] == {"prefix": f"s3://{kit.CAPTURE_BUCKET}/"}
    assert sorted(manifest[1:]) == sorted(keys)  # the window's objects, not the old one
    arguments = job["AppSpecification"]["ContainerArguments"]
    assert arguments[0] == "--shard"
    assert "Champion=/opt/ml/processing/input/Champion/baseline/baseline.json:" \
           "/opt/ml/processing/input/Champion/capture" in arguments
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in job["ProcessingOutputConfig"]["Outputs"]}
    assert outputs == {"partials": f"s3://{kit.REPORT_BUCKET}/drift-partials",
                       "shards": f"s3://{kit.REPORT_BUCKET}/drift-reports/{kit.ENDPOINT}/2025/03/02/06/shards"}
    assert job["NetworkConfig"]["EnableNetworkIsolation"] is True


def test_instances_and_volume_come_from_the_windows_size() -> None:
    # 100 objects of 1 GiB: one instance per 20 GiB; the heaviest share SageMaker can hand one of them (1/N of the
    # objects) is 20 of the largest: 20 GiB + 10 % + 2 GB for the code and the outputs
    assert shard_plan([[GIB] * 100], max_instances=10) == (5, 24)
    assert shard_plan([[GIB] * 100], max_instances=2) == (2, 57)  # capped: bigger shares, bigger volumes
    assert shard_plan([[50 * GIB, GIB]], max_instances=10) == (2, 57)  # at most one instance per object
    assert shard_plan([[10, 20]], max_instances=10) == (1, 10)
    # several sharded inputs (capture, prediction log, delayed predictions) add their heaviest shares
    instances, volume = shard_plan([[GIB] * 40, [GIB // 2] * 40], max_instances=10, replicated_bytes=2 * GIB)
    assert instances == 3 and volume == -(-(14 + 7 + 2) * 110 // 100) + 2
    assert BYTES_PER_INSTANCE == 20 * GIB


def _check_maxima(value: Any, shape: Any, path: str = "") -> list[str]:
    """botocore's ParamValidator checks minima only; the service model states the maxima too."""
    problems = []
    limit = shape.metadata.get("max")
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                problems += _check_maxima(value[name], member, f"{path}.{name}")
    elif shape.type_name == "list":
        if limit is not None and len(value) > limit:
            problems.append(f"{path}: {len(value)} items > {limit}")
        for index, item in enumerate(value):
            problems += _check_maxima(item, shape.member, f"{path}[{index}]")
    elif shape.type_name == "map":
        if limit is not None and len(value) > limit:
            problems.append(f"{path}: {len(value)} entries > {limit}")
    elif shape.type_name in ("integer", "long") and limit is not None and value > limit:
        problems.append(f"{path}: {value} > {limit}")
    elif shape.type_name == "string" and limit is not None and len(value) > limit:
        problems.append(f"{path}: {len(value)} characters > {limit}")
    return problems


def test_every_request_the_planner_makes_is_a_valid_create_processing_job(aws: None) -> None:
    """The largest plan (two variants, prediction log, labels with a delay) against botocore's shape, maxima
    included (at most 10 inputs; instance count and volume in range)."""
    made = kit.provision(registered={"Champion": {}, "Challenger": {}})
    for variant in ("Champion", "Challenger"):
        kit.put_capture(made["s3"], variant, [kit.csv_line([kit.traffic_rows(1)[0]], [0.4], event_id="e")])
        kit.put_capture(made["s3"], variant, [kit.csv_line([kit.traffic_rows(1)[0]], [0.4], event_id="d")],
                        hour="2025/03/01/01")
    kit.put_log(made["s3"], [kit.csv_line([kit.traffic_rows(1)[0]], [0.3], event_id="l")])
    made["s3"].put_object(Bucket=kit.CAPTURE_BUCKET, Key=f"{kit.LABELS_PREFIX}/2025/03/02/05/l.csv",
                          Body=b"inference_id,label\nx,yes\n")
    settings = settings_from_environment(kit.environment(
        DRIFT_ENGINE="processing", GROUND_TRUTH_PREFIX=kit.LABELS_PREFIX, GROUND_TRUTH_DELAY_HOURS="6"))
    clients = MonitorClients(s3=made["s3"], sagemaker=made["sagemaker"], ssm=made["ssm"])
    captured: list[dict[str, Any]] = []
    original = made["sagemaker"].create_processing_job
    made["sagemaker"].create_processing_job = lambda **request: (captured.append(request), original(**request))[1]
    start_processing_job(settings, JOB, clients, window=WINDOW, now=kit.WINDOW_END)
    (request,) = captured
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model(
        "CreateProcessingJob").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert _check_maxima(request, shape) == []
    assert len(request["ProcessingInputs"]) == MAX_INPUTS  # the largest plan uses every input there is
    assert _check_maxima({"ProcessingInputs": request["ProcessingInputs"] * 2}, shape) != []  # the check can fail


def _run_instances(s3: Any, job: dict[str, Any], tmp_path: Path, instances: int) -> list[str]:
    """Each instance as SageMaker runs it: its share of the sharded inputs, the replicated ones, the entry's
    arguments; its outputs uploaded at its end. Returns the shard summaries' keys in the order they landed."""
    landed = []
    for instance in range(instances):
        root = tmp_path / f"instance-{instance}"

        def reroot(path: str, root: Path = root) -> str:
            return path.replace("/opt/ml", str(root))

        kit.lay_out_job_inputs(s3, job, root, reroot=reroot, files={"code": Path(__file__)},
                               shard=(instance, instances))
        arguments = [reroot(a) for a in job["AppSpecification"]["ContainerArguments"]]
        assert drift_entry.main([*arguments, "--workers", "2", "--host", f"algo-{instance + 1}"]) == 0
        kit.upload_job_outputs(s3, job, reroot=reroot)
        shards = job["ProcessingOutputConfig"]["Outputs"][1]["S3Output"]["S3Uri"]
        landed.append(f"{shards.split('/', 3)[3]}/algo-{instance + 1}.json")
        shutil.rmtree(root)
    return landed


def _comparable(report: dict[str, Any]) -> str:
    variants = {n: {k: v for k, v in item.items() if k != "partials"} for n, item in report["variants"].items()}
    return json.dumps({**report, "variants": variants, "generated_at": None, "html_reports": None, "job": None},
                      sort_keys=True)


@pytest.mark.parametrize("delay", ["0", "6"])
def test_a_sharded_job_merges_into_the_one_pass_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       delay: str) -> None:
    """Two instances, each with half the objects: capture of two variants, the prediction log and ground truth
    (joined in the drift pass, or with a delay over an earlier window). Until the second summary lands the Lambda
    waits; then its report equals the one-pass engine's bit for bit, quality verdicts included."""
    environment = kit.environment(GROUND_TRUTH_PREFIX=kit.LABELS_PREFIX, GROUND_TRUTH_DELAY_HOURS=delay,
                                  QUALITY_MIN_ROWS="100")
    monkeypatch.setenv("AWS_DEFAULT_REGION", kit.REGION)
    with mock_aws():
        made = kit.provision(registered={"Champion": {"quality": kit.quality_document(auc=0.9)},
                                         "Challenger": {"quality": kit.quality_document(auc=0.9)}})
        rng = np.random.default_rng(7)
        truth = rng.random(300) < 0.4
        good = np.where(truth, rng.beta(5, 2, 300), rng.beta(2, 5, 300))
        rows = kit.traffic_rows(300)
        hours = ["2025/03/02/03", "2025/03/01/23"] if delay == "0" else ["2025/03/01/22", "2025/03/01/23"]
        for variant, probabilities in (("Champion", good), ("Challenger", rng.random(300))):
            for part in range(3):  # three objects per variant, over two hours
                kit.put_capture(made["s3"], variant, [
                    kit.csv_line([rows[i]], [round(float(probabilities[i]), 6)], event_id=f"{variant}-{i}",
                                 inference_id=f"{variant}-{i}") for i in range(part, 300, 3)],
                    name=f"part-{part}.jsonl", hour=hours[part % 2])
                kit.put_capture(made["s3"], variant, [kit.csv_line([r], [0.5], event_id=f"{variant}-now-{i}")
                                                      for i, r in enumerate(rows[:90])], name=f"now-{part}.jsonl")
            labels = ["inference_id,label,time"] + [f"{variant}-{i},{'yes' if truth[i] else 'no'},2025-03-02T05:00:00Z"
                                                    for i in range(300)]
            made["s3"].put_object(Bucket=kit.CAPTURE_BUCKET, Key=f"{kit.LABELS_PREFIX}/2025/03/02/05/{variant}.csv",
                                  Body="\n".join(labels).encode())
        kit.put_log(made["s3"], [kit.log_line([rows[i]], [0.5], event_id=f"fallback-{i}", source="fallback_model",
                                              inference_id=f"Champion-{i}") for i in range(20)])
        clients = MonitorClients(s3=made["s3"], sagemaker=made["sagemaker"], ssm=made["ssm"])
        one_pass = monitor_endpoint(settings_from_environment(environment), clients, window=WINDOW,
                                    now=kit.WINDOW_END).report
        settings = settings_from_environment(kit.environment(
            DRIFT_ENGINE="processing", GROUND_TRUTH_PREFIX=kit.LABELS_PREFIX, GROUND_TRUTH_DELAY_HOURS=delay,
            QUALITY_MIN_ROWS="100"))
        started = start_processing_job(settings, JOB, clients, window=WINDOW, now=kit.WINDOW_END)
        job = made["sagemaker"].describe_processing_job(ProcessingJobName=started["started"])
        assert started["instances"] == 1  # a small window: one instance; run as two (the plan says so) to shard it
        plan_key = f"drift-reports/{kit.ENDPOINT}/2025/03/02/06/manifests/plan.json"
        plan = json.loads(made["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=plan_key)["Body"].read())
        made["s3"].put_object(Bucket=kit.REPORT_BUCKET, Key=plan_key, Body=json.dumps({**plan, "instances": 2}))
        first, second = _run_instances(made["s3"], job, tmp_path, 2)
        summary = made["s3"].get_object(Bucket=kit.REPORT_BUCKET, Key=second)["Body"].read()
        made["s3"].delete_object(Bucket=kit.REPORT_BUCKET, Key=second)  # the second instance has not ended yet
        waiting = finish_sharded_job(settings, clients, key=first, now=kit.WINDOW_END)
        made["s3"].put_object(Bucket=kit.REPORT_BUCKET, Key=second, Body=summary)
        merged = finish_sharded_job(settings, clients, key=second, now=kit.WINDOW_END)
        again = finish_sharded_job(settings, clients, key=second, now=kit.WINDOW_END)

    assert waiting == {"waiting": started["started"], "shards": 1, "instances": 2}
    assert isinstance(merged, MonitorOutcome)
    assert again == {"already_merged": started["started"]}  # a repeated event does not merge twice
    report = merged.report
    assert report["job"]["shards"] == ["algo-1", "algo-2"]
    assert _comparable(report) == _comparable(one_pass)
    assert report["quality"]["variants"]["Challenger"]["degraded"] is True
    assert report["quality"]["variants"]["Champion"]["labelled_rows"] == 300
    for variant in ("Champion", "Challenger"):
        book = report["variants"][variant]["partials"]
        assert (book["merged"], book["missing"], book["not_analysed"]) == (book["objects"], 0, 0)


def test_the_job_entry_point_needs_no_lambda_only_packages() -> None:
    """The XGBoost container has numpy, pandas (the pipeline's step scripts use it there) and boto3, but not
    Powertools or scipy: the entry must not import those."""
    code = ("import sys, pipelines.processing.drift_entry; "
            "bad = [m for m in sys.modules if m.startswith(('aws_lambda_powertools', 'scipy'))]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
