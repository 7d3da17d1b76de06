"""Detector benchmark (issue 17): false alarms and detection power of our drift and data-quality signals on
generated scenarios, beside Evidently 0.7.14's ``DataDriftPreset`` on the same data.

    python -m bench.bench_drift_quality            # the published run (docs/BENCHMARKS.md, docs/drift_power.png)
    python -m bench.bench_drift_quality --quick    # a smoke run: small windows, few replicates
    python -m bench.bench_drift_quality --no-evidently

Scenarios (seeded numpy, ``generate_window``): 25 features (18 numeric with schema min/max, 7 categorical),
a baseline from 10,000 training rows with three high-importance features (``n00`` 0.30, ``c0`` 0.15,
``n01`` 0.10; the other 22 share 0.45), and windows of 100 … 1,000,000 rows. Families and effect sizes are in
``FAMILIES``; each injects its change into the family's ``targets`` only, so every other feature of a
drift window is an off-target test (a false alarm when it trips).

Rates reported per family x effect x window size:

* ours, per feature: no-drift: the share of feature-tests (25 per window) with any signal, distribution
  (``signals``) or data quality (``quality_signals``); drift families: the share of injected (window,
  target) pairs whose matching signal tripped (distribution families: ``signals``; quality families:
  ``quality_signals``; prediction shift: ``prediction.signals``), and the off-target false-alarm share.
* ours, per window: ``drifted`` and ``data_quality_violations > 0``.
* Evidently, per column: ``ValueDrift`` of ``DataDriftPreset`` (its default per-column test and threshold,
  which depend on the reference size and column type) read from ``result.dict()``; the prediction is
  handed to Evidently as one more numerical column. Evidently has no data-quality signal in that preset,
  so for the quality families its "detection" is whether its distribution test moved on the target column.

Evidently needs pandas < 3 and runs in its own venv (``bench/.venv-evidently``) from a script string, one
subprocess per family (so imports are paid once per batch), while this process computes ours on the
other core. Windows are handed over as ``.npz`` files under ``bench/.data/drift-quality/`` (deleted after
each batch).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data" / "drift-quality"
EVIDENTLY_PYTHON = ROOT / "bench" / ".venv-evidently" / "bin" / "python"
PLOT = ROOT / "docs" / "drift_power.png"
BASELINE_ROWS = 10_000
SEED = 17

# --------------------------------------------------------------------------------------------- the features

NUMERIC = 18
CATEGORICAL = 7
# numeric feature i: (kind, location, scale); mean/sd below are the distribution's true moments
_NUMERIC_KINDS = ("normal", "lognormal", "uniform", "exponential", "poisson", "normal")
CATEGORY_COUNTS = (4, 3, 5, 6, 2, 8, 10)
BASELINE_MISSING = {"n02": 0.01, "n03": 0.03, "c2": 0.02}
IMPORTANCES_TOP = {"n00": 0.30, "c0": 0.15, "n01": 0.10}


@dataclass(frozen=True)
class NumericFeature:
    name: str
    kind: str
    loc: float
    scale: float

    @property
    def mean(self) -> float:
        return {"normal": self.loc, "lognormal": self.loc * math.exp(0.5 * 0.5 ** 2),
                "uniform": self.loc + 0.5 * self.scale, "exponential": self.loc + self.scale,
                "poisson": self.scale}[self.kind]

    @property
    def sd(self) -> float:
        return {"normal": self.scale,
                "lognormal": self.loc * math.sqrt((math.exp(0.5 ** 2) - 1) * math.exp(0.5 ** 2)),
                "uniform": self.scale / math.sqrt(12.0), "exponential": self.scale,
                "poisson": math.sqrt(self.scale)}[self.kind]

    @property
    def bounds(self) -> tuple[float, float]:
        """Schema min/max: the values the feature can take, with room (a scale change of 2x stays inside
        for all but a few in 10^5 rows)."""
        if self.kind == "uniform":
            return self.loc - self.scale, self.loc + 2.0 * self.scale
        if self.kind in ("lognormal", "exponential", "poisson"):
            low = 0.0 if self.kind != "exponential" else self.loc - 10.0 * self.scale
            return low, self.mean + 20.0 * self.sd
        return self.loc - 10.0 * self.scale, self.loc + 10.0 * self.scale

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "normal":
            return rng.normal(self.loc, self.scale, n)
        if self.kind == "lognormal":
            return self.loc * rng.lognormal(0.0, 0.5, n)
        if self.kind == "uniform":
            return self.loc + self.scale * rng.random(n)
        if self.kind == "exponential":
            return self.loc + rng.exponential(self.scale, n)
        return rng.poisson(self.scale, n).astype(np.float64)


NUMERIC_FEATURES = tuple(
    NumericFeature(name=f"n{i:02d}", kind=_NUMERIC_KINDS[i % len(_NUMERIC_KINDS)],
                   loc=(10.0 * (i + 1) if _NUMERIC_KINDS[i % len(_NUMERIC_KINDS)] != "normal" else 5.0 * i),
                   scale=(1.0 + 0.5 * i) if _NUMERIC_KINDS[i % len(_NUMERIC_KINDS)] != "poisson" else 3.0 + i)
    for i in range(NUMERIC))
CATEGORICAL_NAMES = tuple(f"c{i}" for i in range(CATEGORICAL))


def category_labels(index: int) -> list[str]:
    return [f"c{index}_{k}" for k in range(CATEGORY_COUNTS[index])]


def category_probabilities(index: int) -> np.ndarray:
    """Skewed but never rare (every category >= 3 %), so every one occurs in 10,000 training rows."""
    k = CATEGORY_COUNTS[index]
    weights = 1.0 / np.arange(1, k + 1) ** 0.7
    return weights / weights.sum()  # type: ignore[no-any-return]


FEATURE_NAMES = tuple(f.name for f in NUMERIC_FEATURES) + CATEGORICAL_NAMES


def schema_document() -> dict[str, Any]:
    features: list[dict[str, Any]] = []
    for f in NUMERIC_FEATURES:
        low, high = f.bounds
        features.append({"name": f.name, "type": "numeric", "min": low, "max": high,
                         "nullable": f.name in BASELINE_MISSING,
                         "max_missing_rate": 0.5 if f.name in BASELINE_MISSING else 0.0})
    for i, name in enumerate(CATEGORICAL_NAMES):
        features.append({"name": name, "type": "categorical", "categories": category_labels(i),
                         "nullable": name in BASELINE_MISSING,
                         "max_missing_rate": 0.5 if name in BASELINE_MISSING else 0.0})
    return {"name": "bench-detector", "version": 1, "label": {"name": "y"}, "features": features}


def feature_importances() -> dict[str, float]:
    rest = [name for name in FEATURE_NAMES if name not in IMPORTANCES_TOP]
    share = (1.0 - sum(IMPORTANCES_TOP.values())) / len(rest)
    return {name: IMPORTANCES_TOP.get(name, share) for name in FEATURE_NAMES}


# ---------------------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    kind: str  # "none" | "distribution" | "quality" | "prediction"
    targets: tuple[str, ...]
    effects: Mapping[str, float]
    unit: str


FAMILIES: tuple[Family, ...] = (
    Family("no_drift", "No drift", "none", (), {"none": 0.0}, ""),
    Family("mean_shift", "Mean shift", "distribution", ("n00", "n06", "n13"),
           {"small": 0.2, "medium": 0.5, "large": 1.0}, "standard deviations"),
    Family("scale", "Scale change", "distribution", ("n00", "n06", "n12"),
           {"small": 1.25, "medium": 1.5, "large": 2.0}, "x the standard deviation"),
    Family("mixture", "Mixture", "distribution", ("n00", "n06", "n13"),
           {"small": 0.05, "medium": 0.15, "large": 0.30}, "share of rows from N(mean + 3 sd, sd/2)"),
    Family("missing", "Missing-rate jump", "quality", ("n00", "n07", "c1"),
           {"small": 0.02, "medium": 0.05, "large": 0.20}, "absolute increase of the missing rate"),
    Family("unseen", "Unseen categories", "quality", ("c0", "c3"),
           {"small": 0.005, "medium": 0.02, "large": 0.10}, "share of rows with a never-seen category"),
    Family("out_of_range", "Out-of-range share", "quality", ("n00", "n09"),
           {"small": 0.003, "medium": 0.01, "large": 0.05}, "share of values outside the schema min/max"),
    Family("prediction", "Prediction shift", "prediction", ("prediction",),
           {"small": 0.2, "medium": 0.5, "large": 1.0}, "logit shift of the probabilities"),
)
FAMILY = {f.name: f for f in FAMILIES}


def _probabilities(rng: np.random.Generator, n: int, logit_shift: float = 0.0) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(rng.normal(-1.0, 1.2, n) + logit_shift)))  # type: ignore[no-any-return]


@dataclass
class Window:
    """One generated window: numeric matrix (rows x 18, NaN = missing), categorical codes (rows x 7, -1 =
    missing; codes past a column's known labels are unseen categories), their labels, probabilities."""
    numeric: np.ndarray
    codes: np.ndarray
    labels: list[list[str]]
    probabilities: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.numeric.shape[0])

    def columns(self) -> dict[str, Any]:
        """Columns for ``compare_columns``: floats with NaN, strings with "" for missing (as capture rows)."""
        out: dict[str, Any] = {}
        for j, f in enumerate(NUMERIC_FEATURES):
            out[f.name] = self.numeric[:, j]
        for j, name in enumerate(CATEGORICAL_NAMES):
            table = np.asarray([*self.labels[j], ""], dtype=object)
            out[name] = table[self.codes[:, j]]  # code -1 picks the trailing "" (missing)
        return out


