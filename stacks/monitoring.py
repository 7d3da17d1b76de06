"""Monitoring: the daily drift and ground-truth run, the dashboard and the alarms that page on-call.

Paging alarms route to the `page` topic, the rest to `ticket`; each alarm's description links its runbook
in docs/runbooks/. The deployment-rollback alarms live in the serving stack and page nobody."""

from __future__ import annotations

import tempfile
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlsettings.config import EnvironmentConfig
from mlsettings.drift_partials import (
    ENGINE_PARTIALS,
    ENGINE_PROCESSING,
    PARTIALS_CONCURRENCY,
    PARTIALS_MEMORY_MB,
    PARTIALS_PREFIX,
)
from mlsettings.functions.contracts import DriftMonitorEnvironment, DriftPartialsEnvironment
from mlsettings.naming import (
    consumer_role_name,
    drift_monitor_function_name,
    drift_partials_function_name,
    endpoint_name,
    model_prefixes,
    pipeline_name,
    registry_pipeline_name,
)
from mlsettings.problem_types import BINARY, QUALITY_METRIC_NAMES, problem_type
from mlsettings.vocabulary import (
    CAPTURE_PREFIX,
    CHALLENGER,
    CHAMPION,
    NAMESPACE,
    PAGE,
    REPORT_PREFIX,
    TICKET,
    Metric,
    Published,
    Service,
)
from pipelines.definition import write_source_bundle
from pipelines.images import REPOSITORY as XGBOOST_REPOSITORY
from pipelines.images import XGBOOST_ACCOUNTS, xgboost_image_uri
from stacks.constructs.alarms import AlarmRouter
from stacks.constructs.cross_account import IMAGE_PULL_ACTIONS, registry_allowances
from stacks.constructs.kms_grants import grant_kms_for_aws_resources
from stacks.constructs.lambda_function import MlopsFunction, shared_execution_role
from stacks.constructs.model_metrics import (
    drift_metric,
    health_metric,
    inference_metric,
    sagemaker_metric,
)
from stacks.constructs.model_source import ModelSource
from stacks.constructs.nag import allow_wildcards
from stacks.constructs.part import StackPart
from stacks.constructs.pipeline_trigger import pipeline_target
from stacks.constructs.prefix_grants import grant_prefix_read, grant_prefix_read_write
from stacks.constructs.published_names import publish_model_name
from stacks.constructs.queues import accept_dead_letters_from, dead_letter_queue
from stacks.constructs.schedules import lambda_schedule

VARIANTS = (CHAMPION, CHALLENGER)
FALLBACK_REASONS = ("throttling", "server_error", "model_error", "timeout", "invalid_output",
                    "endpoint_unavailable", "circuit_open")


