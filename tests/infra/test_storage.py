"""The storage stack's contract, per environment: the key, the four buckets and their properties."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp


def _buckets(synthesized: SynthesizedApp, env: str) -> dict[str, dict[str, Any]]:
    return synthesized.template(env, "storage").find_resources("AWS::S3::Bucket")


def _by_logical_prefix(buckets: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    (found,) = [b for logical, b in buckets.items() if logical.startswith(prefix)]
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_exact_resource_counts(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "storage")
    template.resource_count_is("AWS::KMS::Key", 1)
    template.resource_count_is("AWS::S3::Bucket", 4)
    template.resource_count_is("AWS::S3::BucketPolicy", 4)
    template.resource_count_is("AWS::SSM::Parameter", 4)
    template.resource_count_is("AWS::Lambda::Function", 0)  # no custom-resource handlers sneak in


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_key_rotates(synthesized: SynthesizedApp, env: str) -> None:
    synthesized.template(env, "storage").has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("prefix", ["DataBucket", "ArtifactBucket", "CaptureBucket"])
def test_data_buckets_are_kms_encrypted_versioned_private_and_logged(
        synthesized: SynthesizedApp, env: str, prefix: str) -> None:
    props = _by_logical_prefix(_buckets(synthesized, env), prefix)["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "KMSMasterKeyID" in rule["ServerSideEncryptionByDefault"]
    assert rule["BucketKeyEnabled"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["LoggingConfiguration"]["LogFilePrefix"].endswith("/")
    assert "DestinationBucketName" in props["LoggingConfiguration"]
    assert props["LifecycleConfiguration"]["Rules"][0]["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_bucket_policy_denies_plain_http_and_old_tls(synthesized: SynthesizedApp, env: str) -> None:
    policies = synthesized.template(env, "storage").find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 4
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        conditions = [s["Condition"] for s in statements if s["Effect"] == "Deny"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


@pytest.mark.parametrize(("env", "policy"), [("dev", "Retain"), ("staging", "Retain"), ("prod", "Retain")])
def test_data_is_kept_on_stack_deletion_in_staging_and_prod(synthesized: SynthesizedApp, env: str,
                                                            policy: str) -> None:
    template = synthesized.template(env, "storage")
    for resource in [*template.find_resources("AWS::S3::Bucket").values(),
                     *template.find_resources("AWS::KMS::Key").values()]:
        assert resource["DeletionPolicy"] == policy


@pytest.mark.parametrize(("env", "days"), [("dev", 30), ("staging", 90), ("prod", 400)])
def test_capture_retention_comes_from_config(synthesized: SynthesizedApp, env: str, days: int) -> None:
    props = _by_logical_prefix(_buckets(synthesized, env), "CaptureBucket")["Properties"]
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == days


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_data_bucket_sends_events_to_eventbridge_natively(synthesized: SynthesizedApp, env: str) -> None:
    props = _by_logical_prefix(_buckets(synthesized, env), "DataBucket")["Properties"]
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_access_log_bucket_uses_sse_s3_because_log_delivery_requires_it(synthesized: SynthesizedApp,
                                                                        env: str) -> None:
    props = _by_logical_prefix(_buckets(synthesized, env), "AccessLogsBucket")["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert "LoggingConfiguration" not in props


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_names_are_published_for_the_cli(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "storage")
    for key in ("data-bucket", "artifact-bucket", "capture-bucket", "kms-key-arn"):
        template.has_resource_properties("AWS::SSM::Parameter", {"Name": f"/mlops/{env}/{key}",
                                                                  "Type": "String", "Value": Match.any_value()})


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alert_topics_are_encrypted_and_tls_only(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template(env, "alerting")
    template.resource_count_is("AWS::SNS::Topic", 2)
    for topic in template.find_resources("AWS::SNS::Topic").values():
        assert "KmsMasterKeyId" in topic["Properties"]
    for policy in template.find_resources("AWS::SNS::TopicPolicy").values():
        statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_alert_routing_from_config_with_secret_endpoints() -> None:
    """Subscriptions come from config; a credential-bearing URL is a Secrets Manager dynamic reference."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from mlsettings.config import parse_environment
    from stacks.alerting import AlertingStack

    config = parse_environment("dev", {"monitoring": {"alarms": {"page": {
        "emails": ["oncall@example.com"], "https_secret_names": ["mlops/pager-url"]}}}})
    app = cdk.App()
    key_stack = cdk.Stack(app, "Key")
    from aws_cdk import aws_kms as kms

    stack = AlertingStack(app, "Alerting", config=config, key=kms.Key(key_stack, "K"))
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SNS::Subscription", 2)
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"})
    template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "https", "Endpoint": "{{resolve:secretsmanager:mlops/pager-url:SecretString:::}}"})
