"""Train step: XGBoost in SageMaker's XGBoost framework container (script mode), with the objective of the schema's
kind of model (mlsettings.problem_types: ``binary:logistic``, ``multi:softprob`` with ``num_class`` the schema's
classes, ``reg:squarederror``).

Script mode passes hyperparameters as command-line strings (``--num_round 200``; also ``SM_HP_*``), data
channels as folders (``SM_CHANNEL_<NAME>``, default ``/opt/ml/input/data/<name>``) and expects the model in
``SM_MODEL_DIR`` (``/opt/ml/model``). Channels:

* ``train``, ``validation`` (required) and ``test`` (optional): preprocess's CSVs — label first, no header;
* ``metadata``: preprocess's ``schema.json``, ``feature_names.json`` and ``lineage.json``.

Managed spot training can stop the job at any time. The script saves a checkpoint every
``checkpoint_interval`` rounds into ``/opt/ml/checkpoints`` (SageMaker syncs it to S3 and restores it on
restart) and resumes from the newest readable checkpoint, training only the remaining rounds, so a
resumed job ends with exactly ``num_round`` rounds.

The model folder receives: ``xgboost-model.json`` (loadable by the same-version container and locally),
``schema.json``, ``fallback.json`` (the kind's fallback model, scored by the inference Lambda in pure Python:
mlcore.fallback),
``feature_names.json``, ``lineage.json``, ``training_summary.json`` and ``code/`` (the inference handler
plus the standard-library modules of ``mlcore`` and ``mlsettings`` it imports) so the artifact is self-contained
for serving.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsettings.vocabulary import FALLBACK_FILE

if __package__ in (None, ""):
    # Run as a file inside a container: make the code bundle's root (holding mlcore/, pipelines/) importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd
import xgboost as xgb

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
from mlsettings.problem_types import BINARY, problem_type
from mlsettings.schema import DataSchema
from pipelines.datasets import csv_files_in
from pipelines.serving.inference import MODEL_FILE, SCHEMA_FILE

SUMMARY_FILE = "training_summary.json"

CHECKPOINT_PREFIX = "xgboost-checkpoint-"
CHECKPOINTS_KEPT = 3
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# The modules the serving handler needs; copied into <model>/code so the artifact serves on its own.
SERVING_MODULES = (("mlcore", "__init__.py"), ("mlcore", "features.py"), ("mlcore", "fallback.py"),
                   ("mlcore", "outputs.py"), ("mlsettings", "__init__.py"), ("mlsettings", "schema.py"),
                   ("mlsettings", "problem_types.py"))
"""The standard-library modules the inference handler imports, copied into the model's code/ folder."""


class SimulatedInterruptionError(RuntimeError):
    """Raised by ``interrupt_after_rounds`` to imitate a spot interruption (tests and drills only)."""


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    num_round: int = 100
    max_depth: int = 4
    eta: float = 0.1
    min_child_weight: float = 1.0
    subsample: float = 1.0
    colsample_bytree: float = 1.0
    reg_lambda: float = 1.0
    eval_metric: str = ""
    """Empty: the kind's metrics (mlsettings.problem_types)."""
    device: str = "cpu"
    tree_method: str = "hist"
    seed: int = 0
    checkpoint_interval: int = 10
    interrupt_after_rounds: int = 0
    fallback_l2: float = 1.0

    def booster_params(self, schema: DataSchema | None = None) -> dict[str, Any]:
        """XGBoost's parameters for the schema's kind of model (binary when no schema is given)."""
        kind = problem_type(schema.problem_type if schema is not None else BINARY)
        eval_metric = self.eval_metric or kind.eval_metric
        per_kind: dict[str, Any] = {"num_class": len(schema.label.classes)} if schema and schema.label.classes else {}
        return {
            "objective": kind.objective,
            **per_kind,
            "max_depth": self.max_depth,
            "eta": self.eta,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "eval_metric": [m.strip() for m in eval_metric.split(",") if m.strip()],
            "device": resolve_device(self.device),
            "tree_method": self.tree_method,
            "seed": self.seed,
        }


