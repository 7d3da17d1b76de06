"""Dead-letter queues: encrypted, TLS-only, kept 14 days; the end of a redrive chain has none itself."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.nag import acknowledge


def dead_letter_queue(scope: Construct, construct_id: str, *, purpose: str, key: kms.IKey | None = None
                      ) -> sqs.Queue:
    queue = sqs.Queue(
        scope, construct_id,
        encryption=sqs.QueueEncryption.KMS if key else sqs.QueueEncryption.KMS_MANAGED,
        encryption_master_key=key, enforce_ssl=True, retention_period=cdk.Duration.days(14),
    )
    reason = f"This queue is itself the dead-letter destination of {purpose}."
    acknowledge(queue, "AwsSolutions-SQS3", reason)
    acknowledge(queue, "Serverless-SQSRedrivePolicy", reason)
    return queue


def retried_delivery(scope: Construct, construct_id: str, *, purpose: str, key: kms.IKey) -> dict[str, object]:
    """The delivery options of a rule whose events must not be lost (promotions, results, registry changes):
    8 retries within 2 hours, then the event lands in its own dead-letter queue (``construct_id``)."""
    return {"dead_letter_queue": dead_letter_queue(scope, construct_id, key=key, purpose=purpose),
            "retry_attempts": 8, "max_event_age": cdk.Duration.hours(2)}


def accept_dead_letters_from(queue: sqs.IQueue, *, rule_arns: list[str]) -> None:
    """Let EventBridge put the undeliverable events of these rules (and no other rule's) into ``queue``.

    The L2 targets write this statement themselves; L1 CfnRule targets need it written. EventBridge sends the
    rule's ARN as aws:SourceArn to SQS (EventBridge User Guide, "Using resource-based policies": Amazon SQS
    permissions), so the condition stops another rule, in any account, from using our queue. The queue's KMS
    key lets EventBridge use it through the key policy (stacks/storage.py)."""
    queue.add_to_resource_policy(iam.PolicyStatement(
        sid="DeadLettersOfTheseRules", principals=[iam.ServicePrincipal("events.amazonaws.com")],
        actions=["sqs:SendMessage"], resources=[queue.queue_arn],
        conditions={"ArnEquals": {"aws:SourceArn": rule_arns}}))
