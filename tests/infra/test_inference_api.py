"""The inference API stack: HTTP API with IAM auth, the light Lambda, breaker/cache tables, the prediction log."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from testkit.serving_world import MODEL
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp
from tests.infra.part_resources import part_count


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_exact_resources(synthesized: SynthesizedApp, env: str) -> None:
    """The part's own resources (the model's stack also holds its other parts)."""
    for resource_type, count in (("AWS::ApiGatewayV2::Api", 1), ("AWS::ApiGatewayV2::Route", 1),
                                 ("AWS::Lambda::Function", 1), ("AWS::DynamoDB::Table", 2),
                                 ("AWS::KinesisFirehose::DeliveryStream", 1)):
        assert part_count(synthesized, env, "inference_api", resource_type) == count, resource_type


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_route_requires_iam_and_stage_logs_and_throttles(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "inference_api")
    template.has_resource_properties("AWS::ApiGatewayV2::Route",
                                     {"RouteKey": "POST /predict", "AuthorizationType": "AWS_IAM"})
    template.has_resource_properties("AWS::ApiGatewayV2::Stage", {
        "StageName": "$default", "AutoDeploy": True,
        "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("requestId")},
        "DefaultRouteSettings": Match.object_like({"ThrottlingRateLimit": Match.any_value(),
                                                   "DetailedMetricsEnabled": True}),
    })


@pytest.mark.parametrize(("env", "read_timeout"), [("dev", "1"), ("staging", "1"), ("prod", "1")])
def test_function_settings_come_from_config(synthesized: SynthesizedApp, env: str, read_timeout: str) -> None:
    synthesized.template(env, "inference_api").has_resource_properties("AWS::Lambda::Function", {
        "Handler": "lambdas.inference.handler.handler",
        "Environment": {"Variables": Match.object_like({
            "ENDPOINT_NAME": f"mlops-{env}-{MODEL}",
            "DATA_SCHEMA_PATH": "pipelines/schemas/breast_cancer.json",
            "ENDPOINT_READ_TIMEOUT_SECONDS": read_timeout,
            "ENDPOINT_MAX_ATTEMPTS": "2",
            "BREAKER_FAILURE_THRESHOLD": "5",
            "SAFE_DEFAULT_PROBABILITY": "0.5",
            "FALLBACK_MODEL_KEY": f"serving/{MODEL}/fallback_model.json",
            "BREAKER_TABLE_NAME": Match.any_value(), "RESPONSE_CACHE_TABLE_NAME": Match.any_value(),
            "PREDICTION_LOG_STREAM_NAME": Match.any_value()})},
    })


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tables_keys_ttl_and_encryption(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "inference_api")
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "KeySchema": [{"AttributeName": "breaker_id", "KeyType": "HASH"}],
        "SSESpecification": Match.object_like({"SSEType": "KMS"})})
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "KeySchema": [{"AttributeName": "cache_key", "KeyType": "HASH"}],
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        "SSESpecification": Match.object_like({"SSEType": "KMS"})})


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_prediction_log_lands_encrypted_under_its_own_prefix(synthesized: SynthesizedApp, env: str) -> None:
    synthesized.template(env, "inference_api").has_resource_properties("AWS::KinesisFirehose::DeliveryStream", {
        "DeliveryStreamType": "DirectPut",
        "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": Match.any_value()},
        "ExtendedS3DestinationConfiguration": Match.object_like({
            "Prefix": f"inference-api/{MODEL}/!{{timestamp:yyyy/MM/dd/HH}}/",
            "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": Match.any_value()}}}),
    })


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_function_permissions_are_exact(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "inference_api")
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": "sagemaker:InvokeEndpoint",
                           "Resource": {"Fn::Join": ["", Match.array_with([f":endpoint/mlops-{env}-{MODEL}"])]}}),
        Match.object_like({"Action": ["dynamodb:GetItem", "dynamodb:PutItem"]}),
        Match.object_like({"Action": ["firehose:PutRecord", "firehose:PutRecordBatch"]}),
    ])}})
