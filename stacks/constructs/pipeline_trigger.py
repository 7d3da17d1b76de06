"""EventBridge targets that start the training pipeline (schedules, new data, sustained drift).

The L2 events-targets library has no SageMaker-pipeline target, so the L1 target is built here, once."""

from __future__ import annotations

from aws_cdk import aws_events as events


def pipeline_target(*, pipeline_arn: str, role_arn: str, dead_letter_arn: str,
                    reason: str) -> events.CfnRule.TargetProperty:
    """Start the pipeline with GitCommit=trigger:<reason> (the lineage then says no person started it);
    three retries within an hour, then the event goes to the dead-letter queue."""
    return events.CfnRule.TargetProperty(
        id="TrainingPipeline", arn=pipeline_arn, role_arn=role_arn,
        dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=dead_letter_arn),
        retry_policy=events.CfnRule.RetryPolicyProperty(maximum_retry_attempts=3, maximum_event_age_in_seconds=3600),
        sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
            pipeline_parameter_list=[events.CfnRule.SageMakerPipelineParameterProperty(
                name="GitCommit", value=f"trigger:{reason}")]),
    )
