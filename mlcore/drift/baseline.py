"""The drift baseline: fixed bins and summary statistics of the training data, stored as one JSON document.

The baseline is computed once, by the training pipeline's baseline step (and ``mlops baseline``), and
registered with the model package. At run time the drift Lambda compares captured traffic with it alone:
no raw training data leaves the training account, and the comparison costs O(bins) memory per feature.

Why the bins look the way they do:

* **Quantile edges** (deciles by default) give every bin about the same baseline share, so each bin
  carries information and none has a near-zero baseline share that would make PSI explode.
* **Open-ended first and last bins** (``(-inf, e1]`` and ``(e_k, +inf)``): an extreme outlier lands in an
  end bin and moves its share by 1/n, exactly like any other value. A few outliers therefore barely move
  PSI/JS/KS; they are reported by the separate out-of-range rate instead.
* Bins are **right-closed** (``(e_{i-1}, e_i]``): for zero-inflated features (many exact zeros, which
  collapse several quantiles onto the edge 0) the zeros stay separated from the positive values.

numpy only: the drift Lambda imports this module and must stay far below the Lambda package limit.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt

from mlsettings.schema import DataSchema, FeatureSpec, SchemaError

BASELINE_FORMAT = "mlops-drift-baseline/1"
DEFAULT_BINS = 10
MIN_BINS, MAX_BINS = 2, 100

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class BaselineError(ValueError):
    """A baseline document that cannot be used; the message names the key and what is wrong."""


# --------------------------------------------------------------------------------------------------------
# value conversion shared with mlcore.drift.statistics (one implementation of "what counts as missing")
# --------------------------------------------------------------------------------------------------------

_MISSING_STRINGS = frozenset({"", "nan", "NaN", "NAN", "null", "None", "NA"})


def as_float_array(values: npt.ArrayLike | Sequence[Any], *, name: str) -> FloatArray:
    """Convert one numeric column to float64 with NaN for missing values.

    Missing: ``None``, NaN, and the strings in ``_MISSING_STRINGS``. Anything else that is not a number
    raises ``ValueError`` naming the feature; callers validate (or count) bad values before this point.
    """
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        pass
    # Second try, still vectorised: spell every missing marker as "nan" (capture rows carry "" for missing).
    cleaned = ["nan" if value is None or (isinstance(value, str) and value.strip() in _MISSING_STRINGS)
               else value for value in values]  # type: ignore[union-attr]
    try:
        return np.asarray(cleaned, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        pass
    converted = np.empty(len(values), dtype=np.float64)  # type: ignore[arg-type]
    for position, value in enumerate(values):  # type: ignore[arg-type]
        if value is None or (isinstance(value, str) and value.strip() in _MISSING_STRINGS):
            converted[position] = np.nan
            continue
        try:
            converted[position] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"feature {name!r}: value {value!r} at position {position} is not a number")\
                from None
    return converted


def is_missing_category(value: Any) -> bool:
    """True for the values a categorical column uses to mean "missing"."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip() in _MISSING_STRINGS


def count_categories(values: Iterable[Any]) -> tuple[Counter[str], int]:
    """Category counts (values as strings) and the number of missing values in one categorical column."""
    counts: Counter[str] = Counter()
    missing = 0
    values = values if isinstance(values, Sequence) else list(values)
    try:
        # Count in C first, then judge each *distinct* value once: the drift Lambda counts millions of
        # values per window, of only a handful of categories. Only for strings (capture fields are):
        # equal non-strings may print differently (1 == 1.0 == True), which value-by-value keeps apart.
        distinct: Counter[Any] = Counter(values)
        fast = all(type(value) is str for value in distinct)
    except TypeError:  # an unhashable value
        fast = False
    if not fast:
        for value in values:
            if is_missing_category(value):
                missing += 1
            else:
                counts[str(value)] += 1
        return counts, missing
    for value, n in distinct.items():
        if is_missing_category(value):
            missing += n
        else:
            counts[value] += n
    return counts, missing


COUNTING_EDGES = 16
"""Up to this many edges a bin's count is a difference of "at most this edge" counts (one vectorised comparison
per edge, ~4x faster than a binary search per value for the default 9 edges); beyond it, ``searchsorted``."""


