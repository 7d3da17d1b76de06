"""The SageMaker Pipeline definition, built as plain dicts (pipeline definition JSON, Version 2020-12-01).

Why not the SageMaker SDK: it cannot emit a definition offline without workarounds and puts a timestamp in
script-mode steps, so every deploy would update the pipeline (FACTS.md). Here each step's ``Arguments`` is
the matching ``Create*`` request without the job name; tests validate every step against botocore's
request shapes and every ``Get``/``Std:JsonGet`` reference. The builder is deterministic: the same inputs
give byte-identical JSON.

Values that CDK only knows at deploy time (bucket names, role ARNs, asset URIs) come in as strings that may
be CDK tokens; the stack serializes the result with ``Stack.to_json_string``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsettings.instance_types import has_local_storage, volume_kms_key
from mlsettings.problem_types import ProblemType, gate_metric
from mlsettings.quality import gate_checks
from mlsettings.training_code import (
    DEFAULT_ENTRY_POINT,
    ENTRY_POINT_HYPERPARAMETER,
    IMAGE,
    KIND_HYPERPARAMETER,
    MODEL_CODE_FOLDER,
    PLATFORM,
    PLATFORM_PACKAGES,
    SCRIPT_KINDS,
    SERVE_HOOK_HYPERPARAMETER,
    SKLEARN_SCRIPT,
    TRAINING_KIND_KEY,
)
from mlsettings.vocabulary import (
    CHECKPOINTS_PREFIX,
    DEVELOPMENT,
    EVALUATION_FILE,
    MODELS_PREFIX,
    PENDING_MANUAL_APPROVAL,
    PIPELINE_OUTPUTS_PREFIX,
    QUALITY_GATE_PASSED,
    SCORE_ANSWERS,
    SCORE_OUTPUT,
    STATUS_PENDING_APPROVAL,
    TRANSFORM_JOIN_INPUT,
    TRANSFORM_MAX_PAYLOAD_MB,
)
from pipelines.images import XGBOOST_IMAGE

REPO_ROOT = Path(__file__).resolve().parents[1]

# Container paths (every step script takes them as arguments, with these defaults).
PROCESSING = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING}/input/code"
CODE_ROOT = "/opt/ml/code"
CHECKPOINTS = "/opt/ml/checkpoints"
EVALUATION_REPORT = "EvaluationReport"
# What pipelines/steps/preprocess.py writes below its --output-dir, one processing output each.
PREPROCESS_OUTPUTS = ("train", "validation", "test", "train_raw", "test_raw", "metadata")
# An own image (training.code.kind image) is scored by batch transform: Preprocess also writes the rows its serve
# program answers (SCORE_OUTPUT: mlsettings.vocabulary.SCORE_FILES), a Model step makes the trained model a
# SageMaker Model, and the Transform step answers them; Evaluate and Baseline read those answers.
TEAM_MODEL_STEP = "TeamModel"
SCORE_STEP = "Score"
NO_IMAGE_STEP = "NoImageYet"

Expression = dict[str, Any]

# The XGBoost image's toolkit (sagemaker-containers 2.8.6.post2) runs `python -m pip install .` on the user
# code before training and before serving, always. Its pip (26.1) builds in an isolated environment that
# downloads setuptools from an index, which a network-isolated job or model cannot reach: the job fails before
# our code runs and the endpoint never answers /ping. With these settings pip builds with the image's own
# setuptools (80.10.2) and never looks for an index (pip reads PIP_NO_BUILD_ISOLATION=0 as
# --no-build-isolation). tests/contract/ runs that install with the image's pip in a network namespace
# without a network, with and without them.
OFFLINE_CODE_INSTALL = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
# The toolkit runs sagemaker_program as `python -m <program without .py>`: it must be a module name.
TRAINING_PROGRAM = "pipelines.steps.train"
# A team's own program (training.code.kind xgboost-script) runs under the platform's wrapper, which checks what it
# wrote and completes the model folder (pipelines/steps/script_train.py).
SCRIPT_TRAINING_PROGRAM = "pipelines.steps.script_train"
# The scikit-learn image's toolkit (sagemaker-training 4.8.0) runs a sagemaker_program that ends in .py as a Python
# program (`python <program>`, _entry_point_type.PYTHON_PROGRAM: the bundle has no setup.py) and anything else as
# a shell command, so there the wrapper is named by its path; it then installs requirements.txt alone.
SCRIPT_TRAINING_FILE = SCRIPT_TRAINING_PROGRAM.replace(".", "/") + ".py"
SERVING_PROGRAM = "inference.py"
SERVING_CODE_DIR = f"/opt/ml/model/{MODEL_CODE_FOLDER}"
# What the toolkit answers when a request has no Accept (or */*): without it, JSON.
DEFAULT_ACCEPT = "text/csv"


def param(name: str) -> Expression:
    return {"Get": f"Parameters.{name}"}


def step_property(step: str, path: str) -> Expression:
    return {"Get": f"Steps.{step}.{path}"}


def join(*values: Any, on: str = "") -> Expression:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def json_get(step: str, property_file: str, path: str) -> Expression:
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.{property_file}"},
                            "Path": path}}


def processing_output_uri(step: str, output: str) -> Expression:
    return step_property(step, f"ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri")


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """What the definition needs from config and from the deployed resources (values may be CDK tokens)."""

    pipeline_name: str
    role_arn: str
    image_uri: str
    artifact_bucket: str
    kms_key_id: str
    code_uri: str  # s3:// URI of the deterministic sourcedir.tar.gz (BUNDLED_PACKAGES)
    code_file_name: str  # its object name (what a container finds in its input folder)
    schema_uri: str  # s3:// URI of the data schema JSON
    schema_file_name: str
    no_baseline_uri: str  # s3:// URI of the marker that stands for "no previous baseline"
    model_package_group: str
    model: str
    """The model's name: its outputs, artifacts and checkpoints live below ``<prefix>/<model>/`` in the shared
    artifact bucket (mlsettings.naming.model_prefixes), which the model's roles alone reach."""
    default_data_uri: str
    training_instance_type: str
    training_instance_count: int
    processing_instance_type: str
    volume_size_gb: int
    use_spot: bool
    max_run_seconds: int
    max_wait_seconds: int
    checkpointing: bool
    num_round: int
    quality_metric: str
    quality_threshold: float
    inference_instance_types: tuple[str, ...]
    transform_instance_types: tuple[str, ...]
    expected_p99_latency_ms: float
    network_isolation: bool = True
    min_rows_per_class: int = 10
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    drift_thresholds: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The configured DriftThresholds (mlsettings.config.drift_thresholds) the Validate step compares the new data
    with the previous training data by."""
    training_instance_types: tuple[str, ...] = ()
    """The values a run may give TrainingInstanceType (its EnumValues): the training types of the configured type's
    storage class (``mlsettings.instance_types.same_storage_class``), so the Train step's volume key stays valid.
    The stack always sets it; empty leaves the parameter open (the Validate step still checks the run's type)."""
    training_kind: str = PLATFORM
    """mlsettings.training_code.TRAINING_KINDS: the platform's program or the team's (script mode)."""
    entry_point: str = DEFAULT_ENTRY_POINT
    """The team's program at the top of the code bundle (script kinds)."""
    find_links: str | None = None
    """PIP_FIND_LINKS of the Train step: the bundle's vendored wheels as the container sees them, or None."""
    evaluate_hook: str | None = None
    """A team's evaluation hook at the top of the code bundle (training.code.evaluate_hook), or None."""
    preprocess_hook: str | None = None
    """A team's preprocessing hook at the top of the code bundle (training.code.preprocess_hook), or None."""
    serve_hook: str | None = None
    """A team's serving hook at the top of the code bundle (training.code.serve_hook), or None: the wrapper puts it
    into the model's code/ folder, where the serving handler loads it."""
    framework: str = XGBOOST_IMAGE.framework
    """The model package container's Framework (pipelines.images.FrameworkImage: XGBOOST or SKLEARN)."""
    framework_version: str = XGBOOST_IMAGE.framework_version
    team_image: str | None = None
    """Kind image: the team's image (its repository URI at training.code.image_digest) the Train, TeamModel and Score
    steps run and the model package names; None until the first image is pushed (the pipeline is then one Fail
    step)."""


PARAMETERS: tuple[tuple[str, str], ...] = (
    ("DataUri", "String"),
    ("GitCommit", "String"),
    ("ConfigHash", "String"),
    ("PreviousBaselineUri", "String"),
    ("TrainingInstanceType", "String"),
    ("QualityThreshold", "Float"),
    ("ModelApprovalStatus", "String"),
    ("NumRound", "Integer"),
)


def _parameters(settings: PipelineSettings) -> list[dict[str, Any]]:
    defaults: dict[str, Any] = {
        "DataUri": settings.default_data_uri,
        "GitCommit": "unknown",
        "ConfigHash": "unknown",
        "PreviousBaselineUri": settings.no_baseline_uri,
        "TrainingInstanceType": settings.training_instance_type,
        "QualityThreshold": settings.quality_threshold,
        "ModelApprovalStatus": PENDING_MANUAL_APPROVAL,
        "NumRound": settings.num_round,
    }
    parameters: list[dict[str, Any]] = [{"Name": name, "Type": kind, "DefaultValue": defaults[name]}
                                        for name, kind in PARAMETERS]
    for parameter in parameters:
        if parameter["Name"] == "TrainingInstanceType" and settings.training_instance_types:
            # A string parameter's EnumValues (the SageMaker SDK's ParameterString(enum_values=...)): a run cannot
            # pick a type whose storage class contradicts the Train step's volume key. The Validate step checks
            # the same before anything is trained (pipelines/steps/validate.py).
            parameter["EnumValues"] = list(settings.training_instance_types)
    return parameters


def training_storage(settings: PipelineSettings) -> str:
    """'local' when the configured training type mounts NVMe instance storage (no volume key), else 'ebs'."""
    return "local" if has_local_storage(settings.training_instance_type) else "ebs"


def _s3_input(name: str, uri: Any, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated"},
    }


def output_key(model: str, execution_id: str, step: str, output: str) -> str:
    """The artifact-bucket key prefix of one step output of one execution (what ``_s3_output`` makes)."""
    return f"{PIPELINE_OUTPUTS_PREFIX}/{model}/{execution_id}/{step}/{output}"


def _s3_output(settings: PipelineSettings, name: str, local_path: str, step: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "AppManaged": False,
        "S3Output": {
            "S3Uri": join("s3://", settings.artifact_bucket, f"/{PIPELINE_OUTPUTS_PREFIX}/{settings.model}/",
                          {"Get": "Execution.PipelineExecutionId"}, f"/{step}/{name}"),
            "LocalPath": local_path,
            "S3UploadMode": "EndOfJob",
        },
    }


def _network(settings: PipelineSettings) -> dict[str, Any]:
    network: dict[str, Any] = {"EnableNetworkIsolation": settings.network_isolation,
                               "EnableInterContainerTrafficEncryption": True}
    if settings.subnets:
        network["VpcConfig"] = {"Subnets": list(settings.subnets),
                                "SecurityGroupIds": list(settings.security_group_ids)}
    return network


def _processing_step(settings: PipelineSettings, name: str, module: str, *, inputs: list[dict[str, Any]],
                     outputs: Iterable[tuple[str, str]], arguments: list[Any],
                     property_files: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A processing job in the XGBoost container that unpacks the code bundle and runs one step module.

    The bundle is named as its S3 object (CDK keeps only the last extension: ``<sha256>.gz``), so the
    entrypoint names that file instead of globbing for ``*.tar.gz``."""
    script = module.replace(".", "/") + ".py"
    entrypoint = (f"set -e; mkdir -p {CODE_ROOT}; tar -xzf {CODE_DIR}/{settings.code_file_name} -C {CODE_ROOT}; "
                  f'exec python3 {CODE_ROOT}/{script} "$@"')
    step: dict[str, Any] = {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": settings.processing_instance_type,
                "VolumeSizeInGB": settings.volume_size_gb,
                **volume_kms_key(settings.processing_instance_type, settings.kms_key_id)}},
            "AppSpecification": {"ImageUri": settings.image_uri,
                                 "ContainerEntrypoint": ["/bin/bash", "-c", entrypoint, name],
                                 "ContainerArguments": arguments},
            "RoleArn": settings.role_arn,
            "ProcessingInputs": [_s3_input("code", settings.code_uri, CODE_DIR), *inputs],
            "ProcessingOutputConfig": {
                "Outputs": [_s3_output(settings, out, path, name) for out, path in outputs],
                "KmsKeyId": settings.kms_key_id,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "NetworkConfig": _network(settings),
            "Environment": {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        },
    }
    if property_files:
        step["PropertyFiles"] = property_files
    return step


def _kind(settings: PipelineSettings) -> ProblemType:
    """The model's kind of model: the one its gate metric belongs to (mlsettings.problem_types; the configuration
    refuses a gate metric of another kind than the model's problem_type)."""
    return gate_metric(settings.quality_metric)[0]


def _image_hyperparameters(settings: PipelineSettings) -> dict[str, Any]:
    """What an own image's ``train`` receives in hyperparameters.json (mlplatform/conformance runs it with the same)."""
    return {"num_round": join(param("NumRound")), "objective": _kind(settings).objective,
            "checkpoint_dir": CHECKPOINTS}


def _training_step(settings: PipelineSettings) -> dict[str, Any]:
    """Script mode in the XGBoost framework container: the code bundle arrives as the 'code' channel because
    a network-isolated container cannot download `sagemaker_submit_directory` itself. An own image gets the same
    data channels (no code channel) and runs its ``train``."""
    if settings.training_kind == IMAGE:
        return _image_training_step(settings)
    script = settings.training_kind in SCRIPT_KINDS
    program = TRAINING_PROGRAM if not script else (
        SCRIPT_TRAINING_FILE if settings.training_kind == SKLEARN_SCRIPT else SCRIPT_TRAINING_PROGRAM)
    hyperparameters = {
        "sagemaker_program": program,
        # the toolkit unpacks a local tar.gz as readily as an s3:// one
        "sagemaker_submit_directory": f"/opt/ml/input/data/code/{settings.code_file_name}",
        "num_round": join(param("NumRound")),
        # cuda on a GPU instance, cpu otherwise: TrainingInstanceType is a run-time parameter.
        "device": "auto",
        "checkpoint_dir": CHECKPOINTS,
        # informational (the train step takes the objective from the schema's kind); the same kind, since the
        # configuration only accepts a gate metric of the model's problem type
        "objective": _kind(settings).objective,
        **({ENTRY_POINT_HYPERPARAMETER: settings.entry_point, KIND_HYPERPARAMETER: settings.training_kind}
           if script else {}),
        **({SERVE_HOOK_HYPERPARAMETER: settings.serve_hook} if script and settings.serve_hook else {}),
    }
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": settings.max_run_seconds}
    arguments: dict[str, Any] = {
        "AlgorithmSpecification": {"TrainingImage": settings.image_uri, "TrainingInputMode": "File",
                                   "EnableSageMakerMetricsTimeSeries": True,
                                   # XGBoost's per-round log lines of the kind's evaluation metrics (a team's
                                   # scikit-learn program logs none of its own)
                                   "MetricDefinitions": [] if settings.training_kind == SKLEARN_SCRIPT else [
                                       {"Name": f"validation:{name}", "Regex": rf"validation-{name}:([0-9\.]+)"}
                                       for name in _kind(settings).eval_metric.split(",")]},
        "HyperParameters": hyperparameters,
        "RoleArn": settings.role_arn,
        "InputDataConfig": [
            *(_channel(name, processing_output_uri("Preprocess", name), content_type)
              for name, content_type in DATA_CHANNELS),
            _channel("code", settings.code_uri, "application/x-tar"),
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{settings.artifact_bucket}/{MODELS_PREFIX}/{settings.model}",
                             "KmsKeyId": settings.kms_key_id},
        "ResourceConfig": {"InstanceType": param("TrainingInstanceType"),
                           "InstanceCount": settings.training_instance_count,
                           "VolumeSizeInGB": settings.volume_size_gb,
                           # Built for the configured type; TrainingInstanceType's EnumValues keep a run's type in
                           # the same storage class.
                           **volume_kms_key(settings.training_instance_type, settings.kms_key_id)},
        "StoppingCondition": stopping,
        # The toolkit's `pip install . -r requirements.txt` finds a team's requirements in its vendored wheels only.
        "Environment": {"PYTHONDONTWRITEBYTECODE": "1", **OFFLINE_CODE_INSTALL,
                        **({"PIP_FIND_LINKS": settings.find_links} if settings.find_links else {})},
        **_network(settings),
    }
    if settings.use_spot:
        arguments["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = settings.max_wait_seconds
    if settings.checkpointing:
        arguments["CheckpointConfig"] = {
            "S3Uri": join("s3://", settings.artifact_bucket, f"/{CHECKPOINTS_PREFIX}/{settings.model}/",
                          {"Get": "Execution.PipelineExecutionId"}),
            "LocalPath": CHECKPOINTS,
        }
    return {"Name": "Train", "Type": "Training", "Arguments": arguments}


DATA_CHANNELS = (("train", "text/csv"), ("validation", "text/csv"), ("test", "text/csv"),
                 ("metadata", "application/json"))
"""The Train step's channels of Preprocess's outputs, with their ContentType (every kind; script kinds add 'code')."""


def _image_training_step(settings: PipelineSettings) -> dict[str, Any]:
    """The team's image runs ``train`` (SageMaker's convention, mlplatform/conformance/container_contract.py: "docker
    run <image> train"; no entrypoint of ours, no toolkit settings, no metric regexes: its logs are its own)."""
    platform = _training_step(dataclasses.replace(settings, training_kind=PLATFORM))
    arguments = platform["Arguments"]
    arguments["AlgorithmSpecification"] = {"TrainingImage": settings.team_image, "TrainingInputMode": "File",
                                           "EnableSageMakerMetricsTimeSeries": True, "MetricDefinitions": []}
    arguments["HyperParameters"] = _image_hyperparameters(settings)
    arguments["InputDataConfig"] = [_channel(name, processing_output_uri("Preprocess", name), content_type)
                                    for name, content_type in DATA_CHANNELS]
    arguments.pop("Environment")
    return platform


def _team_model_step(settings: PipelineSettings) -> dict[str, Any]:
    """CreateModel of the trained artifact in the team's image, for the Score step (the job role pulls the image
    and reads the artifact, as the training job did: API reference, CreateModel ExecutionRoleArn, "the role that
    SageMaker can assume to access model artifacts and docker image for deployment ... or for batch transform
    jobs"). A Model step's Arguments are the CreateModel request without ModelName, which Pipelines gives it (the
    SageMaker SDK's CreateModelStep drops it; tests/unit/test_pipeline_definition.py validates the request)."""
    arguments: dict[str, Any] = {
        "ExecutionRoleArn": settings.role_arn,
        "PrimaryContainer": {"Image": settings.team_image,
                             "ModelDataUrl": step_property("Train", "ModelArtifacts.S3ModelArtifacts")},
        "EnableNetworkIsolation": settings.network_isolation,
    }
    if settings.subnets:
        arguments["VpcConfig"] = _network(settings)["VpcConfig"]
    return {"Name": TEAM_MODEL_STEP, "Type": "Model", "Arguments": arguments}


def _score_step(settings: PipelineSettings) -> dict[str, Any]:
    """Batch transform of Preprocess's score rows (training and test features, one raw row per line) with the team's
    model: what its ``serve`` answers, line for line, is what Evaluate and Baseline judge. SplitType Line with
    MultiRecord sends mini-batches of whole lines up to MaxPayloadInMB, and AssembleWith Line writes one output
    line per record (API reference, TransformInput.SplitType, TransformOutput.AssembleWith); the output object is
    the input's name plus ``.out`` (Developer Guide, "Use batch transform"). The instance type is one every
    serving environment registers for transform (InferenceSpecification.SupportedTransformInstanceTypes)."""
    instance_type = settings.transform_instance_types[0]
    return {"Name": SCORE_STEP, "Type": "Transform", "Arguments": {
        "ModelName": step_property(TEAM_MODEL_STEP, "ModelName"),
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": TRANSFORM_MAX_PAYLOAD_MB,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": processing_output_uri("Preprocess", SCORE_OUTPUT)}},
                           "ContentType": "text/csv", "SplitType": "Line", "CompressionType": "None"},
        "TransformOutput": {"S3OutputPath": join("s3://", settings.artifact_bucket,
                                                 f"/{PIPELINE_OUTPUTS_PREFIX}/{settings.model}/",
                                                 {"Get": "Execution.PipelineExecutionId"},
                                                 f"/{SCORE_STEP}/{SCORE_ANSWERS}"),
                            "Accept": "text/csv", "AssembleWith": "Line", "KmsKeyId": settings.kms_key_id},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": 1,
                               **volume_kms_key(instance_type, settings.kms_key_id)},
        # Each output line is its input row followed by the image's answer (as the platform's batch scoring does):
        # the join is SageMaker's, record by record, so an answer cannot slip to another row.
        "DataProcessing": dict(TRANSFORM_JOIN_INPUT),
    }}


