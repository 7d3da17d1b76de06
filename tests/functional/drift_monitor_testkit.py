"""Test kit for the drift monitor: a baseline for the synthetic churn schema, capture lines in all three
encodings, and the AWS resources the monitoring stack and the deployer provide (capture bucket, endpoint
with Champion/Challenger, SSM parameter per variant, registered model packages), created in moto."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlcore.drift.baseline import build_baseline
from mlcore.drift.capture import build_capture_record
from mlsettings.schema import DataSchema
from mlsettings.vocabulary import EVALUATION_FILE
from pipelines.datasets import synthetic_frame, synthetic_schema
from pipelines.definition import output_key

REGION = "eu-west-1"
ENDPOINT = "mlops-dev-endpoint"
CAPTURE_BUCKET = "capture-bucket"
CAPTURE_PREFIX = "data-capture"
LOG_PREFIX = "inference-api"
REPORT_BUCKET = "report-bucket"
LABELS_PREFIX = "ground-truth"
MODEL = "breast-cancer"
PARAMETER_PREFIX = f"/mlops/dev/models/{MODEL}/variant"
GROUP = "mlops-dev-churn"
WINDOW_END = datetime(2025, 3, 2, 6, tzinfo=UTC)
HOUR = "2025/03/02/03"  # inside the 24 hours before WINDOW_END

SCHEMA = DataSchema.from_dict(synthetic_schema())
NAMES = list(SCHEMA.feature_names)


def _artifacts(variant: str, step: str, output: str) -> str:
    """Where the training pipeline writes one execution's step output (pipelines.definition.output_key), so
    the drift role is exercised on the deployed layout."""
    return output_key(MODEL, f"exec-{variant.lower()}", step, output)


def baseline_document(rows: int = 3000, seed: int = 0) -> dict[str, Any]:
    frame = synthetic_frame(rows, seed=seed)
    rng = np.random.default_rng(seed)
    probabilities = rng.beta(2.0, 3.0, size=rows)
    return build_baseline({name: frame[name].tolist() for name in NAMES}, SCHEMA, probabilities=probabilities)


def traffic_rows(rows: int, *, seed: int = 1, shift_tenure: float = 0.0) -> list[list[str]]:
    """Rows like the baseline's (or with tenure shifted by ``shift_tenure`` months)."""
    frame = synthetic_frame(rows, seed=seed)
    if shift_tenure:
        frame["tenure_months"] = (frame["tenure_months"].astype(float) + shift_tenure).clip(0, 120).astype(str)
    return [[str(v) for v in row] for row in frame[NAMES].to_numpy().tolist()]


def scores(rows: int, *, seed: int = 2, shifted: bool = False) -> list[float]:
    rng = np.random.default_rng(seed)
    values = rng.beta(5.0, 1.5, size=rows) if shifted else rng.beta(2.0, 3.0, size=rows)
    return [float(round(v, 6)) for v in values]


def csv_line(rows: Sequence[Sequence[Any]], probabilities: Sequence[float], *, event_id: str,
             inference_id: str | None = None) -> str:
    """SageMaker's own compact layout: eventId, inferenceId, inferenceTime (the fast path's template)."""
    data = "\n".join(",".join(str(v) for v in row) for row in rows)
    metadata: dict[str, Any] = {"eventId": event_id}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = "2025-03-02T03:15:00.000Z"
    doc: dict[str, Any] = {"captureData": {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": data, "encoding": "CSV"}}}
    if probabilities:
        doc["captureData"]["endpointOutput"] = {"observedContentType": "text/csv; charset=utf-8",
                                                "mode": "OUTPUT", "encoding": "CSV",
                                                "data": "\n".join(repr(p) for p in probabilities)}
        # SageMaker's key order inside a payload: observedContentType, mode, data, encoding.
        out = doc["captureData"]["endpointOutput"]
        doc["captureData"]["endpointOutput"] = {k: out[k] for k in ("observedContentType", "mode", "data",
                                                                    "encoding")}
    doc["eventMetadata"] = metadata
    doc["eventVersion"] = "0"
    return json.dumps(doc, separators=(",", ":"))


def json_line(rows: Sequence[Sequence[Any]], probabilities: Sequence[float], *, event_id: str,
              inference_id: str | None = None, custom: Mapping[str, str] | None = None) -> str:
    record = build_capture_record(rows=[[_typed(v) for v in row] for row in rows], probabilities=probabilities,
                                  inference_time=datetime(2025, 3, 2, 3, 15, tzinfo=UTC), event_id=event_id,
                                  inference_id=inference_id, content_type="application/json", custom=custom)
    return json.dumps(record)


def base64_line(rows: Sequence[Sequence[Any]], probabilities: Sequence[float], *, event_id: str) -> str:
    """What SageMaker writes when the content type is not listed in CaptureContentTypeHeader."""
    request = "\n".join(",".join(str(v) for v in row) for row in rows).encode()
    response = "\n".join(repr(p) for p in probabilities).encode()
    doc = {"captureData": {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                          "data": base64.b64encode(request).decode(), "encoding": "BASE64"},
        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                           "data": base64.b64encode(response).decode(), "encoding": "BASE64"}},
        "eventMetadata": {"eventId": event_id, "inferenceTime": "2025-03-02T03:15:00.000Z"},
        "eventVersion": "0"}
    return json.dumps(doc, separators=(",", ":"))


