"""Batch scoring: a SageMaker batch transform of an S3 prefix with the model the production Champion serves.

The transform runs the very model the endpoint's Champion runs (same SageMaker Model: the package's
container with ``pipelines/serving/inference.py`` and ``mlcore`` feature code), so batch and real-time
answers cannot drift apart. Input: CSV files under the prefix, one raw row per line in schema order, **no
header and no label** (batch transform joins outputs to inputs line by line; the handler's header skip
would shift the join). Output: ``<capture>/batch/output/yyyy/mm/dd/<job>/<file>.out``, each line the input
row joined with its answer's CSV columns in the model's kind's shape (``DataProcessing.JoinSource=Input``; a
binary score, a multiclass label and one probability per declared class, a regression value: mlcore.outputs);
the transform's data capture goes to ``<capture>/batch/capture/`` for the monitors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlplatform.serving.endpoint_state import read_endpoint_state
from mlsettings.instance_types import volume_kms_key
from mlsettings.naming import transform_job_name
from mlsettings.vocabulary import BATCH_PREFIX, CHAMPION, TRANSFORM_JOIN_INPUT, TRANSFORM_MAX_PAYLOAD_MB


class BatchScoringError(ValueError):
    """The request cannot start a job (bad input URI, no production model); the message says which."""


@dataclass(frozen=True, kw_only=True)
class BatchSettings:
    endpoint_name: str
    capture_bucket: str
    instance_type: str
    kms_key_arn: str = ""
    default_input_uri: str = ""
    instance_count: int = 1
    max_payload_mb: int = TRANSFORM_MAX_PAYLOAD_MB
    batch_prefix: str = BATCH_PREFIX
    """The model's prefix in the capture bucket: inputs below ``input/``, outputs ``output/``, capture ``capture/``."""


def job_name(endpoint_name: str, now: datetime) -> str:
    return transform_job_name(endpoint_name, now)


def transform_request(*, name: str, model_name: str, input_uri: str, settings: BatchSettings,
                      now: datetime, model_version: str) -> dict[str, Any]:
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?", input_uri):
        raise BatchScoringError(f"input URI {input_uri!r} is not an s3://bucket/prefix")
    folder = f"s3://{settings.capture_bucket}/{settings.batch_prefix.strip('/')}"
    allowed = f"{folder}/input/"
    if not input_uri.startswith(allowed):
        # The model role that runs the transform reads only this prefix (least privilege): copy inputs there.
        raise BatchScoringError(f"input URI {input_uri!r} is outside {allowed}; copy the data there first")
    output = f"{folder}/output/{now:%Y/%m/%d}/{name}/"
    resources: dict[str, Any] = {"InstanceType": settings.instance_type, "InstanceCount": settings.instance_count}
    transform_output: dict[str, Any] = {"S3OutputPath": output, "Accept": "text/csv", "AssembleWith": "Line"}
    capture: dict[str, Any] = {"DestinationS3Uri": f"{folder}/capture/",
                               "GenerateInferenceId": True}
    if settings.kms_key_arn:
        transform_output["KmsKeyId"] = settings.kms_key_arn
        capture["KmsKeyId"] = settings.kms_key_arn
        resources.update(volume_kms_key(settings.instance_type, settings.kms_key_arn))
    return {
        "TransformJobName": name,
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": settings.max_payload_mb,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                           "ContentType": "text/csv", "SplitType": "Line", "CompressionType": "None"},
        "TransformOutput": transform_output,
        "TransformResources": resources,
        # Each output line = the input line + its probability, so results are usable without a join.
        "DataProcessing": dict(TRANSFORM_JOIN_INPUT),
        "DataCaptureConfig": capture,
        "Tags": [{"Key": "mlops:endpoint", "Value": settings.endpoint_name},
                 {"Key": "mlops:model-package-version", "Value": model_version}],
    }


def start_batch_scoring(sagemaker_client: Any, *, settings: BatchSettings, request: Mapping[str, Any],
                        now: datetime) -> dict[str, Any]:
    """Start the transform; ``request`` may name ``input_uri`` (else the scheduled default)."""
    input_uri = str(request.get("input_uri") or settings.default_input_uri)
    if not input_uri:
        raise BatchScoringError("no input_uri in the request and no default input configured")
    state = read_endpoint_state(sagemaker_client, settings.endpoint_name)
    if state is None or CHAMPION not in state.variants:
        raise BatchScoringError(f"{settings.endpoint_name} serves no Champion: nothing deployed to score with")
    champion = state.variants[CHAMPION]
    name = str(request.get("job_name") or job_name(settings.endpoint_name, now))
    job = transform_request(name=name, model_name=champion.model_name, input_uri=input_uri, settings=settings,
                            now=now, model_version=str(champion.version or "unknown"))
    sagemaker_client.create_transform_job(**job)
    return {"transform_job_name": name, "model_name": champion.model_name,
            "model_package_arn": champion.model_package_arn, "input_uri": input_uri,
            "output_uri": job["TransformOutput"]["S3OutputPath"], "endpoint_status": state.status}