def _answers_uri() -> Expression:
    return step_property(SCORE_STEP, "TransformOutput.S3OutputPath")


def _channel(name: str, uri: Any, content_type: str) -> dict[str, Any]:
    return {"ChannelName": name, "ContentType": content_type, "InputMode": "File",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                            "S3DataDistributionType": "FullyReplicated"}}}


def model_package_request(settings: PipelineSettings, *, model_data_url: Any, evaluation_uri: Any,
                          baseline_uri: Any, sample_payload_url: Any, metadata: Mapping[str, Any],
                          approval_status: Any, description: str) -> dict[str, Any]:
    """The CreateModelPackage request; the pipeline's Register step and the local runner both use it."""
    return {
        "ModelPackageGroupName": settings.model_package_group,
        "ModelPackageDescription": description,
        "InferenceSpecification": {
            "Containers": [{"Image": settings.team_image, "ModelDataUrl": model_data_url}
                           if settings.training_kind == IMAGE else {
                "Image": settings.image_uri,
                "ModelDataUrl": model_data_url,
                # train.py packs inference.py and the standard-library modules it imports into the model's code/
                # folder, so a network-isolated endpoint needs nothing but the model artifact.
                "Environment": {"SAGEMAKER_PROGRAM": SERVING_PROGRAM,
                                "SAGEMAKER_SUBMIT_DIRECTORY": SERVING_CODE_DIR,
                                "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": DEFAULT_ACCEPT,
                                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                                **OFFLINE_CODE_INSTALL},
                "Framework": settings.framework,
                "FrameworkVersion": settings.framework_version,
            }],
            # an own image's contract is CSV in and out (docs/TRAINING.md, 'Your own image')
            "SupportedContentTypes": ["text/csv"] if settings.training_kind == IMAGE else ["text/csv",
                                                                                        "application/json"],
            "SupportedResponseMIMETypes": ["text/csv"] if settings.training_kind == IMAGE else ["text/csv",
                                                                                             "application/json"],
            "SupportedRealtimeInferenceInstanceTypes": list(settings.inference_instance_types),
            "SupportedTransformInstanceTypes": list(settings.transform_instance_types),
        },
        "ModelApprovalStatus": approval_status,
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                         "S3Uri": evaluation_uri}}},
        "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": {"ContentType": "application/json",
                                                                    "S3Uri": baseline_uri}}},
        "CustomerMetadataProperties": dict(metadata),
        "SamplePayloadUrl": sample_payload_url,
        "ModelLifeCycle": {"Stage": DEVELOPMENT, "StageStatus": STATUS_PENDING_APPROVAL,
                           "StageDescription": "Registered by the training pipeline; passed the quality gate."},
        "Domain": "MACHINE_LEARNING",
        "Task": _kind(settings).task,
    }