def resolve_device(requested: str) -> str:
    """``auto``: ``cuda`` where the container sees a GPU (the toolkit's ``SM_NUM_GPUS``) and this XGBoost build
    has CUDA kernels, else ``cpu`` — the pipeline's instance type is a run-time parameter, so the step cannot
    know at build time which one it gets."""
    if requested != "auto":
        return requested
    try:
        gpus = int(os.environ.get("SM_NUM_GPUS", "0"))
    except ValueError:
        gpus = 0
    return "cuda" if gpus > 0 and bool(xgb.build_info().get("USE_CUDA")) else "cpu"


HYPERPARAMETER_TYPES: dict[str, type] = {name: type(getattr(Hyperparameters(), name))
                                         for name in Hyperparameters.__dataclass_fields__}


# --------------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------------


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
# checkpoints
# --------------------------------------------------------------------------------------------------------


def checkpoint_path(directory: Path, rounds: int) -> Path:
    return directory / f"{CHECKPOINT_PREFIX}{rounds:06d}.json"


def latest_checkpoint(directory: Path) -> tuple[xgb.Booster, Path] | None:
    """The newest checkpoint that loads; a half-written file from the interruption is skipped."""
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob(f"{CHECKPOINT_PREFIX}*.json"), reverse=True):
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
        except xgb.core.XGBoostError:
            print(f"checkpoint {path.name} is unreadable; trying an older one")
            continue
        return booster, path
    return None


class CheckpointCallback(xgb.callback.TrainingCallback):
    """Saves every ``interval`` rounds (and at the end), atomically, keeping the newest few."""

    def __init__(self, directory: Path, *, interval: int, total_rounds: int, interrupt_after: int = 0) -> None:
        super().__init__()
        self.directory = directory
        self.interval = max(1, interval)
        self.total_rounds = total_rounds
        self.interrupt_after = interrupt_after

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: Any) -> bool:
        # The booster's own round count, not ``epoch``: after a resume epoch restarts from 0.
        rounds = model.num_boosted_rounds()
        if rounds % self.interval == 0 or rounds == self.total_rounds:
            self.save(model, rounds)
        if self.interrupt_after and rounds >= self.interrupt_after and rounds < self.total_rounds:
            raise SimulatedInterruptionError(f"simulated interruption after {rounds} rounds")
        return False

    def save(self, model: xgb.Booster, rounds: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = checkpoint_path(self.directory, rounds)
        # Same ".json" extension (xgboost picks the format from it); a name the checkpoint glob ignores.
        partial = self.directory / f".partial-{target.name}"
        model.save_model(str(partial))
        partial.replace(target)  # a reader (or a restart) never sees a half-written checkpoint
        for old in sorted(self.directory.glob(f"{CHECKPOINT_PREFIX}*.json"))[:-CHECKPOINTS_KEPT]:
            old.unlink(missing_ok=True)


def train_booster(hp: Hyperparameters, dtrain: xgb.DMatrix, dvalidation: xgb.DMatrix,
                  checkpoint_dir: Path, schema: DataSchema | None = None) -> tuple[xgb.Booster, dict[str, Any]]:
    """Train (or finish training) ``hp.num_round`` rounds, resuming from the newest checkpoint."""
    resumed = latest_checkpoint(checkpoint_dir)
    start_booster, resumed_from = (resumed[0], resumed[1].name) if resumed else (None, None)
    done = start_booster.num_boosted_rounds() if start_booster is not None else 0
    remaining = max(0, hp.num_round - done)
    print(f"training on {resolve_device(hp.device)}: {done} round(s) from checkpoint {resumed_from}, "
          f"{remaining} to go")
    evals_log: dict[str, Any] = {}
    callback = CheckpointCallback(checkpoint_dir, interval=hp.checkpoint_interval, total_rounds=hp.num_round,
                                  interrupt_after=hp.interrupt_after_rounds)
    if remaining == 0 and start_booster is not None:
        booster = start_booster
    else:
        booster = xgb.train(hp.booster_params(schema), dtrain, num_boost_round=remaining,
                            evals=[(dtrain, "train"), (dvalidation, "validation")], evals_result=evals_log,
                            xgb_model=start_booster, callbacks=[callback], verbose_eval=10)
    final_scores = {f"{split}-{metric}": values[-1] for split, metrics in evals_log.items()
                    for metric, values in metrics.items() if values}
    return booster, {"rounds": booster.num_boosted_rounds(), "resumed_from": resumed_from,
                     "rounds_before_resume": done, "final_scores": final_scores}


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
    code = model_dir / "code"
    code.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPOSITORY_ROOT / "pipelines" / "serving" / "inference.py", code / "inference.py")
    for package, module in SERVING_MODULES:
        (code / package).mkdir(exist_ok=True)
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
    completed = {**summary, "xgboost_version": xgb.__version__, "fallback_metrics": fallback["metrics"]}
    (model_dir / SUMMARY_FILE).write_text(json.dumps(completed, indent=2) + "\n", encoding="utf-8")
    copy_serving_code(model_dir)
    if output_data_dir is not None:
        output_data_dir.mkdir(parents=True, exist_ok=True)
        (output_data_dir / SUMMARY_FILE).write_text(json.dumps(completed, indent=2) + "\n", encoding="utf-8")
    return completed