def log_line(rows: Sequence[Sequence[Any]], probabilities: Sequence[float], *, event_id: str, source: str,
             inference_id: str | None = None) -> str:
    """The inference Lambda's prediction log (its own writer: build_capture_record, CSV, compact)."""
    record = build_capture_record(rows=rows, probabilities=probabilities,
                                  inference_time=datetime(2025, 3, 2, 3, 15, tzinfo=UTC), event_id=event_id,
                                  inference_id=inference_id, content_type="text/csv",
                                  custom={"source": source, "model_version": "7",
                                          "degraded": "false" if source == "endpoint" else "true"})
    return json.dumps(record, separators=(",", ":"))


def _typed(value: Any) -> Any:
    if value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def quality_document(auc: float = 0.9, accuracy: float = 0.85, f1: float = 0.8) -> dict[str, Any]:
    return {"binary_classification_metrics": {
        "auc": {"value": auc, "standard_deviation": 0.01},
        "accuracy": {"value": accuracy, "standard_deviation": 0.01},
        "f1": {"value": f1, "standard_deviation": 0.01}}}


def environment(**overrides: str) -> dict[str, str]:
    """The drift function's environment through its contract (as the monitoring stack writes it), then
    ``overrides`` as raw variables (a test may set what the contract would refuse)."""
    from mlsettings.functions.contracts import DriftMonitorEnvironment

    env = DriftMonitorEnvironment(
        endpoint_name=ENDPOINT, capture_bucket=CAPTURE_BUCKET, capture_prefix=CAPTURE_PREFIX,
        prediction_log_prefix=LOG_PREFIX, report_bucket=REPORT_BUCKET, report_prefix="drift-reports",
        variant_parameter_prefix=PARAMETER_PREFIX, window_hours=24, drift_thresholds={"min_rows": 50},
        drift_workers=2, quality_metric="auc", quality_margin=0.05, chunk_lines=100).to_env()
    env.update(overrides)
    if env.get("DRIFT_ENGINE") == "processing":  # the job's settings come with that engine
        env.setdefault("PROCESSING_ROLE_ARN", "arn:aws:iam::123456789012:role/drift-job")
        env.setdefault("PROCESSING_IMAGE_URI", "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0")
        env.setdefault("PROCESSING_CODE_URI", "s3://cdk-hnb659fds-assets-123456789012-eu-west-1/0123abcd.gz")
        env.setdefault("PROCESSING_INSTANCE_TYPE", "ml.m5.xlarge")
        env.setdefault("KMS_KEY_ARN", "arn:aws:kms:eu-west-1:123456789012:key/k")
    return env