def bin_counts(edges: FloatArray, values: FloatArray) -> IntArray:
    """Counts per right-closed bin ``(e_{i-1}, e_i]`` with open ends; ``values`` must not contain NaN."""
    if edges.size <= COUNTING_EDGES:
        at_most = np.fromiter((np.count_nonzero(values <= edge) for edge in edges), dtype=np.int64,
                              count=edges.size)
        return np.diff(np.concatenate(([0], at_most, [values.size]))).astype(np.int64)
    index = np.searchsorted(edges, values, side="left")
    return np.bincount(index, minlength=len(edges) + 1).astype(np.int64)


def out_of_range_mask(spec: FeatureSpec, values: FloatArray) -> npt.NDArray[np.bool_]:
    """Values outside the schema's inclusive [min, max]; infinities are always out of range."""
    mask = ~np.isfinite(values)
    if spec.min is not None:
        mask |= values < spec.min
    if spec.max is not None:
        mask |= values > spec.max
    return mask


def has_range(spec: FeatureSpec) -> bool:
    return spec.min is not None or spec.max is not None


# --------------------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------------------


def quantile_edges(values: FloatArray, bins: int) -> FloatArray:
    """Interior bin edges at the baseline's quantiles, de-duplicated (ties collapse bins).

    A constant feature would collapse to one edge ``[c]``, leaving a shift *below* c undetectable, so it
    gets the two edges ``[c⁻, c]`` (bins: below c, exactly c, above c).
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.empty(0, dtype=np.float64)
    probabilities = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = np.unique(np.quantile(finite, probabilities))
    if edges.size == 1:
        edges = np.array([np.nextafter(edges[0], -np.inf), edges[0]], dtype=np.float64)
    return edges.astype(np.float64)


def _numeric_distribution(values: FloatArray, bins: int) -> dict[str, Any]:
    """Edges, counts and summary statistics of the non-missing values of one numeric column."""
    present = values[~np.isnan(values)]
    edges = quantile_edges(present, bins)
    counts = bin_counts(edges, present) if present.size else np.zeros(1, dtype=np.int64)
    finite = present[np.isfinite(present)]
    doc: dict[str, Any] = {
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "count": int(present.size),
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "mean": float(finite.mean()) if finite.size else None,
        "std": float(finite.std()) if finite.size else None,
    }
    return doc


def normalised_importances(scores: Mapping[str, float], output_names: Sequence[str],
                           feature_names: Sequence[str]) -> dict[str, float]:
    """Per raw feature, its share of the model's total split gain.

    ``scores``: XGBoost's ``get_score(importance_type="total_gain")``, keyed ``f<i>`` (the booster was trained
    without feature names) or by output name; ``output_names``: the feature transform's columns
    (``<feature>`` or ``<feature>=<category>``), summed back to their raw feature. Features the model never
    split on get 0. The shares sum to 1 (all 0 when the model has no split at all).
    """
    totals = dict.fromkeys(feature_names, 0.0)
    for key, gain in scores.items():
        name = key
        if key.startswith("f") and key[1:].isdigit() and int(key[1:]) < len(output_names):
            name = output_names[int(key[1:])]
        raw = name.split("=", 1)[0]
        if raw in totals and math.isfinite(float(gain)) and gain > 0:
            totals[raw] += float(gain)
    total = sum(totals.values())
    return {name: (value / total if total > 0 else 0.0) for name, value in totals.items()}


def build_baseline(columns: Mapping[str, npt.ArrayLike | Sequence[Any]], schema: DataSchema, *,
                   probabilities: npt.ArrayLike | None = None, bins: int = DEFAULT_BINS,
                   feature_importances: Mapping[str, float] | None = None,
                   predictions: npt.ArrayLike | None = None, confidences: npt.ArrayLike | None = None
                   ) -> dict[str, Any]:
    """Build the JSON-serialisable baseline document from the training (or validation) data.

    ``columns``: raw feature columns by name (numeric: floats with NaN/None for missing; categorical:
    strings with None for missing). ``probabilities``: a binary model's positive-class probabilities on the
    same rows, giving the prediction and confidence (``max(p, 1 - p)``) distributions. For another kind of model
    ``predictions`` and ``confidences`` give them directly (mlcore.outputs ``drift_value``/``confidence``: the
    predicted class's index and the top-class probability; the value and no confidence for regression).
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or not MIN_BINS <= bins <= MAX_BINS:
        raise BaselineError(f"bins is {bins!r}; allowed: an integer in [{MIN_BINS}, {MAX_BINS}]")
    missing_columns = [name for name in schema.feature_names if name not in columns]
    if missing_columns:
        raise BaselineError(f"columns are missing features of schema {schema.name!r}: {missing_columns}")
    lengths = {name: len(np.asarray(columns[name], dtype=object).reshape(-1))
               for name in schema.feature_names}
    if len(set(lengths.values())) != 1:
        raise BaselineError(f"feature columns have different lengths: {lengths}")
    rows = next(iter(lengths.values()))
    if rows == 0:
        raise BaselineError("cannot build a baseline from zero rows")

    features: dict[str, dict[str, Any]] = {}
    for spec in schema.features:
        raw = columns[spec.name]
        if spec.is_numeric:
            values = as_float_array(raw, name=spec.name)
            missing = int(np.isnan(values).sum())
            doc = {"type": "numeric", **_numeric_distribution(values, bins)}
            present = values[~np.isnan(values)]
            doc["out_of_range_rate"] = (float(out_of_range_mask(spec, present).mean())
                                        if has_range(spec) and present.size else None)
        else:
            category_counts, missing = count_categories(np.asarray(raw, dtype=object).reshape(-1))
            # Declared categories that never occurred keep a zero count, so they are "known" bins, not
            # unseen ones, and the order is stable: schema order first, then other observed values.
            ordered = {c: int(category_counts.get(c, 0)) for c in spec.categories}
            for category in sorted(category_counts):
                ordered.setdefault(category, int(category_counts[category]))
            doc = {"type": "categorical", "categories": ordered, "count": rows - missing}
        doc["missing"] = missing
        doc["missing_rate"] = missing / rows
        features[spec.name] = doc

    baseline: dict[str, Any] = {
        "format": BASELINE_FORMAT,
        "schema": schema.to_dict(),
        "rows": rows,
        "bins": bins,
        "features": features,
        "prediction": None,
        "confidence": None,
    }
    if feature_importances is not None:
        unknown = sorted(set(feature_importances) - set(schema.feature_names))
        if unknown:
            raise BaselineError(f"feature_importances names features outside the schema: {unknown}")
        baseline["feature_importances"] = {name: float(feature_importances.get(name, 0.0))
                                           for name in schema.feature_names}
    baseline["prediction"], baseline["confidence"] = _prediction_distributions(
        rows, bins, probabilities=probabilities, predictions=predictions, confidences=confidences)
    return baseline


def _prediction_distributions(rows: int, bins: int, *, probabilities: npt.ArrayLike | None,
                              predictions: npt.ArrayLike | None, confidences: npt.ArrayLike | None
                              ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The prediction and confidence distributions: a binary model's from its probabilities, another kind's from
    its drift values and confidences (see ``build_baseline``)."""
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if p.size != rows:
            raise BaselineError(f"probabilities has {p.size} values for {rows} rows")
        if not np.all(np.isfinite(p)) or np.any((p < 0.0) | (p > 1.0)):
            raise BaselineError("probabilities must be finite numbers in [0, 1]")
        return _numeric_distribution(p, bins), _numeric_distribution(np.maximum(p, 1.0 - p), bins)
    if predictions is None:
        return None, None
    values = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if values.size != rows or not np.all(np.isfinite(values)):
        raise BaselineError(f"predictions must be {rows} finite numbers, one per row")
    confidence = np.asarray(confidences if confidences is not None else [], dtype=np.float64).reshape(-1)
    return _numeric_distribution(values, bins), (_numeric_distribution(confidence, bins) if confidence.size
                                                 else None)


# --------------------------------------------------------------------------------------------------------
# loading and validation
# --------------------------------------------------------------------------------------------------------


def load_baseline(doc_or_path: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """Read (from a path) and validate a baseline document; ``BaselineError`` names what is wrong."""
    if isinstance(doc_or_path, str | Path):
        try:
            doc: Any = json.loads(Path(doc_or_path).read_text(encoding="utf-8"))
        except OSError as err:
            raise BaselineError(f"{doc_or_path}: cannot read the baseline ({err.strerror or err})") from err
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BaselineError(f"{doc_or_path}: the baseline is not valid JSON ({err})") from err
    else:
        doc = doc_or_path
    if not isinstance(doc, Mapping):
        raise BaselineError(f"a baseline is a JSON object, got {type(doc).__name__}")
    if doc.get("format") != BASELINE_FORMAT:
        raise BaselineError(f"baseline.format is {doc.get('format')!r}; expected {BASELINE_FORMAT!r}")
    try:
        schema = DataSchema.from_dict(doc.get("schema"))  # type: ignore[arg-type]
    except SchemaError as err:
        raise BaselineError(f"baseline.schema: {err}") from err
    rows = doc.get("rows")
    if not _is_count(rows) or rows == 0:
        raise BaselineError(f"baseline.rows is {rows!r}; expected a positive integer")
    features = doc.get("features")
    if not isinstance(features, Mapping):
        raise BaselineError("baseline.features must be an object keyed by feature name")
    absent = [name for name in schema.feature_names if name not in features]
    extra = sorted(set(features) - set(schema.feature_names))
    if absent or extra:
        raise BaselineError(f"baseline.features does not match the schema: missing {absent}, unknown {extra}")
    for spec in schema.features:
        _validate_feature(spec, features[spec.name], rows)
    for key in ("prediction", "confidence"):
        if doc.get(key) is not None:
            _validate_distribution(doc[key], f"baseline.{key}")
    importances = doc.get("feature_importances")
    if importances is not None and (
            not isinstance(importances, Mapping) or set(importances) != set(schema.feature_names)
            or not all(_is_number(v) and 0.0 <= v <= 1.0 for v in importances.values())):
            raise BaselineError("baseline.feature_importances must map every schema feature to a share in [0, 1]")
    return dict(doc)


def baseline_schema(baseline: Mapping[str, Any]) -> DataSchema:
    """The schema stored in a (validated) baseline."""
    return DataSchema.from_dict(baseline["schema"])


def _validate_feature(spec: FeatureSpec, doc: Any, rows: int) -> None:
    where = f"baseline.features[{spec.name!r}]"
    if not isinstance(doc, Mapping):
        raise BaselineError(f"{where} must be an object")
    if doc.get("type") != spec.type:
        raise BaselineError(f"{where}.type is {doc.get('type')!r}; the schema says {spec.type!r}")
    missing = doc.get("missing")
    if not _is_count(missing) or missing > rows:
        raise BaselineError(f"{where}.missing is {missing!r}; expected an integer in [0, {rows}]")
    rate = doc.get("missing_rate")
    if not _is_number(rate) or not 0.0 <= rate <= 1.0:
        raise BaselineError(f"{where}.missing_rate is {rate!r}; expected a number in [0, 1]")
    if spec.is_numeric:
        _validate_distribution(doc, where)
        return
    categories = doc.get("categories")
    if (not isinstance(categories, Mapping) or not categories
            or not all(isinstance(k, str) and _is_count(v) for k, v in categories.items())):
        raise BaselineError(f"{where}.categories must be a non-empty object of category -> count")


def _validate_distribution(doc: Any, where: str) -> None:
    if not isinstance(doc, Mapping):
        raise BaselineError(f"{where} must be an object")
    edges, counts = doc.get("edges"), doc.get("counts")
    if not isinstance(edges, list) or not all(_is_number(e) for e in edges):
        raise BaselineError(f"{where}.edges must be a list of finite numbers")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise BaselineError(f"{where}.edges must be strictly increasing")
    if not isinstance(counts, list) or len(counts) != len(edges) + 1 or not all(_is_count(c) for c in counts):
        raise BaselineError(f"{where}.counts must be {len(edges) + 1} non-negative integers (one per bin)")
    if not _is_count(doc.get("count")) or doc["count"] != sum(counts):
        raise BaselineError(f"{where}.count must equal the sum of counts ({sum(counts)})")


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
