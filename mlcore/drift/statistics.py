"""Drift statistics of a window of traffic against the training baseline (one implementation, shared by the
drift Lambda, ``mlops drift`` and the training pipeline's validate step).

Per feature, on the baseline's fixed bins (see ``mlcore.baseline``):

* **PSI** ``Σ (q-p)·ln(q/p)`` and **Jensen-Shannon distance** (base 2, in [0, 1]) between the smoothed bin
  shares ``p`` (baseline) and ``q`` (window); for categorical features the bins are the baseline's
  categories plus one bucket for unseen values.
* **KS statistic** as an effect size: the largest gap between the two binned CDFs at the bin edges (a lower
  bound of the raw two-sample KS statistic). It is never turned into a p-value: on large windows every
  p-value is significant.
* Data quality, each a separate signal: the missing-value rate (vs the baseline's), the out-of-range rate
  (schema min/max), the share of categories never seen in training.

A distribution statistic trips only above ``max(configured threshold, noise floor)``; the floor is the
value a same-distribution window of ``n`` rows exceeds with probability ``false_alarm_rate`` (derivation
in docs/DRIFT.md), so small windows do not page on noise and large windows fall back to the threshold.

Memory is O(bins) per feature: ``DriftAccumulator.add_columns`` bins every chunk immediately, so the
window can be streamed. numpy only at import.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from mlcore.drift.baseline import (
    FloatArray,
    IntArray,
    as_float_array,
    baseline_schema,
    bin_counts,
    count_categories,
    has_range,
    load_baseline,
    out_of_range_mask,
)
from mlcore.drift.exact_sum import CanonicalSum, ExactSum
from mlsettings import drift as defaults
from mlsettings.schema import FeatureSpec

SMOOTHING_PSEUDO_COUNT = 0.5
"""Added to every bin count (baseline and window) before shares are taken: an empty bin would otherwise
make ln(q/p) infinite. 0.5 is the Jeffreys prior; it bounds the contribution of one empty bin in a small
window, and vanishes relative to the counts in large ones."""

UNSEEN_BUCKET = "__unseen__"
MAX_TRACKED_UNSEEN = 1000
"""Distinct unseen categories remembered per feature for the report; the rest are only counted, so a
high-cardinality garbage column cannot blow the Lambda's memory. Which ones are remembered does not depend on
the order they arrive in (``_tracking_key``), so merged partial results name the same ones."""
REPORTED_UNSEEN = 20
"""Unseen categories listed in a feature's report: the most frequent, ties by name."""


def _tracking_key(category: str) -> tuple[int, str]:
    """A stable order on categories (not Python's salted ``hash``): the ``MAX_TRACKED_UNSEEN`` smallest keys
    are remembered. A category among the smallest of a whole window is among the smallest of every part it
    occurs in, so its count is exact in any grouping (a bottom-k sample)."""
    return zlib.crc32(category.encode("utf-8", "surrogatepass")), category


class DriftInputError(ValueError):
    """Input chunks that do not fit the baseline (missing feature columns, ragged lengths)."""