def provision(*, variants: Sequence[str] = ("Champion", "Challenger"),
              registered: Mapping[str, dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """Buckets, an endpoint with ``variants``, and per registered variant an SSM parameter → model package
    (with baseline and evaluation metrics in S3). ``registered[v] = None`` leaves a variant unrecorded."""
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    ssm = boto3.client("ssm", region_name=REGION)
    for bucket in (CAPTURE_BUCKET, REPORT_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    sagemaker.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
                           PrimaryContainer={"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1"})
    sagemaker.create_endpoint_config(EndpointConfigName="config", ProductionVariants=[
        {"VariantName": v, "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        for v in variants])
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    registered = registered if registered is not None else {v: {} for v in variants}
    arns: dict[str, str] = {}
    for variant, spec in registered.items():
        if spec is None:
            continue
        baseline = spec.get("baseline", baseline_document())
        quality = spec.get("quality", quality_document())
        baseline_key = f"{_artifacts(variant, 'Baseline', 'baseline')}/baseline.json"
        evaluation_key = f"{_artifacts(variant, 'Evaluate', 'evaluation')}/{EVALUATION_FILE}"
        s3.put_object(Bucket=REPORT_BUCKET, Key=baseline_key, Body=json.dumps(baseline))
        s3.put_object(Bucket=REPORT_BUCKET, Key=evaluation_key, Body=json.dumps(quality))
        package: dict[str, Any] = {
            "ModelPackageGroupName": GROUP,
            "InferenceSpecification": {"Containers": [{"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1"}],
                                       "SupportedContentTypes": ["text/csv"],
                                       "SupportedResponseMIMETypes": ["text/csv"]},
            "ModelMetrics": {"ModelQuality": {"Statistics": {
                "ContentType": "application/json", "S3Uri": f"s3://{REPORT_BUCKET}/{evaluation_key}"}}},
        }
        if not spec.get("no_baseline"):
            package["DriftCheckBaselines"] = {"ModelDataQuality": {"Statistics": {
                "ContentType": "application/json", "S3Uri": f"s3://{REPORT_BUCKET}/{baseline_key}"}}}
        arn = sagemaker.create_model_package(**package)["ModelPackageArn"]
        ssm.put_parameter(Name=f"{PARAMETER_PREFIX}/{variant}/model-package-arn", Value=arn, Type="String")
        arns[variant] = arn
    return {"s3": s3, "sagemaker": sagemaker, "ssm": ssm, "arns": arns}


def put_capture(s3: Any, variant: str, lines: Sequence[str], *, name: str = "part-0.jsonl",
                hour: str = HOUR) -> str:
    key = f"{CAPTURE_PREFIX}/{ENDPOINT}/{variant}/{hour}/{name}"
    s3.put_object(Bucket=CAPTURE_BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())
    return key


def put_log(s3: Any, lines: Sequence[str], *, name: str = "stream-1-2025-03-02-03-00-00-abc",
            hour: str = HOUR) -> str:
    key = f"{LOG_PREFIX}/{hour}/{name}"
    s3.put_object(Bucket=CAPTURE_BUCKET, Key=key, Body="".join(line + "\n" for line in lines).encode())
    return key


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed (one JSON object per line with an ``_aws`` key)."""
    documents = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric_values(documents: Sequence[Mapping[str, Any]]) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    """``{sorted dimension items: {metric: value}}`` over EMF documents."""
    values: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for doc in documents:
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        dims = tuple(sorted((name, doc[name]) for name in directive["Dimensions"][0]))
        for metric in directive["Metrics"]:
            values.setdefault(dims, {})[metric["Name"]] = doc[metric["Name"]]
    return values


def lay_out_job_inputs(s3: Any, job: Mapping[str, Any], root: Path, *, reroot: Any,
                       files: Mapping[str, Path] | None = None, shard: tuple[int, int] = (0, 1)) -> None:
    """Download a created Processing job's inputs as SageMaker does: an S3Prefix object under its own name, a
    ManifestFile's entries under their key relative to the manifest's prefix. ``files`` supplies inputs by
    name instead (the code bundle, which moto's S3 does not hold). ``shard`` = (instance, instances): an input
    with ``ShardedByS3Key`` gets every instances-th entry from the instance-th on (SageMaker gives each instance
    1/N of the objects; which ones is not documented, and nothing here depends on it)."""
    instance, instances = shard
    for spec in job["ProcessingInputs"]:
        s3_input = spec["S3Input"]
        folder = Path(reroot(s3_input["LocalPath"]))
        folder.mkdir(parents=True, exist_ok=True)
        if files and spec["InputName"] in files:
            source = files[spec["InputName"]]
            (folder / s3_input["S3Uri"].rsplit("/", 1)[-1]).write_bytes(source.read_bytes())
            continue
        bucket, _, key = s3_input["S3Uri"].removeprefix("s3://").partition("/")
        if s3_input["S3DataType"] == "ManifestFile":
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            source_bucket, _, base = manifest[0]["prefix"].removeprefix("s3://").partition("/")
            entries = manifest[1:]
            if s3_input["S3DataDistributionType"] == "ShardedByS3Key":
                entries = entries[instance::instances]
            for entry in entries:
                target = folder / entry.removeprefix(base)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=source_bucket, Key=base + entry)["Body"].read())
        else:
            # An S3Prefix: every object under the prefix, by its key below the prefix (an object named exactly by
            # the prefix keeps its own name).
            for item in s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", []):
                relative = item["Key"][len(key):].lstrip("/") or item["Key"].rsplit("/", 1)[-1]
                target = folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())



def upload_job_outputs(s3: Any, job: Mapping[str, Any], *, reroot: Any) -> int:
    """What SageMaker does at the end of an instance (``S3UploadMode: EndOfJob``): every file below an output's
    LocalPath goes to its S3Uri at the same relative path. Returns the number of objects."""
    count = 0
    for output in job["ProcessingOutputConfig"]["Outputs"]:
        target = output["S3Output"]
        bucket, _, prefix = target["S3Uri"].removeprefix("s3://").partition("/")
        local = Path(reroot(target["LocalPath"]))
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            s3.put_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}",
                          Body=path.read_bytes())
            count += 1
    return count
