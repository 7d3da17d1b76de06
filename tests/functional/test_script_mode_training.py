"""A team's own training program (training.code.kind xgboost-script) through the local runner: the platform's
wrapper runs it as script mode does, checks what it wrote and completes the model folder; every platform step
runs around it. Each broken contract stops the run with one line. (The container's own toolkit runs the same
folder in tests/contract/test_script_mode_contract.py.)"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from mlsettings.config import load_environments, project_context
from mlsettings.config.fields import REPO_ROOT
from pipelines.datasets import write_bundled_csv
from pipelines.local_run import LocalRunResult, TeamCode, run_local

MODEL = "wine-script"
CONFIG = load_environments(project_context())["dev"].for_model(MODEL)
SHIPPED = REPO_ROOT / str(CONFIG.training.code.source_dir)
SCHEMA = REPO_ROOT / CONFIG.training.schema_file
FAST = {"single_row_requests": 5, "batch_repeats": 1, "bootstrap_resamples": 20}


def _run(tmp_path: Path, team: Path) -> LocalRunResult:
    data = write_bundled_csv("wine", tmp_path / "data.csv")
    gate = CONFIG.training.quality_gate
    return run_local(tmp_path / "run", schema_path=SCHEMA, data_csv=data, hyperparameters={"num_round": 20},
                     quality_metric=gate.metric, threshold=gate.threshold, evaluation_options=FAST,
                     team_code=TeamCode(source_dir=team, entry_point=CONFIG.training.code.entry_point,
                                        evaluate_hook=CONFIG.training.code.evaluate_hook))


def _team(tmp_path: Path, program: str | None = None, requirements: str | None = None) -> Path:
    team = tmp_path / "team"
    shutil.copytree(SHIPPED, team)
    if program is not None:
        (team / "train.py").write_text(program, encoding="utf-8")
    if requirements is not None:
        (team / "requirements.txt").write_text(requirements, encoding="utf-8")
    return team


def test_the_shipped_program_trains_and_every_platform_step_runs_around_it(tmp_path: Path) -> None:
    result = _run(tmp_path, SHIPPED)
    assert result.status == "succeeded", result.failure
    assert [s.name for s in result.steps] == ["validate", "preprocess", "train", "evaluate", "gate", "baseline"]
    assert result.training is not None and result.training["trained_by"] == "train.py"
    assert result.training["objective"] == "multi:softprob" and result.training["rounds"] == 20
    assert "fallback_metrics" in result.training  # the platform's fallback model, built around the team's booster
    with tarfile.open(result.paths["model_artifact"]) as tar:
        names = set(tar.getnames())
    assert {"xgboost-model.json", "schema.json", "fallback.json", "feature_names.json", "lineage.json",
            "training_summary.json", "code/inference.py"} <= names
    # the vendored wheel was installed from wheels/ (not found in the runner's environment) and used
    assert list((tmp_path / "run" / "train" / "opt" / "ml" / "site-packages").glob("tabulate*"))


def _failure(tmp_path: Path, **team: str) -> str:
    result = _run(tmp_path, _team(tmp_path, **team))
    assert result.status == "failed_training"
    assert [s.status for s in result.steps][-4:] == ["failed", "skipped", "skipped", "skipped"]
    assert result.failure is not None and "\n" not in result.failure
    return result.failure


NO_MODEL = "print('trained, but saved nothing')\n"
EXITS = "import sys\nsys.exit(3)\n"
WRONG_OBJECTIVE = """
import os, numpy as np, xgboost as xgb, pandas as pd
from pathlib import Path
folder = Path(os.environ["SM_CHANNEL_TRAIN"])
values = pd.concat([pd.read_csv(p, header=None) for p in folder.glob("*.csv")]).to_numpy()
booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(values[:, 1:], label=values[:, 0]), 3)
booster.save_model(str(Path(os.environ["SM_MODEL_DIR"]) / "xgboost-model.json"))
"""
TOO_FEW_FEATURES = WRONG_OBJECTIVE.replace("values[:, 1:]", "values[:, 1:3]").replace(
    '"reg:squarederror"', '"multi:softprob", "num_class": 3')
PLATFORM_FILE = """
import os
from pathlib import Path
(Path(os.environ["SM_MODEL_DIR"]) / "schema.json").write_text("{}")
"""


@pytest.mark.parametrize(("program", "expected"), [
    (NO_MODEL, "training contract: train.py wrote no model: "),
    (EXITS, "training contract: train.py exited with status 3"),
    (WRONG_OBJECTIVE, "train.py's model has objective 'reg:squarederror'; a multiclass model needs 'multi:softprob'"),
    (TOO_FEW_FEATURES, "train.py's model takes 2 features; the platform's data has 13"),
    (PLATFORM_FILE, "train.py wrote ['schema.json'] into the model folder; those are the platform's"),
], ids=["no model", "exit status", "objective", "features", "platform file"])
def test_a_program_that_breaks_the_contract_stops_the_run_in_one_line(tmp_path: Path, program: str,
                                                                     expected: str) -> None:
    assert expected in _failure(tmp_path, program=program)


def test_a_requirement_without_its_wheel_cannot_install_offline(tmp_path: Path) -> None:
    failure = _failure(tmp_path, requirements="tabulate==0.9.0\nsix-not-vendored==1.0\n")
    assert failure.startswith("requirements.txt did not install from wheels/ with no index:")


# ------------------------------------------------------------------------------------------ sklearn-script
SKLEARN_MODEL = "diabetes-sklearn"
SKLEARN_CONFIG = load_environments(project_context())["dev"].for_model(SKLEARN_MODEL)
SKLEARN_SHIPPED = REPO_ROOT / str(SKLEARN_CONFIG.training.code.source_dir)


def _sklearn_run(tmp_path: Path, program: str | None = None, serve_hook: str | None = None) -> LocalRunResult:
    team = tmp_path / "team"
    shutil.copytree(SKLEARN_SHIPPED, team)
    if program is not None:
        (team / "train.py").write_text(program, encoding="utf-8")
    if serve_hook is not None:
        (team / "serve.py").write_text(serve_hook, encoding="utf-8")
    data = write_bundled_csv("diabetes", tmp_path / "data.csv")
    gate = SKLEARN_CONFIG.training.quality_gate
    code = SKLEARN_CONFIG.training.code
    return run_local(tmp_path / "run", schema_path=REPO_ROOT / SKLEARN_CONFIG.training.schema_file, data_csv=data,
                     quality_metric=gate.metric, threshold=gate.threshold, evaluation_options=FAST,
                     team_code=TeamCode(source_dir=team, entry_point=code.entry_point, kind=code.kind,
                                        serve_hook="serve.py" if serve_hook is not None else None))


def test_the_shipped_sklearn_program_trains_and_the_platform_serves_its_estimator(tmp_path: Path) -> None:
    from pipelines.serving import inference

    result = _sklearn_run(tmp_path)
    assert result.status == "succeeded", result.failure
    assert result.training is not None and result.training["estimator"] == "HistGradientBoostingRegressor"
    model = inference.model_fn(result.paths["model_dir"])
    assert model.framework == inference.SKLEARN
    rows = [["59", "2", "32.1", "101", "157", "93.2", "38", "4", "4.8598", "87"], [""] * 10]
    answers = inference.predict_raw_rows(model, rows)
    assert len(answers) == 2 and all(isinstance(a, float) for a in answers)  # a row of missing values answers too


SKLEARN_READ = """
import os, numpy as np, pandas as pd
from pathlib import Path
folder = Path(os.environ["SM_CHANNEL_TRAIN"])
values = pd.concat([pd.read_csv(p, header=None) for p in folder.glob("*.csv")]).to_numpy()
model_dir = Path(os.environ["SM_MODEL_DIR"])
"""
CLASSIFIER = SKLEARN_READ + """
import joblib
from sklearn.ensemble import HistGradientBoostingClassifier
joblib.dump(HistGradientBoostingClassifier(max_iter=3).fit(values[:, 1:], values[:, 0] > 150),
            model_dir / "model.joblib")
