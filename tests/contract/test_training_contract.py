"""The training pipeline's jobs, exactly as synthesized, run by the XGBoost image's own toolkit and pins.

Each test reads the session's one pipeline run (conftest.py): Validate and Preprocess by their
ContainerEntrypoint, Train through sagemaker-containers' `train` entry (interrupted once, then resumed),
Evaluate and Baseline on the resulting model.tar.gz.
"""

from __future__ import annotations

import json
import tarfile

import pytest

from pipelines.definition import OFFLINE_CODE_INSTALL
from tests.contract.conftest import INTERRUPT_AFTER, PipelineRun
from tests.contract.local_pipeline import JobFailedError, LocalPipeline
from tests.contract.synthesized import SynthesizedTraining

PROCESSING_STEPS = ("Validate", "Preprocess", "Evaluate", "Baseline")


def test_the_code_asset_is_named_as_the_cdk_cli_uploads_it(training: SynthesizedTraining) -> None:
    code_inputs = {step["Name"]: next(i for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
                   for step in training.definition["Steps"] if step["Type"] == "Processing"}
    for name, code in code_inputs.items():
        asset = training.asset_for_uri(code["S3Input"]["S3Uri"])
        assert asset is not None, f"{name}'s code is not an asset of the assembly"
        # CDK 2.275 keeps only the last extension of a file asset: <sha256>.gz, never .tar.gz.
        assert asset.object_key.endswith(".gz") and not asset.object_key.endswith(".tar.gz")
        script = " ".join(training.definition["Steps"][[s["Name"] for s in training.definition["Steps"]]
                                                       .index(name)]["Arguments"]["AppSpecification"]
                          ["ContainerEntrypoint"])
        assert f"/opt/ml/processing/input/code/{asset.file_name}" in script


@pytest.mark.parametrize("step", PROCESSING_STEPS)
def test_every_processing_step_runs_from_its_synthesized_entrypoint(pipeline_run: PipelineRun, step: str) -> None:
    outputs = pipeline_run.pipeline.outputs[step]
    assert outputs and all(any(folder.iterdir()) for folder in outputs.values()), f"{step} wrote nothing"


def test_evaluation_report_feeds_the_quality_gate(pipeline_run: PipelineRun) -> None:
    gate = next(s for s in pipeline_run.pipeline.synthesized.definition["Steps"] if s["Type"] == "Condition")
    value = pipeline_run.pipeline.resolve(gate["Arguments"]["Conditions"][0]["LeftValue"])
    assert isinstance(value, float) and 0.9 < value <= 1.0


def test_training_installs_the_code_without_a_network_and_runs_the_module(pipeline_run: PipelineRun) -> None:
    log = pipeline_run.resumed_log
    assert "Successfully installed" in log  # the toolkit's `python -m pip install .`, offline
    assert "-m pipelines.steps.train" in log
    assert pipeline_run.pipeline.model_artifact is not None
    with tarfile.open(pipeline_run.pipeline.model_artifact) as tar:
        names = set(tar.getnames())
    assert {"xgboost-model.json", "schema.json", "fallback.json", "code/inference.py",
            "code/mlcore/features.py", "training_summary.json"} <= names


def test_an_interrupted_job_leaves_checkpoints_and_the_restart_resumes(pipeline_run: PipelineRun) -> None:
    assert "simulated interruption" in pipeline_run.interrupted_log
    assert pipeline_run.checkpoints_after_interruption, "no checkpoint survived the interruption"
    assert pipeline_run.pipeline.model_artifact is not None
    with tarfile.open(pipeline_run.pipeline.model_artifact) as tar:
        member = tar.extractfile("training_summary.json")
        assert member is not None
        summary = json.load(member)
    num_round = int(pipeline_run.pipeline.parameter("NumRound"))
    assert summary["rounds_before_resume"] == INTERRUPT_AFTER
    assert summary["rounds"] == num_round  # exactly num_round in all, not num_round more
    assert summary["hyperparameters"]["device"] == "auto" and "training on cpu" in pipeline_run.resumed_log


@pytest.mark.parametrize(("change", "expected"), [
    ("without_offline_install", "InstallModuleError"),
    ("program_as_a_path", "No module named pipelines/steps/train"),
])
def test_the_toolkit_refuses_what_the_pipeline_used_to_send(training: SynthesizedTraining, pipeline_run: PipelineRun,
                                                            tmp_path: object, change: str, expected: str) -> None:
    """Negative controls: the old settings fail in this container as they would in SageMaker."""
    from pathlib import Path

    pipeline = LocalPipeline(training, Path(str(tmp_path)), parameters=pipeline_run.pipeline.parameters,
                             outputs=pipeline_run.pipeline.outputs)
    train = pipeline.step("Train")["Arguments"]
    original = json.dumps(train)
    try:
        if change == "without_offline_install":
            for key in OFFLINE_CODE_INSTALL:
                train["Environment"].pop(key)
        else:
            train["HyperParameters"]["sagemaker_program"] = "pipelines/steps/train.py"
        with pytest.raises(JobFailedError) as failure:
            pipeline.run_training(extra_hyperparameters={"num_round": "2"})
        assert expected in str(failure.value)
    finally:
        train.clear()
        train.update(json.loads(original))
