"""Train step of a model whose team writes the training program (``training.code.kind``: ``xgboost-script`` or
``sklearn-script``).

SageMaker's XGBoost or scikit-learn container runs this module in script mode (``sagemaker_program``) from the
code bundle, which
holds the platform's packages and, at its top, the team's folder (``training.code.source_dir``). Before this runs,
the container's toolkit installed the team's ``requirements.txt`` from its vendored ``wheels/`` with no index
(the Train step's PIP_NO_INDEX and PIP_FIND_LINKS). This module then:

1. runs the team's program (``--user_entry_point``, default ``train.py``) as a child process with exactly what
   script mode gives a program: the same command-line hyperparameters, the same SM_* environment, the channels
   (``train``, ``validation``, ``test``: CSV, label first, no header, the platform's features; ``metadata``:
   ``schema.json``, ``feature_names.json``, ``lineage.json``), ``SM_MODEL_DIR`` and ``/opt/ml/checkpoints``;
2. checks what it wrote into SM_MODEL_DIR: ``xgboost-model.json``, an XGBoost Booster with the model's kind's
   objective, or ``model.joblib``, a fitted scikit-learn classifier (predict_proba over the classes 0..n-1) or
   regressor that answers rows with missing values — over exactly the platform's features — and no file the
   platform writes;
3. completes the model folder as the platform's own program does (schema, fallback model, feature names,
   lineage, training summary, serving code), so evaluation, the quality gate, the drift baseline, registration
   and serving run for the team's model exactly as for the platform's.

Each refusal is one line on stderr and in ``/opt/ml/output/failure`` (SageMaker's FailureReason), exit 1.
docs/TRAINING.md states this contract for model teams.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from mlsettings.problem_types import problem_type
from mlsettings.training_code import (
    DEFAULT_ENTRY_POINT,
    ENTRY_POINT_HYPERPARAMETER,
    KIND_HYPERPARAMETER,
    MODEL_CODE_FOLDER,
    SERVE_HOOK_HYPERPARAMETER,
    SKLEARN_SCRIPT,
    TEAM_SERVE_FILE,
    TRAINING_KIND_KEY,
    XGBOOST_SCRIPT,
    described,
    first_line,
)
from mlsettings.vocabulary import FALLBACK_FILE
from pipelines.serving.inference import MODEL_FILE, SCHEMA_FILE, SKLEARN_MODEL_FILE
from pipelines.steps.training_io import (
    SUMMARY_FILE,
    Channels,
    add_path_arguments,
    complete_model_folder,
    read_channels,
)

FAILURE_FILE = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")) / "failure"
PLATFORM_FILES = (SCHEMA_FILE, FALLBACK_FILE, "feature_names.json", "lineage.json", SUMMARY_FILE, MODEL_CODE_FOLDER)
MODEL_FILES = {XGBOOST_SCRIPT: MODEL_FILE, SKLEARN_SCRIPT: SKLEARN_MODEL_FILE}
"""What a team's program writes into SM_MODEL_DIR, per kind of training code."""
WRAPPER_OPTIONS = (ENTRY_POINT_HYPERPARAMETER, KIND_HYPERPARAMETER, SERVE_HOOK_HYPERPARAMETER)


class ContractError(RuntimeError):
    """The team's program broke the training contract (docs/TRAINING.md)."""


