"""Alarm builders: every paging or ticketing alarm names its runbook and routes to its severity's topic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlsettings.vocabulary import PAGE, TICKET, Severity

RUNBOOK_BASE = "docs/runbooks"


class AlarmRouter:
    """Creates alarms that link a runbook and notify the topic of their severity (alarm and OK)."""

    def __init__(self, *, page: sns.ITopic, ticket: sns.ITopic, environment: str) -> None:
        self._topics = {PAGE: page, TICKET: ticket}
        self._environment = environment
        self.alarms: list[tuple[str, Severity, cloudwatch.Alarm]] = []

    def alarm(self, scope: Construct, construct_id: str, *, metric: cloudwatch.IMetric, threshold: float,
              severity: Severity, runbook: str, summary: str, evaluation_periods: int = 3,
              datapoints_to_alarm: int | None = None,
              comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
              missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            scope, construct_id,
            alarm_description=(f"[{severity}] {self._environment}: {summary} "
                               f"Runbook: {RUNBOOK_BASE}/{runbook}.md"),
            metric=metric, threshold=threshold, evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm, comparison_operator=comparison, treat_missing_data=missing,
        )
        topic = self._topics[severity]
        alarm.add_alarm_action(actions.SnsAction(topic))
        alarm.add_ok_action(actions.SnsAction(topic))
        self.alarms.append((construct_id, severity, alarm))
        return alarm


def minutes(value: int) -> cdk.Duration:
    return cdk.Duration.minutes(value)
