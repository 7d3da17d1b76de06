"""The deployer's side effects, each a small function over boto3 clients (tests pass moto or Stubber).

Every function is safe to repeat: Step Functions retries a failed task, and a retry must neither fail on
what the first attempt created nor create it twice.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from typing import Any

from mlcore.s3_uri import split_s3_uri
from mlplatform.registry.deployment_ledger import DeploymentRecord
from mlplatform.registry.deployment_results import emit_result, result_detail
from mlplatform.serving.deployment_settings import DeployerSettings
from mlplatform.serving.endpoint_state import package_version
from mlsettings.training_code import IMAGE, TRAINING_KIND_KEY
from mlsettings.vocabulary import FALLBACK_FILE, VARIANT_MODEL_VERSION, VARIANT_PACKAGE_ARN

FALLBACK_MEMBER = FALLBACK_FILE
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def _error_code(err: Exception) -> str:
    return str((getattr(err, "response", None) or {}).get("Error", {}).get("Code", ""))


def _error_message(err: Exception) -> str:
    return str((getattr(err, "response", None) or {}).get("Error", {}).get("Message", ""))


# ------------------------------------------------------------------------------------------- start
def create_model_request(spec: Mapping[str, Any], settings: DeployerSettings) -> dict[str, Any]:
    """CreateModel from one planned variant's package."""
    request: dict[str, Any] = {
        "ModelName": spec["model_name"],
        "ExecutionRoleArn": settings.execution_role_arn,
        # The package carries image, ModelDataUrl and Environment (SAGEMAKER_PROGRAM=inference.py …).
        "PrimaryContainer": {"ModelPackageName": spec["model_package_arn"]},
        "EnableNetworkIsolation": settings.serving.network_isolation,
        "Tags": [{"Key": "mlops:endpoint", "Value": settings.endpoint_name},
                 {"Key": "mlops:model-package-version", "Value": str(spec["version"])}],
    }
    if settings.vpc_config:
        request["VpcConfig"] = dict(settings.vpc_config)
    return request


def ensure_models(sagemaker_client: Any, plan: Mapping[str, Any], settings: DeployerSettings) -> list[str]:
    """CreateModel from each new package (its registered container, image and artifact); returns names made."""
    created: list[str] = []
    for spec in plan["variants"].values():
        if not spec["create_model"] or spec["model_name"] in created:
            continue
        try:
            sagemaker_client.create_model(**create_model_request(spec, settings))
        except sagemaker_client.exceptions.ClientError as err:
            if "already exist" not in _error_message(err):
                raise
            # A retried task: the deterministic name already holds this package's model.
        created.append(spec["model_name"])
    return created


def ensure_endpoint_config(sagemaker_client: Any, plan: Mapping[str, Any]) -> None:
    if plan["endpoint_config"] is None:
        return
    try:
        sagemaker_client.create_endpoint_config(**plan["endpoint_config"])
    except sagemaker_client.exceptions.ClientError as err:
        if "already exist" not in _error_message(err):
            raise


def deregister_scaling(autoscaling_client: Any, endpoint_name: str, variants: Iterable[str]) -> None:
    """An autoscaled variant cannot change instance type until its scalable target is deregistered."""
    for variant in variants:
        try:
            autoscaling_client.deregister_scalable_target(
                ServiceNamespace="sagemaker", ResourceId=f"endpoint/{endpoint_name}/variant/{variant}",
                ScalableDimension=SCALABLE_DIMENSION)
        except autoscaling_client.exceptions.ObjectNotFoundException:
            continue


def endpoint_config_visible(sagemaker_client: Any, plan: Mapping[str, Any]) -> bool:
    """The API reference (CreateEndpoint): a just-created endpoint config may not be readable yet ("If the
    dependent entities are not yet in DynamoDB, this causes a validation error ... We also recommend that customers
    call DescribeEndpointConfig before calling CreateEndpoint"). False while it is not: the caller retries."""
    if plan["operation"] not in ("create", "update"):
        return True
    try:
        sagemaker_client.describe_endpoint_config(EndpointConfigName=plan["endpoint_config_name"])
    except sagemaker_client.exceptions.ClientError as err:
        if "Could not find" in _error_message(err):
            return False
        raise
    return True


def create_endpoint_request(plan: Mapping[str, Any]) -> dict[str, Any]:
    return {"EndpointName": plan["endpoint_name"], "EndpointConfigName": plan["endpoint_config_name"],
            "Tags": [{"Key": "mlops:endpoint", "Value": plan["endpoint_name"]}]}


def launch(sagemaker_client: Any, plan: Mapping[str, Any]) -> None:
    """CreateEndpoint the first time, UpdateEndpoint (blue/green, auto-rollback) afterwards."""
    if plan["operation"] == "create":
        sagemaker_client.create_endpoint(**create_endpoint_request(plan))
    elif plan["operation"] == "update":
        sagemaker_client.update_endpoint(**plan["update_endpoint"])


