"""The configuration model, split by job: ``fields`` (the error, a setting and its checks), ``model`` (the typed
tree and the rules within one environment), ``parsing`` (cdk.json's context into the tree, with the key's line and
column), ``topology`` (the rules across environments), ``derived`` (values several sides compute from a setting) and
``reference`` (docs/CONFIGURATION.md). What callers use is re-exported here.

Per-environment differences live only here: stacks, functions, the CLI and the demo read an ``EnvironmentConfig``.
"""

from mlsettings.config.derived import drift_thresholds
from mlsettings.config.fields import REPO_ROOT, ConfigError
from mlsettings.config.model import (
    AlarmSettings,
    DeliverySettings,
    DeploymentSettings,
    DriftSettings,
    EnvironmentConfig,
    InferenceApiSettings,
    LambdaSettings,
    MonitoringSettings,
    NetworkSettings,
    QualityGateSettings,
    RegistrySettings,
    ServingSettings,
    SlaSettings,
    StorageSettings,
    Subscriptions,
    TrainingSettings,
    VariantSettings,
)
from mlsettings.config.parsing import (
    CDK_JSON,
    load_environments,
    parse_environment,
    project_context,
    select_environments,
)
from mlsettings.config.reference import reference_rows, render_reference, to_plain
from mlsettings.config.topology import (
    DEPLOYER_TASK_CONCURRENCY,
    INFERENCE_CONNECT_TIMEOUT_SECONDS,
    LAMBDA_UNRESERVED_MINIMUM,
    check_concurrency_quota,
    consumers_of,
    inference_concurrency_demand,
    other_account,
    planned_reservation,
)

__all__ = [
    "CDK_JSON", "DEPLOYER_TASK_CONCURRENCY",
    "INFERENCE_CONNECT_TIMEOUT_SECONDS", "LAMBDA_UNRESERVED_MINIMUM", "REPO_ROOT", "AlarmSettings",
    "ConfigError", "DeliverySettings", "DeploymentSettings", "DriftSettings", "EnvironmentConfig",
    "InferenceApiSettings", "LambdaSettings",
    "MonitoringSettings", "NetworkSettings", "QualityGateSettings", "RegistrySettings", "ServingSettings",
    "SlaSettings", "StorageSettings", "Subscriptions", "TrainingSettings", "VariantSettings",
    "check_concurrency_quota", "consumers_of", "drift_thresholds", "inference_concurrency_demand",
    "load_environments", "other_account", "parse_environment", "planned_reservation", "project_context",
    "reference_rows", "render_reference", "select_environments", "to_plain",
]
