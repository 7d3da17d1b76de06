"""Preprocess step: feature transform, stratified train/validation/test split, and the data version.

Runs unchanged in a SageMaker processing container and locally. Reads raw CSV (header row) from
``--input-dir``; writes under ``--output-dir``:

* ``train/train.csv``, ``validation/validation.csv``, ``test/test.csv``: the XGBoost container's CSV layout
  — label (0/1) first, then the transformed features, no header, missing values as empty fields;
* ``train_raw/train_raw.csv``, ``test_raw/test_raw.csv``: the same split rows with the raw columns and the header (the
  baseline step bins raw training values; evaluate and the golden payloads send raw test rows through the
  serving path);
* ``metadata/schema.json``, ``metadata/feature_names.json``, ``metadata/lineage.json``: the schema travels
  with the data to the train step; lineage records the data version — SHA-256 of every input file, the S3
  object version ids when given, split sizes and the seed.

The transform is ``mlcore.features.FeatureTransformer``: the same code the endpoint and the fallback run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file inside a container: make the code bundle's root (holding mlcore/, pipelines/) importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd

from mlcore.features import FeatureError, FeatureTransformer, encode_label
from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION
from mlsettings.schema import DataSchema
from mlsettings.training_code import PREPROCESS_HOOK_FUNCTION
from mlsettings.vocabulary import SCORE_FILES, SCORE_OUTPUT
from pipelines.datasets import csv_body, csv_files_in, feature_rows, read_raw_csv
from pipelines.steps.team_hooks import TeamHookError, call_team_hook

LINEAGE_FORMAT = "mlops-lineage/1"
SPLITS = ("train", "validation", "test")
_HASH_CHUNK = 1 << 20


class PreprocessError(RuntimeError):
    """The data cannot be split or transformed; the message says why."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_version(files: Sequence[Path], s3_object_versions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The data version: per-file SHA-256 plus one combined hash, and the S3 object versions if known.

    With one file the combined hash *is* that file's hash, so it can be checked with ``sha256sum``.
    """
    hashed: list[dict[str, Any]] = [{"file": p.name, "bytes": p.stat().st_size, "sha256": sha256_of(p)}
                                    for p in files]
    if len(hashed) == 1:
        combined = str(hashed[0]["sha256"])
    else:
        ordered = sorted(hashed, key=lambda item: str(item["file"]))
        manifest = "".join(f"{item['file']} {item['sha256']}\n" for item in ordered)
        combined = hashlib.sha256(manifest.encode("utf-8")).hexdigest()
    return {"sha256": combined, "files": hashed, "s3_object_versions": dict(s3_object_versions or {})}


REGRESSION_STRATA = 5
"""A regression target is split by quintile (rows of one quintile split separately), so each split spans the
target's range as the class balance is kept for classifiers."""


def _class_strata(labels: np.ndarray) -> np.ndarray:
    return labels


def _quantile_strata(labels: np.ndarray) -> np.ndarray:
    """Quantile bins of the target, fewer when ties or few rows would leave a bin under the split's 3 rows."""
    for count in range(REGRESSION_STRATA, 0, -1):
        edges = np.quantile(labels, np.linspace(0.0, 1.0, count + 1)[1:-1])
        strata: np.ndarray = np.searchsorted(edges, labels, side="right")
        counts = np.bincount(strata)
        if counts[counts > 0].min(initial=labels.size) >= 3 or count == 1:  # an empty bin is no stratum
            return strata
    return strata


_STRATA = {BINARY: _class_strata, MULTICLASS: _class_strata, REGRESSION: _quantile_strata}


def split_strata(labels: np.ndarray, problem_type: str) -> np.ndarray:
    """What the split stratifies on, by the kind of model: the class, or the target's quintile."""
    return _STRATA[problem_type](labels)


