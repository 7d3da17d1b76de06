"""The inference API per kind of model (issue 25): a multiclass and a regression model answer from the endpoint in
their kind's shape, degrade to their kind's fallback (class priors, target median) and safe default, refuse an
endpoint answer that is not valid for the kind, and log what they answered in the capture format the drift
monitor reads back."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from mlcore.drift.capture import parse_capture_line
from mlcore.fallback import ClassPriorsFallback, TargetMedianFallback
from mlplatform.inference.circuit_breaker import BreakerSettings, CircuitBreaker
from mlplatform.inference.degradation import InferenceService, ServiceSettings
from mlplatform.inference.fallback_loading import FallbackModelScorer
from mlplatform.inference.request_validation import ValidationLimits
from mlsettings.schema import DataSchema
from pipelines.datasets import REPO_SCHEMAS
from testkit.inference_doubles import (
    CountingMetrics,
    InMemoryBreakerStore,
    InMemoryPredictionLog,
    InMemoryResponseCache,
    SilentLogger,
)

NOW = 1_750_000_000.0
WINE = DataSchema.load(REPO_SCHEMAS / "wine.json")
DIABETES = DataSchema.load(REPO_SCHEMAS / "diabetes.json")


class KindEndpoint:
    """Answers every row with one CSV line, or fails as a model error when ``line`` is None."""

    def __init__(self, line: str | None) -> None:
        self.line = line

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if self.line is None:
            raise ClientError({"Error": {"Code": "ModelError", "Message": "boom"}}, "InvokeEndpoint")
        rows = kwargs["Body"].decode().strip().split("\n")
        return {"Body": io.BytesIO(("\n".join(self.line for _ in rows) + "\n").encode()),
                "InvokedProductionVariant": "Champion"}


def _service(schema: DataSchema, endpoint: KindEndpoint, fallback: Any = None) -> tuple[InferenceService, Any]:
    log = InMemoryPredictionLog()
    service = InferenceService(
        schema=schema, settings=ServiceSettings(endpoint_name="ep", limits=ValidationLimits(max_rows=10,
                                                                                            max_body_bytes=65536),
                                                safe_default_probability=0.5),
        sagemaker_runtime=endpoint,
        breaker=CircuitBreaker(store=InMemoryBreakerStore(), clock=lambda: NOW, settings=BreakerSettings(
            failure_threshold=3, cooldown_seconds=30, state_cache_seconds=0, trial_timeout_seconds=5)),
        response_cache=InMemoryResponseCache(), prediction_log=log, fallback_model=fallback,
        metrics=CountingMetrics(), logger=SilentLogger(), clock=lambda: NOW)
    return service, log


def _call(service: InferenceService, schema: DataSchema, rows: int = 2) -> dict[str, Any]:
    row = [((f.min or 0.0) + (f.max or 0.0)) / 2 for f in schema.features]  # inside every declared range
    response = service.handle({"body": json.dumps({"instances": [row] * rows})}, request_id="r-1")
    assert response["statusCode"] == 200
    body: dict[str, Any] = json.loads(response["body"])
    return body


def _logged(log: Any, schema: DataSchema) -> list[Any]:
    (line,) = log.lines
    return parse_capture_line(line, n_features=len(schema.feature_names), label=schema.label).answers


def test_a_multiclass_model_answers_with_label_and_probabilities() -> None:
    service, log = _service(WINE, KindEndpoint("1,0.1,0.7,0.2"))
    body = _call(service, WINE)
    assert body["source"] == "endpoint"
    assert body["predictions"] == [{"label": 1, "probabilities": [0.1, 0.7, 0.2]}] * 2
    assert _logged(log, WINE) == body["predictions"]


def test_a_multiclass_model_degrades_to_its_class_priors() -> None:
    priors = ClassPriorsFallback(schema=WINE, priors=(0.3, 0.5, 0.2))
    service, log = _service(WINE, KindEndpoint(None), FallbackModelScorer(priors, model_version="fallback/1"))
    body = _call(service, WINE)
    assert (body["source"], body["degradation_reason"]) == ("fallback_model", "model_error")
    assert body["predictions"] == [{"label": 1, "probabilities": [0.3, 0.5, 0.2]}] * 2
    assert _logged(log, WINE) == body["predictions"]


@pytest.mark.parametrize("line", ["1,0.1,0.7,0.5", "7,0.1,0.7,0.2", "0.9"])
def test_an_answer_invalid_for_the_kind_is_an_endpoint_failure(line: str) -> None:
    service, _ = _service(WINE, KindEndpoint(line))
    body = _call(service, WINE, rows=1)
    assert (body["source"], body["degradation_reason"]) == ("default", "invalid_output")
    assert body["predictions"] == [{"label": 0, "probabilities": [1 / 3] * 3}]


def test_a_regression_model_answers_values_and_degrades_to_its_median_then_the_range_middle() -> None:
    service, log = _service(DIABETES, KindEndpoint("151.5"))
    assert _call(service, DIABETES)["predictions"] == [{"value": 151.5}] * 2
    assert _logged(log, DIABETES) == [151.5, 151.5]

    median = TargetMedianFallback(schema=DIABETES, median=140.0)
    service, _ = _service(DIABETES, KindEndpoint(None), FallbackModelScorer(median, model_version="fallback/1"))
    assert _call(service, DIABETES)["predictions"] == [{"value": 140.0}] * 2

    service, _ = _service(DIABETES, KindEndpoint("999"))  # outside the schema's target range [0, 400]
    body = _call(service, DIABETES, rows=1)
    assert (body["source"], body["predictions"]) == ("default", [{"value": 200.0}])


def test_the_lambda_loads_each_kinds_fallback_document_from_s3() -> None:
    import boto3
    from moto import mock_aws

    from mlcore.fallback import FALLBACK_FORMAT
    from mlplatform.inference.fallback_loading import FallbackModelUnavailable, load_fallback_scorer

    documents = {"wine.json": {"format": FALLBACK_FORMAT, "kind": "class_priors", "schema": WINE.to_dict(),
                               "priors": [0.3, 0.4, 0.3], "model_version": "7"},
                 "diabetes.json": {"format": FALLBACK_FORMAT, "kind": "target_median", "schema": DIABETES.to_dict(),
                                   "median": 140.0}}
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for key, doc in documents.items():
            s3.put_object(Bucket="models", Key=key, Body=json.dumps(doc).encode())
        wine = load_fallback_scorer(s3, bucket="models", key="wine.json", schema=WINE)
        diabetes = load_fallback_scorer(s3, bucket="models", key="diabetes.json", schema=DIABETES)
        with pytest.raises(FallbackModelUnavailable, match="features differ"):
            load_fallback_scorer(s3, bucket="models", key="diabetes.json", schema=WINE)
    row = tuple(((f.min or 0.0) + (f.max or 0.0)) / 2 for f in WINE.features)
    assert wine.score([row]) == ({"label": 1, "probabilities": [0.3, 0.4, 0.3]},)
    assert wine.model_version == "fallback/7"
    assert diabetes.score([tuple(1.0 for _ in DIABETES.features)]) == (140.0,)
