"""The embedded default: an in-process moto AWS (or a moto server) holding what `cdk deploy` would create.

`mlops train --local`, `mlops demo` and the end-to-end tests use it. Only resources the runtime code talks
to are created here (buckets, the model package group, the ledger tables, the published names); their
names follow the stacks' conventions so the same CLI commands work unchanged."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3

from mlops.resources import parameter_name
from mlsettings.config import EnvironmentConfig
from mlsettings.naming import data_key_alias, endpoint_name, model_package_group_name, pipeline_name
from mlsettings.vocabulary import Published


@dataclass(frozen=True)
class LocalEnvironment:
    config: EnvironmentConfig
    data_bucket: str
    artifact_bucket: str
    capture_bucket: str
    model_package_group: str
    kms_key_arn: str = ""

    @property
    def region(self) -> str:
        return self.config.region

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)


# What botocore reads of the operator's own AWS set-up: none of it may reach a local run (an unknown profile or a
# malformed ~/.aws/config would break a command that never talks to AWS).
OPERATOR_AWS_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                          "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@contextlib.contextmanager
def isolated_from_operator_aws() -> Iterator[None]:
    """For the duration: no profile, no config or credentials file of the operator's, moto's test credentials."""
    saved = {name: os.environ.get(name) for name in (*OPERATOR_AWS_VARIABLES, "AWS_ACCESS_KEY_ID",
                                                     "AWS_SECRET_ACCESS_KEY")}
    for name in OPERATOR_AWS_VARIABLES:
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = "testing", "testing"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def embedded_aws() -> Iterator[None]:
    """moto in this process, unless AWS_ENDPOINT_URL points at a moto server already (the demo's case)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        yield
        return
    from moto import mock_aws

    with isolated_from_operator_aws(), mock_aws():
        yield


def local_bucket_names(config: EnvironmentConfig) -> dict[str, str]:
    """The buckets the local environment stands up, by the published-name key the stacks use for each."""
    prefix = f"mlops-{config.name}"
    return {Published.DATA_BUCKET: f"{prefix}-data", Published.ARTIFACT_BUCKET: f"{prefix}-artifacts",
            Published.CAPTURE_BUCKET: f"{prefix}-capture"}


def _data_key(kms: Any, config: EnvironmentConfig) -> str:
    """The environment's key under its alias (as the storage stack makes it), created once."""
    alias = data_key_alias(config)
    try:
        return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"])
    except kms.exceptions.NotFoundException:
        key = kms.create_key(Description=f"Encrypts the {config.name} MLOps data (local)")["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
        return str(key["Arn"])


def provision(config: EnvironmentConfig, *, registry_resources: bool = True) -> LocalEnvironment:
    """Create (idempotently) what the deployed stacks provide for one model (``config``: the model's view of the
    environment; the environment's buckets and key are shared by its models), and publish names as the stacks do.

    ``registry_resources=False``: a consumer in its own account (the demo's staging and prod): its buckets and
    names only; the model package group and the training pipeline's names live in its registry
    environment's account."""
    if config.model is None:
        raise ValueError(f"provision takes a model's view of {config.name} (config.for_model(name))")
    buckets = local_bucket_names(config)
    env = LocalEnvironment(config=config, data_bucket=buckets[Published.DATA_BUCKET],
                           artifact_bucket=buckets[Published.ARTIFACT_BUCKET],
                           capture_bucket=buckets[Published.CAPTURE_BUCKET],
                           model_package_group=model_package_group_name(config),
                           kms_key_arn=_data_key(boto3.client("kms", region_name=config.region), config))
    s3 = env.client("s3")
    for bucket in (env.data_bucket, env.artifact_bucket, env.capture_bucket):
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            create: dict[str, Any] = {"Bucket": bucket}
            if env.region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": env.region}
            s3.create_bucket(**create)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    model = config.model.name
    names = {Published.KMS_KEY_ARN: env.kms_key_arn,
             Published.DATA_BUCKET: env.data_bucket, Published.ARTIFACT_BUCKET: env.artifact_bucket,
             Published.CAPTURE_BUCKET: env.capture_bucket,
             Published.for_model(model, Published.MODEL_PACKAGE_GROUP): env.model_package_group,
             Published.for_model(model, Published.ENDPOINT_NAME): endpoint_name(config)}
    if registry_resources:
        sagemaker = env.client("sagemaker")
        groups = sagemaker.list_model_package_groups(
            NameContains=env.model_package_group)["ModelPackageGroupSummaryList"]
        if not any(g["ModelPackageGroupName"] == env.model_package_group for g in groups):
            sagemaker.create_model_package_group(
                ModelPackageGroupName=env.model_package_group,
                ModelPackageGroupDescription=f"Versions of {model} in the {config.name} environment")
        names.update({Published.for_model(model, Published.PIPELINE_NAME): pipeline_name(config),
                      Published.for_model(model, Published.TRAINING_DATA_URI):
                          f"s3://{env.data_bucket}/{config.model.training_data_prefix}"})
    ssm = env.client("ssm")
    for key, value in names.items():
        ssm.put_parameter(Name=parameter_name(config.name, key), Value=value, Type="String", Overwrite=True)
    return env
