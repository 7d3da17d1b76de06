"""What an endpoint serves right now: per production variant, the model, its registry package, instances.

Read from SageMaker itself (DescribeEndpoint → DescribeEndpointConfig → DescribeModel) rather than from a
copy kept elsewhere, because the endpoint is the truth: a blue/green update that rolled back leaves the old
endpoint config in place, and only DescribeEndpoint says so. The deployer, the health check, batch scoring
and the ``mlops`` serving commands all use this one reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlsettings.vocabulary import CHALLENGER, CHAMPION

VARIANT_ORDER: tuple[str, ...] = (CHAMPION, CHALLENGER)

# DescribeEndpoint's EndpointStatus values, grouped by what a caller may do next.
IN_SERVICE = "InService"
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
FAILED = "Failed"
UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"


@dataclass(frozen=True, kw_only=True)
class VariantState:
    name: str
    model_name: str
    model_package_arn: str
    instance_type: str
    instance_count: int
    weight: float

    @property
    def version(self) -> int | None:
        return package_version(self.model_package_arn)


@dataclass(frozen=True, kw_only=True)
class EndpointState:
    endpoint_name: str
    status: str
    endpoint_config_name: str
    failure_reason: str = ""
    variants: dict[str, VariantState] = field(default_factory=dict)
    current_weights: dict[str, float] = field(default_factory=dict)

    def serving_map(self) -> dict[str, str]:
        """Variant name → model package ARN."""
        return {name: variant.model_package_arn for name, variant in self.variants.items()}


def package_version(model_package_arn: str) -> int | None:
    """Versioned package ARNs end in ``/<version>`` (``…:model-package/<group>/<version>``)."""
    tail = model_package_arn.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _is_missing(err: Exception) -> bool:
    response = getattr(err, "response", {}) or {}
    code = response.get("Error", {}).get("Code", "")
    message = response.get("Error", {}).get("Message", "")
    return code in {"ValidationException", "ResourceNotFound"} and (
        "Could not find" in message or "does not exist" in message or code == "ResourceNotFound")


def model_package_of(sagemaker_client: Any, model_name: str) -> str:
    """The registry package a model was created from ("" for a model built from an image + artifact)."""
    model = sagemaker_client.describe_model(ModelName=model_name)
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    for container in containers:
        if container.get("ModelPackageName"):
            return str(container["ModelPackageName"])
    return ""


def describe_endpoint_config_variants(sagemaker_client: Any, endpoint_config_name: str) -> dict[str, VariantState]:
    config = sagemaker_client.describe_endpoint_config(EndpointConfigName=endpoint_config_name)
    variants: dict[str, VariantState] = {}
    for variant in config.get("ProductionVariants", []):
        model_name = str(variant["ModelName"])
        variants[str(variant["VariantName"])] = VariantState(
            name=str(variant["VariantName"]),
            model_name=model_name,
            model_package_arn=model_package_of(sagemaker_client, model_name),
            instance_type=str(variant.get("InstanceType", "")),
            instance_count=int(variant.get("InitialInstanceCount", 0) or 0),
            weight=float(variant.get("InitialVariantWeight", 1.0) or 0.0),
        )
    return variants


def read_endpoint_state(sagemaker_client: Any, endpoint_name: str) -> EndpointState | None:
    """The endpoint's status and what each variant serves, or None when the endpoint does not exist."""
    try:
        endpoint = sagemaker_client.describe_endpoint(EndpointName=endpoint_name)
    except sagemaker_client.exceptions.ClientError as err:
        if _is_missing(err):
            return None
        raise
    config_name = str(endpoint.get("EndpointConfigName", ""))
    variants = describe_endpoint_config_variants(sagemaker_client, config_name) if config_name else {}
    weights = {str(v["VariantName"]): float(v.get("CurrentWeight", 0.0) or 0.0)
               for v in endpoint.get("ProductionVariants", []) if "VariantName" in v}
    return EndpointState(
        endpoint_name=endpoint_name,
        status=str(endpoint.get("EndpointStatus", "")),
        endpoint_config_name=config_name,
        failure_reason=str(endpoint.get("FailureReason", "") or ""),
        variants=variants,
        current_weights=weights,
    )
