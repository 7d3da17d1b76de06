"""Serving hook of the wine-script model (training.code.serve_hook): the booster's class probabilities, softened by
a temperature. The platform's handler calls predict(model, features) for every request, in Evaluate and Baseline
too, so the metrics, the golden payloads and the endpoints all see these probabilities; the label (the most probable
class) is unchanged, the probabilities are less sure of themselves."""

import numpy as np
import xgboost as xgb

TEMPERATURE = 1.5


def predict(model, features):
    """model: the xgboost.Booster train.py saved; features: the platform's feature matrix (NaN for missing)."""
    probabilities = np.asarray(model.predict(xgb.DMatrix(features, missing=np.nan)))
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / TEMPERATURE
    scaled = np.exp(logits - logits.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)
