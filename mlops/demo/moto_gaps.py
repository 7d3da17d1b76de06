"""Where moto 5.2.5 falls short of the AWS behaviour our code relies on: the test doubles, all in this one
module. Used by the tests and by `make demo`; never imported by the stacks, the Lambdas or the CLI commands
that run against AWS.

Registry (``patch_moto_registry``): moto neither stores nor returns ``ModelLifeCycle``; its
UpdateModelPackage overwrites ApprovalDescription, CustomerMetadataProperties and the approval status with
None when the request leaves them out (real AWS changes only the fields in the request); SageMaker's
EventBridge events are never sent and LastModifiedBy is a fixed profile. The patch keeps fields that are not
passed, stores ModelLifeCycle, records who made each change (``acting_as``) and appends the "SageMaker Model
Package State Change" event real SageMaker would send to ``RealisticRegistry.events``, so callers deliver
them to the gate — in order, shuffled or duplicated.

UpdateEndpoint (``patch_update_endpoint``): not implemented by moto. ``SimulatedRollouts`` adds it; each call
is recorded and resolved as the caller says (``succeed``: InService on the new config; ``rollback``:
InService on the old config with a FailureReason, as SageMaker's auto-rollback leaves it; ``in_progress``:
Updating; ``rollback_failed``: UpdateRollbackFailed).

InvokeEndpoint (``ModelRuntime``): moto returns canned answers and writes no data capture. ModelRuntime is
a sagemaker-runtime client stand-in that scores with ``pipelines/serving/inference.py`` on the model
artifact of the package each variant serves (read back from S3), routes untargeted requests by the
variants' weights, can write SageMaker-style data capture, and injects faults per variant
(``wrong_answers``: HTTP 200 with shifted probabilities; ``errors``: ModelError).
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker import responses as sagemaker_responses
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.exceptions import ValidationError as SageMakerValidationError
from moto.sagemaker.models import sagemaker_backends

from pipelines.serving import inference


class Patcher(Protocol):
    """pytest's MonkeyPatch, or ``AttributePatcher`` outside pytest."""

    def setattr(self, target: Any, name: str, value: Any) -> None: ...


