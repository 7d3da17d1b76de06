"""Starting training: in AWS (a pipeline execution with lineage parameters) or locally (the same step scripts
on bundled data, with S3 and the model registry provided by the embedded moto)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcore.s3_uri import split_s3_uri
from mlops.conformance_inputs import train_step
from mlops.errors import OperatorError
from mlops.local_env import LocalEnvironment
from mlops.resources import DeployedResources
from mlsettings.config import EnvironmentConfig, drift_thresholds, to_plain
from mlsettings.image_reference import image_uri
from mlsettings.naming import image_repository_name, model_prefixes
from mlsettings.problem_types import BINARY, problem_type
from mlsettings.schema import DataSchema
from mlsettings.training_code import IMAGE, PLATFORM, TRAINING_KIND_KEY
from mlsettings.vocabulary import (
    DEVELOPMENT,
    PENDING_MANUAL_APPROVAL,
    QUALITY_GATE_PASSED,
    Published,
)
from pipelines.datasets import write_bundled_csv
from pipelines.definition import PipelineSettings, model_package_request
from pipelines.images import image_for
from pipelines.local_run import LocalRunResult, TeamCode, run_local

REPO_ROOT = Path(__file__).resolve().parents[1]


def team_code(config: EnvironmentConfig) -> TeamCode | None:
    """The model team's training program (training.code), or None for the platform's."""
    code = config.training.code
    if code.kind == PLATFORM or code.source_dir is None:
        return None
    if code.kind == IMAGE:  # the image's folder: its train and serve programs
        return TeamCode(source_dir=REPO_ROOT / code.source_dir, entry_point=code.entry_point, kind=IMAGE)
    return TeamCode(source_dir=REPO_ROOT / code.source_dir, entry_point=code.entry_point, kind=code.kind,
                    evaluate_hook=code.evaluate_hook, preprocess_hook=code.preprocess_hook,
                    serve_hook=code.serve_hook)


def git_commit(root: Path = REPO_ROOT) -> str:
    """The commit the code was taken from, marked '-dirty' when the work tree has changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,  # noqa: S607
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,  # noqa: S607
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def config_hash(config: EnvironmentConfig) -> str:
    """SHA-256 over the resolved settings and the data schema: what makes two runs comparable."""
    digest = hashlib.sha256(json.dumps(to_plain(config), sort_keys=True).encode())
    digest.update((REPO_ROOT / config.training.schema_file).read_bytes())
    return digest.hexdigest()


def latest_baseline_uri(sagemaker: Any, group: str) -> str | None:
    """The drift baseline of the newest approved package: what new training data is compared with."""
    pages = sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending")
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            uri = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {}).get("Statistics", {}).get("S3Uri")
            if uri:
                return str(uri)
    return None


def start_pipeline(*, config: EnvironmentConfig, resources: DeployedResources, sagemaker: Any,
                   data_uri: str | None = None) -> dict[str, Any]:
    """Start the deployed pipeline with the lineage parameters; returns the execution ARN and parameters."""
    parameters = {
        "DataUri": data_uri or resources[Published.TRAINING_DATA_URI],
        "GitCommit": git_commit(),
        "ConfigHash": config_hash(config),
    }
    previous = latest_baseline_uri(sagemaker, resources[Published.MODEL_PACKAGE_GROUP])
    if previous:
        parameters["PreviousBaselineUri"] = previous
    response = sagemaker.start_pipeline_execution(
        PipelineName=resources[Published.PIPELINE_NAME],
        PipelineExecutionDisplayName=f"mlops-train-{parameters['GitCommit'][:12]}",
        PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        ClientRequestToken=str(uuid.uuid4()),
    )
    return {"pipeline_execution_arn": response["PipelineExecutionArn"], "parameters": parameters}


@dataclass
class LocalTrainingOutcome:
    run: LocalRunResult
    model_package: dict[str, Any] | None
    data_uri: str

    def to_dict(self) -> dict[str, Any]:
        gate = self.run.gate.to_dict() if self.run.gate else None
        return {
            "status": self.run.status,
            "failure": self.run.failure,
            "gate": gate,
            "metrics": next((section for key, section in (self.run.metrics or {}).items() if key != "evaluation"),
                            None),
            "steps": [s.to_dict() for s in self.run.steps],
            "data_uri": self.data_uri,
            "lineage": self.run.lineage,
            "model_package": self.model_package,
            "validation": None if self.run.validation_report is None else {
                "passed": self.run.validation_report["passed"],
                "violations": self.run.validation_report["violations"]},
            "workdir": str(self.run.workdir.parent),
        }


def _upload(s3: Any, path: Path, bucket: str, key: str) -> tuple[str, str | None]:
    response = s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return f"s3://{bucket}/{key}", response.get("VersionId")


