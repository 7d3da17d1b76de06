"""Physical names the services require (and the CLI and Lambdas look up), derived from the environment's and the
model's names.

Only resources whose API demands a name get one here, and the few that another account must name in its
policies before either side is deployed (the registry's artifact bucket and key alias, the consumer roles the
registry's resource policies admit): cross-account references are derived from cdk.json, never read from the
other account at deploy time. Everything else is named by CloudFormation.

Per-model names take the model's view of an environment (``config.for_model(name)``); the environment's shared
resources (buckets, key, bus, gate) take the environment. ``check_names`` (run on every load of cdk.json) fails
when a derived name would exceed its service's limit: the SageMaker names the deployer and the jobs derive from an
endpoint name never get truncated, so every IAM policy that names ``<endpoint>-*`` matches them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mlsettings.config import ConfigError, EnvironmentConfig
from mlsettings.training_code import image_repository
from mlsettings.vocabulary import (
    BATCH_PREFIX,
    CHECKPOINTS_PREFIX,
    GROUND_TRUTH_PREFIX,
    MODELS_PREFIX,
    PIPELINE_OUTPUTS_PREFIX,
    PREDICTION_LOG_PREFIX,
    VARIANTS,
)

PROJECT = "mlops"

# Maxima of botocore's SageMaker shapes (tests/unit/test_naming.py compares them with the pinned botocore):
SAGEMAKER_NAME_MAX = 63
"""EndpointName, EndpointConfigName, ModelName, ModelPackageGroupName, ProcessingJobName, TransformJobName."""
PIPELINE_NAME_MAX = 256
"""PipelineName."""
IAM_ROLE_NAME_MAX = 64
"""IAM User Guide, "IAM and AWS STS quotas": role names are at most 64 characters."""
STATE_MACHINE_NAME_MAX = 80
"""Step Functions CreateStateMachine: name, 1-80 characters."""
LAMBDA_FUNCTION_NAME_MAX = 64
"""Lambda CreateFunction: FunctionName, 1-64 characters (the name alone, not an ARN)."""

# What the deployer and the jobs append to an endpoint's name (one name each, never truncated):
CONFIG_SUFFIX = "-{now:%Y%m%d%H%M%S}-{deployment}"
REVERT_SUFFIX = "-revert"
MODEL_VERSION_DIGITS = 6
"""Model package versions the model names leave room for (up to 999,999 registrations per model)."""
DRIFT_JOB_SUFFIX = "-drift-{end:%Y%m%d%H}"
TRANSFORM_JOB_SUFFIX = "-batch-{now:%Y%m%d-%H%M%S}"
_SAMPLE = datetime(2026, 12, 31, 23, 59, 59)
LONGEST_SUFFIX = max(len(CONFIG_SUFFIX.format(now=_SAMPLE, deployment="x" * 8)) + len(REVERT_SUFFIX),
                     len(f"-v{'9' * MODEL_VERSION_DIGITS}-{'x' * 8}"),
                     len(DRIFT_JOB_SUFFIX.format(end=_SAMPLE)), len(TRANSFORM_JOB_SUFFIX.format(now=_SAMPLE)))
ENDPOINT_NAME_MAX = SAGEMAKER_NAME_MAX - LONGEST_SUFFIX
"""An endpoint name short enough for every name derived from it (32 characters)."""


def _model(config: EnvironmentConfig) -> str:
    if config.model is None:
        raise ValueError(f"environment {config.name}: this name is a model's (use config.for_model(name))")
    return config.model.name


def model_package_group_name(config: EnvironmentConfig) -> str:
    """A model's group, in its registry environment: every environment deploys the model's versions from it."""
    return f"{PROJECT}-{config.registry.registry_environment}-{_model(config)}"


def group_prefix(config: EnvironmentConfig) -> str:
    """Every model's group of the registry environment starts with this (the gate's rule and IAM match it)."""
    return f"{PROJECT}-{config.registry.registry_environment}-"


def model_of_group(group: str, registry_environment: str) -> str | None:
    """The model a group of ``registry_environment`` belongs to (None: not one of the platform's groups)."""
    prefix = f"{PROJECT}-{registry_environment}-"
    return group[len(prefix):] if group.startswith(prefix) and len(group) > len(prefix) else None


def endpoint_name(config: EnvironmentConfig) -> str:
    """A model's real-time endpoint is created and updated by the deployer (blue/green), so it has a stable name."""
    return f"{PROJECT}-{config.name}-{_model(config)}"


def endpoint_config_name(endpoint: str, now: datetime, deployment_id: str) -> str:
    return endpoint + CONFIG_SUFFIX.format(now=now, deployment=deployment_id[:8])


def revert_config_name(failed_config_name: str) -> str:
    """The copy of the previous config a failed health check reverts to: unique per deployment (the failed
    config's name is)."""
    return failed_config_name + REVERT_SUFFIX


def serving_model_name(endpoint: str, version: int | None, digest: str) -> str:
    return f"{endpoint}-v{version if version is not None else 'x'}-{digest[:8]}"


def drift_job_name(endpoint: str, window_end: datetime) -> str:
    """One drift Processing job per endpoint and window end; a retried schedule event finds the job there."""
    return endpoint + DRIFT_JOB_SUFFIX.format(end=window_end)


def transform_job_name(endpoint: str, now: datetime) -> str:
    return endpoint + TRANSFORM_JOB_SUFFIX.format(now=now)


DEPLOYER_SUFFIX = "-deployer"
DRIFT_MONITOR_SUFFIX = "-drift-monitor"
DRIFT_PARTIALS_SUFFIX = "-drift-partials"
TRAINING_SUFFIX = "-training"
"""What the event router appends to a model's name in the environment (``<project>-<env>-<model>``) to reach the
model's deployer, drift functions and pipeline: named, so one shared rule routes every model's events."""


def model_name_prefix(config: EnvironmentConfig) -> str:
    """``<project>-<env>-``: what every model's named resources of the environment start with."""
    return f"{PROJECT}-{config.name}-"


def deployer_state_machine_name(config: EnvironmentConfig) -> str:
    return f"{endpoint_name(config)}{DEPLOYER_SUFFIX}"


def drift_monitor_function_name(config: EnvironmentConfig) -> str:
    return f"{endpoint_name(config)}{DRIFT_MONITOR_SUFFIX}"


def drift_partials_function_name(config: EnvironmentConfig) -> str:
    return f"{endpoint_name(config)}{DRIFT_PARTIALS_SUFFIX}"


ROLLBACK_ALARM_KINDS = ("5xx", "p99")


def rollback_alarm_name(config: EnvironmentConfig, variant: str, kind: str) -> str:
    """An alarm SageMaker watches during a blue/green update (per variant: 5XX rate, p99 latency): the serving
    stack creates it with this name and the deployer names it in UpdateEndpoint."""
    return f"{endpoint_name(config)}-{variant}-{kind}"


def open_alarms_name(config: EnvironmentConfig) -> str:
    """A model's composite alarm: in ALARM while any of its paging or ticketing alarms is (the environment's
    overview dashboard shows one per model)."""
    return f"{endpoint_name(config)}-open-alarms"


def overview_dashboard_name(config: EnvironmentConfig) -> str:
    """The environment's overview of its models. The underscore cannot occur in a model's name (MODEL_NAME_PATTERN),
    so no model's own dashboard (named as its endpoint) can take this name."""
    return f"{PROJECT}-{config.name}_overview"


def rollback_alarm_names(config: EnvironmentConfig) -> tuple[str, ...]:
    variants = VARIANTS if config.serving.challenger_enabled else VARIANTS[:1]
    return tuple(rollback_alarm_name(config, variant, kind) for variant in variants for kind in ROLLBACK_ALARM_KINDS)


def image_repository_name(config: EnvironmentConfig) -> str:
    """The ECR repository of a model's own image (training.code.kind image), in its registry environment: the
    registry's model stack creates it; serving accounts' model roles are admitted by its policy."""
    return image_repository(PROJECT, config.registry.registry_environment, _model(config))


def pipeline_name(config: EnvironmentConfig) -> str:
    return f"{PROJECT}-{config.name}-{_model(config)}{TRAINING_SUFFIX}"


def registry_pipeline_name(config: EnvironmentConfig) -> str:
    """The model's training pipeline in the environment's registry environment (the only one that runs one)."""
    return f"{PROJECT}-{config.registry.registry_environment}-{_model(config)}{TRAINING_SUFFIX}"


def artifact_bucket_name(config: EnvironmentConfig, account: str) -> str:
    """The registry environment's artifact bucket (models, golden payloads, baselines): consumers in other
    accounts name it in their IAM policies. ``account``: the account id, or the stack's AWS::AccountId token
    when cdk.json gives none (then every environment shares that account)."""
    return f"{PROJECT}-{config.name}-artifacts-{account}-{config.region}"


def data_key_alias(config: EnvironmentConfig) -> str:
    """The alias of the environment's KMS key; consumer IAM policies select the registry's key by it
    (``kms:ResourceAliases``), since a key's id is only known once it exists."""
    return f"alias/{PROJECT}-{config.name}-data"


# The consumer roles that read the registry: CreateModel/describe versions, model containers, golden checks,
# drift baselines. The registry's package-group, bucket and key policies name exactly these.
CONSUMER_ROLES = ("deployer", "model", "health-check", "drift-monitor", "drift-job", "drift-partials")


def consumer_role_name(config: EnvironmentConfig, purpose: str) -> str:
    """A model's role in a serving environment that the registry's resource policies name (in another account)."""
    if purpose not in CONSUMER_ROLES:
        raise ValueError(f"{purpose!r} is not a consumer role; allowed: {CONSUMER_ROLES}")
    return f"{PROJECT}-{config.name}-{_model(config)}-{purpose}"


def consumer_role_pattern(config: EnvironmentConfig) -> str:
    """Every model's consumer roles of the environment (the registry's bucket and key policies admit these; each
    role's own policy reaches only its model's prefixes and group)."""
    return f"{PROJECT}-{config.name}-*"


def forwarding_rule_name(sender: EnvironmentConfig, receiver: EnvironmentConfig) -> str:
    """The rule on ``sender``'s default bus that forwards to ``receiver``'s (promotions out of the registry, results
    back): the receiving bus policy names its ARN, so both sides derive it from cdk.json."""
    return f"{PROJECT}-{sender.name}-to-{receiver.name}"


def forwarding_rule_arn(sender: EnvironmentConfig, receiver: EnvironmentConfig, partition: str = "aws") -> str:
    assert sender.account is not None, "forwarding exists only between environments with account ids"
    return f"arn:{partition}:events:{sender.region}:{sender.account}:rule/{forwarding_rule_name(sender, receiver)}"


def event_bus_arn(config: EnvironmentConfig, account: str, partition: str = "aws") -> str:
    """The environment's default event bus (promotions arrive there; deployment results leave from it)."""
    return f"arn:{partition}:events:{config.region}:{account}:event-bus/default"


@dataclass(frozen=True)
class ModelPrefixes:
    """Where one model's objects live in the environment's shared buckets: each model's roles reach only these."""

    training_data: str
    pipeline_outputs: str
    models: str
    checkpoints: str
    fallback_model_key: str
    prediction_log: str
    batch: str
    ground_truth: str


def model_prefixes(config: EnvironmentConfig) -> ModelPrefixes:
    model = _model(config)
    assert config.model is not None
    return ModelPrefixes(
        training_data=config.model.training_data_prefix,
        pipeline_outputs=f"{PIPELINE_OUTPUTS_PREFIX}/{model}/", models=f"{MODELS_PREFIX}/{model}/",
        checkpoints=f"{CHECKPOINTS_PREFIX}/{model}/", fallback_model_key=f"serving/{model}/fallback_model.json",
        prediction_log=f"{PREDICTION_LOG_PREFIX}/{model}/", batch=f"{BATCH_PREFIX}/{model}/",
        ground_truth=f"{GROUND_TRUTH_PREFIX}/{model}/")


def name_limits(config: EnvironmentConfig) -> list[tuple[str, str, int]]:
    """(what, name, limit) of every name derived from a model's view, the longest form of each."""
    endpoint = endpoint_name(config)
    return [
        ("its endpoint name (every SageMaker name the deployer and the jobs derive from it must fit 63)", endpoint,
         ENDPOINT_NAME_MAX),
        ("its model package group name", model_package_group_name(config), SAGEMAKER_NAME_MAX),
        ("its pipeline name", pipeline_name(config), PIPELINE_NAME_MAX),
        ("its deployer state machine name", deployer_state_machine_name(config), STATE_MACHINE_NAME_MAX),
        ("its drift monitor function name", drift_monitor_function_name(config), LAMBDA_FUNCTION_NAME_MAX),
        ("its drift partials function name", drift_partials_function_name(config), LAMBDA_FUNCTION_NAME_MAX),
        *((f"its {purpose} role name", consumer_role_name(config, purpose), IAM_ROLE_NAME_MAX)
          for purpose in CONSUMER_ROLES),
    ]


def check_names(configs: dict[str, EnvironmentConfig]) -> None:
    """Fail naming the model, the name and the limit when a derived name would be too long."""
    for config in configs.values():
        for view in config.models:
            for what, name, limit in name_limits(view):
                if len(name) > limit:
                    assert view.model is not None
                    room = ENDPOINT_NAME_MAX - len(f"{PROJECT}-{config.name}-")
                    raise ConfigError(
                        f"models.{view.model.name!r} is too long for environment {config.name!r}: {what} "
                        f"{name!r} has {len(name)} characters, at most {limit} allowed; allowed: a model name of at "
                        f"most {room} characters there")