class AttributePatcher:
    """Sets attributes and puts every one back on ``undo`` (what MonkeyPatch does, for the demo)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        self._saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._saved:
            target, name, value = self._saved.pop()
            setattr(target, name, value)


@dataclass
class RealisticRegistry:
    """Handle on the patched registry: who is acting, and the events SageMaker would have sent."""

    actor: str = "arn:aws:sts::123456789012:assumed-role/DataScientist/alice"
    events: list[dict[str, Any]] = field(default_factory=list)

    @contextmanager
    def acting_as(self, actor: str) -> Iterator[None]:
        previous, self.actor = self.actor, actor
        try:
            yield
        finally:
            self.actor = previous

    def take_events(self) -> list[dict[str, Any]]:
        taken, self.events[:] = list(self.events), []
        return taken


def _state_change_event(package: Any, *, epoch_millis: bool = False) -> dict[str, Any]:
    def when(moment: datetime | None) -> Any:
        moment = (moment or package.creation_time).replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000) if epoch_millis else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    detail: dict[str, Any] = {
        "ModelPackageGroupName": package.model_package_group_name,
        "ModelPackageVersion": package.model_package_version,
        "ModelPackageArn": package.arn,
        "CreationTime": when(package.creation_time),
        "LastModifiedTime": when(package.last_modified_time),
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": package.model_approval_status,
        "CertifyForMarketplace": False,
    }
    if getattr(package, "model_life_cycle", None):
        detail["ModelLifeCycle"] = dict(package.model_life_cycle)
    _, _, _, region, account, _ = package.arn.split(":", 5)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [package.arn],
        "detail": detail,
    }


def patch_moto_registry(monkeypatch: Patcher) -> RealisticRegistry:
    registry = RealisticRegistry()
    original_create = sagemaker_responses.SageMakerResponse.create_model_package
    original_response_object = sagemaker_models.ModelPackage.gen_response_object

    def user_context() -> dict[str, Any]:
        return {"UserProfileName": registry.actor.rsplit("/", 1)[-1], "IamIdentity": {"Arn": registry.actor}}

    def find(backend: Any, arn: str) -> Any:
        package = backend.model_packages.get(backend.model_package_name_mapping.get(arn, arn))
        if package is None:
            raise SageMakerValidationError(message=f"Model package {arn} does not exist.")
        return package

    def create_model_package(self: Any) -> ActionResult:
        result = original_create(self)
        package = find(self.sagemaker_backend, result.result["ModelPackageArn"])  # type: ignore[index]
        package.model_life_cycle = self._get_param("ModelLifeCycle")
        package.created_by = user_context()
        registry.events.append(_state_change_event(package))
        return result

    def update_model_package(self: Any) -> ActionResult:
        package = find(self.sagemaker_backend, self._get_param("ModelPackageArn"))
        if self._get_param("ModelApprovalStatus") is not None:
            package.set_model_approval_status(self._get_param("ModelApprovalStatus"))
        if self._get_param("ApprovalDescription") is not None:
            package.approval_description = self._get_param("ApprovalDescription")
        if self._get_param("ModelLifeCycle") is not None:
            package.model_life_cycle = self._get_param("ModelLifeCycle")
        if self._get_param("CustomerMetadataProperties") is not None:
            package.customer_metadata_properties = {
                **(package.customer_metadata_properties or {}),
                **self._get_param("CustomerMetadataProperties"),
            }
        package.remove_customer_metadata_property(self._get_param("CustomerMetadataPropertiesToRemove", []))
        package.last_modified_time = utcnow()
        package.last_modified_by = user_context()
        registry.events.append(_state_change_event(package))
        return ActionResult({"ModelPackageArn": package.arn})

    def gen_response_object(self: Any) -> dict[str, Any]:
        response = original_response_object(self)
        if getattr(self, "model_life_cycle", None):
            response["ModelLifeCycle"] = dict(self.model_life_cycle)
        return response

    monkeypatch.setattr(sagemaker_responses.SageMakerResponse, "create_model_package", create_model_package)
    monkeypatch.setattr(sagemaker_responses.SageMakerResponse, "update_model_package", update_model_package)
    monkeypatch.setattr(sagemaker_models.ModelPackage, "gen_response_object", gen_response_object)
    return registry


# ------------------------------------------------------------------------------------------- rollouts
@dataclass
class SimulatedRollouts:
    """UpdateEndpoint for moto. ``mode`` decides how the next updates end."""

    mode: str = "succeed"
    requests: list[dict[str, Any]] = field(default_factory=list)
    account: str = "123456789012"
    region: str = "us-east-1"
    endpoint_name: str = "mlops-dev"

    def endpoint(self) -> Any:
        return sagemaker_backends[self.account][self.region].endpoints[self.endpoint_name]

    def set_status(self, status: str, reason: str | None = None) -> None:
        endpoint = self.endpoint()
        endpoint.endpoint_status = status
        endpoint.failure_reason = reason


def patch_update_endpoint(monkeypatch: Patcher, *, account: str = "123456789012", region: str = "us-east-1",
                          endpoint_name: str = "mlops-dev") -> SimulatedRollouts:
    rollouts = SimulatedRollouts(account=account, region=region, endpoint_name=endpoint_name)

    def update_endpoint(self: Any) -> ActionResult:
        backend = self.sagemaker_backend
        name = self._get_param("EndpointName")
        endpoint = backend.endpoints[name]
        request = {key: self._get_param(key) for key in (
            "EndpointName", "EndpointConfigName", "RetainAllVariantProperties", "ExcludeRetainedVariantProperties",
            "DeploymentConfig")}
        rollouts.requests.append(request)
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f"Cannot update in-progress endpoint {endpoint.arn}")
        config = backend.describe_endpoint_config(request["EndpointConfigName"])
        if rollouts.mode in ("succeed", "in_progress", "rollback_failed"):
            endpoint.endpoint_config_name = request["EndpointConfigName"]
            endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.endpoint_status = {"succeed": "InService", "rollback": "InService", "in_progress": "Updating",
                                    "rollback_failed": "UpdateRollbackFailed"}[rollouts.mode]
        endpoint.failure_reason = (f"Alarm {name}-Challenger-5xx in ALARM; rolled back"
                                   if rollouts.mode in ("rollback", "rollback_failed") else None)
        return ActionResult({"EndpointArn": endpoint.arn})

    if not hasattr(sagemaker_responses.SageMakerResponse, "update_endpoint"):
        sagemaker_responses.SageMakerResponse.update_endpoint = None  # type: ignore[attr-defined]
    monkeypatch.setattr(sagemaker_responses.SageMakerResponse, "update_endpoint", update_endpoint)
    return rollouts


# ------------------------------------------------------------------------------------------- runtime
class _Body(io.BytesIO):
    pass


@dataclass
class ModelRuntime:
    """A sagemaker-runtime client stand-in that serves the real model of the package each variant serves."""

    wrong_answers: set[str] = field(default_factory=set)
    errors: set[str] = field(default_factory=set)
    calls: list[dict[str, Any]] = field(default_factory=list)
    region: str = "us-east-1"
    capture_bucket: str | None = None  # set: write SageMaker-style data capture like a real endpoint
    capture_prefix: str = "endpoint"
    served: dict[str, list[int]] = field(default_factory=dict)  # rows answered, per request, per variant
    _models: dict[str, inference.ServingModel] = field(default_factory=dict)

    def _model(self, package_arn: str) -> inference.ServingModel:
        if package_arn not in self._models:
            sagemaker = boto3.client("sagemaker", region_name=self.region)
            s3 = boto3.client("s3", region_name=self.region)
            package = sagemaker.describe_model_package(ModelPackageName=package_arn)
            url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
            bucket, _, key = url[5:].partition("/")
            scratch = Path(tempfile.mkdtemp(prefix="served-"))
            with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
                tar.extractall(scratch, filter="data")
            self._models[package_arn] = inference.model_fn(scratch)
        return self._models[package_arn]

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        from lambdas.health_check.endpoint_state import read_endpoint_state

        self.calls.append(request)
        sagemaker = boto3.client("sagemaker", region_name=self.region)
        variant = request.get("TargetVariant") or self._weighted_variant(sagemaker, request["EndpointName"])
        if variant in self.errors:
            raise ClientError({"Error": {"Code": "ModelError", "Message": "Received server error (500)"}},
                              "InvokeEndpoint")
        state = read_endpoint_state(sagemaker, request["EndpointName"])
        assert state is not None
        model = self._model(state.variants[variant].model_package_arn)
        prediction = inference.predict_fn(inference.input_fn(request["Body"], request["ContentType"]), model)
        if variant in self.wrong_answers:
            prediction.probabilities = [None if p is None else min(1.0, p + 0.2) if p < 0.5 else p - 0.2
                                        for p in prediction.probabilities]
        body = inference.output_fn(prediction, request.get("Accept"))
        self.served.setdefault(variant, []).append(len(prediction.probabilities))
        if self.capture_bucket:
            self._capture(request, body, variant)
        return {"Body": _Body(body.encode()), "ContentType": request.get("Accept") or "text/csv",
                "InvokedProductionVariant": variant}

    def _weighted_variant(self, sagemaker: Any, endpoint_name: str) -> str:
        """Route like an endpoint without TargetVariant: by the variants' current weights."""
        variants = sagemaker.describe_endpoint(EndpointName=endpoint_name)["ProductionVariants"]
        weights = [float(v.get("CurrentWeight", v.get("DesiredWeight", 1.0)) or 0.0) for v in variants]
        self._draws = getattr(self, "_draws", 0) + 1
        point = (self._draws * 0.6180339887) % 1.0 * (sum(weights) or 1.0)  # deterministic, evenly spread
        for variant, weight in zip(variants, weights, strict=True):
            if point < weight:
                return str(variant["VariantName"])
            point -= weight
        return str(variants[0]["VariantName"])

    def _capture(self, request: dict[str, Any], body: str, variant: str) -> None:
        """One data-capture line per request, under <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/."""
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        record = {"captureData": {
            "endpointInput": {"observedContentType": request["ContentType"], "mode": "INPUT",
                              "data": request["Body"].decode() if isinstance(request["Body"], bytes)
                              else str(request["Body"]), "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": body,
                               "encoding": "CSV"}},
            "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "eventVersion": "0"}
        key = (f"{self.capture_prefix}/{request['EndpointName']}/{variant}/{now:%Y/%m/%d/%H}/"
               f"capture-{uuid.uuid4().hex}.jsonl")
        boto3.client("s3", region_name=self.region).put_object(Bucket=self.capture_bucket, Key=key,
                                                               Body=(json.dumps(record) + "\n").encode())


# ------------------------------------------------------------------------------------------- CloudWatch
# moto's CloudWatch stores metrics but gets none from EMF log lines, crashes on percentile statistics in
# GetMetricData, and never evaluates an alarm. The three doubles below stand in for exactly that.


def publish_emf(cloudwatch: Any, stdout: str) -> int:
    """Put the metrics of the EMF documents a function printed, as CloudWatch Logs would extract them."""
    count = 0
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = [{"Name": d, "Value": str(document[d])} for d in dimension_set]
                data = [{"MetricName": m["Name"], "Dimensions": dimensions, "Unit": m.get("Unit", "None"),
                         "Value": float(document[m["Name"]] if not isinstance(document[m["Name"]], list)
                                        else document[m["Name"]][0])}
                        for m in directive["Metrics"] if m["Name"] in document]
                if data:
                    cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data)
                    count += len(data)
    return count