def _split_options(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The wrapper's own hyperparameters (WRAPPER_OPTIONS) and the arguments the team's program gets (the rest)."""
    own: dict[str, str] = {}
    rest: list[str] = []
    items = list(argv)
    while items:
        item = items.pop(0)
        name = item[2:].split("=", 1)[0] if item.startswith("--") else ""
        if name in WRAPPER_OPTIONS:
            own[name] = item.split("=", 1)[1] if "=" in item else (items.pop(0) if items else "")
        else:
            rest.append(item)
    return own, rest


def run_program(entry_point: Path, arguments: Sequence[str], *, env: dict[str, str] | None = None) -> None:
    """The team's program as script mode runs one: ``python <entry> <hyperparameters>`` in its folder."""
    if not entry_point.is_file():
        raise ContractError(f"{entry_point.name} is not in the code bundle ({entry_point.parent}); "
                            "training.code.entry_point names it")
    completed = subprocess.run([sys.executable, str(entry_point), *arguments], cwd=entry_point.parent,
                               env=env, check=False)
    if completed.returncode != 0:
        raise ContractError(f"{entry_point.name} exited with status {completed.returncode} (its log above says why)")


def _check_xgboost(path: Path, channels: Channels, entry: str) -> dict[str, Any]:
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as err:
        raise ContractError(f"{entry} wrote {path.name}, which XGBoost {xgb.__version__} cannot load: "
                            f"{first_line(err)}") from None
    if booster.num_features() != channels.feature_count:
        raise ContractError(f"{entry}'s model takes {booster.num_features()} features; the platform's data has "
                            f"{channels.feature_count} (train on the channels as given)")
    learner = json.loads(booster.save_config())["learner"]
    objective = learner["objective"]["name"]
    expected = problem_type(channels.schema.problem_type).objective
    if objective != expected:
        raise ContractError(f"{entry}'s model has objective {objective!r}; a {channels.schema.problem_type} model "
                            f"needs {expected!r} (the platform's evaluation and serving read its outputs)")
    classes = len(channels.schema.label.classes or ())
    num_class = int(learner["learner_model_param"].get("num_class", "0"))
    if channels.schema.problem_type == "multiclass" and num_class != classes:
        raise ContractError(f"{entry}'s model has num_class {num_class}; the schema declares {classes} classes "
                            "(one probability per class is served)")
    return {"rounds": booster.num_boosted_rounds(), "objective": objective, "xgboost_version": xgb.__version__}


def _check_sklearn(path: Path, channels: Channels, entry: str) -> dict[str, Any]:
    """A fitted estimator of the kind: a classifier whose classes are the label as trained (0 .. n-1) with
    predict_proba, or a regressor; over exactly the channels' features, answering rows with missing values."""
    import joblib
    import sklearn
    from sklearn.base import is_classifier, is_regressor

    try:
        estimator = joblib.load(path)
    except Exception as err:  # whatever unpickling raises, the team's file is what is wrong
        raise ContractError(f"{entry} wrote {path.name}, which joblib cannot load with scikit-learn "
                            f"{sklearn.__version__}: {described(err)}") from None
    kind = channels.schema.problem_type
    regression = kind == "regression"
    if (regression and not is_regressor(estimator)) or (not regression and not is_classifier(estimator)):
        raise ContractError(f"{entry}'s model is a {type(estimator).__name__}; a {kind} model needs a "
                            f"{'regressor' if regression else 'classifier with predict_proba'}")
    features = getattr(estimator, "n_features_in_", None)
    if features != channels.feature_count:
        raise ContractError(f"{entry}'s model takes {features} features; the platform's data has "
                            f"{channels.feature_count} (fit it on the channels as given)")
    if not regression:
        classes = [int(c) if isinstance(c, int | float | np.number) and float(c).is_integer() else c
                   for c in getattr(estimator, "classes_", [])]
        expected = list(range(len(channels.schema.label.classes or ()) or 2))
        if classes != expected:
            raise ContractError(f"{entry}'s model has classes {classes}; a {kind} model's are {expected} (the "
                                "label as the channels give it)")
    rows = channels.validation[1]
    try:
        (estimator.predict if regression else estimator.predict_proba)(rows)
        estimator.predict(np.full((1, channels.feature_count), np.nan))
    except Exception as err:  # the platform serves rows with missing values: the model must answer them
        raise ContractError(f"{entry}'s model cannot answer the validation rows or a row of missing values: "
                            f"{type(err).__name__}: {first_line(err)}") from None
    return {"estimator": type(estimator).__name__, "sklearn_version": sklearn.__version__}


def check_model(model_dir: Path, channels: Channels, entry: str, kind: str = XGBOOST_SCRIPT) -> dict[str, Any]:
    """What the team's program wrote: a model the platform can evaluate and serve, and nothing of the platform's."""
    others = [name for other, name in MODEL_FILES.items() if other != kind]  # the serving handler would load those
    written = sorted(name for name in (*PLATFORM_FILES, *others) if (model_dir / name).exists())
    if written:
        raise ContractError(f"{entry} wrote {written} into the model folder; those are the platform's or another "
                            f"kind's (the platform writes its files after your program): write {MODEL_FILES[kind]} "
                            "only")
    path = model_dir / MODEL_FILES[kind]
    if not path.is_file():
        how = ("an XGBoost Booster there with booster.save_model" if kind == XGBOOST_SCRIPT
               else "a fitted estimator there with joblib.dump")
        raise ContractError(f"{entry} wrote no model: {path} is missing (save {how}; docs/TRAINING.md)")
    return _check_xgboost(path, channels, entry) if kind == XGBOOST_SCRIPT else _check_sklearn(path, channels, entry)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_path_arguments(parser)
    parser.add_argument("--fallback_l2", type=float, default=float(os.environ.get("SM_HP_FALLBACK_L2", "1.0")))
    args, _team_arguments = parser.parse_known_args(list(argv))
    return args


def main(argv: Sequence[str] | None = None, *, code_dir: Path | None = None,
         env: dict[str, str] | None = None) -> dict[str, Any]:
    """``code_dir``: where the team's folder is (default: the working folder, which in the container is the code
    folder: the toolkits start the program there — sagemaker_containers._process.create's and sagemaker_training's
    ProcessRunner's cwd=code_dir)."""
    own, passed = _split_options(sys.argv[1:] if argv is None else argv)
    entry = own.get(ENTRY_POINT_HYPERPARAMETER, DEFAULT_ENTRY_POINT)
    kind = own.get(KIND_HYPERPARAMETER, XGBOOST_SCRIPT)
    if kind not in MODEL_FILES:
        raise ContractError(f"{KIND_HYPERPARAMETER} is {kind!r}; allowed: {sorted(MODEL_FILES)}")
    args = _parse(passed)
    channels = read_channels(
        train_dir=args.train, validation_dir=args.validation, test_dir=args.test if args.test.exists() else None,
        metadata_dir=args.metadata, schema_dir=args.schema_channel)
    args.model_dir.mkdir(parents=True, exist_ok=True)
    run_program((code_dir or Path.cwd()) / entry, passed, env=env)
    found = check_model(args.model_dir, channels, entry, kind)
    summary = {**found, "trained_by": entry, TRAINING_KIND_KEY: kind}
    serve_hook = own.get(SERVE_HOOK_HYPERPARAMETER)
    if serve_hook:
        summary[SERVE_HOOK_HYPERPARAMETER] = serve_hook
    completed = complete_model_folder(args.model_dir, channels, metadata_dir=args.metadata, summary=summary,
                                      fallback_l2=args.fallback_l2, output_data_dir=args.output_data_dir)
    if serve_hook:
        add_serve_hook(args.model_dir, (code_dir or Path.cwd()) / serve_hook, channels)
    return completed


def add_serve_hook(model_dir: Path, hook: Path, channels: Channels) -> None:
    """Put the team's serving hook beside the platform's handler (code/, mlsettings.training_code.TEAM_SERVE_FILE)
    and serve the validation rows and a row of missing values through it, as the endpoint will: a hook that fails or
    answers in another shape fails training, in one line, not the deployment."""
    from pipelines.serving import inference
    from pipelines.steps.team_hooks import ServingHookError

    if not hook.is_file():
        raise ContractError(f"{hook.name} is not in the code bundle ({hook.parent}); training.code.serve_hook names it")
    shutil.copy2(hook, model_dir / MODEL_CODE_FOLDER / TEAM_SERVE_FILE)
    try:
        model = inference.model_fn(model_dir)
        model.predict(channels.validation[1])
        model.predict(np.full((1, channels.feature_count), np.nan))
    except ServingHookError as err:
        raise ContractError(f"{hook.name}, {err}") from None


def entry(argv: Sequence[str] | None = None) -> int:
    try:
        summary = main(argv)
    except ContractError as err:
        message = f"training contract: {err}"
        print(message, file=sys.stderr)
        try:
            FAILURE_FILE.parent.mkdir(parents=True, exist_ok=True)
            FAILURE_FILE.write_text(message + "\n", encoding="utf-8")
        except OSError:
            pass
        return 1
    detail = f"{summary['rounds']} rounds" if "rounds" in summary else f"a {summary['estimator']}"
    print(f"{summary['trained_by']} trained {detail}; the platform completed the model folder")
    return 0


if __name__ == "__main__":
    sys.exit(entry())
