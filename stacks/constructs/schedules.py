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
    schedule = scheduler.Schedule(
        scope, construct_id, description=description,
        schedule=scheduler.ScheduleExpression.expression(expression),
        target=scheduler_targets.LambdaInvoke(function, dead_letter_queue=dead_letters, retry_attempts=retry_attempts,
                                              max_event_age=cdk.Duration.hours(1)))
    # The target's role is one CDK creates at the stack's top (SchedulerRoleForTarget-<hash>), outside the part that
    # asked for it; its invoke grant covers the function and its qualifiers (<arn>:*).
    for child in cdk.Stack.of(scope).node.children:
        if isinstance(child, iam.Role) and child.node.id.startswith("SchedulerRoleForTarget"):
            allow_wildcards(child, {
                "Resource::<*Function*.Arn>:*": "Scheduler's Lambda target grants InvokeFunction on the scheduled "
                                                "function and its versions and aliases; it invokes the function."})
    return schedule


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
