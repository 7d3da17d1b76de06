"""The vocabulary that crosses the wall between the infrastructure and the runtime, written once.

Every name here is used by more than one side — a stack writes it into a rule, a policy, a dashboard or a
published parameter, and a handler, the domain, the CLI or the demo reads or emits it — so it is defined here and
imported by all of them (tests/unit/test_vocabulary.py fails when one of these strings is typed again in another
non-test module). Standard library only.
"""

from __future__ import annotations

from typing import Final, Literal

# ------------------------------------------------------------------------------------------------------ events
SAGEMAKER_SOURCE = "aws.sagemaker"
PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
"""SageMaker's registry event (EventBridge User Guide, SageMaker events): the gate judges every one."""
PROMOTION_SOURCE = "mlops.promotion"
PROMOTION_ACCEPTED = "Model Promotion Accepted"
"""The gate's event for an accepted promotion (or rollback, or Challenger swap): the stage's deployer acts on it."""
RESULT_SOURCE = "mlops.deployment"
DEPLOYMENT_RESULT = "Model Deployment Result"
"""A deployer's outcome, forwarded to the registry, where the gate's function records it."""

# Why a promotion event was emitted (its ``reason``).
PROMOTION_REASON = "promotion"
ROLLBACK_REASON = "rollback"
CHALLENGER_SWAP_REASON = "challenger_swap"

# ------------------------------------------------------------------------------------ registry stages, statuses
DEVELOPMENT = "Development"
STAGING = "Staging"
PRODUCTION = "Production"
STAGES = (DEVELOPMENT, STAGING, PRODUCTION)
SERVABLE_STAGES = (STAGING, PRODUCTION)
"""ModelLifeCycle stages an environment may serve (serving.served_stages)."""

APPROVED = "Approved"
PENDING_MANUAL_APPROVAL = "PendingManualApproval"
REJECTED = "Rejected"
APPROVAL_STATUSES = (APPROVED, PENDING_MANUAL_APPROVAL, REJECTED)
"""ModelApprovalStatus values."""

STATUS_PENDING_APPROVAL = "PendingApproval"
"""ModelLifeCycle.StageStatus the Register step writes."""
STATUS_APPROVED = "Approved"
"""... an approver writes (Studio, or `mlops promote`)."""
STATUS_DEPLOYED = "Deployed"
STATUS_DEPLOY_FAILED = "DeployFailed"
DEPLOYER_STATUSES = (STATUS_DEPLOYED, STATUS_DEPLOY_FAILED)
"""... written only by the gate's function from deployment results (IAM keeps approvers from them)."""

# ------------------------------------------------------------------------------------------------ the endpoint
CHAMPION = "Champion"
CHALLENGER = "Challenger"
VARIANTS = (CHAMPION, CHALLENGER)
"""Stable production-variant names: blue/green updates and per-variant alarms need them."""

# ------------------------------------------------------------------------------------------- published names
PARAMETER_PREFIX = "/mlops"
"""Published names are SSM parameters ``/mlops/<env>/<key>`` (stacks/constructs/published_names.py writes them,
mlops/resources.py reads them)."""


def parameter_name(environment: str, key: str) -> str:
    return f"{PARAMETER_PREFIX}/{environment}/{key}"


MODELS_KEY = "models"
VARIANT_KEY = "variant"
DEPLOYER_KEY = "deployer"
"""Published names of one model live below ``/mlops/<env>/models/<model>/``."""


