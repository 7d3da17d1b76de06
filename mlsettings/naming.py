"""Physical names the services require (and the CLI and Lambdas look up), derived from the environment name.

Only resources whose API demands a name get one here, and the few that another account must name in its
policies before either side is deployed (the registry's artifact bucket and key alias, the consumer roles the
registry's resource policies admit): cross-account references are derived from cdk.json, never read from the
other account at deploy time. Everything else is named by CloudFormation."""

from __future__ import annotations

from mlsettings.config import EnvironmentConfig
from mlsettings.vocabulary import VARIANTS


def model_package_group_name(config: EnvironmentConfig) -> str:
    """Every environment deploys from its registry environment's one group."""
    return f"mlops-{config.registry.registry_environment}-models"


def endpoint_name(config: EnvironmentConfig) -> str:
    """The real-time endpoint is created and updated by the deployer (blue/green), so it has a stable name."""
    return f"mlops-{config.name}"


ROLLBACK_ALARM_KINDS = ("5xx", "p99")


def rollback_alarm_name(config: EnvironmentConfig, variant: str, kind: str) -> str:
    """An alarm SageMaker watches during a blue/green update (per variant: 5XX rate, p99 latency): the serving
    stack creates it with this name and the deployer names it in UpdateEndpoint."""
    return f"{endpoint_name(config)}-{variant}-{kind}"


def rollback_alarm_names(config: EnvironmentConfig) -> tuple[str, ...]:
    variants = VARIANTS if config.serving.challenger_enabled else VARIANTS[:1]
    return tuple(rollback_alarm_name(config, variant, kind) for variant in variants for kind in ROLLBACK_ALARM_KINDS)


def pipeline_name(config: EnvironmentConfig) -> str:
    return f"mlops-{config.name}-training"


def registry_pipeline_name(config: EnvironmentConfig) -> str:
    """The training pipeline of the environment's registry environment (the only one that runs one)."""
    return f"mlops-{config.registry.registry_environment}-training"


def artifact_bucket_name(config: EnvironmentConfig, account: str) -> str:
    """The registry environment's artifact bucket (models, golden payloads, baselines): consumers in other
    accounts name it in their IAM policies. ``account``: the account id, or the stack's AWS::AccountId token
    when cdk.json gives none (then every environment shares that account)."""
    return f"mlops-{config.name}-artifacts-{account}-{config.region}"


def data_key_alias(config: EnvironmentConfig) -> str:
    """The alias of the environment's KMS key; consumer IAM policies select the registry's key by it
    (``kms:ResourceAliases``), since a key's id is only known once it exists."""
    return f"alias/mlops-{config.name}-data"


# The consumer roles that read the registry: CreateModel/describe versions, model containers, golden checks,
# drift baselines. The registry's package-group, bucket and key policies name exactly these.
CONSUMER_ROLES = ("deployer", "model", "health-check", "drift-monitor", "drift-job", "drift-partials")


def consumer_role_name(config: EnvironmentConfig, purpose: str) -> str:
    if purpose not in CONSUMER_ROLES:
        raise ValueError(f"{purpose!r} is not a consumer role; allowed: {CONSUMER_ROLES}")
    return f"mlops-{config.name}-{purpose}"


def forwarding_rule_name(sender: EnvironmentConfig, receiver: EnvironmentConfig) -> str:
    """The rule on ``sender``'s default bus that forwards to ``receiver``'s (promotions out of the registry, results
    back): the receiving bus policy names its ARN, so both sides derive it from cdk.json."""
    return f"mlops-{sender.name}-to-{receiver.name}"


def forwarding_rule_arn(sender: EnvironmentConfig, receiver: EnvironmentConfig, partition: str = "aws") -> str:
    assert sender.account is not None, "forwarding exists only between environments with account ids"
    return f"arn:{partition}:events:{sender.region}:{sender.account}:rule/{forwarding_rule_name(sender, receiver)}"


def event_bus_arn(config: EnvironmentConfig, account: str, partition: str = "aws") -> str:
    """The environment's default event bus (promotions arrive there; deployment results leave from it)."""
    return f"arn:{partition}:events:{config.region}:{account}:event-bus/default"
