"""The training part of a model's stack (in the registry environment): the deployed definition is the builder's,
roles are scoped, triggers follow config (a Scheduler schedule per model; new data through the environment's shared
event router)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from mlsettings.config import load_environments
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.conftest import REGISTRY_ENVIRONMENTS, SynthesizedApp
from tests.infra.part_resources import part_resources


def _definition(synthesized: SynthesizedApp, env: str) -> dict[str, Any]:
    (pipeline,) = synthesized.template(env, "training").find_resources("AWS::SageMaker::Pipeline").values()
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    # Stack.to_json_string yields Fn::Join over literal JSON and tokens; the literal parts are enough here.
    text = ""
    for part in body["Fn::Join"][1]:
        if isinstance(part, str):
            text += part
        else:  # a token: a whole JSON value after ':' ',' '[', else a piece of a string
            text += '"TOKEN"' if text.rstrip()[-1:] in (":", ",", "[") else "TOKEN"
    return json.loads(text)


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_deployed_definition_has_every_step(synthesized: SynthesizedApp, env: str) -> None:
    definition = _definition(synthesized, env)
    names = [s["Name"] for s in definition["Steps"]]
    assert names == ["Validate", "Preprocess", "Train", "Evaluate", "QualityGate"]
    template = synthesized.template(env, "training")
    template.resource_count_is("AWS::SageMaker::Pipeline", 1)  # one per model stack
    template.has_resource_properties("AWS::SageMaker::Pipeline", {
        "PipelineName": f"mlops-{env}-{MODEL}-training",
        "PipelineDescription": Match.string_like_regexp(f"^Training of {MODEL} in {env}: ")})


@pytest.mark.parametrize(("env", "threshold"), [("dev", 0.95)])
def test_quality_threshold_comes_from_config(synthesized: SynthesizedApp, env: str, threshold: float) -> None:
    params = {p["Name"]: p for p in _definition(synthesized, env)["Parameters"]}
    assert params["QualityThreshold"]["DefaultValue"] == threshold
    assert params["TrainingInstanceType"]["DefaultValue"] == "ml.g5.xlarge"


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_every_type_a_consumer_deploys_or_transforms_with_is_registered(synthesized: SynthesizedApp,
                                                                        env: str) -> None:
    """The Register step lists the instance types of every environment that deploys from this registry (prod's
    ml.c5.xlarge, not only the registry environment's own), and the Train step's volume key follows the storage
    class of the configured training type (ml.g5.xlarge: local NVMe, no key; the API refuses one)."""
    from mlsettings.config import consumers_of
    from mlsettings.instance_types import has_local_storage

    configs = load_environments(sampled_project_context())
    servers = consumers_of(configs, configs[env])
    definition = _definition(synthesized, env)
    steps = {s["Name"]: s for s in definition["Steps"]}
    (register,) = [s for s in steps["QualityGate"]["Arguments"]["IfSteps"] if s["Type"] == "RegisterModel"]
    spec = register["Arguments"]["InferenceSpecification"]
    realtime = {c.serving.champion.instance_type for c in servers}
    realtime |= {c.serving.challenger.instance_type for c in servers if c.serving.challenger_enabled}
    assert sorted(realtime) == spec["SupportedRealtimeInferenceInstanceTypes"]
    assert "ml.c5.xlarge" in spec["SupportedRealtimeInferenceInstanceTypes"]
    assert sorted({c.serving.batch_instance_type for c in servers}) == spec["SupportedTransformInstanceTypes"]
    resources = steps["Train"]["Arguments"]["ResourceConfig"]
    assert ("VolumeKmsKeyId" in resources) is not has_local_storage(configs[env].training.instance_type)
    (parameter,) = [p for p in definition["Parameters"] if p["Name"] == "TrainingInstanceType"]
    assert configs[env].training.instance_type in parameter["EnumValues"]
    assert {has_local_storage(t) for t in parameter["EnumValues"]} == {True}


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_roles_are_assumed_by_sagemaker_only_and_pass_role_is_scoped(synthesized: SynthesizedApp,
                                                                       env: str) -> None:
    template = synthesized.template(env, "training")
    roles = part_resources(synthesized, env, "training", "AWS::IAM::Role")
    sagemaker_roles = [r for r in roles.values() if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
                       ["Principal"].get("Service") == "sagemaker.amazonaws.com"]
    assert len(sagemaker_roles) == 2
    assert all("ManagedPolicyArns" not in r["Properties"] for r in roles.values())
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": "iam:PassRole",
                           "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}})])}})


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_retraining_triggers_follow_config(synthesized: SynthesizedApp, env: str) -> None:
    """training.retrain_schedule: the model's own Scheduler schedule starts its pipeline; retrain_on_new_data: the
    shared router's rule lists the model's training prefix. Both start the pipeline with GitCommit=trigger:<why>,
    with retries and a dead-letter queue."""
    training = load_environments(sampled_project_context())[env].for_model(MODEL).training
    schedules = part_resources(synthesized, env, "training", "AWS::Scheduler::Schedule")
    assert len(schedules) == (training.retrain_schedule is not None)
    for schedule in schedules.values():
        props = schedule["Properties"]
        assert props["ScheduleExpression"] == training.retrain_schedule
        target = props["Target"]
        assert target["Arn"]["Fn::Join"][1][-1].endswith(":sagemaker:startPipelineExecution")
        assert json.loads(target["Input"]) == {"PipelineName": f"mlops-{env}-{MODEL}-training", "PipelineParameters": [
            {"Name": "GitCommit", "Value": "trigger:schedule"}]}
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    router_id, router = _router(synthesized, env)
    rules = synthesized.template(env, "registry").find_resources("AWS::Events::Rule").values()
    routed = [r["Properties"] for r in rules if {"prefix": f"training/{MODEL}/"} in
              r["Properties"]["EventPattern"].get("detail", {}).get("object", {}).get("key", [])]
    assert len(routed) == training.retrain_on_new_data
    for rule in routed:
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Ref": router_id}
        assert json.loads(target["InputTransformer"]["InputTemplate"].replace("<f1>", "{}"))["kind"] == "training-data"
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert "trigger:new-data" in json.dumps(router["Properties"]["DefinitionString"])


def _router(synthesized: SynthesizedApp, env: str) -> tuple[str, dict[str, Any]]:
    """The environment's event router (the Registry stack's one state machine): (logical id, resource)."""
    (found,) = synthesized.template(env, "registry").find_resources("AWS::StepFunctions::StateMachine").items()
    return found


def test_the_registry_retrains_on_new_data_under_the_training_prefix(synthesized: SynthesizedApp) -> None:
    """The router's rule matches the model's own prefix below training/, and the router starts the pipeline named
    after the key's model segment (training/<model>/...)."""
    synthesized.template("dev", "registry").has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({
            "source": ["aws.s3"], "detail-type": ["Object Created"],
            "detail": Match.object_like({"object": {"key": Match.array_with([{"prefix": f"training/{MODEL}/"}])}})}),
    })
    definition = json.dumps(_router(synthesized, "dev")[1]["Properties"]["DefinitionString"])
    assert ("States.Format('mlops-dev-{}-training', States.ArrayGetItem(States.StringSplit("
            "$.event.detail.object.key, '/'), 1))") in definition


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_registry_group_is_published(synthesized: SynthesizedApp, env: str) -> None:
    """The model's group is in the model's stack."""
    template = synthesized.template(env, "training")
    template.has_resource_properties("AWS::SageMaker::ModelPackageGroup",
                                     {"ModelPackageGroupName": f"mlops-{env}-{MODEL}"})
    template.has_resource_properties("AWS::SSM::Parameter",
                                     {"Name": f"/mlops/{env}/models/{MODEL}/model-package-group"})