@dataclass(frozen=True, kw_only=True)
class DriftThresholds:
    """When a signal trips. Distribution thresholds are raised to the sample-size noise floor when the
    window is small. The three data-quality rates (missing, out-of-range, unseen categories) are judged on
    their own. Where the schema forbids the event (a value outside the declared min/max, a category outside
    the declared list, a missing value in a non-nullable feature) and the baseline never had one, valid data
    cannot produce it, so any occurrence is a violation (the *contract* test); otherwise an exact one-sided
    binomial test against the baseline's rate (plus its own sampling noise) at ``false_alarm_rate`` decides.
    ``missing_rate_delta``, ``out_of_range_rate`` and ``unseen_share`` are the minimum effects (increase over
    the baseline's rate) a violation must also have, in both tests.

    The window's drift verdict uses ``weighted_drift``: the share of the model's feature importance (from the
    baseline) carried by drifted features; the unweighted share of drifted features is reported beside it.
    ``top_features``: how many of the most important features count as "top" for data-quality paging."""

    # The defaults are the configuration's (mlsettings.drift): a run with nothing configured judges as a deployed one.
    psi: float = defaults.PSI
    js: float = defaults.JS
    ks: float = defaults.KS
    missing_rate_delta: float = defaults.MISSING_RATE_DELTA
    out_of_range_rate: float = defaults.QUALITY_MIN_EFFECT
    unseen_share: float = defaults.QUALITY_MIN_EFFECT
    prediction_psi: float = defaults.SHIFT_PSI
    confidence_psi: float = defaults.SHIFT_PSI
    weighted_drift: float = defaults.WEIGHTED_DRIFT
    top_features: int = defaults.TOP_FEATURES
    min_rows: int = defaults.MIN_ROWS
    false_alarm_rate: float = defaults.FALSE_ALARM_RATE

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ("min_rows", "top_features"):
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"drift threshold {item.name} is {value!r}; allowed: an integer >= 1")
            elif item.name == "false_alarm_rate":
                if not _is_number(value) or not 0.0 < value < 0.5:
                    raise ValueError(f"drift threshold false_alarm_rate is {value!r}; allowed: (0, 0.5)")
            elif not _is_number(value) or value < 0.0 or (item.name in _UNIT_THRESHOLDS and value > 1.0):
                allowed = "a number in [0, 1]" if item.name in _UNIT_THRESHOLDS else "a number >= 0"
                raise ValueError(f"drift threshold {item.name} is {value!r}; allowed: {allowed}")

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> DriftThresholds:
        """Thresholds from config; unknown keys are an error that lists the allowed ones."""
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise ValueError(f"drift thresholds must be an object, got {type(mapping).__name__}")
        allowed = [item.name for item in fields(cls)]
        unknown = sorted(set(mapping) - set(allowed))
        if unknown:
            raise ValueError(f"unknown drift threshold keys {unknown}; allowed: {allowed}")
        return cls(**dict(mapping))

    def to_dict(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


_UNIT_THRESHOLDS = frozenset({"js", "ks", "missing_rate_delta", "out_of_range_rate", "unseen_share",
                              "weighted_drift"})


# --------------------------------------------------------------------------------------------------------
# statistics on bin counts (pure functions, also used by tests and the HTML report)
# --------------------------------------------------------------------------------------------------------


def smoothed_shares(counts: npt.ArrayLike) -> FloatArray:
    """Bin shares with ``SMOOTHING_PSEUDO_COUNT`` added to every bin."""
    c = np.asarray(counts, dtype=np.float64) + SMOOTHING_PSEUDO_COUNT
    return c / c.sum()  # type: ignore[no-any-return]


def population_stability_index(baseline_counts: npt.ArrayLike, window_counts: npt.ArrayLike) -> float:
    p, q = smoothed_shares(baseline_counts), smoothed_shares(window_counts)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon_distance(baseline_counts: npt.ArrayLike, window_counts: npt.ArrayLike) -> float:
    """sqrt of the JS divergence in bits (so in [0, 1]); equals scipy's ``jensenshannon(p, q, base=2)``."""
    p, q = smoothed_shares(baseline_counts), smoothed_shares(window_counts)
    m = 0.5 * (p + q)
    divergence = 0.5 * float(np.sum(p * np.log2(p / m))) + 0.5 * float(np.sum(q * np.log2(q / m)))
    return math.sqrt(max(divergence, 0.0))


def binned_ks_statistic(baseline_counts: npt.ArrayLike, window_counts: npt.ArrayLike) -> float:
    """max |F_baseline(e) - F_window(e)| over the bin edges, from unsmoothed counts."""
    b = np.asarray(baseline_counts, dtype=np.float64)
    w = np.asarray(window_counts, dtype=np.float64)
    if b.sum() == 0 or w.sum() == 0:
        return 0.0
    gap = np.abs(np.cumsum(b)[:-1] / b.sum() - np.cumsum(w)[:-1] / w.sum())
    return float(gap.max()) if gap.size else 0.0


def _chi_square_quantile(dof: int, false_alarm_rate: float) -> float:
    """Wilson-Hilferty approximation of the chi-square upper quantile (standard library only)."""
    z = NormalDist().inv_cdf(1.0 - false_alarm_rate)
    h = 2.0 / (9.0 * dof)
    return float(dof * (1.0 - h + z * math.sqrt(h)) ** 3)


@dataclass(frozen=True)
class NoiseFloors:
    psi: float
    js: float
    ks: float


def noise_floors(bins: int, window_n: int, baseline_n: int, false_alarm_rate: float) -> NoiseFloors:
    """Values a same-distribution window of ``window_n`` rows exceeds with probability ``false_alarm_rate``.

    For small bin differences PSI ≈ Σ (q-p)²/p, i.e. Pearson's chi-square divided by n. Both the window and
    the baseline are samples, so PSI ≈ χ²_{k-1} · (1/n + 1/N). JS divergence (nats) ≈ PSI/8, hence the JS
    distance floor sqrt(χ² · (1/n + 1/N) / (8 ln 2)). The KS floor is the asymptotic two-sample critical
    value sqrt(-ln(a/2)/2) · sqrt(1/n + 1/N).
    """
    if window_n <= 0 or baseline_n <= 0:
        return NoiseFloors(psi=math.inf, js=math.inf, ks=math.inf)
    scale = 1.0 / window_n + 1.0 / baseline_n
    chi2 = _chi_square_quantile(max(bins - 1, 1), false_alarm_rate)
    return NoiseFloors(
        psi=chi2 * scale,
        js=math.sqrt(chi2 * scale / (8.0 * math.log(2.0))),
        ks=math.sqrt(-math.log(false_alarm_rate / 2.0) / 2.0) * math.sqrt(scale),
    )


def rate_excess_p_value(events: int, trials: int, null_rate: float) -> float:
    """One-sided exact binomial p-value: P(X >= events) for X ~ Binomial(trials, null_rate).

    Summed in log space from ``events`` upwards; past the mode the terms fall geometrically, so the sum
    stops after a few hundred terms even for a million trials. Below the mean the answer is >= 0.5 and is
    not computed exactly (no test at any useful false-alarm rate trips there).
    """
    if events <= 0 or trials <= 0:
        return 1.0
    if null_rate <= 0.0:
        return 0.0
    if null_rate >= 1.0 or events <= trials * null_rate:
        return 1.0
    log_p, log_q = math.log(null_rate), math.log1p(-null_rate)
    log_term = (math.lgamma(trials + 1) - math.lgamma(events + 1) - math.lgamma(trials - events + 1)
                + events * log_p + (trials - events) * log_q)
    total, term, k = 0.0, math.exp(log_term), events
    while term > 0.0 and k <= trials:
        total += term
        if term < total * 1e-12:
            break
        term *= (trials - k) / (k + 1) * null_rate / (1.0 - null_rate)
        k += 1
    return min(1.0, total)


def rate_violation(events: int, trials: int, *, baseline_rate: float, baseline_rows: int, min_effect: float,
                   false_alarm_rate: float, forbidden: bool = False) -> bool:
    """A data-quality rate (missing, out-of-range, unseen) is a violation when the window's rate exceeds the
    baseline's by at least ``min_effect`` and an exact binomial test, against the baseline rate raised by
    its own sampling noise, rejects at ``false_alarm_rate`` (so small windows need a large excess, large ones
    only a small one).

    ``forbidden``: the schema rules the event out. With a baseline rate of 0 the null rate is then exactly 0
    (valid data never produces it), so one event at ``min_effect`` is a violation at any window size; the
    false-alarm rate on data that keeps the contract stays 0."""
    if trials <= 0 or events <= 0 or events / trials - baseline_rate < min_effect:
        return False
    if forbidden and baseline_rate <= 0.0:
        return True
    z = NormalDist().inv_cdf(1.0 - false_alarm_rate)
    rows = max(baseline_rows, 1)
    # Jeffreys' estimate keeps a baseline rate of 0 (out-of-range, unseen: 0 by construction) from claiming
    # certainty: 0 events in N rows still allows a true rate of about z·sqrt(0.5/N)/N.
    p0 = (min(max(baseline_rate, 0.0), 1.0) * rows + 0.5) / (rows + 1)
    null_rate = min(1.0, p0 + z * math.sqrt(p0 * (1.0 - p0) / rows))
    return rate_excess_p_value(events, trials, null_rate) < false_alarm_rate


# --------------------------------------------------------------------------------------------------------
# accumulation
# --------------------------------------------------------------------------------------------------------


@dataclass
class _NumericState:
    spec: FeatureSpec
    edges: FloatArray
    baseline_counts: IntArray
    baseline_doc: Mapping[str, Any]
    counts: IntArray
    missing: int = 0
    out_of_range: int = 0
    finite: int = 0
    values_sum: CanonicalSum = field(default_factory=CanonicalSum)

    def add(self, values: FloatArray) -> None:
        present = values[~np.isnan(values)]
        self.missing += int(values.size - present.size)
        if present.size:
            self.counts += bin_counts(self.edges, present)
            self.out_of_range += int(out_of_range_mask(self.spec, present).sum())
            finite = present[np.isfinite(present)]
            self.finite += int(finite.size)
            self.values_sum.add(finite)


@dataclass
class _CategoricalState:
    spec: FeatureSpec
    baseline_categories: Mapping[str, int]
    baseline_doc: Mapping[str, Any]
    counts: Counter[str] = field(default_factory=Counter)
    unseen: Counter[str] = field(default_factory=Counter)
    unseen_total: int = 0
    undeclared_total: int = 0  # outside the schema's declared categories (when it declares them)
    missing: int = 0

    def add(self, values: Sequence[Any]) -> None:
        counts, missing = count_categories(values)
        self.add_counts(counts, missing)

    def add_counts(self, counts: Mapping[str, int], missing: int) -> None:
        """Values already counted (non-missing categories as strings, and the missing ones)."""
        self.missing += missing
        for category, n in counts.items():
            if self.baseline_categories.get(category, 0) > 0:
                self.counts[category] += n
                continue
            # Declared-but-never-trained categories are unseen too: the model never learnt them.
            self.unseen_total += n
            if self.spec.categories and category not in self.spec.categories:
                self.undeclared_total += n
            self.unseen[category] += n
        self._prune_unseen()

    def _prune_unseen(self) -> None:
        if len(self.unseen) > MAX_TRACKED_UNSEEN:
            for category in sorted(self.unseen, key=_tracking_key)[MAX_TRACKED_UNSEEN:]:
                del self.unseen[category]

    def merge_unseen(self, unseen: Mapping[str, int]) -> None:
        self.unseen.update(unseen)
        self._prune_unseen()

    def reported_unseen(self) -> dict[str, int]:
        ranked = sorted(self.unseen.items(), key=lambda item: (-item[1], item[0]))
        return dict(ranked[:REPORTED_UNSEEN])


@dataclass
class _ScoreState:
    edges: FloatArray
    baseline_counts: IntArray
    baseline_doc: Mapping[str, Any]
    counts: IntArray
    values_sum: CanonicalSum = field(default_factory=CanonicalSum)

    def add(self, values: FloatArray) -> None:
        self.counts += bin_counts(self.edges, values)
        self.values_sum.add(values)


@dataclass(frozen=True)
class DriftReport:
    """The outcome of one window; ``to_dict()`` is the JSON report (format in docs/DRIFT.md)."""

    doc: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.doc)

    @property
    def drifted(self) -> bool:
        return bool(self.doc["drifted"])

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, item in self.doc["features"].items() if item["drifted"]]