LINEAGE_KEYS = ("git_commit", "config_hash", "data_uri", "data_sha256", "data_versions", "pipeline_execution_arn",
                "training_job_name", "training_log_location", QUALITY_GATE_PASSED, "quality_metric",
                "quality_value", "quality_threshold", "input_schema", "output_schema", "expected_p99_latency_ms",
                "instance_type", "memory_mb")


def _validate_step(settings: PipelineSettings) -> dict[str, Any]:
    return _processing_step(
        settings, "Validate", "pipelines.steps.validate",
        inputs=[_s3_input("data", param("DataUri"), f"{PROCESSING}/input/data"),
                _s3_input("schema", settings.schema_uri, f"{PROCESSING}/input/schema"),
                _s3_input("baseline", param("PreviousBaselineUri"), f"{PROCESSING}/input/baseline")],
        outputs=[("report", f"{PROCESSING}/output/report")],
        arguments=["--input-dir", f"{PROCESSING}/input/data",
                   "--schema", f"{PROCESSING}/input/schema/{settings.schema_file_name}",
                   "--baseline", f"{PROCESSING}/input/baseline", "--report-dir", f"{PROCESSING}/output/report",
                   "--min-rows-per-class", str(settings.min_rows_per_class),
                   "--training-instance-type", param("TrainingInstanceType"),
                   "--training-storage", training_storage(settings),
                   *[part for name, value in sorted(settings.drift_thresholds.items())
                     for part in ("--drift-threshold", f"{name}={json.dumps(value)}")]],
    )