def _model_tarball(model_dir: Path, workdir: Path) -> Path:
    """model.tar.gz as SageMaker writes it: the model folder's contents at the archive root."""
    target = workdir / "model.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(model_dir)))
    return target


def train_local(env: LocalEnvironment, *, data_csv: Path | None = None, workdir: Path | None = None,
                num_round: int | None = None, progress: Callable[[str, str], None] | None = None,
                approval_status: str = PENDING_MANUAL_APPROVAL) -> LocalTrainingOutcome:
    """Every pipeline step on local files; data and artifacts go through (moto) S3 and the gate-passing model
    is registered in the (moto) registry exactly as the pipeline's Register step would."""
    config = env.config
    if num_round is not None and num_round < 1:
        raise OperatorError(f"--num-round is {num_round}; allowed: at least 1")
    if config.training.code.kind == IMAGE and config.training.code.image_digest is None:
        raise OperatorError(f"model {config.model.name if config.model else '?'} has no training.code.image_digest: a "
                            "version names the image its endpoints pull; push it and set its digest "
                            "(docs/TRAINING.md, 'Your own image')")
    if workdir is not None and workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        # A reused folder would mix the previous run's data, model and checkpoints into this one.
        raise OperatorError(f"--workdir {workdir} is not an empty folder; give a new or empty one")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="mlops-train-"))
    workdir.mkdir(parents=True, exist_ok=True)
    s3, sagemaker = env.client("s3"), env.client("sagemaker")
    assert config.model is not None, "a local run trains one model (config: the model's view)"
    schema_path = REPO_ROOT / config.training.schema_file
    if data_csv is None:
        schema_name = DataSchema.load(schema_path).name
        data_csv = write_bundled_csv(schema_name, workdir / f"{schema_name}.csv")
    data_key = f"{config.model.training_data_prefix}{data_csv.name}"
    data_uri, data_version = _upload(s3, data_csv, env.data_bucket, data_key)

    previous = latest_baseline_uri(sagemaker, env.model_package_group)
    previous_path: Path | None = None
    if previous:
        bucket, key = split_s3_uri(previous)
        previous_path = workdir / "previous_baseline.json"
        previous_path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    hyperparameters: dict[str, Any] = {
        "num_round": config.training.num_round if num_round is None else num_round, "device": "cpu"}
    if config.training.code.kind == IMAGE:
        # what the pipeline's Train step gives an own image (mlops.conformance_inputs reads it from the definition)
        hyperparameters = train_step(DataSchema.load(schema_path),
                                     num_round=int(hyperparameters["num_round"]))["HyperParameters"]
    gate = config.training.quality_gate
    run = run_local(
        workdir / "run", schema_path=schema_path, data_csv=data_csv,
        previous_baseline=previous_path, hyperparameters=hyperparameters, quality_metric=gate.metric,
        threshold=gate.threshold, progress=progress, data_uri=data_uri,
        s3_object_versions={data_uri: data_version} if data_version else None,
        min_rows_per_class=config.training.min_rows_per_class, drift_thresholds=drift_thresholds(config),
        team_code=team_code(config),
    )
    if not run.succeeded:
        return LocalTrainingOutcome(run=run, model_package=None, data_uri=data_uri)
    return LocalTrainingOutcome(run=run, model_package=_register(env, run, workdir, data_uri, data_version,
                                                                 approval_status),
                                data_uri=data_uri)


