"""Per-environment settings: the only place where environments differ.

`cdk.json` context holds ``defaults`` and one block per environment under ``environments``; an environment's
block is deep-merged over the defaults and parsed into frozen, keyword-only dataclasses. Every field is
typed and checked: an unknown key, a wrong type or a value outside its allowed range fails synth with a
message naming the key path, the value and what is allowed. The field docs (``metadata["doc"]``) generate
docs/CONFIGURATION.md (`mlops config reference`), and a test keeps that page true.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from mlsettings.instance_types import (
    MANAGED_SPOT_NO_CHECKPOINT_MAX_WAIT_SECONDS,
    SMALLEST_INSTANCE_STORE_GB,
    has_local_storage,
    instance_family,
)
from mlsettings.quality import GATE_METRICS
from mlsettings.rollout import (
    BLUE_GREEN_TIMEOUT_RANGE,
    LINEAR_STEP_PERCENT_RANGE,
    PROVISIONING_ALLOWANCE_SECONDS,
    rollout_waits_seconds,
)
from mlsettings.schema import DataSchema, SchemaError
from mlsettings.vocabulary import SERVABLE_STAGES, STAGING

T = TypeVar("T")
Check = Callable[[Any], str | None]


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the key path, the value and what is allowed."""


# ---------------------------------------------------------------- checks (return what is allowed, or None)
def _positive(value: Any) -> str | None:
    return None if value > 0 else "a positive number"


def _between(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"a number from {low:g} to {high:g}"

    return check


def _at_least(low: float) -> Check:
    def check(value: Any) -> str | None:
        return None if value >= low else f"a number of at least {low:g}"

    return check


def _matches(pattern: str, allowed: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: Any) -> str | None:
        return None if compiled.fullmatch(value) else allowed

    return check


def _each(check: Check) -> Check:
    def check_all(values: Any) -> str | None:
        for value in values:
            problem = check(value)
            if problem:
                return f"a list of {problem} (bad item {value!r})"
        return None

    return check_all


def _one_of(allowed: tuple[Any, ...]) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"one of {list(allowed)}"

    check.allowed = allowed  # type: ignore[attr-defined]  # what tests sweep through every consumer
    return check


LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)

REPO_ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _botocore_loader() -> Any:
    """botocore's data loader alone: its service models and partitions without a session, so an unknown
    AWS_PROFILE or a malformed ~/.aws/config cannot break a command that never calls AWS."""
    import botocore.loaders

    return botocore.loaders.create_loader()


@functools.cache
def sagemaker_enum(shape: str) -> frozenset[str]:
    """Valid values from botocore's SageMaker service model (the API's own source of truth)."""
    model = _botocore_loader().load_service_model("sagemaker", "service-2")
    return frozenset(model["shapes"][shape]["enum"])


def _instance(shape: str, purpose: str) -> Check:
    def check(value: Any) -> str | None:
        if value in sagemaker_enum(shape):
            return None
        return f"a SageMaker {purpose} instance type (botocore's {shape}, e.g. 'ml.m5.xlarge')"

    return check


@functools.cache
def _sagemaker_regions() -> frozenset[str]:
    """Every region in botocore's partition data where SageMaker has an endpoint."""
    from botocore.regions import EndpointResolver

    loader = _botocore_loader()
    prefix = loader.load_service_model("sagemaker", "service-2")["metadata"]["endpointPrefix"]
    resolver = EndpointResolver(loader.load_data("endpoints"))
    return frozenset(region for partition in resolver.get_available_partitions()
                     for region in resolver.get_available_endpoints(prefix, partition))


def _region(value: Any) -> str | None:
    return None if value in _sagemaker_regions() else "an AWS region where SageMaker is available, e.g. 'eu-west-1'"


_TRAINING_INSTANCE = _instance("TrainingInstanceType", "training")
_PROCESSING_INSTANCE = _instance("ProcessingInstanceType", "processing")
_ENDPOINT_INSTANCE = _instance("ProductionVariantInstanceType", "endpoint")
_TRANSFORM_INSTANCE = _instance("TransformInstanceType", "batch transform")

# EventBridge Scheduler/rule schedule grammar (AWS "Schedule expressions for rules"): rate(value unit) with a
# positive value and the singular unit for 1; cron with six fields, one of day-of-month/day-of-week being '?'.
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minutes", 0, 59, ()), ("hours", 0, 23, ()), ("day-of-month", 1, 31, ()), ("month", 1, 12, tuple(_MONTHS)),
    ("day-of-week", 1, 7, tuple(_DAYS)), ("year", 1970, 2199, ()))