def _preprocess_outputs(settings: PipelineSettings) -> tuple[str, ...]:
    return (*PREPROCESS_OUTPUTS, SCORE_OUTPUT) if settings.training_kind == IMAGE else PREPROCESS_OUTPUTS


def _preprocess_step(settings: PipelineSettings) -> dict[str, Any]:
    step = _processing_step(
        settings, "Preprocess", "pipelines.steps.preprocess",
        inputs=[_s3_input("data", param("DataUri"), f"{PROCESSING}/input/data"),
                _s3_input("schema", settings.schema_uri, f"{PROCESSING}/input/schema")],
        outputs=[(name, f"{PROCESSING}/output/{name}") for name in _preprocess_outputs(settings)],
        arguments=["--input-dir", f"{PROCESSING}/input/data",
                   "--schema", f"{PROCESSING}/input/schema/{settings.schema_file_name}",
                   "--output-dir", f"{PROCESSING}/output", "--data-uri", param("DataUri"),
                   *(["--score-rows"] if settings.training_kind == IMAGE else []),
                   *(["--team-hook", f"{CODE_ROOT}/{settings.preprocess_hook}"] if settings.preprocess_hook else [])],
    )
    step["DependsOn"] = ["Validate"]
    return step

def _image_evaluate_step(settings: PipelineSettings) -> dict[str, Any]:
    """Evaluate an own image's model from its batch answers to the test rows; the platform's fallback model is built
    here from the encoded channels (the team's artifact has none) and stored beside the evaluation report."""
    step = _processing_step(
        settings, "Evaluate", "pipelines.steps.evaluate",
        inputs=[_s3_input(SCORE_ANSWERS, _answers_uri(), f"{PROCESSING}/input/{SCORE_ANSWERS}"),
                _s3_input("test", processing_output_uri("Preprocess", "test_raw"), f"{PROCESSING}/input/test"),
                *(_s3_input(f"{name}_features", processing_output_uri("Preprocess", name),
                            f"{PROCESSING}/input/{name}_features") for name in ("train", "test")),
                _s3_input("metadata", processing_output_uri("Preprocess", "metadata"), f"{PROCESSING}/input/metadata")],
        outputs=[("evaluation", f"{PROCESSING}/output/evaluation")],
        arguments=["--answers-dir", f"{PROCESSING}/input/{SCORE_ANSWERS}", "--test-dir", f"{PROCESSING}/input/test",
                   "--metadata-dir", f"{PROCESSING}/input/metadata",
                   "--train-features-dir", f"{PROCESSING}/input/train_features",
                   "--test-features-dir", f"{PROCESSING}/input/test_features",
                   "--output-dir", f"{PROCESSING}/output/evaluation"],
        property_files=[{"PropertyFileName": EVALUATION_REPORT, "OutputName": "evaluation",
                         "FilePath": EVALUATION_FILE}],
    )
    step["DependsOn"] = [SCORE_STEP]
    return step


