"""The clinical team's own training program: an example of `training.code.kind: sklearn-script` (docs/TRAINING.md).

Script mode in SageMaker's scikit-learn 1.9-0 container (CPU instances). It receives what script mode gives any
program: hyperparameters as command-line arguments (``--max_iter 200 ...``; also SM_HP_<NAME>), the channels as
folders (SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION, SM_CHANNEL_TEST: CSV, label first, no header, the platform's
features, empty = missing; SM_CHANNEL_METADATA) and SM_MODEL_DIR, where it must write ``model.joblib``: a fitted
regressor over the channels' features that answers rows with missing values (HistGradientBoostingRegressor
handles them itself). The platform adds everything else the model folder needs, then evaluates, gates, baselines,
registers and serves it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_squared_error


def read(channel: str) -> tuple[np.ndarray, np.ndarray]:
    folder = Path(os.environ[f"SM_CHANNEL_{channel.upper()}"])
    table = pd.concat([pd.read_csv(path, header=None) for path in sorted(folder.glob("*.csv"))], ignore_index=True)
    values = table.to_numpy(dtype=np.float64)
    return values[:, 0], values[:, 1:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_iter", type=int, default=200)
    parser.add_argument("--learning_rate", type=float, default=0.05)
    parser.add_argument("--max_leaf_nodes", type=int, default=15)
    arguments, _ = parser.parse_known_args()  # script mode passes every hyperparameter; take what we use

    (y_train, x_train), (y_valid, x_valid) = read("train"), read("validation")
    model = HistGradientBoostingRegressor(max_iter=arguments.max_iter, learning_rate=arguments.learning_rate,
                                          max_leaf_nodes=arguments.max_leaf_nodes, l2_regularization=1.0,
                                          random_state=7)
    model.fit(x_train, y_train)
    rmse = mean_squared_error(y_valid, model.predict(x_valid)) ** 0.5
    print(f"validation rmse {rmse:.2f} after {model.n_iter_} iterations")
    joblib.dump(model, Path(os.environ["SM_MODEL_DIR"]) / "model.joblib")


if __name__ == "__main__":
    main()