# ------------------------------------------------------------------------------------------- check
def describe_endpoint_or_none(sagemaker_client: Any, endpoint_name: str) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = sagemaker_client.describe_endpoint(EndpointName=endpoint_name)
    except sagemaker_client.exceptions.ClientError as err:
        if "Could not find" in _error_message(err) or _error_code(err) == "ResourceNotFound":
            return None
        raise
    return answer


def alarms_in_alarm(cloudwatch_client: Any, alarm_names: Iterable[str]) -> list[str]:
    names = list(alarm_names)
    firing: list[str] = []
    for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
        answer = cloudwatch_client.describe_alarms(AlarmNames=names[start:start + 100], StateValue="ALARM")
        firing += [alarm["AlarmName"] for alarm in answer.get("MetricAlarms", [])]
        firing += [alarm["AlarmName"] for alarm in answer.get("CompositeAlarms", [])]
    return sorted(firing)


# ------------------------------------------------------------------------------------------- report
def report(events_client: Any, ssm_client: Any, settings: DeployerSettings, *, plan: Mapping[str, Any],
           outcome: str, health_check: str, reason: str, deployed_at: str) -> dict[str, Any]:
    """Tell the registry what happened (a "Model Deployment Result" on this account's bus, forwarded to the
    registry's), then remember it here: the next promotion of the same version reads it (``last_result``).

    The registry's gate function writes the ledger row and the StageStatus; the deployer writes neither
    (mlplatform.registry.deployment_results)."""
    detail = result_detail(plan=plan, environment=settings.environment_name, outcome=outcome,
                           health_check=health_check, reason=reason, deployed_at=deployed_at)
    detail["model_package_group"] = detail["model_package_group"] or settings.model_package_group
    emit_result(events_client, settings.event_bus_name, detail)
    ssm_client.put_parameter(
        Name=settings.result_parameter(detail["stage"]), Type="String", Overwrite=True,
        Value=json.dumps({key: detail[key] for key in ("version", "model_package_arn", "outcome", "deployed_at")},
                         sort_keys=True),
        Description=f"the {settings.endpoint_name} deployer's last {detail['stage']} result")
    return detail


def last_result(ssm_client: Any, settings: DeployerSettings, stage: str) -> DeploymentRecord | None:
    """This deployer's last reported result for ``stage`` (None before its first)."""
    try:
        text = ssm_client.get_parameter(Name=settings.result_parameter(stage))["Parameter"]["Value"]
    except ssm_client.exceptions.ParameterNotFound:
        return None
    try:
        raw = json.loads(text)
        return DeploymentRecord(deployed_at=str(raw["deployed_at"]), version=int(raw["version"]), stage=stage,
                                outcome=str(raw["outcome"]), health_check="", model_package_arn=str(
                                    raw["model_package_arn"]), model_data_url="", image="", reason="", actor="")
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: treated as no result (the deployment verifies instead of skipping)


def publish_variant_map(ssm_client: Any, settings: DeployerSettings, mapping: Mapping[str, str]) -> dict[str, str]:
    """``/mlops/<env>/variant/<Variant>/model-package-arn`` (+ ``model-version``) for each serving variant."""
    written: dict[str, str] = {}
    for variant, arn in sorted(mapping.items()):
        values = {VARIANT_PACKAGE_ARN: arn, VARIANT_MODEL_VERSION: str(package_version(arn) or "")}
        for key, value in values.items():
            if not value:
                continue
            name = settings.variant_parameter(variant, key)
            ssm_client.put_parameter(Name=name, Value=value, Type="String", Overwrite=True,
                                     Description=f"what the {variant} variant of {settings.endpoint_name} serves")
            written[name] = value
    return written