def evaluate_alarm(cloudwatch: Any, sns: Any, alarm_name: str) -> dict[str, Any]:
    """One evaluation of a single-metric alarm over its last period; on a change, the alarm's SNS message."""
    alarm = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    statistic = alarm.get("Statistic", "Maximum")
    datapoints = cloudwatch.get_metric_statistics(
        Namespace=alarm["Namespace"], MetricName=alarm["MetricName"], Dimensions=alarm.get("Dimensions", []),
        StartTime=now - timedelta(seconds=alarm["Period"] * max(1, alarm["EvaluationPeriods"])),
        EndTime=now + timedelta(minutes=1), Period=alarm["Period"], Statistics=[statistic])["Datapoints"]
    value = max((d[statistic] for d in datapoints), default=None)
    threshold, operator = float(alarm["Threshold"]), alarm["ComparisonOperator"]
    breached = value is not None and (
        (operator == "GreaterThanOrEqualToThreshold" and value >= threshold)
        or (operator == "GreaterThanThreshold" and value > threshold)
        or (operator == "LessThanThreshold" and value < threshold)
        or (operator == "LessThanOrEqualToThreshold" and value <= threshold))
    state = "INSUFFICIENT_DATA" if value is None else ("ALARM" if breached else "OK")
    reason = f"{statistic} {value} against threshold {alarm['Threshold']} ({alarm['ComparisonOperator']})"
    cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue=state, StateReason=reason)
    message = None
    if state == "ALARM":
        message = {"AlarmName": alarm_name, "AlarmDescription": alarm.get("AlarmDescription"),
                   "NewStateValue": state, "NewStateReason": reason, "StateChangeTime": now.isoformat()}
        for topic in alarm.get("AlarmActions", []):
            sns.publish(TopicArn=topic, Subject=f"ALARM: {alarm_name}", Message=json.dumps(message))
    return {"alarm": alarm_name, "state": state, "value": value, "message": message}


@dataclass
class EndpointMetrics:
    """GetMetricData for the SageMaker endpoint metrics the A/B report reads, computed from what the model
    runtime served and from latencies the caller measured (moto cannot compute percentiles)."""

    runtime: ModelRuntime
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        results = []
        for query in request["MetricDataQueries"]:
            stat = query["MetricStat"]
            dims = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
            variant, metric = dims.get("VariantName", ""), stat["Metric"]["MetricName"]
            latencies = sorted(self.latencies_ms.get(variant, []))
            value: float | None
            if metric == "Invocations":
                value = float(len(self.runtime.served.get(variant, [])))
            elif metric == "Invocation5XXErrors":
                value = float(self.errors.get(variant, 0))
            elif metric == "Invocation4XXErrors":
                value = 0.0
            elif metric == "ModelLatency" and latencies:
                q = 0.5 if stat["Stat"] == "p50" else 0.99
                value = latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000.0  # microseconds
            else:
                value = None
            results.append({"Id": query["Id"], "Values": [] if value is None else [value], "StatusCode": "Complete"})
        return {"MetricDataResults": results}
