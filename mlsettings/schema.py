"""The data schema: feature names, types, allowed ranges, nullability and the label.

A schema is a small JSON document kept beside the config (``pipelines/schemas/*.json``) and stored with
every model package, so that validation, feature transforms, drift baselines and request checks all read
the same description of the data. Standard library only: the inference Lambda imports it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION

FeatureType = Literal["numeric", "categorical"]
_FEATURE_KEYS = frozenset({"name", "type", "min", "max", "nullable", "max_missing_rate", "categories"})
_LABEL_FORMS = {
    # the label's keys besides "name", per kind of model (mlsettings.problem_types): a binary label names its
    # positive and negative values, a multiclass label its classes (in the order the model's outputs use), a
    # regression label the range its values lie in.
    BINARY: frozenset({"positive", "negative"}),
    MULTICLASS: frozenset({"classes"}),
    REGRESSION: frozenset({"min", "max"}),
}
_LABEL_KEYS = frozenset({"name"}).union(*_LABEL_FORMS.values())
_SCHEMA_KEYS = frozenset({"name", "version", "label", "features"})


class SchemaError(ValueError):
    """A schema document that cannot be used; the message names the key and what is allowed."""


@dataclass(frozen=True, kw_only=True)
class FeatureSpec:
    name: str
    type: FeatureType
    nullable: bool = False
    max_missing_rate: float = 0.0
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] = ()

    @property
    def is_numeric(self) -> bool:
        return self.type == "numeric"


@dataclass(frozen=True, kw_only=True)
class LabelSpec:
    """The target column. Its form tells the kind of model (``problem_type``): ``positive``/``negative`` (or
    neither: 1 and 0) for binary, ``classes`` for multiclass, ``min``/``max`` for regression."""

    name: str
    positive: int | str = 1
    negative: int | str = 0
    classes: tuple[int | str, ...] = ()
    """Multiclass: the classes, in the order of the model's probability vector (class index = position)."""
    min: float | None = None
    max: float | None = None
    """Regression: the range the target's values lie in (served values outside it fail the golden check)."""
    problem_type: str = BINARY
    """Derived from the form when left at its default: classes make it multiclass, a range regression."""

    def __post_init__(self) -> None:
        if self.problem_type == BINARY and self.classes:
            object.__setattr__(self, "problem_type", MULTICLASS)
        elif self.problem_type == BINARY and (self.min is not None or self.max is not None):
            object.__setattr__(self, "problem_type", REGRESSION)

    def to_dict(self) -> dict[str, Any]:
        if self.problem_type == MULTICLASS:
            return {"name": self.name, "classes": list(self.classes)}
        if self.problem_type == REGRESSION:
            return {"name": self.name, "min": self.min, "max": self.max}
        return {"name": self.name, "positive": self.positive, "negative": self.negative}

    @classmethod
    def from_dict(cls, doc: Any) -> LabelSpec:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("name"), str) or not doc.get("name"):
            raise SchemaError("schema.label must be an object with a non-empty string 'name'")
        _no_unknown_keys(doc, _LABEL_KEYS, "schema.label")
        given = set(doc) - {"name"}
        kinds = [kind for kind, keys in _LABEL_FORMS.items() if given & keys]
        if len(kinds) > 1:
            raise SchemaError(f"schema.label mixes the keys of several kinds of label ({sorted(given)}); allowed: "
                              + "; ".join(f"{kind}: {sorted(keys)}" for kind, keys in _LABEL_FORMS.items()))
        kind = kinds[0] if kinds else BINARY
        name = doc["name"]
        if kind == MULTICLASS:
            return cls(name=name, classes=_parse_classes(doc.get("classes")), problem_type=kind)
        if kind == REGRESSION:
            low: Any = doc.get("min")
            high: Any = doc.get("max")
            if not _is_number(low) or not _is_number(high) or float(low) >= float(high):
                raise SchemaError(f"schema.label min {low!r} and max {high!r}: a regression label needs both, "
                                  "finite numbers with min < max (the range served values must lie in)")
            return cls(name=name, min=float(low), max=float(high), problem_type=kind)
        positive, negative = doc.get("positive", 1), doc.get("negative", 0)
        for key, value in (("positive", positive), ("negative", negative)):
            if not _is_class_value(value):
                raise SchemaError(f"schema.label.{key} is {value!r}; allowed: an integer or a non-empty string")
        if str(positive) == str(negative):
            raise SchemaError(f"schema.label.positive and .negative are both {positive!r}")
        return cls(name=name, positive=positive, negative=negative, problem_type=kind)


