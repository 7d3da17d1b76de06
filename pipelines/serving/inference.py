"""Endpoint inference handler for SageMaker's XGBoost framework container (script mode).

The train step copies this file and the standard-library part of ``mlcore`` into ``<model>/code/``; the
model is deployed with ``SAGEMAKER_PROGRAM=inference.py`` and ``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code``,
so the container's serving toolkit imports it next to the model. Batch transform uses the same handler.

Requests: raw rows, never features — the features are computed here by ``mlcore.features`` (the same code
as training), so clients cannot drift from the training transform.

* ``text/csv``: one row per line, values in schema feature order, no label; an optional header line equal
  to the feature names is skipped;
* ``application/json``: ``{"instances": [row, ...]}``, a list of rows, or one row; a row is an object keyed
  by feature name or a list in schema order.

Responses: the positive-class probability per row, in request order.

* ``text/csv`` (default, also for ``*/*``): one probability per line;
* ``application/json``: ``{"predictions": [p, ...], "malformed": n, "errors": [{"row": i, "error": …}]}``.

A malformed row never fails the batch: its prediction is empty (CSV) or ``null`` (JSON) and it is counted.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Imported as a top-level module by the serving toolkit, or run from a checkout: make mlcore importable
    # both from <model>/code/ (copied beside this file) and from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(1, str(Path(__file__).resolve().parents[2]))

import numpy as np
import xgboost as xgb

from mlcore.features import FeatureError, FeatureTransformer
from mlcore.schema import DataSchema

MODEL_FILE = "xgboost-model.json"
SCHEMA_FILE = "schema.json"
FALLBACK_FILE = "fallback.json"
ARTIFACT_NAME = "model.tar.gz"
CSV, JSON = "text/csv", "application/json"


class UnsupportedContentTypeError(ValueError):
    """The request or accept content type is not one this handler speaks."""


@dataclass(frozen=True)
class ServingModel:
    booster: xgb.Booster
    schema: DataSchema
    transformer: FeatureTransformer
    model_dir: Path


@dataclass
class RawBatch:
    """Parsed request rows; ``errors`` holds rows that could not even be parsed (by request position)."""

    rows: list[Mapping[str, Any] | Sequence[Any] | None]
    errors: dict[int, str] = field(default_factory=dict)


@dataclass
class PredictionBatch:
    probabilities: list[float | None]
    errors: dict[int, str]


def resolve_model_dir(path: Path, scratch: Path) -> Path:
    """A model folder from either a folder or SageMaker's ``model.tar.gz`` (a file, or a folder holding it).

    Processing steps receive the training job's ``S3ModelArtifacts`` as the tarball; this extracts it into
    ``scratch`` so evaluate/baseline load exactly what the endpoint will load.
    """
    archive = path if path.is_file() else path / ARTIFACT_NAME
    if not archive.is_file():
        return path
    scratch.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(scratch, filter="data")
    return scratch


def model_fn(model_dir: str | Path, context: Any = None) -> ServingModel:
    directory = Path(model_dir)
    booster = xgb.Booster()
    booster.load_model(str(directory / MODEL_FILE))
    schema = DataSchema.load(directory / SCHEMA_FILE)
    transformer = FeatureTransformer.from_schema(schema)
    if booster.num_features() != len(transformer.output_names):
        raise ValueError(f"the model expects {booster.num_features()} features but schema {schema.name!r} "
                         f"produces {len(transformer.output_names)}")
    return ServingModel(booster=booster, schema=schema, transformer=transformer, model_dir=directory)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _parse_csv(text: str) -> RawBatch:
    rows: list[Mapping[str, Any] | Sequence[Any] | None] = [
        [value.strip() for value in line] for line in csv.reader(io.StringIO(text)) if line and any(line)]
    return RawBatch(rows=rows)


def _parse_json(text: str) -> RawBatch:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"the request body is not valid JSON ({err})") from None
    if isinstance(doc, Mapping) and "instances" in doc:
        items = doc["instances"]
    elif isinstance(doc, list):
        items = doc
    else:
        items = [doc]
    if not isinstance(items, list):
        raise ValueError("'instances' must be a list of rows")
    # A list of scalars is one row in schema order, not many one-value rows.
    if items and not any(isinstance(item, Mapping | list) for item in items):
        items = [items]
    batch = RawBatch(rows=[])
    for position, item in enumerate(items):
        if isinstance(item, Mapping | list):
            batch.rows.append(item)
        else:
            batch.rows.append(None)
            batch.errors[position] = f"a row must be an object or a list, got {type(item).__name__}"
    return batch


def input_fn(request_body: str | bytes, request_content_type: str | None, context: Any = None) -> RawBatch:
    text = request_body.decode("utf-8") if isinstance(request_body, bytes | bytearray) else request_body
    media = _media_type(request_content_type)
    if media == CSV:
        return _parse_csv(text)
    if media == JSON:
        return _parse_json(text)
    raise UnsupportedContentTypeError(f"content type {request_content_type!r} is not supported; "
                                      f"send {CSV} or {JSON}")


def predict_fn(batch: RawBatch, model: ServingModel, context: Any = None) -> PredictionBatch:
    errors = dict(batch.errors)
    rows = batch.rows
    # A header line equal to the feature names is a convenience for people pasting CSV; skip it.
    if rows and isinstance(rows[0], list) and tuple(rows[0]) == model.schema.feature_names:
        rows = rows[1:]
        errors = {position - 1: error for position, error in errors.items()}
    features: list[list[float]] = []
    valid: list[int] = []
    for position, row in enumerate(rows):
        if row is None or position in errors:
            continue
        try:
            features.append(model.transformer.transform_row(row))
            valid.append(position)
        except FeatureError as err:
            errors[position] = str(err)
    probabilities: list[float | None] = [None] * len(rows)
    if features:
        matrix = np.asarray(features, dtype=np.float64)
        predicted = model.booster.predict(xgb.DMatrix(matrix, missing=np.nan))
        for position, probability in zip(valid, predicted.tolist(), strict=True):
            probabilities[position] = float(probability)
    return PredictionBatch(probabilities=probabilities, errors=errors)


def output_fn(prediction: PredictionBatch, accept: str | None, context: Any = None) -> str:
    media = _media_type(accept)
    if media in ("", "*/*", CSV):
        return "".join(f"{'' if p is None else repr(p)}\n" for p in prediction.probabilities)
    if media == JSON:
        return json.dumps({
            "predictions": prediction.probabilities,
            "malformed": len(prediction.errors),
            "errors": [{"row": row, "error": error} for row, error in sorted(prediction.errors.items())],
        })
    raise UnsupportedContentTypeError(f"accept type {accept!r} is not supported; ask for {CSV} or {JSON}")


def predict_raw_rows(model: ServingModel, rows: Sequence[Mapping[str, Any] | Sequence[Any]]) -> list[float | None]:
    """The endpoint's prediction for raw rows, without the HTTP encoding (evaluate and baseline use it)."""
    return predict_fn(RawBatch(rows=list(rows)), model).probabilities
