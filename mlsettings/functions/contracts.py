"""Each Lambda function's environment contract (mlsettings.functions.base): the stack builds one with
``for_config`` and writes ``to_env()``; the handler reads it with ``from_env``. Values the configuration decides
are computed here, from an ``EnvironmentConfig``, once; names of deployed resources (tokens in a stack) are passed
in."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

from mlsettings.config import EnvironmentConfig, consumers_of, drift_thresholds, to_plain
from mlsettings.config.topology import INFERENCE_CONNECT_TIMEOUT_SECONDS
from mlsettings.drift_partials import ENGINE_LAMBDA, ENGINE_PROCESSING, ENGINES, PARTIALS_PREFIX
from mlsettings.functions.base import EnvironmentSettingError, FunctionEnvironment, between, one_of, prefixed, variable
from mlsettings.naming import (
    endpoint_name,
    group_prefix,
    model_package_group_name,
    model_prefixes,
    rollback_alarm_names,
)
from mlsettings.quality import QUALITY_METRICS
from mlsettings.vocabulary import (
    BATCH_PREFIX,
    CAPTURE_PREFIX,
    CHAMPION,
    FALLBACK_MODEL_KEY,
    REPORT_PREFIX,
    SERVABLE_STAGES,
    VARIANTS,
    Published,
    Service,
)

DEFAULT_EVENT_BUS = "default"



def _model_name(config: EnvironmentConfig) -> str:
    assert config.model is not None, "a model's function takes the model's view of the environment"
    return config.model.name


def _variant_prefix(config: EnvironmentConfig) -> str:
    return Published.variant_prefix(config.name, _model_name(config))


@dataclasses.dataclass(frozen=True, kw_only=True)
class GateEnvironment(FunctionEnvironment):
    """The promotion gate (registry environment): judges registry events, records deployment results."""

    SERVICE: ClassVar[str] = Service.PROMOTION_GATE
    group_prefix: str = variable("MODEL_PACKAGE_GROUP_PREFIX", "Every model's group this gate guards starts with "
                                 "this (the rest of the name is the model's).")
    ledger_table: str = variable("LEDGER_TABLE", "The deployment ledger (DynamoDB).")
    idempotency_table: str = variable("IDEMPOTENCY_TABLE", "Powertools idempotency table.")
    promotion_topic_arn: str = variable("PROMOTION_TOPIC_ARN", "Promotion notices and revert alerts.")
    event_bus_name: str = variable("EVENT_BUS_NAME", "Where accepted promotions are put.")
    stage_servers: dict[str, Any] = variable(
        "STAGE_SERVERS", "Per stage the environment and account whose deployment results are trusted.")
    protected_production_versions: int = variable(
        "PROTECTED_PRODUCTION_VERSIONS", "Production versions kept redeployable.", check=between(3, 100))
    idempotency_ttl_seconds: int = variable("IDEMPOTENCY_TTL_SECONDS", "How long a processed event is remembered.",
                                            default=86400, check=between(60, 31_536_000))

    @classmethod
    def for_config(cls, config: EnvironmentConfig, configs: dict[str, EnvironmentConfig], *, ledger_table: str,
                   idempotency_table: str, promotion_topic_arn: str, event_bus_name: str,
                   default_account: str) -> Self:
        servers = {stage: {"environment": c.name, "account": c.account or default_account}
                   for c in consumers_of(configs, config) for stage in c.serving.served_stages}
        return cls(group_prefix=group_prefix(config), ledger_table=ledger_table,
                   idempotency_table=idempotency_table, promotion_topic_arn=promotion_topic_arn,
                   event_bus_name=event_bus_name, stage_servers=servers,
                   protected_production_versions=config.registry.protected_production_versions)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeployerEnvironment(FunctionEnvironment):
    """The deployer's four tasks (start, check, verify and record, record failure)."""

    SERVICE: ClassVar[str] = Service.DEPLOYER
    environment_name: str = variable("ENVIRONMENT_NAME", "The environment this deployer serves.")
    endpoint_name: str = variable("ENDPOINT_NAME", "The endpoint it creates and updates.")
    model_package_group: str = variable("MODEL_PACKAGE_GROUP", "The registry's group its versions come from.")
    event_bus_name: str = variable("EVENT_BUS_NAME", "Where deployment results are put.")
    model_execution_role_arn: str = variable("MODEL_EXECUTION_ROLE_ARN", "The role the model containers run as.")
    artifact_bucket: str = variable("ARTIFACT_BUCKET", "Where the fallback model is published.")
    capture_destination_uri: str = variable("CAPTURE_DESTINATION_URI", "Data capture destination.",
                                            check=prefixed("s3://"))
    serving_settings: dict[str, Any] = variable("SERVING_SETTINGS", "The environment's serving settings (cdk.json).")
    kms_key_arn: str = variable("KMS_KEY_ARN", "Key for capture and endpoint volumes.")
    served_stages: tuple[str, ...] = variable("SERVED_STAGES", "The registry stages this deployer serves.",
                                              check=one_of(SERVABLE_STAGES), encoding="csv")
    rollback_alarm_names: tuple[str, ...] = variable(
        "ROLLBACK_ALARM_NAMES", "Alarms SageMaker watches during a blue/green update.", encoding="json")
    vpc_config: dict[str, Any] | None = variable("VPC_CONFIG", "Subnets and security groups of the models, or null.")
    fallback_model_key: str = variable("FALLBACK_MODEL_KEY", "Where the fallback model is published.",
                                       default=FALLBACK_MODEL_KEY)
    poll_seconds: int = variable("POLL_SECONDS", "How often a rollout in flight is checked.", default=60,
                                 check=between(10, 600))
    variant_parameter_prefix: str = variable("VARIANT_PARAMETER_PREFIX", "Where it publishes what each variant "
                                             "serves (SSM).")
    result_parameter_prefix: str = variable("RESULT_PARAMETER_PREFIX", "Where it keeps its last result per stage "
                                            "(SSM).")

    @classmethod
    def for_config(cls, config: EnvironmentConfig, *, model_execution_role_arn: str, artifact_bucket: str,
                   capture_bucket: str, kms_key_arn: str) -> Self:
        network = config.network
        return cls(environment_name=config.name, endpoint_name=endpoint_name(config),
                   model_package_group=model_package_group_name(config), event_bus_name=DEFAULT_EVENT_BUS,
                   model_execution_role_arn=model_execution_role_arn, artifact_bucket=artifact_bucket,
                   capture_destination_uri=f"s3://{capture_bucket}/{CAPTURE_PREFIX}",
                   fallback_model_key=model_prefixes(config).fallback_model_key,
                   variant_parameter_prefix=_variant_prefix(config),
                   result_parameter_prefix=Published.deployer_prefix(config.name, _model_name(config)),
                   serving_settings=to_plain(config.serving), kms_key_arn=kms_key_arn,
                   served_stages=config.serving.served_stages, rollback_alarm_names=rollback_alarm_names(config),
                   vpc_config={"Subnets": list(network.subnet_ids),
                               "SecurityGroupIds": list(network.security_group_ids)} if network.subnet_ids else None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HealthCheckEnvironment(FunctionEnvironment):
    """The scheduled golden-payload check of every variant."""

    SERVICE: ClassVar[str] = Service.HEALTH_CHECK
    endpoint_name: str = variable("ENDPOINT_NAME", "The endpoint whose variants are checked.")
    invoke_timeout_seconds: int = variable("INVOKE_TIMEOUT_SECONDS", "Read timeout per InvokeEndpoint.",
                                           check=between(1, 60))

    @classmethod
    def for_config(cls, config: EnvironmentConfig) -> Self:
        return cls(endpoint_name=endpoint_name(config), invoke_timeout_seconds=10)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchScoringEnvironment(FunctionEnvironment):
    """Batch transform with the production Champion's model."""

    SERVICE: ClassVar[str] = Service.BATCH_SCORING
    endpoint_name: str = variable("ENDPOINT_NAME", "The endpoint whose Champion model scores.")
    capture_bucket: str = variable("CAPTURE_BUCKET", "Inputs under <BATCH_PREFIX>/input/, outputs under "
                                   "<BATCH_PREFIX>/output/.")
    batch_instance_type: str = variable("BATCH_INSTANCE_TYPE", "Transform instance type.")
    kms_key_arn: str = variable("KMS_KEY_ARN", "Key for outputs, capture and (EBS) volumes.")
    batch_input_uri: str = variable("BATCH_INPUT_URI", "What a scheduled run scores.", check=prefixed("s3://"))
    batch_instance_count: int = variable("BATCH_INSTANCE_COUNT", "Transform instances.", check=between(1, 100))
    batch_prefix: str = variable("BATCH_PREFIX", "The model's prefix in the capture bucket (input/, output/, "
                                 "capture/ below it).", default=BATCH_PREFIX)

    @classmethod
    def for_config(cls, config: EnvironmentConfig, *, capture_bucket: str, kms_key_arn: str) -> Self:
        prefix = model_prefixes(config).batch
        return cls(endpoint_name=endpoint_name(config), capture_bucket=capture_bucket,
                   batch_instance_type=config.serving.batch_instance_type, kms_key_arn=kms_key_arn,
                   batch_input_uri=f"s3://{capture_bucket}/{prefix}input/", batch_instance_count=1,
                   batch_prefix=prefix.rstrip("/"))


@dataclasses.dataclass(frozen=True, kw_only=True)
class DriftMonitorEnvironment(FunctionEnvironment):
    """The daily drift and ground-truth run (and, with the Processing engine, the job it starts)."""

    SERVICE: ClassVar[str] = Service.DRIFT_MONITOR
    endpoint_name: str = variable("ENDPOINT_NAME", "The endpoint whose traffic is analysed.")
    capture_bucket: str = variable("CAPTURE_BUCKET", "Data capture, the prediction log and ground truth.")
    capture_prefix: str = variable("CAPTURE_PREFIX", "The endpoint's data capture prefix.")
    prediction_log_prefix: str | None = variable(
        "PREDICTION_LOG_PREFIX", "The inference API's prediction log (absent: not joined).", default=None)
    report_bucket: str = variable("REPORT_BUCKET", "Where reports are written.")
    report_prefix: str = variable("REPORT_PREFIX", "The reports' prefix.")
    variant_parameter_prefix: str = variable("VARIANT_PARAMETER_PREFIX", "What each variant serves (SSM).")
    window_hours: int = variable("WINDOW_HOURS", "Captured traffic analysed per run.", check=between(1, 720))
    drift_thresholds: dict[str, Any] = variable("DRIFT_THRESHOLDS", "The statistics' thresholds (cdk.json).")
    drift_workers: int = variable("DRIFT_WORKERS", "Parsing processes.", check=between(1, 8))
    ground_truth_prefix: str | None = variable("GROUND_TRUTH_PREFIX", "Late labels (absent: no ground truth).",
                                               default=None)
    quality_metric: str = variable("QUALITY_METRIC", "The ground-truth quality metric.",
                                   check=one_of(QUALITY_METRICS))
    quality_margin: float = variable("QUALITY_MARGIN", "Quality drop that pages.", check=between(0, 1))
    prediction_log_variant: str = variable("PREDICTION_LOG_VARIANT", "The variant the prediction log joins.",
                                           default=CHAMPION, check=one_of(VARIANTS))
    chunk_lines: int = variable("CHUNK_LINES", "Lines parsed per chunk.", default=20_000,
                                check=between(100, 1_000_000))
    ground_truth_bucket: str | None = variable("GROUND_TRUTH_BUCKET", "Labels' bucket (default: the capture bucket).",
                                               default=None)
    ground_truth_delay_hours: int = variable("GROUND_TRUTH_DELAY_HOURS", "How late labels arrive.", default=0,
                                             check=between(0, 24 * 90))
    quality_min_rows: int = variable("QUALITY_MIN_ROWS", "Labelled rows before quality is judged.", default=50,
                                     check=between(1, 10_000_000))
    drift_engine: str = variable("DRIFT_ENGINE", "Where the run happens.", default=ENGINE_LAMBDA,
                                 check=one_of(ENGINES))
    partials_prefix: str = variable("PARTIALS_PREFIX", "Per-object partial results in the report bucket.",
                                    default=PARTIALS_PREFIX)
    processing_max_instances: int = variable("PROCESSING_MAX_INSTANCES", "Most instances of the sharded job.",
                                             default=10, check=between(1, 100))
    processing_role_arn: str | None = variable("PROCESSING_ROLE_ARN", "The drift job's role (engine processing).",
                                               default=None)
    processing_image_uri: str | None = variable("PROCESSING_IMAGE_URI", "The drift job's image.", default=None)
    processing_code_uri: str | None = variable("PROCESSING_CODE_URI", "The drift job's code bundle.", default=None)
    processing_instance_type: str | None = variable("PROCESSING_INSTANCE_TYPE", "The drift job's instances.",
                                                    default=None)
    kms_key_arn: str | None = variable("KMS_KEY_ARN", "The drift job's key.", default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        job = (self.processing_role_arn, self.processing_image_uri, self.processing_code_uri,
               self.processing_instance_type, self.kms_key_arn)
        if self.drift_engine == ENGINE_PROCESSING and not all(job):
            raise EnvironmentSettingError(
                "drift engine 'processing' needs PROCESSING_ROLE_ARN, PROCESSING_IMAGE_URI, PROCESSING_CODE_URI, "
                "PROCESSING_INSTANCE_TYPE and KMS_KEY_ARN")

    @classmethod
    def for_config(cls, config: EnvironmentConfig, *, capture_bucket: str, report_bucket: str,
                   processing: dict[str, str] | None = None) -> Self:
        """``processing``: the job's role_arn, image_uri, code_uri and kms_key_arn (engine processing only)."""
        job = processing or {}
        return cls(endpoint_name=endpoint_name(config), capture_bucket=capture_bucket,
                   capture_prefix=CAPTURE_PREFIX,
                   prediction_log_prefix=model_prefixes(config).prediction_log.rstrip("/"),
                   report_bucket=report_bucket, report_prefix=REPORT_PREFIX,
                   variant_parameter_prefix=_variant_prefix(config),
                   window_hours=config.monitoring.drift.window_hours, drift_thresholds=drift_thresholds(config),
                   drift_workers=2, ground_truth_prefix=model_prefixes(config).ground_truth.rstrip("/"),
                   quality_metric=config.training.quality_gate.metric,
                   quality_margin=config.monitoring.alarms.quality_margin,
                   drift_engine=config.monitoring.drift.engine,
                   processing_role_arn=job.get("role_arn"), processing_image_uri=job.get("image_uri"),
                   processing_code_uri=job.get("code_uri"),
                   processing_instance_type=config.training.processing_instance_type if processing else None,
                   kms_key_arn=job.get("kms_key_arn"),
                   processing_max_instances=config.monitoring.drift.processing_max_instances)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DriftPartialsEnvironment(FunctionEnvironment):
    """Engine partials: each captured object reduced to its partial result when it lands."""

    SERVICE: ClassVar[str] = Service.DRIFT_PARTIALS
    endpoint_name: str = variable("ENDPOINT_NAME", "The endpoint whose capture is reduced.")
    capture_bucket: str = variable("CAPTURE_BUCKET", "Data capture and the prediction log.")
    capture_prefix: str = variable("CAPTURE_PREFIX", "The endpoint's data capture prefix.")
    prediction_log_prefix: str | None = variable(
        "PREDICTION_LOG_PREFIX", "The inference API's prediction log (absent: not reduced).", default=None)
    prediction_log_variant: str = variable("PREDICTION_LOG_VARIANT", "The variant the prediction log joins.",
                                           default=CHAMPION, check=one_of(VARIANTS))
    report_bucket: str = variable("REPORT_BUCKET", "Where partial results are written.")
    partials_prefix: str = variable("PARTIALS_PREFIX", "Partial results' prefix in the report bucket.",
                                    default=PARTIALS_PREFIX)
    variant_parameter_prefix: str = variable("VARIANT_PARAMETER_PREFIX", "What each variant serves (SSM).")

    @classmethod
    def for_config(cls, config: EnvironmentConfig, *, capture_bucket: str, report_bucket: str) -> Self:
        return cls(endpoint_name=endpoint_name(config), capture_bucket=capture_bucket, capture_prefix=CAPTURE_PREFIX,
                   prediction_log_prefix=model_prefixes(config).prediction_log.rstrip("/"), report_bucket=report_bucket,
                   variant_parameter_prefix=_variant_prefix(config))


@dataclasses.dataclass(frozen=True, kw_only=True)
class InferenceEnvironment(FunctionEnvironment):
    """The inference API: endpoint, fallback model, cached answer, safe default; every answer logged."""

    SERVICE: ClassVar[str] = Service.INFERENCE
    endpoint_name: str = variable("ENDPOINT_NAME", "The endpoint the API calls.")
    data_schema_path: str = variable("DATA_SCHEMA_PATH", "The data schema, relative to the bundle.")
    breaker_table_name: str = variable("BREAKER_TABLE_NAME", "The shared circuit breaker (DynamoDB).")
    response_cache_table_name: str = variable("RESPONSE_CACHE_TABLE_NAME", "Cached endpoint answers (DynamoDB).")
    prediction_log_stream_name: str = variable("PREDICTION_LOG_STREAM_NAME", "The prediction log (Firehose).")
    safe_default_probability: float = variable("SAFE_DEFAULT_PROBABILITY", "Answer of last resort.",
                                               check=between(0, 1))
    fallback_model_bucket: str | None = variable("FALLBACK_MODEL_BUCKET", "Where the fallback model is published "
                                                 "(absent with FALLBACK_MODEL_KEY: no fallback model).", default=None)
    fallback_model_key: str | None = variable("FALLBACK_MODEL_KEY", "Its key.", default=None)
    endpoint_connect_timeout_seconds: float = variable("ENDPOINT_CONNECT_TIMEOUT_SECONDS", "Connect timeout.",
                                                       check=between(0.05, 60))
    endpoint_read_timeout_seconds: float = variable("ENDPOINT_READ_TIMEOUT_SECONDS", "Read timeout.",
                                                    check=between(0.05, 60))
    endpoint_max_attempts: int = variable("ENDPOINT_MAX_ATTEMPTS", "InvokeEndpoint attempts.", check=between(1, 5))
    breaker_failure_threshold: int = variable("BREAKER_FAILURE_THRESHOLD", "Failures that open the circuit.",
                                              check=between(1, 1000))
    breaker_cooldown_seconds: float = variable("BREAKER_COOLDOWN_SECONDS", "Open time before a trial call.",
                                               check=between(0, 3600))
    response_cache_ttl_seconds: float = variable("RESPONSE_CACHE_TTL_SECONDS", "Lifetime of cached answers.",
                                                 check=between(1, 366 * 86400))
    max_rows: int = variable("MAX_ROWS", "Most rows in one request.", check=between(1, 10_000))
    max_body_bytes: int = variable("MAX_BODY_BYTES", "Largest accepted request body.", check=between(1024, 6_000_000))
    decision_threshold: float = variable("DECISION_THRESHOLD", "Probability at which the label is positive.",
                                         default=0.5, check=between(0, 1))
    allow_unknown_categories: bool = variable("ALLOW_UNKNOWN_CATEGORIES", "Serve categories the schema lacks.",
                                              default=True)
    breaker_state_cache_seconds: float = variable("BREAKER_STATE_CACHE_SECONDS", "Breaker state cached per copy.",
                                                  default=1.0, check=between(0, 60))
    breaker_trial_timeout_seconds: float | None = variable(
        "BREAKER_TRIAL_TIMEOUT_SECONDS", "When an unreported trial may be claimed again (default: the worst-case "
        "call time).", default=None, check=between(0.1, 3600))

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.fallback_model_bucket is None) != (self.fallback_model_key is None):
            raise EnvironmentSettingError("FALLBACK_MODEL_BUCKET and FALLBACK_MODEL_KEY must be set together "
                                          "(or neither)")

    @classmethod
    def for_config(cls, config: EnvironmentConfig, *, breaker_table_name: str, response_cache_table_name: str,
                   prediction_log_stream_name: str, fallback_model_bucket: str) -> Self:
        api = config.inference_api
        return cls(endpoint_name=endpoint_name(config), data_schema_path=config.training.schema_file,
                   breaker_table_name=breaker_table_name, response_cache_table_name=response_cache_table_name,
                   prediction_log_stream_name=prediction_log_stream_name,
                   safe_default_probability=api.safe_default_probability, fallback_model_bucket=fallback_model_bucket,
                   fallback_model_key=model_prefixes(config).fallback_model_key,
                   endpoint_connect_timeout_seconds=INFERENCE_CONNECT_TIMEOUT_SECONDS,
                   endpoint_read_timeout_seconds=api.endpoint_timeout_ms / 1000, endpoint_max_attempts=api.max_attempts,
                   breaker_failure_threshold=api.breaker_failure_threshold,
                   breaker_cooldown_seconds=api.breaker_cooldown_seconds,
                   response_cache_ttl_seconds=api.cache_ttl_seconds, max_rows=api.max_rows,
                   max_body_bytes=api.max_body_bytes)


CONTRACTS: tuple[type[FunctionEnvironment], ...] = (
    GateEnvironment, DeployerEnvironment, HealthCheckEnvironment, BatchScoringEnvironment, DriftMonitorEnvironment,
    DriftPartialsEnvironment, InferenceEnvironment)
"""Every function's contract, by service (the folder under lambdas/)."""