def generate_window(n: int, family: str = "no_drift", effect: float = 0.0, *, seed: int) -> Window:
    """``n`` rows of the scenario ``family`` at ``effect`` (see ``FAMILIES``), deterministic in ``seed``."""
    spec = FAMILY[family]
    rng = np.random.default_rng(seed)
    numeric = np.empty((n, NUMERIC), dtype=np.float64)
    for j, f in enumerate(NUMERIC_FEATURES):
        values = f.draw(rng, n)
        if f.name in spec.targets:
            if family == "mean_shift":
                values = values + effect * f.sd
            elif family == "scale":
                values = f.mean + (values - f.mean) * effect
            elif family == "mixture":
                take = rng.random(n) < effect
                values[take] = rng.normal(f.mean + 3.0 * f.sd, 0.5 * f.sd, int(take.sum()))
            elif family == "out_of_range":
                low, high = f.bounds
                take = rng.random(n) < effect
                span = high - low
                side = rng.random(int(take.sum())) < 0.5
                values[take] = np.where(side, high + span * (0.01 + rng.random(side.size)),
                                        low - span * (0.01 + rng.random(side.size)))
        rate = BASELINE_MISSING.get(f.name, 0.0) + (effect if family == "missing" and f.name in spec.targets else 0.0)
        if rate:
            values[rng.random(n) < rate] = np.nan
        numeric[:, j] = values
    codes = np.empty((n, CATEGORICAL), dtype=np.int16)
    labels: list[list[str]] = []
    for j, name in enumerate(CATEGORICAL_NAMES):
        known = category_labels(j)
        column = rng.choice(len(known), size=n, p=category_probabilities(j)).astype(np.int16)
        if family == "unseen" and name in spec.targets:
            take = rng.random(n) < effect
            new = [f"{name}_new{k}" for k in range(3)]
            column[take] = len(known) + rng.integers(0, len(new), int(take.sum()))
            known = known + new
        rate = BASELINE_MISSING.get(name, 0.0) + (effect if family == "missing" and name in spec.targets else 0.0)
        if rate:
            column[rng.random(n) < rate] = -1
        codes[:, j] = column
        labels.append(known)
    probabilities = _probabilities(rng, n, effect if family == "prediction" else 0.0)
    return Window(numeric=numeric, codes=codes, labels=labels, probabilities=probabilities)


