"""Train step of a model whose team writes the training program (``training.code.kind: xgboost-script``).

SageMaker's XGBoost container runs this module in script mode (``sagemaker_program``) from the code bundle, which
holds the platform's packages and, at its top, the team's folder (``training.code.source_dir``). Before this runs,
the container's toolkit installed the team's ``requirements.txt`` from its vendored ``wheels/`` with no index
(the Train step's PIP_NO_INDEX and PIP_FIND_LINKS). This module then:

1. runs the team's program (``--user_entry_point``, default ``train.py``) as a child process with exactly what
   script mode gives a program: the same command-line hyperparameters, the same SM_* environment, the channels
   (``train``, ``validation``, ``test``: CSV, label first, no header, the platform's features; ``metadata``:
   ``schema.json``, ``feature_names.json``, ``lineage.json``), ``SM_MODEL_DIR`` and ``/opt/ml/checkpoints``;
2. checks what it wrote: ``xgboost-model.json`` in SM_MODEL_DIR, an XGBoost Booster with the model's kind's
   objective over exactly the platform's features, and no file the platform writes;
3. completes the model folder as the platform's own program does (schema, fallback model, feature names,
   lineage, training summary, serving code), so evaluation, the quality gate, the drift baseline, registration
   and serving run for the team's model exactly as for the platform's.

Each refusal is one line on stderr and in ``/opt/ml/output/failure`` (SageMaker's FailureReason), exit 1.
docs/TRAINING.md states this contract for model teams.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import xgboost as xgb

from mlsettings.problem_types import problem_type
from mlsettings.training_code import DEFAULT_ENTRY_POINT, ENTRY_POINT_HYPERPARAMETER
from mlsettings.vocabulary import FALLBACK_FILE
from pipelines.serving.inference import MODEL_FILE, SCHEMA_FILE
from pipelines.steps import train as platform_train

FAILURE_FILE = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")) / "failure"
PLATFORM_FILES = (SCHEMA_FILE, FALLBACK_FILE, "feature_names.json", "lineage.json", platform_train.SUMMARY_FILE, "code")


class ContractError(RuntimeError):
    """The team's program broke the training contract (docs/TRAINING.md)."""


def _split_entry_point(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The team's program named by ``--user_entry_point`` and the arguments it gets (every other one)."""
    entry, rest, items = DEFAULT_ENTRY_POINT, [], list(argv)
    flag = f"--{ENTRY_POINT_HYPERPARAMETER}"
    while items:
        item = items.pop(0)
        if item == flag and items:
            entry = items.pop(0)
        elif item.startswith(f"{flag}="):
            entry = item.split("=", 1)[1]
        else:
            rest.append(item)
    return entry, rest


def run_program(entry_point: Path, arguments: Sequence[str], *, env: dict[str, str] | None = None) -> None:
    """The team's program as script mode runs one: ``python <entry> <hyperparameters>`` in its folder."""
    if not entry_point.is_file():
        raise ContractError(f"{entry_point.name} is not in the code bundle ({entry_point.parent}); "
                            "training.code.entry_point names it")
    completed = subprocess.run([sys.executable, str(entry_point), *arguments], cwd=entry_point.parent,
                               env=env, check=False)
    if completed.returncode != 0:
        raise ContractError(f"{entry_point.name} exited with status {completed.returncode} (its log above says why)")


def check_model(model_dir: Path, channels: platform_train.Channels, entry: str) -> dict[str, Any]:
    """What the team's program wrote: a Booster the platform can evaluate and serve, and nothing of the platform's."""
    written = sorted(name for name in PLATFORM_FILES if (model_dir / name).exists())
    if written:
        raise ContractError(f"{entry} wrote {written} into the model folder; those are the platform's (it writes "
                            f"them after your program): write {MODEL_FILE} only")
    path = model_dir / MODEL_FILE
    if not path.is_file():
        raise ContractError(f"{entry} wrote no model: {path} is missing (save an XGBoost Booster there with "
                            f"booster.save_model('{MODEL_FILE}'); docs/TRAINING.md)")
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as err:
        raise ContractError(f"{entry} wrote {MODEL_FILE}, which XGBoost {xgb.__version__} cannot load: "
                            f"{str(err).splitlines()[0]}") from None
    if booster.num_features() != channels.feature_count:
        raise ContractError(f"{entry}'s model takes {booster.num_features()} features; the platform's data has "
                            f"{channels.feature_count} (train on the channels as given)")
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    expected = problem_type(channels.schema.problem_type).objective
    if objective != expected:
        raise ContractError(f"{entry}'s model has objective {objective!r}; a {channels.schema.problem_type} model "
                            f"needs {expected!r} (the platform's evaluation and serving read its outputs)")
    return {"rounds": booster.num_boosted_rounds(), "objective": objective}


def main(argv: Sequence[str] | None = None, *, code_dir: Path | None = None,
         env: dict[str, str] | None = None) -> dict[str, Any]:
    """``code_dir``: where the team's folder is (default: the working folder, which in the container is the code
    folder: the toolkit starts the program there, sagemaker_containers._process.create's cwd=_env.code_dir)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    entry, passed = _split_entry_point(arguments)
    hp, args = platform_train.parse_args(passed)
    channels = platform_train.read_channels(
        train_dir=args.train, validation_dir=args.validation, test_dir=args.test if args.test.exists() else None,
        metadata_dir=args.metadata, schema_dir=args.schema_channel)
    args.model_dir.mkdir(parents=True, exist_ok=True)
    run_program((code_dir or Path.cwd()) / entry, passed, env=env)
    found = check_model(args.model_dir, channels, entry)
    summary = {**found, "trained_by": entry, "hyperparameters": hp.__dict__}
    return platform_train.complete_model_folder(args.model_dir, channels, metadata_dir=args.metadata,
                                                summary=summary, fallback_l2=hp.fallback_l2,
                                                output_data_dir=args.output_data_dir)


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
    print(f"{summary['trained_by']} trained {summary['rounds']} rounds; the platform completed the model folder")
    return 0


if __name__ == "__main__":
    sys.exit(entry())
