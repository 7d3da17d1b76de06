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

FeatureType = Literal["numeric", "categorical"]
_FEATURE_KEYS = frozenset({"name", "type", "min", "max", "nullable", "max_missing_rate", "categories"})
_LABEL_KEYS = frozenset({"name", "positive", "negative"})
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
    name: str
    positive: int | str = 1
    negative: int | str = 0


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
            "label": {"name": self.label.name, "positive": self.label.positive,
                      "negative": self.label.negative},
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
        label_doc = doc.get("label")
        if not isinstance(label_doc, Mapping) or not isinstance(label_doc.get("name"), str):
            raise SchemaError("schema.label must be an object with a string 'name'")
        _no_unknown_keys(label_doc, _LABEL_KEYS, "schema.label")
        label = LabelSpec(name=label_doc["name"], positive=label_doc.get("positive", 1),
                          negative=label_doc.get("negative", 0))
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