def run(hp: Hyperparameters, *, train_dir: Path, validation_dir: Path, test_dir: Path | None, metadata_dir: Path,
        model_dir: Path, checkpoint_dir: Path, output_data_dir: Path | None = None,
        schema_dir: Path | None = None) -> dict[str, Any]:
    channels = read_channels(train_dir=train_dir, validation_dir=validation_dir, test_dir=test_dir,
                             metadata_dir=metadata_dir, schema_dir=schema_dir)
    train, validation = channels.train, channels.validation
    dtrain = xgb.DMatrix(train[1], label=train[0], missing=np.nan)
    dvalidation = xgb.DMatrix(validation[1], label=validation[0], missing=np.nan)
    booster, summary = train_booster(hp, dtrain, dvalidation, checkpoint_dir, channels.schema)

    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / MODEL_FILE))
    return complete_model_folder(model_dir, channels, metadata_dir=metadata_dir,
                                 summary={**summary, "hyperparameters": hp.__dict__}, fallback_l2=hp.fallback_l2,
                                 output_data_dir=output_data_dir)


def _env_path(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable, default))


def parse_args(argv: Sequence[str] | None = None) -> tuple[Hyperparameters, argparse.Namespace]:
    """Paths and hyperparameters; unknown arguments (SageMaker adds its own) are ignored."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
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
    defaults = Hyperparameters()
    for name, kind in HYPERPARAMETER_TYPES.items():
        # Hyperparameters always arrive as strings; SM_HP_<NAME> is the container's copy of them.
        parser.add_argument(f"--{name}", type=kind, default=kind(os.environ.get(f"SM_HP_{name.upper()}",
                                                                                getattr(defaults, name))))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring arguments {unknown}")
    hp = Hyperparameters(**{name: getattr(args, name) for name in HYPERPARAMETER_TYPES})
    if hp.num_round < 1:
        raise ValueError(f"num_round is {hp.num_round}; it must be at least 1")
    return hp, args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    hp, args = parse_args(argv)
    summary = run(hp, train_dir=args.train, validation_dir=args.validation,
                  test_dir=args.test if args.test.exists() else None, metadata_dir=args.metadata,
                  model_dir=args.model_dir, checkpoint_dir=args.checkpoint_dir,
                  output_data_dir=args.output_data_dir, schema_dir=args.schema_channel)
    print(f"trained {summary['rounds']} rounds; scores {summary['final_scores']}")
    return summary


if __name__ == "__main__":
    main()