def _evaluate_step(settings: PipelineSettings) -> dict[str, Any]:
    if settings.training_kind == IMAGE:
        return _image_evaluate_step(settings)
    return _processing_step(
        settings, "Evaluate", "pipelines.steps.evaluate",
        inputs=[_s3_input("model", step_property("Train", "ModelArtifacts.S3ModelArtifacts"),
                          f"{PROCESSING}/input/model"),
                _s3_input("test", processing_output_uri("Preprocess", "test_raw"), f"{PROCESSING}/input/test")],
        outputs=[("evaluation", f"{PROCESSING}/output/evaluation")],
        arguments=["--model-dir", f"{PROCESSING}/input/model", "--test-dir", f"{PROCESSING}/input/test",
                   "--output-dir", f"{PROCESSING}/output/evaluation",
                   # the team's hook, where the entrypoint unpacked the bundle (its folder at the top)
                   *(["--team-hook", f"{CODE_ROOT}/{settings.evaluate_hook}"] if settings.evaluate_hook else [])],
        property_files=[{"PropertyFileName": EVALUATION_REPORT, "OutputName": "evaluation",
                         "FilePath": EVALUATION_FILE}],
    )

def _baseline_step(settings: PipelineSettings) -> dict[str, Any]:
    if settings.training_kind == IMAGE:
        return _processing_step(
            settings, "Baseline", "pipelines.steps.baseline",
            inputs=[_s3_input(SCORE_ANSWERS, _answers_uri(), f"{PROCESSING}/input/{SCORE_ANSWERS}"),
                    _s3_input("train", processing_output_uri("Preprocess", "train_raw"), f"{PROCESSING}/input/train"),
                    _s3_input("test", processing_output_uri("Preprocess", "test_raw"), f"{PROCESSING}/input/test"),
                    _s3_input("metadata", processing_output_uri("Preprocess", "metadata"),
                              f"{PROCESSING}/input/metadata")],
            outputs=[("baseline", f"{PROCESSING}/output/baseline")],
            arguments=["--answers-dir", f"{PROCESSING}/input/{SCORE_ANSWERS}", "--metadata-dir",
                       f"{PROCESSING}/input/metadata", "--train-dir", f"{PROCESSING}/input/train",
                       "--test-dir", f"{PROCESSING}/input/test", "--output-dir", f"{PROCESSING}/output/baseline"])
    return _processing_step(
        settings, "Baseline", "pipelines.steps.baseline",
        inputs=[_s3_input("model", step_property("Train", "ModelArtifacts.S3ModelArtifacts"),
                          f"{PROCESSING}/input/model"),
                _s3_input("train", processing_output_uri("Preprocess", "train_raw"), f"{PROCESSING}/input/train"),
                _s3_input("test", processing_output_uri("Preprocess", "test_raw"), f"{PROCESSING}/input/test")],
        outputs=[("baseline", f"{PROCESSING}/output/baseline")],
        arguments=["--model-dir", f"{PROCESSING}/input/model", "--train-dir", f"{PROCESSING}/input/train",
                   "--test-dir", f"{PROCESSING}/input/test", "--output-dir", f"{PROCESSING}/output/baseline"],
    )