class MonitoringPart(StackPart):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey,
                 capture_bucket: s3.IBucket, artifact_bucket: s3.IBucket, models: ModelSource,
                 code_asset: s3_assets.Asset | None, page_topic: sns.ITopic, ticket_topic: sns.ITopic,
                 inference_function_name: str, api_id: str) -> None:
        """``config``: the model's view of the environment; ``models``: the registry's versions and baselines;
        ``code_asset``: the Training part's step code (the Processing engine runs it), or None where no training
        is built (then this part uploads its own); the alert topics and the model's inference API."""
        super().__init__(scope, construct_id, config=config)
        self.prefixes = model_prefixes(config)
        self.variant_parameters = Published.variant_prefix(config.name, config.model.name if config.model else "")
        self._key = key
        self.endpoint = endpoint_name(config)
        variants = VARIANTS if config.serving.challenger_enabled else VARIANTS[:1]
        self.router = AlarmRouter(page=page_topic, ticket=ticket_topic, environment=config.name)

        self._drift_run(config, key=key, capture_bucket=capture_bucket, artifact_bucket=artifact_bucket,
                        models=models, code_asset=code_asset, ticket_topic=ticket_topic)
        self._alarms(config, variants)
        self.sustained_drift = self._retrain_on_sustained_drift(config, variants)
        self.dashboard = self._dashboard(config, variants, inference_function_name, api_id)

    def _drift_run(self, config: EnvironmentConfig, *, key: kms.IKey, capture_bucket: s3.IBucket,
                   artifact_bucket: s3.IBucket, models: ModelSource, code_asset: s3_assets.Asset | None,
                   ticket_topic: sns.ITopic) -> None:
        """The drift and ground-truth run: the scheduled function and its engine's parts."""
        drift = config.monitoring.drift
        monitor_role = shared_execution_role(self, "DriftMonitorRole",
                                             role_name=consumer_role_name(config, "drift-monitor"),
                                             description="The daily drift and ground-truth run")
        job = self._drift_job(config, key=key, capture_bucket=capture_bucket, artifact_bucket=artifact_bucket,
                              models=models, code_asset=code_asset) if drift.engine == ENGINE_PROCESSING else None
        self.drift_monitor = MlopsFunction(
            self, "DriftMonitor", source="drift_monitor", handler_function="lambda_handler", role=monitor_role,
            function_name=drift_monitor_function_name(config),
            description="Daily drift, prediction/confidence shift and ground-truth quality per variant",
            # 3,538 MB is where Lambda gives a function two full vCPUs: the run parses with two processes.
            memory_size=3538, timeout=cdk.Duration.minutes(15), settings=config.lambda_, key=key,
            asynchronous=True, reserved_concurrency=1, alarm_topic=ticket_topic,
            environment=DriftMonitorEnvironment.for_config(
                config, capture_bucket=capture_bucket.bucket_name, report_bucket=artifact_bucket.bucket_name,
                processing=None if job is None else {
                    "role_arn": job[0].role_arn, "image_uri": xgboost_image_uri(config.region),
                    "code_uri": job[1].s3_object_url, "kms_key_arn": key.key_arn}))
        function = self.drift_monitor.function
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        function.add_to_role_policy(iam.PolicyStatement(
            sid="WhatEachVariantServes", actions=["sagemaker:DescribeEndpoint"],
            resources=[f"{arn}:endpoint/{self.endpoint}"]))
        function.add_to_role_policy(iam.PolicyStatement(
            sid="VariantModelParameters", actions=["ssm:GetParameter"],
            resources=[f"arn:{self.partition}:ssm:{self.region}:{self.account}:parameter"
                       f"{self.variant_parameters}/*"]))
        grant_prefix_read(capture_bucket, function, self._window_inputs())
        models.grant(function, "drift-monitor")  # each version's baselines and metrics
        grant_prefix_read_write(artifact_bucket, function, [f"{REPORT_PREFIX}/{self.endpoint}/*"])
        key.grant_encrypt_decrypt(function)
        self.drift_partials: MlopsFunction | None = None
        if job is not None:
            self._processing_engine(key=key, artifact_bucket=artifact_bucket, role=job[0])
        elif drift.engine == ENGINE_PARTIALS:
            self.drift_partials = self._partials_engine(config, key=key, capture_bucket=capture_bucket,
                                                        artifact_bucket=artifact_bucket, models=models,
                                                        ticket_topic=ticket_topic)
        dead_letters = dead_letter_queue(self, "ScheduleDeadLetters", key=key, purpose="the drift schedule")
        lambda_schedule(self, "DriftSchedule", function=function, expression=drift.schedule,
                        description="The daily drift and ground-truth run", dead_letters=dead_letters,
                        retry_attempts=2)
        publish_model_name(self, config, key=Published.DRIFT_REPORT_URI,
                     value=f"s3://{artifact_bucket.bucket_name}/{REPORT_PREFIX}/{self.endpoint}/")
        monitor_reasons = {
            "Action::kms:GenerateDataKey*": "Writing KMS-encrypted reports needs data keys from the project key.",
            "Action::kms:ReEncrypt*": "CDK's encrypt/decrypt grant on the single project key.",
            "Action::s3:GetObject*": "CDK's read grant on captured traffic, labels, baselines and reports.",
            "Action::s3:GetBucket*": "CDK's read grant: bucket lookups.",
            "Action::s3:List*": "The run lists the window's hourly capture partitions.",
            "Action::s3:DeleteObject*": "CDK's read/write grant: a rerun replaces its report.",
            "Action::s3:Abort*": "CDK's write grant: aborting a failed multipart upload of a report.",
            "Resource::*CaptureBucket*/*": "Captured traffic, prediction logs and labels are partitioned by hour.",
            "Resource::*ArtifactBucket*/*": "Baselines are keyed by execution id, reports by window.",
            **registry_allowances(self.config),
            "Resource::arn:*:ssm:*:parameter/mlops/*/variant/*": "One parameter per variant and field.",
        }
        allow_wildcards(self.drift_monitor, monitor_reasons)
        allow_wildcards(monitor_role, monitor_reasons)

    def _partials_prefixes(self) -> tuple[str, ...]:
        """The model's partial results: below the partials prefix, each at its captured object's own key."""
        return (f"{PARTIALS_PREFIX}/{CAPTURE_PREFIX}/{self.endpoint}/",
                f"{PARTIALS_PREFIX}/{self.prefixes.prediction_log}")

    def _merges_partial_results(self, artifact_bucket: s3.IBucket) -> None:
        """The drift monitor merges the window's partial results (engines partials, processing; its contract
        carries the engine)."""
        grant_prefix_read(artifact_bucket, self.drift_monitor.function,
                          [f"{prefix}*" for prefix in self._partials_prefixes()])

    def _partials_engine(self, config: EnvironmentConfig, *, key: kms.IKey, capture_bucket: s3.IBucket,
                         artifact_bucket: s3.IBucket, models: ModelSource, ticket_topic: sns.ITopic) -> MlopsFunction:
        """Each captured object is reduced to its partial result when it lands (S3 → EventBridge → the function);
        the scheduled run merges the window's partial results (docs/MONITORING.md, "Drift at any traffic")."""
        self._merges_partial_results(artifact_bucket)
        role = shared_execution_role(self, "DriftPartialsRole", role_name=consumer_role_name(config, "drift-partials"),
                                     description="Reduces each captured object to its drift partial result")
        environment = DriftPartialsEnvironment.for_config(config, capture_bucket=capture_bucket.bucket_name,
                                                          report_bucket=artifact_bucket.bucket_name)
        partials = MlopsFunction(
            self, "DriftPartials", source=Service.DRIFT_PARTIALS, role=role,
            function_name=drift_partials_function_name(config),
            description="Reduces each captured object to its drift partial result when it lands",
            memory_size=PARTIALS_MEMORY_MB, timeout=cdk.Duration.minutes(5), settings=config.lambda_, key=key,
            asynchronous=True, reserved_concurrency=PARTIALS_CONCURRENCY, alarm_topic=ticket_topic,
            environment=environment)
        objects = [f"{CAPTURE_PREFIX}/{self.endpoint}/", self.prefixes.prediction_log]
        # Least privilege written out: read exactly this endpoint's capture and the prediction log, write partial
        # results, decrypt and encrypt with the project key (S3 uses it as the caller), the variants' parameters.
        partials.function.add_to_role_policy(iam.PolicyStatement(
            sid="ReadCapturedObjects", actions=["s3:GetObject"],
            resources=[capture_bucket.arn_for_objects(f"{prefix}*") for prefix in objects]))
        partials.function.add_to_role_policy(iam.PolicyStatement(
            sid="WritePartialResults", actions=["s3:PutObject"],
            resources=[artifact_bucket.arn_for_objects(f"{prefix}*") for prefix in self._partials_prefixes()]))
        partials.function.add_to_role_policy(iam.PolicyStatement(
            sid="ProjectKey", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]))
        partials.function.add_to_role_policy(iam.PolicyStatement(
            sid="VariantModelParameters", actions=["ssm:GetParameter"],
            resources=[f"arn:{self.partition}:ssm:{self.region}:{self.account}:parameter"
                       f"{self.variant_parameters}/*"]))
        models.grant(partials.function, "drift-partials")  # each version's baseline
        # Each captured object reaches this function through the environment's event router (one rule for every
        # model's capture prefixes, stacks/constructs/event_router.py), which invokes it by its name.
        reasons = {
            **registry_allowances(self.config),
            "Resource::<CaptureBucket*.Arn>/endpoint/*": "Capture objects are keyed by variant and hour.",
            "Resource::*CaptureBucket*/*": "Capture objects are keyed by variant and hour.",
            "Resource::*ArtifactBucket*/drift-partials/*": "One partial result per captured object.",
            "Resource::arn:*:ssm:*:parameter/mlops/*/variant/*": "One parameter per variant and field.",
            "Action::kms:GenerateDataKey*": "CDK's grant to send failed events to the encrypted failure queue.",
            "Action::kms:ReEncrypt*": "CDK's grant to send failed events to the encrypted failure queue.",
            "Action::s3:GetObject*": "CDK's read grant on the registry's baselines.",
            "Action::s3:GetBucket*": "CDK's read grant: bucket lookups.",
            "Action::s3:List*": "CDK's read grant on the registry's baselines.",
        }
        allow_wildcards(partials, reasons)
        allow_wildcards(role, reasons)
        return partials

    def _drift_job(self, config: EnvironmentConfig, *, key: kms.IKey, capture_bucket: s3.IBucket,
                   artifact_bucket: s3.IBucket, models: ModelSource,
                   code_asset: s3_assets.Asset | None) -> tuple[iam.Role, s3_assets.Asset]:
        """engine processing: the Processing job's role and code (the function's environment names both)."""
        role = iam.Role(self, "DriftJobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        role_name=consumer_role_name(config, "drift-job"),
                        description="The drift monitor's Processing job")
        # The window's captured traffic, the inference API's prediction log and the ground-truth labels (the same
        # inputs as the Lambda engine's).
        grant_prefix_read(capture_bucket, role, self._window_inputs())
        models.grant(role, "drift-job")
        grant_prefix_read_write(artifact_bucket, role, [f"{REPORT_PREFIX}/{self.endpoint}/*"])
        role.add_to_policy(iam.PolicyStatement(
            sid="WritePartialResults", actions=["s3:PutObject"],
            resources=[artifact_bucket.arn_for_objects(f"{prefix}*") for prefix in self._partials_prefixes()]))
        if code_asset is None:  # no Training stack here: upload the same step code for the job
            code_asset = s3_assets.Asset(self, "DriftJobCode", path=str(write_source_bundle(
                Path(tempfile.gettempdir()) / "mlops-source-bundles")))
        code_asset.grant_read(role)
        key.grant_encrypt_decrypt(role)
        account = XGBOOST_ACCOUNTS.get(config.region, "")
        role.add_to_policy(iam.PolicyStatement(
            sid="PullTheXGBoostImage",
            actions=list(IMAGE_PULL_ACTIONS),
            resources=[f"arn:{self.partition}:ecr:{self.region}:{account}:repository/{XGBOOST_REPOSITORY}"]))
        role.add_to_policy(iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="JobLogs", actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/*"]))
        self._allow_job_wildcards(role)
        return role, code_asset

    def _processing_engine(self, *, key: kms.IKey, artifact_bucket: s3.IBucket, role: iam.Role) -> None:
        """The schedule starts a Processing job running the same code; its report publishes on arrival."""
        function = self.drift_monitor.function
        self._merges_partial_results(artifact_bucket)
        function.add_to_role_policy(iam.PolicyStatement(
            sid="StartTheDriftJob", actions=["sagemaker:CreateProcessingJob", "sagemaker:AddTags"],
            resources=[f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:processing-job/"
                       f"{self.endpoint}-drift-*"]))
        grant_kms_for_aws_resources(key, function)  # the job's encrypted volume and outputs
        function.add_to_role_policy(iam.PolicyStatement(
            sid="PassTheJobRole", actions=["iam:PassRole"], resources=[role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        # A shard summary of the job reaches this function through the environment's event router (one rule for
        # every model's drift reports, stacks/constructs/event_router.py).
        for scope in (self.drift_monitor, self.drift_monitor.role):
            allow_wildcards(scope, {
                "Resource::arn:*:sagemaker:*:processing-job/mlops-*-drift-*": "One job per window, named by its "
                                                                              "end.",
            })

    def _allow_job_wildcards(self, role: iam.Role) -> None:
        allow_wildcards(role, {
            "Action::kms:GenerateDataKey*": "The job writes KMS-encrypted reports.",
            "Action::kms:ReEncrypt*": "CDK's encrypt/decrypt grant on the single project key.",
            "Action::s3:GetObject*": "CDK's read grant on the window's capture files, baselines and the code bundle.",
            "Action::s3:GetBucket*": "CDK's read grant: bucket lookups.",
            "Action::s3:List*": "CDK's read grant: listing input prefixes.",
            "Action::s3:DeleteObject*": "CDK's read/write grant: a rerun replaces its report.",
            "Action::s3:Abort*": "CDK's write grant: aborting a failed multipart upload.",
            "Resource::*CaptureBucket*/*": "Captured traffic, the prediction log and labels are partitioned by hour.",
            "Resource::*ArtifactBucket*/*": "Baselines are keyed by execution id, reports by window.",
            **registry_allowances(self.config),
            "Resource::arn:*:s3:::cdk-*-assets-*/*": "The code bundle is a CDK asset keyed by its content hash.",
            "Resource::arn:*:logs:*:log-group:/aws/sagemaker/*": "SageMaker names job log streams per job.",
            "Resource::*": "ecr:GetAuthorizationToken supports no resource ARN.",
        })

    # -------------------------------------------------------------------------------------------- metrics
    def _window_inputs(self) -> list[str]:
        """The model's prefixes a drift run reads: captured traffic, the inference API's prediction log and the
        ground-truth labels (the capture bucket is shared; another model's prefixes are not listed or read)."""
        return [f"{CAPTURE_PREFIX}/{self.endpoint}/*", f"{self.prefixes.prediction_log}*",
                f"{self.prefixes.ground_truth}*"]

    def _sagemaker(self, name: str, variant: str, statistic: str, period_minutes: int = 5) -> cloudwatch.Metric:
        return sagemaker_metric(self.endpoint, name, variant, statistic, period_minutes)

    def _drift(self, name: str, variant: str, statistic: str = "Maximum") -> cloudwatch.Metric:
        return drift_metric(self.endpoint, name, variant, statistic)

    def _health(self, name: str, variant: str, statistic: str = "Minimum") -> cloudwatch.Metric:
        return health_metric(self.endpoint, name, variant, statistic)

    def _inference(self, name: str, extra: dict[str, str] | None = None) -> cloudwatch.Metric:
        return inference_metric(self.endpoint, name, extra)

    def _error_rate(self, variant: str) -> cloudwatch.MathExpression:
        errors, invocations = f"errors{variant}", f"invocations{variant}"  # ids unique per graph
        return cloudwatch.MathExpression(
            # Documented IF idiom instead of MAX([x, 1]) (see stacks/serving.py and tests/infra/test_metric_math.py).
            expression=f"IF({invocations} > 0, 100 * {errors} / {invocations}, 0)",
            using_metrics={errors: self._sagemaker("Invocation5XXErrors", variant, "Sum"),
                           invocations: self._sagemaker("Invocations", variant, "Sum")},
            label=f"{variant} 5XX rate (%)", period=cdk.Duration.minutes(5))

    def _fallback_rate(self) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression="IF(responses > 0, 100 * degraded / responses, 0)",
            using_metrics={"degraded": self._inference(Metric.DEGRADED_RESPONSES),
                           "responses": self._inference(Metric.RESPONSES)},
            label="API answers not served by the endpoint (%)", period=cdk.Duration.minutes(5))

    # --------------------------------------------------------------------------------------------- alarms
    def _alarms(self, config: EnvironmentConfig, variants: tuple[str, ...]) -> None:
        alarms = config.monitoring.alarms
        sla = config.serving.sla
        gte = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        route = self.router.alarm
        # The model's kind decides what its prediction alarm watches and whether it has a confidence to watch.
        kind = problem_type(config.model.problem_type if config.model is not None else BINARY)
        for variant in variants:
            route(self, f"{variant}LatencyOverSla", metric=self._sagemaker("ModelLatency", variant, "p99"),
                  threshold=sla.p99_latency_ms * 1000, severity=PAGE, runbook="latency-p99",
                  summary=f"{variant} ModelLatency p99 above the SLA of {sla.p99_latency_ms:g} ms.",
                  evaluation_periods=3)
            route(self, f"{variant}ErrorRate", metric=self._error_rate(variant), threshold=alarms.error_rate_percent,
                  severity=PAGE, runbook="error-rate", comparison=gte,
                  summary=f"{variant} 5XX rate at or above {alarms.error_rate_percent:g}%.")
            route(self, f"{variant}HealthCheckFailing", metric=self._health(Metric.HEALTH_CHECK_PASSED, variant),
                  threshold=1, severity=PAGE, runbook="health-check", evaluation_periods=2,
                  comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                  summary=f"{variant} answered its golden payloads wrongly or not at all.")
            route(self, f"{variant}DataDrift", metric=self._drift(Metric.DRIFT_DETECTED, variant), threshold=1,
                  severity=TICKET, runbook="data-drift", evaluation_periods=1, comparison=gte,
                  summary=f"{variant}: drifted input features carry at least "
                          f"{config.monitoring.drift.weighted_drift_alarm:.0%} of the model's feature importance.")
            route(self, f"{variant}DataQuality", metric=self._drift(Metric.DATA_QUALITY_VIOLATIONS, variant),
                  threshold=1,
                  severity=TICKET, runbook="data-quality", evaluation_periods=1, comparison=gte,
                  summary=f"{variant}: missing, out-of-range or unseen values beyond the training baseline's in at "
                          "least one input feature.")
            # Production pages when the violation hits a feature the model leans on; elsewhere it is a ticket.
            route(self, f"{variant}TopFeatureDataQuality",
                  metric=self._drift(Metric.DATA_QUALITY_TOP_FEATURE_VIOLATIONS, variant), threshold=1,
                  severity=PAGE if config.production else TICKET, runbook="data-quality",
                  evaluation_periods=1, comparison=gte,
                  summary=f"{variant}: a data-quality violation in one of the model's "
                          f"{config.monitoring.drift.page_top_features} most important features.")
            route(self, f"{variant}PredictionShift", metric=self._drift(Metric.PREDICTION_DRIFTED, variant),
                  threshold=1,
                  severity=TICKET, runbook="prediction-shift", evaluation_periods=1, comparison=gte,
                  summary=f"{variant}: the prediction distribution shifted ({kind.prediction_drift}).")
            if kind.output.confidence is not None:  # a regression model states no confidence
                route(self, f"{variant}ConfidenceShift", metric=self._drift(Metric.CONFIDENCE_DRIFTED, variant),
                      threshold=1,
                      severity=TICKET, runbook="prediction-shift", evaluation_periods=1, comparison=gte,
                      summary=f"{variant}: the confidence distribution shifted (PSI above "
                              f"{alarms.confidence_shift_psi:g}).")
            if config.monitoring.drift.engine in (ENGINE_PARTIALS, ENGINE_PROCESSING):
                route(self, f"{variant}ObjectsNotAnalysed",
                      metric=self._drift(Metric.OBJECTS_NOT_ANALYSED, variant), threshold=1, severity=TICKET,
                      runbook="drift-partials", evaluation_periods=1, comparison=gte,
                      summary=f"{variant}: captured objects of the window were left out of the drift run (no partial "
                              "result and beyond what the run counts itself).")
            route(self, f"{variant}QualityDegraded", metric=self._drift(Metric.QUALITY_DEGRADED, variant), threshold=1,
                  severity=PAGE, runbook="quality-degradation", evaluation_periods=1, comparison=gte,
                  summary=f"{variant}: ground-truth {config.training.quality_gate.metric} more than "
                          f"{alarms.quality_margin:g} worse than the registered evaluation metric.")
        route(self, "FallbackRate", metric=self._fallback_rate(), threshold=alarms.fallback_rate_percent,
              severity=PAGE, runbook="fallback-rate", comparison=gte,
              summary=f"At least {alarms.fallback_rate_percent:g}% of API answers came from a fallback.")
        if config.production:
            # Only production has traffic all the time; elsewhere silence is normal. Missing data does not
            # breach: a newly deployed environment has no endpoint (the deployer creates it on the first
            # promotion) and so no Invocations data points, and it must not page from its first deploy on.
            # An endpoint that exists but cannot answer is paged by HealthCheckFailing (the health check
            # reports 0 for it); "no endpoint yet" is the only state in which the health check is silent.
            route(self, "NoTraffic", metric=self._sagemaker("Invocations", CHAMPION, "Sum", 15), threshold=1,
                  severity=PAGE, runbook="no-traffic", evaluation_periods=2,
                  comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                  missing=cloudwatch.TreatMissingData.NOT_BREACHING,
                  summary="The Champion received no invocations for 30 minutes.")
        if not config.production and alarms.idle_endpoint_days is not None:
            self._idle_endpoint(alarms.idle_endpoint_days)
        if config.is_registry:  # the training pipeline runs in the registry environment only
            route(self, "TrainingPipelineFailed",
                metric=cloudwatch.Metric(namespace="AWS/Sagemaker/ModelBuildingPipeline", metric_name="ExecutionFailed",
                                           dimensions_map={"PipelineName": pipeline_name(config)}, statistic="Sum",
                                           period=cdk.Duration.hours(1)),
                threshold=1, severity=TICKET, runbook="pipeline-failure", evaluation_periods=1, comparison=gte,
                summary="A training pipeline execution failed (validation, quality gate or infrastructure).")

    def _idle_endpoint(self, days: int) -> None:
        """A ticket when the endpoint's instances ran for ``days`` days and no request reached it through the
        inference API: instances cost money whether or not anyone calls them.

        The endpoint's own Invocations never fall to zero: the health check calls every variant every few
        minutes (serving.health_check_schedule). Callers reach the endpoint through the inference API, the one
        caller role besides the health check and the deployer, so its Responses count is the callers' traffic.
        Whether the endpoint exists at all is told by its instance metrics (AWS/SageMaker publishes
        CPUUtilization in /aws/sagemaker/Endpoints every minute per instance-backed variant).

        Missing data, deliberately: ``IF(up, requests)`` has a data point only for hours in which the
        Champion's instances reported; for such an hour without any API response CloudWatch's IF gives 0 (a
        TRUE condition with no data point in the second series yields 0: CloudWatch User Guide, "Using IF
        expressions"). So zero requests while instances run is data (breaching), and missing data only ever
        means "no instances": no endpoint yet (the deployer creates it on the first promotion), or one that
        was deleted. Neither costs anything, so missing data is not breaching, as for every alarm here
        (tests/infra/test_monitoring.py)."""
        hour = cdk.Duration.hours(1)
        up = cloudwatch.Metric(namespace="/aws/sagemaker/Endpoints", metric_name="CPUUtilization",
                               statistic="SampleCount", period=hour,
                               dimensions_map={"EndpointName": self.endpoint, "VariantName": CHAMPION})
        idle = cloudwatch.MathExpression(
            expression="IF(up, requests)", using_metrics={"up": up, "requests": self._inference(Metric.RESPONSES)
                                                          .with_(period=hour)},
            label="API requests while the endpoint's instances run", period=hour)
        # Hourly points: CloudWatch evaluates an alarm over at most 7 days (604,800 s; PutMetricAlarm), which
        # bounds monitoring.alarms.idle_endpoint_days.
        self.router.alarm(
            self, "IdleEndpoint", metric=idle, threshold=1, severity="ticket", runbook="idle-endpoint",
            evaluation_periods=24 * days, datapoints_to_alarm=24 * days,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            summary=f"The endpoint's instances ran for {days} days without a single request through the "
                    "inference API.")

    def _retrain_on_sustained_drift(self, config: EnvironmentConfig,
                                    variants: tuple[str, ...]) -> cloudwatch.Alarm | None:
        if not config.monitoring.drift.retrain_on_sustained_drift:
            return None
        sustained = self.router.alarm(
            self, "SustainedDrift", metric=self._drift(Metric.DRIFT_DETECTED,
                                                       variants[0]), threshold=1, severity=TICKET,
            runbook="data-drift", evaluation_periods=3, datapoints_to_alarm=3,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            summary="The Champion's inputs drifted three days running; the training pipeline is started.")
        # The registry environment's pipeline, in this account (cdk.json refuses the setting in another one).
        pipeline_arn = (f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:pipeline/"
                        f"{registry_pipeline_name(config)}")
        role = iam.Role(self, "RetrainTriggerRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
                        description="Lets EventBridge start the training pipeline on sustained drift")
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]))
        dead_letters = dead_letter_queue(self, "RetrainDeadLetters", key=self._key,
                                         purpose="the sustained-drift retraining rule")
        rule = events.CfnRule(
            self, "RetrainOnSustainedDrift", description="Sustained drift starts the training pipeline",
            event_pattern={"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                           "resources": [sustained.alarm_arn], "detail": {"state": {"value": ["ALARM"]}}},
            targets=[pipeline_target(pipeline_arn=pipeline_arn, role_arn=role.role_arn,
                                     dead_letter_arn=dead_letters.queue_arn, reason="sustained-drift")])
        accept_dead_letters_from(dead_letters, rule_arns=[rule.attr_arn])
        return sustained

    # ------------------------------------------------------------------------------------------ dashboard
    def _dashboard(self, config: EnvironmentConfig, variants: tuple[str, ...], inference_function: str,
                   api_id: str) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=self.endpoint,
                                         default_interval=cdk.Duration.days(1))
        api_count = cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name="Count", statistic="Sum",
                                      dimensions_map={"ApiId": api_id}, period=cdk.Duration.minutes(5))
        function_duration = [cloudwatch.Metric(namespace="AWS/Lambda", metric_name="Duration", statistic=stat,
                                               dimensions_map={"FunctionName": inference_function},
                                               period=cdk.Duration.minutes(5), label=f"inference API {stat}")
                             for stat in ("p50", "p90", "p99")]
        sla = config.serving.sla
        dashboard.add_widgets(cloudwatch.TextWidget(
            markdown=(f"# MLOps {config.name}: endpoint `{self.endpoint}`\n"
                      f"SLA: p99 {sla.p99_latency_ms:g} ms, peak {sla.peak_requests_per_second:g} req/s, "
                      f"availability {sla.availability_percent:g}%. Runbooks: docs/runbooks/."),
            width=24, height=2))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Request volume", width=8, left=[
                *[self._sagemaker("Invocations", v, "Sum") for v in variants],
                api_count.with_(label="API requests")]),
            cloudwatch.GraphWidget(title="Latency p50 / p90 / p99 (ms)", width=8, left=[
                self._sagemaker("ModelLatency", v, s).with_(label=f"{v} ModelLatency {s} (µs)")
                for v in variants for s in ("p50", "p90", "p99")],
                right=[*[self._sagemaker("OverheadLatency", v, "p99").with_(label=f"{v} OverheadLatency p99 (µs)")
                         for v in variants], *function_duration]),
            cloudwatch.GraphWidget(title="Errors: 4XX, 5XX and 5XX rate", width=8, left=[
                *[self._sagemaker(name, v, "Sum") for v in variants
                  for name in ("Invocation4XXErrors", "Invocation5XXErrors")]],
                right=[self._error_rate(v) for v in variants]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Fallbacks by reason, and fallback rate", width=8, left=[
                self._inference(Metric.FALLBACKS, {"reason": r}).with_(label=r) for r in FALLBACK_REASONS],
                right=[self._fallback_rate()]),
            cloudwatch.GraphWidget(title="Model version per variant", width=8, left=[
                self._health(Metric.SERVED_MODEL_VERSION, v, "Maximum").with_(label=f"{v} version") for v in variants]),
            cloudwatch.GraphWidget(title="Health check (1 = golden answers correct)", width=8, left=[
                self._health(Metric.HEALTH_CHECK_PASSED, v) for v in variants],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=1)),
        )
        top_features = cloudwatch.MathExpression(
            # A CloudWatch Metrics Insights query (not SQL run anywhere); the endpoint name comes from config.
            expression=(f"SELECT MAX(FeatureDrift) FROM SCHEMA({NAMESPACE}, Endpoint, Feature, Variant, service) "  # noqa: S608
                        f"WHERE Endpoint = '{self.endpoint}' GROUP BY Feature ORDER BY MAX() DESC LIMIT 10"),
            label="top drifting features (PSI)", period=cdk.Duration.days(1))
        # Per kind of model: a confidence shift only where the kind has a confidence, its own quality metrics.
        kind = problem_type(config.model.problem_type if config.model is not None else BINARY)
        shifts = (Metric.PREDICTION_SHIFT, Metric.CONFIDENCE_SHIFT) if kind.output.confidence is not None \
            else (Metric.PREDICTION_SHIFT,)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Drift score per variant", width=8, left=[
                self._drift(name, v).with_(label=f"{v} {name}") for v in variants
                for name in (Metric.MAX_DRIFT, Metric.DRIFTED_FEATURE_SHARE, Metric.WEIGHTED_DRIFT_SCORE,
                             Metric.DATA_QUALITY_VIOLATIONS, *shifts)]),
            cloudwatch.GraphWidget(title=f"Ground-truth quality ({kind.name})", width=8, left=[
                self._drift(QUALITY_METRIC_NAMES[name], v).with_(label=f"{v} {name}") for v in variants
                for name in kind.quality_metrics]),
            cloudwatch.GraphWidget(title="Top drifting features", width=8, left=[top_features]),
            cloudwatch.GraphWidget(title="Training pipeline executions", width=8, left=[
                cloudwatch.Metric(namespace="AWS/Sagemaker/ModelBuildingPipeline", metric_name=name, statistic="Sum",
                                  dimensions_map={"PipelineName": registry_pipeline_name(config)},
                                  period=cdk.Duration.days(1))
                for name in ("ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed")]),
        )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(
            title="Alarms", width=24, alarms=[alarm for _, _, alarm in self.router.alarms]))
        return dashboard
