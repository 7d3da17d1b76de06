"""``monitoring.drift.engine: processing``: the scheduled Lambda plans the window and starts a SageMaker Processing
job over several instances that writes the window's partial results (the same ``mlcore.drift.partials`` the
per-object function writes); when every instance's summary has landed, the same Lambda merges them into the report
and publishes its metrics (``finish_sharded_job``).

Sharding: each variant's capture, the prediction log and the delayed predictions window are ManifestFile inputs
with ``S3DataDistributionType: ShardedByS3Key`` ("each machine gets 1/N of the objects", API reference,
``S3DataDistributionType``); the baselines, the labels, the objects' identities and the code are replicated to
every instance. N and each instance's volume come from the window's size: one instance per ``BYTES_PER_INSTANCE``
of objects (at most ``monitoring.drift.processing_max_instances``, never more than there are objects), a volume
that holds the largest share SageMaker can hand one instance (the ``ceil(n/N)`` largest objects of each sharded
input) plus everything replicated. The job runs in the XGBoost framework container with the code bundle the
training pipeline uses, network-isolated and KMS-encrypted."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlcore.drift.partials import PartialError, labels_fingerprint, load_shard_summary
from mlcore.drift.run import REPORT_FILE
from mlcore.drift.window import Window
from mlplatform.monitoring.capture_window import ListedObject, list_window_objects
from mlplatform.monitoring.monitor_flow import (
    JobJoins,
    MonitorClients,
    MonitorOutcome,
    label_spec,
    merge_window,
    prepare_window,
    source_prefixes,
    write_reports,
)
from mlplatform.monitoring.monitor_settings import DriftMonitorSettings
from mlplatform.monitoring.variant_models import endpoint_variants, resolve_variant_models
from mlsettings.instance_types import SMALLEST_INSTANCE_STORE_GB, has_local_storage, volume_kms_key
from mlsettings.vocabulary import GROUND_TRUTH_PREFIX

INPUT_ROOT = "/opt/ml/processing/input"
OUTPUT_ROOT = "/opt/ml/processing/output"
CODE_DIR = f"{INPUT_ROOT}/code"
CODE_ROOT = "/opt/ml/code"
PREDICTION_LOG_DIR = f"{INPUT_ROOT}/prediction-log"
SETTINGS_DIR = f"{INPUT_ROOT}/settings"
GROUND_TRUTH_DIR = f"{INPUT_ROOT}/ground-truth"
JOB_SETTINGS_DIR = f"{INPUT_ROOT}/job"
JOB_SETTINGS_FILE = "job.json"
"""Thresholds, quality settings and the objects' identities, as one replicated input: a container argument may
be at most 256 characters (botocore's ContainerArguments shape), which the JSON of those would exceed."""
PARTIALS_DIR = f"{OUTPUT_ROOT}/partials"
SHARDS_DIR = f"{OUTPUT_ROOT}/shards"
SHARDS_FOLDER = "shards/"
PLAN_FILE = "manifests/plan.json"

BYTES_PER_INSTANCE = 20 << 30
"""Capture bytes per instance (~36 million records of 550 bytes). On an ml.m5.xlarge (4 vCPU) the parse runs at
~4 x 180 MB/s (docs/BENCHMARKS.md), so a share is parsed in ~30 s; the download at the instance's network rate
(unmeasured here: docs/MONITORING.md) and the job's start (minutes) dominate."""
VOLUME_HEADROOM_PERCENT = 110
VOLUME_BASE_GB = 2
"""Besides the shares: the code bundle, the partial results written (a few KB per object) and the file system."""
MIN_VOLUME_GB, MAX_VOLUME_GB = 10, 16384
MAX_INPUTS = 10
"""CreateProcessingJob takes at most 10 ProcessingInputs (botocore's shape; the planner checks)."""


@dataclass(frozen=True, kw_only=True)
class ProcessingJobSettings:
    """Where and as whom the job runs (``lambdas/drift_monitor/settings.py`` reads it from the environment)."""

    role_arn: str
    image_uri: str
    code_uri: str
    instance_type: str
    kms_key_arn: str
    max_instances: int = 10
    max_runtime_seconds: int = 4 * 3600


def job_name(endpoint: str, window: Window) -> str:
    """One job per endpoint and window end; a retried schedule event finds the job already there."""
    return f"{endpoint}-drift-{window.end:%Y%m%d%H}"[:63]


def report_prefix(settings: DriftMonitorSettings, window: Window) -> str:
    return f"{settings.report_prefix}/{settings.endpoint_name}/{window.end:%Y/%m/%d/%H}/"


def shard_plan(channels: Sequence[Sequence[int]], *, max_instances: int, replicated_bytes: int = 0) -> tuple[int, int]:
    """(instances, volume GB) for sharded inputs of these object sizes: one instance per ``BYTES_PER_INSTANCE``
    (1 ≤ N ≤ ``max_instances``, N ≤ objects of the largest input), and a volume for the heaviest share any
    instance can get (SageMaker shards by object count: the ``ceil(n/N)`` largest objects of each input)."""
    total = sum(sum(sizes) for sizes in channels)
    most = max((len(sizes) for sizes in channels), default=0)
    instances = max(1, min(max_instances, most, math.ceil(total / BYTES_PER_INSTANCE)))
    heaviest = sum(sum(sorted(sizes, reverse=True)[:math.ceil(len(sizes) / instances)]) for sizes in channels)
    volume = -(-(heaviest + replicated_bytes) * VOLUME_HEADROOM_PERCENT // (100 * 2**30)) + VOLUME_BASE_GB
    return instances, min(max(volume, MIN_VOLUME_GB), MAX_VOLUME_GB)


@dataclass
class _Planned:
    inputs: list[dict[str, Any]]
    arguments: list[str]
    sharded: list[list[int]]
    replicated: int
    identities: dict[str, dict[str, Any]]
    quality: dict[str, Any] | None = None


def start_processing_job(settings: DriftMonitorSettings, job: ProcessingJobSettings, clients: MonitorClients, *,
                         window: Window, now: datetime) -> dict[str, Any]:
    """Write the manifests and the plan, start the job; returns what was started and what was skipped, and why."""
    variants = endpoint_variants(clients.sagemaker, settings.endpoint_name)
    models = resolve_variant_models(sagemaker=clients.sagemaker, ssm=clients.ssm, s3=clients.s3,
                                    variants=variants, parameter_prefix=settings.variant_parameter_prefix)
    name = job_name(settings.endpoint_name, window)
    folder = report_prefix(settings, window)
    planned = _Planned(inputs=[_input("code", job.code_uri, CODE_DIR, "S3Prefix")],
                       arguments=["--shard", "--endpoint", settings.endpoint_name,
                                  "--object-prefix", f"s3://{settings.capture_bucket}/",
                                  "--partials-out", PARTIALS_DIR, "--shards-out", SHARDS_DIR],
                       sharded=[], replicated=0, identities={})
    skipped: dict[str, str] = {}
    served = []
    for model in models:
        if model.baseline_uri is None or model.baseline is None:
            skipped[model.variant] = model.skip_reason or "no baseline"
            continue
        listed = {kind: list_window_objects(clients.s3, bucket=settings.capture_bucket, prefix=prefix, window=window)
                  for prefix, kind in source_prefixes(settings, model.variant)}
        if not listed["endpoint_capture"]:
            skipped[model.variant] = "no captured traffic in the window"
            continue
        served.append(model)
        local = f"{INPUT_ROOT}/{model.variant}"
        planned.inputs.append(_input(f"{model.variant}-baseline", model.baseline_uri, f"{local}/baseline", "S3Prefix"))
        _sharded(settings, clients, planned, folder, f"{model.variant}-capture", listed["endpoint_capture"],
                 f"{local}/capture")
        baseline_file = model.baseline_uri.rsplit("/", 1)[-1]
        planned.arguments += ["--variant", f"{model.variant}={local}/baseline/{baseline_file}:{local}/capture"]
        if listed.get("prediction_log"):
            # The inference API's prediction log (fallback answers included) joins this variant's traffic, as in
            # the Lambda engine (monitor_flow.source_prefixes).
            _sharded(settings, clients, planned, folder, "prediction-log", listed["prediction_log"],
                     PREDICTION_LOG_DIR)
            planned.arguments += ["--prediction-log", PREDICTION_LOG_DIR, "--prediction-log-variant", model.variant]
    if not served:
        return {"engine": "processing", "started": None, "skipped": skipped}
    label_keys = _ground_truth(settings, clients, planned, folder, served, window, skipped)
    job_key = f"{folder}manifests/{JOB_SETTINGS_FILE}"
    job_settings = {"thresholds": settings.thresholds.to_dict(), "quality": planned.quality,
                    "identities": planned.identities}
    clients.s3.put_object(Bucket=settings.report_bucket, Key=job_key, Body=json.dumps(job_settings).encode(),
                          ContentType="application/json")
    planned.inputs.append(_input("job", f"s3://{settings.report_bucket}/{job_key}", JOB_SETTINGS_DIR, "S3Prefix"))
    planned.replicated += len(json.dumps(job_settings))
    planned.arguments += ["--job-settings", f"{JOB_SETTINGS_DIR}/{JOB_SETTINGS_FILE}"]
    if len(planned.inputs) > MAX_INPUTS:
        raise ValueError(f"the drift job would take {len(planned.inputs)} inputs; CreateProcessingJob allows "
                         f"{MAX_INPUTS}")
    instances, volume_gb = shard_plan(planned.sharded, max_instances=job.max_instances,
                                      replicated_bytes=planned.replicated)
    plan = {"job": name, "instances": instances, "volume_gb": volume_gb, "window": window.to_dict(),
            "label_keys": label_keys, "planned_at": now.isoformat()}
    clients.s3.put_object(Bucket=settings.report_bucket, Key=f"{folder}{PLAN_FILE}", Body=json.dumps(plan).encode(),
                          ContentType="application/json")
    request = processing_job_request(name=name, job=job, inputs=planned.inputs, arguments=planned.arguments,
                                     outputs=job_outputs(settings, folder), instance_count=instances,
                                     volume_gb=volume_gb)
    try:
        clients.sagemaker.create_processing_job(**request)
    except clients.sagemaker.exceptions.ResourceInUse:
        return {"engine": "processing", "started": None, "already_running": name, "skipped": skipped}
    return {"engine": "processing", "started": name, "instances": instances, "volume_gb": volume_gb,
            "skipped": skipped, "window": window.to_dict(), "planned_at": now.isoformat()}


def _sharded(settings: DriftMonitorSettings, clients: MonitorClients, planned: _Planned, folder: str, name: str,
             listed: Sequence[ListedObject], local_path: str) -> None:
    """A ManifestFile input each instance gets 1/N of (ShardedByS3Key), laid out at the objects' keys."""
    manifest_key = f"{folder}manifests/{name}.json"
    manifest = [{"prefix": f"s3://{settings.capture_bucket}/"}, *(item.key for item in listed)]
    clients.s3.put_object(Bucket=settings.report_bucket, Key=manifest_key, Body=json.dumps(manifest).encode(),
                          ContentType="application/json")
    planned.inputs.append(_input(name, f"s3://{settings.report_bucket}/{manifest_key}", local_path, "ManifestFile",
                                 distribution="ShardedByS3Key"))
    planned.sharded.append([item.size for item in listed])
    planned.identities.update({item.key: {"size": item.size, "etag": item.etag} for item in listed})


def _ground_truth(settings: DriftMonitorSettings, clients: MonitorClients, planned: _Planned, folder: str,
                  served: Sequence[Any], window: Window, skipped: Mapping[str, str]) -> list[str] | None:
    """Engine parity with the Lambda (monitor_flow.prepare_window): the labels that arrived for the predictions
    of the delayed window (replicated to every instance), those predictions' capture (sharded), and the label
    keys, which the merge reads again exactly."""
    if not (settings.ground_truth_prefix and settings.ground_truth_bucket) or label_spec(list(served)) is None:
        return None
    quality_window = window.shifted(settings.ground_truth_delay_hours)
    label_window = Window(start=quality_window.start, end=window.end)
    labels = list_window_objects(clients.s3, bucket=settings.ground_truth_bucket, prefix=settings.ground_truth_prefix,
                                 window=label_window)
    manifest_key = f"{folder}manifests/ground-truth.json"
    clients.s3.put_object(Bucket=settings.report_bucket, Key=manifest_key, Body=json.dumps(
        [{"prefix": f"s3://{settings.ground_truth_bucket}/"}, *(item.key for item in labels)]).encode(),
        ContentType="application/json")
    planned.inputs.append(_input(GROUND_TRUTH_PREFIX, f"s3://{settings.report_bucket}/{manifest_key}", GROUND_TRUTH_DIR,
                                 "ManifestFile"))
    planned.replicated += sum(item.size for item in labels)
    planned.arguments += ["--ground-truth", GROUND_TRUTH_DIR]
    planned.quality = {"metric": settings.quality_metric, "margin": settings.quality_margin,
                       "min_rows": settings.quality_min_rows, "labels_window": label_window.to_dict(),
                       "predictions_window": quality_window.to_dict(), "label_objects": len(labels)}
    if settings.ground_truth_delay_hours:
        for model in served:
            if model.variant in skipped:
                continue
            prefix = source_prefixes(settings, model.variant)[0][0]
            capture = list_window_objects(clients.s3, bucket=settings.capture_bucket, prefix=prefix,
                                          window=quality_window)
            local = f"{INPUT_ROOT}/{model.variant}/quality-capture"
            _sharded(settings, clients, planned, folder, f"{model.variant}-quality-capture", capture, local)
            planned.arguments += ["--quality-capture", f"{model.variant}={local}"]
    return [item.key for item in labels]


def job_outputs(settings: DriftMonitorSettings, folder: str) -> list[dict[str, Any]]:
    """Every instance uploads its partial results next to the per-object function's, and its summary."""
    return [{"OutputName": "partials", "AppManaged": False, "S3Output": {
                "S3Uri": f"s3://{settings.report_bucket}/{settings.partials_prefix}", "LocalPath": PARTIALS_DIR,
                "S3UploadMode": "EndOfJob"}},
            {"OutputName": "shards", "AppManaged": False, "S3Output": {
                "S3Uri": f"s3://{settings.report_bucket}/{folder}{SHARDS_FOLDER.rstrip('/')}", "LocalPath": SHARDS_DIR,
                "S3UploadMode": "EndOfJob"}}]


def processing_job_request(*, name: str, job: ProcessingJobSettings, inputs: list[dict[str, Any]],
                           arguments: list[str], outputs: list[dict[str, Any]], instance_count: int = 1,
                           volume_gb: int = MIN_VOLUME_GB) -> dict[str, Any]:
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
        "ProcessingOutputConfig": {"Outputs": outputs, "KmsKeyId": job.kms_key_arn},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": instance_count, "InstanceType": job.instance_type,
            # An instance type with local NVMe storage gets its instance store, not the volume: "you can't request
            # a VolumeSizeInGB greater than the total size of the local instance storage" and no VolumeKmsKeyId
            # (API reference, ProcessingClusterConfig; mlsettings.instance_types).
            "VolumeSizeInGB": (min(volume_gb, SMALLEST_INSTANCE_STORE_GB) if has_local_storage(job.instance_type)
                               else volume_gb),
            **volume_kms_key(job.instance_type, job.kms_key_arn)}},
        "StoppingCondition": {"MaxRuntimeInSeconds": job.max_runtime_seconds},
        "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
        "Environment": {"PYTHONUNBUFFERED": "1"},
    }