def _registered_description(settings: PipelineSettings) -> str:
    if settings.training_kind == IMAGE:
        return f"{_kind(settings).name} model trained and served by the team's own image, registered by the pipeline"
    program = (f"the team's {settings.entry_point}" if settings.training_kind in SCRIPT_KINDS
               else "the platform's program")
    framework = "scikit-learn" if settings.training_kind == SKLEARN_SCRIPT else "XGBoost"
    return f"{framework} {_kind(settings).name} model trained by {program}, registered by the training pipeline"


def _register_step(settings: PipelineSettings, quality_value: Expression) -> dict[str, Any]:
    """CreateModelPackage with the lineage every version carries (metadata), after the baseline step."""
    training_job = step_property("Train", "TrainingJobName")
    metadata = {
        "git_commit": param("GitCommit"),
        "config_hash": param("ConfigHash"),
        "data_uri": param("DataUri"),
        "data_lineage_uri": join(processing_output_uri("Preprocess", "metadata"), "/lineage.json"),
        "pipeline_execution_arn": {"Get": "Execution.PipelineExecutionArn"},
        "training_job_name": training_job,
        "training_log_location": join("/aws/sagemaker/TrainingJobs/", training_job),
        QUALITY_GATE_PASSED: "true",
        "quality_metric": settings.quality_metric,
        "quality_value": join(quality_value),
        "quality_threshold": join(param("QualityThreshold")),
        "expected_p99_latency_ms": str(settings.expected_p99_latency_ms),
        "instance_type": settings.inference_instance_types[0],
        "schema_uri": settings.schema_uri,
        TRAINING_KIND_KEY: settings.training_kind,
    }
    return {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": model_package_request(
            settings,
            model_data_url=step_property("Train", "ModelArtifacts.S3ModelArtifacts"),
            evaluation_uri=join(processing_output_uri("Evaluate", "evaluation"), f"/{EVALUATION_FILE}"),
            baseline_uri=join(processing_output_uri("Baseline", "baseline"), "/baseline.json"),
            sample_payload_url=join(processing_output_uri("Baseline", "baseline"), "/sample_payload.tar.gz"),
            metadata=metadata,
            approval_status=param("ModelApprovalStatus"),
            description=_registered_description(settings),
        ),
        "DependsOn": ["Baseline"],
    }

