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
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file inside a container: make the code bundle's root (holding mlcore/, pipelines/) importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import xgboost as xgb

from mlsettings.problem_types import BINARY, problem_type
from mlsettings.schema import DataSchema
from pipelines.serving.inference import MODEL_FILE
from pipelines.steps.training_io import (  # noqa: F401  (re-exported: the step's public names)
    SUMMARY_FILE,
    Channels,
    add_path_arguments,
    build_fallback,
    complete_model_folder,
    copy_serving_code,
    fallback_probabilities,
    find_schema,
    fit_logistic_regression,
    read_channels,
    read_xgboost_csv,
)

CHECKPOINT_PREFIX = "xgboost-checkpoint-"
CHECKPOINTS_KEPT = 3


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
    summary = {**summary, "hyperparameters": hp.__dict__, "xgboost_version": xgb.__version__}
    return complete_model_folder(model_dir, channels, metadata_dir=metadata_dir, summary=summary,
                                 fallback_l2=hp.fallback_l2, output_data_dir=output_data_dir)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Hyperparameters, argparse.Namespace]:
    """Paths and hyperparameters; unknown arguments (SageMaker adds its own) are ignored."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_path_arguments(parser)
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
