"""Where moto 5.2.5 falls short of the AWS behaviour our code relies on: the test doubles, all in this one
module. Used by the tests and by `make demo`; never imported by the stacks, the Lambdas or the CLI commands
that run against AWS.

Registry (``patch_moto_registry``): moto neither stores nor returns ``ModelLifeCycle``; its
UpdateModelPackage overwrites ApprovalDescription, CustomerMetadataProperties and the approval status with
None when the request leaves them out (real AWS changes only the fields in the request); SageMaker's
EventBridge events are never sent and LastModifiedBy is a fixed profile; DescribeModelPackage lacks the required
ModelPackageName. The patch keeps fields that are not passed, stores ModelLifeCycle, records who made each change
(``acting_as``) and appends the "SageMaker Model Package State Change" event real SageMaker would send to
``RealisticRegistry.events``, so callers deliver them to the gate — in order, shuffled or duplicated.

UpdateEndpoint (``patch_update_endpoint``): not implemented by moto. ``SimulatedRollouts`` adds it; each call
is recorded and resolved as the caller says (``succeed``: InService on the new config; ``rollback``:
InService on the old config with a FailureReason, as SageMaker's auto-rollback leaves it; ``in_progress``:
Updating; ``rollback_failed``: UpdateRollbackFailed). DescribeEndpoint then reports data capture as the
DataCaptureConfigSummary SageMaker answers (moto copies the endpoint config's input form).

InvokeEndpoint (``ModelRuntime``): moto returns canned answers and writes no data capture. ModelRuntime is
a sagemaker-runtime client stand-in that scores with ``pipelines/serving/inference.py`` on the model
artifact of the package each variant serves (read back from S3), routes untargeted requests by the
variants' weights, can write SageMaker-style data capture, and injects faults per variant
(``wrong_answers``: HTTP 200 with shifted probabilities; ``errors``: ModelError). Tests pass it where a
client goes; ``patch_invoke_endpoint`` puts it behind every botocore client of the process instead (the
demo passes nothing into a Lambda handler: the handlers' own clients reach it); then it answers from the
account of the credentials the request carries, where the caller's endpoint is.

Accounts (``patch_cross_account_packages``, ``patch_event_envelopes``): moto keeps each account's state apart
(credentials from STS AssumeRole land in the role's account), but DescribeModelPackage of a package ARN in
another account looks only in the caller's account, and its EventBridge deliveries lose the envelope's
``account`` (left out of what reaches an SQS target; set to the receiving account when a rule forwards an event to
another account's bus). Both patches are named there.

CloudWatch: moto extracts no metrics from EMF log lines (``publish_emf`` puts them, as the EMF specification
says CloudWatch Logs extracts them), never evaluates an alarm nor notifies its actions (``evaluate_alarm``: one
evaluation over raw values, percentiles included, the state set, the alarm's SNS message published; an alarm it
cannot compute raises ``UnsupportedAlarm``), and crashes on percentile statistics (``EndpointMetrics``: the
endpoint metrics the A/B report reads, computed from what ``ModelRuntime`` served).

Each double is checked against a real reference in tests/functional/test_testkit_fidelity.py.
"""

from __future__ import annotations

import base64
import contextvars
import copy
import io
import json
import math
import re
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.handlers
from botocore.exceptions import ClientError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.events import models as events_models
from moto.events import utils as events_utils
from moto.sagemaker import models as sagemaker_models
from moto.sagemaker import responses as sagemaker_responses
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.exceptions import ValidationError as SageMakerValidationError
from moto.sagemaker.models import sagemaker_backends
from moto.utilities.arns import parse_arn

from mlcore.outputs import OUTPUTS
from mlplatform.serving.deployment_plan import CAPTURE_CONTENT_TYPE_HEADER
from mlsettings.problem_types import BINARY
from mlsettings.vocabulary import PACKAGE_STATE_CHANGE, SAGEMAKER_SOURCE
from pipelines.serving import inference
from testkit.inference_doubles import sagemaker_runtime_error

_LOADER: list[Any] = []  # the one botocore data loader every session of ``boto3_session`` shares


def boto3_session(**options: Any) -> boto3.Session:
    """A boto3 session that shares one botocore loader (and its parsed service models) with the other sessions
    made here: every new session would otherwise parse the models again, and SageMaker's is megabytes of JSON.
    Used where the demo needs many sessions (one per account, role and caller)."""
    import botocore.session

    core = botocore.session.get_session()
    if _LOADER:
        core.register_component("data_loader", _LOADER[0])
    else:
        _LOADER.append(core.get_component("data_loader"))
    return boto3.Session(botocore_session=core, **options)


class Patcher(Protocol):
    """pytest's MonkeyPatch, or ``AttributePatcher`` outside pytest."""

    def setattr(self, target: Any, name: str, value: Any) -> None: ...