def _register(env: LocalEnvironment, run: LocalRunResult, workdir: Path, data_uri: str, data_version: str | None,
              approval_status: str) -> dict[str, Any]:
    config = env.config
    s3, sagemaker = env.client("s3"), env.client("sagemaker")
    execution = f"local-{uuid.uuid4().hex[:12]}"
    prefixes = model_prefixes(config)
    prefix = f"{prefixes.pipeline_outputs}{execution}"
    model_uri, _ = _upload(s3, _model_tarball(run.paths["model_dir"], workdir), env.artifact_bucket,
                           f"{prefixes.models}{execution}/output/model.tar.gz")
    # The same layout as the pipeline's outputs: the baseline step's files share one folder, where the deployer
    # and the health check find golden_payloads.json beside baseline.json.
    own_image = config.training.code.kind == IMAGE
    # An own image's fallback model is the Evaluate step's (beside the report, where the deployer finds it: the
    # team's artifact holds none); the platform's programs pack it into the model folder.
    folders = {"evaluation": "evaluation", "baseline": "baseline", "golden": "baseline",
               "sample_payload": "baseline", "fallback": "evaluation" if own_image else "model",
               "lineage": "metadata"}
    uris = {role: _upload(s3, run.paths[role], env.artifact_bucket,
                          f"{prefix}/{folder}/{run.paths[role].name}")[0]
            for role, folder in folders.items()}
    assert run.gate is not None and run.lineage is not None
    serving = config.serving
    image = image_for(config.training.code.kind)
    settings = PipelineSettings(
        pipeline_name=f"local-{config.name}", role_arn="", image_uri=image.uri(config.region),
        framework=image.framework, framework_version=image.framework_version,
        training_kind=config.training.code.kind, entry_point=config.training.code.entry_point,
        team_image=_team_image(env),
        artifact_bucket=env.artifact_bucket, kms_key_id="", code_uri="", code_file_name="", schema_uri="",
        schema_file_name="", no_baseline_uri="", model_package_group=env.model_package_group,
        model=config.model.name if config.model else "", default_data_uri="",
        training_instance_type=config.training.instance_type, training_instance_count=1,
        processing_instance_type=config.training.processing_instance_type, volume_size_gb=1, use_spot=False,
        max_run_seconds=1, max_wait_seconds=1, checkpointing=False, num_round=config.training.num_round,
        quality_metric=run.gate.metric, quality_threshold=run.gate.threshold,
        inference_instance_types=tuple(sorted({serving.champion.instance_type, serving.challenger.instance_type})),
        transform_instance_types=(serving.batch_instance_type,), expected_p99_latency_ms=serving.sla.p99_latency_ms,
    )
    metadata = lineage_metadata(config=config, run=run, data_uri=data_uri, data_version=data_version,
                                execution=execution, lineage_uri=uris["lineage"])
    request = model_package_request(
        settings, model_data_url=model_uri, evaluation_uri=uris["evaluation"], baseline_uri=uris["baseline"],
        sample_payload_url=uris["sample_payload"], metadata=metadata, approval_status=approval_status,
        description=f"{'own image' if own_image else image.framework} "
                    f"{problem_type(config.model.problem_type).name if config.model else 'binary'} "
                    f"model ({config.training.code.kind}) registered by `mlops train --local`",
    )
    arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    return {
        "arn": arn,
        "version": package.get("ModelPackageVersion"),
        "stage": package.get("ModelLifeCycle", {}).get("Stage", DEVELOPMENT),
        "approval_status": package.get("ModelApprovalStatus"),
        "metadata": package.get("CustomerMetadataProperties", metadata),
        "model_data_url": model_uri,
        "artifacts": uris,
    }


def _team_image(env: LocalEnvironment) -> str | None:
    """An own image's URI as the registry names it: the model's repository in this account, at the digest."""
    code = env.config.training.code
    if code.kind != IMAGE or code.image_digest is None:
        return None
    account = env.client("sts").get_caller_identity()["Account"]
    return image_uri(account=account, region=env.region, repository=image_repository_name(env.config),
                     digest=code.image_digest)


def _short_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def lineage_metadata(*, config: EnvironmentConfig, run: LocalRunResult, data_uri: str, data_version: str | None,
                     execution: str, lineage_uri: str) -> dict[str, str]:
    """CustomerMetadataProperties (string values of at most 256 characters) that trace a package back to its
    code, data, config and run."""
    assert run.gate is not None and run.lineage is not None
    lineage: Mapping[str, Any] = run.lineage
    training = run.training or {}
    schema_file = REPO_ROOT / config.training.schema_file
    values = {
        "git_commit": git_commit(),
        "config_hash": config_hash(config),
        "data_uri": data_uri,
        "data_version": data_version or "unversioned",
        "data_sha256": str(lineage.get("data_version", {}).get("sha256", "")),
        "data_lineage_uri": lineage_uri,
        "pipeline_execution_arn": f"local:{execution}",
        "training_job_name": execution,
        "training_log_location": str(run.workdir),
        QUALITY_GATE_PASSED: str(run.gate.passed).lower(),
        "quality_metric": run.gate.metric,
        "quality_value": f"{run.gate.value:.6f}",
        "quality_threshold": f"{run.gate.threshold:g}",
        # CustomerMetadataValue's pattern allows letters, digits, spaces and _.:/=+-@ only (no '#').
        "input_schema": f"{config.training.schema_file}@sha256={_short_hash(schema_file)}",
        "output_schema": "text/csv: one line per input row: "
                         + problem_type(config.model.problem_type if config.model else BINARY).output.csv_columns,
        "expected_p99_latency_ms": f"{config.serving.sla.p99_latency_ms:g}",
        "instance_type": config.serving.champion.instance_type,
        # serving needs little beyond the container: the model is a few hundred kB of trees
        "memory_mb": "1024",
        TRAINING_KIND_KEY: config.training.code.kind,
        **({"training_rounds": str(training["rounds"])} if "rounds" in training else {}),
    }
    too_long = [k for k, v in values.items() if len(v) > 256]
    if too_long:
        raise OperatorError(f"lineage values longer than the registry's 256 characters: {too_long}")
    return values
