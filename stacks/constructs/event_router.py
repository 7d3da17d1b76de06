"""The environment's event router: every per-model event reaches the model's own resource through one shared
rule per kind of event, so the rules on a bus do not grow with the models (EventBridge allows 300 rules per bus,
and 30 with wildcards: tests/infra/test_model_limits.py counts them).

A rule matches every model's events of its kind by pattern (a group-name prefix, the models' key prefixes) and
starts this Express state machine with ``{"kind": ..., "event": <the event>}``; the state machine reads the
model's name from the event (the promotion's ``detail.model``, the object key's second segment) and calls the
model's named resource: its deployer state machine (accepted promotions), its training pipeline (new training
data), its drift functions (captured objects, a sharded drift job's shard summaries). Those names are derived in
mlsettings.naming (``<project>-<env>-<model>`` + a suffix). The router's role may call exactly those names of this
environment and reads no data."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlsettings.config import EnvironmentConfig
from mlsettings.drift_partials import ENGINE_PARTIALS, ENGINE_PROCESSING
from mlsettings.naming import (
    DEPLOYER_SUFFIX,
    DRIFT_MONITOR_SUFFIX,
    DRIFT_PARTIALS_SUFFIX,
    TRAINING_SUFFIX,
    endpoint_name,
    group_prefix,
    model_name_prefix,
    model_prefixes,
)
from mlsettings.vocabulary import CAPTURE_PREFIX, PROMOTION_ACCEPTED, PROMOTION_SOURCE, REPORT_PREFIX
from stacks.constructs.lambda_function import log_retention
from stacks.constructs.nag import acknowledge, allow_wildcards
from stacks.constructs.queues import retried_delivery

PROMOTION, TRAINING_DATA, CAPTURED_OBJECT, SHARD_SUMMARY = "promotion", "training-data", "captured-object", \
    "shard-summary"
"""The kinds of event the router takes (``$.kind`` of its input)."""


@dataclass(frozen=True)
class RoutedBuckets:
    data: str
    capture: str
    artifact: str


def _model_segment() -> str:
    """The model (or endpoint) name in an object key: its second '/'-separated segment."""
    return sfn.JsonPath.array_get_item(sfn.JsonPath.string_split(sfn.JsonPath.string_at("$.event.detail.object.key"),
                                                                  "/"), 1)


class EventRouter(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey,
                 buckets: RoutedBuckets) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.config = config
        self.prefix = model_name_prefix(config)
        self._stack = stack
        self.rules: list[events.Rule] = []
        chain = sfn.Choice(self, "WhichEvent")
        chain.when(sfn.Condition.string_equals("$.kind", PROMOTION), self._start_deployer())
        chain.when(sfn.Condition.string_equals("$.kind", TRAINING_DATA), self._start_pipeline())
        chain.when(sfn.Condition.and_(sfn.Condition.string_equals("$.kind", CAPTURED_OBJECT),
                                      sfn.Condition.string_matches("$.event.detail.object.key", f"{CAPTURE_PREFIX}/*")),
                   self._invoke("CaptureOfTheEndpoint", "{}" + DRIFT_PARTIALS_SUFFIX))
        chain.when(sfn.Condition.string_equals("$.kind", CAPTURED_OBJECT),
                   self._invoke("PredictionLogOfTheModel", self.prefix + "{}" + DRIFT_PARTIALS_SUFFIX))
        chain.when(sfn.Condition.string_equals("$.kind", SHARD_SUMMARY),
                   self._invoke("ShardSummaryOfTheEndpoint", "{}" + DRIFT_MONITOR_SUFFIX))
        chain.otherwise(sfn.Fail(self, "UnknownKind", error="UnknownKind", cause="an event kind the router lacks"))
        log_group = logs.LogGroup(self, "Executions", encryption_key=key,
                                  retention=log_retention(config.lambda_.log_retention_days),
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
        self.machine = sfn.StateMachine(
            self, "Router", state_machine_type=sfn.StateMachineType.EXPRESS,
            definition_body=sfn.DefinitionBody.from_chainable(chain), tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ERROR, include_execution_data=True))
        acknowledge(self.machine, "AwsSolutions-SF1",
                    "An Express state machine run once per routed event (each captured object with the partials "
                    "engine): every failed routing is logged with its input (level ERROR, execution data) and "
                    "X-Ray traces every run; level ALL would log each event's payload at every state.")
        self._rules(config, key, buckets)
        allow_wildcards(self.machine, {
            "Resource::*": "CloudWatch Logs delivery and X-Ray actions of Step Functions support no resource ARNs.",
            f"Resource::arn:*:states:*:stateMachine:{self.prefix}*"
            f"{DEPLOYER_SUFFIX}": "Every model's deployer of this environment (named mlops-<env>-<model>-deployer).",
            f"Resource::arn:*:sagemaker:*:pipeline/{self.prefix}*"
            f"{TRAINING_SUFFIX}": "Every model's training pipeline of this environment.",
            f"Resource::arn:*:lambda:*:function:{self.prefix}*"
            f"{DRIFT_PARTIALS_SUFFIX}": "Every model's drift partials function of this environment.",
            f"Resource::arn:*:lambda:*:function:{self.prefix}*"
            f"{DRIFT_MONITOR_SUFFIX}": "Every model's drift monitor of this environment.",
        })

    def _name_arn(self, service: str, resource: str) -> str:
        stack = self._stack
        return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"

    def _start_deployer(self) -> sfn.IChainable:
        return tasks.CallAwsService(
            self, "StartTheModelsDeployer", service="sfn", action="startExecution", iam_action="states:StartExecution",
            parameters={"StateMachineArn": sfn.JsonPath.format(
                self._name_arn("states", f"stateMachine:{self.prefix}{{}}{DEPLOYER_SUFFIX}"),
                sfn.JsonPath.string_at("$.event.detail.model")),
                "Input": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.event"))},
            iam_resources=[self._name_arn("states", f"stateMachine:{self.prefix}*{DEPLOYER_SUFFIX}")],
            result_path=sfn.JsonPath.DISCARD).add_retry(errors=[sfn.Errors.ALL], max_attempts=3)

    def _start_pipeline(self) -> sfn.IChainable:
        return tasks.CallAwsService(
            self, "StartTheModelsPipeline", service="sagemaker", action="startPipelineExecution",
            iam_action="sagemaker:StartPipelineExecution",
            parameters={"PipelineName": sfn.JsonPath.format(f"{self.prefix}{{}}{TRAINING_SUFFIX}", _model_segment()),
                        "PipelineParameters": [{"Name": "GitCommit", "Value": "trigger:new-data"}]},
            iam_resources=[self._name_arn("sagemaker", f"pipeline/{self.prefix}*{TRAINING_SUFFIX}")],
            result_path=sfn.JsonPath.DISCARD).add_retry(errors=[sfn.Errors.ALL], max_attempts=3)

    def _invoke(self, construct_id: str, name_template: str) -> sfn.IChainable:
        """The model's function, asynchronously (its own retries and failure queue), with the event as it was."""
        suffix = name_template.rsplit("}", 1)[1]
        return tasks.CallAwsService(
            self, construct_id, service="lambda", action="invoke", iam_action="lambda:InvokeFunction",
            parameters={"FunctionName": sfn.JsonPath.format(name_template, _model_segment()),
                        "InvocationType": "Event",
                        "Payload": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.event"))},
            iam_resources=[self._name_arn("lambda", f"function:{self.prefix}*{suffix}")],
            result_path=sfn.JsonPath.DISCARD).add_retry(errors=[sfn.Errors.ALL], max_attempts=3)

    # ---------------------------------------------------------------------------------------------- rules
    def _rule(self, construct_id: str, description: str, kind: str, pattern: events.EventPattern,
              key: kms.IKey) -> None:
        self.rules.append(events.Rule(
            self, construct_id, description=description, event_pattern=pattern,
            targets=[targets.SfnStateMachine(
                self.machine,
                input=events.RuleTargetInput.from_object({"kind": kind, "event": events.EventField.from_path("$")}),
                **retried_delivery(self, f"{construct_id}DeadLetters", key=key,  # type: ignore[arg-type]
                                   purpose=f"the {kind} rule (events never routed)"))]))

    def _rules(self, config: EnvironmentConfig, key: kms.IKey, buckets: RoutedBuckets) -> None:
        views = [v for v in config.models if v.model is not None]
        if config.serving.served_stages and views:
            self._rule("AcceptedPromotions", "Every model's accepted promotion for the stages this environment "
                       "serves goes to the model's deployer", PROMOTION,
                       events.EventPattern(source=[PROMOTION_SOURCE], detail_type=[PROMOTION_ACCEPTED],
                                           detail={"model_package_group": [{"prefix": group_prefix(config)}],
                                                   "target_stage": list(config.serving.served_stages)}), key)
        retrained = [model_prefixes(v).training_data for v in views
                     if config.is_registry and v.training.retrain_on_new_data]
        if retrained:
            self._rule("NewTrainingData", "New training data of a model starts its pipeline", TRAINING_DATA,
                       _object_created(buckets.data, [{"prefix": p} for p in retrained]), key)
        partials = [p for v in views if v.monitoring.drift.engine == ENGINE_PARTIALS
                    for p in (f"{CAPTURE_PREFIX}/{endpoint_name(v)}/", model_prefixes(v).prediction_log)]
        if partials:
            self._rule("CapturedObjects", "Each captured object of a model (partials engine) is reduced by the "
                       "model's partials function", CAPTURED_OBJECT,
                       _object_created(buckets.capture, [{"prefix": p} for p in partials]), key)
        sharded = [{"wildcard": f"{REPORT_PREFIX}/{endpoint_name(v)}/*/shards/*.json"} for v in views
                   if v.monitoring.drift.engine == ENGINE_PROCESSING]
        if sharded:
            self._rule("ShardSummaries", "A sharded drift job's shard summary goes to the model's drift monitor, "
                       "which merges the window once every shard has landed", SHARD_SUMMARY,
                       _object_created(buckets.artifact, sharded), key)


def _object_created(bucket: str, keys: list[dict[str, str]]) -> events.EventPattern:
    return events.EventPattern(source=["aws.s3"], detail_type=["Object Created"],
                               detail={"bucket": {"name": [bucket]}, "object": {"key": keys}})
