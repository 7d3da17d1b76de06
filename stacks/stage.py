"""One environment: a CDK Stage whose stacks are built from that environment's settings (and, for the links
to its registry, what cdk.json says of the registry environment and its consumers: nothing is looked up in
another account at deploy time): the shared stacks (Storage, Alerting, Registry) and one stack per model."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from constructs import Construct

from mlsettings.config import EnvironmentConfig, consumers_of, other_account
from stacks.alerting import AlertingStack
from stacks.constructs.event_router import RoutedBuckets
from stacks.constructs.limits import check_resource_budget
from stacks.model import ModelStack
from stacks.overview import OverviewStack
from stacks.registry import RegistryStack
from stacks.storage import StorageStack


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
        buckets = RoutedBuckets(data=self.storage.data_bucket.bucket_name,
                                capture=self.storage.capture_bucket.bucket_name,
                                artifact=self.storage.artifact_bucket.bucket_name)
        self.registry = RegistryStack(self, "Registry", config=config, key=self.storage.key, registry=registry,
                                      consumers=consumers, buckets=buckets,
                                      description=(f"MLOps {config.name}: model registry and promotion gate"
                                                   if config.is_registry else
                                                   f"MLOps {config.name}: the links to the {registry.name} "
                                                   "registry"))
        for shared in (self.storage, self.alerting, self.registry):
            check_resource_budget(shared, f"environment {config.name!r}")
        # One stack per model, over the shared ones (their resources: the key, the buckets, the topics through
        # published names, the gate and ledger through the bus).
        self.models: dict[str, ModelStack] = {}
        for view in config.models:
            assert view.model is not None
            name = view.model.name
            stack = ModelStack(
                self, f"Model-{name}", config=view, registry=registry.for_model(name),
                consumers=consumers, key=self.storage.key, data_bucket=self.storage.data_bucket,
                artifact_bucket=self.storage.artifact_bucket, capture_bucket=self.storage.capture_bucket,
                description=f"MLOps {config.name}: model {name} ({view.model.problem_type})"
                            + (f", owned by {view.model.owner}" if view.model.owner else ""))
            for shared in (self.alerting, self.registry):
                stack.add_stack_dependency(shared)
            self.models[name] = stack
        # The environment's overview (a row per model), after the models whose composite alarms it shows.
        self.overview = OverviewStack(self, "Overview", config=config, models=list(config.models),
                                      description=f"MLOps {config.name}: the overview dashboard of its models")
        for stack in self.models.values():
            self.overview.add_stack_dependency(stack)
        check_resource_budget(self.overview, f"environment {config.name!r}")
