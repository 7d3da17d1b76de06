"""One environment: a CDK Stage whose stacks are built from that environment's settings only."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks.alerting import AlertingStack
from stacks.config import EnvironmentConfig
from stacks.constructs.model_source import ModelSource
from stacks.inference_api import InferenceApiStack
from stacks.monitoring import MonitoringStack
from stacks.registry import RegistryStack
from stacks.serving import ServingStack
from stacks.storage import StorageStack
from stacks.training import TrainingStack


class MlopsStage(cdk.Stage):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 default_account: str | None = None) -> None:
        account = config.account or default_account
        super().__init__(scope, construct_id, env=cdk.Environment(account=account, region=config.region))
        self.config = config
        cdk.Tags.of(self).add("project", "serverless-mlops")
        cdk.Tags.of(self).add("environment", config.name)
        self.storage = StorageStack(self, "Storage", config=config,
                                    description=f"MLOps {config.name}: KMS key and S3 buckets")
        self.alerting = AlertingStack(self, "Alerting", config=config, key=self.storage.key,
                                      description=f"MLOps {config.name}: alert topics by severity")
        self.registry = RegistryStack(self, "Registry", config=config, key=self.storage.key,
                                      description=f"MLOps {config.name}: model registry and promotion gate")
        self.training = TrainingStack(
            self, "Training", config=config, key=self.storage.key, data_bucket=self.storage.data_bucket,
            artifact_bucket=self.storage.artifact_bucket, model_package_group_name=self.registry.group_name,
            description=f"MLOps {config.name}: training pipeline and retraining triggers")
        self.training.add_stack_dependency(self.registry)
        self.inference_api = InferenceApiStack(
            self, "InferenceApi", config=config, key=self.storage.key, capture_bucket=self.storage.capture_bucket,
            artifact_bucket=self.storage.artifact_bucket,
            description=f"MLOps {config.name}: inference API with fallback model, cache and prediction log")
        # Models and ledger: this environment's own, or (None) the central registry's, which the stacks that
        # use them resolve from its published names.
        ledger = self.registry.ledger
        models = None if ledger is None else ModelSource(
            bucket=self.storage.artifact_bucket, key=self.storage.key,
            ledger=lambda: (ledger.table_name, ledger.table_arn), shared=False)
        self.serving = ServingStack(
            self, "Serving", config=config, key=self.storage.key, artifact_bucket=self.storage.artifact_bucket,
            capture_bucket=self.storage.capture_bucket, models=models,
            description=f"MLOps {config.name}: deployer, rollback alarms, health check, batch scoring")
        self.monitoring = MonitoringStack(
            self, "Monitoring", config=config, key=self.storage.key, capture_bucket=self.storage.capture_bucket,
            artifact_bucket=self.storage.artifact_bucket, models=models, code_asset=self.training.code_asset,
            description=f"MLOps {config.name}: drift and quality monitor, dashboard, alarms")
        # Alert topics and the inference API reach their consumers as published names (SSM parameters), not
        # CloudFormation exports, so replacing them never fails with "export ... in use"; the producers
        # still deploy first. The Storage key and buckets (retained, never replaced in place: a replacement
        # is a data migration) and the Registry's ledger stay exports: the consumers' grants need them.
        for consumer in (self.registry, self.serving, self.monitoring):
            consumer.add_stack_dependency(self.alerting)
        self.monitoring.add_stack_dependency(self.inference_api)