class Published:
    """The keys of the published names: the environment's (buckets, key, bus, ledger, topics) and, below
    ``for_model``, each model's (group, pipeline, endpoint, deployer, API, reports)."""

    KMS_KEY_ARN = "kms-key-arn"
    DATA_BUCKET = "data-bucket"
    ARTIFACT_BUCKET = "artifact-bucket"
    CAPTURE_BUCKET = "capture-bucket"
    MODEL_PACKAGE_GROUP = "model-package-group"
    REGISTRY_ENVIRONMENT = "registry-environment"
    LEDGER_TABLE = "ledger-table"
    EVENT_BUS_NAME = "event-bus-name"
    PROMOTION_TOPIC_ARN = "promotion-topic-arn"
    PIPELINE_NAME = "pipeline-name"
    TRAINING_DATA_URI = "training-data-uri"
    ENDPOINT_NAME = "endpoint-name"
    CAPTURE_DESTINATION_URI = "capture-destination-uri"
    GROUND_TRUTH_URI = "ground-truth-uri"
    BATCH_SCORING_FUNCTION = "batch-scoring-function"
    DEPLOYER_STATE_MACHINE_ARN = "deployer-state-machine-arn"
    INFERENCE_API_URL = "inference-api-url"
    INFERENCE_API_ID = "inference-api-id"
    INFERENCE_FUNCTION_NAME = "inference-function-name"
    PREDICTION_LOG_PREFIX = "prediction-log-prefix"
    DRIFT_REPORT_URI = "drift-report-uri"

    @staticmethod
    def topic_arn(severity: str) -> str:
        return f"{severity}-topic-arn"

    @staticmethod
    def for_model(model: str, key: str) -> str:
        """A model's own name among the environment's: ``models/<model>/<key>`` (its endpoint, pipeline, …)."""
        return f"{MODELS_KEY}/{model}/{key}"

    @staticmethod
    def model_prefix(environment: str, model: str) -> str:
        """Every published parameter of one model starts with this (the model's roles reach only these)."""
        return parameter_name(environment, f"{MODELS_KEY}/{model}")

    @staticmethod
    def variant_prefix(environment: str, model: str) -> str:
        """Where the model's deployer publishes, per variant, the package it serves: ``<prefix>/<Variant>/<field>``."""
        return f"{Published.model_prefix(environment, model)}/{VARIANT_KEY}"

    @staticmethod
    def deployer_prefix(environment: str, model: str) -> str:
        """Where the model's deployer keeps its last result per stage: ``<prefix>/<Stage>/last-result``."""
        return f"{Published.model_prefix(environment, model)}/{DEPLOYER_KEY}"


VARIANT_PACKAGE_ARN = "model-package-arn"
VARIANT_MODEL_VERSION = "model-version"
"""Fields under ``Published.variant_prefix(env)/<Variant>/``."""

PAGE: Final = "page"
TICKET: Final = "ticket"
Severity = Literal["page", "ticket"]
"""Alert topics: a page wakes on-call, a ticket waits for working hours."""

# ------------------------------------------------------------------------------------------------ data layout
TRAINING_DATA_PREFIX = "training/"
"""Data bucket: what the training pipeline reads (and what retrains it when new data lands)."""
PIPELINE_OUTPUTS_PREFIX = "pipelines"
"""Artifact bucket: ``pipelines/<execution id>/<step>/<output>`` (golden payloads, baselines, evaluations)."""
MODELS_PREFIX = "models"
CHECKPOINTS_PREFIX = "checkpoints"
FALLBACK_MODEL_KEY = "serving/fallback_model.json"
"""Artifact bucket: the Champion's fallback model, published by the deployer, loaded by the inference API."""
REPORT_PREFIX = "drift-reports"
CAPTURE_PREFIX = "endpoint"
"""Capture bucket: the endpoint's data capture, ``endpoint/<endpoint>/<variant>/yyyy/mm/dd/hh/``."""
PREDICTION_LOG_PREFIX = "inference-api"
"""Capture bucket: the inference API's prediction log (every answer, fallbacks included)."""
BATCH_PREFIX = "batch"
GROUND_TRUTH_PREFIX = "ground-truth"

# Files the training steps write and the serving side reads.
EVALUATION_FILE = "evaluation.json"
BASELINE_FILE = "baseline.json"
GOLDEN_FILE = "golden_payloads.json"
GOLDEN_FORMAT = "mlops-golden/1"
SAMPLE_PAYLOAD_FILE = "sample_payload.tar.gz"
FALLBACK_FILE = "fallback.json"
"""The fallback model inside model.tar.gz (the deployer extracts it)."""
NO_BASELINE_FORMAT = "mlops-no-previous-baseline/1"
QUALITY_GATE_PASSED = "quality_gate_passed"
"""Lineage key: the Register step's and the local run's mark that the gate passed (the gate refuses without it)."""

# ------------------------------------------------------------------------------------------------ metrics
NAMESPACE = "MLOps"
"""Every custom metric's CloudWatch namespace (each function's POWERTOOLS_METRICS_NAMESPACE)."""


class Service:
    """Function services (POWERTOOLS_SERVICE_NAME); the drift and inference metrics carry them as a dimension."""

    PROMOTION_GATE = "promotion_gate"
    DEPLOYER = "deployer"
    HEALTH_CHECK = "health_check"
    BATCH_SCORING = "batch_scoring"
    DRIFT_MONITOR = "drift_monitor"
    DRIFT_PARTIALS = "drift_partials"
    INFERENCE = "inference"


