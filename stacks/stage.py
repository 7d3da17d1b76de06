"""One environment: a CDK Stage whose stacks are built from that environment's settings (and, for the links
to its registry, what cdk.json says of the registry environment and its consumers: nothing is looked up in
another account at deploy time)."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from constructs import Construct

from mlsettings.config import EnvironmentConfig, consumers_of, other_account
from stacks.alerting import AlertingStack
from stacks.constructs.cross_account import RegistryLocation
from stacks.constructs.model_source import ModelSource
from stacks.inference_api import InferenceApiStack
from stacks.monitoring import MonitoringStack
from stacks.registry import RegistryStack
from stacks.serving import ServingStack
from stacks.storage import StorageStack
from stacks.training import TrainingStack


class MlopsStage(cdk.Stage):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 configs: Mapping[str, EnvironmentConfig] | None = None,
                 default_account: str | None = None) -> None:
        """``configs``: every environment of cdk.json (default: this one alone, which must then be its own
        registry environment)."""
        account = config.account or default_account
        super().__init__(scope, construct_id, env=cdk.Environment(account=account, region=config.region))
        configs = configs or {config.name: config}
        self.config = config
        registry = configs[config.registry.registry_environment]
        consumers = consumers_of(configs, registry) if config.is_registry else []
        remote = [c for c in consumers if other_account(c, config)]
        cdk.Tags.of(self).add("project", "serverless-mlops")
        cdk.Tags.of(self).add("environment", config.name)
        self.storage = StorageStack(self, "Storage", config=config, consumers=remote,
                                    description=f"MLOps {config.name}: KMS key and S3 buckets")
        self.alerting = AlertingStack(self, "Alerting", config=config, key=self.storage.key,
                                      description=f"MLOps {config.name}: alert topics by severity")
        self.registry = RegistryStack(self, "Registry", config=config, key=self.storage.key, registry=registry,
                                      consumers=consumers,
                                      description=(f"MLOps {config.name}: model registry and promotion gate"
                                                   if config.is_registry else
                                                   f"MLOps {config.name}: the links to the {registry.name} "
                                                   "registry"))
        self.training: TrainingStack | None = None
        if config.is_registry:
            self.training = TrainingStack(
                self, "Training", config=config, key=self.storage.key, data_bucket=self.storage.data_bucket,
                artifact_bucket=self.storage.artifact_bucket, model_package_group_name=self.registry.group_name,
                consumers=consumers,
                description=f"MLOps {config.name}: training pipeline and retraining triggers")
            self.training.add_stack_dependency(self.registry)
        self.inference_api = InferenceApiStack(
            self, "InferenceApi", config=config, key=self.storage.key, capture_bucket=self.storage.capture_bucket,
            artifact_bucket=self.storage.artifact_bucket,
            description=f"MLOps {config.name}: inference API with fallback model, cache and prediction log")
        # Where the registered versions live: this environment's own storage, or the registry environment's
        # (maybe in another account), named as cdk.json determines it.
        location = RegistryLocation(registry=registry, account=registry.account or cdk.Aws.ACCOUNT_ID,
                                    partition=cdk.Aws.PARTITION)
        models = ModelSource(location=location, own=(self.storage.artifact_bucket, self.storage.key)
                             if config.is_registry else None)
        self.serving = ServingStack(
            self, "Serving", config=config, key=self.storage.key, artifact_bucket=self.storage.artifact_bucket,
            capture_bucket=self.storage.capture_bucket, models=models,
            description=f"MLOps {config.name}: deployer, rollback alarms, health check, batch scoring")
        self.monitoring = MonitoringStack(
            self, "Monitoring", config=config, key=self.storage.key, capture_bucket=self.storage.capture_bucket,
            artifact_bucket=self.storage.artifact_bucket, models=models,
            code_asset=self.training.code_asset if self.training else None,
            description=f"MLOps {config.name}: drift and quality monitor, dashboard, alarms")
        # Alert topics and the inference API reach their consumers as published names (SSM parameters), not
        # CloudFormation exports, so replacing them never fails with "export ... in use"; the producers
        # still deploy first. The Storage key and buckets (retained, never replaced in place: a replacement
        # is a data migration) stay exports: the consumers' grants need them.
        for consumer in (self.registry, self.serving, self.monitoring):
            consumer.add_stack_dependency(self.alerting)
        self.monitoring.add_stack_dependency(self.inference_api)
