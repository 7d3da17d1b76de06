"""The serving part of a model's stack: deployer state machine and its trigger (the environment's shared event
router), rollback alarms, model role, health check, batch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from mlsettings.config import load_environments, to_plain
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp
from tests.infra.part_resources import part_resources

VARIANTS = {"dev": ["Champion"], "staging": ["Champion", "Challenger"], "prod": ["Champion", "Challenger"]}


def _view(env: str) -> Any:
    """MODEL's view of the environment (its settings over the environment's)."""
    return load_environments(sampled_project_context())[env].for_model(MODEL)


def _functions(synthesized: SynthesizedApp, env: str) -> dict[str, dict[str, Any]]:
    functions = part_resources(synthesized, env, "serving", "AWS::Lambda::Function")
    return {f["Properties"]["Handler"]: f["Properties"] for f in functions.values()}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_exact_resources(synthesized: SynthesizedApp, env: str) -> None:
    """The serving part's own resources (the model's stack also holds its other parts)."""
    def count(resource_type: str) -> int:
        return len(part_resources(synthesized, env, "serving", resource_type))

    assert count("AWS::StepFunctions::StateMachine") == 1
    assert count("AWS::Lambda::Function") == 6
    # rollback alarms per variant (5XX, p99) + failure-queue alarms of the health check and batch scoring
    assert count("AWS::CloudWatch::Alarm") == 2 * len(VARIANTS[env]) + 2
    assert sorted(_functions(synthesized, env)) == sorted([
        "lambdas.deployer.handler.start_deployment", "lambdas.deployer.handler.check_deployment",
        "lambdas.deployer.handler.verify_and_record", "lambdas.deployer.handler.record_failure",
        "lambdas.health_check.handler.handler", "lambdas.batch_scoring.handler.handler"])


@pytest.mark.parametrize(("env", "stage"), [("staging", "Staging"), ("prod", "Production")])
def test_accepted_promotions_start_the_deployer_with_a_dlq(synthesized: SynthesizedApp, env: str, stage: str) -> None:
    """One rule of the environment's event router (Registry stack) takes every model's accepted promotions of the
    served stage (the registry's groups by prefix) and starts the model's deployer by its name."""
    router = synthesized.template(env, "registry")
    router.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {"source": ["mlops.promotion"], "detail-type": ["Model Promotion Accepted"],
                         "detail": {"model_package_group": [{"prefix": "mlops-dev-"}], "target_stage": [stage]}},
        "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value(),
                                       "RetryPolicy": Match.object_like({"MaximumRetryAttempts": 8})})],
    })
    # the router names the deployer <project>-<env>-<model>-deployer; MODEL's deployer has that name
    (machine,) = router.find_resources("AWS::StepFunctions::StateMachine").values()
    assert f"stateMachine:mlops-{env}-{{}}-deployer" in json.dumps(machine["Properties"]["DefinitionString"])
    (deployer,) = part_resources(synthesized, env, "serving", "AWS::StepFunctions::StateMachine").values()
    assert deployer["Properties"]["StateMachineName"] == f"mlops-{env}-{MODEL}-deployer"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_state_machine_logs_traces_and_bounds_the_rollout(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "serving")
    template.has_resource_properties("AWS::StepFunctions::StateMachine", {
        "TracingConfiguration": {"Enabled": True},
        "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
    })
    (machine,) = part_resources(synthesized, env, "serving", "AWS::StepFunctions::StateMachine").values()
    body = machine["Properties"]["DefinitionString"]
    text = json.dumps(body)
    for state in ("StartDeploymentTask", "Bake", "CheckDeploymentTask", "VerifyAndRecordTask", "RecordFailureTask",
                  "EndpointBusy", "TimeoutSeconds", "$.status.decision", "$.result.outcome"):
        assert state in text, state


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rollback_alarms_are_per_variant_and_page_nobody(synthesized: SynthesizedApp, env: str) -> None:
    alarms = part_resources(synthesized, env, "serving", "AWS::CloudWatch::Alarm")
    rollback = {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values()
                if "AlarmName" in a["Properties"]}
    # named per model: every model's endpoint has its own rollback alarms
    expected = sorted(f"mlops-{env}-{MODEL}-{v}-{kind}" for v in VARIANTS[env] for kind in ("5xx", "p99"))
    assert sorted(rollback) == expected
    assert all("AlarmActions" not in props for props in rollback.values())
    config = _view(env)
    p99 = rollback[f"mlops-{env}-{MODEL}-Champion-p99"]
    assert p99["Threshold"] == config.serving.sla.p99_latency_ms * 1000 and p99["ExtendedStatistic"] == "p99"
    start = _functions(synthesized, env)["lambdas.deployer.handler.start_deployment"]
    names = json.loads(start["Environment"]["Variables"]["ROLLBACK_ALARM_NAMES"])
    assert sorted(names) == expected


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deployer_gets_the_environments_serving_settings(synthesized: SynthesizedApp, env: str) -> None:
    config = _view(env)  # the model's serving settings over the environment's
    variables = _functions(synthesized, env)["lambdas.deployer.handler.start_deployment"]["Environment"]["Variables"]
    assert json.loads(variables["SERVING_SETTINGS"]) == to_plain(config.serving)
    assert variables["ENDPOINT_NAME"] == f"mlops-{env}-{MODEL}"
    # every environment deploys the model's versions from dev's registry
    assert variables["MODEL_PACKAGE_GROUP"] == f"mlops-dev-{MODEL}"
    assert variables["SERVED_STAGES"] == ",".join(config.serving.served_stages) == {
        "dev": "", "staging": "Staging", "prod": "Production"}[env]
    assert variables["EVENT_BUS_NAME"] == "default"  # results go to this account's bus
    assert json.loads(variables["SERVING_SETTINGS"])["deployment"]["strategy"] == (
        "ALL_AT_ONCE" if env == "dev" else "CANARY")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deployer_passes_only_the_model_role(synthesized: SynthesizedApp, env: str) -> None:
    synthesized.template(env, "serving").has_resource_properties("AWS::IAM::Policy", {
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Action": "iam:PassRole", "Resource": Match.any_value(),
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}})])}})


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_health_check_runs_on_its_schedule(synthesized: SynthesizedApp, env: str) -> None:
    """EventBridge Scheduler schedules: the health check's, and batch scoring's when serving.batch_schedule is
    set."""
    serving = _view(env).serving
    schedules = part_resources(synthesized, env, "serving", "AWS::Scheduler::Schedule")
    health = [s["Properties"] for path, s in schedules.items() if path.startswith("HealthCheckSchedule/")]
    assert [s["ScheduleExpression"] for s in health] == [serving.health_check_schedule] == ["rate(5 minutes)"]
    assert len(schedules) == 1 + (serving.batch_schedule is not None)