@dataclass(frozen=True, kw_only=True)
class DataSchema:
    name: str
    label: LabelSpec
    features: tuple[FeatureSpec, ...]
    version: int = 1
    _index: Mapping[str, FeatureSpec] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f.name: f for f in self.features})

    @property
    def problem_type(self) -> str:
        """The kind of model this schema's label describes (binary, multiclass or regression)."""
        return self.label.problem_type

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> FeatureSpec:
        try:
            return self._index[name]
        except KeyError:
            raise SchemaError(f"unknown feature {name!r}; the schema has {list(self._index)}") from None

    def to_dict(self) -> dict[str, Any]:
        features: list[dict[str, Any]] = []
        for f in self.features:
            item: dict[str, Any] = {"name": f.name, "type": f.type, "nullable": f.nullable,
                                    "max_missing_rate": f.max_missing_rate}
            if f.type == "numeric":
                item["min"] = f.min
                item["max"] = f.max
            else:
                item["categories"] = list(f.categories)
            features.append(item)
        return {
            "name": self.name,
            "version": self.version,
            "label": self.label.to_dict(),
            "features": features,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DataSchema:
        if not isinstance(doc, Mapping):
            raise SchemaError(f"a schema is a JSON object, got {type(doc).__name__}")
        _no_unknown_keys(doc, _SCHEMA_KEYS, "schema")
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise SchemaError("schema.name must be a non-empty string")
        label = LabelSpec.from_dict(doc.get("label"))
        raw_features = doc.get("features")
        if not isinstance(raw_features, Sequence) or isinstance(raw_features, str) or not raw_features:
            raise SchemaError("schema.features must be a non-empty list")
        features = tuple(_parse_feature(i, f) for i, f in enumerate(raw_features))
        names = [f.name for f in features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaError(f"schema.features has duplicate names: {duplicates}")
        if label.name in names:
            raise SchemaError(f"schema.label.name {label.name!r} is also a feature name")
        version = doc.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SchemaError(f"schema.version must be a positive integer, got {version!r}")
        return cls(name=name, label=label, features=features, version=version)

    @classmethod
    def load(cls, path: str | Path) -> DataSchema:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise SchemaError(f"{path}: not valid JSON ({err})") from err
        return cls.from_dict(doc)


def _no_unknown_keys(doc: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise SchemaError(f"{where} has unknown keys {unknown}; allowed: {sorted(allowed)}")


def _parse_feature(position: int, doc: Any) -> FeatureSpec:
    where = f"schema.features[{position}]"
    if not isinstance(doc, Mapping):
        raise SchemaError(f"{where} must be an object")
    _no_unknown_keys(doc, _FEATURE_KEYS, where)
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}.name must be a non-empty string")
    where = f"schema.features[{name!r}]"
    ftype = doc.get("type")
    if ftype not in ("numeric", "categorical"):
        raise SchemaError(f"{where}.type is {ftype!r}; allowed: 'numeric', 'categorical'")
    nullable = doc.get("nullable", False)
    if not isinstance(nullable, bool):
        raise SchemaError(f"{where}.nullable must be true or false, got {nullable!r}")
    max_missing = doc.get("max_missing_rate", 0.0 if not nullable else 1.0)
    if not _is_number(max_missing) or not 0.0 <= float(max_missing) <= 1.0:
        raise SchemaError(f"{where}.max_missing_rate is {max_missing!r}; allowed: a number in [0, 1]")
    if ftype == "numeric":
        if "categories" in doc:
            raise SchemaError(f"{where}.categories is only allowed for categorical features")
        low, high = doc.get("min"), doc.get("max")
        for key, value in (("min", low), ("max", high)):
            if value is not None and not _is_number(value):
                raise SchemaError(f"{where}.{key} is {value!r}; allowed: a finite number or null")
        if low is not None and high is not None and float(low) > float(high):
            raise SchemaError(f"{where}: min {low} is greater than max {high}")
        return FeatureSpec(name=name, type="numeric", nullable=nullable, max_missing_rate=float(max_missing),
                           min=None if low is None else float(low), max=None if high is None else float(high))
    if "min" in doc or "max" in doc:
        raise SchemaError(f"{where}: min/max are only allowed for numeric features")
    categories = doc.get("categories")
    if (not isinstance(categories, Sequence) or isinstance(categories, str) or not categories
            or not all(isinstance(c, str) and c for c in categories)):
        raise SchemaError(f"{where}.categories must be a non-empty list of non-empty strings")
    if len(set(categories)) != len(categories):
        raise SchemaError(f"{where}.categories has duplicates")
    return FeatureSpec(name=name, type="categorical", nullable=nullable, max_missing_rate=float(max_missing),
                       categories=tuple(categories))


def _is_class_value(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and bool(value))


def _parse_classes(classes: Any) -> tuple[int | str, ...]:
    if (not isinstance(classes, Sequence) or isinstance(classes, str) or len(classes) < 3
            or not all(_is_class_value(c) for c in classes)):
        raise SchemaError(f"schema.label.classes is {classes!r}; allowed: a list of at least 3 classes, each an "
                          "integer or a non-empty string (two classes are a binary label: positive/negative)")
    texts = [str(c) for c in classes]
    if len(set(texts)) != len(texts):
        raise SchemaError(f"schema.label.classes has duplicates: {sorted({t for t in texts if texts.count(t) > 1})}")
    return tuple(classes)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