class Metric:
    """Custom metric names (EMF, namespace ``NAMESPACE``): emitted by the functions, watched by the alarms and
    drawn on the dashboards."""

    # drift monitor, per variant
    VARIANT_SKIPPED = "VariantSkipped"
    ROWS_ANALYSED = "RowsAnalysed"
    MALFORMED_RECORDS = "MalformedRecords"
    MAX_DRIFT = "MaxDrift"
    DRIFTED_FEATURE_SHARE = "DriftedFeatureShare"
    DRIFT_DETECTED = "DriftDetected"
    WEIGHTED_DRIFT_SCORE = "WeightedDriftScore"
    DATA_QUALITY_VIOLATIONS = "DataQualityViolations"
    DATA_QUALITY_TOP_FEATURE_VIOLATIONS = "DataQualityTopFeatureViolations"
    PREDICTION_SHIFT = "PredictionShift"
    CONFIDENCE_SHIFT = "ConfidenceShift"
    PREDICTION_DRIFTED = "PredictionDrifted"
    CONFIDENCE_DRIFTED = "ConfidenceDrifted"
    FEATURE_DRIFT = "FeatureDrift"
    LABELLED_ROWS = "LabelledRows"
    QUALITY_DROP = "QualityDrop"
    QUALITY_DEGRADED = "QualityDegraded"
    # drift at any traffic (engines partials and processing), per variant and window: objects whose partial
    # result was merged; objects the run counted itself (partial missing, late, stale or invalid); objects left
    # out (beyond the run's inline budget: > 0 opens a ticket)
    PARTIALS_MERGED = "PartialsMerged"
    OBJECTS_COUNTED_INLINE = "ObjectsCountedInline"
    OBJECTS_NOT_ANALYSED = "ObjectsNotAnalysed"
    # inference API
    RESPONSES = "Responses"
    PREDICTIONS = "Predictions"
    DEGRADED_RESPONSES = "DegradedResponses"
    FALLBACKS = "Fallbacks"
    REJECTED_REQUESTS = "RejectedRequests"
    DEPENDENCY_ERRORS = "DependencyErrors"
    BREAKER_STORE_ERRORS = "BreakerStoreErrors"
    RESPONSE_CACHE_ERRORS = "ResponseCacheErrors"
    FALLBACK_MODEL_ERRORS = "FallbackModelErrors"
    PREDICTION_LOG_DELIVERY_ERRORS = "PredictionLogDeliveryErrors"
    # health check, deployer, batch scoring
    HEALTH_CHECK_PASSED = "HealthCheckPassed"
    SERVED_MODEL_VERSION = "ServedModelVersion"
    BATCH_SCORING_STARTED = "BatchScoringStarted"
    # dimensions
    ENDPOINT_DIMENSION = "Endpoint"
    VARIANT_DIMENSION = "Variant"
    FEATURE_DIMENSION = "Feature"
    STAGE_DIMENSION = "Stage"


# An own image's model (training.code.kind image) is scored by batch transform in its pipeline: Preprocess writes the
# rows (its SCORE_OUTPUT output), the Score step answers them, Evaluate and Baseline read the answers.
SCORE_OUTPUT = "score_rows"
SCORE_ANSWERS = "score_answers"
"""Where the Score step's answers go (its output folder) and where Evaluate and Baseline read them (their input)."""
SCORE_FILES = {"train": "train.csv", "test": "test.csv"}
"""The score rows: the raw features of train_raw and test_raw, one row per line in the same order, no header and no
label — what batch transform sends the image's serve program."""
TRANSFORM_OUTPUT_SUFFIX = ".out"
"""Batch transform writes the answers to an input object as ``<input object>.out``, "in the same order as the
corresponding records in the input file" (Developer Guide, 'Use batch transform to run inference')."""

TRANSFORM_JOIN_INPUT = {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": "$"}
"""CreateTransformJob's DataProcessing for CSV rows answered line by line: each output line is its input record
followed by the model's answer (Developer Guide, "Associate Prediction Results with Input Records": "JoinSource ...
Input ... joins the input data with the inference results"); the platform's batch scoring and an own image's Score
step both use it."""
TRANSFORM_MAX_PAYLOAD_MB = 6
"""CreateTransformJob MaxPayloadInMB: "The default value is 6 MB" (API reference), stated so the mini-batches of a
MultiRecord job are what the platform documents."""
