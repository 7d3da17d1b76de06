"""The train script: hyperparameters as strings, checkpoints, and resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from pipelines.datasets import write_breast_cancer_csv
from pipelines.serving import inference
from pipelines.steps import preprocess, train

SCHEMA = Path("pipelines/schemas/breast_cancer.json")


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("channels")
    data = write_breast_cancer_csv(root / "input" / "data.csv")
    preprocess.main(["--input-dir", str(data.parent), "--schema", str(SCHEMA), "--output-dir", str(root / "out")])
    return root / "out"


def train_argv(channels: Path, job: Path, *hyperparameters: str) -> list[str]:
    return ["--train", str(channels / "train"), "--validation", str(channels / "validation"),
            "--test", str(channels / "test"), "--metadata", str(channels / "metadata"),
            "--model-dir", str(job / "model"), "--checkpoint-dir", str(job / "checkpoints"),
            "--output-data-dir", str(job / "output"), *hyperparameters]


def test_interrupted_training_resumes_from_the_checkpoint_and_ends_with_all_rounds(channels: Path,
                                                                                  tmp_path: Path) -> None:
    job = tmp_path / "job"
    hyperparameters = ("--num_round", "40", "--checkpoint_interval", "10")
    with pytest.raises(train.SimulatedInterruptionError, match="after 20 rounds"):
        train.main(train_argv(channels, job, *hyperparameters, "--interrupt_after_rounds", "20"))
    assert not (job / "model" / inference.MODEL_FILE).exists()
    assert sorted(p.name for p in (job / "checkpoints").iterdir()) == [
        "xgboost-checkpoint-000010.json", "xgboost-checkpoint-000020.json"]

    summary = train.main(train_argv(channels, job, *hyperparameters))
    assert summary["rounds"] == 40
    assert summary["resumed_from"] == "xgboost-checkpoint-000020.json" and summary["rounds_before_resume"] == 20
    resumed = xgb.Booster(model_file=str(job / "model" / inference.MODEL_FILE))
    assert resumed.num_boosted_rounds() == 40

    straight = tmp_path / "straight"
    train.main(train_argv(channels, straight, *hyperparameters))
    uninterrupted = xgb.Booster(model_file=str(straight / "model" / inference.MODEL_FILE))
    _, x = train.read_xgboost_csv(channels / "test")
    np.testing.assert_allclose(resumed.predict(xgb.DMatrix(x)), uninterrupted.predict(xgb.DMatrix(x)), atol=1e-6)


def test_a_half_written_newest_checkpoint_is_skipped(channels: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    with pytest.raises(train.SimulatedInterruptionError):
        train.main(train_argv(channels, job, "--num_round", "30", "--checkpoint_interval", "10",
                              "--interrupt_after_rounds", "10"))
    (job / "checkpoints" / "xgboost-checkpoint-000020.json").write_text('{"trunc')
    summary = train.main(train_argv(channels, job, "--num_round", "30", "--checkpoint_interval", "10"))
    assert summary["resumed_from"] == "xgboost-checkpoint-000010.json" and summary["rounds"] == 30


def test_hyperparameters_come_from_sm_hp_environment_and_unknown_arguments_are_ignored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_HP_MAX_DEPTH", "7")
    monkeypatch.setenv("SM_HP_DEVICE", "cuda")
    hp, _ = train.parse_args(["--eta", "0.3", "--sagemaker_program", "train.py"])
    assert (hp.max_depth, hp.device, hp.eta) == (7, "cuda", 0.3)
    assert hp.booster_params()["device"] == "cuda"


def test_model_folder_holds_everything_serving_needs(channels: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    train.main(train_argv(channels, job, "--num_round", "5"))
    model_dir = job / "model"
    for name in ("xgboost-model.json", "schema.json", "fallback.json", "lineage.json", "feature_names.json",
                 "training_summary.json", "code/inference.py", "code/mlcore/features.py"):
        assert (model_dir / name).is_file(), name
    json.loads((model_dir / "xgboost-model.json").read_text())  # really the JSON format
    model = inference.model_fn(model_dir)
    assert model.estimator.num_boosted_rounds() == 5


def test_schema_channel_is_used_when_metadata_has_no_schema(channels: Path, tmp_path: Path) -> None:
    schema_channel = tmp_path / "schema"
    schema_channel.mkdir()
    (schema_channel / "breast_cancer.json").write_text(SCHEMA.read_text())
    empty_metadata = tmp_path / "metadata"
    empty_metadata.mkdir()
    argv = train_argv(channels, tmp_path / "job", "--num_round", "3", "--checkpoint_dir", str(tmp_path / "ck"))
    argv[argv.index("--metadata") + 1] = str(empty_metadata)
    summary = train.main([*argv, "--schema-channel", str(schema_channel)])
    assert summary["rounds"] == 3 and (tmp_path / "ck" / "xgboost-checkpoint-000003.json").is_file()
