"""``monitoring.drift.engine: processing``: the scheduled Lambda plans the window and starts a SageMaker
Processing job that runs the same drift code (``pipelines.processing.drift_entry``) over it; when the job's report lands
under the report prefix, the same Lambda publishes its metrics (see ``handler``).

The Lambda lists the window's capture objects exactly as the in-Lambda run does and hands them to the job
as one S3 manifest per variant (``S3DataType: ManifestFile``), so both engines analyse the same objects.
The job runs in the XGBoost framework container (numpy, boto3) with the code bundle the training pipeline
uses, network-isolated and KMS-encrypted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlcore.drift.window import Window, endpoint_capture_prefix
from mlplatform.monitoring.capture_window import list_window_keys
from mlplatform.monitoring.monitor_flow import MonitorClients, label_spec
from mlplatform.monitoring.monitor_settings import DriftMonitorSettings
from mlplatform.monitoring.variant_models import VariantModel, endpoint_variants, resolve_variant_models
from mlsettings.instance_types import volume_kms_key
from mlsettings.vocabulary import GROUND_TRUTH_PREFIX

INPUT_ROOT = "/opt/ml/processing/input"
OUTPUT_DIR = "/opt/ml/processing/output"
CODE_DIR = f"{INPUT_ROOT}/code"
CODE_ROOT = "/opt/ml/code"
PREDICTION_LOG_DIR = f"{INPUT_ROOT}/prediction-log"
SETTINGS_DIR = f"{INPUT_ROOT}/settings"
GROUND_TRUTH_DIR = f"{INPUT_ROOT}/ground-truth"


@dataclass(frozen=True, kw_only=True)
class ProcessingJobSettings:
    """Where and as whom the job runs (``lambdas/drift_monitor/settings.py`` reads it from the environment)."""

    role_arn: str
    image_uri: str
    code_uri: str
    instance_type: str
    kms_key_arn: str
    volume_size_gb: int = 30
    max_runtime_seconds: int = 4 * 3600


def job_name(endpoint: str, window: Window) -> str:
    """One job per endpoint and window end; a retried schedule event finds the job already there."""
    return f"{endpoint}-drift-{window.end:%Y%m%d%H}"[:63]


def report_prefix(settings: DriftMonitorSettings, window: Window) -> str:
    return f"{settings.report_prefix}/{settings.endpoint_name}/{window.end:%Y/%m/%d/%H}/"


def start_processing_job(settings: DriftMonitorSettings, job: ProcessingJobSettings, clients: MonitorClients, *,
                         window: Window, now: datetime) -> dict[str, Any]:
    """Write the manifests and start the job; returns what was started and what was skipped, and why."""
    variants = endpoint_variants(clients.sagemaker, settings.endpoint_name)
    models = resolve_variant_models(sagemaker=clients.sagemaker, ssm=clients.ssm, s3=clients.s3,
                                    variants=variants, parameter_prefix=settings.variant_parameter_prefix)
    name = job_name(settings.endpoint_name, window)
    inputs: list[dict[str, Any]] = [_input("code", job.code_uri, CODE_DIR, "S3Prefix")]
    arguments = ["--endpoint", settings.endpoint_name, "--out", OUTPUT_DIR]
    job_settings: dict[str, Any] = {"thresholds": settings.thresholds.to_dict()}
    skipped: dict[str, str] = {}
    for model in models:
        if model.baseline_uri is None or model.baseline is None:
            skipped[model.variant] = model.skip_reason or "no baseline"
            continue
        prefix = endpoint_capture_prefix(settings.capture_prefix, settings.endpoint_name, model.variant)
        keys = list(list_window_keys(clients.s3, bucket=settings.capture_bucket, prefix=prefix, window=window))
        if not keys:
            skipped[model.variant] = "no captured traffic in the window"
            continue
        manifest_key = f"{report_prefix(settings, window)}manifests/{model.variant}.json"
        manifest = [{"prefix": f"s3://{settings.capture_bucket}/"}, *keys]
        clients.s3.put_object(Bucket=settings.report_bucket, Key=manifest_key,
                              Body=json.dumps(manifest).encode(), ContentType="application/json")
        local = f"{INPUT_ROOT}/{model.variant}"
        inputs.append(_input(f"{model.variant}-baseline", model.baseline_uri, f"{local}/baseline", "S3Prefix"))
        inputs.append(_input(f"{model.variant}-capture", f"s3://{settings.report_bucket}/{manifest_key}",
                             f"{local}/capture", "ManifestFile"))
        baseline_file = model.baseline_uri.rsplit("/", 1)[-1]
        arguments += ["--variant", f"{model.variant}={local}/baseline/{baseline_file}:{local}/capture"]
        if settings.prediction_log_prefix and model.variant == settings.prediction_log_variant:
            # The inference API's prediction log (fallback answers included) joins this variant's traffic, as in
            # the Lambda engine (monitor_flow.variant_plans).
            log_keys = list(list_window_keys(clients.s3, bucket=settings.capture_bucket,
                                             prefix=settings.prediction_log_prefix, window=window))
            if log_keys:
                inputs.append(_manifest_input(settings, clients, window, name="prediction-log",
                                              bucket=settings.capture_bucket, keys=log_keys,
                                              local_path=PREDICTION_LOG_DIR))
                arguments += ["--prediction-log", PREDICTION_LOG_DIR, "--prediction-log-variant", model.variant]
    if len(inputs) == 1:
        return {"engine": "processing", "started": None, "skipped": skipped}
    inputs, arguments = _ground_truth(settings, clients, models, window, inputs, arguments, skipped, job_settings)
    inputs, arguments = _settings_input(settings, clients, window, inputs, arguments, job_settings)
    request = processing_job_request(name=name, job=job, inputs=inputs, arguments=arguments,
                                     output_uri=f"s3://{settings.report_bucket}/{report_prefix(settings, window)}")
    try:
        clients.sagemaker.create_processing_job(**request)
    except clients.sagemaker.exceptions.ResourceInUse:
        return {"engine": "processing", "started": None, "already_running": name, "skipped": skipped}
    return {"engine": "processing", "started": name, "skipped": skipped, "window": window.to_dict(),
            "planned_at": now.isoformat()}


def _manifest_input(settings: DriftMonitorSettings, clients: MonitorClients, window: Window, *, name: str,
                    bucket: str, keys: list[str], local_path: str) -> dict[str, Any]:
    manifest_key = f"{report_prefix(settings, window)}manifests/{name}.json"
    clients.s3.put_object(Bucket=settings.report_bucket, Key=manifest_key,
                          Body=json.dumps([{"prefix": f"s3://{bucket}/"}, *keys]).encode(),
                          ContentType="application/json")
    return _input(name, f"s3://{settings.report_bucket}/{manifest_key}", local_path, "ManifestFile")


def _settings_input(settings: DriftMonitorSettings, clients: MonitorClients, window: Window,
                    inputs: list[dict[str, Any]], arguments: list[str], job_settings: Mapping[str, Any]
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """The run's JSON settings (thresholds, ground-truth quality) as one file per key in an input of their own:
    a ContainerArguments item takes at most 256 characters (botocore's ContainerArgument), which the thresholds
    alone nearly fill and the quality settings exceed."""
    prefix = f"{report_prefix(settings, window)}settings/"
    for name, value in job_settings.items():
        clients.s3.put_object(Bucket=settings.report_bucket, Key=f"{prefix}{name}.json",
                              Body=json.dumps(value).encode(), ContentType="application/json")
        arguments = [*arguments, f"--{name}", f"@{SETTINGS_DIR}/{name}.json"]
    return [*inputs, _input("settings", f"s3://{settings.report_bucket}/{prefix}", SETTINGS_DIR, "S3Prefix")], \
        arguments


def _ground_truth(settings: DriftMonitorSettings, clients: MonitorClients, models: list[VariantModel],
                  window: Window, inputs: list[dict[str, Any]], arguments: list[str],
                  skipped: Mapping[str, str], job_settings: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Engine parity with the Lambda (monitor_flow.monitor_endpoint): the labels that arrived for the
    predictions of the delayed window, those predictions' capture, and each variant's registered quality."""
    if not (settings.ground_truth_prefix and settings.ground_truth_bucket) or label_spec(models) is None:
        return inputs, arguments
    quality_window = window.shifted(settings.ground_truth_delay_hours)
    label_window = Window(start=quality_window.start, end=window.end)
    keys = list(list_window_keys(clients.s3, bucket=settings.ground_truth_bucket,
                                 prefix=settings.ground_truth_prefix, window=label_window))
    inputs = [*inputs, _manifest_input(settings, clients, window, name=GROUND_TRUTH_PREFIX,
                                       bucket=settings.ground_truth_bucket, keys=keys, local_path=GROUND_TRUTH_DIR)]
    arguments = [*arguments, "--ground-truth", GROUND_TRUTH_DIR]
    job_settings["quality"] = {
        "metric": settings.quality_metric, "margin": settings.quality_margin, "min_rows": settings.quality_min_rows,
        "labels_window": label_window.to_dict(), "predictions_window": quality_window.to_dict(),
        "label_objects": len(keys),
        "registered": {m.variant: {"metrics": m.registered_quality, "problem": m.quality_problem}
                       for m in models if m.variant not in skipped}}
    if settings.ground_truth_delay_hours:
        for model in models:
            if model.variant in skipped:
                continue
            prefix = endpoint_capture_prefix(settings.capture_prefix, settings.endpoint_name, model.variant)
            capture = list(list_window_keys(clients.s3, bucket=settings.capture_bucket, prefix=prefix,
                                            window=quality_window))
            local = f"{INPUT_ROOT}/{model.variant}/quality-capture"
            inputs.append(_manifest_input(settings, clients, window, name=f"{model.variant}-quality-capture",
                                          bucket=settings.capture_bucket, keys=capture, local_path=local))
            arguments += ["--quality-capture", f"{model.variant}={local}"]
    return inputs, arguments


def processing_job_request(*, name: str, job: ProcessingJobSettings, inputs: list[dict[str, Any]],
                           arguments: list[str], output_uri: str) -> dict[str, Any]:
    # An S3Prefix input of one object lands under the object's own name: CDK names the bundle asset
    # <sha256>.gz (it keeps only the last extension), so name the file rather than glob for *.tar.gz.
    code_file = job.code_uri.rsplit("/", 1)[-1]
    entrypoint = (f"set -e; mkdir -p {CODE_ROOT}; tar -xzf {CODE_DIR}/{code_file} -C {CODE_ROOT}; cd {CODE_ROOT}; "
                  'exec python3 -m pipelines.processing.drift_entry "$@"')
    return {
        "ProcessingJobName": name,
        "RoleArn": job.role_arn,
        "AppSpecification": {"ImageUri": job.image_uri, "ContainerEntrypoint": ["/bin/bash", "-c", entrypoint, "drift"],
                             "ContainerArguments": arguments},
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "report", "AppManaged": False, "S3Output": {
            "S3Uri": output_uri, "LocalPath": OUTPUT_DIR, "S3UploadMode": "EndOfJob"}}], "KmsKeyId": job.kms_key_arn},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": job.instance_type,
                                                  "VolumeSizeInGB": job.volume_size_gb,
                                                  **volume_kms_key(job.instance_type, job.kms_key_arn)}},
        "StoppingCondition": {"MaxRuntimeInSeconds": job.max_runtime_seconds},
        "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
        "Environment": {"PYTHONUNBUFFERED": "1"},
    }


def _input(name: str, uri: str, local_path: str, data_type: str) -> dict[str, Any]:
    return {"InputName": name, "AppManaged": False,
            "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": data_type, "S3InputMode": "File",
                        "S3DataDistributionType": "FullyReplicated"}}
