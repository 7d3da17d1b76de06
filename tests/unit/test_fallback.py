"""The pure-Python fallback scorer equals the numpy/scikit-learn reference on the test set (1e-9)."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from mlcore.fallback import FALLBACK_FORMAT, FallbackModel, FallbackModelError, sigmoid
from mlcore.features import FeatureTransformer
from mlsettings.schema import DataSchema
from pipelines.steps.train import fallback_probabilities, fit_logistic_regression

SCHEMA_PATH = "pipelines/schemas/breast_cancer.json"


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test = order[:450], order[450:]
    schema = DataSchema.load(SCHEMA_PATH)
    fitted = fit_logistic_regression(x[train], y[train], l2=1.0)
    doc = {"format": FALLBACK_FORMAT, "schema": schema.to_dict(),
           "feature_names": list(FeatureTransformer.from_schema(schema).output_names), **fitted, "metrics": {}}
    return {"x": x, "y": y, "train": train, "test": test, "schema": schema, "doc": doc}


def test_pure_python_scores_equal_the_fitted_numpy_reference(data: dict[str, Any]) -> None:
    model = FallbackModel.from_dict(data["doc"])
    test_x = data["x"][data["test"]]
    pure = np.array([model.predict_proba_features(row.tolist()) for row in test_x])
    np.testing.assert_allclose(pure, fallback_probabilities(data["doc"], test_x), rtol=0, atol=1e-9)


def test_newton_fit_matches_scikit_learn_and_the_scorer_matches_predict_proba(data: dict[str, Any]) -> None:
    doc = data["doc"]
    x_train = data["x"][data["train"]]
    standardised = (x_train - np.asarray(doc["mean"])) / np.asarray(doc["scale"])
    reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(standardised, data["y"][data["train"]])
    np.testing.assert_allclose(doc["coef"], reference.coef_[0], atol=1e-4)
    assert doc["intercept"] == pytest.approx(reference.intercept_[0], abs=1e-4)

    # The scorer with scikit-learn's own coefficients reproduces predict_proba on the raw test rows.
    sklearn_doc = {**doc, "coef": reference.coef_[0].tolist(), "intercept": float(reference.intercept_[0])}
    model = FallbackModel.from_dict(sklearn_doc)
    test_x = data["x"][data["test"]]
    expected = reference.predict_proba((test_x - np.asarray(doc["mean"])) / np.asarray(doc["scale"]))[:, 1]
    raw_rows = [dict(zip(data["schema"].feature_names, row.tolist(), strict=True)) for row in test_x]
    pure = np.array([model.predict_proba_row(row) for row in raw_rows])
    np.testing.assert_allclose(pure, expected, rtol=0, atol=1e-9)


def test_missing_values_are_imputed_with_the_training_mean(data: dict[str, Any]) -> None:
    model = FallbackModel.from_dict(data["doc"])
    all_missing = model.predict_proba_row([""] * len(data["schema"].features))
    assert all_missing == pytest.approx(model.predict_proba_features(list(model.impute)), abs=1e-15)


def test_round_trip_through_to_dict(data: dict[str, Any]) -> None:
    model = FallbackModel.from_dict(data["doc"])
    assert FallbackModel.from_dict(model.to_dict()) == model


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(format="other/1"), "format"),
    (lambda d: d.update(feature_names=d["feature_names"][::-1]), "feature_names"),
    (lambda d: d.update(coef=d["coef"][:-1]), "coef"),
    (lambda d: d["scale"].__setitem__(0, 0.0), "scale"),
    (lambda d: d.update(intercept="x"), "intercept"),
])
def test_invalid_documents_are_rejected_naming_the_key(data: dict[str, Any], mutate: Any, message: str) -> None:
    doc = copy.deepcopy(data["doc"])
    mutate(doc)
    with pytest.raises(FallbackModelError, match=message):
        FallbackModel.from_dict(doc)


def test_sigmoid_is_stable_at_the_extremes() -> None:
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0
    assert sigmoid(0.0) == 0.5 and math.isclose(sigmoid(-2.0), 1 - sigmoid(2.0))
