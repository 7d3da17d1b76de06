"""Loads the fallback model the training pipeline exported, once per execution environment.

The document (JSON in S3) is the model's kind's fallback (``mlcore.fallback``: a logistic regression, class priors
or the target's median), scored in pure Python, so the Lambda needs no numpy or xgboost. A missing or unreadable
document is not fatal: the service then degrades
straight to the response cache and the safe default, and the load failure is logged at cold start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from mlplatform.inference.request_validation import Row
from mlsettings.schema import DataSchema


class FallbackModelUnavailable(Exception):
    """The fallback document could not be fetched or parsed; the message says which and why."""


class RowModel(Protocol):
    def predict_row(self, raw_row: Sequence[Any]) -> Any: ...


class S3Client(Protocol):
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...


class FallbackModelScorer:
    """Adapts a row-at-a-time model to the service's batch ``score`` and names its version."""

    def __init__(self, model: RowModel, *, model_version: str) -> None:
        self._model = model
        self._model_version = model_version

    @property
    def model_version(self) -> str:
        return self._model_version

    def score(self, rows: Sequence[Row]) -> tuple[Any, ...]:
        """One answer per row in the model's kind's shape (a probability for a binary model)."""
        return tuple(self._model.predict_row(list(row)) for row in rows)


def fallback_model_version(doc: dict[str, Any], *, bucket: str, key: str) -> str:
    """The version the exporter wrote into the document, else the S3 location (still traceable)."""
    for field in ("model_version", "version"):
        value = doc.get(field)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return f"fallback/{value}"
    return f"fallback/s3://{bucket}/{key}"


def load_fallback_scorer(s3_client: S3Client, *, bucket: str, key: str,
                         schema: DataSchema) -> FallbackModelScorer:
    # Imported here, not at module level: only cold start needs it, and a broken fallback module must
    # not stop the handler from importing and serving from the endpoint.
    from mlcore.fallback import fallback_from_dict

    try:
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        doc = json.loads(body)
    except Exception as err:  # botocore, JSON and I/O errors all mean the same thing here
        raise FallbackModelUnavailable(f"s3://{bucket}/{key}: {type(err).__name__}: {err}") from err
    if not isinstance(doc, dict):
        raise FallbackModelUnavailable(f"s3://{bucket}/{key}: expected a JSON object")
    try:
        model = fallback_from_dict(doc)
    except Exception as err:
        raise FallbackModelUnavailable(f"s3://{bucket}/{key}: {type(err).__name__}: {err}") from err
    # Rows arrive in the API schema's order; a fallback fitted on another layout would score garbage.
    if tuple(model.schema.feature_names) != schema.feature_names:
        raise FallbackModelUnavailable(
            f"s3://{bucket}/{key}: its schema's features differ from the API schema {schema.name!r} "
            f"(v{schema.version})")
    return FallbackModelScorer(model, model_version=fallback_model_version(doc, bucket=bucket, key=key))
