"""The registry stack: gate wiring (for every model's group), ledger, notices, the approver policies and the
environment's event router, per environment; each model's group is in the model's stack."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from mlsettings.config import load_environments
from mlsettings.drift_partials import ENGINE_PARTIALS, ENGINE_PROCESSING
from testkit.model_sample import sampled_project_context
from tests.infra.conftest import REGISTRY_ENVIRONMENTS, SynthesizedApp
from tests.infra.part_resources import resources_under


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_exact_resources(synthesized: SynthesizedApp, env: str) -> None:
    config = load_environments(sampled_project_context())[env]
    template = synthesized.template(env, "registry")
    template.resource_count_is("AWS::SageMaker::ModelPackageGroup", 0)  # each in its model's stack:
    synthesized.template(env, "training").resource_count_is("AWS::SageMaker::ModelPackageGroup", 1)
    template.resource_count_is("AWS::DynamoDB::Table", 2)
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.resource_count_is("AWS::SNS::Topic", 1)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 2)
    # the gate's: package state changes, deployment results; the router's: one per kind of event some model of
    # the environment needs (by pattern, not per model)
    routed = {path.split("/")[0] for path in resources_under(
        synthesized.stages[env].registry.router, template, "AWS::Events::Rule")}
    engines = {view.monitoring.drift.engine for view in config.models}
    assert routed == {name for name, needed in (
        ("AcceptedPromotions", bool(config.serving.served_stages)),
        ("NewTrainingData", config.is_registry and any(view.training.retrain_on_new_data for view in config.models)),
        ("CapturedObjects", ENGINE_PARTIALS in engines),
        ("ShardSummaries", ENGINE_PROCESSING in engines)) if needed}
    template.resource_count_is("AWS::Events::Rule", 2 + len(routed))


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_ledger_is_encrypted_recoverable_and_never_expires(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "registry")
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
        "TimeToLiveSpecification": Match.absent(),
    })
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
    })


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_state_changes_of_the_group_reach_the_gate_with_retries_and_a_dlq(synthesized: SynthesizedApp,
                                                                          env: str) -> None:
    template = synthesized.template(env, "registry")
    template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
                         "detail": {"ModelPackageGroupName": [{"prefix": f"mlops-{env}-"}]}},
        "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value(),
                                       "RetryPolicy": {"MaximumRetryAttempts": 8,
                                                       "MaximumEventAgeInSeconds": 7200}})],
    })
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "lambdas.promotion_gate.handler.handler",
        "Environment": {"Variables": Match.object_like({
            "MODEL_PACKAGE_GROUP_PREFIX": f"mlops-{env}-", "EVENT_BUS_NAME": "default",
            "LEDGER_TABLE": Match.any_value(), "IDEMPOTENCY_TABLE": Match.any_value(),
            "PROMOTION_TOPIC_ARN": Match.any_value()})},
    })
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 2})
    # the prefix covers every model's group, MODEL's included
    (group,) = synthesized.template(env, "training").find_resources("AWS::SageMaker::ModelPackageGroup").values()
    assert group["Properties"]["ModelPackageGroupName"].startswith(f"mlops-{env}-")


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_gate_may_update_only_its_groups_packages(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "registry")
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": ["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                           "Resource": {"Fn::Join": ["", Match.array_with(
                               [Match.string_like_regexp(f"model-package/mlops-{env}-\\*/\\*")])]}}),
        Match.object_like({"Action": "events:PutEvents"}),
    ])}})


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_approver_policies_use_lifecycle_condition_keys(synthesized: SynthesizedApp, env: str) -> None:
    policies = synthesized.template(env, "registry").find_resources("AWS::IAM::ManagedPolicy")
    by_description = {p["Properties"]["Description"]: p["Properties"]["PolicyDocument"]["Statement"]
                      for p in policies.values()}
    staging = by_description["Approve and stage model packages in Studio up to Staging"]
    production = by_description["Approve and stage model packages in Studio up to Production"]
    deny_production = {"StringEquals": {"sagemaker:ModelLifeCycle:stage": "Production"}}
    deny_deployer = {"StringEquals": {"sagemaker:ModelLifeCycle:stageStatus": ["Deployed", "DeployFailed"]}}
    assert any(s["Effect"] == "Deny" and s.get("Condition") == deny_production for s in staging)
    assert not any(s.get("Condition") == deny_production for s in production)
    for statements in (staging, production):
        assert any(s["Effect"] == "Deny" and s.get("Condition") == deny_deployer for s in statements)
        assert any(s["Effect"] == "Deny" and "sagemaker:DeleteModelPackage" in s["Action"] for s in statements)

