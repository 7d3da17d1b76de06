"""Training/serving feature identity, and the endpoint handler's content types and malformed rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcore.features import FeatureTransformer
from mlsettings.schema import DataSchema
from mlsettings.vocabulary import FALLBACK_FILE
from pipelines.datasets import read_raw_csv, synthetic_schema, write_synthetic_csv
from pipelines.serving import inference
from pipelines.steps import preprocess, train


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serving")
    schema_path = root / "schema.json"
    schema_path.write_text(json.dumps(synthetic_schema()))
    data = write_synthetic_csv(root / "input" / "data.csv", rows=600, seed=11)
    preprocess.main(["--input-dir", str(data.parent), "--schema", str(schema_path), "--output-dir",
                     str(root / "out")])
    out = root / "out"
    train.main(["--train", str(out / "train"), "--validation", str(out / "validation"), "--test", str(out / "test"),
                "--metadata", str(out / "metadata"), "--model-dir", str(root / "model"),
                "--checkpoint-dir", str(root / "ckpt"), "--output-data-dir", str(root / "output"),
                "--num_round", "10"])
    return root


def test_training_and_serving_produce_identical_features_for_the_same_raw_rows(workspace: Path) -> None:
    out = workspace / "out"
    raw = read_raw_csv(out / "test_raw" / "test_raw.csv")
    written = pd.read_csv(out / "test" / "test.csv", header=None).to_numpy(dtype=np.float64)[:, 1:]
    model = inference.model_fn(workspace / "model")
    # The serving path: a CSV request body of the raw rows, parsed by the handler, transformed by its model.
    body = raw[list(model.schema.feature_names)].to_csv(header=False, index=False)
    batch = inference.parse_request(body, "text/csv")
    served = np.asarray([model.transformer.transform_row(row) for row in batch.rows])  # type: ignore[arg-type]
    assert served.shape == written.shape
    np.testing.assert_array_equal(np.isnan(served), np.isnan(written))
    np.testing.assert_array_equal(np.nan_to_num(served, nan=-1.0), np.nan_to_num(written, nan=-1.0))
    assert np.isnan(written).any()  # the synthetic data's nulls made it through both paths


def test_csv_and_json_requests_give_the_same_probabilities(workspace: Path) -> None:
    model = inference.model_fn(workspace / "model")
    rows = [["12", "80.5", "plus", "north", "3"], ["90", "", "premium", "", "0"]]
    names = model.schema.feature_names
    csv_out = inference.transform_fn(model, "\n".join(",".join(r) for r in rows), "text/csv", "text/csv").body.decode()
    json_out = json.loads(inference.transform_fn(
        model, json.dumps({"instances": [dict(zip(names, r, strict=True)) for r in rows]}).encode(),
        "application/json; charset=utf-8", "application/json").body)
    list_out = json.loads(inference.transform_fn(model, json.dumps(rows[0]), "application/json",
                                                 "application/json").body)
    csv_probabilities = [float(line) for line in csv_out.splitlines()]
    assert json_out["predictions"] == pytest.approx(csv_probabilities, abs=1e-12)
    assert list_out["predictions"] == pytest.approx(csv_probabilities[:1], abs=1e-12)
    assert all(0.0 <= p <= 1.0 for p in csv_probabilities)


def test_a_malformed_row_is_counted_and_does_not_fail_the_batch(workspace: Path) -> None:
    model = inference.model_fn(workspace / "model")
    header = ",".join(model.schema.feature_names)
    body = f"{header}\n12,80,plus,north,3\nlots,80,plus,north,3\n5,10,basic,south,1\n"
    prediction = inference.predict_batch(inference.parse_request(body, "text/csv"), model)
    document = json.loads(inference.encode_response(prediction, inference.JSON, model.output))
    assert document["malformed"] == 1 and document["errors"][0]["row"] == 1
    assert "tenure_months" in document["errors"][0]["error"]
    assert document["predictions"][1] is None and all(isinstance(document["predictions"][i], float) for i in (0, 2))
    assert inference.encode_response(prediction, inference.CSV, model.output).decode().splitlines()[1] == ""


@pytest.mark.parametrize("content_type", ["application/x-parquet", None])
def test_unsupported_content_types_are_refused_by_name(workspace: Path, content_type: str | None) -> None:
    with pytest.raises(inference.UnsupportedContentTypeError, match="not supported"):
        inference.parse_request("1,2", content_type)
    model = inference.model_fn(workspace / "model")
    answer = inference.transform_fn(model, "1,2", content_type, "text/csv")
    assert (answer.status, answer.content_type) == (415, "application/json")
    assert "not supported" in json.loads(answer.body)["message"]


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "text/csv"), ("", "text/csv"), ("*/*", "text/csv"), ("text/csv", "text/csv"),
    ("application/json", "application/json"), ("text/csv;q=0.5, application/json", "application/json"),
    ("application/json;q=0.2, text/csv;q=0.9", "text/csv"), ("text/html, application/json;q=0.1", "application/json"),
])
def test_the_response_media_type_follows_accept(workspace: Path, accept: str | None, expected: str) -> None:
    model = inference.model_fn(workspace / "model")
    answer = inference.transform_fn(model, "12,80.5,plus,north,3", "text/csv", accept)
    assert (answer.status, answer.content_type) == (200, expected)


@pytest.mark.parametrize("accept", ["text/html", "application/x-protobuf", "application/json;q=0"])
def test_an_accept_with_no_supported_type_answers_406(workspace: Path, accept: str) -> None:
    model = inference.model_fn(workspace / "model")
    answer = inference.transform_fn(model, "12,80.5,plus,north,3", "text/csv", accept)
    assert (answer.status, answer.content_type) == (406, "application/json")
    assert json.loads(answer.body)["error"] == "NotAcceptable"


@pytest.mark.parametrize(("body", "content_type"), [("{not json", "application/json"),
                                                     (b"\xff\xfe1,2", "text/csv")])
def test_an_unreadable_body_answers_400_with_a_reason(workspace: Path, body: str | bytes, content_type: str) -> None:
    model = inference.model_fn(workspace / "model")
    answer = inference.transform_fn(model, body, content_type, "application/json")
    assert answer.status == 400 and json.loads(answer.body)["error"] == "BadRequest"


def test_the_module_exposes_only_the_hooks_the_framework_accepts_together() -> None:
    # sagemaker-xgboost-container's serving.py refuses transform_fn beside input_fn/predict_fn/output_fn.
    assert callable(inference.transform_fn) and callable(inference.model_fn)
    assert not {"input_fn", "predict_fn", "output_fn"} & set(vars(inference))


def test_model_and_schema_must_agree(workspace: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / inference.MODEL_FILE).write_bytes((workspace / "model" / inference.MODEL_FILE).read_bytes())
    (model_dir / inference.SCHEMA_FILE).write_text(Path("pipelines/schemas/breast_cancer.json").read_text())
    with pytest.raises(ValueError, match="expects 10 features"):
        inference.model_fn(model_dir)


def test_fallback_features_are_the_transformer_features(workspace: Path) -> None:
    doc = json.loads((workspace / "model" / FALLBACK_FILE).read_text())
    schema = DataSchema.from_dict(doc["schema"])
    assert tuple(doc["feature_names"]) == FeatureTransformer.from_schema(schema).output_names
    assert not math.isnan(doc["metrics"]["auc"])
