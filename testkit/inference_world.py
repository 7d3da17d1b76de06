"""Test kit for the inference API: the schema, API Gateway events, a small fallback model document, and
the AWS resources the serving stack provides (breaker table, response-cache table, Firehose stream into the
capture bucket, fallback document in S3), created in moto.

moto's Firehose delivers each PutRecord to S3 at once (one object per record under the stream's prefix),
so counting the lines under the prefix counts what was logged.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlcore.fallback import FallbackModel
from mlcore.features import FeatureTransformer
from mlsettings.schema import DataSchema

REGION = "eu-west-1"
ACCOUNT = "123456789012"
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "pipelines" / "schemas" / "breast_cancer.json"
ENDPOINT_NAME = "mlops-dev-endpoint"
BREAKER_TABLE = "inference-breaker"
CACHE_TABLE = "inference-response-cache"
CAPTURE_BUCKET = "inference-capture"
LOG_PREFIX = "inference-api/"
STREAM_NAME = "inference-prediction-log"
ARTIFACT_BUCKET = "inference-artifacts"
FALLBACK_KEY = "fallback/v7/fallback.json"


def load_schema() -> DataSchema:
    return DataSchema.load(SCHEMA_PATH)


def fallback_document(schema: DataSchema) -> dict[str, Any]:
    """A tiny but real fallback model: standardise, weight two features, logistic link."""
    names = FeatureTransformer.from_schema(schema).output_names
    width = len(names)
    coef = [0.0] * width
    coef[0], coef[1] = 1.5, 0.5
    model = FallbackModel(schema=schema, feature_names=names, impute=tuple([1.0] * width),
                          mean=tuple([14.0] * width), scale=tuple([3.5] * width), coef=tuple(coef),
                          intercept=-0.2, metrics={"roc_auc": 0.9})
    return model.to_dict()


def random_row(rng: random.Random, schema: DataSchema) -> list[float]:
    """Plausible values inside each feature's range, rounded so that repeats (cache hits) happen."""
    row = []
    for feature in schema.features:
        low = feature.min if feature.min is not None else 0.0
        high = feature.max if feature.max is not None else 1.0
        row.append(round(rng.uniform(low, high / 4), 1))
    return row


def api_event(body: Any, *, request_id: str = "req-1", raw: bool = False,
              base64_encoded: bool = False) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event with IAM auth."""
    return {
        "version": "2.0",
        "routeKey": "POST /predict",
        "rawPath": "/predict",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": ACCOUNT, "apiId": "api123", "requestId": request_id, "stage": "$default",
            "http": {"method": "POST", "path": "/predict", "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1"},
            "authorizer": {"iam": {"accountId": ACCOUNT, "userArn": f"arn:aws:iam::{ACCOUNT}:user/caller"}},
        },
        "body": body if raw else json.dumps(body),
        "isBase64Encoded": base64_encoded,
    }


def create_resources(session: Any, schema: DataSchema) -> None:
    """What the serving stack provides, in moto."""
    dynamodb = session.client("dynamodb", region_name=REGION)
    for table, key in ((BREAKER_TABLE, "breaker_id"), (CACHE_TABLE, "cache_key")):
        dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
    dynamodb.update_time_to_live(TableName=CACHE_TABLE,
                                 TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    s3 = session.client("s3", region_name=REGION)
    for bucket in (CAPTURE_BUCKET, ARTIFACT_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=FALLBACK_KEY, Body=json.dumps(fallback_document(schema)))
    session.client("firehose", region_name=REGION).create_delivery_stream(
        DeliveryStreamName=STREAM_NAME, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose", "BucketARN": f"arn:aws:s3:::{CAPTURE_BUCKET}",
            "Prefix": LOG_PREFIX, "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 5}})


def environment(**overrides: str) -> dict[str, str]:
    """The inference function's environment through its contract (the configuration's defaults where a test does
    not care), then ``overrides`` as raw variables."""
    from mlsettings.config import InferenceApiSettings
    from mlsettings.functions.contracts import InferenceEnvironment

    api = InferenceApiSettings()
    env = InferenceEnvironment(
        endpoint_name=ENDPOINT_NAME, data_schema_path=str(SCHEMA_PATH), breaker_table_name=BREAKER_TABLE,
        response_cache_table_name=CACHE_TABLE, prediction_log_stream_name=STREAM_NAME,
        fallback_model_bucket=ARTIFACT_BUCKET, fallback_model_key=FALLBACK_KEY, safe_default_probability=0.5,
        endpoint_connect_timeout_seconds=1, endpoint_read_timeout_seconds=2, endpoint_max_attempts=api.max_attempts,
        breaker_failure_threshold=3, breaker_cooldown_seconds=30, response_cache_ttl_seconds=api.cache_ttl_seconds,
        max_rows=api.max_rows, max_body_bytes=api.max_body_bytes).to_env()
    env["AWS_DEFAULT_REGION"] = REGION
    env.update(overrides)
    return env


def logged_lines(session: Any) -> list[dict[str, Any]]:
    """Every JSONL line Firehose delivered under the API's prefix in the capture bucket."""
    s3 = session.client("s3", region_name=REGION)
    lines: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=CAPTURE_BUCKET, Prefix=LOG_PREFIX):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=CAPTURE_BUCKET, Key=obj["Key"])["Body"].read().decode("utf-8")
            assert body.endswith("\n"), "each Firehose record must end with a newline"
            lines.extend(json.loads(line) for line in body.splitlines())
    return lines


RESPONSE_KEYS = frozenset({"inference_id", "source", "degraded", "degradation_reason", "model_version",
                           "predictions"})


def assert_valid_answer(body: Mapping[str, Any], rows: int) -> None:
    """The response contract every 200 answer must meet, whatever served it."""
    assert set(body) == RESPONSE_KEYS
    assert body["source"] in ("endpoint", "fallback_model", "cache", "default")
    assert body["degraded"] is (body["source"] != "endpoint")
    assert (body["degradation_reason"] is None) is (body["source"] == "endpoint")
    assert isinstance(body["model_version"], str) and body["model_version"]
    assert isinstance(body["inference_id"], str) and body["inference_id"]
    predictions: Sequence[Mapping[str, Any]] = body["predictions"]
    assert len(predictions) == rows
    for prediction in predictions:
        assert set(prediction) == {"probability", "label"}
        assert isinstance(prediction["probability"], float)
        assert 0.0 <= prediction["probability"] <= 1.0
        assert prediction["label"] == (1 if prediction["probability"] >= 0.5 else 0)
