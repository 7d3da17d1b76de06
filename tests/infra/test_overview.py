"""The environment's overview dashboard (stacks/overview.py): a row per model, each metric and alarm named from
cdk.json, and each model's composite alarm watching exactly that model's alarms."""

from __future__ import annotations

import json
import re

import aws_cdk as cdk
import pytest

from mlsettings.config import ConfigError, load_environments
from mlsettings.naming import endpoint_name, open_alarms_name, overview_dashboard_name, rollback_alarm_names
from mlsettings.vocabulary import Service
from stacks.overview import WIDGETS_PER_DASHBOARD, WIDGETS_PER_MODEL, OverviewStack
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp


def _body(synthesized: SynthesizedApp, env: str) -> dict[str, object]:
    stage = synthesized.stages[env]
    (dashboard,) = synthesized.template(env, "overview").find_resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == overview_dashboard_name(stage.config)
    # the tokens (region, account) as a readable placeholder inside the JSON strings they sit in
    joined = "".join(p if isinstance(p, str) else f"<{next(iter(p.values()))}>"
                     for p in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1])
    return json.loads(joined)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_overview_has_a_row_per_model_with_its_own_metrics_and_alarms(synthesized: SynthesizedApp,
                                                                          env: str) -> None:
    stage = synthesized.stages[env]
    body = _body(synthesized, env)
    widgets = body["widgets"]
    assert len(widgets) == 1 + WIDGETS_PER_MODEL * len(stage.models)
    rows = [widgets[1 + i:1 + i + WIDGETS_PER_MODEL] for i in range(0, len(widgets) - 1, WIDGETS_PER_MODEL)]
    assert [row[1]["properties"]["title"] for row in rows] == [view.model.name for view in stage.config.models]
    for view, (text, values, alarms) in zip(stage.config.models, rows, strict=True):
        assert view.model is not None and view.model.problem_type in text["properties"]["markdown"]
        endpoints = {dimension for metric in values["properties"]["metrics"] for dimension in metric[3:-1:2]
                     if dimension != "Champion"} - {Service.INFERENCE, Service.DRIFT_MONITOR}
        assert endpoints == {endpoint_name(view)}, endpoints  # nothing of another model in its row
        labels = [metric[-1]["label"] for metric in values["properties"]["metrics"]]
        assert labels == ["API responses", "5XX errors", "degraded responses", "p99 ModelLatency (µs)",
                          "version in production", "drift (max PSI)"]
        (alarm_arn,) = alarms["properties"]["alarms"]
        assert alarm_arn.endswith(f":alarm:{open_alarms_name(view)}")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_models_composite_alarm_watches_exactly_its_own_alarms(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "monitoring", MODEL)  # the model's stack
    (composite,) = template.find_resources("AWS::CloudWatch::CompositeAlarm").values()
    props = composite["Properties"]
    view = synthesized.stages[env].models[MODEL].config
    assert props["AlarmName"] == open_alarms_name(view) and props["ActionsEnabled"] is False
    rule = json.dumps(props["AlarmRule"])
    watched = set(re.findall(r'"Fn::GetAtt": \["([A-Za-z0-9]+)", "Arn"\]', rule))
    paging = {logical for logical, alarm in template.find_resources("AWS::CloudWatch::Alarm").items()
              if alarm["Properties"].get("AlarmActions")}
    assert watched == paging and paging  # every alarm that notifies someone, nothing else
    rollback = {logical for logical, alarm in template.find_resources("AWS::CloudWatch::Alarm").items()
                if alarm["Properties"].get("AlarmName") in rollback_alarm_names(view)}
    assert rollback and not rollback & watched  # SageMaker's rollback alarms page no one


def test_the_overview_is_deployed_after_the_models(synthesized: SynthesizedApp) -> None:
    stage = synthesized.stages["prod"]
    assert set(stage.overview.dependencies) >= set(stage.models.values())


def test_more_models_than_a_dashboard_holds_are_refused_naming_the_limit() -> None:
    config = load_environments(sampled_project_context())["dev"]
    too_many = list(config.models) * (WIDGETS_PER_DASHBOARD // (WIDGETS_PER_MODEL * len(config.models)) + 1)
    with pytest.raises(ConfigError, match=rf"{len(too_many)} models make {1 + WIDGETS_PER_MODEL * len(too_many)} "
                                          rf"widgets .* CloudWatch allows {WIDGETS_PER_DASHBOARD} per dashboard"):
        OverviewStack(cdk.App(), "Overview", config=config, models=too_many)
