"""The model registry's shared half: the promotion gate that refuses skipped stages (for every model's group), the
deployment ledger (one partition per group), the promotion notices and the IAM policies for approvers in
SageMaker Studio — in the registry environment only. Each model's group is in the model's stack
(stacks/model.py). Every environment deploys from one registry environment (registry.registry_environment).

Every rule here matches every model by pattern (the group-name prefix): their number does not grow with the
models (EventBridge allows 300 rules per bus; tests/infra/test_model_limits.py counts them).

The links between the registry and the environments that serve its stages, generated from cdk.json:
* accepted promotions: the gate puts them on the registry's default bus; a consumer in the same account sees
  them there, one in another account gets them forwarded to its own default bus (a rule with a role here; a
  bus policy there admitting only the registry's account and source ``mlops.promotion``);
* deployment results: each deployer puts them on its own default bus; from another account a rule forwards
  them here (the registry's bus policy admits exactly the consumers' accounts and source ``mlops.deployment``),
  where a rule hands them to the gate's function, which records them (ledger, StageStatus);
* what a consumer in another account reads (versions, artifacts, key): the group's resource policy here,
  the bucket's and the key's in the Storage stack, the consumer roles' IAM policies there
  (stacks/constructs/cross_account.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlsettings.config import EnvironmentConfig, other_account
from mlsettings.functions.contracts import GateEnvironment
from mlsettings.naming import event_bus_arn, forwarding_rule_arn, forwarding_rule_name, group_prefix
from mlsettings.vocabulary import (
    DEPLOYMENT_RESULT,
    PACKAGE_STATE_CHANGE,
    PRODUCTION,
    PROMOTION_ACCEPTED,
    PROMOTION_SOURCE,
    RESULT_SOURCE,
    SAGEMAKER_SOURCE,
    STATUS_DEPLOY_FAILED,
    STATUS_DEPLOYED,
    TICKET,
    Published,
)
from stacks.constructs.checkov import skip_checkov
from stacks.constructs.event_router import EventRouter, RoutedBuckets
from stacks.constructs.lambda_function import MlopsFunction
from stacks.constructs.nag import allow_wildcards
from stacks.constructs.published_names import publish_name, published_topic
from stacks.constructs.queues import dead_letter_queue, retried_delivery

RESULT_DETAIL_TYPE = DEPLOYMENT_RESULT
# Written only by the gate's function from deployment results; an approver who sets them would forge one.
DEPLOYER_STATUSES = [STATUS_DEPLOYED, STATUS_DEPLOY_FAILED]


def _bus_policy(scope: Construct, construct_id: str, *, account: str, rule_arn: str, statement_id: str,
                bus_arn: str) -> events.CfnEventBusPolicy:
    """Let exactly one rule of ``account`` (the one forwarding to us) put events on this account's default bus.

    EventBridge User Guide, "Example policy: Send events from specific rules in a different account": the bus
    policy admits the sender account's root with ``ArnEquals aws:SourceArn`` = the sending rule's ARN ("The ARN
    of the rule that is sending the event", eb-use-conditions). Which events that rule sends is its pattern's
    business; ``events:source`` is documented for PutEvents calls, not for a rule's deliveries."""
    return events.CfnEventBusPolicy(
        scope, construct_id, event_bus_name="default", statement_id=statement_id,
        statement={"Sid": statement_id, "Effect": "Allow",
                   "Principal": {"AWS": f"arn:{cdk.Aws.PARTITION}:iam::{account}:root"},
                   "Action": "events:PutEvents", "Resource": bus_arn,
                   "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}})


def _forward(scope: Construct, construct_id: str, *, rule_name: str, description: str,
             pattern: events.EventPattern, bus_arn: str, key: kms.IKey) -> events.Rule:
    """A rule that forwards matching events to another account's bus (EventBridge assumes the role); its name
    comes from cdk.json (``forwarding_rule_name``) because the receiving bus's policy names its ARN."""
    role = iam.Role(scope, f"{construct_id}Role", assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
                    description=f"EventBridge: {description}")
    dead_letters = dead_letter_queue(scope, f"{construct_id}DeadLetters", key=key,
                                     purpose=f"{description} (events never delivered)")
    return events.Rule(scope, construct_id, rule_name=rule_name, description=description, event_pattern=pattern,
                       targets=[
        targets.EventBus(events.EventBus.from_event_bus_arn(scope, f"{construct_id}Bus", bus_arn), role=role,
                         dead_letter_queue=dead_letters)])


class RegistryStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey,
                 registry: EnvironmentConfig, buckets: RoutedBuckets, consumers: Sequence[EnvironmentConfig] = (),
                 **kwargs: object) -> None:
        """``registry``: this environment's registry environment (itself, in the registry environment);
        ``consumers``: the environments that serve its stages (used in the registry environment); ``buckets``: the
        environment's, whose events the router routes to each model."""
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.group_prefix = group_prefix(config)
        publish_name(self, environment=config.name, key=Published.REGISTRY_ENVIRONMENT, value=registry.name)
        self.router = EventRouter(self, "EventRouter", config=config, key=key, buckets=buckets)
        self.ledger: dynamodb.Table | None = None
        self.gate: MlopsFunction | None = None
        if not config.is_registry:
            self._link_to_registry(config, registry, key)
            return
        self._consumers = list(consumers)
        self._config = config
        arn_prefix = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        # Every model's group and its versions (their names start with the registry's prefix).
        self.group_arn = f"{arn_prefix}:model-package-group/{self.group_prefix}*"
        self.package_arns = f"{arn_prefix}:model-package/{self.group_prefix}*/*"
        self.ledger, idempotency = self._tables(config, key)
        self.notices = sns.Topic(self, "PromotionNotices", display_name=f"MLOps {config.name} promotions",
                                 master_key=key, enforce_ssl=True)
        bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")

        self.gate = self._gate(config, key, idempotency, bus)
        self._deployment_results(config, key)
        self.approver_policies = {
            "staging": self._approver_policy("StagingApproverPolicy", may_set_production=False),
            "production": self._approver_policy("ProductionApproverPolicy", may_set_production=True),
        }
        for key_name, value in ((Published.LEDGER_TABLE, self.ledger.table_name), (Published.EVENT_BUS_NAME,
                                                                                   bus.event_bus_name),
                                (Published.PROMOTION_TOPIC_ARN, self.notices.topic_arn)):
            publish_name(self, environment=config.name, key=key_name, value=value)

        allow_wildcards(self.gate, {
            "Resource::arn:*:sagemaker:*:model-package/mlops-*-*/*": "The gate judges every version of every "
                                                                    "model's group (their names share the "
                                                                    "registry's prefix).",
            "Action::kms:GenerateDataKey*": "Encrypted tables, topic and queue need data keys from the project key.",
            "Action::kms:ReEncrypt*": "CDK's encrypt/decrypt grant on the single project key.",
        })

    def _tables(self, config: EnvironmentConfig, key: kms.IKey) -> tuple[dynamodb.Table, dynamodb.Table]:
        """(the deployment ledger, the gate's idempotency records)."""
        removal = cdk.RemovalPolicy.RETAIN if config.storage.retain_data else cdk.RemovalPolicy.DESTROY
        table_options = {
            "billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST,
            "encryption": dynamodb.TableEncryption.CUSTOMER_MANAGED, "encryption_key": key,
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
        }
        # Every decision and deployment; never expires (the retained production versions live here).
        ledger = dynamodb.Table(
            self, "DeploymentLedger",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            removal_policy=removal, **table_options)  # type: ignore[arg-type]
        idempotency = dynamodb.Table(
            self, "GateIdempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration", removal_policy=cdk.RemovalPolicy.DESTROY,
            **table_options)  # type: ignore[arg-type]
        return ledger, idempotency

    def _gate(self, config: EnvironmentConfig, key: kms.IKey, idempotency: dynamodb.Table,
              bus: events.IEventBus) -> MlopsFunction:
        """The promotion gate: judges every change to a package of the group."""
        assert self.ledger is not None
        gate = MlopsFunction(
            self, "PromotionGate", source="promotion_gate",
            description="Refuses skipped stages: reverts illegal stage/approval changes, records every decision",
            memory_size=512, timeout=cdk.Duration.seconds(60), settings=config.lambda_, key=key,
            asynchronous=True,
            alarm_topic=published_topic(self, "TicketTopic", environment=config.name, severity=TICKET),
            environment=GateEnvironment.for_config(
                config, {c.name: c for c in (config, *self._consumers)}, ledger_table=self.ledger.table_name,
                idempotency_table=idempotency.table_name, promotion_topic_arn=self.notices.topic_arn,
                event_bus_name=bus.event_bus_name, default_account=self.account),
        )
        function = gate.function
        skip_checkov(function, "CKV_AWS_45", "STAGE_SERVERS names the serving environments' account ids: "
                                             "identifiers the gate checks results against, not secrets.")
        function.add_to_role_policy(iam.PolicyStatement(
            sid="JudgeAndRevertPackages", actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
            resources=[self.package_arns]))
        function.add_to_role_policy(iam.PolicyStatement(
            sid="Ledger", actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
            resources=[self.ledger.table_arn]))
        # Exactly what Powertools' DynamoDB idempotency layer calls; CDK's grant_read_write_data would add the
        # stream actions on the table ARN, which apply to stream ARNs only (and the table has no stream).
        function.add_to_role_policy(iam.PolicyStatement(
            sid="IdempotencyRecords",
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            resources=[idempotency.table_arn]))
        self.notices.grant_publish(function)
        bus.grant_put_events_to(function)

        events.Rule(
            self, "PackageStateChange",
            description="Every change to a package of a model's group goes to the promotion gate",
            event_pattern=events.EventPattern(
                source=[SAGEMAKER_SOURCE], detail_type=[PACKAGE_STATE_CHANGE],
                detail={"ModelPackageGroupName": [{"prefix": self.group_prefix}]}),
            targets=[targets.LambdaFunction(function, **retried_delivery(  # type: ignore[arg-type]
                self, "GateEventDeadLetters", key=key,
                purpose="the registry-change rule (events the gate never received)"))],
        )
        return gate

    def _deployment_results(self, config: EnvironmentConfig, key: kms.IKey) -> None:
        """Results of every consumer reach the gate's function; remote consumers' arrive through the bus policy;
        accepted promotions are forwarded to each remote consumer's bus."""
        assert self.gate is not None
        events.Rule(
            self, "DeploymentResults",
            description="Every deployer's result (any account) goes to the gate's function, which records it",
            event_pattern=events.EventPattern(source=[RESULT_SOURCE], detail_type=[RESULT_DETAIL_TYPE],
                                              detail={"model_package_group": [{"prefix": self.group_prefix}]}),
            targets=[targets.LambdaFunction(self.gate.function, **retried_delivery(  # type: ignore[arg-type]
                self, "ResultEventDeadLetters", key=key,
                purpose="the deployment-result rule (results never recorded)"))])
        here = event_bus_arn(config, self.account, self.partition)
        remote = [c for c in self._consumers if other_account(c, config)]
        for consumer in remote:
            assert consumer.account is not None
            _bus_policy(self, f"ResultsFrom{consumer.name.title().replace('-', '')}", account=consumer.account,
                        rule_arn=forwarding_rule_arn(consumer, config, self.partition),
                        statement_id=f"mlops-{config.name}-results-from-{consumer.name}", bus_arn=here)
            _forward(self, f"PromotionsTo{consumer.name.title().replace('-', '')}",
                     rule_name=forwarding_rule_name(config, consumer),
                     description=f"accepted {'/'.join(consumer.serving.served_stages)} promotions to "
                                 f"{consumer.name}'s account",
                     pattern=events.EventPattern(source=[PROMOTION_SOURCE], detail_type=[PROMOTION_ACCEPTED],
                                                 detail={"model_package_group": [{"prefix": self.group_prefix}],
                                                         "target_stage": list(consumer.serving.served_stages)}),
                     bus_arn=event_bus_arn(consumer, consumer.account, self.partition), key=key)

    def _link_to_registry(self, config: EnvironmentConfig, registry: EnvironmentConfig, key: kms.IKey) -> None:
        """A consumer in another account: admit the registry's promotions, forward results to the registry."""
        # `mlops promote-challenger` puts its promotion on this account's bus, for this deployer.
        publish_name(self, environment=config.name, key=Published.EVENT_BUS_NAME, value="default")
        if not other_account(config, registry):
            return  # one account: the gate's and the deployer's events share the default bus
        assert registry.account is not None
        _bus_policy(self, "PromotionsFromTheRegistry", account=registry.account,
                    rule_arn=forwarding_rule_arn(registry, config, self.partition),
                    statement_id=f"mlops-{config.name}-promotions-from-{registry.name}",
                    bus_arn=event_bus_arn(config, self.account, self.partition))
        _forward(self, "ResultsToTheRegistry", rule_name=forwarding_rule_name(config, registry),
                 description=f"deployment results to {registry.name}'s account",
                 pattern=events.EventPattern(source=[RESULT_SOURCE], detail_type=[RESULT_DETAIL_TYPE],
                                             detail={"model_package_group": [{"prefix": self.group_prefix}]}),
                 bus_arn=event_bus_arn(registry, registry.account, self.partition), key=key)

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
                conditions={"StringEquals": {"sagemaker:ModelLifeCycle:stage": PRODUCTION}}))
        policy = iam.ManagedPolicy(
            self, construct_id,
            description=("Approve and stage model packages in Studio"
                         + (" up to Production" if may_set_production else " up to Staging")),
            statements=statements)
        allow_wildcards(policy, {
            "Resource::arn:*:sagemaker:*:model-package/mlops-*-*/*": "Approvers review every version of every "
                                                                    "model's group.",
            "Resource::arn:*:sagemaker:*:model-package-group/mlops-*-*": "Every model's group of the registry.",
        })
        return policy
