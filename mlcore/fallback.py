"""The fallback model of each kind of model, exported as JSON by training and scored in pure Python.

Per kind (``mlsettings.problem_types``, ``fallback``): binary a logistic regression (below); multiclass the
training set's class priors (every row gets the priors as its probabilities, the majority class as its label:
``ClassPriorsFallback``); regression the training target's median (``TargetMedianFallback``: the constant that
minimises the mean absolute error). ``load_fallback`` reads any of them by the document's ``kind``; each answers
``predict_row`` in its kind's output shape (``mlcore.outputs``). The rest of this docstring describes the binary
logistic regression.

When the endpoint fails, the inference Lambda answers from this model instead (the first rung of the
fallback ladder: fallback model → cached response → safe default). It must load in milliseconds in a
Lambda without numpy, so the document holds everything needed to score one raw row:

* ``schema`` and ``feature_names``: the raw input contract and the transformer's output names (checked on
  load, so a fallback can never silently score features in a different order than it was fitted on);
* ``impute``: the training mean of each feature, used for NaN (missing values and absent one-hot columns);
* ``mean`` / ``scale``: standardisation, ``z = (x - mean) / scale``;
* ``coef`` / ``intercept``: ``p = 1 / (1 + exp(-(intercept + coef · z)))``;
* ``metrics``: how good it was on the held-out test set, so callers can tell how much worse it is.

Fitting happens in the train step (numpy); this module only scores. Standard library only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcore.features import FeatureTransformer
from mlsettings.problem_types import problem_type
from mlsettings.schema import DataSchema, SchemaError

FALLBACK_FORMAT = "mlops-fallback/1"
LOGISTIC_REGRESSION, CLASS_PRIORS, TARGET_MEDIAN = "logistic_regression", "class_priors", "target_median"
"""The fallback kinds (``ProblemType.fallback``); a document without ``kind`` is a logistic regression."""


class FallbackModelError(ValueError):
    """A fallback document that cannot be used; the message names the key and what is wrong."""


def sigmoid(z: float) -> float:
    """The logistic function without overflow for large |z|."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    exp_z = math.exp(z)
    return exp_z / (1.0 + exp_z)


@dataclass(frozen=True, kw_only=True)
class FallbackModel:
    schema: DataSchema
    feature_names: tuple[str, ...]
    impute: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    metrics: Mapping[str, Any] = field(default_factory=dict)
    transformer: FeatureTransformer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "transformer", FeatureTransformer.from_schema(self.schema))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FallbackModel:
        if not isinstance(doc, Mapping):
            raise FallbackModelError(f"a fallback model is a JSON object, got {type(doc).__name__}")
        if doc.get("format") != FALLBACK_FORMAT:
            raise FallbackModelError(f"fallback.format is {doc.get('format')!r}; expected {FALLBACK_FORMAT!r}")
        try:
            schema = DataSchema.from_dict(doc.get("schema"))  # type: ignore[arg-type]
        except SchemaError as err:
            raise FallbackModelError(f"fallback.schema: {err}") from err
        expected_names = FeatureTransformer.from_schema(schema).output_names
        names = doc.get("feature_names")
        if not isinstance(names, list) or tuple(names) != expected_names:
            raise FallbackModelError(f"fallback.feature_names {names!r} do not match the schema's features "
                                     f"{list(expected_names)}")
        vectors = {key: _number_list(doc, key, len(names)) for key in ("impute", "mean", "scale", "coef")}
        if any(s <= 0.0 for s in vectors["scale"]):
            raise FallbackModelError("fallback.scale must hold positive numbers")
        intercept = doc.get("intercept")
        if not _is_number(intercept):
            raise FallbackModelError(f"fallback.intercept is {intercept!r}; expected a finite number")
        metrics = doc.get("metrics", {})
        if not isinstance(metrics, Mapping):
            raise FallbackModelError("fallback.metrics must be an object")
        return cls(schema=schema, feature_names=tuple(names), impute=vectors["impute"], mean=vectors["mean"],
                   scale=vectors["scale"], coef=vectors["coef"], intercept=float(intercept),  # type: ignore[arg-type]
                   metrics=dict(metrics))

    @classmethod
    def load(cls, path: str | Path) -> FallbackModel:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise FallbackModelError(f"{path}: cannot read the fallback model ({err})") from err
        return cls.from_dict(doc)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FALLBACK_FORMAT,
            "schema": self.schema.to_dict(),
            "feature_names": list(self.feature_names),
            "impute": list(self.impute),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "metrics": dict(self.metrics),
        }

    def predict_proba_features(self, features: Sequence[float]) -> float:
        """Positive-class probability for one already-transformed feature vector."""
        if len(features) != len(self.coef):
            raise FallbackModelError(f"expected {len(self.coef)} features {list(self.feature_names)}, "
                                     f"got {len(features)}")
        z = self.intercept
        for value, impute, mean, scale, coef in zip(features, self.impute, self.mean, self.scale, self.coef,
                                                    strict=True):
            x = impute if math.isnan(value) else value
            z += coef * ((x - mean) / scale)
        return sigmoid(z)

    def predict_proba_row(self, raw_row: Mapping[str, Any] | Sequence[Any]) -> float:
        """Positive-class probability for one raw row (as ``FeatureTransformer.transform_row`` accepts)."""
        return self.predict_proba_features(self.transformer.transform_row(raw_row))

    def predict_row(self, raw_row: Mapping[str, Any] | Sequence[Any]) -> float:
        """The binary answer (a score) for one raw row."""
        return self.predict_proba_row(raw_row)


