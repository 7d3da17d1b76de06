"""The inference API: HTTP API (IAM auth) → the inference Lambda, which degrades gracefully (fallback model →
cached response → safe default) and logs every prediction it returns through Firehose into the capture
bucket, in the data-capture JSONL format."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlsettings.config import EnvironmentConfig, inference_concurrency_demand
from mlsettings.functions.contracts import InferenceEnvironment
from mlsettings.naming import endpoint_name, model_prefixes
from mlsettings.vocabulary import Metric, Published
from stacks.constructs.checkov import skip_checkov
from stacks.constructs.lambda_function import MlopsFunction, log_retention
from stacks.constructs.nag import allow_wildcards
from stacks.constructs.part import StackPart
from stacks.constructs.prefix_grants import grant_prefix_read
from stacks.constructs.published_names import publish_model_name


class InferenceApiPart(StackPart):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey,
                 capture_bucket: s3.IBucket, artifact_bucket: s3.IBucket) -> None:
        """``config``: the model's view of the environment (its API, endpoint, schema, fallback model)."""
        super().__init__(scope, construct_id, config=config)
        self.prefixes = model_prefixes(config)
        self._tables(config, key)
        self.delivery_stream = self._prediction_log(config, key, capture_bucket)
        function = self._function(config, key, artifact_bucket)
        self._api(config, key, function)
        self._firehose_allowances()
        self.function_name = function.function_name
        publish_model_name(self, config, key=Published.INFERENCE_API_URL, value=self.api.api_endpoint)
        publish_model_name(self, config, key=Published.INFERENCE_API_ID, value=self.api.api_id)
        publish_model_name(self, config, key=Published.INFERENCE_FUNCTION_NAME, value=function.function_name)
        publish_model_name(self, config, key=Published.PREDICTION_LOG_PREFIX,
                           value=f"s3://{capture_bucket.bucket_name}/{self.prefixes.prediction_log}")

        self._acknowledge_wildcards()

    def _tables(self, config: EnvironmentConfig, key: kms.IKey) -> None:
        """The circuit breaker's shared state and the response cache."""
        removal = cdk.RemovalPolicy.RETAIN if config.storage.retain_data else cdk.RemovalPolicy.DESTROY
        table_options = {
            "billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST,
            "encryption": dynamodb.TableEncryption.CUSTOMER_MANAGED,
            "encryption_key": key,
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            "removal_policy": removal,
        }
        # Shared by every concurrent copy of the function: the circuit breaker's state per endpoint.
        self.breaker_table = dynamodb.Table(
            self, "CircuitBreakerTable",
            partition_key=dynamodb.Attribute(name="breaker_id", type=dynamodb.AttributeType.STRING),
            **table_options)  # type: ignore[arg-type]
        self.cache_table = dynamodb.Table(
            self, "ResponseCacheTable",
            partition_key=dynamodb.Attribute(name="cache_key", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expires_at", **table_options)  # type: ignore[arg-type]


    def _prediction_log(self, config: EnvironmentConfig, key: kms.IKey,
                        capture_bucket: s3.IBucket) -> firehose.DeliveryStream:
        """Every prediction, delivered to the capture bucket by the hour."""
        return firehose.DeliveryStream(
            self, "PredictionLog",
            destination=firehose.S3Bucket(
                capture_bucket,
                data_output_prefix=f"{self.prefixes.prediction_log}!{{timestamp:yyyy/MM/dd/HH}}/",
                error_output_prefix=f"{self.prefixes.prediction_log}errors/!{{firehose:error-output-type}}/"
                                    "!{timestamp:yyyy/MM/dd/HH}/",
                encryption_key=key,
                buffering_interval=cdk.Duration.seconds(60),
                logging_config=firehose.EnableLogging(logs.LogGroup(
                    self, Metric.PREDICTION_LOG_DELIVERY_ERRORS, encryption_key=key,
                    retention=log_retention(config.lambda_.log_retention_days),
                    removal_policy=cdk.RemovalPolicy.DESTROY)),
            ),
            encryption=firehose.StreamEncryption.customer_managed_key(key),
        )

    def _function(self, config: EnvironmentConfig, key: kms.IKey, artifact_bucket: s3.IBucket) -> lambda_.IFunction:
        api_settings = config.inference_api
        sla_read_seconds = api_settings.endpoint_timeout_ms / 1000
        attempts = api_settings.max_attempts
        # Every attempt may use the full connect + read timeout; 3 s more for DynamoDB, S3 and Firehose.
        timeout_seconds = int(attempts * (1.0 + sla_read_seconds) + 3) + 1
        self.function = MlopsFunction(
            self, "InferenceFunction",
            source="inference",
            description="Inference API: endpoint call with fallback model, cache and safe default",
            memory_size=512,
            timeout=cdk.Duration.seconds(timeout_seconds),
            settings=config.lambda_,
            key=key,
            data=("pipelines/schemas",),
            # Unreserved: a reservation is also a cap, and a throttled invocation is an API error where the
            # function would have answered from its fallbacks; the API stage's throttle (below) is the designed
            # overload limit. Its demand at the SLA peak is checked against the account quota instead.
            unreserved_demand=inference_concurrency_demand(config),
            environment=InferenceEnvironment.for_config(
                config, breaker_table_name=self.breaker_table.table_name,
                response_cache_table_name=self.cache_table.table_name,
                prediction_log_stream_name=self.delivery_stream.delivery_stream_name,
                fallback_model_bucket=artifact_bucket.bucket_name),
        )
        function = self.function.function
        skip_checkov(function, "CKV_AWS_115",
                     "Deliberately unreserved: throttling would replace the API's fallback answers with errors; "
                     "the API stage throttle caps the rate and synth checks the SLA demand against the quota.")
        function.add_to_role_policy(iam.PolicyStatement(
            sid="InvokeTheEnvironmentsEndpoint", actions=["sagemaker:InvokeEndpoint"],
            resources=[f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:endpoint/"
                       f"{endpoint_name(config)}"]))
        function.add_to_role_policy(iam.PolicyStatement(
            sid="BreakerAndCache", actions=["dynamodb:GetItem", "dynamodb:PutItem"],
            resources=[self.breaker_table.table_arn, self.cache_table.table_arn]))
        key.grant_encrypt_decrypt(function)
        function.add_to_role_policy(iam.PolicyStatement(
            sid="LogEveryPrediction", actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
            resources=[self.delivery_stream.delivery_stream_arn]))
        grant_prefix_read(artifact_bucket, function, [self.prefixes.fallback_model_key])

        return function

    def _api(self, config: EnvironmentConfig, key: kms.IKey, function: lambda_.IFunction) -> None:
        access_logs = logs.LogGroup(self, "ApiAccessLogs", encryption_key=key,
                                    retention=log_retention(config.lambda_.log_retention_days),
                                    removal_policy=cdk.RemovalPolicy.DESTROY)
        self.api = apigwv2.HttpApi(
            self, "HttpApi",
            description=f"MLOps {config.name} inference API of {config.model.name if config.model else '?'} (IAM auth)",
            default_authorizer=authorizers.HttpIamAuthorizer(),
            create_default_stage=False,
        )
        self.api.add_routes(path="/predict", methods=[apigwv2.HttpMethod.POST],
                            integration=integrations.HttpLambdaIntegration("Predict", function))
        stage = apigwv2.HttpStage(
            self, "DefaultStage", http_api=self.api, stage_name="$default", auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=max(1, int(config.serving.sla.peak_requests_per_second * 2)),
                burst_limit=max(1, int(config.serving.sla.peak_requests_per_second * 4))),
            detailed_metrics_enabled=True,
        )
        self._access_logging(stage, access_logs)

    def _acknowledge_wildcards(self) -> None:
        allow_wildcards(self.function, {
            "Action::kms:GenerateDataKey*": "Reading encrypted items and writing the KMS-encrypted cache need "
                                            "data keys from the project key.",
            "Action::kms:ReEncrypt*": "CDK's encrypt/decrypt grant on the single project key.",
            "Action::s3:GetObject*": "CDK's read grant on the one fallback-model object.",
            "Action::s3:GetBucket*": "CDK's read grant: bucket lookups before reading the fallback model.",
            "Action::s3:List*": "CDK's read grant: a missing fallback model answers 404 instead of 403.",
        })

    def _firehose_allowances(self) -> None:
        allow_wildcards(self.delivery_stream, {
            "Action::kms:GenerateDataKey*": "Firehose writes KMS-encrypted objects and its own encrypted buffer.",
            "Action::kms:ReEncrypt*": "CDK's encrypt/decrypt grant on the single project key.",
            "Action::s3:Abort*": "Firehose aborts a failed multipart upload of a delivery batch.",
            "Action::s3:DeleteObject*": "CDK's write grant for the delivery role (Firehose replaces failed parts).",
            "Action::s3:GetBucket*": "Firehose checks the destination bucket before delivering.",
            "Action::s3:GetObject*": "CDK's read/write grant for the delivery role.",
            "Action::s3:List*": "Firehose lists the destination bucket's multipart uploads.",
            "Resource::*CaptureBucket*/*": "Delivery keys are time-partitioned below inference-api/ and chosen by "
                                          "Firehose per batch.",
        })

    def _access_logging(self, stage: apigwv2.HttpStage, log_group: logs.ILogGroup) -> None:
        cfn_stage = stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=log_group.log_group_arn,
            format='{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
                   '"caller":"$context.identity.caller","requestTime":"$context.requestTime",'
                   '"routeKey":"$context.routeKey","status":"$context.status",'
                   '"latency":"$context.responseLatency","integrationError":"$context.integrationErrorMessage"}')
