"""Example data sets as CSV files, and the one way the step scripts read raw CSV.

* ``BUNDLED_FILES``: one data set per kind of model, shipped as files in ``pipelines/data/`` (source and licence
  in its README): breast cancer (binary), wine (multiclass), diabetes (regression), each with its schema in
  ``pipelines/schemas/``. ``write_bundled_csv`` copies one by its schema's name.
* ``write_synthetic_csv`` + ``synthetic_schema``: a differently shaped data set (categorical features,
  nullable columns with real nulls, a text label "yes"/"no") that proves the steps are schema-driven: it
  runs through the same code with no change. It also scales to the benchmark's million rows.
* ``shuffle_labels``: a deliberately degraded copy (labels permuted), so the quality gate has something to
  stop.

Raw CSV files have a header row; every value is read as text (``read_raw_csv``) so the feature transform,
not pandas' type guessing, decides what a value means — exactly as the endpoint sees request bodies.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SYNTHETIC_SCHEMA_NAME = "synthetic_churn"


GZIP_MAGIC = b"\x1f\x8b"
NEWLINE = b"\n"


class RawDataError(ValueError):
    """An input file that cannot be read as a raw CSV table; the message names the file."""


def read_raw_csv(paths: Path | Iterable[Path]) -> pd.DataFrame:
    """One or more raw CSV files (same header) as one DataFrame of strings; empty cells are ``""``.

    An empty file (no header) raises ``RawDataError``; a header-only file gives zero rows, which callers
    report as empty.
    """
    files = [paths] if isinstance(paths, Path) else list(paths)
    if not files:
        raise RawDataError("no input CSV files")
    frames: list[pd.DataFrame] = []
    for path in files:
        with path.open("rb") as head:
            magic = head.read(4)
        if magic[:2] == GZIP_MAGIC:
            raise RawDataError(f"{path.name}: gzip-compressed data, not CSV text; decompress it first")
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                                skipinitialspace=True, encoding="utf-8")
        except pd.errors.EmptyDataError:
            raise RawDataError(f"{path.name}: the file is empty (no header, no rows)") from None
        except pd.errors.ParserError as err:
            raise RawDataError(f"{path.name}: not a readable CSV file ({str(err).strip()})") from None
        except UnicodeDecodeError:
            raise RawDataError(f"{path.name}: not UTF-8 text ({_first_invalid_utf8(path)}); save it as UTF-8 CSV") \
                from None
        if frames and list(frame.columns) != list(frames[0].columns):
            raise RawDataError(f"{path.name}: its header {list(frame.columns)} differs from "
                               f"{files[0].name}'s {list(frames[0].columns)}")
        frames.append(frame)
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _first_invalid_utf8(path: Path) -> str:
    """Where a file stops being UTF-8: the byte, its line and its offset in the file (read in chunks)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                at = err.start
                if at >= len(chunk):
                    return f"a truncated character at offset {offset + len(chunk)}"
                line = lines + chunk[:at].count(NEWLINE)
                return f"byte {chunk[at]:#04x} on line {line}, offset {offset + at}"
            offset, lines = offset + len(chunk), lines + chunk.count(NEWLINE)
    return "an invalid byte"


def feature_rows(frame: pd.DataFrame, names: Sequence[str]) -> list[list[str]]:
    """A raw table's feature columns, in ``names``' order, as the strings a request carries."""
    rows: list[list[str]] = frame[list(names)].to_numpy(dtype=object).astype(str).tolist()
    return rows


def csv_body(rows: Sequence[Sequence[str]]) -> str:
    """Raw rows as a text/csv request body (values quoted only where CSV needs it)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def csv_files_in(directory: Path) -> list[Path]:
    """The CSV files of an input folder (a SageMaker channel or processing input), in name order."""
    if directory.is_file():
        return [directory]
    return sorted(p for p in directory.rglob("*.csv") if p.is_file())


DATA_DIR = Path(__file__).resolve().parent / "data"
REPO_SCHEMAS = Path(__file__).resolve().parent / "schemas"
BUNDLED_FILES: dict[str, str] = {"breast_cancer": "breast_cancer.csv", "wine": "wine.csv", "diabetes": "diabetes.csv"}
"""The shipped data file of each bundled schema (by the schema's ``name``), in ``pipelines/data/``."""


def _copy_bundled(file_name: str) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA_DIR / file_name, path)
        return path
    return write


def write_breast_cancer_csv(path: Path) -> Path:
    """Scikit-learn's breast-cancer data (569 rows, 30 features, label ``target``), from the shipped file."""
    return _copy_bundled(BUNDLED_FILES["breast_cancer"])(path)