def training_window() -> Window:
    return generate_window(BASELINE_ROWS, seed=SEED)


def make_baseline(training: Window) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from mlcore.drift.baseline import build_baseline
    from mlsettings.schema import DataSchema

    return build_baseline(training.columns(), DataSchema.from_dict(schema_document()),
                          probabilities=training.probabilities, feature_importances=feature_importances())


def window_seed(family: str, effect_name: str, n: int, replicate: int) -> int:
    """Distinct, stable seeds per window (never the training seed)."""
    key = f"{family}/{effect_name}/{n}/{replicate}"
    # A digest, not the key's bytes: those, little-endian mod 2**61, kept only the key's first 7 characters,
    # so every window of a family had one seed (the results before 2026-12-02 counted one window per family).
    return 1_000_003 + int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


# ---------------------------------------------------------------------------------------------- our detector


def score_ours(report: Mapping[str, Any], spec: Family) -> dict[str, Any]:
    """Per-window counts from one of our drift reports."""
    features = report["features"]
    targets = [t for t in spec.targets if t in features]
    off = [name for name in features if name not in spec.targets]
    if spec.kind == "quality":
        hits = sum(1 for t in targets if features[t]["quality_signals"])
    elif spec.kind == "distribution":
        hits = sum(1 for t in targets if features[t]["signals"])
    elif spec.kind == "prediction":
        hits = int(bool(report["prediction"]["signals"]))
    else:
        hits = 0
    false_alarms = sum(1 for name in off if features[name]["signals"] or features[name]["quality_signals"])
    return {"hits": hits, "injected": len(spec.targets), "false_alarms": false_alarms, "off_tests": len(off),
            "prediction_false_alarm": int(spec.kind != "prediction" and bool(report["prediction"]["signals"])),
            "drifted": int(bool(report["drifted"])),
            "dq": int(report["data_quality_violations"] > 0)}


