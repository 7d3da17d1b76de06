"""One run of the synthesized training pipeline in the contract container per test session (~1 minute):
every later test reads its artifacts. The assembly is the infra tier's in-process synthesis of cdk.json."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.datasets import write_breast_cancer_csv
from testkit.serving_world import MODEL
from tests.contract.container import Container
from tests.contract.local_pipeline import LocalPipeline
from tests.contract.synthesized import SynthesizedTraining, read_training
from tests.infra.conftest import SynthesizedApp, synthesized  # noqa: F401  (the session fixture)

STAGE = "dev"
INTERRUPT_AFTER = 20


@dataclass
class PipelineRun:
    pipeline: LocalPipeline
    interrupted_log: str
    resumed_log: str
    checkpoints_after_interruption: list[str]


def _description() -> str:
    try:
        return Container.describe()
    except Exception as err:  # the line must not hide the real failure, which the tests report
        return f"contract container: unavailable ({err})"


def pytest_report_header() -> str:
    return _description()



@pytest.fixture(scope="session")
def training(synthesized: SynthesizedApp) -> SynthesizedTraining:  # noqa: F811
    return read_training(synthesized.outdir, STAGE, synthesized.stages[STAGE].models[MODEL].artifact_id)


@pytest.fixture(scope="session")
def pipeline_run(training: SynthesizedTraining, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRun]:
    workdir = tmp_path_factory.mktemp("contract-pipeline")
    data = workdir / "data"
    write_breast_cancer_csv(data / "breast_cancer.csv")
    pipeline = LocalPipeline(training, workdir, parameters={"DataUri": data.as_uri()})
    for step in ("Validate", "Preprocess"):
        pipeline.run_processing(step)
    # A spot interruption: the job dies after INTERRUPT_AFTER rounds; SageMaker restarts it with the
    # checkpoint folder restored, and the same job finishes the remaining rounds.
    container, interrupted = pipeline.run_training(
        extra_hyperparameters={"interrupt_after_rounds": str(INTERRUPT_AFTER)}, expect_failure=True)
    checkpoint_dir = Path(container.reroot(pipeline.resolve(pipeline.step("Train")["Arguments"])
                                           ["CheckpointConfig"]["LocalPath"]))
    checkpoints = sorted(p.name for p in checkpoint_dir.glob("*.json"))
    _, resumed = pipeline.run_training()
    for step in ("Evaluate", "Baseline"):
        pipeline.run_processing(step)
    yield PipelineRun(pipeline=pipeline, interrupted_log=interrupted, resumed_log=resumed,
                      checkpoints_after_interruption=checkpoints)