def scikit_learn_frames() -> dict[str, pd.DataFrame]:
    """The bundled data sets as scikit-learn 1.9.1 loads them (what ``pipelines/data/`` was written from)."""
    from sklearn import datasets  # only here: the step containers and the CLI do not need it

    bunches: dict[str, Any] = {"breast_cancer": datasets.load_breast_cancer(as_frame=True),
                               "wine": datasets.load_wine(as_frame=True),
                               "diabetes": datasets.load_diabetes(as_frame=True, scaled=False)}
    return {name: bunch.frame for name, bunch in bunches.items()}


def synthetic_schema() -> dict[str, Any]:
    """The schema document of ``write_synthetic_csv``'s data."""
    return {
        "name": SYNTHETIC_SCHEMA_NAME,
        "version": 1,
        "label": {"name": "churned", "positive": "yes", "negative": "no"},
        "features": [
            {"name": "tenure_months", "type": "numeric", "min": 0, "max": 120, "nullable": False},
            {"name": "monthly_charges", "type": "numeric", "min": 0, "max": 500, "nullable": True,
             "max_missing_rate": 0.2},
            {"name": "plan", "type": "categorical", "categories": ["basic", "plus", "premium"],
             "nullable": False},
            {"name": "region", "type": "categorical", "categories": ["north", "south", "east", "west"],
             "nullable": True, "max_missing_rate": 0.3},
            {"name": "support_calls", "type": "numeric", "min": 0, "max": 50, "nullable": False},
        ],
    }


def synthetic_frame(rows: int = 2000, *, seed: int = 0) -> pd.DataFrame:
    """Synthetic churn data whose label depends on several features (so a model can learn it)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 121, size=rows)
    charges = np.round(rng.gamma(4.0, 20.0, size=rows).clip(1, 499), 2)
    plan = rng.choice(["basic", "plus", "premium"], size=rows, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], size=rows)
    calls = rng.poisson(2.0, size=rows).clip(0, 50)
    logit = (1.2 - 0.04 * tenure + 0.012 * charges + 0.45 * calls
             - 0.9 * (plan == "premium") + 0.5 * (region == "south"))
    churned = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame({
        "tenure_months": tenure.astype(str),
        "monthly_charges": charges.astype(str),
        "plan": plan,
        "region": region.astype(object),
        "support_calls": calls.astype(str),
        "churned": np.where(churned, "yes", "no"),
    })
    # Nulls the schema allows: ~8 % of charges and ~10 % of regions are blank.
    frame.loc[rng.random(rows) < 0.08, "monthly_charges"] = ""
    frame.loc[rng.random(rows) < 0.10, "region"] = ""
    return frame


def write_synthetic_csv(path: Path, *, rows: int = 2000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_frame(rows, seed=seed).to_csv(path, index=False)
    return path


def shuffle_labels(source: Path, destination: Path, *, label: str, seed: int = 0) -> Path:
    """Copy a raw CSV with its label column randomly permuted: same class balance, no signal left."""
    frame = read_raw_csv(source)
    rng = np.random.default_rng(seed)
    frame[label] = rng.permutation(frame[label].to_numpy())
    destination.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(destination, index=False)
    return destination


BUNDLED: dict[str, Callable[[Path], Path]] = {}
"""The bundled data set of each bundled schema (by the schema's ``name``): what a local run trains on when no data
is given, and what the demo uploads for each model."""


def write_bundled_csv(schema_name: str, path: Path) -> Path:
    """The bundled data of the schema named ``schema_name``, written to ``path``."""
    writer = BUNDLED.get(schema_name)
    if writer is None:
        raise ValueError(f"no bundled data set for schema {schema_name!r}; bundled: {', '.join(sorted(BUNDLED))}")
    return writer(path)


BUNDLED.update({name: _copy_bundled(file_name) for name, file_name in BUNDLED_FILES.items()})
BUNDLED[SYNTHETIC_SCHEMA_NAME] = write_synthetic_csv


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rewrite pipelines/data/ from scikit-learn's bundled copies.")
    parser.add_argument("--regenerate", action="store_true", required=True)
    parser.parse_args(argv)
    for name, frame in scikit_learn_frames().items():
        frame.to_csv(DATA_DIR / BUNDLED_FILES[name], index=False)
        print(f"wrote {DATA_DIR / BUNDLED_FILES[name]} ({len(frame)} rows)")


if __name__ == "__main__":
    main()