def failures_present(window: Window, spec: Family) -> list[str]:
    """The quality family's targets in which this window really holds a failure at the default minimum
    effect, counted from the generated values (not from our report): injection is random, so a 0.3 %
    out-of-range share leaves no bad value at all in about 74 % of 100-row windows."""
    if spec.kind != "quality":
        return []
    from mlcore.drift.statistics import DriftThresholds

    t = DriftThresholds()
    present: list[str] = []
    for j, f in enumerate(NUMERIC_FEATURES):
        if f.name not in spec.targets:
            continue
        values = window.numeric[:, j]
        finite = values[~np.isnan(values)]
        low, high = f.bounds
        if spec.name == "missing":
            share, floor = float(np.isnan(values).mean()) - BASELINE_MISSING.get(f.name, 0.0), t.missing_rate_delta
        else:
            share = float(((finite < low) | (finite > high)).mean()) if finite.size else 0.0
            floor = t.out_of_range_rate
        if share > 0 and share >= floor:
            present.append(f.name)
    for j, name in enumerate(CATEGORICAL_NAMES):
        if name not in spec.targets:
            continue
        codes = window.codes[:, j]
        if spec.name == "missing":
            share, floor = float((codes < 0).mean()) - BASELINE_MISSING.get(name, 0.0), t.missing_rate_delta
        else:
            kept = codes[codes >= 0]
            share = float((kept >= CATEGORY_COUNTS[j]).mean()) if kept.size else 0.0
            floor = t.unseen_share
        if share > 0 and share >= floor:
            present.append(name)
    return present


def run_ours(baseline: Mapping[str, Any], window: Window, spec: Family) -> dict[str, Any]:
    from mlcore.drift.statistics import compare_columns

    report = compare_columns(baseline, window.columns(), probabilities=window.probabilities).to_dict()
    scored = score_ours(report, spec)
    present = failures_present(window, spec)
    scored["present"] = len(present)
    scored["present_hits"] = sum(1 for t in present if report["features"][t]["quality_signals"])
    scored["present_windows"] = int(bool(present))
    scored["present_windows_dq"] = int(bool(present) and report["data_quality_violations"] > 0)
    return scored


# ---------------------------------------------------------------------------------------------- Evidently

EVIDENTLY_SCRIPT = r"""
import json, re, sys, time
t0 = time.perf_counter()
import numpy as np
import pandas as pd
import evidently
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
manifest = json.load(open(sys.argv[1]))
numeric, categorical = manifest["numeric"], manifest["categorical"]
columns = numeric + categorical + ["prediction"]
definition = DataDefinition(numerical_columns=numeric + ["prediction"], categorical_columns=categorical)

def frame(path):
    data = np.load(path, allow_pickle=False)
    labels = json.loads(str(data["labels"]))
    out = {name: data["numeric"][:, j] for j, name in enumerate(numeric)}
    for j, name in enumerate(categorical):
        table = np.asarray(labels[j] + [None], dtype=object)
        out[name] = table[data["codes"][:, j]]
    out["prediction"] = data["probabilities"]
    return pd.DataFrame(out, columns=columns)

def drift_flags(result):
    # Evidently 0.7.14 layout, checked by check_reader: result.dict()["metrics"] holds only
    # {"id", "metric_id": "ValueDrift(column=X)", "value": score} (no method, no threshold, no verdict), so
    # the report runs with include_tests=True and the per-column verdict is the status of its test in
    # result.dict()["tests"]: {"metric_config": {"params": {"type": "evidently:metric_v2:ValueDrift",
    # "column": X}}, "status": "FAIL" (drifted) | "SUCCESS", "description": "... method is M. ... threshold is T."}.
    doc = result.dict()
    flags, methods, counted = {}, {}, None
    for test in doc.get("tests") or []:
        params = (test.get("metric_config") or {}).get("params") or {}
        if str(params.get("type", "")).endswith(":ValueDrift"):
            column = params["column"]
            flags[column] = test["status"] == "FAIL"
            found = re.search(r"method is (.+?)\. The drift threshold is ([0-9.eE+-]+?)\.?$",
                              test.get("description", ""))
            methods[column] = f"{found.group(1)} {found.group(2)}" if found else "?"
    for metric in doc.get("metrics") or []:
        if str(metric.get("metric_id", "")).startswith("DriftedColumnsCount"):
            counted = metric["value"]["count"]
    return flags, methods, counted

reference = frame(manifest["reference"])
t1 = time.perf_counter()
for item in manifest["windows"]:
    started = time.perf_counter()
    current = frame(item["path"])
    result = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition))
    flags, methods, counted = drift_flags(result)
    print(json.dumps({"id": item["id"], "flags": flags, "methods": methods, "counted": counted,
                      "seconds": time.perf_counter() - started}), flush=True)
print(json.dumps({"done": True, "version": evidently.__version__, "import_seconds": t1 - t0}), flush=True)
"""


def save_window(path: Path, window: Window) -> None:
    np.savez(path, numeric=window.numeric, codes=window.codes, probabilities=window.probabilities,
             labels=np.asarray(json.dumps(window.labels)))


