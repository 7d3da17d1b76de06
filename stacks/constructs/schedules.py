"""A model's schedules (health check, batch scoring, drift run, retraining) on EventBridge Scheduler, not as rules
on the default bus: a schedule is not a rule, so the bus's 300-rule quota does not count them, and Scheduler's own
quota is a million schedules per account and region (EventBridge Scheduler User Guide, "Quotas")."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.nag import allow_wildcards


def lambda_schedule(scope: Construct, construct_id: str, *, function: lambda_.IFunction, expression: str,
                    description: str, dead_letters: sqs.IQueue, retry_attempts: int) -> scheduler.Schedule:
    """Invoke ``function`` on ``expression`` (EventBridge's rate()/cron() syntax, which Scheduler shares); a delivery
    that fails after ``retry_attempts`` goes to ``dead_letters``."""
    # The schedule's own role (not the stack-wide one LambdaInvoke would create): trusted by Scheduler for this
    # account only (aws:SourceAccount in the trust policy, as EventBridge Scheduler User Guide, "Setting up
    # Amazon EventBridge Scheduler", "Set up the execution role" shows it), holding this schedule's grants alone.
    role = iam.Role(scope, f"{construct_id}Role", assumed_by=iam.ServicePrincipal(
        "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(scope).account}}),
        description=f"EventBridge Scheduler: {description}")
    allow_wildcards(role, {
        "Resource::<*.Arn>:*": "Lambda's invoke grant covers the function's versions and aliases (ARN:*); the "
                               "schedule invokes the one unqualified function.",
        "Action::kms:GenerateDataKey*": "Sending a failed delivery to the KMS-encrypted dead-letter queue.",
        "Action::kms:ReEncrypt*": "CDK's encrypt grant on the dead-letter queue's key.",
    })
    return scheduler.Schedule(
        scope, construct_id, description=description,
        schedule=scheduler.ScheduleExpression.expression(expression),
        target=scheduler_targets.LambdaInvoke(function, dead_letter_queue=dead_letters, retry_attempts=retry_attempts,
                                              max_event_age=cdk.Duration.hours(1), role=role))


def pipeline_schedule(scope: Construct, construct_id: str, *, pipeline_name: str, pipeline_arn: str,
                      expression: str, reason: str, dead_letters: sqs.IQueue) -> scheduler.Schedule:
    """Start the pipeline with GitCommit=trigger:<reason> (the lineage then says no person started it)."""
    return scheduler.Schedule(
        scope, construct_id, description=f"Retraining ({reason})",
        schedule=scheduler.ScheduleExpression.expression(expression),
        target=scheduler_targets.Universal(
            service="sagemaker", action="startPipelineExecution",
            input=scheduler.ScheduleTargetInput.from_object({
                "PipelineName": pipeline_name,
                "PipelineParameters": [{"Name": "GitCommit", "Value": f"trigger:{reason}"}]}),
            policy_statements=[iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"],
                                                   resources=[pipeline_arn])],
            dead_letter_queue=dead_letters, retry_attempts=3, max_event_age=cdk.Duration.hours(1)))
