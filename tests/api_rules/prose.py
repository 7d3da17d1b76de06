"""Rules the AWS API reference and developer guides state only in prose, one row each, with the sentence it
comes from. botocore's service model cannot express them, so neither botocore nor ``shapes`` sees them; a
request that breaks one is refused by the service (or silently does something else) only after deployment.

Each ``Rule`` checks one request (``check(operation, request) -> problems``) and carries a known-bad request
(``bad``) that tests/infra/test_requests.py expects it to refuse: the negative control. The quotes were read in
botocore 1.44.8's documentation strings (the API reference's text) and the pages named; where the guide's live
page was not available, the archived source of the guide is named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlsettings.instance_types import (
    MANAGED_SPOT_NO_CHECKPOINT_MAX_WAIT_SECONDS,
    SMALLEST_INSTANCE_STORE_GB,
    has_local_storage,
    instance_family,
)

Request = Mapping[str, Any]
API = "https://docs.aws.amazon.com/sagemaker/latest/APIReference"
GUIDE = "https://docs.aws.amazon.com/sagemaker/latest/dg"


@dataclass(frozen=True)
class Rule:
    id: str
    operations: tuple[str, ...]
    source: str
    """The page (title and address) or botocore member the quote is from."""
    quote: str
    check: Callable[[str, Request], list[str]]
    bad: tuple[str, dict[str, Any]]
    """(operation, request) the rule must refuse."""


def _processing_resources(request: Request) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield "ProcessingResources.ClusterConfig", request.get("ProcessingResources", {}).get("ClusterConfig", {})


def _volume_resources(operation: str, request: Request) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if operation == "CreateTrainingJob":
        yield "ResourceConfig", request.get("ResourceConfig", {})
    elif operation == "CreateProcessingJob":
        yield from _processing_resources(request)
    elif operation == "CreateTransformJob":
        yield "TransformResources", request.get("TransformResources", {})


def _no_volume_key_on_local_storage(operation: str, request: Request) -> list[str]:
    return [f"{where}.VolumeKmsKeyId is set on {res['InstanceType']}, which has local storage"
            for where, res in _volume_resources(operation, request)
            if res.get("VolumeKmsKeyId") and has_local_storage(str(res.get("InstanceType", "")))]


def _no_endpoint_key_on_local_storage(operation: str, request: Request) -> list[str]:
    local = [v["InstanceType"] for v in request.get("ProductionVariants", [])
             if has_local_storage(str(v.get("InstanceType", "")))]
    return [f"KmsKeyId is set while {local} have local storage"] if request.get("KmsKeyId") and local else []


def _volume_size_fits_local_storage(operation: str, request: Request) -> list[str]:
    return [f"{where}.VolumeSizeInGB {res['VolumeSizeInGB']} may exceed the instance store of {res['InstanceType']}"
            for where, res in _volume_resources(operation, request)
            if "VolumeSizeInGB" in res and has_local_storage(str(res.get("InstanceType", "")))
            and res["VolumeSizeInGB"] > SMALLEST_INSTANCE_STORE_GB]


def _hyperparameters(operation: str, request: Request) -> list[str]:
    values = request.get("HyperParameters", {})
    problems = [f"{len(values)} hyperparameters (at most 100)"] if len(values) > 100 else []
    problems += [f"hyperparameter {k!r} or its value is longer than 256 characters" for k, v in values.items()
                 if len(k) > 256 or len(str(v)) > 256]
    return problems


def _runtime_at_most_28_days(operation: str, request: Request) -> list[str]:
    stopping = request.get("StoppingCondition", {})
    return [f"StoppingCondition.{key} {stopping[key]} is more than 28 days" for key in ("MaxRuntimeInSeconds",)
            if stopping.get(key, 0) > 28 * 86400]


def _spot(operation: str, request: Request) -> list[str]:
    stopping = request.get("StoppingCondition", {})
    spot = request.get("EnableManagedSpotTraining") is True
    wait, run = stopping.get("MaxWaitTimeInSeconds"), stopping.get("MaxRuntimeInSeconds", 86400)
    if not spot:
        return ["MaxWaitTimeInSeconds without EnableManagedSpotTraining"] if wait is not None else []
    problems = [] if wait is not None and wait > run else [f"MaxWaitTimeInSeconds {wait} is not more than "
                                                           f"MaxRuntimeInSeconds {run}"]
    if "CheckpointConfig" not in request and (wait or 0) > MANAGED_SPOT_NO_CHECKPOINT_MAX_WAIT_SECONDS:
        problems.append(f"MaxWaitTimeInSeconds {wait} without CheckpointConfig (at most 3600)")
    return problems


def _processing_local_paths(operation: str, request: Request) -> list[str]:
    problems = []
    for item in request.get("ProcessingInputs", []):
        s3 = item.get("S3Input")
        if s3 and not item.get("AppManaged") and not str(s3.get("LocalPath", "")).startswith("/opt/ml/processing/"):
            problems.append(f"input {item.get('InputName')}: LocalPath {s3.get('LocalPath')!r}")
    for item in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
        s3 = item.get("S3Output")
        if s3 and not item.get("AppManaged") and not str(s3.get("LocalPath", "")).startswith("/opt/ml/processing/"):
            problems.append(f"output {item.get('OutputName')}: LocalPath {s3.get('LocalPath')!r}")
    return problems


def _package_environment(operation: str, request: Request) -> list[str]:
    problems = []
    for index, container in enumerate(request.get("InferenceSpecification", {}).get("Containers", [])):
        env = container.get("Environment", {})
        if len(env) > 16:
            problems.append(f"container {index}: {len(env)} environment entries (at most 16)")
        problems += [f"container {index}: environment {k!r} or its value is longer than 1024" for k, v in env.items()
                     if len(k) > 1024 or len(str(v)) > 1024]
        total = sum(len(k.encode()) + len(str(v).encode()) for k, v in env.items())
        if total > 32 * 1024:
            problems.append(f"container {index}: environment of {total} bytes (at most 32 KB, CreateModel)")
    return problems


def _tar_gz(value: Any) -> str | None:
    """A literal value, or the last literal part of a pipeline Std:Join."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and "Std:Join" in value:
        parts = [v for v in value["Std:Join"]["Values"] if isinstance(v, str)]
        return parts[-1] if parts else None
    return None


