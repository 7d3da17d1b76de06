"""Serving: the deployer (a Step Functions state machine over four Lambda tasks) that turns accepted
promotions into blue/green endpoint updates with auto-rollback, the endpoint's execution role, the
per-variant rollback alarms, the scheduled health check and batch scoring.

The endpoint itself is created and updated by the deployer, not by CloudFormation: blue/green updates,
auto-rollback and autoscaling registration all act on a live endpoint (FACTS.md), and a CloudFormation
update would replace what the deployer rolled out."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mlsettings.config import DEPLOYER_TASK_CONCURRENCY, EnvironmentConfig
from mlsettings.functions.contracts import BatchScoringEnvironment, DeployerEnvironment, HealthCheckEnvironment
from mlsettings.naming import (
    consumer_role_name,
    deployer_state_machine_name,
    endpoint_name,
    model_prefixes,
    rollback_alarm_name,
)
from mlsettings.vocabulary import (
    CAPTURE_PREFIX,
    CHALLENGER,
    CHAMPION,
    RESULT_SOURCE,
    STATUS_DEPLOYED,
    Published,
)
from pipelines.images import FRAMEWORK_IMAGES
from stacks.constructs.cross_account import IMAGE_PULL_ACTIONS, registry_allowances
from stacks.constructs.kms_grants import grant_kms_for_aws_resources
from stacks.constructs.lambda_function import MlopsFunction, log_retention, shared_execution_role
from stacks.constructs.model_source import ModelSource
from stacks.constructs.nag import allow_wildcards
from stacks.constructs.part import StackPart
from stacks.constructs.prefix_grants import grant_prefix_read
from stacks.constructs.published_names import publish_model_name
from stacks.constructs.queues import dead_letter_queue
from stacks.constructs.schedules import lambda_schedule

VARIANTS = (CHAMPION, CHALLENGER)
LAMBDA_RETRY_ERRORS = ("Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                       "Lambda.TooManyRequestsException")


class ServingPart(StackPart):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey,
                 artifact_bucket: s3.IBucket, capture_bucket: s3.IBucket, models: ModelSource,
                 alarm_topic: sns.ITopic) -> None:
        """``config``: the model's view of the environment; ``models``: where the registered versions live (the
        registry environment, maybe another account)."""
        super().__init__(scope, construct_id, config=config)
        self.endpoint_name = endpoint_name(config)
        self.prefixes = model_prefixes(config)
        assert config.model is not None
        self.parameters = Published.model_prefix(config.name, config.model.name)
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        endpoint_arns = [f"{arn}:endpoint/{self.endpoint_name}", f"{arn}:endpoint-config/{self.endpoint_name}-*",
                         f"{arn}:model/{self.endpoint_name}-*"]
        self.model_role = self._model_role(config, key, capture_bucket, models)
        # Rollback alarms: SageMaker watches them during a blue/green update; they page nobody.
        self.rollback_alarms = self._rollback_alarms(config)
        self.model_role.add_to_policy(iam.PolicyStatement(
            sid="RollbackAlarmStates", actions=["cloudwatch:DescribeAlarms"],
            resources=[a.alarm_arn for a in self.rollback_alarms]))
        deployer_role = self._deployer(config, key, artifact_bucket, capture_bucket, models, endpoint_arns)
        schedule_dead_letters = dead_letter_queue(self, "ScheduleDeadLetters", key=key,
                                                  purpose="the health-check and batch schedules")
        health_role = self._health_check(config, key, models, endpoint_arns, alarm_topic, schedule_dead_letters)
        batch = self._batch_scoring(config, key, capture_bucket, arn, endpoint_arns, alarm_topic,
                                    schedule_dead_letters)
        for key_name, value in (
            (Published.ENDPOINT_NAME, self.endpoint_name),
            (Published.CAPTURE_DESTINATION_URI, f"s3://{capture_bucket.bucket_name}/{CAPTURE_PREFIX}"),
            (Published.GROUND_TRUTH_URI, f"s3://{capture_bucket.bucket_name}/{self.prefixes.ground_truth}"),
            (Published.BATCH_SCORING_FUNCTION, batch.function_name),
            (Published.DEPLOYER_STATE_MACHINE_ARN, self.state_machine.state_machine_arn),
        ):
            publish_model_name(self, config, key=key_name, value=value)
        self._allowances(deployer_role, health_role)

    def _model_role(self, config: EnvironmentConfig, key: kms.IKey, capture_bucket: s3.IBucket,
                    models: ModelSource) -> iam.Role:
        """The role the model containers run as (CreateModel ExecutionRoleArn)."""
        role = iam.Role(self, "ModelExecutionRole",
                                   assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                                   role_name=consumer_role_name(config, "model"),
                                   description=f"Model containers of {self.endpoint_name} and batch transform")
        models.grant(role, "model")
        # SageMaker writes an endpoint's data capture below <destination>/<endpoint name>/.
        capture_bucket.grant_put(role, f"{CAPTURE_PREFIX}/{self.endpoint_name}/*")
        grant_prefix_read(capture_bucket, role, [f"{self.prefixes.batch}input/*"])
        capture_bucket.grant_put(role, f"{self.prefixes.batch}*")
        key.grant_encrypt_decrypt(role)
        # Every framework image a version of the model may name (a rollback may reach a version trained before the
        # model changed its kind of training code): SageMaker's own public repositories, in this region's account.
        # API reference, CreateModel ExecutionRoleArn: the role SageMaker assumes "to access model artifacts and docker
        # image for deployment on ML compute instances or for batch transform jobs"; Developer Guide, "How to use
        # SageMaker AI execution roles", "CreateModel API: Execution Role Permissions".
        role.add_to_policy(iam.PolicyStatement(
            sid="PullTheFrameworkImages",
            actions=list(IMAGE_PULL_ACTIONS),
            resources=[f"arn:{self.partition}:ecr:{self.region}:{image.accounts.get(config.region, '')}:"
                       f"repository/{image.repository}" for image in FRAMEWORK_IMAGES]))
        role.add_to_policy(iam.PolicyStatement(
            sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        if config.network.subnet_ids:
            # The model's containers get network interfaces in the configured subnets.
            role.add_to_policy(iam.PolicyStatement(
                sid="ModelNetworkInterfacesInTheVpc",
                actions=["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                         "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission",
                         "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions",
                         "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"],
                resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="ContainerLogsAndMetrics",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/*"]))

        return role

    def _deployer(self, config: EnvironmentConfig, key: kms.IKey, artifact_bucket: s3.IBucket,
                  capture_bucket: s3.IBucket, models: ModelSource, endpoint_arns: list[str]) -> iam.Role:
        """The deployer: four tasks, one purpose, one role; started by the promotions this environment serves."""
        deployer_role = shared_execution_role(self, "DeployerRole", role_name=consumer_role_name(config, "deployer"),
                                              description="The serving deployer's state-machine tasks")
        environment = DeployerEnvironment.for_config(
            config, model_execution_role_arn=self.model_role.role_arn, artifact_bucket=artifact_bucket.bucket_name,
            capture_bucket=capture_bucket.bucket_name, kms_key_arn=key.key_arn)
        self.deployer_tasks = {
            name: MlopsFunction(
                self, construct_id_, source="deployer", handler_function=name, role=deployer_role,
                description=f"Deployer task: {name.replace('_', ' ')}", memory_size=memory,
                timeout=cdk.Duration.seconds(timeout), settings=config.lambda_, key=key,
                reserved_concurrency=DEPLOYER_TASK_CONCURRENCY, environment=environment)
            for name, construct_id_, memory, timeout in (
                ("start_deployment", "StartDeployment", 256, 60),
                ("check_deployment", "CheckDeployment", 256, 30),
                ("verify_and_record", "VerifyAndRecord", 512, 120),
                ("record_failure", "RecordFailure", 256, 60),
            )
        }
        self._deployer_permissions(deployer_role, config=config, key=key, artifact_bucket=artifact_bucket,
                                   models=models, endpoint_arns=endpoint_arns)
        self.state_machine = self._state_machine(config, key)
        # Accepted promotions reach this state machine through the environment's event router (one rule for
        # every model: stacks/constructs/event_router.py), which starts it by its name.

        return deployer_role

    def _health_check(self, config: EnvironmentConfig, key: kms.IKey, models: ModelSource, endpoint_arns: list[str],
                      alarm_topic: sns.ITopic, schedule_dead_letters: sqs.IQueue) -> iam.Role:
        """Every variant answers its golden payloads correctly, on a schedule."""
        health_role = shared_execution_role(self, "HealthCheckRole",
                                            role_name=consumer_role_name(config, "health-check"),
                                            description="The scheduled golden-payload health check")
        self.health_check = MlopsFunction(
            self, "HealthCheck", source="health_check", description="Golden-payload health check per variant",
            role=health_role,
            memory_size=256, timeout=cdk.Duration.seconds(60), settings=config.lambda_, key=key,
            asynchronous=True, alarm_topic=alarm_topic, reserved_concurrency=1,  # one run at a time
            environment=HealthCheckEnvironment.for_config(config))
        health = self.health_check.function
        health.add_to_role_policy(iam.PolicyStatement(
            sid="ReadWhatEachVariantServes",
            actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            resources=endpoint_arns))
        health.add_to_role_policy(iam.PolicyStatement(
            sid="AskEveryVariant", actions=["sagemaker:InvokeEndpoint"], resources=[endpoint_arns[0]]))
        models.grant(health, "health-check")  # the golden payloads of each variant's version
        key.grant_decrypt(health)
        # A missed health check is not retried (the next one comes within minutes); it is kept for inspection.
        lambda_schedule(self, "HealthCheckSchedule", function=health,
                        expression=config.serving.health_check_schedule, description="Golden-payload health check",
                        dead_letters=schedule_dead_letters, retry_attempts=0)

        return health_role

    def _batch_scoring(self, config: EnvironmentConfig, key: kms.IKey, capture_bucket: s3.IBucket, arn: str,
                       endpoint_arns: list[str], alarm_topic: sns.ITopic,
                       schedule_dead_letters: sqs.IQueue) -> lambda_.IFunction:
        """Batch scoring with the production Champion's model."""
        self.batch_scoring = MlopsFunction(
            self, "BatchScoring", source="batch_scoring", description="Batch transform with the production model",
            memory_size=256, timeout=cdk.Duration.seconds(30), settings=config.lambda_, key=key,
            asynchronous=True, alarm_topic=alarm_topic,
            reserved_concurrency=1,  # one scheduled or operator-started run at a time
            environment=BatchScoringEnvironment.for_config(config, capture_bucket=capture_bucket.bucket_name,
                                                           kms_key_arn=key.key_arn))
        batch = self.batch_scoring.function
        batch.add_to_role_policy(iam.PolicyStatement(
            sid="ReadTheProductionModel",
            actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            resources=endpoint_arns))
        batch.add_to_role_policy(iam.PolicyStatement(
            sid="StartTransformJobs", actions=["sagemaker:CreateTransformJob", "sagemaker:AddTags"],
            resources=[f"{arn}:transform-job/{self.endpoint_name}-*"]))
        grant_kms_for_aws_resources(key, batch)
        if config.serving.batch_schedule:
            lambda_schedule(self, "BatchSchedule", function=batch, expression=config.serving.batch_schedule,
                            description="Batch scoring with the production Champion",
                            dead_letters=schedule_dead_letters, retry_attempts=2)

        return batch

    # ------------------------------------------------------------------------------------------------
    def _rollback_alarms(self, config: EnvironmentConfig) -> list[cloudwatch.Alarm]:
        serving = config.serving
        variants = VARIANTS if serving.challenger_enabled else VARIANTS[:1]
        alarms: list[cloudwatch.Alarm] = []
        for variant in variants:
            dimensions = {"EndpointName": self.endpoint_name, "VariantName": variant}

            def metric(name: str, statistic: str, dims: dict[str, str] = dimensions) -> cloudwatch.Metric:
                return cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=name, dimensions_map=dims,
                                         statistic=statistic, period=cdk.Duration.minutes(1))

            # IF(TS > S, TS, S) is documented metric math ("Using IF expressions"); MAX([invocations, 1])
            # puts a scalar in a time-series array (not documented) and AWS advises against MAX in alarms.
            # No invocations in a period: no data point (the alarm treats it as not breaching).
            error_rate = cloudwatch.MathExpression(
                expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                using_metrics={"errors": metric("Invocation5XXErrors", "Sum"),
                               "invocations": metric("Invocations", "Sum")},
                label=f"{variant} 5XX rate (%)", period=cdk.Duration.minutes(1))
            alarms.append(cloudwatch.Alarm(
                self, f"{variant}ErrorRateRollback", alarm_name=rollback_alarm_name(config, variant, "5xx"),
                alarm_description=(f"Blue/green auto-rollback of {variant}: 5XX rate above "
                                   f"{config.monitoring.alarms.error_rate_percent}%. SageMaker acts on it; it pages "
                                   "nobody (see docs/runbooks/README.md)."),
                metric=error_rate, threshold=config.monitoring.alarms.error_rate_percent, evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING))
            alarms.append(cloudwatch.Alarm(
                self, f"{variant}LatencyRollback", alarm_name=rollback_alarm_name(config, variant, "p99"),
                alarm_description=(f"Blue/green auto-rollback of {variant}: ModelLatency p99 above the SLA "
                                   f"({serving.sla.p99_latency_ms:g} ms). Pages nobody."),
                metric=metric("ModelLatency", "p99"), threshold=serving.sla.p99_latency_ms * 1000,
                evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING))
        return alarms

    def _deployer_permissions(self, role: iam.Role, *, config: EnvironmentConfig, key: kms.IKey,
                              artifact_bucket: s3.IBucket, models: ModelSource, endpoint_arns: list[str]) -> None:
        role.add_to_policy(iam.PolicyStatement(
            sid="RollOutTheEndpoint",
            actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel",
                     "sagemaker:CreateModel", "sagemaker:CreateEndpointConfig", "sagemaker:CreateEndpoint",
                     "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:AddTags",
                     "sagemaker:InvokeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
            resources=endpoint_arns))
        role.add_to_policy(iam.PolicyStatement(
            sid="PassTheModelRole", actions=["iam:PassRole"], resources=[self.model_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        # Results go to this account's bus (forwarded to the registry's); the registry records them.
        role.add_to_policy(iam.PolicyStatement(
            sid="ReportResults", actions=["events:PutEvents"],
            resources=[f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/default"],
            conditions={"StringEquals": {"events:source": RESULT_SOURCE}}))
        role.add_to_policy(iam.PolicyStatement(
            sid="OwnLastResults", actions=["ssm:GetParameter", "ssm:PutParameter"],
            resources=[f"arn:{self.partition}:ssm:{self.region}:{self.account}:parameter"
                       f"{Published.deployer_prefix(config.name, config.model.name if config.model else '')}/*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="RollbackAlarmStates", actions=["cloudwatch:DescribeAlarms"],
            resources=[a.alarm_arn for a in self.rollback_alarms]))
        # Target tracking creates and replaces its own CloudWatch alarms as the caller.
        role.add_to_policy(iam.PolicyStatement(
            sid="TargetTrackingAlarms",
            actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
            resources=[f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:"
                       f"TargetTracking-endpoint/{self.endpoint_name}/variant/*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="PublishWhatEachVariantServes", actions=["ssm:PutParameter"],
            resources=[f"arn:{self.partition}:ssm:{self.region}:{self.account}:parameter"
                       f"{Published.variant_prefix(config.name, config.model.name if config.model else '')}/*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="VariantAutoscaling",
            actions=["application-autoscaling:RegisterScalableTarget",
                     "application-autoscaling:DeregisterScalableTarget",
                     "application-autoscaling:PutScalingPolicy"],
            resources=[f"arn:{self.partition}:application-autoscaling:{self.region}:{self.account}:"
                       "scalable-target/*"]))
        # The Describe* actions of Application Auto Scaling support no resource types (Service Authorization
        # Reference): scoped to an ARN, DescribeScalableTargets was never allowed.
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadScalableTargets", actions=["application-autoscaling:DescribeScalableTargets"],
            resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="AutoscalingServiceLinkedRole", actions=["iam:CreateServiceLinkedRole"],
            resources=[f"arn:{self.partition}:iam::{self.account}:role/aws-service-role/"
                       "sagemaker.application-autoscaling.amazonaws.com/*"],
            conditions={"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}))
        models.grant(role, "deployer")  # versions, their artifacts and golden payloads
        artifact_bucket.grant_put(role, self.prefixes.fallback_model_key)
        key.grant_encrypt_decrypt(role)
        grant_kms_for_aws_resources(key, role)

    def _state_machine(self, config: EnvironmentConfig, key: kms.IKey) -> sfn.StateMachine:
        def task(name: str, result: str | None = None) -> tasks.LambdaInvoke:
            invoke = tasks.LambdaInvoke(self, f"{_pascal(name)}Task",
                                        lambda_function=self.deployer_tasks[name].function,
                                        payload_response_only=True, result_path=result or "$",
                                        retry_on_service_exceptions=False)
            # AWS's recommended retrier for Lambda tasks (Step Functions Developer Guide, "Handling errors":
            # best practice for Lambda service exceptions). CDK's retry_on_service_exceptions leaves out
            # Lambda.TooManyRequestsException, and the task functions have a small reserved concurrency: a
            # single throttle would otherwise fail the deployment. Up to 2+4+...+64 s of backoff, with jitter
            # so that concurrent executions do not retry in step.
            invoke.add_retry(errors=list(LAMBDA_RETRY_ERRORS), interval=cdk.Duration.seconds(2), max_attempts=6,
                             backoff_rate=2, jitter_strategy=sfn.JitterType.FULL)
            return invoke

        failed = sfn.Fail(self, "DeploymentFailed", cause="The deployment or its health check failed; "
                                                           "the ledger has the reason")
        record_failure = task("record_failure").next(failed)
        start = task("start_deployment")
        start.add_retry(errors=["EndpointBusy"], interval=cdk.Duration.seconds(60), backoff_rate=1.5,
                        max_delay=cdk.Duration.seconds(600), max_attempts=20)
        check = task("check_deployment")
        verify = task("verify_and_record")
        for step in (start, check, verify):
            step.add_catch(record_failure, errors=["States.ALL"], result_path="$.error")
        wait = sfn.Wait(self, "Bake", time=sfn.WaitTime.seconds_path("$.poll_seconds"))
        done = sfn.Succeed(self, STATUS_DEPLOYED)
        definition = start.next(
            sfn.Choice(self, "Skip?")
            .when(sfn.Condition.string_equals("$.action", "skip"), sfn.Succeed(self, "NothingToDeploy"))
            .otherwise(wait.next(check).next(
                sfn.Choice(self, "Rollout state?")
                .when(sfn.Condition.string_equals("$.status.decision", "wait"), wait)
                .when(sfn.Condition.string_equals("$.status.decision", "succeeded"), verify.next(
                    sfn.Choice(self, "Healthy?")
                    .when(sfn.Condition.string_equals("$.result.outcome", "deployed"), done)
                    .otherwise(failed)))
                .otherwise(record_failure))))
        log_group = logs.LogGroup(self, "DeployerExecutions", encryption_key=key,
                                  retention=log_retention(config.lambda_.log_retention_days),
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
        machine = sfn.StateMachine(
            self, "Deployer", definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_name=deployer_state_machine_name(config),
            timeout=cdk.Duration.hours(10), tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        allow_wildcards(machine, {
            "Resource::<*Function*.Arn>:*": "CDK's LambdaInvoke grant covers the task function's versions and "
                                            "aliases (function ARN + ':*').",
            "Resource::*": "CloudWatch Logs delivery and X-Ray actions of Step Functions support no resource "
                           "ARNs.",
        })
        return machine

    def _allowances(self, deployer_role: iam.Role, health_role: iam.Role) -> None:
        reasons = {
            "Action::kms:GenerateDataKey*": "Encrypted objects, logs and queues need data keys from the project key.",
            "Action::kms:ReEncrypt*": "CDK's encrypt/decrypt grant on the single project key.",
            "Action::s3:GetObject*": "CDK's read grant on model artifacts and golden payloads.",
            "Action::s3:GetBucket*": "CDK's read grant: bucket lookups before reading artifacts.",
            "Action::s3:List*": "CDK's read grant: listing artifact prefixes.",
            "Action::s3:PutObject*": "CDK's put grant on the prefix the function owns.",
            "Action::s3:Abort*": "CDK's put grant: aborting a failed multipart upload.",
            "Action::s3:DeleteObject*": "CDK's read/write grant for batch transform outputs.",
            "Resource::*ArtifactBucket*/pipelines/*": "Golden payloads and baselines are keyed by execution id.",
            "Resource::*ArtifactBucket*/models/*": "Model artifacts are keyed by training job.",
            **registry_allowances(self.config),
            "Resource::*ArtifactBucket*/serving/*": "The deployer publishes the fallback model below serving/.",
            "Resource::*CaptureBucket*/endpoint/*": "Data capture keys are chosen by SageMaker per hour and file.",
            "Resource::*CaptureBucket*/batch/*": "Batch transform outputs are keyed per job.",
            "Resource::arn:*:sagemaker:*:endpoint-config/mlops-*": "Each rollout creates a new endpoint config "
                                                                   "named after the endpoint and the version.",
            "Resource::arn:*:sagemaker:*:model/mlops-*": "Each rollout creates a model named after the endpoint "
                                                         "and the version.",
            "Resource::arn:*:sagemaker:*:transform-job/mlops-*": "Batch transform jobs are named per run.",
            "Resource::arn:*:ssm:*:parameter/mlops/*/variant/*": "One parameter per variant and field.",
            "Resource::arn:*:ssm:*:parameter/mlops/*/deployer/*": "The deployer's last result, one parameter per "
                                                                 "stage.",
            "Resource::arn:*:application-autoscaling:*:scalable-target/*": "Application Auto Scaling generates "
                                                                           "scalable-target ids.",
            "Resource::arn:*:iam::*:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/*":
                "The service-linked role's name is set by AWS (condition-scoped to this service).",
            "Resource::arn:*:logs:*:log-group:/aws/sagemaker/*": "SageMaker names container log streams per "
                                                                 "instance.",
            "Resource::arn:*:cloudwatch:*:alarm:TargetTracking-endpoint/mlops-*/variant/*":
                "Target tracking names its alarms per variant and policy; scoped to this endpoint's variants.",
            "Resource::*": "ecr:GetAuthorizationToken, cloudwatch:DescribeAlarms (rollback alarms, read by "
                           "SageMaker for the model) and application-autoscaling:DescribeScalableTargets support "
                           "no resource ARNs.",
        }
        for scope in (self.model_role, deployer_role, health_role, self.health_check, self.batch_scoring):
            allow_wildcards(scope, reasons)


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))