def stratified_split(labels: np.ndarray, *, validation_fraction: float, test_fraction: float,
                     seed: int) -> dict[str, np.ndarray]:
    """Row indices per split; each class (stratum) is split separately so every split keeps the class balance.

    A fixed seed makes the split reproducible: the same data and seed give the same rows in each split.
    """
    if not 0.0 < validation_fraction < 1.0 or not 0.0 < test_fraction < 1.0 or \
            validation_fraction + test_fraction >= 1.0:
        raise PreprocessError(f"validation_fraction {validation_fraction} and test_fraction {test_fraction} "
                              "must be in (0, 1) and leave rows for training")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for cls in np.unique(labels) if labels.size else (0, 1):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        if rows.size < 3:
            raise PreprocessError(f"class {cls} has {rows.size} row(s); a stratified split needs at least 3")
        n_test = max(1, round(rows.size * test_fraction))
        n_validation = max(1, round(rows.size * validation_fraction))
        parts["test"].append(rows[:n_test])
        parts["validation"].append(rows[n_test:n_test + n_validation])
        parts["train"].append(rows[n_test + n_validation:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def _write_xgboost_csv(path: Path, labels: np.ndarray, features: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(features)
    # Class labels as integers; a regression target keeps its value.
    table.insert(0, "label", labels if labels.dtype.kind == "f" else labels.astype(np.int64))
    table.to_csv(path, header=False, index=False, na_rep="")


def clean_with_hook(hook: Path, frame: pd.DataFrame, schema: DataSchema) -> pd.DataFrame:
    """A team's ``clean(frame, schema)`` on the raw rows before the features and the split: it may drop or fix
    rows, never add rows or change the columns (serving computes the same features from the same raw columns)."""
    cleaned = call_team_hook(hook, PREPROCESS_HOOK_FUNCTION, frame.copy(), schema.to_dict())
    if not isinstance(cleaned, pd.DataFrame):
        raise TeamHookError(f"{hook.name}: {PREPROCESS_HOOK_FUNCTION}() returned {type(cleaned).__name__}; allowed: "
                            "a pandas DataFrame")
    if list(cleaned.columns) != list(frame.columns):
        raise TeamHookError(f"{hook.name}: {PREPROCESS_HOOK_FUNCTION}() returned columns {list(cleaned.columns)}; "
                            f"allowed: the columns it was given, {list(frame.columns)}")
    if not 0 < len(cleaned) <= len(frame):
        raise TeamHookError(f"{hook.name}: {PREPROCESS_HOOK_FUNCTION}() returned {len(cleaned)} rows of "
                            f"{len(frame)}; allowed: at least 1 and no more than it was given")
    return cleaned.reset_index(drop=True)


def write_score_rows(raw_csv: Path, destination: Path, schema: DataSchema) -> None:
    """An own image's score rows: ``raw_csv``'s features read back as every step reads test_raw (so the rows are the
    very strings they send), one per line, no header, no label. Batch transform splits its input by line (SplitType
    Line): a value with a line break is refused in one line."""
    score = feature_rows(read_raw_csv(raw_csv), schema.feature_names)
    broken = next(((n, v) for n, row in enumerate(score, start=1) for v in row if "\n" in v or "\r" in v), None)
    if broken is not None:
        raise PreprocessError(f"{raw_csv.name} row {broken[0]} holds a value with a line break ({broken[1]!r:.40}); "
                              "an own image's rows are sent one per line: allowed: values without line breaks")
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(csv_body(score), encoding="utf-8")


def run(*, input_dir: Path, schema_path: Path, output_dir: Path, validation_fraction: float = 0.15,
        test_fraction: float = 0.15, seed: int = 42, data_uri: str = "",
        s3_object_versions: Mapping[str, str] | None = None, team_hook: Path | None = None,
        score_rows: bool = False) -> dict[str, Any]:
    """Transform and split the data, write every output, and return the lineage document. ``score_rows``: also write
    the raw feature rows an own image's model answers by batch transform (SCORE_OUTPUT, mlsettings.vocabulary)."""
    schema = DataSchema.load(schema_path)
    transformer = FeatureTransformer.from_schema(schema)
    files = csv_files_in(input_dir)
    frame = read_raw_csv(files)
    raw_columns = [*schema.feature_names, schema.label.name]
    absent = [name for name in raw_columns if name not in frame.columns]
    if absent:
        raise PreprocessError(f"the data lacks schema columns {absent} (did the validate step run?)")
    frame = frame[raw_columns]
    given = len(frame)
    if team_hook is not None:
        frame = clean_with_hook(team_hook, frame, schema)

    # Rows that cannot be transformed are counted and dropped, never allowed to stop the whole batch:
    # the validate step has already failed the run if there were any in the data it checked.
    features: list[list[float]] = []
    labels: list[float] = []
    kept: list[int] = []
    malformed: dict[str, int] = {}
    for position, row in enumerate(frame.itertuples(index=False, name=None)):
        try:
            vector = transformer.transform_row(row[:-1])
            label = encode_label(row[-1], schema.label)
        except FeatureError as err:
            reason = str(err).split(":")[0]
            malformed[reason] = malformed.get(reason, 0) + 1
            continue
        features.append(vector)
        labels.append(label)
        kept.append(position)
    if not kept:
        raise PreprocessError(f"no row could be transformed; reasons: {malformed}")
    x = np.asarray(features, dtype=np.float64).reshape(len(kept), len(transformer.output_names))
    y = np.asarray(labels)  # int64 for class indices, float64 for a regression target (encode_label)
    split = stratified_split(split_strata(y, schema.problem_type), validation_fraction=validation_fraction,
                             test_fraction=test_fraction, seed=seed)

    for name, rows in split.items():
        _write_xgboost_csv(output_dir / name / f"{name}.csv", y[rows], x[rows])
    kept_frame = frame.iloc[kept].reset_index(drop=True)
    for name in ("train", "test"):
        raw_dir = output_dir / f"{name}_raw"
        raw_dir.mkdir(parents=True, exist_ok=True)
        kept_frame.iloc[split[name]].to_csv(raw_dir / f"{name}_raw.csv", index=False)
        if score_rows:
            write_score_rows(raw_dir / f"{name}_raw.csv", output_dir / SCORE_OUTPUT / SCORE_FILES[name], schema)

    lineage = {
        "format": LINEAGE_FORMAT,
        "data_uri": data_uri,
        "data_version": data_version(files, s3_object_versions),
        "schema": {"name": schema.name, "version": schema.version},
        "rows": {"input": given, **({"kept_by_hook": len(frame)} if team_hook is not None else {}),
                 "malformed": sum(malformed.values()),
                 **{name: int(rows.size) for name, rows in split.items()}},
        "malformed_reasons": malformed,
        **({"preprocess_hook": team_hook.name} if team_hook is not None else {}),
        "label_mean": {name: float(y[rows].mean()) for name, rows in split.items()},
        "split": {"seed": seed, "validation_fraction": validation_fraction, "test_fraction": test_fraction,
                  "stratified_by": schema.label.name, "problem_type": schema.problem_type},
        "feature_names": list(transformer.output_names),
    }
    metadata_dir = output_dir / "metadata"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    (metadata_dir / "schema.json").write_text(json.dumps(schema.to_dict(), indent=2) + "\n", encoding="utf-8")
    (metadata_dir / "feature_names.json").write_text(
        json.dumps({"input_names": list(schema.feature_names), "output_names": list(transformer.output_names)},
                   indent=2) + "\n", encoding="utf-8")
    (metadata_dir / "lineage.json").write_text(json.dumps(lineage, indent=2) + "\n", encoding="utf-8")
    return lineage


def parse_object_versions(items: Sequence[str]) -> dict[str, str]:
    """``s3://bucket/key=VERSION_ID`` items (version ids never contain "=", keys may) → {uri: version}."""
    versions: dict[str, str] = {}
    for item in items:
        uri, separator, version = item.rpartition("=")
        if not separator or not uri or not version:
            raise PreprocessError(f"--s3-object-version {item!r} must look like s3://bucket/key=VERSION_ID")
        versions[uri] = version
    return versions


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--schema", type=Path, default=Path("/opt/ml/processing/input/schema/schema.json"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-uri", type=str, default="", help="where the input came from (recorded only)")
    parser.add_argument("--s3-object-version", action="append", default=[], metavar="S3_URI=VERSION_ID",
                        help="the S3 object version of an input object; repeat per object")
    parser.add_argument("--team-hook", type=Path, default=None,
                        help="a team's preprocessing hook (a file defining clean(frame, schema))")
    parser.add_argument("--score-rows", action="store_true",
                        help="also write score_rows/: the raw rows an own image's model answers by batch transform")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    lineage = run(input_dir=args.input_dir, schema_path=args.schema, output_dir=args.output_dir,
                  validation_fraction=args.validation_fraction, test_fraction=args.test_fraction,
                  seed=args.seed, data_uri=args.data_uri,
                  s3_object_versions=parse_object_versions(args.s3_object_version), team_hook=args.team_hook,
                  score_rows=args.score_rows)
    print(f"preprocess: rows {lineage['rows']}, data sha256 {lineage['data_version']['sha256']}")
    return lineage


def entry(argv: Sequence[str] | None = None) -> int:
    """The step's process: a team hook's failure is one line on stderr and exit 1 (the job fails)."""
    try:
        main(argv)
    except TeamHookError as err:
        print(f"preprocessing hook: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(entry())
