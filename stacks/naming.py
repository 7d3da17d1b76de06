"""Physical names the services require (and the CLI and Lambdas look up), derived from the environment name.

Only resources whose API demands a name get one here; everything else is named by CloudFormation."""

from __future__ import annotations

from stacks.config import EnvironmentConfig


def model_package_group_name(config: EnvironmentConfig) -> str:
    """With a central registry every environment uses the registry environment's group."""
    owner = config.registry.registry_environment if config.registry.location == "central" else config.name
    return f"mlops-{owner}-models"


def endpoint_name(config: EnvironmentConfig) -> str:
    """The real-time endpoint is created and updated by the deployer (blue/green), so it has a stable name."""
    return f"mlops-{config.name}"


def pipeline_name(config: EnvironmentConfig) -> str:
    return f"mlops-{config.name}-training"