class EvidentlyBatch:
    """One Evidently subprocess over a list of saved windows; results read when it is done."""

    def __init__(self, folder: Path, reference: Path, windows: list[tuple[str, Path]]) -> None:
        self.folder = folder
        manifest = {"numeric": [f.name for f in NUMERIC_FEATURES], "categorical": list(CATEGORICAL_NAMES),
                    "reference": str(reference), "windows": [{"id": i, "path": str(p)} for i, p in windows]}
        self.manifest = folder / "manifest.json"
        self.manifest.write_text(json.dumps(manifest))
        self.process = subprocess.Popen([str(EVIDENTLY_PYTHON), "-c", EVIDENTLY_SCRIPT, str(self.manifest)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)

    def results(self) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        stdout, stderr = self.process.communicate()
        if self.process.returncode != 0:
            raise RuntimeError(f"Evidently batch failed (exit {self.process.returncode}): {stderr.strip()[-1500:]}")
        by_id: dict[str, dict[str, Any]] = {}
        trailer: dict[str, Any] = {}
        for line in stdout.splitlines():
            if not line.startswith("{"):
                continue
            item = json.loads(line)
            if item.get("done"):
                trailer = item
            else:
                by_id[item["id"]] = item
        shutil.rmtree(self.folder, ignore_errors=True)
        return by_id, trailer


def score_evidently(item: Mapping[str, Any], spec: Family) -> dict[str, Any]:
    flags: Mapping[str, bool] = item["flags"]
    expected = set(FEATURE_NAMES) | {"prediction"}
    if set(flags) != expected:
        # An outdated reader sees no (or the wrong) column metrics and would silently count zero drift.
        raise AssertionError(f"Evidently reader found column metrics for {sorted(flags)}; expected all of "
                             f"{sorted(expected)} (did the result layout change?)")
    off = [name for name in FEATURE_NAMES if name not in spec.targets]
    return {"hits": sum(1 for t in spec.targets if flags[t]), "injected": len(spec.targets),
            "false_alarms": sum(1 for name in off if flags[name]), "off_tests": len(off),
            "any": int(any(flags.values()))}


# ---------------------------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    ours: Mapping[int, int]
    ours_no_drift: Mapping[int, int]
    evidently: Mapping[int, int]
    evidently_no_drift: Mapping[int, int]
    million_families: tuple[str, ...]

    def replicates(self, family: str, n: int, *, evidently: bool) -> int:
        if family == "no_drift":
            table = self.evidently_no_drift if evidently else self.ours_no_drift
        else:
            table = self.evidently if evidently else self.ours
        return table.get(n, 0)


# Evidently costs ~4 s per window whatever its size (~10 s at 100,000 rows, ~60 s at 1,000,000; measured
# on this machine), ours ~10 ms to ~3 s: Evidently gets far fewer windows per cell, and none of 1,000,000
# rows outside the no-drift family.
FULL = Plan(sizes=(100, 1_000, 10_000, 100_000, 1_000_000),
            ours={100: 200, 1_000: 100, 10_000: 40, 100_000: 8, 1_000_000: 3},
            ours_no_drift={100: 1000, 1_000: 400, 10_000: 100, 100_000: 20, 1_000_000: 5},
            evidently={100: 2, 1_000: 2, 10_000: 1, 100_000: 1},
            evidently_no_drift={100: 6, 1_000: 6, 10_000: 4, 100_000: 2, 1_000_000: 1},
            million_families=("no_drift", "mean_shift"))
QUICK = Plan(sizes=(100, 1_000, 10_000), ours={100: 20, 1_000: 10, 10_000: 4},
             ours_no_drift={100: 40, 1_000: 20, 10_000: 4}, evidently={100: 1, 1_000: 1},
             evidently_no_drift={100: 2, 1_000: 1, 10_000: 1}, million_families=())


def _add(total: dict[str, int], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + int(value)


def _cells(spec: Family, plan: Plan) -> list[tuple[str, float, int]]:
    return [(effect_name, effect, n) for effect_name, effect in spec.effects.items() for n in plan.sizes
            if n < 1_000_000 or spec.name in plan.million_families]


def run(plan: Plan, *, evidently: bool, log: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    training = training_window()
    baseline = make_baseline(training)
    results: dict[str, Any] = {"cells": [], "evidently_version": None, "evidently_seconds": 0.0,
                               "evidently_windows": 0, "ours_seconds": 0.0, "ours_windows": 0,
                               "evidently_methods": {}}
    if evidently and not EVIDENTLY_PYTHON.exists():
        results["evidently_error"] = f"{EVIDENTLY_PYTHON} is missing (make bench/.venv-evidently/.installed)"
        evidently = False
    reference = DATA / "reference.npz"
    batches: dict[str, EvidentlyBatch] = {}
    if evidently:
        DATA.mkdir(parents=True, exist_ok=True)
        (DATA.parent / ".gitignore").write_text("*\n")
        save_window(reference, training)
        check_reader(reference, training, baseline)
        log("Evidently reader checked: finds a strong shift, nothing on identical data")
        # One Evidently process per family, all started now: they share both cores with our (much shorter)
        # loop below, and each pays Evidently's imports once.
        for spec in FAMILIES:
            folder = DATA / spec.name
            folder.mkdir(parents=True, exist_ok=True)
            windows: list[tuple[str, Path]] = []
            for effect_name, effect, n in _cells(spec, plan):
                for r in range(plan.replicates(spec.name, n, evidently=True)):
                    path = folder / f"{effect_name}-{n}-{r}.npz"
                    save_window(path, generate_window(n, spec.name, effect,
                                                      seed=window_seed(spec.name, effect_name, n, r)))
                    windows.append((f"{effect_name}/{n}/{r}", path))
            batches[spec.name] = EvidentlyBatch(folder, reference, windows)
        log(f"Evidently: {len(batches)} batches started")
    family_cells: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}
    for spec in FAMILIES:
        family_cells[spec.name] = {}
        for effect_name, effect, n in _cells(spec, plan):
            total: dict[str, int] = {}
            t = time.perf_counter()
            windows_here = plan.replicates(spec.name, n, evidently=False)
            for r in range(windows_here):
                window = generate_window(n, spec.name, effect, seed=window_seed(spec.name, effect_name, n, r))
                s = time.perf_counter()
                _add(total, run_ours(baseline, window, spec))
                results["ours_seconds"] += time.perf_counter() - s
                results["ours_windows"] += 1
            family_cells[spec.name][(effect_name, n)] = {
                "family": spec.name, "effect": effect_name, "effect_value": effect, "n": n,
                "windows": windows_here, "ours": total}
            log(f"{spec.name} {effect_name} n={n}: ours {total} ({time.perf_counter() - t:.1f} s)")
    for spec in FAMILIES:
        batch = batches.get(spec.name)
        if batch is not None:
            by_id, trailer = batch.results()
            results["evidently_version"] = trailer.get("version")
            for (effect_name, n), cell in family_cells[spec.name].items():
                count = plan.replicates(spec.name, n, evidently=True)
                if not count:
                    continue
                total = {}
                for r in range(count):
                    item = by_id[f"{effect_name}/{n}/{r}"]
                    _add(total, score_evidently(item, spec))
                    results["evidently_seconds"] += item["seconds"]
                    results["evidently_windows"] += 1
                    for column in ("n00", "c0", "prediction"):
                        results["evidently_methods"].setdefault(str(n), {})[column] = item["methods"][column]
                cell["evidently"] = total
                cell["evidently_windows"] = count
            log(f"{spec.name}: Evidently done")
        results["cells"].extend(family_cells[spec.name].values())
    results["seconds"] = time.perf_counter() - started
    return results


def check_reader(reference: Path, training: Window, baseline: Mapping[str, Any]) -> None:
    """The Evidently reader must find a strong shift in every shifted column and nothing on identical data;
    otherwise (a changed result layout) it would silently count zero drift."""
    folder = DATA / "check"
    folder.mkdir(parents=True, exist_ok=True)
    shifted = generate_window(5_000, "mean_shift", 3.0, seed=99)
    save_window(folder / "shifted.npz", shifted)
    windows = [("identical", reference), ("shifted", folder / "shifted.npz")]
    by_id, _ = EvidentlyBatch(folder, reference, windows).results()
    if set(by_id) != {"identical", "shifted"}:
        raise AssertionError(f"Evidently returned results for {sorted(by_id)}")
    identical = score_evidently(by_id["identical"], FAMILY["no_drift"])
    if identical["false_alarms"] or any(by_id["identical"]["flags"].values()):
        raise AssertionError(f"Evidently reader: drift on identical data: {by_id['identical']}")
    strong = score_evidently(by_id["shifted"], FAMILY["mean_shift"])
    if strong["hits"] != len(FAMILY["mean_shift"].targets):
        raise AssertionError(f"Evidently reader misses a 3 sd shift: {by_id['shifted']}")
    counted = by_id["shifted"].get("counted")
    found = sum(by_id["shifted"]["flags"].values())
    if counted is not None and counted != found:
        raise AssertionError(f"Evidently reader finds {found} drifted columns, its DriftedColumnsCount says {counted}")


# ---------------------------------------------------------------------------------------------- output


def _rate(part: Mapping[str, int] | None, num: str, den: str) -> float | None:
    if not part or not part.get(den):
        return None
    return part[num] / part[den]


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f} %" if value >= 0.001 or value == 0 else f"{100 * value:.2f} %"


def _per_size(table: Mapping[int, int]) -> str:
    return ", ".join(f"{n:,}: {k}" for n, k in sorted(table.items()))


def markdown(results: Mapping[str, Any], plan: Plan) -> str:
    cells = results["cells"]
    lines = [
        f"25 features (18 numeric with schema min/max, 7 categorical) and the model's probability; baseline "
        f"from {BASELINE_ROWS:,} training rows with importances n00 0.30, c0 0.15, n01 0.10 (the other 22: "
        f"0.0205 each); our default `DriftThresholds`. Evidently {results.get('evidently_version') or '(not run)'} "
        f"`DataDriftPreset` with its defaults, reference = the same 10,000 training rows. Windows per cell: "
        f"ours {_per_size(plan.ours_no_drift)} (no drift), {_per_size(plan.ours)} (others); Evidently "
        f"{_per_size(plan.evidently_no_drift)} (no drift), {_per_size(plan.evidently)} (others). "
        f"Run time {results['seconds']:.0f} s "
        f"(our detector {results['ours_seconds']:.0f} s over {results['ours_windows']} windows; Evidently "
        f"{results['evidently_seconds']:.0f} s over {results['evidently_windows']} windows, one process per "
        f"family, concurrently on both cores). Rates are shares of the windows (or window x feature tests) "
        f"counted, so a cell of 1-2 Evidently windows is coarse.",
        "",
        "Columns: **FA** = share of off-target feature-tests with any signal (ours: distribution *or* data "
        "quality; Evidently: its per-column drift verdict); **detect** = share of injected (window, feature) "
        "signals found (distribution families: `signals`; quality families: `quality_signals`; prediction: "
        "`prediction.signals`); **failures present** = share of injected (window, feature) signals where the "
        "random injection really left a failure at the default minimum effect (counted from the generated "
        "values), **detect of present** = share of those we flagged; **drifted** / **DQ** = share of windows "
        "with `drifted` / `data_quality_violations > 0`.",
        "",
    ]
    if results.get("evidently_error"):
        lines += [f"Evidently did not run: {results['evidently_error']}", ""]
    for spec in FAMILIES:
        mine = [c for c in cells if c["family"] == spec.name]
        if not mine:
            continue
        lines.append(f"### {spec.title}" + (f" ({', '.join(spec.targets)}; effect = {spec.unit})"
                                             if spec.targets else ""))
        lines.append("")
        if spec.kind == "none":
            lines += ["| window rows | ours FA per feature-test | ours prediction FA | ours drifted | ours DQ "
                      "| Evidently FA per column | Evidently windows with any drift |",
                      "|---:|---:|---:|---:|---:|---:|---:|"]
            for c in mine:
                o, e = c["ours"], c.get("evidently")
                lines.append(f"| {c['n']:,} | {_pct(_rate(o, 'false_alarms', 'off_tests'))} "
                             f"({o['false_alarms']}/{o['off_tests']}) | "
                             f"{_pct(o['prediction_false_alarm'] / c['windows'])} | "
                             f"{_pct(o['drifted'] / c['windows'])} | {_pct(o['dq'] / c['windows'])} | "
                             f"{_pct(_rate(e, 'false_alarms', 'off_tests'))} | "
                             f"{_pct(e['any'] / c['evidently_windows']) if e else '-'} |")
        else:
            # quality families show the injected failures that were really there; the others the drift verdict
            middle = ([("failures present", lambda o, c: _pct(_rate(o, "present", "injected"))),
                       ("ours detect of present", lambda o, c: _pct(_rate(o, "present_hits", "present")))]
                      if spec.kind == "quality" else
                      [("ours drifted", lambda o, c: _pct(o["drifted"] / c["windows"]))])
            columns = [("ours detect", lambda o, c: _pct(_rate(o, "hits", "injected"))), *middle,
                       ("ours DQ", lambda o, c: _pct(o["dq"] / c["windows"])),
                       ("ours off-target FA", lambda o, c: _pct(_rate(o, "false_alarms", "off_tests")))]
            lines += ["| window rows | effect | " + " | ".join(name for name, _ in columns)
                      + " | Evidently detect | Evidently off-target FA |",
                      "|---:|---|" + "---:|" * (len(columns) + 2)]
            for c in sorted(mine, key=lambda c: (c["n"], c["effect_value"])):
                o, e = c["ours"], c.get("evidently")
                lines.append(f"| {c['n']:,} | {c['effect']} ({c['effect_value']:g}) | "
                             + " | ".join(cell(o, c) for _, cell in columns) + " | "
                             f"{_pct(_rate(e, 'hits', 'injected'))} | {_pct(_rate(e, 'false_alarms', 'off_tests'))} |")
        lines.append("")
    methods = results.get("evidently_methods") or {}
    if methods:
        lines.append("Evidently's per-column tests picked by its defaults (method@threshold; n00 numeric, "
                     "c0 categorical, the prediction): " + "; ".join(
                         f"{int(n):,} rows: " + ", ".join(f"{k} {v}" for k, v in m.items())
                         for n, m in sorted(methods.items(), key=lambda kv: int(kv[0]))) + ".")
        lines.append("")
    lines += criteria(results), ""
    return "\n".join(lines)


def criteria(results: Mapping[str, Any]) -> str:
    cells = results["cells"]
    no_drift = [c for c in cells if c["family"] == "no_drift"]
    worst = max((_rate(c["ours"], "false_alarms", "off_tests") or 0.0 for c in no_drift), default=0.0)
    big_shift = [c for c in cells if c["family"] == "mean_shift" and c["effect"] == "large"]
    drift_rate = min((c["ours"]["drifted"] / c["windows"] for c in big_shift), default=float("nan"))
    quality = [c for c in cells if FAMILY[c["family"]].kind == "quality"]
    with_failure = [c for c in quality if c["ours"].get("present_windows")]
    dq_rate = min((c["ours"]["present_windows_dq"] / c["ours"]["present_windows"] for c in with_failure),
                  default=float("nan"))
    dq_detect = min((_rate(c["ours"], "present_hits", "present") or 0.0 for c in with_failure),
                    default=float("nan"))
    failing = sum(c["ours"]["present_windows"] for c in with_failure)
    flagged = sum(c["ours"]["present_windows_dq"] for c in with_failure)
    verdict = "yes" if dq_rate == 1.0 else "no (see the cells below 100 %)"
    rows = ["| done-criterion (issue 17) | measured | met |", "|---|---:|---|",
            f"| no-drift: ≤ 0.5 % false alarms per feature-test at every window size | worst {_pct(worst)} | "
            f"{'yes' if worst <= 0.005 else 'no'} |",
            f"| strong shift (1 sd) in the top-importance feature n00 trips `drifted` | lowest share of windows "
            f"{_pct(drift_rate)} | {'yes' if drift_rate == 1.0 else 'no'} |",
            f"| a data-quality failure (at the minimum effect) in any feature gives `data_quality_violations > 0` "
            f"| {flagged} of {failing} windows holding one; lowest share per cell {_pct(dq_rate)} (lowest "
            f"per-feature detection {_pct(dq_detect)}) | {verdict} |"]
    return "\n".join(rows)


def plot(results: Mapping[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    families = [f for f in FAMILIES if f.kind != "none"]
    figure, axes = plt.subplots(2, 4, figsize=(16, 7.5), sharex=True, sharey=True)
    colours = {"small": "tab:green", "medium": "tab:orange", "large": "tab:red"}
    no_drift = sorted((c for c in results["cells"] if c["family"] == "no_drift"), key=lambda c: c["n"])
    for ax, spec in zip(axes.flat, [FAMILY["no_drift"], *families], strict=False):
        if spec.kind == "none":
            xs = [c["n"] for c in no_drift]
            ax.plot(xs, [_rate(c["ours"], "false_alarms", "off_tests") for c in no_drift], "o-", color="black",
                    label="ours FA / feature-test")
            ev = [(c["n"], _rate(c.get("evidently"), "false_alarms", "off_tests")) for c in no_drift]
            ev = [(x, y) for x, y in ev if y is not None]
            if ev:
                ax.plot(*zip(*ev, strict=True), "s--", color="grey", label="Evidently FA / column")
            ax.axhline(0.005, color="black", linewidth=0.6, linestyle=":")
            ax.set_title("No drift: false alarms")
        else:
            for effect_name in spec.effects:
                mine = sorted((c for c in results["cells"] if c["family"] == spec.name and c["effect"] == effect_name),
                              key=lambda c: c["n"])
                xs = [c["n"] for c in mine]
                ax.plot(xs, [_rate(c["ours"], "hits", "injected") for c in mine], "o-", color=colours[effect_name],
                        label=f"ours {effect_name} ({spec.effects[effect_name]:g})")
                ev = [(c["n"], _rate(c.get("evidently"), "hits", "injected")) for c in mine]
                ev = [(x, y) for x, y in ev if y is not None]
                if ev:
                    ax.plot(*zip(*ev, strict=True), "s--", color=colours[effect_name], alpha=0.5,
                            label=f"Evidently {effect_name}")
            ax.set_title(spec.title)
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("window rows")
    for ax in axes[:, 0]:
        ax.set_ylabel("detection rate")
    figure.suptitle("Detection rate per injected feature signal vs window size (solid: ours, dashed: Evidently "
                    "DataDriftPreset)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="detector benchmark: false alarms and power, ours vs Evidently")
    parser.add_argument("--quick", action="store_true", help="small windows, few replicates (smoke run)")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw counts to this file")
    parser.add_argument("--plot", type=Path, default=None,
                        help=f"power-curve PNG (default {PLOT.relative_to(ROOT)} for the full run, none for --quick)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    results = run(plan, evidently=not args.no_evidently,
                  log=lambda message: print(message, file=sys.stderr, flush=True))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    target = args.plot or (None if args.quick else PLOT)
    written = plot(results, target) if target else None
    print(markdown(results, plan))
    if written:
        print(f"Power curves: [{written.name}]({os.path.relpath(written, ROOT / 'docs')}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
