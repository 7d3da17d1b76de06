"""The model registry: one Model Package Group per environment (or one central group other accounts read)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.published_names import publish_name
from stacks.naming import model_package_group_name


class RegistryStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.group_name = model_package_group_name(config)
        owns_group = config.registry.location == "per_environment" or \
            config.registry.registry_environment == config.name
        self.group: sagemaker.CfnModelPackageGroup | None = None
        if owns_group:
            readers = config.registry.cross_account_readers
            policy = None
            if readers:
                group_arn = (f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:"
                             f"model-package-group/{self.group_name}")
                package_arn = (f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:"
                               f"model-package/{self.group_name}/*")
                policy = {"Version": "2012-10-17", "Statement": [{
                    "Sid": "CrossAccountRead",
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:{self.partition}:iam::{account}:root" for account in readers]},
                    "Action": ["sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage",
                               "sagemaker:ListModelPackages"],
                    "Resource": [group_arn, package_arn],
                }]}
            self.group = sagemaker.CfnModelPackageGroup(
                self, "ModelPackageGroup",
                model_package_group_name=self.group_name,
                model_package_group_description=f"Models of the {config.name} MLOps environment",
                model_package_group_policy=policy,
            )
        publish_name(self, environment=config.name, key="model-package-group", value=self.group_name)