def _parse_schema(doc: Mapping[str, Any]) -> DataSchema:
    try:
        return DataSchema.from_dict(doc.get("schema"))  # type: ignore[arg-type]
    except SchemaError as err:
        raise FallbackModelError(f"fallback.schema: {err}") from err


def _check_rows(schema: DataSchema, raw_row: Mapping[str, Any] | Sequence[Any]) -> None:
    """A constant fallback still refuses a row the endpoint would refuse (same transform, same errors)."""
    FeatureTransformer.from_schema(schema).transform_row(raw_row)


@dataclass(frozen=True, kw_only=True)
class ClassPriorsFallback:
    """Multiclass: the training set's class frequencies as every row's probabilities; label the majority class."""

    schema: DataSchema
    priors: tuple[float, ...]
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ClassPriorsFallback:
        schema = _parse_schema(doc)
        priors = _number_list(doc, "priors", len(schema.label.classes))
        if any(p < 0.0 for p in priors) or abs(math.fsum(priors) - 1.0) > 1e-9:
            raise FallbackModelError("fallback.priors must be non-negative and sum to 1")
        return cls(schema=schema, priors=priors, metrics=dict(doc.get("metrics") or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FALLBACK_FORMAT, "kind": CLASS_PRIORS, "schema": self.schema.to_dict(),
                "priors": list(self.priors), "metrics": dict(self.metrics)}

    def constant_answer(self) -> dict[str, Any]:
        """Every row's answer: the priors, and the majority class (the first on a tie) as the label."""
        top = max(range(len(self.priors)), key=self.priors.__getitem__)
        return {"label": self.schema.label.classes[top], "probabilities": list(self.priors)}

    def predict_row(self, raw_row: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
        _check_rows(self.schema, raw_row)
        return self.constant_answer()


@dataclass(frozen=True, kw_only=True)
class TargetMedianFallback:
    """Regression: the training target's median for every row."""

    schema: DataSchema
    median: float
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TargetMedianFallback:
        schema = _parse_schema(doc)
        median = doc.get("median")
        if not _is_number(median):
            raise FallbackModelError(f"fallback.median is {median!r}; expected a finite number")
        return cls(schema=schema, median=float(median), metrics=dict(doc.get("metrics") or {}))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FALLBACK_FORMAT, "kind": TARGET_MEDIAN, "schema": self.schema.to_dict(),
                "median": self.median, "metrics": dict(self.metrics)}

    def constant_answer(self) -> float:
        return self.median

    def predict_row(self, raw_row: Mapping[str, Any] | Sequence[Any]) -> float:
        _check_rows(self.schema, raw_row)
        return self.constant_answer()


AnyFallback = FallbackModel | ClassPriorsFallback | TargetMedianFallback
_READERS: dict[str, Any] = {LOGISTIC_REGRESSION: FallbackModel.from_dict, CLASS_PRIORS: ClassPriorsFallback.from_dict,
                            TARGET_MEDIAN: TargetMedianFallback.from_dict}


def fallback_from_dict(doc: Mapping[str, Any]) -> AnyFallback:
    """Any kind's fallback document; its kind must be the one its schema's kind of model uses."""
    if not isinstance(doc, Mapping):
        raise FallbackModelError(f"a fallback model is a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FALLBACK_FORMAT:
        raise FallbackModelError(f"fallback.format is {doc.get('format')!r}; expected {FALLBACK_FORMAT!r}")
    kind = doc.get("kind", LOGISTIC_REGRESSION)
    if kind not in _READERS:
        raise FallbackModelError(f"fallback.kind is {kind!r}; allowed: {sorted(_READERS)}")
    model: AnyFallback = _READERS[kind](doc)
    expected = problem_type(model.schema.problem_type).fallback
    if kind != expected:
        raise FallbackModelError(f"fallback.kind is {kind!r} but its schema's label is {model.schema.problem_type}, "
                                 f"whose fallback is {expected!r}")
    return model


def load_fallback(path: str | Path) -> AnyFallback:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise FallbackModelError(f"{path}: cannot read the fallback model ({err})") from err
    return fallback_from_dict(doc)


def _number_list(doc: Mapping[str, Any], key: str, length: int) -> tuple[float, ...]:
    values = doc.get(key)
    if not isinstance(values, list) or len(values) != length or not all(_is_number(v) for v in values):
        raise FallbackModelError(f"fallback.{key} must be a list of {length} finite numbers")
    return tuple(float(v) for v in values)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
