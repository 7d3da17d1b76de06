"""The configuration's typed tree: one frozen, keyword-only dataclass per block of cdk.json, each field with its
doc (docs/CONFIGURATION.md is generated from them) and check, and the rules that relate several settings of one
environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlsettings import drift as drift_defaults
from mlsettings.config.fields import (
    ACCOUNT_ID,
    EMAIL,
    ENDPOINT_INSTANCE,
    HTTPS_URL,
    LOG_RETENTION_DAYS,
    PROCESSING_INSTANCE,
    REPO_ROOT,
    TRAINING_INSTANCE,
    TRANSFORM_INSTANCE,
    ConfigError,
    at_least,
    between,
    each,
    matches,
    one_of,
    positive,
    region_check,
    schedule_check,
    schema_file_check,
    setting,
    stages_check,
)
from mlsettings.drift_partials import ENGINE_LAMBDA, ENGINES
from mlsettings.image_reference import DIGEST_PATTERN
from mlsettings.instance_types import (
    MANAGED_SPOT_NO_CHECKPOINT_MAX_WAIT_SECONDS,
    SMALLEST_INSTANCE_STORE_GB,
    has_local_storage,
    instance_family,
    is_gpu_instance,
)
from mlsettings.problem_types import ALL_GATE_METRICS, PROBLEM_TYPES, gate_metric, problem_type
from mlsettings.rollout import (
    BLUE_GREEN_TIMEOUT_RANGE,
    CANARY_PERCENT_MAX,
    LINEAR_STEP_PERCENT_RANGE,
    PROVISIONING_ALLOWANCE_SECONDS,
    rollout_waits_seconds,
)
from mlsettings.schema import DataSchema
from mlsettings.training_code import (
    DEFAULT_ENTRY_POINT,
    HOOKS,
    IMAGE,
    PLATFORM,
    SKLEARN_SCRIPT,
    TRAINING_KINDS,
    XGBOOST_SCRIPT,
    hook_problem,
    image_folder_problem,
    source_dir_problem,
)
from mlsettings.vocabulary import STAGING, TRAINING_DATA_PREFIX


@dataclass(frozen=True, kw_only=True)
class LambdaSettings:
    architecture: Literal["arm64", "x86_64"] = setting(
        "CPU architecture of every Lambda function (arm64 is cheaper per GB-second).", default="arm64")
    log_retention_days: int = setting("CloudWatch Logs retention for every function (a value CloudWatch "
                                      "accepts).", default=30, check=one_of(LOG_RETENTION_DAYS))
    reserved_concurrency: int = setting(
        "Reserved concurrency of the promotion gate (it judges every model's registry events and results). Each "
        "model's deployer tasks and scheduled functions (health check, batch scoring, drift monitor) reserve 1; "
        "each model's inference function reserves none (throttling it would turn the API's designed fallbacks "
        "into errors) and draws its SLA demand from the account's unreserved pool.", default=5,
        check=between(1, 1000))
    account_concurrency_quota: int = setting(
        "The AWS account's Lambda concurrent-executions quota in this environment's region (Service Quotas "
        "code L-B99A9384; 1,000 by default, often far less in a new account). Environments that share an "
        "account and region must state the same value; synth fails unless, after every function's reserved "
        "concurrency, at least max(100, the inference functions' SLA demand) stays unreserved "
        "(docs/CONFIGURATION.md, 'Lambda concurrency quota').", default=1000, check=between(1, 1000000))


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    retain_data: bool = setting(
        "Keep buckets, the KMS key and tables when the stack is deleted (true for staging and prod).",
        default=True)
    noncurrent_version_expiration_days: int = setting(
        "Days a replaced object version is kept in the versioned buckets.", default=90,
        check=between(1, 3650))
    infrequent_access_after_days: int = setting(
        "Days before training data and artifacts move to S3 Standard-IA.", default=30,
        check=at_least(30))
    capture_retention_days: int = setting(
        "Days data-capture files and prediction logs are kept.", default=90, check=between(1, 3650))
    access_log_retention_days: int = setting("Days server access logs are kept.", default=365,
                                             check=between(1, 3650))


@dataclass(frozen=True, kw_only=True)
class QualityGateSettings:
    metric: str = setting(
        "Evaluation metric the quality gate compares (<the problem type's report section>.<metric>): one of the "
        "model's problem type's gate metrics (binary: auc, f1, precision, recall; multiclass: accuracy, macro_f1, "
        "log_loss; regression: rmse, mae, r2); the drift monitor's ground-truth quality reports the same metric.",
        default="auc", check=one_of(ALL_GATE_METRICS))
    threshold: float = setting("The run fails when the metric, or its 95 % confidence bound, is on the wrong side "
                               "of this value (below it for a higher-is-better metric, above it for rmse, mae and "
                               "log_loss). Range: [0, 1] for the proportions and AUC, at most 1 for r2, at least 0 "
                               "for rmse, mae and log_loss.", default=0.9)


@dataclass(frozen=True, kw_only=True)
class TrainingCodeSettings:
    kind: str = setting(
        "Who writes the training program: 'platform' (the platform's XGBoost program, pipelines/steps/train.py), "
        "'xgboost-script' or 'sklearn-script' (the model team's own program in source_dir, run in SageMaker's "
        "XGBoost 3.2-0 or scikit-learn 1.9-0 container in script mode; the scikit-learn image runs on CPU "
        "instance types only), or 'image' (the team's own image, `image`, whose train and serve programs are in "
        "source_dir). Validation, preprocessing, evaluation, the quality gate, the drift baseline and "
        "registration are the platform's for every kind (docs/TRAINING.md, 'Your own training code').",
        default=PLATFORM, check=one_of(TRAINING_KINDS))
    source_dir: str | None = setting(
        "The model's training code folder, relative to the repository root (script kinds): its entry_point, an "
        "optional requirements.txt and wheels/ with every requirement vendored (training jobs have no network). "
        "Kind 'image': the image's folder, holding the train and serve programs its Dockerfile copies (what `mlops "
        "conformance` and local runs execute; not uploaded).",
        default=None)
    image_digest: str | None = setting(
        "Kind 'image' only: the digest (sha256:<64 hex digits>) of the team's image in the model's own repository "
        "<project>-<registry environment>/<model>, which the registry environment's model stack creates (immutable "
        "tags, scanned on push, pullable by the serving accounts' model roles). The Train step, the pipeline's "
        "scoring and every endpoint run <repository URI>@<digest>: pinned, since a tag can be moved. null until the "
        "first image is pushed: the pipeline then fails at once, saying so.", default=None,
        check=matches(DIGEST_PATTERN, "a digest, sha256:<64 lowercase hex digits> (docker inspect --format "
                      "'{{index .RepoDigests 0}}' <image>, the part after '@'), never a tag, which can be moved"))
    entry_point: str = setting("The program in source_dir the job runs.", default=DEFAULT_ENTRY_POINT,
                               check=matches(r"[A-Za-z_][A-Za-z0-9_]*\.py", "a Python file name (a module name "
                                             "plus .py)"))
    evaluate_hook: str | None = setting(
        "Optional: a Python file in source_dir defining evaluate(labels, answers, schema) -> {name: number}, which "
        "the platform's Evaluate step calls on the test set and records as team_metrics in the evaluation report "
        "(the quality gate stays the platform's; docs/TRAINING.md, 'Hooks').", default=None,
        check=matches(r"[A-Za-z_][A-Za-z0-9_]*\.py", "a Python file name (a module name plus .py)"))
    preprocess_hook: str | None = setting(
        "Optional: a Python file in source_dir defining clean(frame, schema) -> frame, which the platform's "
        "Preprocess step calls on the raw rows before the features and the split: it may drop or fix rows, never "
        "add rows or change the columns (docs/TRAINING.md, 'Hooks').", default=None,
        check=matches(r"[A-Za-z_][A-Za-z0-9_]*\.py", "a Python file name (a module name plus .py)"))
    serve_hook: str | None = setting(
        "Optional: a Python file in source_dir defining predict(model, features) -> answers, which the platform's "
        "serving handler calls instead of the model's own predict (the loaded Booster or estimator and the "
        "platform's feature matrix; answers in XGBoost's shape for the kind). Parsing, features and the response "
        "format stay the platform's, so Evaluate, the golden payloads, the endpoints and batch scoring all serve "
        "through it (docs/TRAINING.md, 'Hooks').", default=None,
        check=matches(r"[A-Za-z_][A-Za-z0-9_]*\.py", "a Python file name (a module name plus .py)"))


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    schema_file: str = setting("Data schema (features, types, ranges, label), relative to the repo root: set by "
                               "the model's entry (models.<name>.schema_file), not here.",
                               default="pipelines/schemas/breast_cancer.json", check=schema_file_check)
    instance_type: str = setting("Training instance type (a GPU type: the train step uses cuda where it sees a GPU).",
                                 default="ml.g5.xlarge", check=TRAINING_INSTANCE)
    instance_count: int = setting("Training instances.", default=1, check=between(1, 20))
    processing_instance_type: str = setting("Instance type of the validate/preprocess/evaluate/baseline steps.",
                                            default="ml.m5.xlarge", check=PROCESSING_INSTANCE)
    use_spot: bool = setting("Managed spot training.", default=True)
    max_run_seconds: int = setting("Training job MaxRuntimeInSeconds.", default=3600,
                                   check=between(60, 432000))
    max_wait_seconds: int = setting("Spot MaxWaitTimeInSeconds (more than max_run_seconds; at most 3600 without "
                                    "checkpointing).", default=7200,
                                    check=between(60, 432000))
    checkpointing: bool = setting("Checkpoint to S3 so an interrupted spot job resumes.", default=True)
    volume_size_gb: int = setting("EBS volume per training/processing instance (at most 50 on types with local NVMe "
                                  "storage, which SageMaker mounts instead).", default=30,
                                  check=between(1, 16384))
    num_round: int = setting("XGBoost boosting rounds.", default=200, check=between(1, 100000))
    min_rows_per_class: int = setting(
        "Fewest rows of each label class the validate step accepts (the split needs 3 per class; the quality "
        "gate also requires its metric's 95 % lower confidence bound to clear the threshold).", default=10,
        check=between(3, 1_000_000))
    quality_gate: QualityGateSettings = setting("The quality gate.", default=QualityGateSettings())
    code: TrainingCodeSettings = setting("The training program: the platform's or the model team's own.",
                                         default=TrainingCodeSettings())
    max_missing_rate: float = setting("Default missing-value limit for features the schema leaves open.",
                                      default=0.05, check=between(0, 1))
    retrain_schedule: str | None = setting("Schedule of periodic retraining, or null for none.",
                                           default=None, check=schedule_check)
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
        default=3, check=at_least(3))


@dataclass(frozen=True, kw_only=True)
class SlaSettings:
    p99_latency_ms: float = setting("Target p99 model latency in milliseconds.", default=200, check=positive)
    peak_requests_per_second: float = setting("Peak load the endpoint must carry.", default=50,
                                              check=positive)
    availability_percent: float = setting("Availability objective.", default=99.9, check=between(90, 100))


@dataclass(frozen=True, kw_only=True)
class VariantSettings:
    instance_type: str = setting("Endpoint instance type.", default="ml.m5.large", check=ENDPOINT_INSTANCE)
    min_instances: int = setting("Minimum instances (autoscaling floor).", default=1, check=between(1, 100))
    max_instances: int = setting("Maximum instances (autoscaling ceiling).", default=2,
                                 check=between(1, 100))


@dataclass(frozen=True, kw_only=True)
class DeploymentSettings:
    strategy: Literal["CANARY", "LINEAR", "ALL_AT_ONCE"] = setting(
        "Blue/green traffic shifting for endpoint updates.", default="CANARY")
    canary_percent: int = setting("Traffic share of the canary step (CANARY), or of each step (LINEAR: 10-50).",
                                  default=10, check=between(1, CANARY_PERCENT_MAX))
    wait_minutes: int = setting("Bake time per traffic step before the next one.", default=10,
                                check=between(0, 60))
    termination_wait_minutes: int = setting("Time the old fleet stays up after the shift.", default=5,
                                            check=between(0, 60))


@dataclass(frozen=True, kw_only=True)
class ServingSettings:
    sla: SlaSettings = setting("Service-level objectives; autoscaling and alarms derive from them.",
                               default=SlaSettings())
    champion: VariantSettings = setting("The Champion production variant.", default=VariantSettings())
    challenger_enabled: bool = setting("Run a Challenger variant beside the Champion (A/B).", default=False)
    challenger: VariantSettings = setting("The Challenger production variant.", default=VariantSettings())
    challenger_weight_percent: int = setting("Traffic share of the Challenger.", default=10,
                                             check=between(1, 50))
    deployment: DeploymentSettings = setting("Safe rollout of new models.", default=DeploymentSettings())
    capture_sampling_percent: int = setting("Share of requests written by data capture.", default=100,
                                            check=between(1, 100))
    network_isolation: bool = setting("Run model containers without network access.", default=True)
    batch_instance_type: str = setting("Batch transform instance type.", default="ml.m5.xlarge",
                                       check=TRANSFORM_INSTANCE)
    batch_schedule: str | None = setting("Schedule of the batch scoring run, or null for on demand only.",
                                         default=None, check=schedule_check)
    health_check_schedule: str = setting("How often the health check calls every variant.",
                                         default="rate(5 minutes)", check=schedule_check)
    served_stages: tuple[str, ...] = setting(
        "Registry stages whose accepted promotions this environment's deployer puts on its endpoint: at most "
        "one, and every stage of a registry served by exactly one environment, e.g. dev: [], staging: [Staging], "
        "prod: [Production] (docs/PROMOTION.md, 'Where each stage is served'). One endpoint never serves both: "
        "a version approved for Staging would reach production users before anyone approved it for Production.",
        default=[], check=stages_check)


@dataclass(frozen=True, kw_only=True)
class InferenceApiSettings:
    endpoint_timeout_ms: int = setting("Read timeout of InvokeEndpoint from the API.", default=1000,
                                       check=between(50, 60000))
    max_attempts: int = setting("InvokeEndpoint attempts, the first included.", default=2,
                                check=between(1, 5))
    breaker_failure_threshold: int = setting("Consecutive failures that open the circuit.", default=5,
                                             check=between(1, 1000))
    breaker_cooldown_seconds: int = setting("Open time before one trial call (half-open).", default=30,
                                            check=between(1, 3600))
    cache_ttl_seconds: int = setting("Lifetime of cached endpoint answers.", default=86400,
                                     check=between(60, 31536000))
    safe_default_probability: float = setting("Answer when neither model nor cache can serve.",
                                              default=0.5, check=between(0, 1))
    max_body_bytes: int = setting("Largest accepted request body.", default=65536, check=between(1024, 6000000))
    max_rows: int = setting("Most rows in one request.", default=100, check=between(1, 10000))


@dataclass(frozen=True, kw_only=True)
class DriftSettings:
    schedule: str = setting("When the drift monitor runs.", default="cron(0 6 * * ? *)", check=schedule_check)
    window_hours: int = setting("Captured traffic analysed per run.", default=24, check=between(1, 720))
    psi_threshold: float = setting("PSI above which a feature drifts.", default=drift_defaults.PSI, check=positive)
    js_threshold: float = setting("Jensen-Shannon distance above which a feature drifts.", default=drift_defaults.JS,
                                  check=between(0, 1))
    ks_threshold: float = setting("KS statistic (effect size) above which a feature drifts.", default=drift_defaults.KS,
                                  check=between(0, 1))
    weighted_drift_alarm: float = setting(
        "Share of the model's feature importance (XGBoost total gain, from the baseline) carried by drifted "
        "features that raises the DataDrift alarm; a strongly drifted top feature alone can reach it, an unused "
        "feature never does.", default=drift_defaults.WEIGHTED_DRIFT, check=between(0, 1))
    missing_rate_min_effect: float = setting(
        "Smallest increase of a feature's missing rate over the baseline's that is a data-quality violation "
        "(a non-nullable feature violates at this share alone; a nullable one must also be beyond the window's "
        "sampling noise).", default=drift_defaults.MISSING_RATE_DELTA, check=between(0, 1))
    quality_min_effect: float = setting(
        "Smallest out-of-range or unseen-category share (over the baseline's) that is a data-quality violation "
        "(values the schema forbids violate at this share alone; a declared category training never saw must "
        "also be beyond the window's sampling noise).", default=drift_defaults.QUALITY_MIN_EFFECT,
        check=between(0, 1))
    page_top_features: int = setting(
        "A data-quality violation in one of this many most important features pages in production (others "
        "open a ticket).", default=drift_defaults.TOP_FEATURES, check=between(1, 1000))
    min_rows: int = setting("Windows smaller than this never alarm.", default=drift_defaults.MIN_ROWS,
                            check=at_least(10))
    engine: str = setting(
        "Where the drift run happens: `lambda` streams the window in the drift Lambda (two processes); `partials` "
        "reduces each captured object to a partial result when it lands (a function on S3's events) and the "
        "scheduled run merges them exactly (any traffic); `processing` starts a SageMaker Processing job over up "
        "to `processing_max_instances` instances (ShardedByS3Key) that writes the same partial results, merged "
        "when it ends (backfills, windows beyond ~20M records without partials). docs/MONITORING.md.",
        default=ENGINE_LAMBDA, check=one_of(ENGINES))
    processing_max_instances: int = setting(
        "Most instances of the sharded drift Processing job; the job takes one per ~20 GB of the window's capture, "
        "up to this.", default=10, check=between(1, 100))
    retrain_on_sustained_drift: bool = setting("Sustained drift starts the retraining trigger.",
                                               default=False)


@dataclass(frozen=True, kw_only=True)
class Subscriptions:
    emails: tuple[str, ...] = setting("E-mail subscribers.", default=[], check=each(EMAIL))
    https: tuple[str, ...] = setting("HTTPS endpoints without credentials in the URL.", default=[],
                                     check=each(HTTPS_URL))
    https_secret_names: tuple[str, ...] = setting(
        "Secrets Manager secret names whose value is an HTTPS endpoint that carries a credential (an on-call "
        "service's integration URL); CloudFormation resolves them at deploy time, so the URL is never in "
        "cdk.json or a template.", default=[],
        check=each(matches(r"[A-Za-z0-9/_+=.@-]{1,512}", "a Secrets Manager secret name")))


@dataclass(frozen=True, kw_only=True)
class AlarmSettings:
    page: Subscriptions = setting("Who is paged (severity 'page').", default=Subscriptions())
    ticket: Subscriptions = setting("Who gets tickets (severity 'ticket').", default=Subscriptions())
    error_rate_percent: float = setting("5XX share of invocations that pages.", default=1.0,
                                        check=between(0, 100))
    fallback_rate_percent: float = setting("Share of API answers not served by the endpoint that pages.",
                                           default=5.0, check=between(0, 100))
    quality_margin: float = setting("Quality drop below the registered metric that pages (in the metric's worse "
                                    "direction; for rmse and mae a fraction of the registered value).", default=0.05,
                                    check=between(0, 1))
    confidence_shift_psi: float = setting("PSI of the prediction and confidence distributions that raises a "
                                          "ticket.", default=drift_defaults.SHIFT_PSI, check=positive)
    idle_endpoint_days: int | None = setting(
        "Days without a single request through the inference API while the endpoint's instances run, after "
        "which a non-production environment raises the IdleEndpoint ticket (the instances cost money whether "
        "or not anyone calls them). 1 to 7: CloudWatch evaluates an alarm over at most seven days. null: no "
        "alarm. Production environments never get it (NoTraffic pages there; docs/runbooks/idle-endpoint.md).",
        default=7, check=between(1, 7))


@dataclass(frozen=True, kw_only=True)
class MonitoringSettings:
    drift: DriftSettings = setting("Data and prediction drift.", default=DriftSettings())
    alarms: AlarmSettings = setting("Alarm thresholds and routing.", default=AlarmSettings())


@dataclass(frozen=True, kw_only=True)
class NetworkSettings:
    subnet_ids: tuple[str, ...] = setting(
        "Private subnets for SageMaker jobs and endpoints (empty: no VPC; jobs and models are network-isolated "
        "either way).", default=[], check=each(matches(r"subnet-[0-9a-f]{8,17}", "a subnet id such as "
                                                                                   "'subnet-0abc12345'")))
    security_group_ids: tuple[str, ...] = setting(
        "Security groups for those subnets (required with subnet_ids).", default=[],
        check=each(matches(r"sg-[0-9a-f]{8,17}", "a security group id such as 'sg-0abc12345'")))


@dataclass(frozen=True, kw_only=True)
class DeliverySettings:
    github_repository: str | None = setting(
        "The GitHub repository ('owner/name') whose Actions workflow deploys the environments: the only one the "
        "OIDC roles trust (docs/DEPLOYING.md, 'Delivery from git'). null: no OIDC roles are synthesized. One "
        "value for every environment.", default=None,
        check=matches(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}",
                      "'owner/name' of a GitHub repository"))
    default_branch: str = setting(
        "The branch whose pushes deploy and whose scheduled runs detect drift (the read-only role trusts its "
        "runs). One value for every environment.", default="main",
        check=matches(r"[A-Za-z0-9._/-]{1,200}", "a branch name"))
    bootstrap_qualifier: str = setting(
        "The CDK bootstrap qualifier of this environment's account and region (`cdk bootstrap --qualifier`); the "
        "deploy role may assume that bootstrap's deploy, file-publishing, image-publishing and lookup roles.",
        default="hnb659fds", check=matches(r"[A-Za-z0-9_-]{1,10}", "the bootstrap template's Qualifier pattern "
                                                                  "[A-Za-z0-9_-]{1,10}"))
    create_oidc_provider: bool = setting(
        "Create GitHub's OIDC identity provider in this environment's account. false: the account already has one "
        "(an account holds one provider per URL) and the roles trust it by its ARN. Environments sharing an "
        "account state the same value.", default=True)


MODEL_NAME_PATTERN = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
"""A model's name: lowercase letters and digits in '-'-separated words. It becomes part of S3 prefixes and of
SageMaker, IAM and CloudWatch names; mlsettings.naming checks each derived name against its service's limit."""


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """One model of the platform: its entry under ``context.models``. Its training, serving, inference_api and
    monitoring sections (and ``environments.<env>.<section>``) override the environment's for this model only."""

    name: str = setting("The model's name (its key under 'models'): part of its endpoint, model package group, "
                        "pipeline, role and alarm names.", derived=True)
    problem_type: str = setting("binary, multiclass or regression: what the model predicts (a score, class "
                                "probabilities and a label, a value). Every stage reads it.",
                                check=one_of(PROBLEM_TYPES))
    schema_file: str = setting("The model's data schema (features, types, ranges, label), relative to the repository "
                               "root.", check=schema_file_check)
    owner: str | None = setting("The team that owns the model (a tag on its stack and a column of `mlops models`).",
                                default=None, check=matches(r"[A-Za-z0-9 _.:/=+@-]{1,128}", "a tag value"))

    @property
    def training_data_prefix(self) -> str:
        """Where the model's training data lives in the environment's data bucket: ``training/<name>/`` (a new
        object there starts its pipeline when training.retrain_on_new_data is true)."""
        return f"{TRAINING_DATA_PREFIX}{self.name}/"


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    name: str = setting("Environment name (the key under 'environments').")
    account: str | None = setting("AWS account id; null falls back to CDK_DEFAULT_ACCOUNT.", default=None,
                                  check=ACCOUNT_ID)
    region: str = setting("AWS region.", default="eu-west-1",
                          check=region_check)
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
    model: ModelSettings | None = setting("The model this is the view of (None: the environment itself).",
                                          default=None, derived=True)
    models: tuple[EnvironmentConfig, ...] = setting(
        "Each model's view of this environment: the model's settings over the environment's.", default=(),
        derived=True)

    def for_model(self, name: str) -> EnvironmentConfig:
        """The view of ``name`` (its training, serving, inference_api and monitoring settings)."""
        for view in self.models:
            if view.model is not None and view.model.name == name:
                return view
        raise ConfigError(f"model {name!r} is not in context.models; allowed: {', '.join(self.model_names) or 'none'}")

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(view.model.name for view in self.models if view.model is not None)

    @property
    def where(self) -> str:
        """The cdk.json key path errors about this configuration name."""
        if self.model is None:
            return f"environments.{self.name}"
        return f"models.{self.model.name}.environments.{self.name}"

    def __post_init__(self) -> None:
        self._check_rules()

    def _check_rules(self) -> None:
        """Rules that relate several settings; each names the keys involved."""
        where = self.where
        self._check_training(where)
        self._check_serving(where)
        self._check_rollout(where)

    def _check_quality_gate(self, where: str) -> None:
        """The gate's metric belongs to the model's problem type (mlsettings.problem_types), its threshold lies in
        the metric's range, and the model's schema describes a label of that type."""
        gate = self.training.quality_gate
        kind, metric = gate_metric(gate.metric)
        if self.model is not None:
            declared = problem_type(self.model.problem_type)
            if kind is not declared:
                raise ConfigError(
                    f"{where}.training.quality_gate.metric is {gate.metric!r}, a {kind.name} metric; model "
                    f"{self.model.name!r} is {declared.name}: allowed: "
                    f"{', '.join(m.name for m in declared.gate_metrics)}")
            schema_kind = DataSchema.load(REPO_ROOT / self.model.schema_file).problem_type
            if schema_kind != declared.name:
                raise ConfigError(
                    f"models.{self.model.name}.problem_type is {declared.name!r} but its schema "
                    f"{self.model.schema_file} has a {schema_kind} label (mlsettings.schema: positive/negative for "
                    "binary, classes for multiclass, min/max for regression)")
        problem = metric.threshold_problem(gate.threshold)
        if problem is not None:
            raise ConfigError(f"{where}.training.quality_gate.threshold is {gate.threshold:g}; allowed: {problem}")

    def _check_training(self, where: str) -> None:
        self._check_quality_gate(where)
        training = self.training
        self._check_training_code(where)
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

    def _check_training_code(self, where: str) -> None:
        """A script kind names a folder that holds its program and installs offline (mlsettings.training_code)."""
        code = self.training.code
        hooks = {name: getattr(code, name) for name in HOOKS if getattr(code, name) is not None}
        if code.kind != IMAGE and code.image_digest is not None:
            raise ConfigError(f"{where}.training.code.image_digest is set while kind is {code.kind!r}; allowed: "
                              f"null, or kind {IMAGE!r}")
        if code.kind == IMAGE:
            self._check_image(where)
            return
        if code.kind == PLATFORM:
            for name, hook in hooks.items():
                raise ConfigError(f"{where}.training.code.{name} is {hook!r} while kind is {PLATFORM!r}; allowed: "
                                  "null (a hook lives in a team's source_dir)")
            if code.source_dir is not None:
                raise ConfigError(f"{where}.training.code.source_dir is {code.source_dir!r} while kind is "
                                  f"{PLATFORM!r}; allowed: null, or a kind that runs your code ({XGBOOST_SCRIPT!r}, "
                                  f"{SKLEARN_SCRIPT!r})")
            return
        if code.source_dir is None:
            raise ConfigError(f"{where}.training.code.source_dir is missing; allowed: the model's training code "
                              f"folder, relative to the repository root, when kind is {code.kind!r}")
        problem = source_dir_problem(REPO_ROOT, code.source_dir, code.entry_point, code.kind)
        if problem:
            raise ConfigError(f"{where}.training.code.source_dir: {problem}")
        for name, hook in hooks.items():
            problem = hook_problem(REPO_ROOT / code.source_dir, hook, name)
            if problem:
                raise ConfigError(f"{where}.training.code.{name}: {code.source_dir}/{problem}")
        if code.kind == SKLEARN_SCRIPT and is_gpu_instance(self.training.instance_type):
            raise ConfigError(
                f"{where}.training.instance_type is {self.training.instance_type} while training.code.kind is "
                f"{SKLEARN_SCRIPT!r}; allowed: a CPU instance type (the SageMaker scikit-learn image is published "
                "for the 'cpu' processor only: sagemaker-core's image_uri_config/sklearn.json, and its image_uris "
                "takes a 'g' or 'p' family for a GPU)")

    def _check_image(self, where: str) -> None:
        """Kind 'image': the image's folder holds its programs and no hooks are set. The image is named by its
        digest alone (the field's check): its repository is the model's own, in the registry environment's account
        and region (API reference, ContainerDefinition.Image: the image "must be in the same region as the model or
        endpoint you are creating")."""
        code = self.training.code
        for name in HOOKS:
            if getattr(code, name) is not None:
                raise ConfigError(f"{where}.training.code.{name} is set while kind is {IMAGE!r}; allowed: null (hooks "
                                  "run the team's Python in the platform's steps: script kinds only)")
        if code.source_dir is None:
            raise ConfigError(f"{where}.training.code.source_dir is missing; allowed: the image's folder (its train "
                              f"and serve programs), relative to the repository root, when kind is {IMAGE!r}")
        problem = image_folder_problem(REPO_ROOT, code.source_dir)
        if problem:
            raise ConfigError(f"{where}.training.code.source_dir: {problem}")

    def _serving_variants(self) -> list[tuple[str, VariantSettings]]:
        variants = [("champion", self.serving.champion)]
        if self.serving.challenger_enabled:
            variants.append(("challenger", self.serving.challenger))
        return variants

    def _check_serving(self, where: str) -> None:
        serving = self.serving
        for label, variant in self._serving_variants():
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
        if len(serving.served_stages) > 1:
            raise ConfigError(
                f"{where}.serving.served_stages is {list(serving.served_stages)}; allowed: at most one stage (an "
                "endpoint that serves both would put a version approved for Staging in front of production users "
                "before anyone approved it for Production)")
        if self.production and STAGING in serving.served_stages:
            raise ConfigError(f"{where}.serving.served_stages is {list(serving.served_stages)}; allowed: [] or "
                              "['Production'] in a production environment")

    def _check_rollout(self, where: str) -> None:
        serving = self.serving
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
            for label, variant in self._serving_variants():
                if instance_family(variant.instance_type) == "inf1":
                    raise ConfigError(
                        f"{where}.serving.{label}.instance_type is {variant.instance_type}; allowed: a type other "
                        f"than ml.inf1 with serving.deployment.strategy {rollout.strategy} (Developer Guide, "
                        "deployment guardrails exclusions: Inf1 endpoints fall back to all at once with no baking, "
                        "so the rollback alarms would never be watched); or strategy ALL_AT_ONCE")

    @property
    def is_registry(self) -> bool:
        """This environment holds the registry (pipeline, group, gate, ledger)."""
        return self.registry.registry_environment == self.name