def is_shard_summary(settings: DriftMonitorSettings, key: str) -> bool:
    """A sharded job instance's summary: ``<report prefix>/<endpoint>/yyyy/mm/dd/hh/shards/<host>.json``."""
    return key.startswith(f"{settings.report_prefix}/{settings.endpoint_name}/") and \
        f"/{SHARDS_FOLDER}" in key and key.endswith(".json")


def finish_sharded_job(settings: DriftMonitorSettings, clients: MonitorClients, *, key: str,
                       now: datetime) -> MonitorOutcome | dict[str, Any]:
    """An instance's summary landed: when every instance's has, merge the window (partial results and join
    entries) into the report. Returns the outcome, or why it waits. Events may repeat: a window already merged
    from this job is not merged again."""
    folder = key.rsplit(f"/{SHARDS_FOLDER}", 1)[0] + "/"
    plan = json.loads(clients.s3.get_object(Bucket=settings.report_bucket, Key=f"{folder}{PLAN_FILE}")["Body"].read())
    summaries = sorted(item["Key"] for page in clients.s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.report_bucket, Prefix=f"{folder}{SHARDS_FOLDER}") for item in page.get("Contents", [])
        if item["Key"].endswith(".json"))
    if len(summaries) < int(plan["instances"]):
        return {"waiting": plan["job"], "shards": len(summaries), "instances": plan["instances"]}
    try:
        existing = json.loads(clients.s3.get_object(Bucket=settings.report_bucket,
                                                    Key=f"{folder}{REPORT_FILE}")["Body"].read())
    except clients.s3.exceptions.NoSuchKey:
        existing = {}
    if (existing.get("job") or {}).get("name") == plan["job"]:
        return {"already_merged": plan["job"]}
    drift: dict[str, Any] = {}
    quality: dict[str, Any] = {}
    fingerprints: set[str | None] = set()
    problems = []
    for summary_key in summaries:
        try:
            found_drift, found_quality, labels = load_shard_summary(json.loads(clients.s3.get_object(
                Bucket=settings.report_bucket, Key=summary_key)["Body"].read()))
        except (PartialError, ValueError) as err:
            problems.append({"object": summary_key, "error": str(err)[:300]})
            continue
        drift.update(found_drift)
        quality.update(found_quality)
        fingerprints.add(labels)
    window = Window(start=datetime.fromisoformat(plan["window"]["start"].replace("Z", "+00:00")),
                    end=datetime.fromisoformat(plan["window"]["end"].replace("Z", "+00:00")))
    prepared = prepare_window(settings, clients, window=window, label_keys=plan.get("label_keys"))
    joins: JobJoins | None = JobJoins(drift=drift, quality=quality)
    if prepared.quality is not None and fingerprints != {labels_fingerprint(prepared.quality.label_set.labels)}:
        joins = None  # the labels changed since the job read them: join from the objects instead
    report = merge_window(settings, clients, prepared, window=window, now=now, job_joins=joins)
    report["job"] = {"name": plan["job"], "instances": plan["instances"], "volume_gb": plan.get("volume_gb"),
                     "shards": [item.rsplit("/", 1)[-1].removesuffix(".json") for item in summaries],
                     "unreadable_summaries": problems}
    return write_reports(clients.s3, settings, report, prepared.plans, window)


def _input(name: str, uri: str, local_path: str, data_type: str, *,
           distribution: str = "FullyReplicated") -> dict[str, Any]:
    return {"InputName": name, "AppManaged": False,
            "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": data_type, "S3InputMode": "File",
                        "S3DataDistributionType": distribution}}