def _cron_value(token: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if token.upper() in names:
        return True
    return token.isdigit() and low <= int(token) <= high


def _cron_field(text: str, position: int) -> str | None:
    name, low, high, names = _CRON_FIELDS[position]
    for item in text.split(","):
        if item == "*" or (item == "?" and name in ("day-of-month", "day-of-week")):
            continue
        if name == "day-of-month" and (item in ("L", "LW") or re.fullmatch(r"\d{1,2}W", item)):
            if item.endswith("W") and item not in ("L", "LW") and not 1 <= int(item[:-1]) <= 31:
                return f"{name} {item!r} is out of range {low}-{high}"
            continue
        if name == "day-of-week" and (re.fullmatch(r"[1-7A-Za-z]{1,3}L", item) or "#" in item):
            day, _, nth = item.rstrip("L").partition("#")
            if _cron_value(day, low, high, names) and (not nth or nth in "12345"):
                continue
            return f"{name} {item!r} is not a day (1-7 or SUN-SAT) with an optional L or #1-#5"
        base, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return f"{name} step {step!r} is not a positive integer"
        start, dash, end = base.partition("-")
        if base == "*" and step:
            continue
        if not _cron_value(start, low, high, names) or (dash and not _cron_value(end, low, high, names)):
            return f"{name} {item!r} is out of range {low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    return None


def _schedule(value: Any) -> str | None:
    allowed = "an EventBridge schedule: 'rate(N minutes|hours|days)' (N >= 1; 'minute' etc. for 1) or a "
    allowed += "six-field 'cron(minutes hours day-of-month month day-of-week year)' with '?' in one day field"
    rate = _RATE.fullmatch(value)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        if count == 0:
            return f"{allowed} (the rate is 0)"
        if (count == 1) == unit.endswith("s"):
            return f"{allowed} ({'singular' if count == 1 else 'plural'} unit needed for {count})"
        return None
    cron = re.fullmatch(r"cron\(([^()]*)\)", value)
    if not cron:
        return allowed
    fields = cron.group(1).split()
    if len(fields) != 6:
        return f"{allowed} (got {len(fields)} fields)"
    for position, text in enumerate(fields):
        problem = _cron_field(text, position)
        if problem:
            return f"{allowed} ({problem})"
    if (fields[2] == "?") == (fields[4] == "?"):
        return f"{allowed} (exactly one of day-of-month and day-of-week must be '?')"
    return None


def _schema_file(value: Any) -> str | None:
    """A data schema file the runtime can load (mlsettings.schema, what the pipeline's steps, the inference API
    and the drift monitor read): not just JSON, a schema."""
    path = REPO_ROOT / value
    if not path.is_file():
        return f"a data schema file relative to the repository root ({path} does not exist)"
    try:
        DataSchema.load(path)
    except (OSError, UnicodeDecodeError, SchemaError) as err:
        return f"a data schema file (docs/TRAINING.md, 'The data schema'): {err}"
    return None


_EMAIL = _matches(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address")
# No user information (user:password@) in the authority: a URL carrying a credential belongs in Secrets Manager
# (https_secret_names), since cdk.json and the template are plain text.
_HTTPS = _matches(r"https://[^\s/@]+(/[^\s]*)?", "an https:// URL without credentials (user:password@ belongs in "
                  "https_secret_names)")
_ACCOUNT = _matches(r"\d{12}", "a 12-digit AWS account id")


def _stages(values: Any) -> str | None:
    problem = _each(_one_of(SERVABLE_STAGES))(values)
    if problem:
        return problem
    if len(set(values)) != len(values):
        return f"a list of distinct stages from {list(SERVABLE_STAGES)}"
    return None


def setting(doc: str, *, default: Any = dataclasses.MISSING, check: Check | None = None) -> Any:
    """A config field: its doc goes to docs/CONFIGURATION.md, its check runs at parse time."""
    metadata = {"doc": doc, "check": check}
    if isinstance(default, list | dict):
        frozen = tuple(default) if isinstance(default, list) else default
        return field(default_factory=lambda: frozen, metadata=metadata)
    return field(default=default, metadata=metadata)


# ---------------------------------------------------------------- the settings
@dataclass(frozen=True, kw_only=True)
class LambdaSettings:
    architecture: Literal["arm64", "x86_64"] = setting(
        "CPU architecture of every Lambda function (arm64 is cheaper per GB-second).", default="arm64")
    log_retention_days: int = setting("CloudWatch Logs retention for every function (a value CloudWatch "
                                      "accepts).", default=30, check=_one_of(LOG_RETENTION_DAYS))
    reserved_concurrency: int = setting(
        "Reserved concurrency of each event-driven function that may run several copies at once (the promotion "
        "gate, each deployer task). Scheduled functions (health check, batch scoring, drift monitor) reserve 1; "
        "the inference function reserves none (throttling it would turn the API's designed fallbacks into "
        "errors) and draws its SLA demand from the account's unreserved pool.", default=5,
        check=_between(1, 1000))
    account_concurrency_quota: int = setting(
        "The AWS account's Lambda concurrent-executions quota in this environment's region (Service Quotas "
        "code L-B99A9384; 1,000 by default, often far less in a new account). Environments that share an "
        "account and region must state the same value; synth fails unless, after every function's reserved "
        "concurrency, at least max(100, the inference functions' SLA demand) stays unreserved "
        "(docs/CONFIGURATION.md, 'Lambda concurrency quota').", default=1000, check=_between(1, 1000000))


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    retain_data: bool = setting(
        "Keep buckets, the KMS key and tables when the stack is deleted (true for staging and prod).",
        default=True)
    noncurrent_version_expiration_days: int = setting(
        "Days a replaced object version is kept in the versioned buckets.", default=90,
        check=_between(1, 3650))
    infrequent_access_after_days: int = setting(
        "Days before training data and artifacts move to S3 Standard-IA.", default=30,
        check=_at_least(30))
    capture_retention_days: int = setting(
        "Days data-capture files and prediction logs are kept.", default=90, check=_between(1, 3650))
    access_log_retention_days: int = setting("Days server access logs are kept.", default=365,
                                             check=_between(1, 3650))


@dataclass(frozen=True, kw_only=True)
class QualityGateSettings:
    metric: str = setting(
        "Evaluation metric the quality gate compares (binary_classification_metrics.<metric>.value); the drift "
        "monitor's ground-truth quality reports the same metric.", default="auc", check=_one_of(GATE_METRICS))
    threshold: float = setting("The run fails when the metric is below this value.", default=0.9,
                               check=_between(0, 1))


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    schema_file: str = setting("Data schema (features, types, ranges, label), relative to the repo root.",
                               default="pipelines/schemas/breast_cancer.json", check=_schema_file)
    instance_type: str = setting("Training instance type (a GPU type: the train step uses cuda where it sees a GPU).",
                                 default="ml.g5.xlarge", check=_TRAINING_INSTANCE)
    instance_count: int = setting("Training instances.", default=1, check=_between(1, 20))
    processing_instance_type: str = setting("Instance type of the validate/preprocess/evaluate/baseline steps.",
                                            default="ml.m5.xlarge", check=_PROCESSING_INSTANCE)
    use_spot: bool = setting("Managed spot training.", default=True)
    max_run_seconds: int = setting("Training job MaxRuntimeInSeconds.", default=3600,
                                   check=_between(60, 432000))
    max_wait_seconds: int = setting("Spot MaxWaitTimeInSeconds (more than max_run_seconds; at most 3600 without "
                                    "checkpointing).", default=7200,
                                    check=_between(60, 432000))
    checkpointing: bool = setting("Checkpoint to S3 so an interrupted spot job resumes.", default=True)
    volume_size_gb: int = setting("EBS volume per training/processing instance (at most 50 on types with local NVMe "
                                  "storage, which SageMaker mounts instead).", default=30,
                                  check=_between(1, 16384))
    num_round: int = setting("XGBoost boosting rounds.", default=200, check=_between(1, 100000))
    min_rows_per_class: int = setting(
        "Fewest rows of each label class the validate step accepts (the split needs 3 per class; the quality "
        "gate also requires its metric's 95 % lower confidence bound to clear the threshold).", default=10,
        check=_between(3, 1_000_000))
    quality_gate: QualityGateSettings = setting("The quality gate.", default=QualityGateSettings())
    max_missing_rate: float = setting("Default missing-value limit for features the schema leaves open.",
                                      default=0.05, check=_between(0, 1))
    retrain_schedule: str | None = setting("Schedule of periodic retraining, or null for none.",
                                           default=None, check=_schedule)
    retrain_on_new_data: bool = setting("Start the pipeline when a new object lands under the data prefix.",
                                        default=False)


@dataclass(frozen=True, kw_only=True)
class RegistrySettings:
    registry_environment: str = setting(
        "The environment that holds the training pipeline, the model package group, the promotion gate and the "
        "ledger (the registry environment; it names itself). Every other environment serves the stages in its "
        "serving.served_stages from that registry, in its own account or the registry's (docs/ACCOUNTS.md).",
        default="dev")
    protected_production_versions: int = setting(
        "Production versions kept redeployable: the current one and the ones before it (at least 3).",
        default=3, check=_at_least(3))


@dataclass(frozen=True, kw_only=True)
class SlaSettings:
    p99_latency_ms: float = setting("Target p99 model latency in milliseconds.", default=200, check=_positive)
    peak_requests_per_second: float = setting("Peak load the endpoint must carry.", default=50,
                                              check=_positive)
    availability_percent: float = setting("Availability objective.", default=99.9, check=_between(90, 100))


@dataclass(frozen=True, kw_only=True)
class VariantSettings:
    instance_type: str = setting("Endpoint instance type.", default="ml.m5.large", check=_ENDPOINT_INSTANCE)
    min_instances: int = setting("Minimum instances (autoscaling floor).", default=1, check=_between(1, 100))
    max_instances: int = setting("Maximum instances (autoscaling ceiling).", default=2,
                                 check=_between(1, 100))


@dataclass(frozen=True, kw_only=True)
class DeploymentSettings:
    strategy: Literal["CANARY", "LINEAR", "ALL_AT_ONCE"] = setting(
        "Blue/green traffic shifting for endpoint updates.", default="CANARY")
    canary_percent: int = setting("Traffic share of the canary step (CANARY), or of each step (LINEAR: 10-50).",
                                  default=10, check=_between(1, 50))
    wait_minutes: int = setting("Bake time per traffic step before the next one.", default=10,
                                check=_between(0, 60))
    termination_wait_minutes: int = setting("Time the old fleet stays up after the shift.", default=5,
                                            check=_between(0, 60))


@dataclass(frozen=True, kw_only=True)
class ServingSettings:
    sla: SlaSettings = setting("Service-level objectives; autoscaling and alarms derive from them.",
                               default=SlaSettings())
    champion: VariantSettings = setting("The Champion production variant.", default=VariantSettings())
    challenger_enabled: bool = setting("Run a Challenger variant beside the Champion (A/B).", default=False)
    challenger: VariantSettings = setting("The Challenger production variant.", default=VariantSettings())
    challenger_weight_percent: int = setting("Traffic share of the Challenger.", default=10,
                                             check=_between(1, 50))
    deployment: DeploymentSettings = setting("Safe rollout of new models.", default=DeploymentSettings())
    capture_sampling_percent: int = setting("Share of requests written by data capture.", default=100,
                                            check=_between(1, 100))
    network_isolation: bool = setting("Run model containers without network access.", default=True)
    batch_instance_type: str = setting("Batch transform instance type.", default="ml.m5.xlarge",
                                       check=_TRANSFORM_INSTANCE)
    batch_schedule: str | None = setting("Schedule of the batch scoring run, or null for on demand only.",
                                         default=None, check=_schedule)
    health_check_schedule: str = setting("How often the health check calls every variant.",
                                         default="rate(5 minutes)", check=_schedule)
    served_stages: tuple[str, ...] = setting(
        "Registry stages whose accepted promotions this environment's deployer puts on its endpoint: at most "
        "one, and every stage of a registry served by exactly one environment, e.g. dev: [], staging: [Staging], "
        "prod: [Production] (docs/PROMOTION.md, 'Where each stage is served'). One endpoint never serves both: "
        "a version approved for Staging would reach production users before anyone approved it for Production.",
        default=[], check=_stages)


@dataclass(frozen=True, kw_only=True)
class InferenceApiSettings:
    endpoint_timeout_ms: int = setting("Read timeout of InvokeEndpoint from the API.", default=1000,
                                       check=_between(50, 60000))
    max_attempts: int = setting("InvokeEndpoint attempts, the first included.", default=2,
                                check=_between(1, 5))
    breaker_failure_threshold: int = setting("Consecutive failures that open the circuit.", default=5,
                                             check=_between(1, 1000))
    breaker_cooldown_seconds: int = setting("Open time before one trial call (half-open).", default=30,
                                            check=_between(1, 3600))
    cache_ttl_seconds: int = setting("Lifetime of cached endpoint answers.", default=86400,
                                     check=_between(60, 31536000))
    safe_default_probability: float = setting("Answer when neither model nor cache can serve.",
                                              default=0.5, check=_between(0, 1))
    max_body_bytes: int = setting("Largest accepted request body.", default=65536, check=_between(1024, 6000000))
    max_rows: int = setting("Most rows in one request.", default=100, check=_between(1, 10000))


@dataclass(frozen=True, kw_only=True)
class DriftSettings:
    schedule: str = setting("When the drift monitor runs.", default="cron(0 6 * * ? *)", check=_schedule)
    window_hours: int = setting("Captured traffic analysed per run.", default=24, check=_between(1, 720))
    psi_threshold: float = setting("PSI above which a feature drifts.", default=0.2, check=_positive)
    js_threshold: float = setting("Jensen-Shannon distance above which a feature drifts.", default=0.1,
                                  check=_between(0, 1))
    ks_threshold: float = setting("KS statistic (effect size) above which a feature drifts.", default=0.1,
                                  check=_between(0, 1))
    weighted_drift_alarm: float = setting(
        "Share of the model's feature importance (XGBoost total gain, from the baseline) carried by drifted "
        "features that raises the DataDrift alarm; a strongly drifted top feature alone can reach it, an unused "
        "feature never does.", default=0.1, check=_between(0, 1))
    missing_rate_min_effect: float = setting(
        "Smallest increase of a feature's missing rate over the baseline's that is a data-quality violation "
        "(a non-nullable feature violates at this share alone; a nullable one must also be beyond the window's "
        "sampling noise).", default=0.01, check=_between(0, 1))
    quality_min_effect: float = setting(
        "Smallest out-of-range or unseen-category share (over the baseline's) that is a data-quality violation "
        "(values the schema forbids violate at this share alone; a declared category training never saw must "
        "also be beyond the window's sampling noise).", default=0.001, check=_between(0, 1))
    page_top_features: int = setting(
        "A data-quality violation in one of this many most important features pages in production (others "
        "open a ticket).", default=3, check=_between(1, 1000))
    min_rows: int = setting("Windows smaller than this never alarm.", default=100, check=_at_least(10))
    engine: Literal["lambda", "processing"] = setting(
        "Where the drift run happens: in the Lambda (streams the window with two processes), or in a SageMaker "
        "Processing job the Lambda starts over the same objects (for windows beyond ~20M records; "
        "docs/MONITORING.md).",
        default="lambda")
    retrain_on_sustained_drift: bool = setting("Sustained drift starts the retraining trigger.",
                                               default=False)


@dataclass(frozen=True, kw_only=True)
class Subscriptions:
    emails: tuple[str, ...] = setting("E-mail subscribers.", default=[], check=_each(_EMAIL))
    https: tuple[str, ...] = setting("HTTPS endpoints without credentials in the URL.", default=[],
                                     check=_each(_HTTPS))
    https_secret_names: tuple[str, ...] = setting(
        "Secrets Manager secret names whose value is an HTTPS endpoint that carries a credential (an on-call "
        "service's integration URL); CloudFormation resolves them at deploy time, so the URL is never in "
        "cdk.json or a template.", default=[],
        check=_each(_matches(r"[A-Za-z0-9/_+=.@-]{1,512}", "a Secrets Manager secret name")))


@dataclass(frozen=True, kw_only=True)
class AlarmSettings:
    page: Subscriptions = setting("Who is paged (severity 'page').", default=Subscriptions())
    ticket: Subscriptions = setting("Who gets tickets (severity 'ticket').", default=Subscriptions())
    error_rate_percent: float = setting("5XX share of invocations that pages.", default=1.0,
                                        check=_between(0, 100))
    fallback_rate_percent: float = setting("Share of API answers not served by the endpoint that pages.",
                                           default=5.0, check=_between(0, 100))
    quality_margin: float = setting("Quality drop below the registered metric that pages.", default=0.05,
                                    check=_between(0, 1))
    confidence_shift_psi: float = setting("PSI of the confidence distribution that raises a ticket.",
                                          default=0.2, check=_positive)
    idle_endpoint_days: int | None = setting(
        "Days without a single request through the inference API while the endpoint's instances run, after "
        "which a non-production environment raises the IdleEndpoint ticket (the instances cost money whether "
        "or not anyone calls them). 1 to 7: CloudWatch evaluates an alarm over at most seven days. null: no "
        "alarm. Production environments never get it (NoTraffic pages there; docs/runbooks/idle-endpoint.md).",
        default=7, check=_between(1, 7))


@dataclass(frozen=True, kw_only=True)
class MonitoringSettings:
    drift: DriftSettings = setting("Data and prediction drift.", default=DriftSettings())
    alarms: AlarmSettings = setting("Alarm thresholds and routing.", default=AlarmSettings())


@dataclass(frozen=True, kw_only=True)
class NetworkSettings:
    subnet_ids: tuple[str, ...] = setting(
        "Private subnets for SageMaker jobs and endpoints (empty: no VPC; jobs and models are network-isolated "
        "either way).", default=[], check=_each(_matches(r"subnet-[0-9a-f]{8,17}", "a subnet id such as "
                                                                                   "'subnet-0abc12345'")))
    security_group_ids: tuple[str, ...] = setting(
        "Security groups for those subnets (required with subnet_ids).", default=[],
        check=_each(_matches(r"sg-[0-9a-f]{8,17}", "a security group id such as 'sg-0abc12345'")))


@dataclass(frozen=True, kw_only=True)
class DeliverySettings:
    github_repository: str | None = setting(
        "The GitHub repository ('owner/name') whose Actions workflow deploys the environments: the only one the "
        "OIDC roles trust (docs/DEPLOYING.md, 'Delivery from git'). null: no OIDC roles are synthesized. One "
        "value for every environment.", default=None,
        check=_matches(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}",
                       "'owner/name' of a GitHub repository"))
    default_branch: str = setting(
        "The branch whose pushes deploy and whose scheduled runs detect drift (the read-only role trusts its "
        "runs). One value for every environment.", default="main",
        check=_matches(r"[A-Za-z0-9._/-]{1,200}", "a branch name"))
    bootstrap_qualifier: str = setting(
        "The CDK bootstrap qualifier of this environment's account and region (`cdk bootstrap --qualifier`); the "
        "deploy role may assume that bootstrap's deploy, file-publishing, image-publishing and lookup roles.",
        default="hnb659fds", check=_matches(r"[A-Za-z0-9_-]{1,10}", "the bootstrap template's Qualifier pattern "
                                                                   "[A-Za-z0-9_-]{1,10}"))
    create_oidc_provider: bool = setting(
        "Create GitHub's OIDC identity provider in this environment's account. false: the account already has one "
        "(an account holds one provider per URL) and the roles trust it by its ARN. Environments sharing an "
        "account state the same value.", default=True)


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    name: str = setting("Environment name (the key under 'environments').")
    account: str | None = setting("AWS account id; null falls back to CDK_DEFAULT_ACCOUNT.", default=None,
                                  check=_ACCOUNT)
    region: str = setting("AWS region.", default="eu-west-1",
                          check=_region)
    production: bool = setting("Production rules apply: at least 2 instances per variant, data retained.",
                               default=False)
    lambda_: LambdaSettings = setting("Lambda defaults.", default=LambdaSettings())
    network: NetworkSettings = setting("Optional VPC for SageMaker jobs and endpoints.", default=NetworkSettings())
    storage: StorageSettings = setting("Buckets and retention.", default=StorageSettings())
    training: TrainingSettings = setting("The training pipeline.", default=TrainingSettings())
    registry: RegistrySettings = setting("The model registry.", default=RegistrySettings())
    serving: ServingSettings = setting("Endpoints and rollouts.", default=ServingSettings())
    inference_api: InferenceApiSettings = setting("The inference API and its degradation.",
                                                  default=InferenceApiSettings())
    monitoring: MonitoringSettings = setting("Drift, quality and alarms.", default=MonitoringSettings())
    delivery: DeliverySettings = setting("Delivery from git: the GitHub repository and the OIDC roles its "
                                         "workflow assumes.", default=DeliverySettings())

    def __post_init__(self) -> None:
        self._check_rules()

    def _check_rules(self) -> None:
        """Rules that relate several settings; each names the keys involved."""
        where = f"environments.{self.name}"
        training = self.training
        if training.use_spot and training.max_wait_seconds <= training.max_run_seconds:
            # API reference (StoppingCondition): "equal to or greater than MaxRuntimeInSeconds"; the Developer
            # Guide (Managed Spot Training): "must be larger than MaxRuntimeInSeconds". Both hold when larger.
            raise ConfigError(
                f"{where}.training.max_wait_seconds is {training.max_wait_seconds}; allowed: more than "
                f"training.max_run_seconds ({training.max_run_seconds}) when use_spot is true")
        if (training.use_spot and not training.checkpointing
                and training.max_wait_seconds > MANAGED_SPOT_NO_CHECKPOINT_MAX_WAIT_SECONDS):
            raise ConfigError(
                f"{where}.training.max_wait_seconds is {training.max_wait_seconds}; allowed: at most "
                f"{MANAGED_SPOT_NO_CHECKPOINT_MAX_WAIT_SECONDS} when use_spot is true and checkpointing is false "
                "(Developer Guide, Managed Spot Training: algorithms that do not checkpoint are limited to a "
                "MaxWaitTimeInSeconds of 3600 seconds)")
        for key, instance_type in (("instance_type", training.instance_type),
                                   ("processing_instance_type", training.processing_instance_type)):
            if has_local_storage(instance_type) and training.volume_size_gb > SMALLEST_INSTANCE_STORE_GB:
                raise ConfigError(
                    f"{where}.training.volume_size_gb is {training.volume_size_gb}; allowed: at most "
                    f"{SMALLEST_INSTANCE_STORE_GB} while training.{key} ({instance_type}) has local NVMe storage "
                    "(API reference, ResourceConfig/ProcessingClusterConfig.VolumeSizeInGB: SageMaker mounts the "
                    "instance store instead, and you can't request more than its size)")
        serving = self.serving
        variants = [("champion", serving.champion)]
        if serving.challenger_enabled:
            variants.append(("challenger", serving.challenger))
        for label, variant in variants:
            if variant.max_instances < variant.min_instances:
                raise ConfigError(
                    f"{where}.serving.{label}.max_instances is {variant.max_instances}; allowed: at least "
                    f"min_instances ({variant.min_instances})")
            if self.production and variant.min_instances < 2:
                raise ConfigError(
                    f"{where}.serving.{label}.min_instances is {variant.min_instances}; allowed: at least 2 "
                    "in a production environment (one instance is one Availability Zone)")
        if self.production and not self.storage.retain_data:
            raise ConfigError(f"{where}.storage.retain_data is false; allowed: true in a production environment")
        if bool(self.network.subnet_ids) != bool(self.network.security_group_ids):
            raise ConfigError(f"{where}.network: subnet_ids and security_group_ids go together; got "
                              f"{len(self.network.subnet_ids)} subnets and "
                              f"{len(self.network.security_group_ids)} security groups")
        rollout = serving.deployment
        if rollout.strategy == "LINEAR" and not (
                LINEAR_STEP_PERCENT_RANGE[0] <= rollout.canary_percent <= LINEAR_STEP_PERCENT_RANGE[1]):
            raise ConfigError(
                f"{where}.serving.deployment.canary_percent is {rollout.canary_percent}; allowed: "
                f"{LINEAR_STEP_PERCENT_RANGE[0]}-{LINEAR_STEP_PERCENT_RANGE[1]} with strategy LINEAR (it is the "
                "linear step; API reference, TrafficRoutingConfig.LinearStepSize: 10-50% of the variant's instances)")
        waits = rollout_waits_seconds(strategy=rollout.strategy, step_percent=rollout.canary_percent,
                                      wait_minutes=rollout.wait_minutes,
                                      termination_wait_minutes=rollout.termination_wait_minutes)
        if waits > BLUE_GREEN_TIMEOUT_RANGE[1]:
            raise ConfigError(
                f"{where}.serving.deployment.wait_minutes is {rollout.wait_minutes}; allowed: bake and termination "
                f"waits that fit UpdateEndpoint's MaximumExecutionTimeoutInSeconds ({BLUE_GREEN_TIMEOUT_RANGE[1]} s at "
                f"most, with {PROVISIONING_ALLOWANCE_SECONDS} s for provisioning); these need {waits} s (API "
                "reference, BlueGreenUpdatePolicy: the timeout should be larger than the total waiting time)")
        if rollout.strategy != "ALL_AT_ONCE":
            for label, variant in variants:
                if instance_family(variant.instance_type) == "inf1":
                    raise ConfigError(
                        f"{where}.serving.{label}.instance_type is {variant.instance_type}; allowed: a type other "
                        f"than ml.inf1 with serving.deployment.strategy {rollout.strategy} (Developer Guide, "
                        "deployment guardrails exclusions: Inf1 endpoints fall back to all at once with no baking, "
                        "so the rollback alarms would never be watched); or strategy ALL_AT_ONCE")
        if len(serving.served_stages) > 1:
            raise ConfigError(
                f"{where}.serving.served_stages is {list(serving.served_stages)}; allowed: at most one stage (an "
                "endpoint that serves both would put a version approved for Staging in front of production users "
                "before anyone approved it for Production)")
        if self.production and STAGING in serving.served_stages:
            raise ConfigError(f"{where}.serving.served_stages is {list(serving.served_stages)}; allowed: [] or "
                              "['Production'] in a production environment")

    @property
    def is_registry(self) -> bool:
        """This environment holds the registry (pipeline, group, gate, ledger)."""
        return self.registry.registry_environment == self.name

    @property
    def removal_policy_retain(self) -> bool:
        return self.storage.retain_data


# ---------------------------------------------------------------- parsing
_RENAMED = {"lambda": "lambda_"}
_REMOVED = {
    ("RegistrySettings", "location"): "every environment now deploys from one registry environment "
    "(registry.registry_environment; with its own per-environment group, an endpoint served Staging and "
    "Production alike). See docs/ACCOUNTS.md",
    ("RegistrySettings", "cross_account_readers"): "the registry's resource policies now name exactly the "
    "consumer environments' roles, derived from their account ids (docs/ACCOUNTS.md)",
}


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "an object"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "null"}.get(tp, str(tp))


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in get_args(tp):
            return None
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{path} is {value!r}; allowed: {_type_name(tp)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path} is {value!r}; allowed: {_type_name(tp)}")
        return tuple(_coerce(get_args(tp)[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path} is {value!r}; allowed: an object")
        return _parse_dataclass(typing.cast(type[Any], tp), value, path)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        # json.loads accepts Infinity and NaN; no setting means either (and `config show --json` would print
        # invalid JSON).
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - a field type this parser does not know is a programming error
        raise TypeError(f"unsupported config type {tp!r} at {path}")
    if not ok:
        raise ConfigError(f"{path} is {value!r}; allowed: {_type_name(tp)}")
    return value


def _parse_dataclass(cls: type[T], raw: Mapping[str, Any], path: str, **fixed: Any) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    keys = {_RENAMED.get(k, k): k for k in raw}
    unknown = sorted(raw_key for name, raw_key in keys.items() if name not in fields or name in fixed)
    for raw_key in unknown:
        removed = _REMOVED.get((cls.__name__, raw_key))
        if removed:
            raise ConfigError(f"{path}.{raw_key} was removed; {removed}")
    if unknown:
        allowed = sorted(_json_key(k) for k in fields if k not in fixed)
        raise ConfigError(f"{path} has unknown keys {unknown}; allowed: {allowed}")
    values: dict[str, Any] = dict(fixed)
    for name, raw_key in keys.items():
        key_path = f"{path}.{raw_key}"
        value = _coerce(hints[name], raw[raw_key], key_path)
        check = fields[name].metadata.get("check")
        if check is not None and value is not None:
            problem = check(value)
            if problem:
                raise ConfigError(f"{key_path} is {raw[raw_key]!r}; allowed: {problem}")
        values[name] = value
    missing = [n for n, f in fields.items() if n not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{path} is missing required keys {missing}")
    return cls(**values)


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_environment(name: str, raw: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
                      ) -> EnvironmentConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"environments.{name} is {raw!r}; allowed: an object")
    merged = _deep_merge(defaults or {}, raw)
    return _parse_dataclass(EnvironmentConfig, merged, f"environments.{name}", name=name)


def load_environments(context: Mapping[str, Any]) -> dict[str, EnvironmentConfig]:
    """Parse every environment in the `cdk.json` context (keys 'defaults' and 'environments')."""
    environments = context.get("environments")
    if not isinstance(environments, Mapping) or not environments:
        raise ConfigError("context.environments is missing or empty; allowed: an object of environments")
    defaults = context.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"context.defaults is {defaults!r}; allowed: an object")
    for name in environments:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", name):
            raise ConfigError(f"environments.{name!r} is not a valid name; allowed: lowercase letters, digits "
                              "and '-', starting with a letter, at most 16 characters")
    configs = {name: parse_environment(name, raw, defaults) for name, raw in environments.items()}
    _check_registries(configs)
    check_concurrency_quota(list(configs.values()))
    return configs


def _check_registries(configs: Mapping[str, EnvironmentConfig]) -> None:
    """Each environment names a registry environment that names itself; consumers share its region (a model
    package and its artifacts are regional: SageMaker creates models from them in their own region only) and
    its retention rule; accounts are all given or all null (null is the CLI's account: a mix cannot tell which
    hops cross accounts); and every stage of a registry has exactly one deployer (two would race on the
    version's stage status and the ledger's staging evidence; none would strand promotions)."""
    servers: dict[tuple[str, str], str] = {}
    for config in configs.values():
        owner_name = config.registry.registry_environment
        owner = configs.get(owner_name)
        where = f"environments.{config.name}.registry"
        if owner is None:
            raise ConfigError(f"{where}.registry_environment is {owner_name!r}; allowed: one of {sorted(configs)}")
        if not owner.is_registry:
            raise ConfigError(f"{where}.registry_environment is {owner_name!r}, whose own registry_environment is "
                              f"{owner.registry.registry_environment!r}; allowed: an environment that names itself "
                              "(the registry environment)")
        if config.region != owner.region:
            raise ConfigError(
                f"environments.{config.name}.region is {config.region} but its registry environment {owner_name!r} "
                f"is in {owner.region}; allowed: {owner.region} (SageMaker creates a model from a package and its "
                "artifacts in their own region only; accounts may differ, docs/ACCOUNTS.md)")
        if (config.account is None) != (owner.account is None):
            raise ConfigError(
                f"environments.{config.name}.account is {config.account} and environments.{owner_name}.account is "
                f"{owner.account}; allowed: both account ids (each environment in its own account, or the same "
                "id twice) or both null (one account: the CLI's)")
        if not config.is_registry and (config.training.retrain_schedule or config.training.retrain_on_new_data):
            raise ConfigError(
                f"environments.{config.name}.training sets retraining triggers; allowed: none outside the registry "
                f"environment ({owner_name!r} runs the training pipeline; set them there)")
        if config.monitoring.drift.retrain_on_sustained_drift and config.account != owner.account:
            raise ConfigError(
                f"environments.{config.name}.monitoring.drift.retrain_on_sustained_drift is true; allowed: false "
                f"when {config.name!r} is in another account than its registry environment {owner_name!r} "
                "(the alarm would have to start the pipeline across accounts, which is not built; "
                "docs/ACCOUNTS.md, 'Not built yet')")
        if owner.storage.retain_data is False and config.production:
            raise ConfigError(
                f"environments.{owner_name}.storage.retain_data is false; allowed: true, since production "
                f"environment {config.name!r} deploys from its registry (the ledger and the retained production "
                "versions' artifacts live there)")
        if config.registry.protected_production_versions != owner.registry.protected_production_versions:
            # One ledger, one retention rule: the recorder protects with the registry's count.
            raise ConfigError(
                f"{where}.protected_production_versions is {config.registry.protected_production_versions}; "
                f"allowed: the registry environment's value ({owner.registry.protected_production_versions})")
        for stage in config.serving.served_stages:
            other = servers.setdefault((owner_name, stage), config.name)
            if other != config.name:
                raise ConfigError(
                    f"environments.{config.name}.serving.served_stages has {stage!r}, which environment {other!r} "
                    "already serves from the same registry; allowed: each stage served by one environment")
    for owner_name in sorted(name for name, config in configs.items() if config.is_registry):
        for stage in SERVABLE_STAGES:
            if (owner_name, stage) not in servers:
                raise ConfigError(
                    f"no environment's serving.served_stages has {stage!r} for the registry in {owner_name!r}; "
                    "allowed: every stage served by exactly one environment")


# Lambda refuses a reservation that leaves fewer unreserved concurrent executions than this in the account and
# region (Lambda Developer Guide, "Configuring reserved concurrency").
LAMBDA_UNRESERVED_MINIMUM = 100
# The inference function's SLA demand: Little's law at the peak rate when every request uses its whole endpoint
# budget (attempts x (connect + read timeout)), with 50 % headroom.
INFERENCE_CONNECT_TIMEOUT_SECONDS = 1
INFERENCE_CONCURRENCY_HEADROOM = 1.5


def inference_concurrency_demand(config: EnvironmentConfig) -> int:
    """Concurrent executions the unreserved inference function needs at the SLA's peak rate."""
    api = config.inference_api
    budget_seconds = api.max_attempts * (INFERENCE_CONNECT_TIMEOUT_SECONDS + api.endpoint_timeout_ms / 1000)
    return math.ceil(config.serving.sla.peak_requests_per_second * budget_seconds * INFERENCE_CONCURRENCY_HEADROOM)


def planned_reservation(config: EnvironmentConfig) -> tuple[int, int]:
    """(reserved, SLA demand) of an environment's functions: the promotion gate (registry environment only) and
    four deployer tasks at lambda.reserved_concurrency, the three scheduled functions at 1, the inference function
    unreserved. tests/infra/test_concurrency.py keeps this equal to what the synthesized stacks reserve."""
    reserved_functions = 5 if config.is_registry else 4  # the promotion gate lives in the registry environment
    return reserved_functions * config.lambda_.reserved_concurrency + 3, inference_concurrency_demand(config)


def check_concurrency_quota(configs: list[EnvironmentConfig]) -> None:
    """Fail, naming lambda.account_concurrency_quota, when the environments that share an account and region
    reserve so much that Lambda would refuse the deployment or the unreserved functions' SLA demand could not be
    met. An environment without an account id shares the CLI's default account."""
    groups: dict[tuple[str, str], list[tuple[EnvironmentConfig, int, int]]] = {}
    for config in configs:
        groups.setdefault((config.account or "the default account", config.region), []).append(
            (config, *planned_reservation(config)))
    for (account, region), members in groups.items():
        names = [c.name for c, _, _ in members]
        quotas = {c.lambda_.account_concurrency_quota for c, _, _ in members}
        if len(quotas) > 1:
            raise ConfigError(
                f"environments.{{{','.join(names)}}}.lambda.account_concurrency_quota are {sorted(quotas)}; "
                f"allowed: one value, since {', '.join(names)} share the quota of {account} in {region}")
        quota = quotas.pop()
        reserved = sum(r for _, r, _ in members)
        demand = sum(d for _, _, d in members)
        needed = reserved + max(LAMBDA_UNRESERVED_MINIMUM, demand)
        if quota < needed:
            where = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
            raise ConfigError(
                f"environments.{where}.lambda.account_concurrency_quota is {quota}; allowed: at least {needed} "
                f"for {', '.join(names)} in {account} and {region}: their functions reserve {reserved}, and "
                f"max({LAMBDA_UNRESERVED_MINIMUM} that Lambda keeps unreserved, {demand} the inference functions "
                "need at their SLA peak) must stay unreserved. Request a higher 'Concurrent executions' quota "
                "(L-B99A9384) or lower lambda.reserved_concurrency / serving.sla.peak_requests_per_second "
                "(docs/CONFIGURATION.md, 'Lambda concurrency quota')")


def consumers_of(configs: Mapping[str, EnvironmentConfig], registry: EnvironmentConfig) -> list[EnvironmentConfig]:
    """The environments that serve a stage of ``registry``'s group, in a stable order."""
    return [c for _, c in sorted(configs.items())
            if c.registry.registry_environment == registry.name and c.serving.served_stages]


def other_account(config: EnvironmentConfig, registry: EnvironmentConfig) -> bool:
    """True when ``config`` lives in another account than its registry (cross-account hops need resource
    policies and event forwarding); null accounts are one account (the rule above)."""
    return config.account != registry.account


CDK_JSON = REPO_ROOT / "cdk.json"


def project_context() -> dict[str, Any]:
    """The `context` block of cdk.json (what the CDK CLI passes to app.py)."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    return context


def select_environments(context: Mapping[str, Any], selected: str | None) -> list[EnvironmentConfig]:
    configs = load_environments(context)
    if selected is None:
        return list(configs.values())
    if selected not in configs:
        raise ConfigError(f"context env is {selected!r}; allowed: one of {sorted(configs)}")
    return [configs[selected]]


def drift_thresholds(config: EnvironmentConfig) -> dict[str, Any]:
    """The ``mlcore.drift.statistics.DriftThresholds`` overrides an environment's drift runs use: the Lambda's
    ``DRIFT_THRESHOLDS`` (stacks/monitoring.py) and `mlops drift --env` (mlops/drift_thresholds.py) alike, so a
    window is judged the same locally and in AWS. Thresholds not set here keep DriftThresholds' defaults."""
    drift, alarms = config.monitoring.drift, config.monitoring.alarms
    return {"psi": drift.psi_threshold, "js": drift.js_threshold, "ks": drift.ks_threshold,
            "weighted_drift": drift.weighted_drift_alarm, "min_rows": drift.min_rows,
            "missing_rate_delta": drift.missing_rate_min_effect,
            "out_of_range_rate": drift.quality_min_effect, "unseen_share": drift.quality_min_effect,
            "top_features": drift.page_top_features,
            "prediction_psi": alarms.confidence_shift_psi, "confidence_psi": alarms.confidence_shift_psi}


def to_plain(value: Any) -> Any:
    """A config object as JSON-ready data, with the cdk.json key names."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_json_key(f.name): to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_plain(v) for v in value]
    return value


def _json_key(name: str) -> str:
    return "lambda" if name == "lambda_" else name


def reference_rows(cls: type[Any] = EnvironmentConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key path, type, default, doc) for every setting, depth first: the configuration reference."""
    rows: list[tuple[str, str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{_json_key(f.name)}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.append((key, "object", "", f.metadata["doc"]))
            rows.extend(reference_rows(typing.cast(type[Any], tp), f"{key}."))
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(to_plain(f.default)).replace("None", "null").replace("True", "true") \
                .replace("False", "false")
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(list(f.default_factory()))
        else:
            default = "(required)"
        rows.append((key, _type_name(tp), default, f.metadata["doc"]))
    return rows


CONCURRENCY_QUOTA_SECTION = (
    "## Lambda concurrency quota",
    "",
    "Lambda keeps 100 of an account's concurrent executions per region unreserved and refuses a deployment whose",
    "reserved concurrency would leave less (a new account's quota can be far below the default 1,000). Synth",
    "therefore sums, over every environment that shares an account and region, the reserved concurrency of",
    "every function, and fails naming `lambda.account_concurrency_quota` unless the quota minus that sum is at",
    "least the larger of 100 and the inference functions' SLA demand.",
    "",
    "- Reserved per environment: `5 x lambda.reserved_concurrency` (the promotion gate and four deployer tasks)",
    "  + 3 (health check, batch scoring, drift monitor, one each): 28 with the default.",
    "- The inference function is unreserved; its SLA demand is",
    "  `ceil(serving.sla.peak_requests_per_second x inference_api.max_attempts x",
    "  (1 s connect + inference_api.endpoint_timeout_ms) x 1.5)`: the concurrency Little's law gives when",
    "  every request at the peak rate uses its whole endpoint timeout budget, with 50 % headroom.",
    "- The quota to request (Service Quotas, AWS Lambda, 'Concurrent executions', L-B99A9384) is at least",
    "  the reserved sum + max(100, the sum of the SLA demands) of the environments sharing the account and",
    "  region; the synth error states both numbers. docs/VERIFICATION.md gives them for this repository's",
    "  cdk.json.",
)


def render_reference() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `stacks/config.py` by `mlops config reference`; a test fails when this page is stale.",
        "Settings live in `cdk.json` under `context.defaults` (shared) and `context.environments.<name>`",
        "(per environment, deep-merged over the defaults). A wrong key or value fails `cdk synth` with a",
        "message naming the key path, the value and what is allowed.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for key, tp, default, doc in reference_rows():
        lines.append(f"| `{key}` | {tp} | {f'`{default}`' if default else ''} | {doc} |")
    lines += ["", *CONCURRENCY_QUOTA_SECTION]
    return "\n".join(lines) + "\n"
