"""A team's own training program (wine-script, training.code.kind xgboost-script) through the XGBoost image's
own toolkit, exactly as synthesized: its pipeline's Validate and Preprocess, then the Train step — the toolkit
unpacks the model's code bundle (the platform's packages plus the team's folder at its top) and runs
``pip install . -r requirements.txt`` in a network namespace without a network, which must find the vendored
wheel through the step's PIP_FIND_LINKS — then Evaluate and Baseline on the resulting model.tar.gz and the
model container answering its golden payloads. Without PIP_FIND_LINKS the same install fails offline."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mlsettings.config import load_environments
from mlsettings.config.fields import REPO_ROOT
from pipelines.datasets import write_bundled_csv
from testkit.model_sample import sampled_project_context
from tests.contract.local_pipeline import JobFailedError, LocalPipeline, serve
from tests.contract.synthesized import SynthesizedTraining, read_training
from tests.infra.conftest import SynthesizedApp

STAGE = "dev"
SCRIPT_MODELS = [view.model.name for view in load_environments(sampled_project_context())[STAGE].models
                 if view.model is not None and view.training.code.kind != "platform"]


@dataclass
class ScriptRun:
    model: str
    pipeline: LocalPipeline
    log: str


@pytest.fixture(scope="module", params=SCRIPT_MODELS)
def script_run(request: pytest.FixtureRequest, synthesized: SynthesizedApp,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptRun]:
    model = request.param
    training = read_training(synthesized.outdir, STAGE, synthesized.stages[STAGE].models[model].artifact_id)
    workdir = tmp_path_factory.mktemp(f"contract-{model}")
    schema = load_environments(sampled_project_context())[STAGE].for_model(model).training.schema_file
    data = workdir / "data"
    write_bundled_csv(json.loads((REPO_ROOT / schema).read_text(encoding="utf-8"))["name"], data / "data.csv")
    pipeline = LocalPipeline(training, workdir, parameters={"DataUri": data.as_uri(), "NumRound": 20})
    for step in ("Validate", "Preprocess"):
        pipeline.run_processing(step)
    _, log = pipeline.run_training()
    for step in ("Evaluate", "Baseline"):
        pipeline.run_processing(step)
    yield ScriptRun(model=model, pipeline=pipeline, log=log)


def test_there_is_a_script_mode_model_in_the_sample() -> None:
    assert SCRIPT_MODELS, "cdk.json's sample holds no model with training.code.kind other than 'platform'"


def test_the_synthesized_train_step_runs_the_wrapper_on_the_teams_program(script_run: ScriptRun) -> None:
    train = script_run.pipeline.step("Train")["Arguments"]
    assert train["HyperParameters"]["sagemaker_program"] == "pipelines.steps.script_train"
    assert train["HyperParameters"]["user_entry_point"] == "train.py"
    assert train["Environment"]["PIP_FIND_LINKS"] == "/opt/ml/code/wheels"
    assert train["Environment"]["PIP_NO_INDEX"] == "1"


def test_the_toolkit_installs_the_vendored_wheel_with_no_network_and_runs_the_program(script_run: ScriptRun) -> None:
    log = script_run.log
    assert "-r requirements.txt" in log and "Successfully installed" in log and "tabulate-0.9.0" in log
    assert "validation mlogloss" in log  # the team's program printed its table with the vendored package
    assert "train.py trained 20 rounds; the platform completed the model folder" in log


def test_the_artifact_holds_the_teams_booster_and_the_platforms_files(script_run: ScriptRun) -> None:
    assert script_run.pipeline.model_artifact is not None
    with tarfile.open(script_run.pipeline.model_artifact) as tar:
        names = set(tar.getnames())
        summary = json.loads(tar.extractfile("training_summary.json").read())  # type: ignore[union-attr]
    assert {"xgboost-model.json", "schema.json", "fallback.json", "feature_names.json", "code/inference.py"} <= names
    assert summary["trained_by"] == "train.py" and summary["objective"] == "multi:softprob"


def test_the_platforms_evaluation_gate_and_baseline_run_on_the_teams_model(script_run: ScriptRun) -> None:
    pipeline = script_run.pipeline
    gate = next(s for s in pipeline.synthesized.definition["Steps"] if s["Type"] == "Condition")
    value = pipeline.resolve(gate["Arguments"]["Conditions"][0]["LeftValue"])
    assert isinstance(value, float) and value >= pipeline.parameter("QualityThreshold")
    assert (pipeline.outputs["Baseline"]["baseline"] / "golden_payloads.json").is_file()


def test_the_model_container_answers_its_golden_payloads(script_run: ScriptRun) -> None:
    pipeline = script_run.pipeline
    golden = json.loads((pipeline.outputs["Baseline"]["baseline"] / "golden_payloads.json").read_text())
    cases = golden["cases"][:3]
    answers = serve(pipeline.served_model(f"Serve-{script_run.model}"), pipeline.serving_environment(),
                    [("GET", "/ping", {}, b"")] +
                    [("POST", "/invocations", {"Content-Type": c["content_type"], "Accept": c["accept"]},
                      c["body"].encode()) for c in cases])
    assert [a.status for a in answers] == [200] * (1 + len(cases))


def test_without_find_links_the_offline_install_fails(script_run: ScriptRun, synthesized: SynthesizedApp,
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """The negative control: the same job with PIP_FIND_LINKS removed cannot install requirements.txt offline."""
    training: SynthesizedTraining = script_run.pipeline.synthesized
    definition = json.loads(json.dumps(training.definition))
    train = next(s for s in definition["Steps"] if s["Name"] == "Train")
    del train["Arguments"]["Environment"]["PIP_FIND_LINKS"]
    broken = SynthesizedTraining(definition=definition, assets=training.assets)
    pipeline = LocalPipeline(broken, tmp_path_factory.mktemp("no-find-links"),
                             parameters=dict(script_run.pipeline.parameters))
    pipeline.outputs.update(script_run.pipeline.outputs)
    with pytest.raises(JobFailedError, match="tabulate"):
        pipeline.run_training()
