"""The environment's overview: one dashboard with a row per model — its kind and owner, its traffic (inference API
responses), errors (the Champion's 5XX and the degraded responses), p99 latency, the version in production (what the
health check sees served), its drift score, and its open alarms (the model's composite alarm).

Every metric and alarm is named from cdk.json (stacks/constructs/model_metrics.py, mlsettings.naming), so this stack
holds no reference into a model's stack; it is deployed after them (its alarm widgets name their composite alarms).
A CloudWatch dashboard holds at most 500 widgets (CloudWatch User Guide, "CloudWatch service quotas"): three per
model and a title make 166 models per overview, checked at synth."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from mlsettings.config import ConfigError, EnvironmentConfig
from mlsettings.naming import endpoint_name, open_alarms_name, overview_dashboard_name
from mlsettings.problem_types import problem_type
from mlsettings.vocabulary import CHAMPION, Metric
from stacks.constructs.model_metrics import drift_metric, health_metric, inference_metric, sagemaker_metric

WIDGETS_PER_DASHBOARD = 500
WIDGETS_PER_MODEL = 3


def overview_metrics(model: EnvironmentConfig) -> list[cloudwatch.IMetric]:
    """A model's row: volume, errors, p99, version in production, drift (``model``: the model's view)."""
    endpoint = endpoint_name(model)
    return [
        inference_metric(endpoint, Metric.RESPONSES).with_(label="API responses"),
        sagemaker_metric(endpoint, "Invocation5XXErrors", CHAMPION, "Sum").with_(label="5XX errors"),
        inference_metric(endpoint, Metric.DEGRADED_RESPONSES).with_(label="degraded responses"),
        sagemaker_metric(endpoint, "ModelLatency", CHAMPION, "p99").with_(label="p99 ModelLatency (µs)"),
        health_metric(endpoint, Metric.SERVED_MODEL_VERSION, CHAMPION, "Maximum").with_(label="version in production"),
        drift_metric(endpoint, Metric.MAX_DRIFT, CHAMPION).with_(label="drift (max PSI)"),
    ]


class OverviewStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 models: Sequence[EnvironmentConfig], **kwargs: object) -> None:
        """``models``: each model's view of the environment (``config.models``)."""
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        widgets = 1 + WIDGETS_PER_MODEL * len(models)
        if widgets > WIDGETS_PER_DASHBOARD:
            raise ConfigError(
                f"environments.{config.name}: {len(models)} models make {widgets} widgets on the overview dashboard; "
                f"CloudWatch allows {WIDGETS_PER_DASHBOARD} per dashboard (see docs/MODELS.md, 'Limits')")
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=overview_dashboard_name(config),
                                              default_interval=cdk.Duration.days(1))
        self.dashboard.add_widgets(cloudwatch.TextWidget(
            markdown=(f"# MLOps {config.name}: {len(models)} models\n"
                      "One row per model: traffic, errors, p99, the version in production, drift and open alarms "
                      "over the dashboard's time range. Each model's own dashboard is named as its endpoint."),
            width=24, height=2))
        for model in models:
            assert model.model is not None
            kind = problem_type(model.model.problem_type)
            owner = f" · owner: {model.model.owner}" if model.model.owner else ""
            alarm = cloudwatch.CompositeAlarm.from_composite_alarm_name(
                self, f"OpenAlarms-{model.model.name}", open_alarms_name(model))
            self.dashboard.add_widgets(
                cloudwatch.TextWidget(markdown=(f"### {model.model.name}\n{kind.name}{owner}\n\n"
                                                f"dashboard: `{endpoint_name(model)}`"), width=5, height=5),
                cloudwatch.SingleValueWidget(title=model.model.name, metrics=overview_metrics(model), width=13,
                                             height=5, set_period_to_time_range=True),
                cloudwatch.AlarmStatusWidget(title=f"{model.model.name}: open alarms", alarms=[alarm], width=6,
                                             height=5))
