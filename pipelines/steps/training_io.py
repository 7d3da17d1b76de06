"""What every training program of the platform reads and writes, with no ML framework imported (it runs in the
XGBoost and the scikit-learn image alike): the Train step's channels, the fallback model, the serving code and the
rest of the model folder the platform's evaluation, baseline and serving read. pipelines/steps/train.py (the
platform's program) and pipelines/steps/script_train.py (the wrapper of a team's program) both complete the model
folder here."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd

from mlcore.fallback import (
    CLASS_PRIORS,
    FALLBACK_FORMAT,
    LOGISTIC_REGRESSION,
    TARGET_MEDIAN,
    FallbackModel,
    fallback_from_dict,
)
from mlcore.features import FeatureTransformer
from mlcore.metrics import quality_metrics
from mlcore.outputs import output_for
from mlsettings.problem_types import problem_type
from mlsettings.schema import DataSchema
from mlsettings.training_code import MODEL_CODE_FOLDER
from mlsettings.vocabulary import FALLBACK_FILE
from pipelines.datasets import csv_files_in
from pipelines.serving.inference import SCHEMA_FILE

SUMMARY_FILE = "training_summary.json"
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# The modules the serving handler needs; copied into <model>/code so the artifact serves on its own.
SERVING_MODULES = (("mlcore", "__init__.py"), ("mlcore", "features.py"), ("mlcore", "fallback.py"),
                   ("mlcore", "outputs.py"), ("mlsettings", "__init__.py"), ("mlsettings", "schema.py"),
                   ("mlsettings", "problem_types.py"), ("mlsettings", "training_code.py"),
                   ("pipelines", "__init__.py"), ("pipelines/steps", "__init__.py"),
                   ("pipelines/steps", "team_hooks.py"))
"""The standard-library modules the inference handler imports, copied into the model's code/ folder (the hooks'
loader for a team's serving hook among them)."""


def _env_path(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable, default))