"""
NO_MISSING = SKLEARN_READ + """
import joblib
from sklearn.linear_model import LinearRegression
joblib.dump(LinearRegression().fit(np.nan_to_num(values[:, 1:]), values[:, 0]), model_dir / "model.joblib")
"""
FEW_FEATURES = SKLEARN_READ + """
import joblib
from sklearn.ensemble import HistGradientBoostingRegressor
joblib.dump(HistGradientBoostingRegressor(max_iter=3).fit(values[:, 1:4], values[:, 0]), model_dir / "model.joblib")
"""
NOT_A_MODEL = SKLEARN_READ + """
(model_dir / "model.joblib").write_bytes(b"not a pickle")
"""


@pytest.mark.parametrize(("program", "expected"), [
    (NO_MODEL, "train.py wrote no model: "),
    (CLASSIFIER, "train.py's model is a HistGradientBoostingClassifier; a regression model needs a regressor"),
    (NO_MISSING, "train.py's model cannot answer the validation rows or a row of missing values: ValueError"),
    (FEW_FEATURES, "train.py's model takes 3 features; the platform's data has 10"),
    (NOT_A_MODEL, "train.py wrote model.joblib, which joblib cannot load with scikit-learn"),
], ids=["no model", "classifier", "missing values", "features", "not a model"])
def test_a_sklearn_program_that_breaks_the_contract_stops_the_run_in_one_line(tmp_path: Path, program: str,
                                                                             expected: str) -> None:
    result = _sklearn_run(tmp_path, program)
    assert result.status == "failed_training"
    assert result.failure is not None and "\n" not in result.failure and expected in result.failure


# ------------------------------------------------------------------------------------------ the evaluation hook
def _hook_run(tmp_path: Path, hook: str | None, setting: str = "evaluate_hook") -> LocalRunResult:
    """The shipped folder with the file ``setting`` names replaced by ``hook`` (None: as shipped), run with that
    hook only."""
    code = CONFIG.training.code
    team = _team(tmp_path)
    if hook is not None:
        (team / getattr(code, setting)).write_text(hook, encoding="utf-8")
    data = write_bundled_csv("wine", tmp_path / "data.csv")
    gate = CONFIG.training.quality_gate
    return run_local(tmp_path / "run", schema_path=SCHEMA, data_csv=data, hyperparameters={"num_round": 20},
                     quality_metric=gate.metric, threshold=gate.threshold, evaluation_options=FAST,
                     team_code=TeamCode(source_dir=team, entry_point=code.entry_point, kind=code.kind,
                                        **{setting: getattr(code, setting)}))


def test_the_shipped_hook_records_team_metrics_beside_the_platforms(tmp_path: Path) -> None:
    assert CONFIG.training.code.evaluate_hook == "metrics.py"
    result = _hook_run(tmp_path, None)
    assert result.status == "succeeded", result.failure
    assert result.metrics is not None and set(result.metrics["team_metrics"]) == {"worst_class_recall",
                                                                                 "classes_seen"}
    assert result.metrics["team_metrics"]["classes_seen"] == 3.0
    assert 0.0 <= result.metrics["team_metrics"]["worst_class_recall"] <= 1.0


@pytest.mark.parametrize(("hook", "expected"), [
    ("def evaluate(labels, answers, schema):\n    raise ValueError('no labels of class 2')\n",
     "evaluation hook: metrics.py: evaluate() raised ValueError: no labels of class 2"),
    ("def evaluate(labels, answers, schema):\n    return {'score': float('nan')}\n",
     "evaluation hook: metrics.py: metric 'score' is nan; allowed: a finite number"),
    ("def evaluate(labels, answers, schema):\n    return {'bad name': 1.0}\n",
     "evaluation hook: metrics.py: metric name 'bad name'"),
    ("def evaluate(labels, answers, schema):\n    return [1.0]\n",
     "evaluation hook: metrics.py: evaluate() returned list"),
], ids=["raises", "nan", "name", "not a dict"])
def test_a_broken_hook_stops_the_run_before_the_gate_in_one_line(tmp_path: Path, hook: str, expected: str) -> None:
    result = _hook_run(tmp_path, hook)
    assert result.status == "failed_evaluation"
    assert result.failure is not None and "\n" not in result.failure and result.failure.startswith(expected)
    assert [s.status for s in result.steps][-3:] == ["failed", "skipped", "skipped"]


# ------------------------------------------------------------------------------------------ the preprocessing hook
def _clean_run(tmp_path: Path, hook: str | None, data: Path | None = None) -> LocalRunResult:
    team = tmp_path / "team"
    shutil.copytree(SKLEARN_SHIPPED, team)
    if hook is not None:
        (team / "clean.py").write_text(hook, encoding="utf-8")
    csv = data or write_bundled_csv("diabetes", tmp_path / "data.csv")
    gate = SKLEARN_CONFIG.training.quality_gate
    code = SKLEARN_CONFIG.training.code
    return run_local(tmp_path / "run", schema_path=REPO_ROOT / SKLEARN_CONFIG.training.schema_file, data_csv=csv,
                     quality_metric=gate.metric, threshold=gate.threshold, evaluation_options=FAST,
                     team_code=TeamCode(source_dir=team, entry_point=code.entry_point, kind=code.kind,
                                        preprocess_hook=code.preprocess_hook))


def test_the_shipped_preprocessing_hook_drops_duplicate_rows_and_the_lineage_says_so(tmp_path: Path) -> None:
    assert SKLEARN_CONFIG.training.code.preprocess_hook == "clean.py"
    data = write_bundled_csv("diabetes", tmp_path / "base.csv")
    lines = data.read_text(encoding="utf-8").splitlines()
    doubled = tmp_path / "doubled.csv"
    doubled.write_text("\n".join([*lines, *lines[1:21]]) + "\n", encoding="utf-8")  # 20 rows twice
    result = _clean_run(tmp_path, None, doubled)
    assert result.status == "succeeded", result.failure
    assert result.lineage is not None and result.lineage["preprocess_hook"] == "clean.py"
    assert result.lineage["rows"]["input"] == len(lines) - 1 + 20
    assert result.lineage["rows"]["kept_by_hook"] == len(lines) - 1


@pytest.mark.parametrize(("hook", "expected"), [
    ("def clean(frame, schema):\n    raise KeyError('age')\n",
     "preprocessing hook: clean.py: clean() raised KeyError: 'age'"),
    ("def clean(frame, schema):\n    return frame.drop(columns=[frame.columns[0]])\n",
     "preprocessing hook: clean.py: clean() returned columns"),
    ("import pandas as pd\ndef clean(frame, schema):\n    return pd.concat([frame, frame])\n",
     "preprocessing hook: clean.py: clean() returned 884 rows of 442"),
    ("def clean(frame, schema):\n    return frame.to_dict()\n",
     "preprocessing hook: clean.py: clean() returned dict; allowed: a pandas DataFrame"),
], ids=["raises", "columns", "more rows", "not a frame"])
def test_a_broken_preprocessing_hook_stops_the_run_before_training_in_one_line(tmp_path: Path, hook: str,
                                                                              expected: str) -> None:
    result = _clean_run(tmp_path, hook)
    assert result.status == "failed_preprocessing"
    assert result.failure is not None and "\n" not in result.failure and result.failure.startswith(expected)
    assert [s.status for s in result.steps][1:] == ["failed", "skipped", "skipped", "skipped", "skipped"]


# ------------------------------------------------------------------------------------------ the serving hook
def _serve_run(tmp_path: Path, hook: str | None) -> LocalRunResult:
    return _hook_run(tmp_path, hook, "serve_hook")


def test_the_shipped_serving_hook_answers_for_the_model_everywhere_the_platform_serves_it(tmp_path: Path) -> None:
    """The wrapper puts serve.py beside the handler (code/team_serve.py); the handler's answers are the hook's
    temperature-scaled probabilities — the same answers Evaluate scored and the golden payloads pin."""
    import json

    import numpy as np
    import xgboost as xgb

    from pipelines.serving import inference

    assert CONFIG.training.code.serve_hook == "serve.py"
    result = _serve_run(tmp_path, None)
    assert result.status == "succeeded", result.failure
    model_dir = result.paths["model_dir"]
    assert (model_dir / "code" / "team_serve.py").read_bytes() == (SHIPPED / "serve.py").read_bytes()
    served = inference.model_fn(model_dir)
    golden = json.loads(result.paths["golden"].read_text())
    batch = next(case for case in golden["cases"] if case["name"] == "batch_csv")
    features = np.asarray([served.transformer.transform_row(line.split(","))
                           for line in batch["body"].splitlines()])
    booster = xgb.Booster()
    booster.load_model(str(model_dir / "xgboost-model.json"))
    raw = booster.predict(xgb.DMatrix(features, missing=np.nan))
    scaled = np.exp(np.log(np.clip(raw, 1e-12, 1.0)) / 1.5)
    expected = scaled / scaled.sum(axis=1, keepdims=True)
    assert np.allclose(served.predict(features), expected) and not np.allclose(raw, expected)
    assert np.allclose([answer["probabilities"] for answer in batch["expected"]], expected, atol=1e-6)


@pytest.mark.parametrize(("hook", "expected"), [
    ("def predict(model, features):\n    raise ValueError('no calibration table')\n",
     "training contract: serve.py, serving hook (training.code.serve_hook): predict() raised ValueError: no "
     "calibration table"),
    ("def predict(model, features):\n    return [0.5] * len(features)\n",
     "training contract: serve.py, serving hook (training.code.serve_hook): predict() answered shape (27,)"),
    ("def predict(model, features):\n    import numpy as np\n    return np.full((len(features), 3), 2.0)\n",
     "training contract: serve.py, serving hook (training.code.serve_hook): predict() answered a probability "
     "outside [0, 1]"),
    ("def predict(model, features):\n    import numpy as np\n    return np.full((len(features), 3), 0.5)\n",
     "training contract: serve.py, serving hook (training.code.serve_hook): predict() answered row 0: "),
], ids=["raises", "shape", "range", "not a distribution"])
def test_a_broken_serving_hook_stops_the_run_at_training_in_one_line(tmp_path: Path, hook: str,
                                                                    expected: str) -> None:
    result = _serve_run(tmp_path, hook)
    assert result.status == "failed_training"
    assert result.failure is not None and "\n" not in result.failure and result.failure.startswith(expected)


def test_a_serving_hook_that_fails_at_the_endpoint_answers_500_in_one_line(tmp_path: Path) -> None:
    """The toolkit would turn an exception into a bare 500; the handler answers the hook's own line instead."""
    import json

    from pipelines.serving import inference

    result = _serve_run(tmp_path, None)
    assert result.status == "succeeded", result.failure
    hook = result.paths["model_dir"] / "code" / "team_serve.py"
    hook.write_text("def predict(model, features):\n    raise KeyError('calibration')\n", encoding="utf-8")
    model = inference.model_fn(result.paths["model_dir"])
    body = next(c for c in json.loads(result.paths["golden"].read_text())["cases"] if c["name"] == "batch_csv")["body"]
    answer = inference.transform_fn(model, body, inference.CSV, inference.CSV)
    assert answer.status == 500
    error = json.loads(answer.body)
    assert error["error"] == "ServingHookError" and "\n" not in error["message"]
    assert error["message"] == ("serving hook (training.code.serve_hook): predict() raised KeyError: 'calibration'")


def test_a_scikit_learn_models_serving_hook_gets_its_estimator(tmp_path: Path) -> None:
    """The hook receives what the team's program saved — here a scikit-learn regressor — and the platform serves
    its answers: a hook that rounds the predicted value to whole units is what the model answers."""
    import numpy as np

    from pipelines.serving import inference

    hook = ("import numpy as np\n\n\ndef predict(model, features):\n"
            "    return np.round(model.predict(features))\n")
    result = _sklearn_run(tmp_path, serve_hook=hook)
    assert result.status == "succeeded", result.failure
    served = inference.model_fn(result.paths["model_dir"])
    assert served.framework == inference.SKLEARN
    features = np.zeros((3, len(served.transformer.output_names)))
    answers = served.predict(features)
    assert np.array_equal(answers, np.round(served.estimator.predict(features)))
    assert all(float(a).is_integer() for a in answers)
