"""The feature transform: raw rows in, model features out — the single implementation for training and serving.

The preprocess step, the endpoint's inference script and the inference Lambda's fallback model all call
``FeatureTransformer``. Keeping one implementation is what makes "training and serving see the same
features" a property we can test instead of a hope (training/serving skew is the classic silent failure).

Rules, taken from the schema alone so a new data set needs no code change:

* numeric feature → one float; numbers pass through, text is parsed, missing (``None``, NaN, empty or a
  missing marker such as ``"NA"``) → NaN, which XGBoost treats as "missing" natively;
* categorical feature → one-hot over the schema's category list, in schema order; an unknown or missing
  category → all zeros (the model saw no such column, so "none of the known ones" is the honest encoding);
* non-numeric text in a numeric feature → ``FeatureError`` naming the feature.

Standard library only: the inference Lambda imports this module without numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION
from mlsettings.schema import DataSchema, FeatureSpec, LabelSpec

# The same markers as mlcore.drift.baseline uses for "missing", so drift statistics and features agree.
MISSING_MARKERS = frozenset({"", "nan", "NaN", "NAN", "null", "None", "NA"})


class FeatureError(ValueError):
    """A raw value that cannot be turned into a feature; the message names the feature and the value."""


def is_missing(value: Any) -> bool:
    """True for ``None``, NaN and the text markers that mean "no value"."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip() in MISSING_MARKERS


def parse_number(value: Any, *, feature: str) -> float:
    """One raw numeric value as a float (NaN when missing); ``FeatureError`` for text that is no number."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        # True/False are ints in Python, but in a numeric column they mean the data is wrong.
        raise FeatureError(f"feature {feature!r}: {value!r} is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text in MISSING_MARKERS:
            return math.nan
        try:
            return float(text)
        except ValueError:
            raise FeatureError(f"feature {feature!r}: {value!r} is not a number") from None
    raise FeatureError(f"feature {feature!r}: {type(value).__name__} value {value!r} is not a number")


def category_text(value: Any) -> str | None:
    """A raw categorical value as its text (``None`` when missing); numbers keep their plain spelling."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def encode_label(value: Any, label: LabelSpec) -> float:
    """The label as the model trains on it, by the label's kind (``label.problem_type``): binary 1 for the positive
    label and 0 for the negative one; multiclass the class's position in ``label.classes``; regression the number,
    which must lie in the schema's range. ``FeatureError`` for anything else.

    Classes compare as text, with numeric spelling tolerated (``"1.0"`` is the class ``1``), because CSV readers and
    JSON producers disagree on how to write integers.
    """
    return _LABEL_ENCODERS[label.problem_type](value, label)


def _encode_binary(value: Any, label: LabelSpec) -> int:
    for encoded, expected in ((1, label.positive), (0, label.negative)):
        if _same_label(value, expected):
            return encoded
    raise FeatureError(f"label {label.name!r}: {value!r} is neither the positive label {label.positive!r} "
                       f"nor the negative label {label.negative!r}")


def _encode_class(value: Any, label: LabelSpec) -> int:
    for index, expected in enumerate(label.classes):
        if _same_label(value, expected):
            return index
    raise FeatureError(f"label {label.name!r}: {value!r} is not one of the classes {list(label.classes)}")


def _encode_value(value: Any, label: LabelSpec) -> float:
    if is_missing(value):
        raise FeatureError(f"label {label.name!r}: missing")
    number = parse_number(value, feature=f"label {label.name}")
    if not math.isfinite(number) or (label.min is not None and number < label.min) or \
            (label.max is not None and number > label.max):
        raise FeatureError(f"label {label.name!r}: {value!r} is outside the schema's range [{label.min}, {label.max}]")
    return number


_LABEL_ENCODERS: dict[str, Callable[[Any, LabelSpec], float]] = {
    BINARY: _encode_binary, MULTICLASS: _encode_class, REGRESSION: _encode_value}


def _same_label(value: Any, expected: int | str) -> bool:
    if value is None or isinstance(value, bool):
        return False
    text = str(value).strip()
    if text == str(expected):
        return True
    if isinstance(expected, int):
        try:
            return float(text) == float(expected)
        except ValueError:
            return False
    return False


Encoder = Callable[[Any], list[float]]


def _numeric_encoder(spec: FeatureSpec) -> Encoder:
    name = spec.name

    def encode(value: Any) -> list[float]:
        return [parse_number(value, feature=name)]

    return encode


def _categorical_encoder(spec: FeatureSpec) -> Encoder:
    positions = {category: index for index, category in enumerate(spec.categories)}
    width = len(spec.categories)

    def encode(value: Any) -> list[float]:
        encoded = [0.0] * width
        text = category_text(value)
        position = None if text is None else positions.get(text)
        if position is not None:
            encoded[position] = 1.0
        return encoded

    return encode


@dataclass(frozen=True)
class FeatureTransformer:
    """Turns raw rows (by name or in schema order) into the model's float feature vectors."""

    schema: DataSchema
    output_names: tuple[str, ...]
    _encoders: tuple[tuple[str, Encoder], ...]

    @classmethod
    def from_schema(cls, schema: DataSchema) -> FeatureTransformer:
        names: list[str] = []
        encoders: list[tuple[str, Encoder]] = []
        for spec in schema.features:
            if spec.is_numeric:
                names.append(spec.name)
                encoders.append((spec.name, _numeric_encoder(spec)))
            else:
                names.extend(f"{spec.name}={category}" for category in spec.categories)
                encoders.append((spec.name, _categorical_encoder(spec)))
        return cls(schema=schema, output_names=tuple(names), _encoders=tuple(encoders))

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.schema.feature_names

    def transform_row(self, raw: Mapping[str, Any] | Sequence[Any]) -> list[float]:
        """One raw row → its feature vector.

        A mapping is read by feature name (absent keys are missing values; other keys are ignored); a
        sequence must hold exactly one value per schema feature, in schema order.
        """
        if isinstance(raw, Mapping):
            values: Sequence[Any] = [raw.get(name) for name, _ in self._encoders]
        elif isinstance(raw, Sequence) and not isinstance(raw, str | bytes):
            if len(raw) != len(self._encoders):
                raise FeatureError(f"a row has {len(raw)} values; schema {self.schema.name!r} has "
                                   f"{len(self._encoders)} features {list(self.input_names)}")
            values = raw
        else:
            raise FeatureError(f"a row must be an object or a list, got {type(raw).__name__}")
        features: list[float] = []
        for (_, encode), value in zip(self._encoders, values, strict=True):
            features.extend(encode(value))
        return features

    def transform_rows(self, rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> list[list[float]]:
        """Many raw rows; the first bad row raises ``FeatureError`` with its position in the message."""
        transformed: list[list[float]] = []
        for position, row in enumerate(rows):
            try:
                transformed.append(self.transform_row(row))
            except FeatureError as err:
                raise FeatureError(f"row {position}: {err}") from None
        return transformed