def _package_archives(operation: str, request: Request) -> list[str]:
    urls = [("SamplePayloadUrl", request.get("SamplePayloadUrl"))]
    urls += [(f"Containers[{i}].ModelDataUrl", c.get("ModelDataUrl"))
             for i, c in enumerate(request.get("InferenceSpecification", {}).get("Containers", []))]
    problems = []
    for where, url in urls:
        text = _tar_gz(url)
        if url is not None and text is not None and not text.endswith(".tar.gz") and not (
                isinstance(url, Mapping) and "Get" in url):
            problems.append(f"{where} {text!r} is not a .tar.gz archive")
    return problems


def _retained_properties(operation: str, request: Request) -> list[str]:
    excluded = [p.get("VariantPropertyType") for p in request.get("ExcludeRetainedVariantProperties", [])]
    problems = [f"ExcludeRetainedVariantProperties has {t}, '(Not currently supported.)'" for t in excluded
                if t == "DataCaptureConfig"]
    if excluded and request.get("RetainAllVariantProperties") is not True:
        problems.append("ExcludeRetainedVariantProperties without RetainAllVariantProperties true")
    return problems


def _routing(operation: str, request: Request) -> list[str]:
    policy = request.get("DeploymentConfig", {}).get("BlueGreenUpdatePolicy")
    if not policy:
        return []
    routing = policy.get("TrafficRoutingConfiguration", {})
    problems = []
    canary = routing.get("CanarySize", {})
    if canary.get("Type") == "CAPACITY_PERCENT" and canary.get("Value", 0) > 50:
        problems.append(f"CanarySize {canary['Value']} % is more than 50 %")
    linear = routing.get("LinearStepSize", {})
    if linear.get("Type") == "CAPACITY_PERCENT" and not 10 <= linear.get("Value", 0) <= 50:
        problems.append(f"LinearStepSize {linear['Value']} % is outside 10-50 %")
    steps = 1
    if routing.get("Type") == "LINEAR" and linear.get("Value"):
        steps = -(-100 // linear["Value"])
    waits = steps * routing.get("WaitIntervalInSeconds", 0) + policy.get("TerminationWaitInSeconds", 0)
    if policy.get("MaximumExecutionTimeoutInSeconds", 28800) <= waits:
        problems.append(f"MaximumExecutionTimeoutInSeconds {policy.get('MaximumExecutionTimeoutInSeconds')} is not "
                        f"larger than the waits ({waits} s)")
    return problems


def _no_rolling_update(operation: str, request: Request) -> list[str]:
    """The product's endpoints are multi-variant (Champion and Challenger): rolling updates exclude those."""
    return ["RollingUpdatePolicy on a multi-variant endpoint"] if request.get("DeploymentConfig", {}).get(
        "RollingUpdatePolicy") else []


def _no_guardrails_on_inf1(operation: str, request: Request) -> list[str]:
    return [f"{v['VariantName']} on {v['InstanceType']}: deployment guardrails fall back to all at once"
            for v in request.get("ProductionVariants", [])
            if instance_family(str(v.get("InstanceType", "ml.m5.large"))) == "inf1"]


def _transform_payload(operation: str, request: Request) -> list[str]:
    payload = request.get("MaxPayloadInMB", 6)
    problems = [f"MaxPayloadInMB {payload} is more than 100"] if payload > 100 else []
    if payload * request.get("MaxConcurrentTransforms", 1) > 100:
        problems.append("MaxConcurrentTransforms x MaxPayloadInMB is more than 100 MB")
    if request.get("BatchStrategy") == "MultiRecord" and request.get("TransformInput", {}).get("SplitType") != "Line":
        problems.append("BatchStrategy MultiRecord without SplitType Line")
    return problems


def _unique_tags(operation: str, request: Request) -> list[str]:
    keys = [t.get("Key") for t in request.get("Tags", [])]
    return [f"tag keys {keys} repeat"] if len(keys) != len(set(keys)) else []


def _captured_as_text(operation: str, request: Request) -> list[str]:
    capture = request.get("DataCaptureConfig", {})
    if not capture or operation != "CreateEndpointConfig":
        return []
    headers = capture.get("CaptureContentTypeHeader", {})
    listed = set(headers.get("CsvContentTypes", [])) | set(headers.get("JsonContentTypes", []))
    missing = {"text/csv", "application/json"} - listed
    return [f"{sorted(missing)} would be captured BASE64-encoded"] if missing else []


def _network_isolation(operation: str, request: Request) -> list[str]:
    if operation == "CreateProcessingJob":
        isolated = request.get("NetworkConfig", {}).get("EnableNetworkIsolation")
    else:
        isolated = request.get("EnableNetworkIsolation")
    return [] if isolated is True else [f"{operation} without EnableNetworkIsolation"]


def _scaling_capacity(operation: str, request: Request) -> list[str]:
    low, high = request.get("MinCapacity"), request.get("MaxCapacity")
    if low is None or high is None:
        return []
    return [] if 1 <= low <= high else [f"MinCapacity {low}, MaxCapacity {high}"]


_KEY = "arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d-0000-0000-0000-000000000000"
_ROLE = "arn:aws:iam::111122223333:role/job"

RULES: tuple[Rule, ...] = (
    Rule("volume_key_not_on_local_storage", ("CreateTrainingJob", "CreateProcessingJob", "CreateTransformJob"),
         "botocore ResourceConfig/ProcessingClusterConfig/TransformResources.VolumeKmsKeyId; "
         f"{API}/API_ResourceConfig.html",
         "Certain Nitro-based instances include local storage, dependent on the instance type. Local storage volumes "
         "are encrypted using a hardware module on the instance. You can't request a VolumeKmsKeyId when using an "
         "instance type with local storage.", _no_volume_key_on_local_storage,
         ("CreateTrainingJob", {"ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1,
                                                   "VolumeSizeInGB": 30, "VolumeKmsKeyId": _KEY}})),
    Rule("endpoint_key_not_on_local_storage", ("CreateEndpointConfig",),
         f"botocore 1.43 CreateEndpointConfigInput.KmsKeyId; {API}/API_CreateEndpointConfig.html",
         "If you specify a value for KmsKeyId when using any nitro-based instances with local storage, the call to "
         "CreateEndpointConfig fails. (botocore 1.44: the key \"does not encrypt instance local storage\".)",
         _no_endpoint_key_on_local_storage,
         ("CreateEndpointConfig", {"KmsKeyId": _KEY, "ProductionVariants": [
             {"VariantName": "Champion", "InstanceType": "ml.g4dn.xlarge"}]})),
    Rule("volume_size_within_instance_store", ("CreateTrainingJob", "CreateProcessingJob"),
         f"botocore ResourceConfig/ProcessingClusterConfig.VolumeSizeInGB; {API}/API_ProcessingClusterConfig.html",
         "When using these instances for processing, Amazon SageMaker mounts the local instance storage instead of "
         "Amazon EBS gp2 storage. You can't request a VolumeSizeInGB greater than the total size of the local "
         "instance storage.", _volume_size_fits_local_storage,
         ("CreateProcessingJob", {"ProcessingResources": {"ClusterConfig": {
             "InstanceType": "ml.m5d.large", "InstanceCount": 1, "VolumeSizeInGB": 500}}})),
    Rule("hyperparameter_limits", ("CreateTrainingJob",),
         f"botocore CreateTrainingJobRequest.HyperParameters; {API}/API_CreateTrainingJob.html",
         "You can specify a maximum of 100 hyperparameters. Each hyperparameter is a key-value pair. Each key and "
         "value is limited to 256 characters, as specified by the Length Constraint.", _hyperparameters,
         ("CreateTrainingJob", {"HyperParameters": {"objective": "x" * 300}})),
    Rule("runtime_at_most_28_days", ("CreateTrainingJob",),
         f"botocore StoppingCondition.MaxRuntimeInSeconds; {API}/API_StoppingCondition.html",
         "The default value is 1 day. The maximum value is 28 days.", _runtime_at_most_28_days,
         ("CreateTrainingJob", {"StoppingCondition": {"MaxRuntimeInSeconds": 29 * 86400}})),
    Rule("managed_spot_waits", ("CreateTrainingJob",),
         f"botocore StoppingCondition.MaxWaitTimeInSeconds; {GUIDE}/model-managed-spot-training.html",
         "It must be equal to or greater than MaxRuntimeInSeconds. / MaxWaitTimeInSeconds must be larger than "
         "MaxRuntimeInSeconds. / SageMaker AI built-in algorithms and marketplace algorithms that do not checkpoint "
         "are currently limited to a MaxWaitTimeInSeconds of 3600 seconds (60 minutes).", _spot,
         ("CreateTrainingJob", {"EnableManagedSpotTraining": True,
                                "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}})),
    Rule("processing_paths_under_opt_ml_processing", ("CreateProcessingJob",),
         f"botocore ProcessingS3Input.LocalPath; {API}/API_ProcessingS3Input.html",
         "LocalPath is an absolute path to the input data and must begin with /opt/ml/processing/ . LocalPath is a "
         "required parameter when AppManaged is False (default).", _processing_local_paths,
         ("CreateProcessingJob", {"ProcessingInputs": [{"InputName": "data", "AppManaged": False, "S3Input": {
             "S3Uri": "s3://b/k", "LocalPath": "/tmp/data"}}]})),
    Rule("package_container_environment", ("CreateModelPackage",),
         f"botocore ModelPackageContainerDefinition.Environment, ContainerDefinition.Environment; "
         f"{API}/API_ModelPackageContainerDefinition.html",
         "Each key and value in the Environment string to string map can have length of up to 1024. We support up "
         "to 16 entries in the map. / The maximum length of all keys and values in the map, combined, is 32 KB.",
         _package_environment,
         ("CreateModelPackage", {"InferenceSpecification": {"Containers": [
             {"Environment": {f"K{i}": "v" for i in range(17)}}]}})),
    Rule("package_archives_are_tar_gz", ("CreateModelPackage",),
         f"botocore ModelPackageContainerDefinition.ModelDataUrl, CreateModelPackageInput.SamplePayloadUrl; "
         f"{API}/API_CreateModelPackage.html",
         "This path must point to a single gzip compressed tar archive (.tar.gz suffix).", _package_archives,
         ("CreateModelPackage", {"SamplePayloadUrl": "s3://b/sample_payload.json"})),
    Rule("retained_variant_properties", ("UpdateEndpoint",),
         f"botocore VariantProperty.VariantPropertyType, UpdateEndpointInput.ExcludeRetainedVariantProperties; "
         f"{API}/API_VariantProperty.html",
         "DataCaptureConfig : (Not currently supported.) / When you are updating endpoint resources with "
         "RetainAllVariantProperties , whose value is set to true , ExcludeRetainedVariantProperties specifies the "
         "list of type VariantProperty to override with the values provided by EndpointConfig .",
         _retained_properties,
         ("UpdateEndpoint", {"RetainAllVariantProperties": True,
                             "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DataCaptureConfig"}]})),
    Rule("blue_green_traffic_routing", ("UpdateEndpoint",),
         f"botocore TrafficRoutingConfig, BlueGreenUpdatePolicy; {API}/API_TrafficRoutingConfig.html",
         "[CanarySize] Value must be less than or equal to 50% of the variant's total instance count. / "
         "[LinearStepSize] Value must be 10-50% of the variant's total instance count. / Note that the timeout "
         "value should be larger than the total waiting time specified in TerminationWaitInSeconds and "
         "WaitIntervalInSeconds.", _routing,
         ("UpdateEndpoint", {"DeploymentConfig": {"BlueGreenUpdatePolicy": {
             "TrafficRoutingConfiguration": {"Type": "LINEAR", "WaitIntervalInSeconds": 600,
                                             "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 5}},
             "TerminationWaitInSeconds": 300, "MaximumExecutionTimeoutInSeconds": 3600}}})),
    Rule("no_rolling_update_on_multi_variant", ("UpdateEndpoint",),
         f"Developer Guide, Exclusions; {GUIDE}/deployment-guardrails-exclusions.html",
         "If you're doing a rolling deployment, there are additional feature-based exclusions: Serverless inference "
         "endpoints; Multi-variant inference endpoints", _no_rolling_update,
         ("UpdateEndpoint", {"DeploymentConfig": {"RollingUpdatePolicy": {"MaximumBatchSize": {
             "Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 60}}})),
    Rule("guardrails_not_on_inf1", ("CreateEndpointConfig",),
         f"Developer Guide, Exclusions; {GUIDE}/deployment-guardrails-exclusions.html",
         "If your endpoint uses any of the following features, you cannot use deployment guardrails on your endpoint, "
         "and your endpoint will fall back to using a blue/green deployment with all at once traffic shifting and no "
         "final baking period: Marketplace containers; Endpoints that use Inf1 (Inferentia-based) instances",
         _no_guardrails_on_inf1,
         ("CreateEndpointConfig", {"ProductionVariants": [{"VariantName": "Champion",
                                                           "InstanceType": "ml.inf1.xlarge"}]})),
    Rule("transform_payload", ("CreateTransformJob",),
         f"botocore CreateTransformJobRequest.MaxPayloadInMB, BatchStrategy; {API}/API_CreateTransformJob.html",
         "The value of MaxPayloadInMB cannot be greater than 100 MB. If you specify the MaxConcurrentTransforms "
         "parameter, the value of (MaxConcurrentTransforms * MaxPayloadInMB) also cannot exceed 100 MB. / To fit as "
         "many records in a mini-batch as can fit within the MaxPayloadInMB limit, set BatchStrategy to MultiRecord "
         "and SplitType to Line .", _transform_payload,
         ("CreateTransformJob", {"MaxPayloadInMB": 60, "MaxConcurrentTransforms": 2})),
    Rule("tag_keys_unique", ("CreateModel", "CreateEndpointConfig", "CreateEndpoint", "CreateTransformJob",
                             "CreateProcessingJob"),
         f"botocore Tag.Key; {API}/API_Tag.html", "The tag key. Tag keys must be unique per resource.",
         _unique_tags, ("CreateModel", {"Tags": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]})),
    Rule("served_types_captured_as_text", ("CreateEndpointConfig",),
         f"botocore DataCaptureConfig.CaptureContentTypeHeader; {API}/API_DataCaptureConfig.html",
         "Configuration specifying how to treat different headers. If no headers are specified SageMaker AI will by "
         "default base64 encode when capturing the data.", _captured_as_text,
         ("CreateEndpointConfig", {"DataCaptureConfig": {"CaptureContentTypeHeader": {
             "CsvContentTypes": ["text/csv"]}}})),
    Rule("network_isolation", ("CreateTrainingJob", "CreateProcessingJob", "CreateModel"),
         f"Developer Guide, Training and Inference Containers Run in Internet-Free Mode; "
         f"{GUIDE}/mkt-algo-model-internet-free.html",
         "If you enable network isolation, the containers are not able to make any outbound network calls, even to "
         "other AWS services such as Amazon S3. Additionally, no AWS credentials are made available to the container "
         "runtime environment. (Every job and model the product creates runs so: a project rule.)",
         _network_isolation, ("CreateModel", {"ModelName": "m", "ExecutionRoleArn": _ROLE})),
    Rule("scaling_floor_above_zero", ("RegisterScalableTarget",),
         "botocore application-autoscaling RegisterScalableTargetRequest.MinCapacity; "
         "https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html",
         "For the following resources, the minimum value allowed is 0. ... SageMaker endpoint variants ... It's "
         "strongly recommended that you specify a value greater than 0.", _scaling_capacity,
         ("RegisterScalableTarget", {"MinCapacity": 0, "MaxCapacity": 2})),
)


def prose_problems(operation: str, request: Request) -> list[str]:
    """Every prose rule the request breaks, as ``rule id: problem`` lines."""
    return [f"{rule.id}: {problem}" for rule in RULES if operation in rule.operations
            for problem in rule.check(operation, request)]