class AttributePatcher:
    """Sets attributes and puts every one back on ``undo`` (what MonkeyPatch does, for the demo)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []
        self._closers: list[Callable[[], None]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        self._saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def on_undo(self, close: Callable[[], None]) -> None:
        """Call ``close`` on ``undo`` (what the patched world started and must stop: an own image's servers)."""
        self._closers.append(close)

    def undo(self) -> None:
        while self._closers:
            self._closers.pop()()
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


# The time layout of AWS's sample event (tests/fixtures/events/sagemaker-model-package-state-change.json). The
# detail's times keep their microseconds: the gate tells changes apart by LastModifiedTime, and tests make several
# within one second (docs/VERIFICATION.md, "Test kit").
_EVENT_TIME = "%Y-%m-%dT%H:%M:%SZ"
_DETAIL_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _state_change_event(package: Any) -> dict[str, Any]:
    def when(moment: datetime | None) -> str:
        return (moment or package.creation_time).replace(tzinfo=UTC).strftime(_DETAIL_TIME)

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
        "detail-type": PACKAGE_STATE_CHANGE,
        "source": SAGEMAKER_SOURCE,
        "account": account,
        "time": datetime.now(UTC).strftime(_EVENT_TIME),
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
        # moto leaves out ModelPackageName, which DescribeModelPackage's output shape requires, and names the
        # status items by the package ARN, which their EntityName pattern refuses (botocore's service model).
        response.setdefault("ModelPackageName", self.model_package_name)
        details = copy.deepcopy(response.get("ModelPackageStatusDetails") or {})
        for items in details.values():
            for item in items:
                item["Name"] = self.model_package_name
        if details:
            response["ModelPackageStatusDetails"] = details
        return response

    monkeypatch.setattr(sagemaker_responses.SageMakerResponse, "create_model_package", create_model_package)
    monkeypatch.setattr(sagemaker_responses.SageMakerResponse, "update_model_package", update_model_package)
    monkeypatch.setattr(sagemaker_models.ModelPackage, "gen_response_object", gen_response_object)
    return registry


# ------------------------------------------------------------------------------------------- accounts
def patch_cross_account_packages(monkeypatch: Patcher) -> None:
    """DescribeModelPackage of a package ARN in another account: answered from that account's registry.

    A consumer account's deployer, health check and drift monitor describe the registry account's versions by
    their ARN (and CreateModel names the same ARN, which moto stores without looking it up). The real service
    resolves a cross-account package ARN through the model package group's resource policy ([G] in
    docs/ACCOUNTS.md), which admits exactly the consumer roles that need it; moto has no resource policies,
    so this patch routes the lookup by the ARN's account and checks no policy at all. The policies themselves
    are checked offline, on both halves, by tests/infra/test_accounts.py. A name (not an ARN), or an ARN in
    the caller's own account, is looked up as moto does."""
    original = sagemaker_responses.SageMakerResponse.describe_model_package

    def describe_model_package(self: Any) -> ActionResult:
        name = str(self._get_param("ModelPackageName") or "")
        if name.startswith("arn:") and name.count(":") >= 5:
            _, _, _, region, account, _ = name.split(":", 5)
            if account != self.current_account:
                package = sagemaker_backends[account][region].describe_model_package(model_package_name=name)
                return ActionResult(package.gen_response_object())
        return original(self)  # type: ignore[no-any-return]

    monkeypatch.setattr(sagemaker_responses.SageMakerResponse, "describe_model_package", describe_model_package)


def _is_bus(target: dict[str, Any]) -> bool:
    arn = parse_arn(str(target["Arn"]))
    return bool(arn.service == "events" and arn.resource_type == "event-bus")


def patch_event_envelopes(monkeypatch: Patcher) -> None:
    """EventBridge's envelope ``account``, as AWS documents it: the account whose bus the event was put on.

    moto leaves ``account`` out of what it delivers to an SQS target (its default input template has no
    ``account``), and a rule whose target is another account's bus makes moto put a new event in that account,
    whose ``account`` is then the receiving account. The gate trusts a deployment result only from the
    account that serves its stage (mlplatform/registry/deployment_results.py), so both matter here. With this
    patch an SQS target receives ``account``, and a forwarded event reaches the other account's bus with the
    sender's ``account`` and ``resources`` (moto gives it a new ``id``, as it does); that bus's rules then match
    it as usual. That a forwarded event keeps the sender's account in real accounts is one of the points
    docs/VERIFICATION.md lists as not confirmable offline. Bus policies are not enforced by moto."""
    template = events_utils.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        monkeypatch.setattr(events_utils.EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE",
                            template.replace('"version": "0",', '"version": "0", "account": "<account>",', 1))
    original = events_models.Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        buses = [target for target in self.targets if _is_bus(target)]
        if not buses:
            original(self, original_event, transform_input)
            return
        others = copy.copy(self)  # the rule's other targets, delivered by moto
        others.targets = [target for target in self.targets if not _is_bus(target)]
        original(others, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return
        for target in buses:
            arn = parse_arn(target["Arn"])
            bus = events_models.events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
            forwarded: Any = {**copy.deepcopy(original_event), "id": str(uuid.uuid4())}
            for rule in list(bus.rules.values()):
                rule.send_to_targets(copy.deepcopy(forwarded))

    monkeypatch.setattr(events_models.Rule, "send_to_targets", send_to_targets)


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
        request = {key: value for key in (
            "EndpointName", "EndpointConfigName", "RetainAllVariantProperties", "ExcludeRetainedVariantProperties",
            "DeploymentConfig") if (value := self._get_param(key)) is not None}  # the request as sent
        rollouts.requests.append(request)
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f"Cannot update in-progress endpoint {endpoint.arn}")
        config = backend.describe_endpoint_config(request["EndpointConfigName"])
        if rollouts.mode in ("succeed", "in_progress", "rollback_failed"):
            endpoint.endpoint_config_name = request["EndpointConfigName"]
            endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
            endpoint.data_capture_config = config.get("DataCaptureConfig") or {}
        endpoint.endpoint_status = {"succeed": "InService", "rollback": "InService", "in_progress": "Updating",
                                    "rollback_failed": "UpdateRollbackFailed"}[rollouts.mode]
        endpoint.failure_reason = (f"Alarm {name}-Challenger-5xx in ALARM; rolled back"
                                   if rollouts.mode in ("rollback", "rollback_failed") else None)
        return ActionResult({"EndpointArn": endpoint.arn})

    original_response = sagemaker_models.FakeEndpoint.response_object

    def response_object(self: Any) -> dict[str, Any]:
        """DescribeEndpoint's DataCaptureConfig is a DataCaptureConfigSummary (botocore's service model); moto
        copies the endpoint config's DataCaptureConfig there, or {} without one."""
        response = dict(original_response.fget(self))  # type: ignore[attr-defined]
        capture = response.pop("DataCaptureConfig", None) or {}
        if capture:
            enabled = bool(capture.get("EnableCapture", True))
            response["DataCaptureConfig"] = {
                "EnableCapture": enabled, "CaptureStatus": "Started" if enabled else "Stopped",
                "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
                "DestinationS3Uri": capture["DestinationS3Uri"], "KmsKeyId": capture.get("KmsKeyId", "")}
        return response

    if not hasattr(sagemaker_responses.SageMakerResponse, "update_endpoint"):
        sagemaker_responses.SageMakerResponse.update_endpoint = None  # type: ignore[attr-defined]
    monkeypatch.setattr(sagemaker_responses.SageMakerResponse, "update_endpoint", update_endpoint)
    monkeypatch.setattr(sagemaker_models.FakeEndpoint, "response_object", property(response_object))
    return rollouts


# ------------------------------------------------------------------------------------------- runtime
class _Body(io.BytesIO):
    pass


class ImageModel:
    """A model served by an own image's serve program (the real program, in the check's namespaces, no network)."""

    def __init__(self, program_dir: Path, artifact: Path, *, scratch: Path | None = None) -> None:
        from mlplatform.conformance.byoc_check import ServingSandbox

        self._sandbox = ServingSandbox(program_dir, artifact)
        self._scratch = scratch

    def transform(self, body: str | bytes, content_type: str, accept: str) -> inference.Answer:
        answered = self._sandbox.invoke(body.encode("utf-8") if isinstance(body, str) else body, content_type, accept)
        if answered.get("status") is None:
            return inference.Answer(500, "text/plain", str(answered.get("error", "no answer")).encode())
        return inference.Answer(int(answered["status"]), str(answered.get("content_type") or accept).split(";")[0],
                                str(answered.get("body", "")).encode("utf-8"))

    def close(self) -> None:
        self._sandbox.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


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
    # What SageMaker's ModelLatency measures: time inside the model container (decode, predict, encode) —
    # not the double's own bookkeeping calls to moto, which a real endpoint does not make.
    model_latency_ms: dict[str, list[float]] = field(default_factory=dict)
    # Per endpoint name, the bucket its data capture goes to (the endpoint's own account's), else capture_bucket.
    capture_buckets: dict[str, str] = field(default_factory=dict)
    image_programs: dict[str, Path] = field(default_factory=dict)
    """An own image's URI -> its folder (training.code.source_dir): its serve program answers for a package that names
    the image, kept running in the conformance check's namespaces (mlplatform.conformance.byoc_check.ServingSandbox)."""
    _models: dict[str, inference.ServingModel | ImageModel] = field(default_factory=dict)
    _config_cache: dict[tuple[str, tuple[str, str, str | None] | None], dict[str, Any]] = field(default_factory=dict)
    _clients: dict[tuple[str, tuple[str, str, str | None] | None], Any] = field(default_factory=dict)

    def _client(self, service: str) -> Any:
        """The runtime's own calls go to the caller's account: through ``patch_invoke_endpoint`` the request's
        credentials (``_CALLER``) sign them, as InvokeEndpoint reaches the endpoint of the caller's account;
        called directly (a test's client stand-in), boto3's default credentials do."""
        caller = _CALLER.get()
        # One client per service and caller for the runtime's life: creating one costs tens of milliseconds.
        if (service, caller) not in self._clients:
            if caller is None:
                client = boto3.client(service, region_name=self.region)
            else:
                client = boto3_session(aws_access_key_id=caller[0], aws_secret_access_key=caller[1],
                                       aws_session_token=caller[2], region_name=self.region).client(service)
            self._clients[(service, caller)] = client
        return self._clients[(service, caller)]

    def _model(self, package_arn: str) -> inference.ServingModel | ImageModel:
        if package_arn not in self._models:
            sagemaker, s3 = self._client("sagemaker"), self._client("s3")
            package = sagemaker.describe_model_package(ModelPackageName=package_arn)
            container = package["InferenceSpecification"]["Containers"][0]
            bucket, _, key = container["ModelDataUrl"][5:].partition("/")
            artifact = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            scratch = Path(tempfile.mkdtemp(prefix="served-"))
            if container["Image"] in self.image_programs:
                (scratch / "model.tar.gz").write_bytes(artifact)
                self._models[package_arn] = ImageModel(self.image_programs[container["Image"]],
                                                       scratch / "model.tar.gz", scratch=scratch)
            else:
                with tarfile.open(fileobj=io.BytesIO(artifact)) as tar:
                    tar.extractall(scratch, filter="data")
                self._models[package_arn] = inference.model_fn(scratch)
        return self._models[package_arn]

    def close(self) -> None:
        """Stop every own image's serve program this runtime started, and forget the models it loaded."""
        for model in self._models.values():
            if isinstance(model, ImageModel):
                model.close()
        self._models.clear()

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        sagemaker = self._client("sagemaker")
        # One DescribeEndpoint per call (its config and current weights); what an endpoint config's variants
        # serve is read once per config: endpoint configs never change (an update deploys a new one).
        described = sagemaker.describe_endpoint(EndpointName=request["EndpointName"])
        variant = request.get("TargetVariant") or self._weighted_variant(described)
        if variant in self.errors:
            raise _model_error(500, "simulated model failure")
        served = self._config_variants(sagemaker, str(described["EndpointConfigName"]))
        model = self._model(served[variant].model_package_arn)
        started = time.perf_counter()
        # The toolkit substitutes the model's SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT for a missing Accept or */*.
        accept = request.get("Accept")
        if not accept or accept == "*/*":
            accept = self._default_accept(served[variant].model_package_arn)
        # ... and reads a request without Content-Type as application/json (sagemaker_containers._worker).
        content_type = request.get("ContentType") or "application/json"
        # an own image's serve gets the request's own Accept (the substitution above is the framework toolkit's)
        answer = (model.transform(request["Body"], content_type, request.get("Accept") or "")
                  if isinstance(model, ImageModel) else inference.transform_fn(model, request["Body"], content_type,
                                                                               accept))
        if variant in self.wrong_answers and answer.status == 200:
            answer = _shifted(answer)
        self.model_latency_ms.setdefault(variant, []).append((time.perf_counter() - started) * 1000.0)
        if answer.status != 200:
            # What SageMaker's runtime answers for a container's 4xx: ModelError with the status and body.
            raise _model_error(answer.status, answer.body.decode())
        self.served.setdefault(variant, []).append(_rows(answer))
        capture_bucket = self.capture_buckets.get(request["EndpointName"], self.capture_bucket)
        if capture_bucket:
            self._client("s3").put_object(
                Bucket=capture_bucket,
                Key=(f"{self.capture_prefix}/{request['EndpointName']}/{variant}/{datetime.now(UTC):%Y/%m/%d/%H}/"
                     f"capture-{uuid.uuid4().hex}.jsonl"),
                Body=(json.dumps(capture_record(request_body=request["Body"], request_content_type=content_type,
                                                response_body=answer.body,
                                                response_content_type=answer.content_type)) + "\n").encode())
        return {"Body": _Body(answer.body), "ContentType": answer.content_type, "InvokedProductionVariant": variant}

    def _default_accept(self, package_arn: str) -> str:
        package = self._client("sagemaker").describe_model_package(ModelPackageName=package_arn)
        specification = package["InferenceSpecification"]
        environment = specification["Containers"][0].get("Environment", {})
        # an own image's container sets no toolkit variable: its one response type (CSV) is what it answers
        default = specification.get("SupportedResponseMIMETypes", ["application/json"])[0]
        return str(environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", default))

    def _config_variants(self, sagemaker: Any, config_name: str) -> dict[str, Any]:
        from mlplatform.serving.endpoint_state import describe_endpoint_config_variants

        key = (config_name, _CALLER.get())
        if key not in self._config_cache:
            self._config_cache[key] = describe_endpoint_config_variants(sagemaker, config_name)
        return self._config_cache[key]

    def _weighted_variant(self, described: dict[str, Any]) -> str:
        """Route like an endpoint without TargetVariant: by the variants' current weights (DescribeEndpoint's)."""
        variants = described["ProductionVariants"]
        weights = [float(v.get("CurrentWeight", v.get("DesiredWeight", 1.0)) or 0.0) for v in variants]
        self._draws = getattr(self, "_draws", 0) + 1
        point = (self._draws * 0.6180339887) % 1.0 * (sum(weights) or 1.0)  # deterministic, evenly spread
        for variant, weight in zip(variants, weights, strict=True):
            if point < weight:
                return str(variant["VariantName"])
            point -= weight
        return str(variants[0]["VariantName"])


def _model_error(status: int, body: str) -> ClientError:
    """InvokeEndpoint's ModelError for a container that answered ``status`` with ``body`` (HTTP 424, the
    container's status and message in the error shape's OriginalStatusCode and OriginalMessage)."""
    kind = "client" if status < 500 else "server"
    message = f"Received {kind} error ({status}) from primary with message \"{body}\"."
    return sagemaker_runtime_error("ModelError", 424, message, OriginalStatusCode=status, OriginalMessage=body)


# The credentials (access key, secret, token) of the InvokeEndpoint request being answered, while it is.
_CALLER: contextvars.ContextVar[tuple[str, str, str | None] | None] = contextvars.ContextVar(
    "mlops_demo_invoke_caller", default=None)


@dataclass
class RuntimeRoute:
    """Where ``patch_invoke_endpoint`` sends InvokeEndpoint calls: anything with ``invoke_endpoint(**request)``
    (a ``ModelRuntime``, or a wrapper of it that injects faults); swappable while clients live."""

    target: Any


@dataclass(frozen=True)
class _AnsweredHttp:
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def patch_invoke_endpoint(monkeypatch: Patcher, target: Any) -> RuntimeRoute:
    """Answer InvokeEndpoint of every botocore client created from now on in this process by ``target``,
    before a request is sent: the request's parameters are kept at ``before-parameter-build`` and answered at
    ``before-call`` (botocore then returns that response, or the error ``target`` raises, to the caller), as
    moto registers its own stubber: through ``botocore.handlers.BUILTIN_HANDLERS``, which every new session
    installs. So a Lambda handler's own clients reach the double, and nothing is injected into a handler.
    The request's credentials go along: the double answers from the caller's account, where its endpoint is."""
    route = RuntimeRoute(target)

    def keep_request(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["mlops_demo_invoke_request"] = dict(params)

    def answer(context: dict[str, Any], request_signer: Any = None, **_: Any) -> tuple[_AnsweredHttp, dict[str, Any]]:
        credentials = getattr(request_signer, "_credentials", None)  # what would have signed the request
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        caller = _CALLER.set((frozen.access_key, frozen.secret_key, frozen.token) if frozen else None)
        try:
            response = route.target.invoke_endpoint(**context["mlops_demo_invoke_request"])
        finally:
            _CALLER.reset(caller)
        return _AnsweredHttp(), {**response, "ResponseMetadata": {"HTTPStatusCode": 200}}

    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [
        *botocore.handlers.BUILTIN_HANDLERS,
        ("before-parameter-build.sagemaker-runtime.InvokeEndpoint", keep_request),
        ("before-call.sagemaker-runtime.InvokeEndpoint", answer)])
    # boto3's default session installed its handlers when it was made; the next boto3.client() makes a new
    # one with these (clients made before keep theirs: none of them calls InvokeEndpoint).
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return route


def _rows(answer: inference.Answer) -> int:
    """Rows an answer holds, whatever the kind of model (a multiclass CSV line is a label and probabilities)."""
    if answer.content_type == inference.JSON:
        return len(json.loads(answer.body)["predictions"])
    return len(answer.body.decode().splitlines())


def _probabilities(answer: inference.Answer) -> list[float | None]:
    if answer.content_type == inference.JSON:
        return list(json.loads(answer.body)["predictions"])
    return [float(line) if line else None for line in answer.body.decode().splitlines()]


def _shifted(answer: inference.Answer) -> inference.Answer:
    """The same answer with wrong probabilities (a binary model that answers, but badly)."""
    shifted = [None if p is None else min(1.0, p + 0.2) if p < 0.5 else p - 0.2 for p in _probabilities(answer)]
    batch = inference.PredictionBatch(predictions=shifted, errors={})
    return inference.Answer(200, answer.content_type,
                            inference.encode_response(batch, answer.content_type, OUTPUTS[BINARY]))


# The deployer's CaptureContentTypeHeader: payloads of these types are captured as text, everything else
# BASE64 (SageMaker's data-capture format, FACTS.md).
CAPTURED_AS_TEXT = {content_type: "CSV" if key.startswith("Csv") else "JSON"
                    for key, types in CAPTURE_CONTENT_TYPE_HEADER.items() for content_type in types}


def capture_payload(data: str | bytes, content_type: str, mode: str) -> dict[str, str]:
    """One captured payload as SageMaker writes it: text when its Content-Type is listed as given, else BASE64."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    encoding = CAPTURED_AS_TEXT.get(content_type)
    if encoding is None:
        return {"observedContentType": content_type, "mode": mode, "data": base64.b64encode(raw).decode(),
                "encoding": "BASE64"}
    return {"observedContentType": content_type, "mode": mode, "data": raw.decode(), "encoding": encoding}


def capture_record(*, request_body: str | bytes, request_content_type: str, response_body: bytes,
                   response_content_type: str, now: datetime | None = None) -> dict[str, Any]:
    """One data-capture line: the request as sent, the response as the container answered it."""
    moment = now or datetime.now(UTC)
    return {"captureData": {"endpointInput": capture_payload(request_body, request_content_type, "INPUT"),
                            "endpointOutput": capture_payload(response_body, response_content_type, "OUTPUT")},
            "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "eventVersion": "0"}


# ------------------------------------------------------------------------------------------- CloudWatch
# moto's CloudWatch stores metrics but gets none from EMF log lines, crashes on percentile statistics in
# GetMetricData, and never evaluates an alarm. The three doubles below stand in for exactly that.


def emf_data_points(stdout: str) -> dict[str, list[dict[str, Any]]]:
    """The metric data points CloudWatch Logs extracts from the EMF documents in ``stdout``, per namespace, as
    PutMetricData's MetricDatum (CloudWatch User Guide, "Specification: Embedded metric format").

    Per the specification: every DimensionSet of a directive makes its own metric, with the root node's target
    values as dimension values; a metric target is a number or an array of numbers (Powertools aggregates
    repeated values of one metric into an array: each value is a data point); Unit defaults to None and
    StorageResolution to 60; ``_aws.Timestamp`` (epoch milliseconds) is the data points' time. A document may
    follow other text on its line ("Lambda may prepend log events with metadata"); other lines are not EMF."""
    found: dict[str, list[dict[str, Any]]] = {}
    for line in stdout.splitlines():
        start = line.find("{")
        if start < 0 or '"_aws"' not in line:
            continue
        document = json.loads(line[start:])
        metadata = document["_aws"]
        timestamp = datetime.fromtimestamp(metadata["Timestamp"] / 1000, UTC) if "Timestamp" in metadata else None
        for directive in metadata["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = [{"Name": d, "Value": str(document[d])} for d in dimension_set]
                for metric in directive["Metrics"]:
                    raw = document.get(metric["Name"])
                    for value in (raw if isinstance(raw, list) else [] if raw is None else [raw]):
                        datum: dict[str, Any] = {"MetricName": metric["Name"], "Dimensions": dimensions,
                                                 "Unit": metric.get("Unit", "None"), "Value": float(value),
                                                 "StorageResolution": int(metric.get("StorageResolution", 60))}
                        if timestamp is not None:
                            datum["Timestamp"] = timestamp
                        found.setdefault(directive["Namespace"], []).append(datum)
    return found


def publish_emf(cloudwatch: Any, stdout: str) -> int:
    """Put the metrics of the EMF documents a function printed, as CloudWatch Logs would extract them
    (``emf_data_points``). Data points go out in batches, as one PutMetricData per document would make
    thousands of requests for a few hundred API calls."""
    count = 0
    for namespace, data in emf_data_points(stdout).items():
        for first in range(0, len(data), 500):  # PutMetricData takes at most 1000 data points
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[first:first + 500])
        count += len(data)
    return count


class UnsupportedAlarm(ValueError):
    """An alarm ``evaluate_alarm`` cannot judge (a statistic, comparison or metric-math function it does not
    compute): refused, never answered with a guess."""


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
# CloudWatch's Statistic values, and percentiles pNN with up to ten decimals (User Guide, "Percentiles").
STATISTICS = frozenset({"SampleCount", "Average", "Sum", "Minimum", "Maximum"})
_PERCENTILE = re.compile(r"p(100|\d{1,2}(?:\.\d{1,10})?)")
# Metric math the evaluator computes: arithmetic, comparisons and IF on the ids of the alarm's queries.
MATH_FUNCTIONS = frozenset({"IF"})
_MATH_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|"
                         r"(?P<op>==|!=|<=|>=|[-+*/<>(),]))")


def supports_statistic(statistic: str) -> bool:
    return statistic in STATISTICS or _PERCENTILE.fullmatch(statistic) is not None


def _aggregate(values: list[float], statistic: str) -> float | None:
    """One statistic over raw values (None: no data, as CloudWatch has no data point then)."""
    if not supports_statistic(statistic):
        raise UnsupportedAlarm(f"statistic {statistic!r} is not one evaluate_alarm computes")
    if not values:
        return None
    if statistic == "Sum":
        return sum(values)
    if statistic == "SampleCount":
        return float(len(values))
    if statistic == "Average":
        return sum(values) / len(values)
    if statistic in ("Minimum", "Maximum"):
        return min(values) if statistic == "Minimum" else max(values)
    # "Percentile statistics are not available for metrics when any of the metric values are negative numbers"
    # (User Guide, "Percentiles"); otherwise the nearest rank (CloudWatch does not document its interpolation).
    if min(values) < 0:
        return None
    rank = math.ceil(float(statistic[1:]) / 100 * len(values))
    return sorted(values)[max(rank, 1) - 1]


def _raw_values(cloudwatch: Any, metric: dict[str, Any], start: datetime, end: datetime) -> list[float]:
    """Every value put for exactly this metric in [start, end): namespace, name and the whole dimension set
    (CloudWatch keeps each combination of dimensions as its own metric; moto's GetMetricStatistics also matches
    data with more dimensions, aggregates per period and has no percentiles), read from moto's store in the
    account of the client's credentials."""
    import os

    from moto.cloudwatch.models import MetricDatum, cloudwatch_backends
    from moto.iam.models import get_account_id_from

    credentials = cloudwatch._request_signer._credentials.get_frozen_credentials()
    account = os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(credentials.access_key)
    backend = cloudwatch_backends[account][cloudwatch.meta.region_name]
    wanted = {(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])}
    values = []
    for datum in backend.get_all_metrics():
        moment = datum.timestamp if datum.timestamp.tzinfo else datum.timestamp.replace(tzinfo=UTC)
        if (datum.namespace, datum.name) != (metric["Namespace"], metric["MetricName"]) or not start <= moment < end:
            continue
        if {(d.name, d.value) for d in datum.dimensions} != wanted:
            continue
        if not isinstance(datum, MetricDatum):
            raise UnsupportedAlarm(f"{metric['MetricName']} has statistic sets; evaluate_alarm needs raw values")
        values.append(float(datum.value))
    return values


def _expression_value(expression: str, values: dict[str, float | None]) -> float | None:
    """The metric-math expressions our alarms use: arithmetic on ids and CloudWatch's IF(condition, a[, b])."""
    import numpy as np

    names, position = [], 0
    while position < len(expression.rstrip()):
        match = _MATH_TOKEN.match(expression, position)
        if match is None:
            raise UnsupportedAlarm(f"{expression!r}: {expression[position:]!r} is not metric math evaluate_alarm "
                                   "computes")
        if match.group("name"):
            names.append(match.group("name"))
        position = match.end()
    for name in names:
        if name not in values and name not in MATH_FUNCTIONS:
            raise UnsupportedAlarm(f"{expression!r}: {name} is neither a query id nor one of {sorted(MATH_FUNCTIONS)}")
    if all(value is None for value in values.values()):
        return None
    # numpy scalars: both IF branches are evaluated, and x / 0 must give inf (discarded by IF), not raise.
    scope = {name: np.float64(value or 0.0) for name, value in values.items()}  # no data point in a Sum is 0

    def if_(condition: Any, when_true: Any, when_false: Any = None) -> Any:
        # IF(condition, trueValue) without a false value drops the data point where the condition is false
        # (CloudWatch User Guide, "Using IF expressions").
        return when_true if bool(condition) else when_false

    # The expression is our own alarm definition (stacks/monitoring.py), never input from outside.
    with np.errstate(divide="ignore", invalid="ignore"):
        result = eval(expression.replace("IF(", "if_("), {"__builtins__": {}, "if_": if_}, scope)  # noqa: S307
    return None if result is None else float(result)


def _aws_time(moment: datetime) -> str:
    """The StateChangeTime format of CloudWatch's alarm notifications (2015-06-03T17:43:27.123+0000)."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def evaluate_alarm(cloudwatch: Any, sns: Any, alarm_name: str, *, now: datetime | None = None) -> dict[str, Any]:
    """One evaluation of an alarm (single metric or metric math); on a change of state, its SNS message.

    moto stores alarms but never evaluates them. This evaluator compresses time: the demo's traffic lasts
    seconds, so the statistic is taken over the alarm's whole evaluation window (Period x
    EvaluationPeriods) as one aggregate and compared once — where CloudWatch would need every one of the N
    periods to breach. The reason string says so. A statistic, comparison or function it cannot compute
    raises ``UnsupportedAlarm``."""
    alarm = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
    now = now or datetime.now(UTC)
    threshold, operator = float(alarm["Threshold"]), alarm["ComparisonOperator"]
    if operator not in _OPERATORS:
        raise UnsupportedAlarm(f"{alarm_name}: comparison {operator} is not one evaluate_alarm computes")
    value: float | None
    if alarm.get("Metrics"):
        queries = alarm["Metrics"]
        period = max(int(q["MetricStat"]["Period"]) for q in queries if "MetricStat" in q)
        start = now - timedelta(seconds=period * max(1, alarm["EvaluationPeriods"]))
        values = {q["Id"]: _aggregate(_raw_values(cloudwatch, q["MetricStat"]["Metric"], start,
                                                  now + timedelta(minutes=1)), q["MetricStat"]["Stat"])
                  for q in queries if "MetricStat" in q}
        (expression,) = [q["Expression"] for q in queries if q.get("Expression") and q.get("ReturnData", True)]
        value = _expression_value(expression, values)
        described = f"{expression} = {value}"
    else:
        period = int(alarm["Period"])
        start = now - timedelta(seconds=period * max(1, alarm["EvaluationPeriods"]))
        statistic = alarm.get("ExtendedStatistic") or alarm["Statistic"]
        value = _aggregate(_raw_values(cloudwatch, alarm, start, now + timedelta(minutes=1)), statistic)
        described = f"{statistic} {alarm['MetricName']} = {value}"
    if value is None:
        state = "OK" if alarm.get("TreatMissingData") == "notBreaching" else "INSUFFICIENT_DATA"
    else:
        state = "ALARM" if _OPERATORS[operator](value, threshold) else "OK"
    reason = (f"{described} against {operator} {threshold:g}, over the last {alarm['EvaluationPeriods']} x "
              f"{period} s taken as one window (demo evaluator)")
    # "When this operation creates an alarm, the alarm state is immediately set to INSUFFICIENT_DATA"
    # (PutMetricAlarm, API reference); moto starts a new alarm as OK, with this reason.
    old = alarm.get("StateValue")
    if alarm.get("StateReason") == "Unchecked: Initial alarm creation":
        old = "INSUFFICIENT_DATA"
    message = None
    if state != old:
        cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue=state, StateReason=reason[:1023])
        # The message CloudWatch sends to an alarm's SNS actions (a subset of its members: the fields on-call
        # tooling reads; tests/fixtures/events/cloudwatch-alarm-sns-message*.json are AWS's samples).
        message = {"AlarmName": alarm_name, "AlarmDescription": alarm.get("AlarmDescription"),
                   "AWSAccountId": alarm["AlarmArn"].split(":")[4], "AlarmArn": alarm["AlarmArn"],
                   "NewStateValue": state, "OldStateValue": old, "NewStateReason": reason,
                   "StateChangeTime": _aws_time(now), "Region": cloudwatch.meta.region_name}
        actions = alarm.get("AlarmActions", []) if state == "ALARM" else (
            alarm.get("OKActions", []) if state == "OK" else alarm.get("InsufficientDataActions", []))
        for topic in actions:
            sns.publish(TopicArn=topic, Subject=f"{state}: {alarm_name}"[:99], Message=json.dumps(message))
    return {"alarm": alarm_name, "state": state, "value": value, "message": message}


@dataclass
class EndpointMetrics:
    """GetMetricData for the SageMaker endpoint metrics the A/B report reads, computed from what the model
    runtime served and from latencies the caller measured (moto cannot compute percentiles)."""

    runtime: ModelRuntime
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        """One data point per query, over the whole window (the A/B report asks for one period spanning it).
        Counts answer Sum; ModelLatency (microseconds) answers any statistic ``_aggregate`` computes; anything
        else is refused rather than answered with another statistic."""
        results = []
        for query in request["MetricDataQueries"]:
            stat = query["MetricStat"]
            dims = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
            variant, metric, statistic = dims.get("VariantName", ""), stat["Metric"]["MetricName"], stat["Stat"]
            counts = {"Invocations": len(self.runtime.served.get(variant, [])),
                      "Invocation5XXErrors": self.errors.get(variant, 0), "Invocation4XXErrors": 0}
            value: float | None
            if metric in counts and statistic == "Sum":
                value = float(counts[metric])
            elif metric == "ModelLatency":
                value = _aggregate([ms * 1000.0 for ms in self.latencies_ms.get(variant, [])], statistic)
            else:
                raise UnsupportedAlarm(f"EndpointMetrics does not compute {metric} {statistic}")
            # "The number of timestamps always matches the number of values" (GetMetricData, MetricDataResult).
            results.append({"Id": query["Id"], "Values": [] if value is None else [value],
                            "Timestamps": [] if value is None else [request["StartTime"]], "StatusCode": "Complete"})
        return {"MetricDataResults": results}
