"""The registry stack: group, gate wiring, ledger, notices and the approver policies, per environment."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import REGISTRY_ENVIRONMENTS, SynthesizedApp


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_exact_resources(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "registry")
    template.resource_count_is("AWS::SageMaker::ModelPackageGroup", 1)
    template.resource_count_is("AWS::DynamoDB::Table", 2)
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.resource_count_is("AWS::Events::Rule", 2)  # package state changes, deployment results
    template.resource_count_is("AWS::SNS::Topic", 1)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 2)


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
                         "detail": {"ModelPackageGroupName": [f"mlops-{env}-models"]}},
        "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value(),
                                       "RetryPolicy": {"MaximumRetryAttempts": 8,
                                                       "MaximumEventAgeInSeconds": 7200}})],
    })
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "lambdas.promotion_gate.handler.handler",
        "Environment": {"Variables": Match.object_like({
            "MODEL_PACKAGE_GROUP": f"mlops-{env}-models", "EVENT_BUS_NAME": "default",
            "LEDGER_TABLE": Match.any_value(), "IDEMPOTENCY_TABLE": Match.any_value(),
            "PROMOTION_TOPIC_ARN": Match.any_value()})},
    })
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 2})


@pytest.mark.parametrize("env", REGISTRY_ENVIRONMENTS)
def test_gate_may_update_only_its_groups_packages(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "registry")
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": ["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                           "Resource": {"Fn::Join": ["", Match.array_with(
                               [Match.string_like_regexp(f"model-package/mlops-{env}-models/\\*")])]}}),
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