def _quality_gate_step(settings: PipelineSettings, gate_values: list[Expression],
                       if_steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The Condition step of mlsettings.quality.gate_checks, and the Fail step its else branch runs."""
    checks = gate_checks(settings.quality_metric)
    described: list[Any] = []
    for check, value in zip(checks, gate_values, strict=True):
        described += [f"{', ' if described else ''}{check.label} ({check.comparison} threshold) ", value]
    fail = {
        "Name": "QualityGateFailed",
        "Type": "Fail",
        "Arguments": {"ErrorMessage": join(
            f"Quality gate failed: {settings.quality_metric} ", *described, "; threshold ",
            param("QualityThreshold"))},
    }
    return {
        "Name": "QualityGate",
        "Type": "Condition",
        "Arguments": {
            # mlsettings.quality.gate_checks: the metric and its 95 % lower confidence bound must both clear
            # the threshold (Conditions are ANDed), so a test set too small to show it never passes.
            "Conditions": [{"Type": check.condition_type, "LeftValue": value, "RightValue": param("QualityThreshold")}
                           for check, value in zip(checks, gate_values, strict=True)],
            "IfSteps": if_steps,
            "ElseSteps": [fail],
        },
    }

def _no_image_definition(settings: PipelineSettings) -> dict[str, Any]:
    """Kind image before the first image is pushed: every run fails at once, saying what to do."""
    return {"Version": "2020-12-01", "Metadata": {}, "Parameters": _parameters(settings), "Steps": [{
        "Name": NO_IMAGE_STEP, "Type": "Fail", "Arguments": {"ErrorMessage": (
            f"model {settings.model} has no image yet: push it to its repository and set training.code.image_digest "
            "to its digest (docs/TRAINING.md, 'Your own image')")}}]}


def build_definition(settings: PipelineSettings) -> dict[str, Any]:
    if settings.training_kind == IMAGE and settings.team_image is None:
        return _no_image_definition(settings)
    scoring = [_team_model_step(settings), _score_step(settings)] if settings.training_kind == IMAGE else []
    gate_values = [json_get("Evaluate", EVALUATION_REPORT, check.path)
                   for check in gate_checks(settings.quality_metric)]
    register = _register_step(settings, quality_value=gate_values[0])
    gate = _quality_gate_step(settings, gate_values, [_baseline_step(settings), register])
    return {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": _parameters(settings),
        "Steps": [_validate_step(settings), _preprocess_step(settings), _training_step(settings), *scoring,
                  _evaluate_step(settings), gate],
    }


def iter_steps(definition: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """Every step, including those nested in a Condition's branches."""
    for step in definition["Steps"]:
        yield step
        if step["Type"] == "Condition":
            yield from iter_steps({"Steps": step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]})


