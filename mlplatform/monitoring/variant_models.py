"""Which model each endpoint variant serves, and the baseline and evaluation metrics registered with it.

DescribeEndpoint gives the variant names; the deployer records the model package it deployed to a variant
in the SSM parameter ``<prefix>/<Variant>/model-package-arn`` (e.g. ``/mlops/prod/variant/Champion/
model-package-arn``) — SSM rather than endpoint tags because it is readable with one narrow
``ssm:GetParameter`` grant and survives endpoint-config replacement. DescribeModelPackage then gives
``DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri`` (the drift baseline) and
``ModelMetrics.ModelQuality.Statistics.S3Uri`` (the evaluation metrics).

Every lookup failure becomes a reason on the plan (the variant is reported as skipped), never an exception:
one variant without a baseline must not hide the drift of the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlcore.drift.ground_truth import registered_quality
from mlcore.s3_uri import split_s3_uri


@dataclass
class VariantModel:
    variant: str
    model_package_arn: str | None = None
    baseline: dict[str, Any] | None = None
    baseline_uri: str | None = None
    skip_reason: str | None = None
    registered_quality: dict[str, float] | None = None
    quality_problem: str | None = None


def read_s3_json(s3: Any, uri: str) -> Any:
    bucket, key = split_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return json.loads(body.read())
    finally:
        body.close()


def endpoint_exists(sagemaker: Any, endpoint: str) -> bool:
    """False while nothing is deployed (a new environment, or the registry environment, which serves no stage);
    any other error propagates."""
    try:
        sagemaker.describe_endpoint(EndpointName=endpoint)
    except Exception as err:  # botocore's ClientError; the code and message tell a missing endpoint apart
        error = (getattr(err, "response", None) or {}).get("Error", {})
        if error.get("Code") == "ValidationException" and "Could not find endpoint" in error.get("Message", ""):
            return False
        raise
    return True


def endpoint_variants(sagemaker: Any, endpoint: str) -> list[str]:
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    return [variant["VariantName"] for variant in described.get("ProductionVariants", [])]


def parameter_name(parameter_prefix: str, variant: str) -> str:
    return f"{parameter_prefix.rstrip('/')}/{variant}/model-package-arn"


def resolve_variant_models(*, sagemaker: Any, ssm: Any, s3: Any, variants: Iterable[str],
                           parameter_prefix: str) -> list[VariantModel]:
    return [_resolve(sagemaker=sagemaker, ssm=ssm, s3=s3, variant=variant, parameter_prefix=parameter_prefix)
            for variant in variants]


def _resolve(*, sagemaker: Any, ssm: Any, s3: Any, variant: str, parameter_prefix: str) -> VariantModel:
    model = VariantModel(variant=variant)
    name = parameter_name(parameter_prefix, variant)
    try:
        model.model_package_arn = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as err:
        model.skip_reason = f"no model package recorded for the variant ({name}: {_code(err)})"
        return model
    try:
        package = sagemaker.describe_model_package(ModelPackageName=model.model_package_arn)
    except ClientError as err:
        model.skip_reason = f"model package {model.model_package_arn} not readable ({_code(err)})"
        return model
    statistics = (((package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {})
                  .get("Statistics") or {})
    model.baseline_uri = statistics.get("S3Uri")
    if not model.baseline_uri:
        model.skip_reason = (f"model package {model.model_package_arn} has no "
                             "DriftCheckBaselines.ModelDataQuality.Statistics")
        return model
    try:
        model.baseline = read_s3_json(s3, model.baseline_uri)
    except (ClientError, BotoCoreError, ValueError) as err:  # JSONDecodeError is a ValueError
        model.skip_reason = f"baseline {model.baseline_uri} not readable ({_code(err)})"
        model.baseline = None
        return model
    quality_uri = ((((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {})
                   .get("S3Uri"))
    if not quality_uri:
        model.quality_problem = "model package has no ModelMetrics.ModelQuality.Statistics"
        return model
    try:
        model.registered_quality = registered_quality(read_s3_json(s3, quality_uri))
    except (ClientError, BotoCoreError, ValueError) as err:
        model.quality_problem = f"evaluation metrics {quality_uri} not readable ({_code(err)})"
    return model


def _code(err: Exception) -> str:
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code", "ClientError"))
    return f"{type(err).__name__}: {err}"[:200]
