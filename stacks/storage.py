"""Storage: the environment's customer-managed KMS key and its S3 buckets.

Every bucket is versioned, private, TLS-only (TLS 1.2 or newer), logged to the access-log bucket and, but for
that bucket, encrypted with the project key using S3 bucket keys (fewer KMS calls per object).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlsettings.config import EnvironmentConfig
from mlsettings.drift_partials import ENGINE_PARTIALS
from mlsettings.naming import artifact_bucket_name, data_key_alias
from mlsettings.vocabulary import Published
from stacks.constructs.checkov import skip_checkov
from stacks.constructs.cross_account import bucket_statements, key_statements
from stacks.constructs.nag import acknowledge
from stacks.constructs.published_names import publish_name


class StorageStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 consumers: Sequence[EnvironmentConfig] = (), **kwargs: object) -> None:
        """``consumers``: the environments in other accounts that deploy from this (registry) environment; the
        artifact bucket's and the key's policies admit exactly their reading roles."""
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        storage = config.storage
        removal = cdk.RemovalPolicy.RETAIN if storage.retain_data else cdk.RemovalPolicy.DESTROY

        self.key = self._key(config, removal)
        self.access_logs_bucket = self._access_logs_bucket(config, removal)
        self.data_bucket = self._bucket(
            "DataBucket", "data/", removal, storage.infrequent_access_after_days,
            storage.noncurrent_version_expiration_days, event_bridge=True)
        # EventBridge notifications: the drift monitor publishes a Processing job's report when it lands.
        # Named: consumer accounts name it in their IAM policies (derived from cdk.json, never looked up).
        self.artifact_bucket = self._bucket(
            "ArtifactBucket", "artifacts/", removal, storage.infrequent_access_after_days,
            storage.noncurrent_version_expiration_days, event_bridge=True,
            bucket_name=artifact_bucket_name(config, config.account or self.account))
        for statement in bucket_statements(consumers, bucket_arn=self.artifact_bucket.bucket_arn,
                                           partition=self.partition) if consumers else []:
            self.artifact_bucket.add_to_resource_policy(statement)
        for statement in key_statements(consumers, region=self.region, partition=self.partition) if consumers else []:
            self.key.add_to_resource_policy(statement)
        # EventBridge notifications with the partials drift engine: each captured object is reduced when it lands.
        self.capture_bucket = self._bucket(
            "CaptureBucket", "capture/", removal, None, storage.noncurrent_version_expiration_days,
            expiration_days=storage.capture_retention_days,
            event_bridge=config.monitoring.drift.engine == ENGINE_PARTIALS)

        for key_name, value in (
            (Published.KMS_KEY_ARN, self.key.key_arn),
            (Published.DATA_BUCKET, self.data_bucket.bucket_name),
            (Published.ARTIFACT_BUCKET, self.artifact_bucket.bucket_name),
            (Published.CAPTURE_BUCKET, self.capture_bucket.bucket_name),
        ):
            publish_name(self, environment=config.name, key=key_name, value=value)

    def _key(self, config: EnvironmentConfig, removal: cdk.RemovalPolicy) -> kms.Key:
        """The environment's one key, with the statements the services that encrypt with it need."""
        key = kms.Key(
            self, "DataKey",
            description=f"Encrypts the {config.name} MLOps data, models, captured traffic, logs and queues",
            enable_key_rotation=True,
            removal_policy=removal,
            alias=data_key_alias(config),  # how consumer accounts' policies select this key
        )
        # Encrypted log groups, alarm notifications and EventBridge deliveries need the services themselves
        # to use the key.
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchLogsUseOfTheKey",
            principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
            # CloudWatch Logs' documented statement also lists kms:Describe*; DescribeKey has no encryption
            # context, so under this condition it was never allowed (tests/infra/test_iam_validity.py).
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": f"arn:{self.partition}:logs:{self.region}:{self.account}:*"}},
        ))
        # CloudWatch alarms publish to the encrypted alert topics: SNS asks KMS for a data key as the alarm's
        # service principal (SNS Developer Guide, "Key management": event sources and encrypted topics). AWS's
        # knowledge-center article on alarms with encrypted topics (re:Post "cloudwatch-configure-alarm-sns")
        # gives this statement and refines it with a source condition; aws:SourceAccount was already here,
        # aws:SourceArn narrows it to this region's alarms (both unverified against a real account).
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="AlarmNotificationsToEncryptedTopics",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": self.account},
                        "ArnLike": {"aws:SourceArn": f"arn:{self.partition}:cloudwatch:{self.region}:"
                                                     f"{self.account}:alarm:*"}},
        ))
        # EventBridge delivers undeliverable events to the rules' encrypted dead-letter queues. AWS documents
        # this key grant for event sources without source conditions (SQS Developer Guide, "Key management":
        # KMS permissions for AWS services; SNS Developer Guide, "Key management": event sources and
        # encrypted topics), and documents aws:SourceArn for EventBridge only on the SQS queue policy
        # (EventBridge User Guide, "Using resource-based policies": Amazon SQS permissions). Nothing
        # documents that EventBridge's KMS request carries aws:SourceAccount (AWS's MDAA constructs state the
        # SNS guide lists it as unsupported for EventBridge), and a condition on a key that is not sent
        # would drop every dead letter. The confused-deputy guard is each queue's policy (aws:SourceArn =
        # its own rules), see stacks/constructs/queues.py.
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="EventBridgeDeliveryToEncryptedQueues",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],
        ))
        return key

    def _access_logs_bucket(self, config: EnvironmentConfig, removal: cdk.RemovalPolicy) -> s3.Bucket:
        storage = config.storage
        bucket = s3.Bucket(
            self, "AccessLogsBucket",
            # S3 server access logging can only deliver to a bucket encrypted with SSE-S3.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True, minimum_tls_version=1.2, versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(
                id="ExpireAccessLogs",
                expiration=cdk.Duration.days(storage.access_log_retention_days),
                noncurrent_version_expiration=cdk.Duration.days(storage.noncurrent_version_expiration_days),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
            )],
            removal_policy=removal,
        )
        acknowledge(bucket, "AwsSolutions-S1",
                    "This is the access-log bucket itself; logging it into itself would loop.")
        skip_checkov(bucket, "CKV_AWS_18",
                     "This is the access-log bucket itself; logging it into itself would loop.")
        skip_checkov(bucket, "CKV_AWS_145",
                     "S3 server access logging only delivers to SSE-S3 buckets, not SSE-KMS.")
        return bucket

    def _bucket(self, construct_id: str, log_prefix: str, removal: cdk.RemovalPolicy,
                infrequent_access_after_days: int | None, noncurrent_days: int, *,
                expiration_days: int | None = None, event_bridge: bool = False,
                bucket_name: str | None = None) -> s3.Bucket:
        transitions = [] if infrequent_access_after_days is None else [s3.Transition(
            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
            transition_after=cdk.Duration.days(infrequent_access_after_days))]
        bucket = s3.Bucket(
            self, construct_id, bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS, encryption_key=self.key, bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True, minimum_tls_version=1.2, versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket, server_access_logs_prefix=log_prefix,
            lifecycle_rules=[s3.LifecycleRule(
                id="Retention",
                transitions=transitions,
                expiration=None if expiration_days is None else cdk.Duration.days(expiration_days),
                noncurrent_version_expiration=cdk.Duration.days(noncurrent_days),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
            )],
            removal_policy=removal,
        )
        if event_bridge:
            # Native CloudFormation property; the L2's event_bridge_enabled adds a custom-resource Lambda.
            cfn_bucket = bucket.node.default_child
            assert isinstance(cfn_bucket, s3.CfnBucket)
            cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
                event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                    event_bridge_enabled=True))
        return bucket



