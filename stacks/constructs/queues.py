"""Dead-letter queues: encrypted, TLS-only, kept 14 days; the end of a redrive chain has none itself."""

from __future__ import annotations

import aws_cdk as cdk
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
