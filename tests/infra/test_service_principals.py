"""Who delivers to whom: every edge where an AWS service writes into one of our resources, derived from the
synthesized templates, evaluated against the receiving resource's policy with the request context the
service actually sends. moto never runs alarm actions or EventBridge deliveries, so only this test sees a
topic, queue, key or bucket policy that would refuse them.

The request context per edge, and where AWS documents it:
- CloudWatch alarm → SNS topic: principal cloudwatch.amazonaws.com, aws:SourceArn = the alarm's ARN and
  aws:SourceAccount (SNS Developer Guide, "Example cases for Amazon SNS access control": CloudWatch alarms;
  re:Post "cloudwatch-receive-sns-for-alarm-trigger" shows the ArnLike aws:SourceArn form). An encrypted
  topic also needs kms:GenerateDataKey*/kms:Decrypt for the same principal in the key policy (SNS Developer
  Guide, "Key management": compatibility between event sources from AWS services and encrypted topics).
- EventBridge → SQS dead-letter queue: principal events.amazonaws.com with aws:SourceArn = the rule's ARN
  (EventBridge User Guide, "Using resource-based policies", Amazon SQS permissions, and "Event retry policy
  and using dead-letter queues"). For the queue's KMS key, the SQS Developer Guide ("Key management",
  configure KMS permissions for AWS services) and the SNS one (event sources and encrypted topics) give the
  service principal kms:GenerateDataKey/kms:Decrypt without source conditions; no AWS page documents that
  EventBridge's KMS request carries aws:SourceAccount or aws:SourceArn (AWS's MDAA constructs say the SNS
  guide lists them as unsupported for EventBridge). The KMS request is therefore modelled with no
  aws:Source* keys: a key statement that requires them refuses the delivery.
- EventBridge → Lambda: an AWS::Lambda::Permission for events.amazonaws.com with the rule as SourceArn.
- EventBridge → Step Functions / SageMaker pipeline: the target's role trusts events.amazonaws.com and
  allows states:StartExecution / sagemaker:StartPipelineExecution on the target.
- CloudWatch Logs → KMS-encrypted log group: principal logs.<region>.amazonaws.com with
  kms:EncryptionContext:aws:logs:arn = the log group's ARN (CloudWatch Logs User Guide, "Encrypt log data
  in CloudWatch Logs using AWS KMS").
- S3 server access logging → log bucket: principal logging.s3.amazonaws.com, s3:PutObject, aws:SourceArn =
  the source bucket, aws:SourceAccount (S3 User Guide, "Permissions for log delivery").
- Lambda asynchronous failures → SQS: the function's execution role (identity policy) sends to the queue;
  the queue's key must let that role use it (the key policy delegates to IAM through the account root).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from tests.infra.cloud_model import Resource, Stage, evaluate
from tests.infra.conftest import TOPOLOGIES, SynthesizedApp, topology_stages

TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.2"}


@dataclass(frozen=True)
class Edge:
    """One delivery: who calls what on which resource, and which policies decide."""

    name: str
    caller: Mapping[str, str]
    action: str
    resource: str
    context: Mapping[str, Any]
    policies: tuple[Mapping[str, Any], ...]
    missing_policy: str | None = None

    def verdict(self) -> str:
        if self.missing_policy:
            return f"no policy: {self.missing_policy}"
        return evaluate(list(self.policies), caller=self.caller, action=self.action, resource=self.resource,
                        context=self.context)


@pytest.fixture(scope="module")
def stages(synthesized: SynthesizedApp, three_accounts: SynthesizedApp) -> dict[str, Stage]:
    """Every environment as shipped, and in its own account."""
    return topology_stages(synthesized, three_accounts)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- helpers
def _policy_for(stage: Stage, policy_type: str, list_key: str, target: str) -> list[Mapping[str, Any]]:
    """The resource policies of ``policy_type`` whose ``list_key`` (Topics, Queues, Bucket) names ``target``."""
    found = []
    for policy in stage.resources(policy_type):
        named = stage.resolve(policy.stack, policy.properties[list_key])
        if target in (named if isinstance(named, list) else [named]):
            found.append(stage.resolve(policy.stack, policy.properties["PolicyDocument"]))
    return found


def _key_policy(stage: Stage, key_reference: str) -> tuple[str, list[Mapping[str, Any]]] | None:
    """(key ARN, key policy) of the customer-managed key a KmsMasterKeyId/KmsKeyId resolves to, or None for
    an AWS managed key."""
    for key in stage.resources("AWS::KMS::Key"):
        arn = stage.resolve(key.stack, {"Fn::GetAtt": [key.logical_id, "Arn"]})
        key_id = stage.resolve(key.stack, {"Ref": key.logical_id})
        if key_reference in (arn, key_id):
            return arn, [stage.resolve(key.stack, key.properties["KeyPolicy"])]
    return None


def _arn_of(stage: Stage, resource: Resource) -> str:
    return str(stage.resolve(resource.stack, {"Fn::GetAtt": [resource.logical_id, "Arn"]}))


def _kms_edges(stage: Stage, name: str, key_reference: Any, caller: Mapping[str, str],
               context: Mapping[str, Any], actions: tuple[str, ...]) -> Iterator[Edge]:
    key = _key_policy(stage, key_reference) if isinstance(key_reference, str) else None
    if key is None:  # unencrypted, SSE-SQS/SSE-S3 or an AWS managed key: nothing of ours decides
        return
    arn, policy = key
    for action in actions:
        yield Edge(f"{name} → KMS {action}", caller, action, arn, context, tuple(policy))


# ----------------------------------------------------------------------------------------------- edges
def alarm_edges(stage: Stage) -> Iterator[Edge]:
    for alarm in stage.resources("AWS::CloudWatch::Alarm"):
        alarm_arn = _arn_of(stage, alarm)
        context = {"aws:SourceAccount": stage.account, "aws:SourceArn": alarm_arn, **TLS}
        caller = {"Service": "cloudwatch.amazonaws.com"}
        for kind in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for target in stage.resolve(alarm.stack, alarm.properties.get(kind, [])):
                assert target.startswith(f"arn:aws:sns:{stage.region}:"), f"{alarm.logical_id}: {target}"
                topic = stage.find(target, "AWS::SNS::Topic")
                name = f"{alarm.stack}/{alarm.logical_id} {kind} → {topic.logical_id}"
                policies = _policy_for(stage, "AWS::SNS::TopicPolicy", "Topics", target)
                yield Edge(name, caller, "sns:Publish", target, context, tuple(policies),
                           None if policies else "the topic keeps SNS's default policy (not modelled)")
                yield from _kms_edges(stage, name, stage.resolve(topic.stack, topic.properties.get("KmsMasterKeyId")),
                                      caller, context, ("kms:GenerateDataKey", "kms:Decrypt"))


def rule_edges(stage: Stage) -> Iterator[Edge]:
    caller = {"Service": "events.amazonaws.com"}
    for rule in stage.resources("AWS::Events::Rule"):
        rule_arn = _arn_of(stage, rule)
        context = {"aws:SourceAccount": stage.account, "aws:SourceArn": rule_arn, **TLS}
        for target in rule.properties.get("Targets", []):
            target_arn = stage.resolve(rule.stack, target["Arn"])
            name = f"{rule.stack}/{rule.logical_id} → {target['Id']}"
            if ":lambda:" in target_arn:
                permissions = [p for p in stage.resources("AWS::Lambda::Permission")
                               if stage.resolve(p.stack, p.properties["FunctionName"]) == target_arn]
                documents = [{"Statement": [{
                    "Effect": "Allow", "Principal": {"Service": p.properties["Principal"]},
                    "Action": p.properties["Action"], "Resource": target_arn,
                    **({"Condition": {"ArnLike": {"aws:SourceArn": stage.resolve(p.stack, p.properties["SourceArn"])}}}
                       if "SourceArn" in p.properties else {})}]} for p in permissions]
                yield Edge(name, caller, "lambda:InvokeFunction", target_arn, context, tuple(documents))
            else:
                # a bus target is another account's bus (the receiving bus policy: tests/infra/test_accounts.py)
                action = {"states": "states:StartExecution", "sagemaker": "sagemaker:StartPipelineExecution",
                          "events": "events:PutEvents"}[target_arn.split(":")[2]]
                role, documents = stage.role_documents(stage.resolve(rule.stack, target["RoleArn"]))
                trust = stage.resolve(role.stack, role.properties["AssumeRolePolicyDocument"])
                yield Edge(f"{name} (trust)", caller, "sts:AssumeRole", _arn_of(stage, role), context, (trust,))
                yield Edge(name, {"AWS": _arn_of(stage, role)}, action, target_arn, {}, tuple(documents))
            if "DeadLetterConfig" in target:
                queue_arn = stage.resolve(rule.stack, target["DeadLetterConfig"]["Arn"])
                queue = stage.find(queue_arn, "AWS::SQS::Queue")
                queue_url = stage.resolve(queue.stack, {"Ref": queue.logical_id})
                dlq = f"{name} dead letters → {queue.logical_id}"
                yield Edge(dlq, caller, "sqs:SendMessage", queue_arn, context,
                           tuple(_policy_for(stage, "AWS::SQS::QueuePolicy", "Queues", queue_url)))
                # EventBridge sends no aws:Source* keys to KMS (see the module docstring).
                yield from _kms_edges(stage, dlq, stage.resolve(queue.stack, queue.properties.get("KmsMasterKeyId")),
                                      caller, {}, ("kms:GenerateDataKey", "kms:Decrypt"))


def log_group_edges(stage: Stage) -> Iterator[Edge]:
    caller = {"Service": f"logs.{stage.region}.amazonaws.com"}
    for group in stage.resources("AWS::Logs::LogGroup"):
        arn = _arn_of(stage, group).removesuffix(":*")
        context = {"kms:EncryptionContext:aws:logs:arn": arn}
        yield from _kms_edges(stage, f"{group.stack}/{group.logical_id} logs",
                              stage.resolve(group.stack, group.properties.get("KmsKeyId")), caller, context,
                              ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"))


def access_log_edges(stage: Stage) -> Iterator[Edge]:
    caller = {"Service": "logging.s3.amazonaws.com"}
    for bucket in stage.resources("AWS::S3::Bucket"):
        logging = bucket.properties.get("LoggingConfiguration")
        if not logging:
            continue
        target = stage.resolve(bucket.stack, logging["DestinationBucketName"])
        key = f"arn:aws:s3:::{target}/{logging.get('LogFilePrefix', '')}2026-12-01-00-00-00-EXAMPLE"
        context = {"aws:SourceAccount": stage.account, "aws:SourceArn": _arn_of(stage, bucket), **TLS}
        yield Edge(f"{bucket.stack}/{bucket.logical_id} access logs → {target}", caller, "s3:PutObject", key,
                   context, tuple(_policy_for(stage, "AWS::S3::BucketPolicy", "Bucket", target)))


def function_failure_edges(stage: Stage) -> Iterator[Edge]:
    """Lambda sends an asynchronous invocation's failure (DLQ and on-failure destination) as the function's
    execution role."""
    for function in stage.resources("AWS::Lambda::Function"):
        queues = []
        if "DeadLetterConfig" in function.properties:
            queues.append(stage.resolve(function.stack, function.properties["DeadLetterConfig"]["TargetArn"]))
        function_arn = _arn_of(stage, function)
        for config in stage.resources("AWS::Lambda::EventInvokeConfig"):
            if stage.resolve(config.stack, config.properties["FunctionName"]) in (function_arn,
                                                                                  function_arn.split(":")[-1]):
                destination = config.properties.get("DestinationConfig", {}).get("OnFailure")
                if destination:
                    queues.append(stage.resolve(config.stack, destination["Destination"]))
        if not queues:
            continue
        role_arn = stage.resolve(function.stack, function.properties["Role"])
        _, identity = stage.role_documents(role_arn)
        caller = {"AWS": role_arn}
        for queue_arn in dict.fromkeys(queues):
            queue = stage.find(queue_arn, "AWS::SQS::Queue")
            name = f"{function.stack}/{function.logical_id} failures → {queue.logical_id}"
            queue_url = stage.resolve(queue.stack, {"Ref": queue.logical_id})
            resource_policies = _policy_for(stage, "AWS::SQS::QueuePolicy", "Queues", queue_url)
            yield Edge(f"{name} (identity)", caller, "sqs:SendMessage", queue_arn, TLS, tuple(identity))
            # Same account: the identity policy allows, so only an explicit Deny in the queue policy refuses.
            denies = tuple({"Statement": [s for s in d["Statement"] if s["Effect"] == "Deny"]}
                           for d in resource_policies)
            allow_all = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            yield Edge(f"{name} (queue policy)", caller, "sqs:SendMessage", queue_arn, TLS, (*denies, allow_all))
            key = _key_policy(stage, stage.resolve(queue.stack, queue.properties.get("KmsMasterKeyId")))
            if key is not None:
                key_arn, key_policy = key
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    # Both must allow: the key policy (here through the account root) and the role's policy.
                    yield Edge(f"{name} → KMS {action} (key policy)", {"AWS": f"arn:aws:iam::{stage.account}:root"},
                               action, key_arn, {}, tuple(key_policy))
                    yield Edge(f"{name} → KMS {action} (identity)", caller, action, key_arn, {}, tuple(identity))


EDGE_KINDS = {"alarm actions": alarm_edges, "event rules": rule_edges, "encrypted log groups": log_group_edges,
              "server access logs": access_log_edges, "function failures": function_failure_edges}


def all_edges(stage: Stage) -> list[Edge]:
    return [edge for builder in EDGE_KINDS.values() for edge in builder(stage)]


# ----------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("env", TOPOLOGIES)
@pytest.mark.parametrize("kind", list(EDGE_KINDS))
def test_every_service_delivery_is_allowed_by_the_receiving_policy(stages: dict[str, Stage], env: str,
                                                                   kind: str) -> None:
    edges = list(EDGE_KINDS[kind](stages[env]))
    assert edges, f"{env} has no {kind}: the edge finder is broken"
    refused = [f"{edge.name}: {edge.action} on {edge.resource} is {edge.verdict()}"
               for edge in edges if edge.verdict() != "allow"]
    assert refused == []


@pytest.mark.parametrize("env", TOPOLOGIES)
def test_alarm_topics_allow_only_this_accounts_alarms_over_tls(stages: dict[str, Stage], env: str) -> None:
    """The allowance is conditioned: an alarm of another account, or a publish without TLS, is refused."""
    edges = [e for e in alarm_edges(stages[env]) if e.action == "sns:Publish"]
    assert edges
    for edge in edges:
        foreign = {**edge.context, "aws:SourceAccount": "999988887777",
                   "aws:SourceArn": edge.context["aws:SourceArn"].replace(stages[env].account, "999988887777")}
        assert evaluate(list(edge.policies), caller=edge.caller, action=edge.action, resource=edge.resource,
                        context=foreign) == "implicit", edge.name
        plain = {**edge.context, "aws:SecureTransport": "false"}
        assert evaluate(list(edge.policies), caller=edge.caller, action=edge.action, resource=edge.resource,
                        context=plain) == "deny", edge.name


@pytest.mark.parametrize("env", TOPOLOGIES)
def test_rule_dead_letter_queues_accept_only_their_own_rules(stages: dict[str, Stage], env: str) -> None:
    """Confused-deputy guard: a rule that is not the queue's (same service principal) cannot send to it."""
    edges = [e for e in rule_edges(stages[env]) if e.action == "sqs:SendMessage"]
    assert edges
    for edge in edges:
        other = {**edge.context,
                 "aws:SourceArn": f"arn:aws:events:{stages[env].region}:{stages[env].account}:rule/other"}
        assert evaluate(list(edge.policies), caller=edge.caller, action=edge.action, resource=edge.resource,
                        context=other) == "implicit", edge.name