def add_path_arguments(parser: argparse.ArgumentParser) -> None:
    """The folders script mode gives a training program (SM_* variables, else SageMaker's defaults), as options."""
    parser.add_argument("--train", type=Path, default=_env_path("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument("--validation", type=Path,
                        default=_env_path("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    parser.add_argument("--test", type=Path, default=_env_path("SM_CHANNEL_TEST", "/opt/ml/input/data/test"))
    parser.add_argument("--metadata", type=Path,
                        default=_env_path("SM_CHANNEL_METADATA", "/opt/ml/input/data/metadata"))
    parser.add_argument("--model-dir", type=Path, default=_env_path("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--schema-channel", type=Path,
                        default=_env_path("SM_CHANNEL_SCHEMA", "/opt/ml/input/data/schema"),
                        help="used when the metadata channel has no schema.json")
    # "checkpoint_dir" is also accepted as a hyperparameter spelling (hyperparameters use underscores).
    parser.add_argument("--checkpoint-dir", "--checkpoint_dir", dest="checkpoint_dir", type=Path,
                        default=Path("/opt/ml/checkpoints"))
    parser.add_argument("--output-data-dir", type=Path,
                        default=_env_path("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))


def read_xgboost_csv(channel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels and features from a channel of label-first, header-less CSV files (empty field = missing): integer
    labels (class indices) as int64, others (a regression target) as float64."""
    files = csv_files_in(channel)
    if not files:
        raise FileNotFoundError(f"channel {channel} holds no CSV files")
    table = pd.concat([pd.read_csv(p, header=None, dtype=np.float64) for p in files], ignore_index=True)
    values = table.to_numpy(dtype=np.float64)
    labels = values[:, 0]
    return (labels.astype(np.int64) if np.all(labels == np.round(labels)) else labels), values[:, 1:]


# --------------------------------------------------------------------------------------------------------
# fallback model (numpy here; mlcore.fallback scores it in pure Python)
# --------------------------------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function without overflow: exp of a non-positive number only."""
    decay = np.exp(-np.abs(z))
    result: np.ndarray = np.where(z >= 0, 1.0 / (1.0 + decay), decay / (1.0 + decay))
    return result


def fit_logistic_regression(features: np.ndarray, labels: np.ndarray, *, l2: float = 1.0,
                            max_iterations: int = 100, tolerance: float = 1e-10) -> dict[str, Any]:
    """L2-regularised logistic regression by Newton's method on standardised, mean-imputed features.

    Minimises ``Σ logloss + l2/2 · ||coef||²`` (intercept unpenalised) — the objective of scikit-learn's
    ``LogisticRegression(C=1/l2)``, without needing scikit-learn in the training container. Newton's method
    converges in a handful of iterations at this size and is deterministic.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    impute = np.nanmean(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
    filled = np.where(np.isnan(x), impute, x)
    mean = filled.mean(axis=0)
    scale = filled.std(axis=0)
    scale = np.where(scale > 0.0, scale, 1.0)
    z = (filled - mean) / scale
    design = np.hstack([z, np.ones((z.shape[0], 1))])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    weights = np.zeros(design.shape[1])
    for _ in range(max_iterations):
        p = _sigmoid(design @ weights)
        gradient = design.T @ (p - y) + penalty * weights
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + np.diag(penalty) + 1e-12 * np.eye(design.shape[1])
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < tolerance:
            break
    return {"impute": impute.tolist(), "mean": mean.tolist(), "scale": scale.tolist(),
            "coef": weights[:-1].tolist(), "intercept": float(weights[-1])}


def fallback_probabilities(doc: Mapping[str, Any], features: np.ndarray) -> np.ndarray:
    """Vectorised reference scoring of a fallback document (the parity test's other side)."""
    x = np.asarray(features, dtype=np.float64)
    filled = np.where(np.isnan(x), np.asarray(doc["impute"]), x)
    z = (filled - np.asarray(doc["mean"])) / np.asarray(doc["scale"])
    return _sigmoid(z @ np.asarray(doc["coef"]) + float(doc["intercept"]))


def _logistic_fallback(schema: DataSchema, train: tuple[np.ndarray, np.ndarray], *, l2: float) -> dict[str, Any]:
    fitted = fit_logistic_regression(train[1], train[0], l2=l2)
    return {"format": FALLBACK_FORMAT, "kind": LOGISTIC_REGRESSION, "schema": schema.to_dict(),
            "feature_names": list(FeatureTransformer.from_schema(schema).output_names), **fitted}


def _class_priors_fallback(schema: DataSchema, train: tuple[np.ndarray, np.ndarray], *, l2: float) -> dict[str, Any]:
    counts = np.bincount(train[0].astype(np.int64), minlength=len(schema.label.classes)).astype(np.float64)
    return {"format": FALLBACK_FORMAT, "kind": CLASS_PRIORS, "schema": schema.to_dict(),
            "priors": (counts / counts.sum()).tolist()}


def _target_median_fallback(schema: DataSchema, train: tuple[np.ndarray, np.ndarray], *, l2: float
                            ) -> dict[str, Any]:
    return {"format": FALLBACK_FORMAT, "kind": TARGET_MEDIAN, "schema": schema.to_dict(),
            "median": float(np.median(train[0]))}


FALLBACK_BUILDERS = {LOGISTIC_REGRESSION: _logistic_fallback, CLASS_PRIORS: _class_priors_fallback,
                     TARGET_MEDIAN: _target_median_fallback}
"""How training fits each fallback kind (mlsettings.problem_types: ``fallback``)."""


def build_fallback(schema: DataSchema, train: tuple[np.ndarray, np.ndarray],
                   evaluation: tuple[np.ndarray, np.ndarray], *, evaluated_on: str, l2: float) -> dict[str, Any]:
    """The fallback model of the schema's kind, fitted on the training rows, with its metrics on ``evaluation``."""
    doc = FALLBACK_BUILDERS[problem_type(schema.problem_type).fallback](schema, train, l2=l2)
    model = fallback_from_dict(doc)  # fail the training job, not the Lambda, if the document is invalid
    if isinstance(model, FallbackModel):
        predictions = fallback_probabilities(doc, evaluation[1])
    else:
        output = output_for(schema.label)
        # A constant model: its answer does not depend on the row (the rows here are already features).
        answer = model.constant_answer()
        predictions = np.asarray([output.metric_input(answer)] * evaluation[0].size, dtype=np.float64)
    metrics = quality_metrics(schema.problem_type, evaluation[0], predictions)
    doc["metrics"] = {**metrics, "evaluated_on": evaluated_on, "rows": int(evaluation[0].size)}
    return doc


# --------------------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------------------


def copy_serving_code(model_dir: Path) -> None:
    """Put the inference handler and the modules it imports into ``<model>/code``."""
    code = model_dir / MODEL_CODE_FOLDER
    code.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPOSITORY_ROOT / "pipelines" / "serving" / "inference.py", code / "inference.py")
    for package, module in SERVING_MODULES:
        (code / package).mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPOSITORY_ROOT / package / module, code / package / module)


def find_schema(metadata_dir: Path, schema_dir: Path | None) -> Path:
    """preprocess's ``metadata/schema.json``, else the first JSON file of a ``schema`` channel."""
    if (metadata_dir / "schema.json").is_file():
        return metadata_dir / "schema.json"
    candidates = sorted(schema_dir.glob("*.json")) if schema_dir is not None and schema_dir.is_dir() else []
    if not candidates:
        raise FileNotFoundError(f"no schema: neither {metadata_dir}/schema.json nor a JSON file in {schema_dir}")
    return candidates[0]


@dataclass(frozen=True)
class Channels:
    """What the Train step receives, read and checked against the schema (label first, then the features)."""

    schema: DataSchema
    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None

    @property
    def feature_count(self) -> int:
        return int(self.train[1].shape[1])


def read_channels(*, train_dir: Path, validation_dir: Path, test_dir: Path | None, metadata_dir: Path,
                  schema_dir: Path | None = None) -> Channels:
    schema = DataSchema.load(find_schema(metadata_dir, schema_dir))
    expected = len(FeatureTransformer.from_schema(schema).output_names)
    train = read_xgboost_csv(train_dir)
    validation = read_xgboost_csv(validation_dir)
    test = read_xgboost_csv(test_dir) if test_dir is not None and csv_files_in(test_dir) else None
    for name, (_, x) in {"train": train, "validation": validation, **({"test": test} if test else {})}.items():
        if x.shape[1] != expected:
            raise ValueError(f"{name} data has {x.shape[1]} features; schema {schema.name!r} produces {expected}")
    return Channels(schema=schema, train=train, validation=validation, test=test)


def complete_model_folder(model_dir: Path, channels: Channels, *, metadata_dir: Path, summary: Mapping[str, Any],
                          fallback_l2: float, output_data_dir: Path | None = None) -> dict[str, Any]:
    """Everything but the booster that the platform's evaluation, baseline and serving read from the model folder:
    the schema, the fallback model, the metadata channel's feature names and lineage, the training summary and
    the serving code. The platform writes these for every kind of training (a team's script writes the booster
    only: docs/TRAINING.md)."""
    schema, test = channels.schema, channels.test
    (model_dir / SCHEMA_FILE).write_text(json.dumps(schema.to_dict(), indent=2) + "\n", encoding="utf-8")
    fallback = build_fallback(schema, channels.train, test or channels.validation,
                              evaluated_on="test" if test else "validation", l2=fallback_l2)
    (model_dir / FALLBACK_FILE).write_text(json.dumps(fallback, indent=2) + "\n", encoding="utf-8")
    for name in ("feature_names.json", "lineage.json"):
        if (metadata_dir / name).is_file():
            shutil.copy2(metadata_dir / name, model_dir / name)
    completed = {**summary, "fallback_metrics": fallback["metrics"]}
    (model_dir / SUMMARY_FILE).write_text(json.dumps(completed, indent=2) + "\n", encoding="utf-8")
    copy_serving_code(model_dir)
    if output_data_dir is not None:
        output_data_dir.mkdir(parents=True, exist_ok=True)
        (output_data_dir / SUMMARY_FILE).write_text(json.dumps(completed, indent=2) + "\n", encoding="utf-8")
    return completed
