"""One model's stack: everything of one model in one environment — its model package group and training pipeline
(in the registry environment), its inference API, its endpoint's deployer, health check and batch scoring, its
drift and quality monitor, alarms and dashboard — over the environment's shared stacks (key and buckets, alert
topics, the promotion gate and ledger). A model team's change touches only this stack.

Each part is a construct (stacks/training.py, inference_api.py, serving.py, monitoring.py) taking the model's
view of the environment (``config.for_model(name)``): its settings over the environment's, its names and its
prefixes in the shared buckets, which its roles alone reach."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlsettings.config import EnvironmentConfig, other_account
from mlsettings.naming import image_repository_name, model_package_group_name, open_alarms_name
from mlsettings.training_code import IMAGE
from mlsettings.vocabulary import PAGE, TICKET, Published
from stacks.constructs.cross_account import (
    RegistryLocation,
    image_repository_statements,
    package_group_statements,
)
from stacks.constructs.limits import check_resource_budget
from stacks.constructs.model_source import ModelSource
from stacks.constructs.published_names import publish_model_name, published_topic
from stacks.inference_api import InferenceApiPart
from stacks.monitoring import MonitoringPart
from stacks.serving import ServingPart
from stacks.training import TrainingPart


class ModelStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 registry: EnvironmentConfig, consumers: Sequence[EnvironmentConfig], key: kms.IKey,
                 data_bucket: s3.IBucket, artifact_bucket: s3.IBucket, capture_bucket: s3.IBucket,
                 **kwargs: object) -> None:
        """``config``: the model's view of this environment; ``registry``: the model's view of the registry
        environment; ``consumers``: in the registry environment, the environments that serve its stages."""
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        assert config.model is not None
        self.config = config
        self.model = config.model
        check_resource_budget(self, f"model {config.model.name!r}")
        cdk.Tags.of(self).add("model", config.model.name)
        if config.model.owner:
            cdk.Tags.of(self).add("owner", config.model.owner)
        page = published_topic(self, "PageTopic", environment=config.name, severity=PAGE)
        ticket = published_topic(self, "TicketTopic", environment=config.name, severity=TICKET)
        group = model_package_group_name(config)
        publish_model_name(self, config, key=Published.MODEL_PACKAGE_GROUP, value=group)
        self.training: TrainingPart | None = None
        self.image_repository: ecr.Repository | None = None
        if config.is_registry:
            self.group = sagemaker.CfnModelPackageGroup(
                self, "ModelPackageGroup", model_package_group_name=group,
                model_package_group_description=f"Versions of {config.model.name} ({config.model.problem_type}) in "
                                                f"the {config.name} MLOps registry",
                model_package_group_policy=self._group_policy(config, consumers) or None)
            self.image_repository = self._image_repository(config, consumers, key)
            self.training = TrainingPart(self, "Training", config=config, key=key, data_bucket=data_bucket,
                                         artifact_bucket=artifact_bucket, consumers=consumers,
                                         image_repository=self.image_repository)
            self.training.node.add_dependency(self.group)
        self.inference_api = InferenceApiPart(self, "InferenceApi", config=config, key=key,
                                              capture_bucket=capture_bucket, artifact_bucket=artifact_bucket)
        # Where the model's registered versions live: this environment's own storage, or the registry
        # environment's (maybe in another account), named as cdk.json determines it.
        location = RegistryLocation(registry=registry, account=registry.account or cdk.Aws.ACCOUNT_ID,
                                    partition=cdk.Aws.PARTITION)
        models = ModelSource(location=location, own=(artifact_bucket, key) if config.is_registry else None)
        self.serving = ServingPart(self, "Serving", config=config, key=key, artifact_bucket=artifact_bucket,
                                   capture_bucket=capture_bucket, models=models, alarm_topic=ticket)
        self.monitoring = MonitoringPart(
            self, "Monitoring", config=config, key=key, capture_bucket=capture_bucket,
            artifact_bucket=artifact_bucket, models=models,
            code_asset=self.training.code_asset if self.training else None, page_topic=page, ticket_topic=ticket,
            inference_function_name=self.inference_api.function_name, api_id=self.inference_api.api.api_id)
        self.open_alarms = self._open_alarms(config)

    def _image_repository(self, config: EnvironmentConfig, consumers: Sequence[EnvironmentConfig],
                          key: kms.IKey) -> ecr.Repository | None:
        """The model team's own image repository (training.code.kind image), created before its first image: tags
        cannot be moved (the configuration pins a digest anyway), every push is scanned, images are encrypted with
        the environment's key (ECR decrypts through its own grant on the key: the ECR User Guide, "Encryption at
        rest", names no key permission for a puller) and kept: no lifecycle rule expires an image, and the repository
        outlives the stack (RETAIN), also when the model changes kind — a registered version must stay pullable for a
        rollback, and the serving roles keep their grant on it (stacks.constructs.cross_account). Its policy admits
        the serving roles of the consumers in other accounts (image_repository_statements)."""
        assert config.model is not None
        if config.training.code.kind != IMAGE:
            return None
        repository = ecr.Repository(
            self, "ImageRepository", repository_name=image_repository_name(config), image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE, encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=key, removal_policy=cdk.RemovalPolicy.RETAIN, empty_on_delete=False)
        remote = [c.for_model(config.model.name) for c in consumers if other_account(c, config)]
        if remote:
            for statement in image_repository_statements(remote, partition=self.partition):
                repository.add_to_resource_policy(statement)
        return repository

    def _open_alarms(self, config: EnvironmentConfig) -> cloudwatch.CompositeAlarm:
        """One state for the model's alarms, by name, for the environment's overview (stacks/overview.py): in ALARM
        while any alarm of this stack that notifies someone is (SageMaker's rollback alarms notify no one and are
        left out). It notifies no one itself: each alarm it watches does."""
        assert config.model is not None
        notifying = [alarm for alarm in self.node.find_all() if isinstance(alarm, cloudwatch.Alarm)
                     and self.resolve(cast(cloudwatch.CfnAlarm, alarm.node.default_child).alarm_actions)]
        return cloudwatch.CompositeAlarm(
            self, "OpenAlarms", composite_alarm_name=open_alarms_name(config), actions_enabled=False,
            alarm_description=f"{config.name}: any alarm of the model {config.model.name} that notifies is in ALARM "
                              "(each notifies its own topic; this one no one)",
            alarm_rule=cloudwatch.AlarmRule.any_of(*[cloudwatch.AlarmRule.from_alarm(alarm, cloudwatch.AlarmState.ALARM)
                                                     for alarm in notifying]))

    def _group_policy(self, config: EnvironmentConfig, consumers: Sequence[EnvironmentConfig]
                      ) -> dict[str, object] | None:
        """The model's consumers in other accounts may describe its versions (exactly their roles that need to)."""
        assert config.model is not None
        remote = [c.for_model(config.model.name) for c in consumers if other_account(c, config)]
        if not remote:
            return None
        package_arns = (f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:model-package/"
                        f"{model_package_group_name(config)}/*")
        return {"Version": "2012-10-17", "Statement": package_group_statements(
            remote, package_arns=package_arns, partition=self.partition)}
