"""The wine team's own training program: an example of `training.code.kind: xgboost-script` (docs/TRAINING.md).

Script mode in SageMaker's XGBoost container. What this program receives is what SageMaker's script mode gives any
program (the platform adds nothing of its own):

* hyperparameters as command-line arguments (``--num_round 200 --device auto ...``) and SM_HP_<NAME>;
* the channels as folders: SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION, SM_CHANNEL_TEST (CSV, label first, no header,
  the platform's features) and SM_CHANNEL_METADATA (schema.json: the label's classes);
* SM_MODEL_DIR, where it must write ``xgboost-model.json``: an XGBoost Booster with the kind's objective
  (here multi:softprob) over the channels' features. The platform adds everything else the model folder needs.

It uses one package the image lacks, ``tabulate``, vendored as a wheel in ``wheels/`` and listed in
requirements.txt: the container's toolkit installs it with no index before this runs.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from tabulate import tabulate


def read(channel: str) -> tuple[np.ndarray, np.ndarray]:
    folder = Path(os.environ[f"SM_CHANNEL_{channel.upper()}"])
    table = pd.concat([pd.read_csv(path, header=None) for path in sorted(folder.glob("*.csv"))], ignore_index=True)
    values = table.to_numpy(dtype=np.float64)
    return values[:, 0], values[:, 1:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_round", type=int, default=100)
    parser.add_argument("--max_depth", type=int, default=4)
    parser.add_argument("--eta", type=float, default=0.2)
    arguments, _ = parser.parse_known_args()  # script mode passes every hyperparameter; take what we use

    schema = json.loads((Path(os.environ["SM_CHANNEL_METADATA"]) / "schema.json").read_text(encoding="utf-8"))
    classes = len(schema["label"]["classes"])
    (y_train, x_train), (y_valid, x_valid) = read("train"), read("validation")
    train = xgb.DMatrix(x_train, label=y_train, missing=np.nan)
    valid = xgb.DMatrix(x_valid, label=y_valid, missing=np.nan)
    params = {"objective": "multi:softprob", "num_class": classes, "max_depth": arguments.max_depth,
              "eta": arguments.eta, "eval_metric": "mlogloss", "seed": 7}
    history: dict[str, dict[str, list[float]]] = {}
    booster = xgb.train(params, train, num_boost_round=arguments.num_round, evals=[(valid, "validation")],
                        evals_result=history, verbose_eval=False)
    losses = history["validation"]["mlogloss"]
    print(tabulate([(round_, f"{losses[round_ - 1]:.4f}") for round_ in (1, len(losses) // 2, len(losses))],
                   headers=["round", "validation mlogloss"]))
    booster.save_model(str(Path(os.environ["SM_MODEL_DIR"]) / "xgboost-model.json"))


if __name__ == "__main__":
    main()
