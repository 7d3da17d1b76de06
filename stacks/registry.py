"""The model registry: the Model Package Group, the promotion gate that refuses skipped stages, the deployment
ledger, the promotion notices and the IAM policies for approvers in SageMaker Studio.

With ``registry.location = central`` only the registry environment owns the group, the gate and the ledger;
the environments that deploy from it (same account and region) publish the central group's, ledger's and
bus's names for their CLI. Other accounts may read the group through its resource policy."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.lambda_function import MlopsFunction
from stacks.constructs.nag import allow_wildcards
from stacks.constructs.published_names import PARAMETER_PREFIX, publish_name, published_topic
from stacks.constructs.queues import dead_letter_queue
from stacks.naming import model_package_group_name

PROMOTION_SOURCE = "mlops.promotion"
PROMOTION_ACCEPTED = "Model Promotion Accepted"
# Written only by the serving deployer; an approver who sets them would forge a deployment.
DEPLOYER_STATUSES = ["Deployed", "DeployFailed"]


class RegistryStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey,
                 **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.group_name = model_package_group_name(config)
        publish_name(self, environment=config.name, key="model-package-group", value=self.group_name)
        self.owns_group = config.registry.location == "per_environment" or \
            config.registry.registry_environment == config.name
        self.ledger: dynamodb.Table | None = None
        self.gate: MlopsFunction | None = None
        if not self.owns_group:  # the central registry's ledger, for the CLI of this environment
            ledger = ssm.StringParameter.value_for_string_parameter(
                self, f"{PARAMETER_PREFIX}/{config.registry.registry_environment}/ledger-table")
            bus_name = ssm.StringParameter.value_for_string_parameter(
                self, f"{PARAMETER_PREFIX}/{config.registry.registry_environment}/event-bus-name")
            for key_name, value in (("ledger-table", ledger), ("event-bus-name", bus_name)):
                publish_name(self, environment=config.name, key=key_name, value=value)
            return
        arn_prefix = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        self.group_arn = f"{arn_prefix}:model-package-group/{self.group_name}"
        self.package_arns = f"{arn_prefix}:model-package/{self.group_name}/*"
        self.group = sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup",
            model_package_group_name=self.group_name,
            model_package_group_description=f"Models of the {config.name} MLOps environment",
            model_package_group_policy=self._cross_account_policy(config) or None,
        )
        removal = cdk.RemovalPolicy.RETAIN if config.storage.retain_data else cdk.RemovalPolicy.DESTROY
        table_options = {
            "billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST,
            "encryption": dynamodb.TableEncryption.CUSTOMER_MANAGED, "encryption_key": key,
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
        }
        # Every decision and deployment; never expires (the retained production versions live here).
        self.ledger = dynamodb.Table(
            self, "DeploymentLedger",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            removal_policy=removal, **table_options)  # type: ignore[arg-type]
        idempotency = dynamodb.Table(
            self, "GateIdempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration", removal_policy=cdk.RemovalPolicy.DESTROY,
            **table_options)  # type: ignore[arg-type]
        self.notices = sns.Topic(self, "PromotionNotices", display_name=f"MLOps {config.name} promotions",
                                 master_key=key, enforce_ssl=True)
        bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")

        self.gate = MlopsFunction(
            self, "PromotionGate", source="promotion_gate",
            description="Refuses skipped stages: reverts illegal stage/approval changes, records every decision",
            memory_size=512, timeout=cdk.Duration.seconds(60), settings=config.lambda_, key=key,
            asynchronous=True,
            alarm_topic=published_topic(self, "TicketTopic", environment=config.name, severity="ticket"),
            environment={
                "MODEL_PACKAGE_GROUP": self.group_name, "LEDGER_TABLE": self.ledger.table_name,
                "IDEMPOTENCY_TABLE": idempotency.table_name, "PROMOTION_TOPIC_ARN": self.notices.topic_arn,
                "EVENT_BUS_NAME": bus.event_bus_name,
            },
        )
        function = self.gate.function
        function.add_to_role_policy(iam.PolicyStatement(
            sid="JudgeAndRevertPackages", actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
            resources=[self.package_arns]))
        function.add_to_role_policy(iam.PolicyStatement(
            sid="Ledger", actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
            resources=[self.ledger.table_arn]))
        # Exactly what Powertools' DynamoDB idempotency layer calls; CDK's grant_read_write_data would add the
        # stream actions on the table ARN, which apply to stream ARNs only (and the table has no stream).
        function.add_to_role_policy(iam.PolicyStatement(
            sid="IdempotencyRecords",
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            resources=[idempotency.table_arn]))
        self.notices.grant_publish(function)
        bus.grant_put_events_to(function)

        dead_letters = dead_letter_queue(self, "GateEventDeadLetters", key=key,
                                         purpose="the registry-change rule (events the gate never received)")
        events.Rule(
            self, "PackageStateChange",
            description="Every change to a package of this group goes to the promotion gate",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [self.group_name]}),
            targets=[targets.LambdaFunction(function, dead_letter_queue=dead_letters, retry_attempts=8,
                                            max_event_age=cdk.Duration.hours(2))],
        )
        self.approver_policies = {
            "staging": self._approver_policy("StagingApproverPolicy", may_set_production=False),
            "production": self._approver_policy("ProductionApproverPolicy", may_set_production=True),
        }
        for key_name, value in (("ledger-table", self.ledger.table_name), ("event-bus-name", bus.event_bus_name),
                                ("promotion-topic-arn", self.notices.topic_arn)):
            publish_name(self, environment=config.name, key=key_name, value=value)

        allow_wildcards(self.gate, {
            "Resource::arn:*:sagemaker:*:model-package/mlops-*-models/*": "The gate judges every version of "
                                                                        "its one group.",
            "Action::kms:GenerateDataKey*": "Encrypted tables, topic and queue need data keys from the project key.",
            "Action::kms:ReEncrypt*": "CDK's encrypt/decrypt grant on the single project key.",
        })

    def _cross_account_policy(self, config: EnvironmentConfig) -> dict[str, object] | None:
        readers = config.registry.cross_account_readers
        if not readers:
            return None
        return {"Version": "2012-10-17", "Statement": [{
            "Sid": "CrossAccountRead", "Effect": "Allow",
            "Principal": {"AWS": [f"arn:{self.partition}:iam::{account}:root" for account in readers]},
            "Action": ["sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage",
                       "sagemaker:ListModelPackages"],
            "Resource": [self.group_arn, self.package_arns],
        }]}

    def _approver_policy(self, construct_id: str, *, may_set_production: bool) -> iam.ManagedPolicy:
        """For the approvers' roles in SageMaker Studio. IAM cannot know whether a package passed staging —
        the gate checks that and reverts — but IAM keeps approvers from the statuses only the deployer
        writes, from deleting retained versions and (for staging approvers) from Production."""
        statements = [
            iam.PolicyStatement(sid="ReviewAndApprove",
                                actions=["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages",
                                         "sagemaker:DescribeModelPackageGroup", "sagemaker:UpdateModelPackage"],
                                resources=[self.group_arn, self.package_arns]),
            iam.PolicyStatement(sid="DeploymentStatusesBelongToTheDeployer", effect=iam.Effect.DENY,
                                actions=["sagemaker:UpdateModelPackage"], resources=[self.package_arns],
                                conditions={"StringEquals": {
                                    "sagemaker:ModelLifeCycle:stageStatus": DEPLOYER_STATUSES}}),
            iam.PolicyStatement(sid="RetainedVersionsCannotBeDeleted", effect=iam.Effect.DENY,
                                actions=["sagemaker:DeleteModelPackage", "sagemaker:DeleteModelPackageGroup"],
                                resources=[self.group_arn, self.package_arns]),
        ]
        if not may_set_production:
            statements.append(iam.PolicyStatement(
                sid="ProductionNeedsAProductionApprover", effect=iam.Effect.DENY,
                actions=["sagemaker:UpdateModelPackage"], resources=[self.package_arns],
                conditions={"StringEquals": {"sagemaker:ModelLifeCycle:stage": "Production"}}))
        policy = iam.ManagedPolicy(
            self, construct_id,
            description=("Approve and stage model packages in Studio"
                         + (" up to Production" if may_set_production else " up to Staging")),
            statements=statements)
        allow_wildcards(policy, {
            "Resource::arn:*:sagemaker:*:model-package/mlops-*-models/*": "Approvers review every version of "
                                                                        "this one group.",
        })
        return policy
