"""Training: the SageMaker Pipeline (validate > preprocess > train > evaluate > quality gate > baseline >
register), its two least-privilege roles and the retraining triggers."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlsettings.aws_values import sagemaker_instance_types
from mlsettings.config import EnvironmentConfig, drift_thresholds
from mlsettings.instance_types import same_storage_class
from mlsettings.naming import model_package_group_name as group_name
from mlsettings.naming import model_prefixes, pipeline_name
from mlsettings.training_code import IMAGE, PLATFORM, find_links
from mlsettings.vocabulary import (
    TRAINING_DATA_PREFIX,
    Published,
)
from pipelines.definition import PipelineSettings, build_definition, write_source_bundle
from pipelines.images import image_for
from stacks.constructs.cross_account import IMAGE_PULL_ACTIONS, group_versions_allowance
from stacks.constructs.kms_grants import grant_kms_for_aws_resources
from stacks.constructs.nag import allow_wildcards
from stacks.constructs.part import StackPart
from stacks.constructs.prefix_grants import grant_prefix_read, grant_prefix_read_write
from stacks.constructs.published_names import publish_model_name
from stacks.constructs.queues import dead_letter_queue
from stacks.constructs.schedules import pipeline_schedule

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_PREFIX = TRAINING_DATA_PREFIX


def registered_instance_types(config: EnvironmentConfig, consumers: Sequence[EnvironmentConfig]
                              ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(real-time, transform) instance types every version of ``config``'s model is registered with: each type any
    environment that deploys from this registry puts a variant of the model on or runs batch transform with
    (InferenceSpecification's SupportedRealtimeInferenceInstanceTypes and SupportedTransformInstanceTypes), so a
    version registered today lists the types staging and production deploy it with, not the registry's own."""
    assert config.model is not None
    servers = [c.for_model(config.model.name) for c in consumers] or [config]
    realtime = {c.serving.champion.instance_type for c in servers}
    realtime |= {c.serving.challenger.instance_type for c in servers if c.serving.challenger_enabled}
    return tuple(sorted(realtime)), tuple(sorted({c.serving.batch_instance_type for c in servers}))