class DriftAccumulator:
    """Streams a window of traffic in chunks and reports drift against one baseline."""

    def __init__(self, baseline: Mapping[str, Any], thresholds: DriftThresholds | None = None) -> None:
        self._baseline = load_baseline(baseline)
        self._schema = baseline_schema(self._baseline)
        self._thresholds = thresholds or DriftThresholds()
        self._rows = 0
        self._malformed: Counter[str] = Counter()
        self._numeric: dict[str, _NumericState] = {}
        self._categorical: dict[str, _CategoricalState] = {}
        for spec in self._schema.features:
            doc = self._baseline["features"][spec.name]
            if spec.is_numeric:
                edges = np.asarray(doc["edges"], dtype=np.float64)
                self._numeric[spec.name] = _NumericState(
                    spec=spec, edges=edges, baseline_counts=np.asarray(doc["counts"], dtype=np.int64),
                    baseline_doc=doc, counts=np.zeros(edges.size + 1, dtype=np.int64))
            else:
                self._categorical[spec.name] = _CategoricalState(
                    spec=spec, baseline_categories=dict(doc["categories"]), baseline_doc=doc)
        self._scores: dict[str, _ScoreState] = {}
        for key in ("prediction", "confidence"):
            doc = self._baseline.get(key)
            if doc is not None:
                edges = np.asarray(doc["edges"], dtype=np.float64)
                self._scores[key] = _ScoreState(edges=edges,
                                                baseline_counts=np.asarray(doc["counts"], dtype=np.int64),
                                                baseline_doc=doc, counts=np.zeros(edges.size + 1, np.int64))
        self._probabilities_seen = 0

    @property
    def rows(self) -> int:
        return self._rows

    def add_columns(self, columns: Mapping[str, npt.ArrayLike | Sequence[Any]]) -> None:
        """Add one chunk of rows (every schema feature as a column of equal length); bins it at once."""
        absent = [name for name in self._schema.feature_names if name not in columns]
        if absent:
            raise DriftInputError(f"chunk lacks feature columns {absent}")
        lengths = {name: len(columns[name]) for name in self._schema.feature_names}  # type: ignore[arg-type]
        if len(set(lengths.values())) > 1:
            raise DriftInputError(f"chunk columns have different lengths: {lengths}")
        n = next(iter(lengths.values()), 0)
        if n == 0:
            return
        for name, numeric in self._numeric.items():
            numeric.add(as_float_array(columns[name], name=name))
        for name, categorical in self._categorical.items():
            categorical.add(list(np.asarray(columns[name], dtype=object).reshape(-1)))
        self._rows += n

    def add_counted(self, numeric: Mapping[str, FloatArray], categories: Mapping[str, tuple[Mapping[str, int], int]],
                    rows: int) -> None:
        """Add one chunk of ``rows`` rows whose numeric columns are float arrays in row order (NaN = missing)
        and whose categorical columns are already counted: ``{name: ({category: count}, missing)}``."""
        absent = [name for name in self._numeric if name not in numeric] + \
                 [name for name in self._categorical if name not in categories]
        if absent:
            raise DriftInputError(f"chunk lacks feature columns {absent}")
        for name, state in self._numeric.items():
            if numeric[name].size != rows:
                raise DriftInputError(f"column {name!r} has {numeric[name].size} values for {rows} rows")
            state.add(numeric[name])
        for name, categorical in self._categorical.items():
            counts, missing = categories[name]
            if sum(counts.values()) + missing != rows:
                raise DriftInputError(f"column {name!r} counts {sum(counts.values()) + missing} values for "
                                      f"{rows} rows")
            categorical.add_counts(counts, missing)
        self._rows += rows

    def end_object(self) -> None:
        """The rows of one object (capture file) are complete: its canonical sums close (``exact_sum``), so the
        window's means do not depend on how objects are grouped into workers or partial results."""
        for numeric in self._numeric.values():
            numeric.values_sum.close_object()
        for score in self._scores.values():
            score.values_sum.close_object()

    def add_probabilities(self, probabilities: npt.ArrayLike | Sequence[float]) -> None:
        """Add the model's positive-class probabilities; invalid ones are counted as malformed."""
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        valid = np.isfinite(p) & (p >= 0.0) & (p <= 1.0)
        if not valid.all():
            self.add_malformed(int((~valid).sum()), "probability outside [0, 1]")
            p = p[valid]
        self._probabilities_seen += int(p.size)
        if not p.size:
            return
        if "prediction" in self._scores:
            self._scores["prediction"].add(p)
        if "confidence" in self._scores:
            self._scores["confidence"].add(np.maximum(p, 1.0 - p))

    def add_predictions(self, values: npt.ArrayLike | Sequence[float],
                        confidences: npt.ArrayLike | Sequence[float]) -> None:
        """Add a multiclass or regression model's answers as their drift values (the predicted class's index, the
        value) and confidences (the top-class probability; none for regression), each against its baseline
        distribution (``prediction``, ``confidence``); non-finite ones are counted as malformed."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        c = np.asarray(confidences, dtype=np.float64).reshape(-1)
        valid = np.isfinite(v)
        if not valid.all():
            self.add_malformed(int((~valid).sum()), "prediction not a finite number")
            v = v[valid]
        self._probabilities_seen += int(v.size)
        if v.size and "prediction" in self._scores:
            self._scores["prediction"].add(v)
        c = c[np.isfinite(c)]
        if c.size and "confidence" in self._scores:
            self._scores["confidence"].add(c)

    def add_malformed(self, count: int, reason: str) -> None:
        """Record records that could not be parsed, so the report says how much was not analysed."""
        if count < 0:
            raise ValueError(f"malformed count must be >= 0, got {count}")
        if count:
            self._malformed[reason] += count

    def merge(self, other: DriftAccumulator) -> None:
        """Add another accumulator's rows (same baseline): a window counted in several processes is the sum
        of its parts, because every statistic is computed from counts and exact sums at report time."""
        if self._schema.feature_names != other._schema.feature_names or \
                set(self._scores) != set(other._scores):
            raise DriftInputError("cannot merge accumulators of different baselines")
        other.end_object()
        self.add_state(other.state())

    def state(self) -> dict[str, Any]:
        """Everything the report is computed from, as JSON (``mlcore.drift.partials`` stores it). Closes the
        pending object, so call it once the object's rows are in."""
        self.end_object()
        return {
            "rows": self._rows,
            "probabilities": self._probabilities_seen,
            "malformed": dict(sorted(self._malformed.items())),
            "numeric": {name: {"counts": [int(c) for c in state.counts], "missing": state.missing,
                               "out_of_range": state.out_of_range, "finite": state.finite,
                               "sum": state.values_sum.exact.to_dict()}
                        for name, state in self._numeric.items()},
            "categorical": {name: {"counts": dict(sorted(state.counts.items())), "missing": state.missing,
                                   "unseen": dict(sorted(state.unseen.items())), "unseen_total": state.unseen_total,
                                   "undeclared_total": state.undeclared_total}
                            for name, state in self._categorical.items()},
            "scores": {key: {"counts": [int(c) for c in state.counts], "sum": state.values_sum.exact.to_dict()}
                       for key, state in self._scores.items()},
        }

    def add_state(self, doc: Mapping[str, Any]) -> None:
        """Add a ``state()`` of the same baseline (validated: a wrong shape raises ``DriftInputError`` naming
        the key). Adding is associative and commutative, so any grouping and order of states gives the same
        report."""
        try:
            parsed = _parse_state(doc, self)
        except (KeyError, TypeError, ValueError) as err:
            raise DriftInputError(f"accumulator state: {err}") from None
        rows, probabilities, malformed, numeric, categorical, scores = parsed
        self.end_object()
        self._rows += rows
        self._probabilities_seen += probabilities
        self._malformed.update(malformed)
        for name, (counts, missing, out_of_range, finite, total) in numeric.items():
            mine = self._numeric[name]
            mine.counts += counts
            mine.missing += missing
            mine.out_of_range += out_of_range
            mine.finite += finite
            mine.values_sum.exact.merge(total)
        for name, (counts_map, missing, unseen, unseen_total, undeclared_total) in categorical.items():
            target = self._categorical[name]
            target.counts.update(counts_map)
            target.missing += missing
            target.unseen_total += unseen_total
            target.undeclared_total += undeclared_total
            target.merge_unseen(unseen)
        for key, (counts, total) in scores.items():
            self._scores[key].counts += counts
            self._scores[key].values_sum.exact.merge(total)

    def report(self) -> DriftReport:
        self.end_object()
        t = self._thresholds
        enough = self._rows >= t.min_rows
        features: dict[str, dict[str, Any]] = {}
        for spec in self._schema.features:
            if spec.is_numeric:
                features[spec.name] = self._numeric_report(self._numeric[spec.name], enough)
            else:
                features[spec.name] = self._categorical_report(self._categorical[spec.name], enough)
        prediction = self._score_report("prediction", t.prediction_psi, enough)
        confidence = self._score_report("confidence", t.confidence_psi, enough)
        drifted_count = sum(1 for item in features.values() if item["drifted"])
        share = drifted_count / len(features) if features else 0.0
        psis = [item["psi"] for item in features.values() if item["psi"] is not None]
        importances = self._importances()
        weighted = sum(importances[name] for name, item in features.items() if item["drifted"])
        top = sorted(importances, key=lambda name: (-importances[name], name))[:t.top_features]
        violations = sorted(name for name, item in features.items() if item["quality_violation"])
        doc: dict[str, Any] = {
            "rows": self._rows,
            "malformed": sum(self._malformed.values()),
            "malformed_reasons": dict(sorted(self._malformed.items())),
            "probabilities": self._probabilities_seen,
            "features": features,
            "prediction": prediction,
            "confidence": confidence,
            "drifted_features": drifted_count,
            "drifted_share": share,
            "weighted_drift_score": weighted,
            "feature_importances": importances,
            "importance_source": "baseline" if self._baseline.get("feature_importances") else "uniform",
            "data_quality_violations": len(violations),
            "data_quality_features": violations,
            "top_features": top,
            "data_quality_top_violations": sum(1 for name in violations if name in top),
            "max_drift": max(psis, default=0.0),
            "enough_data": enough,
            # The verdict follows what the model uses: drifted features' share of its importance (a strongly
            # drifted top feature alone trips it, an unused one alone does not), or a prediction/confidence shift.
            "drifted": enough and ((drifted_count > 0 and weighted >= t.weighted_drift)
                                   or bool(prediction["drifted"]) or bool(confidence["drifted"])),
            "thresholds": t.to_dict(),
            "baseline_rows": self._baseline["rows"],
        }
        return DriftReport(doc)

    def _importances(self) -> dict[str, float]:
        """The baseline's normalised feature importances; uniform for a baseline written without them."""
        names = list(self._schema.feature_names)
        stored = self._baseline.get("feature_importances")
        if stored and sum(float(stored.get(n, 0.0)) for n in names) > 0:
            total = sum(float(stored.get(n, 0.0)) for n in names)
            return {n: float(stored.get(n, 0.0)) / total for n in names}
        return {n: 1.0 / len(names) for n in names} if names else {}

    # -- per-signal reports ----------------------------------------------------------------------------

    def _distribution_signals(self, baseline_counts: IntArray, window_counts: IntArray, *,
                              psi_threshold: float, signals: list[str]) -> dict[str, Any]:
        """PSI/JS/KS of one binned distribution, appending the names of tripped signals to ``signals``."""
        t = self._thresholds
        window_n, baseline_n = int(window_counts.sum()), int(baseline_counts.sum())
        if window_n == 0 or baseline_n == 0:
            return {"psi": None, "js": None, "ks": None, "floors": None}
        floors = noise_floors(int(baseline_counts.size), window_n, baseline_n, t.false_alarm_rate)
        psi = population_stability_index(baseline_counts, window_counts)
        js = jensen_shannon_distance(baseline_counts, window_counts)
        ks = binned_ks_statistic(baseline_counts, window_counts)
        if psi > max(psi_threshold, floors.psi):
            signals.append("psi")
        if js > max(t.js, floors.js):
            signals.append("js")
        if ks > max(t.ks, floors.ks):
            signals.append("ks")
        return {"psi": psi, "js": js, "ks": ks,
                "floors": {"psi": floors.psi, "js": floors.js, "ks": floors.ks}}

    def _rate_signal(self, name: str, events: int, trials: int, baseline_rate: float, min_effect: float,
                     signals: list[str], *, forbidden: bool = False) -> None:
        if name not in signals and rate_violation(
                events, trials, baseline_rate=baseline_rate, baseline_rows=int(self._baseline["rows"]),
                min_effect=min_effect, false_alarm_rate=self._thresholds.false_alarm_rate, forbidden=forbidden):
            signals.append(name)

    def _missing_signal(self, spec: FeatureSpec, missing: int, baseline_doc: Mapping[str, Any],
                        signals: list[str]) -> float | None:
        if self._rows == 0:
            return None
        self._rate_signal("missing_rate", missing, self._rows, float(baseline_doc["missing_rate"]),
                          self._thresholds.missing_rate_delta, signals, forbidden=not spec.nullable)
        return missing / self._rows

    def _numeric_report(self, state: _NumericState, enough: bool) -> dict[str, Any]:
        signals: list[str] = []
        quality: list[str] = []
        item: dict[str, Any] = {"type": "numeric"}
        item.update(self._distribution_signals(state.baseline_counts, state.counts,
                                               psi_threshold=self._thresholds.psi, signals=signals))
        item["missing_rate"] = self._missing_signal(state.spec, state.missing, state.baseline_doc, quality)
        item["baseline_missing_rate"] = state.baseline_doc["missing_rate"]
        present = int(state.counts.sum())
        if has_range(state.spec) and present:
            rate = state.out_of_range / present
            self._rate_signal("out_of_range_rate", state.out_of_range, present,
                              float(state.baseline_doc.get("out_of_range_rate") or 0.0),
                              self._thresholds.out_of_range_rate, quality, forbidden=True)
            item["out_of_range_rate"] = rate
        else:
            item["out_of_range_rate"] = None
        item["count"] = present
        # The mean is informative only (outliers move it freely); it never decides drift.
        item["mean"] = state.values_sum.exact.mean(state.finite)
        item["baseline_mean"] = state.baseline_doc.get("mean")
        item["histogram"] = {"edges": [float(e) for e in state.edges],
                             "baseline": [int(c) for c in state.baseline_counts],
                             "window": [int(c) for c in state.counts]}
        return self._decide(item, signals, enough, quality)

    def _categorical_report(self, state: _CategoricalState, enough: bool) -> dict[str, Any]:
        signals: list[str] = []
        quality: list[str] = []
        known = list(state.baseline_categories)
        baseline_counts = np.asarray([state.baseline_categories[c] for c in known] + [0], dtype=np.int64)
        window_counts = np.asarray([state.counts.get(c, 0) for c in known] + [state.unseen_total], np.int64)
        item: dict[str, Any] = {"type": "categorical"}
        item.update(self._distribution_signals(baseline_counts, window_counts,
                                               psi_threshold=self._thresholds.psi, signals=signals))
        item["ks"] = None  # categories have no order, so a CDF gap means nothing
        if "ks" in signals:
            signals.remove("ks")
        item["missing_rate"] = self._missing_signal(state.spec, state.missing, state.baseline_doc, quality)
        item["baseline_missing_rate"] = state.baseline_doc["missing_rate"]
        present = int(window_counts.sum())
        item["out_of_range_rate"] = None
        item["unseen_share"] = state.unseen_total / present if present else None
        if present:
            # A category the schema does not declare breaks the contract; one it declares but training never
            # saw is judged by the binomial test.
            if state.spec.categories:
                self._rate_signal("unseen_share", state.undeclared_total, present, 0.0,
                                  self._thresholds.unseen_share, quality, forbidden=True)
            self._rate_signal("unseen_share", state.unseen_total, present, 0.0, self._thresholds.unseen_share,
                              quality)
        item["count"] = present
        item["unseen_categories"] = state.reported_unseen()
        item["histogram"] = {"categories": [*known, UNSEEN_BUCKET],
                             "baseline": [int(c) for c in baseline_counts],
                             "window": [int(c) for c in window_counts]}
        return self._decide(item, signals, enough, quality)

    def _score_report(self, key: str, psi_threshold: float, enough: bool) -> dict[str, Any]:
        state = self._scores.get(key)
        if state is None:
            return {"psi": None, "js": None, "ks": None, "mean": None, "baseline_mean": None, "count": 0,
                    "drifted": False, "signals": [], "histogram": None}
        signals: list[str] = []
        item = self._distribution_signals(state.baseline_counts, state.counts, psi_threshold=psi_threshold,
                                          signals=signals)
        count = int(state.counts.sum())
        item["count"] = count
        item["mean"] = state.values_sum.exact.mean(count)
        item["baseline_mean"] = state.baseline_doc.get("mean")
        item["histogram"] = {"edges": [float(e) for e in state.edges],
                             "baseline": [int(c) for c in state.baseline_counts],
                             "window": [int(c) for c in state.counts]}
        return self._decide(item, signals, enough)

    @staticmethod
    def _decide(item: dict[str, Any], signals: list[str], enough: bool,
                quality: list[str] | None = None) -> dict[str, Any]:
        # Below min_rows nothing is decided: the statistics are reported, no signal trips. Distribution
        # signals make a feature drifted; data-quality signals make it a data-quality violation.
        item["signals"] = signals if enough else []
        item["drifted"] = bool(item["signals"])
        item["quality_signals"] = (quality or []) if enough else []
        item["quality_violation"] = bool(item["quality_signals"])
        return item


