"""Alert routing: one SNS topic per severity with the subscriptions from config.

'page' wakes on-call (an e-mail list and/or an on-call service's HTTPS integration); 'ticket' is looked at
in working hours. Every alarm in the app routes to one of them; deployment-rollback alarms route to none
(SageMaker acts on them itself)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from mlsettings.config import EnvironmentConfig, Subscriptions
from mlsettings.vocabulary import PAGE, TICKET, Published
from stacks.constructs.published_names import publish_name


class AlertingStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey,
                 **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        alarms = config.monitoring.alarms
        self.page_topic = self._topic("PageTopic", PAGE, alarms.page, key, config.name)
        self.ticket_topic = self._topic("TicketTopic", TICKET, alarms.ticket, key, config.name)

    def _topic(self, construct_id: str, severity: str, routing: Subscriptions, key: kms.IKey,
               environment: str) -> sns.Topic:
        topic = sns.Topic(self, construct_id, display_name=f"MLOps {environment} {severity}",
                          master_key=key, enforce_ssl=True)
        # enforce_ssl makes CDK write a TopicPolicy, which replaces SNS's default policy (the one that lets
        # the account's own services publish) with the TLS Deny alone: without this statement every alarm
        # action fails with "not authorized to perform: SNS:Publish". CloudWatch sends the alarm's ARN as
        # aws:SourceArn and the alarm's account as aws:SourceAccount (SNS Developer Guide, "Example cases for
        # Amazon SNS access control"), so only this account's alarms in this region may publish.
        topic.add_to_resource_policy(iam.PolicyStatement(
            sid="AlarmsOfThisAccountPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"], resources=[topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": self.account},
                        "ArnLike": {"aws:SourceArn": f"arn:{self.partition}:cloudwatch:{self.region}:"
                                                     f"{self.account}:alarm:*"}}))
        for email in routing.emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        for url in routing.https:
            topic.add_subscription(subscriptions.UrlSubscription(url, protocol=sns.SubscriptionProtocol.HTTPS))
        for index, secret_name in enumerate(routing.https_secret_names):
            # A {{resolve:secretsmanager:...}} dynamic reference: CloudFormation reads the secret at deploy time.
            sns.Subscription(self, f"{construct_id}SecretEndpoint{index}", topic=topic,
                             protocol=sns.SubscriptionProtocol.HTTPS,
                             endpoint=cdk.SecretValue.secrets_manager(secret_name).unsafe_unwrap())
        publish_name(self, environment=environment, key=Published.topic_arn(severity), value=topic.topic_arn)
        return topic