class TrainingPart(StackPart):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey,
                 data_bucket: s3.IBucket, artifact_bucket: s3.IBucket,
                 consumers: Sequence[EnvironmentConfig] = (), image_repository: ecr.IRepository | None = None) -> None:
        """``config``: the model's view of the registry environment; ``consumers``: the environments that deploy
        this registry's versions (their instance types for the model are registered with each version);
        ``image_repository``: the model's own image repository (training.code.kind image)."""
        self.image_repository = image_repository
        super().__init__(scope, construct_id, config=config)
        assert config.model is not None
        self.model_name = config.model.name
        self.pipeline_name = pipeline_name(config)
        self.prefixes = model_prefixes(config)
        model_package_group_name = group_name(config)
        bundle_dir = Path(tempfile.gettempdir()) / "mlops-source-bundles"
        team_code = self._team_code(config)
        code = s3_assets.Asset(self, "StepCode", path=str(write_source_bundle(bundle_dir, team_code=team_code)))
        self.code_asset = code
        schema = s3_assets.Asset(self, "DataSchema", path=str(REPO_ROOT / config.training.schema_file))
        no_baseline = s3_assets.Asset(self, "NoPreviousBaseline",
                                      path=str(REPO_ROOT / "pipelines" / "no_previous_baseline.json"))
        self.job_role = self._job_role(config, key, data_bucket, artifact_bucket, assets=(code, schema, no_baseline))
        self.pipeline_role = self._pipeline_role(key, artifact_bucket, model_package_group_name)
        settings = self._pipeline_settings(config, key, data_bucket, artifact_bucket, model_package_group_name,
                                           consumers, code=code, schema=schema, no_baseline=no_baseline)
        self._pipeline(config, settings)
        self._triggers(config, data_bucket, key)
        publish_model_name(self, config, key=Published.PIPELINE_NAME, value=self.pipeline_name)
        publish_model_name(self, config, key=Published.TRAINING_DATA_URI,
                           value=f"s3://{data_bucket.bucket_name}/{self.prefixes.training_data}")
        self._acknowledge_wildcards()

    @staticmethod
    def _team_code(config: EnvironmentConfig) -> Path | None:
        """The model team's training code folder (training.code.source_dir; the configuration checked it)."""
        source_dir = config.training.code.source_dir
        # an own image's folder holds its programs, which the image carries: nothing of it is uploaded
        return None if config.training.code.kind in (PLATFORM, IMAGE) or source_dir is None else REPO_ROOT / source_dir

    def _job_role(self, config: EnvironmentConfig, key: kms.IKey, data_bucket: s3.IBucket,
                  artifact_bucket: s3.IBucket, *, assets: Sequence[s3_assets.Asset]) -> iam.Role:
        # The role the processing and training jobs run as: read data, write artifacts, nothing else.
        role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description="SageMaker processing and training jobs of the training pipeline")
        grant_prefix_read(data_bucket, role, [f"{self.prefixes.training_data}*"])
        # Only the model's prefixes jobs read, list and write: serving/ (the fallback model the API trusts), reports
        # and every other model's objects stay out of reach, their keys unlisted.
        grant_prefix_read_write(artifact_bucket, role, [f"{prefix}*" for prefix in (
            self.prefixes.pipeline_outputs, self.prefixes.models, self.prefixes.checkpoints)])
        for asset in assets:
            asset.grant_read(role)
        key.grant_encrypt_decrypt(role)
        if config.network.subnet_ids:
            # SageMaker creates the jobs' network interfaces in the configured subnets.
            role.add_to_policy(iam.PolicyStatement(
                sid="JobNetworkInterfacesInTheVpc",
                actions=["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                         "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission",
                         "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions",
                         "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"],
                resources=["*"]))
        # API reference, CreateTrainingJob RoleArn: "SageMaker needs your permission to ... download a Docker image
        # that contains training code"; Developer Guide, "How to use SageMaker AI execution roles", "CreateTrainingJob
        # API: Execution Role Permissions" (the three ECR read actions plus ecr:GetAuthorizationToken below). The
        # processing jobs run the same image (pipelines.images.image_for the model's kind of training code).
        image = image_for(config.training.code.kind)
        role.add_to_policy(iam.PolicyStatement(
            sid="PullTheFrameworkImage",
            actions=list(IMAGE_PULL_ACTIONS),
            resources=[f"arn:{self.partition}:ecr:{self.region}:{image.accounts.get(config.region, '')}:"
                       f"repository/{image.repository}"],
        ))
        if self.image_repository is not None:
            # The team's image: the Train step's TrainingImage and, as the TeamModel step's ExecutionRoleArn, the
            # Score step's model. Same account, so this identity policy is enough (ECR User Guide, "Private repository
            # policies": a principal needs an action allowed "through either a repository policy or an IAM policy
            # but not both").
            role.add_to_policy(iam.PolicyStatement(
                sid="PullTheTeamImage", actions=list(IMAGE_PULL_ACTIONS),
                resources=[self.image_repository.repository_arn]))
        role.add_to_policy(iam.PolicyStatement(
            sid="EcrLoginHasNoResourceLevelPermissions", actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="JobLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="JobMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}))
        return role

    def _pipeline_role(self, key: kms.IKey, artifact_bucket: s3.IBucket, model_package_group_name: str) -> iam.Role:
        # The role the pipeline itself runs as: start and watch its own jobs, register into one group.
        role = iam.Role(self, "PipelineRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description="The training pipeline's execution role")
        job_arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        role.add_to_policy(iam.PolicyStatement(
            sid="RunThePipelineJobs",
            actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                     "sagemaker:StopProcessingJob", "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
                     "sagemaker:StopTrainingJob", "sagemaker:AddTags"],
            resources=[f"{job_arn}:processing-job/pipelines-*", f"{job_arn}:training-job/pipelines-*"]))
        if self.image_repository is not None:
            # An own image's model is scored by batch transform: the TeamModel step's CreateModel and the Score
            # step's transform job (Pipelines names what it creates pipelines-<execution>-<step>-..., as its jobs).
            role.add_to_policy(iam.PolicyStatement(
                sid="ScoreWithTheTeamImage",
                actions=["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:CreateTransformJob",
                         "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob", "sagemaker:AddTags"],
                resources=[f"{job_arn}:model/pipelines-*", f"{job_arn}:transform-job/pipelines-*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="RegisterIntoTheModelPackageGroup",
            actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:AddTags"],
            resources=[f"{job_arn}:model-package-group/{model_package_group_name}",
                       f"{job_arn}:model-package/{model_package_group_name}/*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="PassTheJobRole", actions=["iam:PassRole"], resources=[self.job_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        # The Condition step reads the evaluation report (a property file) from the artifact bucket.
        grant_prefix_read(artifact_bucket, role, [f"{self.prefixes.pipeline_outputs}*"])
        key.grant_decrypt(role)
        grant_kms_for_aws_resources(key, role)  # the jobs' encrypted volumes and outputs
        return role

    def _pipeline_settings(self, config: EnvironmentConfig, key: kms.IKey, data_bucket: s3.IBucket,
                           artifact_bucket: s3.IBucket, model_package_group_name: str,
                           consumers: Sequence[EnvironmentConfig], *, code: s3_assets.Asset,
                           schema: s3_assets.Asset, no_baseline: s3_assets.Asset) -> PipelineSettings:
        training = config.training
        return PipelineSettings(
            pipeline_name=self.pipeline_name,
            role_arn=self.job_role.role_arn,
            image_uri=image_for(training.code.kind).uri(config.region),
            framework=image_for(training.code.kind).framework,
            framework_version=image_for(training.code.kind).framework_version,
            artifact_bucket=artifact_bucket.bucket_name,
            kms_key_id=key.key_arn,
            code_uri=code.s3_object_url,
            code_file_name=code.s3_object_key,
            schema_uri=schema.s3_object_url,
            schema_file_name=schema.s3_object_key,
            no_baseline_uri=no_baseline.s3_object_url,
            model_package_group=model_package_group_name,
            default_data_uri=f"s3://{data_bucket.bucket_name}/{self.prefixes.training_data}",
            model=self.model_name,
            training_instance_type=training.instance_type,
            training_instance_types=tuple(same_storage_class(training.instance_type,
                                                             sagemaker_instance_types("TrainingInstanceType"))),
            training_instance_count=training.instance_count,
            processing_instance_type=training.processing_instance_type,
            volume_size_gb=training.volume_size_gb,
            use_spot=training.use_spot,
            max_run_seconds=training.max_run_seconds,
            max_wait_seconds=training.max_wait_seconds,
            checkpointing=training.checkpointing,
            num_round=training.num_round,
            quality_metric=training.quality_gate.metric,
            quality_threshold=training.quality_gate.threshold,
            inference_instance_types=registered_instance_types(config, consumers)[0],
            transform_instance_types=registered_instance_types(config, consumers)[1],
            expected_p99_latency_ms=config.serving.sla.p99_latency_ms,
            drift_thresholds=drift_thresholds(config),
            network_isolation=True,
            min_rows_per_class=training.min_rows_per_class,
            training_kind=training.code.kind,
            team_image=(self.image_repository.repository_uri_for_digest(training.code.image_digest)
                        if self.image_repository is not None and training.code.image_digest else None),
            entry_point=training.code.entry_point,
            evaluate_hook=training.code.evaluate_hook if training.code.kind != PLATFORM else None,
            preprocess_hook=training.code.preprocess_hook if training.code.kind != PLATFORM else None,
            serve_hook=training.code.serve_hook if training.code.kind != PLATFORM else None,
            find_links=find_links(team) if (team := self._team_code(config)) else None,
            subnets=config.network.subnet_ids,
            security_group_ids=config.network.security_group_ids,
        )

    def _pipeline(self, config: EnvironmentConfig, settings: PipelineSettings) -> None:
        self.definition = build_definition(settings)
        own_image = config.training.code.kind == IMAGE
        image = image_for(config.training.code.kind)
        trainer = "the team's image" if own_image else f"{image.framework} {image.framework_version}"
        self.pipeline = sagemaker.CfnPipeline(
            self, "Pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_description=(f"Training of {self.model_name} in {config.name}: validate, preprocess, train "
                                  f"({trainer}, {config.training.code.kind}), {'score, ' * own_image}evaluate, "
                                  "quality gate, baseline, register"),
            role_arn=self.pipeline_role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": self.to_json_string(self.definition)},
        )
        # The role's policy (not just the role, which RoleArn already orders) must exist before SageMaker
        # validates the definition against it.
        default_policy = self.pipeline_role.node.try_find_child("DefaultPolicy")
        if default_policy is not None:
            self.pipeline.node.add_dependency(default_policy)

    def _acknowledge_wildcards(self) -> None:
        allow_wildcards(self.job_role, {
            "Action::s3:GetObject*": "CDK's read grant: GetObject plus its version/ACL/tagging variants.",
            "Action::s3:GetBucket*": "CDK's read grant: bucket location and versioning lookups.",
            "Action::s3:List*": "CDK's read grant: listing the prefixes the jobs read.",
            "Action::s3:DeleteObject*": "CDK's write grant: jobs replace their own run outputs.",
            "Action::s3:Abort*": "CDK's write grant: aborting a failed multipart upload of a job output.",
            "Action::kms:GenerateDataKey*": "Writing KMS-encrypted outputs needs data keys from the project key.",
            "Action::kms:ReEncrypt*": "CDK's encrypt/decrypt grant on the single project key.",
            "Resource::*ArtifactBucket*/*": "Run outputs are keyed by pipeline execution id below the artifact "
                                            "bucket; the ids are generated per run.",
            "Resource::*DataBucket*/training/*": "Jobs read every object below the training data prefix.",
            "Resource::arn:*:s3:::cdk-*-assets-*/*": "The step code, schema and marker are CDK assets whose keys are "
                                                     "content hashes in the bootstrap bucket.",
            "Resource::arn:*:logs:*:log-group:/aws/sagemaker/*": "SageMaker names job log streams per job; "
                                                                 "the grant stays within /aws/sagemaker.",
            "Resource::*": "ecr:GetAuthorizationToken, cloudwatch:PutMetricData (namespace-conditioned) and, with "
                           "a VPC, the EC2 network-interface actions SageMaker uses support no resource ARNs.",
        })
        allow_wildcards(self.pipeline_role, {
            "Action::s3:GetObject*": "CDK's read grant: the Condition step reads the evaluation report.",
            "Action::s3:GetBucket*": "CDK's read grant: bucket lookups before reading the report.",
            "Action::s3:List*": "CDK's read grant: listing the execution's output prefix.",
            "Resource::*ArtifactBucket*/pipelines/*": "Evaluation reports are keyed by execution id.",
            "Resource::arn:*:sagemaker:*:processing-job/pipelines-*": "Pipelines name their processing jobs "
                                                                       "pipelines-<execution>-<step>.",
            "Resource::arn:*:sagemaker:*:training-job/pipelines-*": "Pipelines name their training jobs "
                                                                     "pipelines-<execution>-<step>.",
            "Resource::arn:*:sagemaker:*:model/pipelines-*": "Pipelines name the models of their Model steps "
                                                             "pipelines-<execution>-<step>.",
            "Resource::arn:*:sagemaker:*:transform-job/pipelines-*": "Pipelines name their transform jobs "
                                                                     "pipelines-<execution>-<step>.",
            **group_versions_allowance(self.config),
        })

    def _triggers(self, config: EnvironmentConfig, data_bucket: s3.IBucket, key: kms.IKey) -> None:
        """Periodic retraining on Scheduler; new training data reaches the pipeline through the environment's event
        router (stacks/constructs/event_router.py: one rule for every model's data prefix)."""
        training = config.training
        if not training.retrain_schedule:
            return
        pipeline_arn = (f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:pipeline/"
                        f"{self.pipeline_name}")
        dead_letters = dead_letter_queue(self, "TriggerDeadLetters", key=key, purpose="the retraining schedule")
        pipeline_schedule(self, "RetrainSchedule", pipeline_name=self.pipeline_name, pipeline_arn=pipeline_arn,
                          expression=training.retrain_schedule, reason="schedule", dead_letters=dead_letters)
