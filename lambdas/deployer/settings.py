"""The deployer's environment, read once per execution environment through its contract
(mlsettings.functions.contracts.DeployerEnvironment, the class the serving stack writes it with), into the domain's
``DeployerSettings`` (mlplatform/serving/deployment_settings.py)."""

from __future__ import annotations

from collections.abc import Mapping

from mlplatform.serving.deployment_settings import DeployerSettings, SettingsError, parse_serving
from mlsettings.functions.base import EnvironmentSettingError
from mlsettings.functions.contracts import DeployerEnvironment

__all__ = ["SettingsError", "settings_from_environment"]


def settings_from_environment(environment: Mapping[str, str]) -> DeployerSettings:
    try:
        contract = DeployerEnvironment.from_env(environment)
    except EnvironmentSettingError as err:
        raise SettingsError(str(err)) from None
    vpc = contract.vpc_config
    if vpc is not None and (not vpc.get("Subnets") or not vpc.get("SecurityGroupIds")):
        raise SettingsError("VPC_CONFIG must be null or {\"Subnets\": [...], \"SecurityGroupIds\": [...]}")
    return DeployerSettings(
        environment_name=contract.environment_name,
        endpoint_name=contract.endpoint_name,
        model_package_group=contract.model_package_group,
        served_stages=contract.served_stages,
        execution_role_arn=contract.model_execution_role_arn,
        capture_destination_uri=contract.capture_destination_uri.rstrip("/"),
        kms_key_arn=contract.kms_key_arn,
        artifact_bucket=contract.artifact_bucket,
        fallback_model_key=contract.fallback_model_key,
        rollback_alarm_names=contract.rollback_alarm_names,
        serving=parse_serving(contract.serving_settings),
        vpc_config=vpc,
        poll_seconds=contract.poll_seconds,
        event_bus_name=contract.event_bus_name,
        variant_parameter_prefix=contract.variant_parameter_prefix,
        result_parameter_prefix=contract.result_parameter_prefix,
    )
