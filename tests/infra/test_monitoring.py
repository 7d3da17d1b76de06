"""The monitoring part of a model's stack: the drift run, every alarm with its threshold, action and runbook, the
dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from mlsettings.config import load_environments
from mlsettings.drift_partials import ENGINE_PARTIALS, ENGINE_PROCESSING
from mlsettings.problem_types import TYPES
from stacks.app_builder import build_app
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp
from tests.infra.part_resources import part_resources, resources_under

REPO = Path(__file__).resolve().parents[2]
PER_VARIANT = {"LatencyOverSla": "page", "ErrorRate": "page", "HealthCheckFailing": "page",
               "DataDrift": "ticket", "PredictionShift": "ticket", "ConfidenceShift": "ticket",
               "QualityDegraded": "page", "DataQuality": "ticket"}
VARIANTS = {"dev": ["Champion"], "staging": ["Champion", "Challenger"], "prod": ["Champion", "Challenger"]}


def _view(env: str) -> Any:
    """MODEL's view of the environment (its settings over the environment's)."""
    return load_environments(sampled_project_context())[env].for_model(MODEL)


def _alarms(synthesized: SynthesizedApp, env: str) -> dict[str, dict[str, Any]]:
    """The monitoring part's alarms of MODEL's stack, by their path below the part."""
    return {path: a["Properties"] for path, a in
            part_resources(synthesized, env, "monitoring", "AWS::CloudWatch::Alarm").items()}


def _expected(env: str) -> dict[str, str]:
    view = _view(env)
    per_variant = dict(PER_VARIANT)
    if TYPES[view.model.problem_type].output.confidence is None:  # a regression model states no confidence
        del per_variant["ConfidenceShift"]
    expected = {f"{v}{name}": severity for v in VARIANTS[env] for name, severity in per_variant.items()}
    # A data-quality violation in a top-importance feature pages in production only.
    expected |= {f"{v}TopFeatureDataQuality": "page" if env == "prod" else "ticket" for v in VARIANTS[env]}
    expected |= {"FallbackRate": "page"}
    if view.is_registry:  # the registry environment runs the training pipeline
        expected |= {"TrainingPipelineFailed": "ticket"}
    if env == "prod":
        expected |= {"NoTraffic": "page"}
    else:  # monitoring.alarms.idle_endpoint_days (default 7) in every non-production environment
        expected |= {"IdleEndpoint": "ticket"}
    if view.monitoring.drift.engine in (ENGINE_PARTIALS, ENGINE_PROCESSING):
        expected |= {f"{v}ObjectsNotAnalysed": "ticket" for v in VARIANTS[env]}
    return expected


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_alarm_exists_routes_by_severity_and_links_an_existing_runbook(synthesized: SynthesizedApp,
                                                                             env: str) -> None:
    alarms = _alarms(synthesized, env)
    expected = _expected(env)
    # the drift functions' failure-queue alarms are the only ones not built by the router
    routed = {logical: props for logical, props in alarms.items() if "Runbook: docs/runbooks/" in
              props.get("AlarmDescription", "") and not logical.startswith(("DriftMonitor", "DriftPartials"))}
    assert len(routed) == len(expected)
    topics = {json.dumps(p["AlarmActions"]) for p in routed.values()}
    assert len(topics) == 2  # page and ticket
    for name, severity in expected.items():
        (props,) = [p for logical, p in routed.items() if logical.startswith(name)]
        description = props["AlarmDescription"]
        assert description.startswith(f"[{severity}] {env}:"), name
        runbook = re.search(r"Runbook: (docs/runbooks/[\w-]+\.md)", description).group(1)
        assert (REPO / runbook).is_file(), runbook
        assert props["OKActions"] == props["AlarmActions"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_thresholds_come_from_config(synthesized: SynthesizedApp, env: str) -> None:
    config = _view(env)
    alarms = _alarms(synthesized, env)

    def alarm(prefix: str) -> dict[str, Any]:
        return next(p for logical, p in alarms.items() if logical.startswith(prefix))

    assert alarm("ChampionLatencyOverSla")["Threshold"] == config.serving.sla.p99_latency_ms * 1000
    assert alarm("ChampionErrorRate")["Threshold"] == config.monitoring.alarms.error_rate_percent
    assert alarm("FallbackRate")["Threshold"] == config.monitoring.alarms.fallback_rate_percent
    assert alarm("ChampionHealthCheckFailing")["ComparisonOperator"] == "LessThanThreshold"
    fallback_metrics = {m["Id"]: m for m in alarm("FallbackRate")["Metrics"]}
    # the model's own API answers: the inference function's metrics carry its endpoint's name
    assert sorted(fallback_metrics["degraded"]["MetricStat"]["Metric"]["Dimensions"], key=lambda d: d["Name"]) == [
        {"Name": "Endpoint", "Value": f"mlops-{env}-{MODEL}"}, {"Name": "service", "Value": "inference"}]


def test_no_traffic_exists_in_production_only(synthesized: SynthesizedApp) -> None:
    prod = _alarms(synthesized, "prod")
    (no_traffic,) = [p for logical, p in prod.items() if logical.startswith("NoTraffic")]
    assert no_traffic["ComparisonOperator"] == "LessThanThreshold"
    assert not [logical for logical in _alarms(synthesized, "dev") if logical.startswith("NoTraffic")]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_alarm_pages_on_a_healthy_newly_deployed_environment(synthesized: SynthesizedApp, env: str) -> None:
    """Right after `cdk deploy` no metric has data yet (no endpoint, no traffic, no drift run): an alarm that
    treats missing data as breaching goes to ALARM and notifies its topic from the first evaluation on."""
    alarms = {logical: resource["Properties"] for stack in ("monitoring", "serving", "registry")
              for logical, resource in synthesized.template(env, stack).find_resources(
                  "AWS::CloudWatch::Alarm").items()}
    assert alarms
    breaching = sorted(logical for logical, props in alarms.items()
                       if props.get("TreatMissingData", "missing") == "breaching")
    assert breaching == []


def test_sustained_drift_starts_the_registrys_training_pipeline(tmp_path: Path) -> None:
    """In the registry's account (cdk.json refuses the setting in another one, tests/unit/test_config.py)."""
    import copy

    context = copy.deepcopy(sampled_project_context())
    context["environments"]["prod"]["monitoring"] = {"drift": {"retrain_on_sustained_drift": True}}
    app = cdk.App(outdir=str(tmp_path / "out"), context={**context, "env": "prod", "aws:cdk:bundling-stacks": []})
    [stage] = build_app(app, context=context, with_nag=False)
    template = Template.from_stack(stage.models[MODEL])
    template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({"detail-type": ["CloudWatch Alarm State Change"],
                                           "detail": {"state": {"value": ["ALARM"]}}}),
        "Targets": [Match.object_like({"SageMakerPipelineParameters": Match.any_value(),
                                       "DeadLetterConfig": Match.any_value()})],
    })
    [rule] = [r for r in template.find_resources("AWS::Events::Rule").values()
              if "SageMakerPipelineParameters" in json.dumps(r)]
    # the model's own pipeline in the registry environment
    assert json.dumps(rule["Properties"]["Targets"][0]["Arn"]).endswith(f':pipeline/mlops-dev-{MODEL}-training"]]}}')


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_drift_run_is_scheduled_and_configured(synthesized: SynthesizedApp, env: str) -> None:
    config = _view(env)
    template = synthesized.template(env, "monitoring")
    (schedule,) = part_resources(synthesized, env, "monitoring", "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == config.monitoring.drift.schedule
    (monitor,) = [logical for logical, f in template.find_resources("AWS::Lambda::Function").items()
                  if f["Properties"]["Handler"] == "lambdas.drift_monitor.handler.lambda_handler"]
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [monitor, "Arn"]}
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "lambdas.drift_monitor.handler.lambda_handler", "Timeout": 900, "ReservedConcurrentExecutions": 1,
        "Environment": {"Variables": Match.object_like({
            "ENDPOINT_NAME": f"mlops-{env}-{MODEL}", "VARIANT_PARAMETER_PREFIX": f"/mlops/{env}/models/{MODEL}/variant",
            "WINDOW_HOURS": str(config.monitoring.drift.window_hours),
            "DRIFT_THRESHOLDS": Match.string_like_regexp('"psi": 0.2')})},
    })


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_dashboard_shows_what_on_call_needs(synthesized: SynthesizedApp, env: str) -> None:
    (dashboard,) = part_resources(synthesized, env, "monitoring", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in ("Request volume", "Latency p50 / p90 / p99", "Errors: 4XX, 5XX and 5XX rate",
                  "Fallbacks by reason", "Model version per variant", "Health check", "Drift score per variant",
                  "Top drifting features", "Training pipeline executions", "Alarms"):
        assert title in body, title


@pytest.fixture(scope="module")
def processing_engine_stage() -> Any:
    """dev with monitoring.drift.engine = processing, synthesized alone (the shipped cdk.json uses lambda)."""
    import copy

    import aws_cdk as cdk

    from stacks.app_builder import build_app
    from stacks.constructs.nag import resolve_wildcard_allowances

    context = copy.deepcopy(sampled_project_context())
    context["environments"]["dev"]["monitoring"]["drift"]["engine"] = "processing"
    app = cdk.App(context={**context, "aws:cdk:bundling-stacks": [], "env": "dev"})
    (stage,) = build_app(app, context=context, with_nag=False)
    app.synth()
    resolve_wildcard_allowances(app)
    return app, stage


def test_processing_engine_starts_a_job_and_publishes_its_report(processing_engine_stage: Any) -> None:
    from aws_cdk.assertions import Template
    from cdk_nag import AwsSolutionsChecks, ServerlessChecks

    app, stage = processing_engine_stage
    template = Template.from_stack(stage.models[MODEL])
    template.has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({
        "DRIFT_ENGINE": "processing", "PROCESSING_ROLE_ARN": Match.any_value(),
        "PROCESSING_IMAGE_URI": Match.string_like_regexp("sagemaker-xgboost:3.2-0"),
        "PROCESSING_CODE_URI": Match.any_value(), "PROCESSING_INSTANCE_TYPE": "ml.m5.xlarge"})}})
    # the shard summaries of the model's reports reach its drift monitor through the environment's shared router
    router = Template.from_stack(stage.registry)
    router.has_resource_properties("AWS::Events::Rule", {"EventPattern": Match.object_like({
        "source": ["aws.s3"], "detail-type": ["Object Created"],
        "detail": Match.object_like({"object": {"key": Match.array_with([
            {"wildcard": f"drift-reports/mlops-dev-{MODEL}/*/shards/*.json"}])}})})})
    actions = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert "sagemaker:CreateProcessingJob" in actions and "iam:PassRole" in actions
    for pack in (AwsSolutionsChecks(), ServerlessChecks()):
        report = pack.validate_scope(app)
        assert [v.rule_name for v in report.violations] == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_an_idle_non_production_endpoint_raises_a_ticket(synthesized: SynthesizedApp, env: str) -> None:
    """No request through the inference API for idle_endpoint_days days while the Champion's instances run.
    Missing data (no instances: no endpoint yet, or deleted) is not breaching; an hour with instances and no
    request is a 0 from IF (CloudWatch User Guide, "Using IF expressions"), so it breaches."""
    config = _view(env)
    idle = [p for logical, p in _alarms(synthesized, env).items() if logical.startswith("IdleEndpoint")]
    if config.production:
        assert idle == []
        return
    (alarm,) = idle
    days = config.monitoring.alarms.idle_endpoint_days
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 24 * days
    assert alarm["EvaluationPeriods"] * 3600 <= 604_800  # CloudWatch evaluates over at most seven days
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    assert queries["expr_1"]["Expression"] == "IF(up, requests)"
    up = queries["up"]["MetricStat"]
    assert up["Metric"]["Namespace"] == "/aws/sagemaker/Endpoints" and up["Stat"] == "SampleCount"
    assert {d["Name"]: d["Value"] for d in up["Metric"]["Dimensions"]} == {
        "EndpointName": f"mlops-{env}-{MODEL}", "VariantName": "Champion"}
    requests = queries["requests"]["MetricStat"]
    assert requests["Metric"]["MetricName"] == "Responses" and requests["Stat"] == "Sum"
    assert {q["MetricStat"]["Period"] for q in alarm["Metrics"] if "MetricStat" in q} == {3600}


def test_the_idle_alarm_follows_its_setting(tmp_path: Path) -> None:
    import copy

    context = copy.deepcopy(sampled_project_context())
    context["environments"]["staging"]["monitoring"] = {"alarms": {"idle_endpoint_days": 2}}
    context["environments"]["dev"]["monitoring"]["alarms"] = {"idle_endpoint_days": None}
    app = cdk.App(outdir=str(tmp_path / "out"), context={**context, "aws:cdk:bundling-stacks": []})
    stages = {s.config.name: s for s in build_app(app, context=context, with_nag=False)}
    def alarms(env: str) -> dict[str, dict[str, Any]]:
        model = stages[env].models[MODEL]
        return resources_under(model.monitoring, Template.from_stack(model), "AWS::CloudWatch::Alarm")

    staging = alarms("staging")
    (idle,) = [a["Properties"] for path, a in staging.items() if path.startswith("IdleEndpoint")]
    assert idle["EvaluationPeriods"] == 48
    dev = alarms("dev")
    assert dev and not [path for path in dev if path.startswith("IdleEndpoint")]