def extract_fallback(model_tarball: bytes) -> dict[str, Any]:
    """``fallback.json`` from a ``model.tar.gz`` (the train step writes it at the archive root)."""
    with tarfile.open(fileobj=io.BytesIO(model_tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.lstrip("./") == FALLBACK_MEMBER:
                handle = archive.extractfile(member)
                if handle is None:
                    break
                document = json.loads(handle.read())
                if not isinstance(document, dict):
                    raise ValueError(f"{FALLBACK_MEMBER} is not a JSON object")
                return document
    raise ValueError(f"the model artifact has no {FALLBACK_MEMBER}")


def fallback_uri_of_package(description: Mapping[str, Any]) -> str:
    """Where an own image's fallback model lives: beside the package's evaluation report (the pipeline's Evaluate
    step fits it; the team's artifact holds none)."""
    statistics = str((((description.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {})
                     .get("S3Uri", ""))
    if not statistics.startswith("s3://") or "/" not in statistics[5:]:
        raise ValueError("the package has no ModelMetrics.ModelQuality.Statistics S3Uri, beside which an own image's "
                         f"{FALLBACK_MEMBER} is stored")
    return f"{statistics.rsplit('/', 1)[0]}/{FALLBACK_MEMBER}"


def read_fallback(s3_client: Any, description: Mapping[str, Any]) -> dict[str, Any]:
    """The package's fallback model: in its model artifact (the platform's programs pack it there) or, for an own
    image (its lineage metadata's training kind), beside its evaluation report."""
    container = ((description.get("InferenceSpecification") or {}).get("Containers") or [{}])[0]
    if (description.get("CustomerMetadataProperties") or {}).get(TRAINING_KIND_KEY) == IMAGE:
        bucket, key = split_s3_uri(fallback_uri_of_package(description))
        document = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
        if not isinstance(document, dict):
            raise ValueError(f"{FALLBACK_MEMBER} is not a JSON object")
        return document
    bucket, key = split_s3_uri(str(container.get("ModelDataUrl", "")))
    return extract_fallback(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def publish_fallback(sagemaker_client: Any, s3_client: Any, settings: DeployerSettings,
                     model_package_arn: str) -> str:
    """Copy the Champion's fallback model to where the inference Lambda loads it; returns the S3 URI."""
    description = sagemaker_client.describe_model_package(ModelPackageName=model_package_arn)
    document = read_fallback(s3_client, description)
    # The inference Lambda names its fallback answers after this version (fallback/<model_version>).
    document["model_version"] = str(description.get("ModelPackageVersion") or package_version(model_package_arn))
    document["model_package_arn"] = model_package_arn
    s3_client.put_object(Bucket=settings.artifact_bucket, Key=settings.fallback_model_key,
                         Body=json.dumps(document).encode("utf-8"), ContentType="application/json")
    return f"s3://{settings.artifact_bucket}/{settings.fallback_model_key}"


def register_autoscaling(autoscaling_client: Any, endpoint_name: str,
                         variants: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Scalable target + target-tracking policy per variant (possible only once the variant exists)."""
    registered = []
    for variant, (target, policy) in scaling_requests(endpoint_name, variants).items():
        autoscaling_client.register_scalable_target(**target)
        autoscaling_client.put_scaling_policy(**policy)
        registered.append(variant)
    return registered


def scaling_requests(endpoint_name: str, variants: Mapping[str, Mapping[str, Any]]
                     ) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Per variant, its RegisterScalableTarget and PutScalingPolicy requests, in variant order."""
    requests = {}
    for variant, spec in sorted(variants.items()):
        scaling = spec["scaling"]
        resource = f"endpoint/{endpoint_name}/variant/{variant}"
        target = {"ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": SCALABLE_DIMENSION,
                  "MinCapacity": int(scaling["min_capacity"]), "MaxCapacity": int(scaling["max_capacity"])}
        policy = {
            "PolicyName": f"{endpoint_name}-{variant}-invocations", "ServiceNamespace": "sagemaker",
            "ResourceId": resource, "ScalableDimension": SCALABLE_DIMENSION, "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": float(scaling["target_invocations_per_instance"]),
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": int(scaling["scale_in_cooldown"]),
                "ScaleOutCooldown": int(scaling["scale_out_cooldown"])}}
        requests[variant] = (target, policy)
    return requests


def revert_endpoint(sagemaker_client: Any, endpoint_name: str, previous_config: str, revert_config: str) -> None:
    """Put the previous endpoint config back after a failed post-deployment health check (SageMaker's own
    auto-rollback only covers the bake steps). Blue/green all-at-once: the old fleet serves until the new
    one is up. The API reference (UpdateEndpoint): "To update an endpoint, you must create a new EndpointConfig",
    so the previous config is copied under ``revert_config`` rather than named again."""
    clone_endpoint_config(sagemaker_client, source=previous_config, name=revert_config, endpoint_name=endpoint_name)
    sagemaker_client.update_endpoint(
        EndpointName=endpoint_name, EndpointConfigName=revert_config, RetainAllVariantProperties=True,
        ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredWeight"}])


def clone_endpoint_config(sagemaker_client: Any, *, source: str, name: str, endpoint_name: str) -> None:
    """CreateEndpointConfig ``name`` with every field of ``source`` that CreateEndpointConfig accepts (its input
    shape in the client's own service model decides which DescribeEndpointConfig fields those are)."""
    described = sagemaker_client.describe_endpoint_config(EndpointConfigName=source)
    members = sagemaker_client.meta.service_model.operation_model("CreateEndpointConfig").input_shape.members
    request = {key: value for key, value in described.items()
               if key in members and key not in ("EndpointConfigName", "Tags")}
    request.update(EndpointConfigName=name, Tags=[{"Key": "mlops:endpoint", "Value": endpoint_name}])
    try:
        sagemaker_client.create_endpoint_config(**request)
    except sagemaker_client.exceptions.ClientError as err:
        if "already exist" not in _error_message(err):
            raise
