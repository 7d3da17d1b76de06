"""Each sampled model whose team writes its training program (training.code.kind ``xgboost-script`` or
``sklearn-script``), through its framework image's own toolkit at that image's pins, exactly as synthesized: the
model's Validate and Preprocess, then the Train step — the toolkit unpacks the model's code bundle (the platform's
packages plus the team's folder at its top), installs the folder's requirements in a network namespace without a
network, which must find the vendored wheels through the step's PIP_FIND_LINKS, and runs the platform's wrapper on
the team's program — then Evaluate and Baseline on the resulting model.tar.gz, and the model container answering
its golden payloads. Without PIP_FIND_LINKS a folder's vendored requirements fail to install offline.

The images: SageMaker XGBoost 3.2-0 (sagemaker-containers 2.8.6.post2, .venv-contract) and SageMaker scikit-learn
1.9-0 (sagemaker-training 4.8.0 for training, sagemaker-containers for serving, .venv-contract-sklearn)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlcore.outputs import parse_csv_answers
from mlsettings.config import load_environments
from mlsettings.config.fields import REPO_ROOT
from mlsettings.schema import LabelSpec
from mlsettings.training_code import REQUIREMENTS_FILE, SCRIPT_KINDS, SKLEARN_SCRIPT, TEAM_SERVE_FILE
from pipelines.datasets import write_bundled_csv
from pipelines.images import image_for
from pipelines.serving.inference import MODEL_FILE, SKLEARN_MODEL_FILE
from testkit.model_sample import sampled_project_context
from tests.contract.container import SKLEARN_IMAGE, XGBOOST_IMAGE, ContractImage
from tests.contract.local_pipeline import JobFailedError, LocalPipeline, serve
from tests.contract.synthesized import FileAsset, SynthesizedTraining, read_training
from tests.infra.conftest import SynthesizedApp

STAGE = "dev"
VIEWS = {view.model.name: view for view in load_environments(sampled_project_context())[STAGE].models
         if view.model is not None and view.training.code.kind in SCRIPT_KINDS}
SCRIPT_MODELS = sorted(VIEWS)
IMAGES = {SKLEARN_SCRIPT: SKLEARN_IMAGE}
MODEL_FILES = {SKLEARN_SCRIPT: SKLEARN_MODEL_FILE}
TEAM_SERVE_FILE_IN_CODE = f"code/{TEAM_SERVE_FILE}"


def schema_label(golden: dict[str, Any]) -> LabelSpec:
    return LabelSpec.from_dict(golden["label"])


def _image(model: str) -> ContractImage:
    return IMAGES.get(VIEWS[model].training.code.kind, XGBOOST_IMAGE)


def _vendors(model: str) -> bool:
    return (REPO_ROOT / str(VIEWS[model].training.code.source_dir) / REQUIREMENTS_FILE).is_file()


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
    data = workdir / "data"
    schema = json.loads((REPO_ROOT / VIEWS[model].training.schema_file).read_text(encoding="utf-8"))
    write_bundled_csv(schema["name"], data / "data.csv")
    pipeline = LocalPipeline(training, workdir, parameters={"DataUri": data.as_uri(), "NumRound": 20},
                             image=_image(model))
    for step in ("Validate", "Preprocess"):
        pipeline.run_processing(step)
    _, log = pipeline.run_training()
    for step in ("Evaluate", "Baseline"):
        pipeline.run_processing(step)
    yield ScriptRun(model=model, pipeline=pipeline, log=log)


def test_the_sample_holds_a_model_of_each_script_kind() -> None:
    assert sorted({view.training.code.kind for view in VIEWS.values()}) == sorted(SCRIPT_KINDS)


def test_the_synthesized_train_step_runs_the_wrapper_on_the_teams_program(script_run: ScriptRun) -> None:
    view = VIEWS[script_run.model]
    train = script_run.pipeline.step("Train")["Arguments"]
    assert train["HyperParameters"]["user_entry_point"] == view.training.code.entry_point
    assert train["HyperParameters"]["training_kind"] == view.training.code.kind
    assert train["Environment"]["PIP_NO_INDEX"] == "1"
    assert ("PIP_FIND_LINKS" in train["Environment"]) == _vendors(script_run.model)
    image = train["AlgorithmSpecification"]["TrainingImage"]
    expected = image_for(view.training.code.kind)
    assert image.endswith(f"/{expected.repository}:{expected.tag}")


def test_the_toolkit_runs_the_teams_program_under_the_wrapper(script_run: ScriptRun) -> None:
    log = script_run.log
    entry = VIEWS[script_run.model].training.code.entry_point
    # sagemaker-training runs a program path as `python <path>`, sagemaker-containers a module as `python -m`
    expected = ("bin/python pipelines/steps/script_train.py" if VIEWS[script_run.model].training.code.kind ==
                SKLEARN_SCRIPT else "bin/python -m pipelines.steps.script_train")
    assert expected in log
    assert f"{entry} trained " in log and "the platform completed the model folder" in log
    if _vendors(script_run.model):  # the folder's requirements, installed offline from its wheels
        assert "-r requirements.txt" in log and "Successfully installed" in log


def test_the_artifact_holds_the_teams_model_and_the_platforms_files(script_run: ScriptRun) -> None:
    kind = VIEWS[script_run.model].training.code.kind
    assert script_run.pipeline.model_artifact is not None
    with tarfile.open(script_run.pipeline.model_artifact) as tar:
        names = set(tar.getnames())
        summary = json.loads(tar.extractfile("training_summary.json").read())  # type: ignore[union-attr]
    assert {MODEL_FILES.get(kind, MODEL_FILE), "schema.json", "fallback.json", "feature_names.json",
            "code/inference.py"} <= names
    assert summary["trained_by"] == VIEWS[script_run.model].training.code.entry_point
    assert summary["training_kind"] == kind
    # a team's serving hook rides beside the platform's handler, where the serving toolkit imports it
    assert (TEAM_SERVE_FILE_IN_CODE in names) is (VIEWS[script_run.model].training.code.serve_hook is not None)


def test_the_platforms_evaluation_gate_and_baseline_run_on_the_teams_model(script_run: ScriptRun) -> None:
    pipeline = script_run.pipeline
    gate = next(s for s in pipeline.synthesized.definition["Steps"] if s["Type"] == "Condition")
    value = pipeline.resolve(gate["Arguments"]["Conditions"][0]["LeftValue"])
    comparison = gate["Arguments"]["Conditions"][0]["Type"]
    threshold = pipeline.parameter("QualityThreshold")
    assert isinstance(value, float)
    assert value >= threshold if comparison.startswith("GreaterThan") else value <= threshold
    assert (pipeline.outputs["Baseline"]["baseline"] / "golden_payloads.json").is_file()
    # a team's preprocessing hook ran inside the Preprocess job (the lineage names it) ...
    lineage = json.loads((pipeline.outputs["Preprocess"]["metadata"] / "lineage.json").read_text())
    assert lineage.get("preprocess_hook") == VIEWS[script_run.model].training.code.preprocess_hook
    # ... and an evaluation hook inside the Evaluate job, from the bundle's top, and its metrics were recorded
    report = json.loads((pipeline.outputs["Evaluate"]["evaluation"] / "evaluation.json").read_text())
    hook = VIEWS[script_run.model].training.code.evaluate_hook
    assert ("team_metrics" in report) is (hook is not None)
    if hook is not None:
        assert report["team_metrics"] and all(isinstance(v, float) for v in report["team_metrics"].values())


def test_the_model_container_answers_its_golden_payloads(script_run: ScriptRun) -> None:
    pipeline = script_run.pipeline
    golden = json.loads((pipeline.outputs["Baseline"]["baseline"] / "golden_payloads.json").read_text())
    cases = golden["cases"][:3]
    answers = serve(pipeline.served_model(f"Serve-{script_run.model}"), pipeline.serving_environment(),
                    [("GET", "/ping", {}, b"")] +
                    [("POST", "/invocations", {"Content-Type": c["content_type"], "Accept": c["accept"]},
                      c["body"].encode()) for c in cases])
    assert [a.status for a in answers] == [200] * (1 + len(cases))
    # what the container answers is what Baseline pinned (through the team's serving hook where it has one)
    for case, answer in zip(cases, answers[1:], strict=True):
        served = parse_csv_answers(answer.body.decode(), schema_label(golden)) if case["accept"] == "text/csv" \
            else json.loads(answer.body)["predictions"]
        assert _close(served, case["expected"], golden["tolerance"]), case["name"]


def _close(served: Any, expected: Any, tolerance: float) -> bool:
    if isinstance(expected, dict):
        return served["label"] == expected["label"] and _close(served["probabilities"], expected["probabilities"],
                                                               tolerance)
    if isinstance(expected, list):
        return len(served) == len(expected) and all(_close(a, b, tolerance) for a, b in zip(served, expected,
                                                                                           strict=True))
    return abs(float(served) - float(expected)) <= tolerance


def test_without_find_links_the_offline_install_fails(script_run: ScriptRun,
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """The negative control: the same job with PIP_FIND_LINKS removed cannot install requirements.txt offline."""
    if not _vendors(script_run.model):
        pytest.skip(f"{script_run.model}'s folder vendors no requirements")
    training: SynthesizedTraining = script_run.pipeline.synthesized
    definition = json.loads(json.dumps(training.definition))
    train = next(s for s in definition["Steps"] if s["Name"] == "Train")
    del train["Arguments"]["Environment"]["PIP_FIND_LINKS"]
    broken = SynthesizedTraining(definition=definition, assets=training.assets)
    pipeline = LocalPipeline(broken, tmp_path_factory.mktemp("no-find-links"),
                             parameters=dict(script_run.pipeline.parameters), image=script_run.pipeline.image)
    pipeline.outputs.update(script_run.pipeline.outputs)
    requirement = (REPO_ROOT / str(VIEWS[script_run.model].training.code.source_dir) / REQUIREMENTS_FILE
                   ).read_text(encoding="utf-8").split("\n")[-2].split("==")[0]
    with pytest.raises(JobFailedError, match=requirement):
        pipeline.run_training()


def _with_program(training: SynthesizedTraining, entry: str, program: str, folder: Path) -> SynthesizedTraining:
    """The same pipeline whose code asset holds another team program (the bundle rebuilt, every other file kept)."""
    train = next(s for s in training.definition["Steps"] if s["Name"] == "Train")["Arguments"]
    code = next(c for c in train["InputDataConfig"] if c["ChannelName"] == "code")
    asset = training.asset_for_uri(code["DataSource"]["S3DataSource"]["S3Uri"])
    assert asset is not None
    unpacked = folder / "bundle"
    with tarfile.open(asset.source) as tar:
        tar.extractall(unpacked, filter="data")
    (unpacked / entry).write_text(program, encoding="utf-8")
    rebuilt = folder / asset.file_name
    with tarfile.open(rebuilt, "w:gz") as tar:
        for path in sorted(unpacked.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(unpacked)))
    return SynthesizedTraining(definition=training.definition,
                               assets={**training.assets, asset.object_key: FileAsset(rebuilt, asset.object_key)})


def test_a_program_that_writes_no_model_fails_the_job_with_the_contracts_line(
        script_run: ScriptRun, tmp_path_factory: pytest.TempPathFactory) -> None:
    """What SageMaker would show: the wrapper's one line is in the job's log for both images; FailureReason (the
    failure file) keeps it in the scikit-learn image, whose toolkit (sagemaker-training 4.8.0) writes its own only
    when none exists, while the XGBoost image's (sagemaker-containers 2.8.6.post2) overwrites it with the command
    that failed."""
    entry = VIEWS[script_run.model].training.code.entry_point
    folder = tmp_path_factory.mktemp("no-model")
    broken = _with_program(script_run.pipeline.synthesized, entry, "print('trained, saved nothing')\n", folder)
    pipeline = LocalPipeline(broken, folder / "run", parameters=dict(script_run.pipeline.parameters),
                             image=script_run.pipeline.image)
    pipeline.outputs.update(script_run.pipeline.outputs)
    with pytest.raises(JobFailedError) as failed:
        pipeline.run_training()
    assert f"training contract: {entry} wrote no model: " in str(failed.value)
    failure = (folder / "run" / "Train" / "output" / "failure").read_text(encoding="utf-8")
    if VIEWS[script_run.model].training.code.kind == SKLEARN_SCRIPT:
        assert failure.startswith(f"training contract: {entry} wrote no model: ")
    else:
        assert failure.startswith("ExecuteUserScriptError") and "pipelines.steps.script_train" in failure
