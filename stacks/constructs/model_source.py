"""Where an environment's deployed models come from: the registry's artifact bucket, its key and its ledger.

With ``registry.location: per_environment`` (and in the registry environment itself) these are the
environment's own storage and registry resources. An environment that deploys from a central registry in
another environment of the same account and region reads that environment's published names
(``/mlops/<registry env>/artifact-bucket``, ``kms-key-arn``, ``ledger-table``) as deploy-time SSM
parameters, so the registry environment's Storage and Registry stacks must be deployed first. Cross-account
sources are refused by the config (event forwarding and resource policies are not built).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.published_names import PARAMETER_PREFIX


@dataclass(frozen=True)
class ModelSource:
    bucket: s3.IBucket
    """Holds the registered versions' model data (``models/``) and pipeline outputs such as golden payloads,
    baselines and fallback models (``pipelines/``)."""
    key: kms.IKey
    """Encrypts that bucket and the ledger."""
    ledger: Callable[[], tuple[str, str]]
    """The ledger table's name and ARN (resolved on first use: a stack that does not need the ledger gets
    no unused deploy-time parameter)."""
    shared: bool
    """True when the source belongs to another environment (a central registry)."""


# Nag allowances for the central bucket's prefixes, as the findings spell its deploy-time name.
CENTRAL_BUCKET_PATTERN = "Resource::arn:*:s3:::<SsmParameterValuemlops*artifactbucket*>"


def deploys_from_another_environment(config: EnvironmentConfig) -> bool:
    return config.registry.location == "central" and config.registry.registry_environment != config.name


def central_model_source(scope: Construct, config: EnvironmentConfig) -> ModelSource:
    """The registry environment's resources, resolved in ``scope``'s stack at deploy time."""
    owner = config.registry.registry_environment
    stack = cdk.Stack.of(scope)

    def published(key: str) -> str:
        return ssm.StringParameter.value_for_string_parameter(scope, f"{PARAMETER_PREFIX}/{owner}/{key}")

    @functools.cache
    def ledger() -> tuple[str, str]:
        name = published("ledger-table")
        return name, stack.format_arn(service="dynamodb", resource="table", resource_name=name)

    return ModelSource(
        bucket=s3.Bucket.from_bucket_name(scope, "RegistryArtifactBucket", published("artifact-bucket")),
        key=kms.Key.from_key_arn(scope, "RegistryKey", published("kms-key-arn")),
        ledger=ledger, shared=True)