# ------------------------------------------------------------------ the code bundle shipped to containers
# The drift monitor's Processing-job entry (pipelines/processing/drift_entry.py) runs from the same bundle
# (monitoring.drift.engine: processing); it needs only mlcore, so no Lambda code ships to a container.
BUNDLED_PACKAGES = PLATFORM_PACKAGES
NOT_BUNDLED = (Path("pipelines") / "data",)
"""The bundled example data sets: a job reads its data from S3, so they stay out of the code bundle."""


def build_source_bundle(root: Path = REPO_ROOT, *, team_code: Path | None = None) -> bytes:
    """A byte-reproducible sourcedir.tar.gz of the shared package and the pipeline code (step scripts, the
    serving entry, the drift monitor's processing entry) and, for a script-mode model, its team's folder
    (``team_code``: its files at the top of the bundle, where the toolkit finds requirements.txt): sorted entries,
    zero mtimes and owners, no byte code, so the CDK asset hash only changes when the code does."""
    buffer = io.BytesIO()
    entries: list[tuple[str, Path]] = []
    for package in BUNDLED_PACKAGES:
        entries += [(str(path.relative_to(root)), path) for path in sorted((root / package).rglob("*"))
                    if not any(path.relative_to(root).is_relative_to(folder) for folder in NOT_BUNDLED)]
    if team_code is not None:  # a team's folder without its dot-files and dot-folders (.venv, .git, .DS_Store ...)
        entries += [(str(path.relative_to(team_code)), path) for path in sorted(team_code.rglob("*"))
                     if not any(part.startswith(".") for part in path.relative_to(team_code).parts)]
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in entries:
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_source_bundle(directory: Path, *, team_code: Path | None = None) -> Path:
    content = build_source_bundle(team_code=team_code)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"sourcedir-{hashlib.sha256(content).hexdigest()[:16]}.tar.gz"
    if not path.exists():
        path.write_bytes(content)
    return path