def _count(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where} must be a count (an integer >= 0), got {value!r}")
    return value


def _counts_array(values: Any, size: int, where: str) -> IntArray:
    if not isinstance(values, list) or len(values) != size:
        raise ValueError(f"{where} must be a list of {size} counts")
    return np.asarray([_count(v, f"{where}[{i}]") for i, v in enumerate(values)], dtype=np.int64)


def _count_map(values: Any, where: str) -> Counter[str]:
    if not isinstance(values, Mapping):
        raise ValueError(f"{where} must be an object of counts")
    return Counter({str(k): _count(v, f"{where}[{k!r}]") for k, v in values.items()})


def _parse_state(doc: Mapping[str, Any], accumulator: DriftAccumulator) -> tuple[Any, ...]:
    """A state document checked against the accumulator's baseline (feature names, bin counts, score keys)."""
    if not isinstance(doc, Mapping):
        raise ValueError("must be an object")
    numeric_doc, categorical_doc, scores_doc = doc["numeric"], doc["categorical"], doc["scores"]
    if set(numeric_doc) != set(accumulator._numeric) or set(categorical_doc) != set(accumulator._categorical) \
            or set(scores_doc) != set(accumulator._scores):
        raise ValueError("features or scores differ from the baseline's")
    numeric = {}
    for name, item in numeric_doc.items():
        where = f"numeric[{name!r}]"
        numeric[name] = (_counts_array(item["counts"], accumulator._numeric[name].counts.size, f"{where}.counts"),
                         _count(item["missing"], f"{where}.missing"),
                         _count(item["out_of_range"], f"{where}.out_of_range"),
                         _count(item["finite"], f"{where}.finite"),
                         ExactSum.from_dict(item["sum"], where=f"{where}.sum"))
    categorical = {}
    for name, item in categorical_doc.items():
        where = f"categorical[{name!r}]"
        categorical[name] = (_count_map(item["counts"], f"{where}.counts"), _count(item["missing"], f"{where}.missing"),
                             _count_map(item["unseen"], f"{where}.unseen"),
                             _count(item["unseen_total"], f"{where}.unseen_total"),
                             _count(item["undeclared_total"], f"{where}.undeclared_total"))
    scores = {key: (_counts_array(item["counts"], accumulator._scores[key].counts.size, f"scores[{key!r}].counts"),
                    ExactSum.from_dict(item["sum"], where=f"scores[{key!r}].sum"))
              for key, item in scores_doc.items()}
    return (_count(doc["rows"], "rows"), _count(doc["probabilities"], "probabilities"),
            _count_map(doc["malformed"], "malformed"), numeric, categorical, scores)


def compare_columns(baseline: Mapping[str, Any], columns: Mapping[str, npt.ArrayLike | Sequence[Any]], *,
                    probabilities: npt.ArrayLike | Sequence[float] | None = None,
                    thresholds: DriftThresholds | None = None) -> DriftReport:
    """One-shot drift report of in-memory columns against a baseline."""
    accumulator = DriftAccumulator(baseline, thresholds)
    accumulator.add_columns(columns)
    if probabilities is not None:
        accumulator.add_probabilities(probabilities)
    return accumulator.report()


def columns_from_rows(rows: Sequence[Sequence[str]], feature_names: Sequence[str]) -> dict[str, list[str]]:
    """Transpose parsed capture rows (raw field strings, schema order) into columns for ``add_columns``.

    Numeric conversion happens in ``add_columns`` (empty strings and "nan" are missing values).
    """
    columns: dict[str, list[str]] = {name: [] for name in feature_names}
    targets = [columns[name] for name in feature_names]
    for row in rows:
        if len(row) != len(targets):
            raise DriftInputError(f"row has {len(row)} fields, expected {len(targets)}")
        for target, value in zip(targets, row, strict=True):
            target.append(value)
    return columns


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
