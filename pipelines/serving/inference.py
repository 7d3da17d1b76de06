"""Endpoint inference handler for SageMaker's XGBoost and scikit-learn framework containers (script mode).

The model folder holds either an XGBoost Booster (``xgboost-model.json``: the platform's program and
``xgboost-script`` teams) or a fitted scikit-learn estimator (``model.joblib``: ``sklearn-script`` teams); each is
loaded with its own library, imported only then, so the handler runs in either image.

The train step copies this file and the standard-library part of ``mlcore`` into ``<model>/code/``; the
model is deployed with ``SAGEMAKER_PROGRAM=inference.py`` and ``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code``,
so the container's serving toolkit imports it next to the model. Batch transform uses the same handler.

How the toolkit calls it (sagemaker-containers 2.8.6.post2 under the XGBoost framework's ``serving.py``, read
from the real code and checked by tests/contract/): only ``model_fn`` and ``transform_fn`` are defined here, so
the framework builds ``Transformer(model_fn=model_fn, transform_fn=transform_fn)``. Every user function runs
inside the toolkit's error wrapper, which turns any exception into a 500; so this module never raises for a
bad request, it answers with a status of its own. ``transform_fn`` returns an :class:`Answer`, a plain WSGI
application: Flask serves it with exactly our status, ``Content-Type`` and body (a bare ``str`` would be served
as ``text/html``, a ``(body, type)`` tuple as ``type; charset=utf-8`` — neither is a media type data capture's
``CaptureContentTypeHeader`` lists).

Requests: raw rows, never features — the features are computed here by ``mlcore.features`` (the same code
as training), so clients cannot drift from the training transform.

* ``text/csv``: one row per line, values in schema feature order, no label; an optional header line equal
  to the feature names is skipped;
* ``application/json``: ``{"instances": [row, ...]}``, a list of rows, or one row; a row is an object keyed
  by feature name or a list in schema order.

Responses: one answer per row, in request order, in the output shape of the schema's kind of model
(``mlcore.outputs``: binary a score, multiclass a label and the declared classes' probabilities, regression a
value), with ``Content-Type`` exactly the media type chosen from ``Accept``:

* ``text/csv`` (also for no ``Accept`` or ``*/*``: the model sets ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
  to it, which is what the toolkit substitutes for a missing Accept): one line per row (``0.93``;
  ``<label>,<p_0>,…``; ``151.2``);
* ``application/json``: ``{"predictions": [answer, ...], "malformed": n, "errors": [{"row": i, "error": …}]}``
  (an answer: ``0.93``; ``{"label": …, "probabilities": […]}``; ``151.2``).

A malformed row never fails the batch: its prediction is empty (CSV) or ``null`` (JSON) and it is counted.
A request the handler cannot read at all answers 400, an unsupported ``Content-Type`` 415 and an ``Accept``
with no supported type 406, each with a JSON body ``{"error": …, "message": …}``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Imported as a top-level module by the serving toolkit, or run from a checkout: make mlcore importable
    # both from <model>/code/ (copied beside this file) and from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(1, str(Path(__file__).resolve().parents[2]))

import numpy as np

from mlcore.features import FeatureError, FeatureTransformer
from mlcore.outputs import OutputCodec, output_for
from mlsettings.schema import DataSchema

MODEL_FILE = "xgboost-model.json"
SKLEARN_MODEL_FILE = "model.joblib"
"""A scikit-learn estimator saved with joblib.dump: a classifier with predict_proba over the classes 0..n-1 (the
label as trained, mlsettings.problem_types), or a regressor with predict."""
SCHEMA_FILE = "schema.json"
XGBOOST, SKLEARN = "xgboost", "sklearn"
ARTIFACT_NAME = "model.tar.gz"
CSV, JSON = "text/csv", "application/json"


class UnsupportedContentTypeError(ValueError):
    """The request or accept content type is not one this handler speaks."""


@dataclass(frozen=True)
class ServingModel:
    estimator: Any
    """An xgboost.Booster, or a scikit-learn estimator (``framework``)."""
    framework: str
    """'xgboost' or 'sklearn': which file the folder held."""
    schema: DataSchema
    transformer: FeatureTransformer
    model_dir: Path
    predict: Callable[[np.ndarray], np.ndarray]
    """What the model answers for a feature matrix, in XGBoost's shape for the kind: binary the positive class's
    probability (rows,), multiclass the classes' probabilities (rows, classes), regression the value. Chosen once
    when the model is loaded (``predictor``), not per request."""

    @property
    def output(self) -> OutputCodec:
        return output_for(self.schema.label)

    def feature_importances(self) -> dict[str, float]:
        """Each feature's importance by output name (``f<i>`` in XGBoost's naming), where the model states one."""
        if self.framework == XGBOOST:
            gains = self.estimator.get_score(importance_type="total_gain")  # a float per feature for a tree booster
            return {k: float(v) for k, v in gains.items() if isinstance(v, int | float)}
        found = getattr(self.estimator, "feature_importances_", None)
        return {} if found is None else {f"f{i}": float(v) for i, v in enumerate(found)}


@dataclass
class RawBatch:
    """Parsed request rows; ``errors`` holds rows that could not even be parsed (by request position)."""

    rows: list[Mapping[str, Any] | Sequence[Any] | None]
    errors: dict[int, str] = field(default_factory=dict)


@dataclass
class PredictionBatch:
    predictions: list[Any]
    """One answer per row (mlcore.outputs), None for a row that could not be scored."""
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


def load_estimator(directory: Path) -> tuple[Any, str, int]:
    """The model of a model folder: (estimator, framework, the number of features it takes)."""
    if (directory / MODEL_FILE).is_file():
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(directory / MODEL_FILE))
        return booster, XGBOOST, booster.num_features()
    if (directory / SKLEARN_MODEL_FILE).is_file():
        import joblib

        estimator = joblib.load(directory / SKLEARN_MODEL_FILE)
        return estimator, SKLEARN, int(getattr(estimator, "n_features_in_", -1))
    raise FileNotFoundError(f"{directory} holds neither {MODEL_FILE} nor {SKLEARN_MODEL_FILE}")


def predictor(estimator: Any, framework: str, problem_type: str) -> Callable[[np.ndarray], np.ndarray]:
    """The model's answer to a feature matrix (ServingModel.predict), its library imported here, once."""
    if framework == XGBOOST:
        import xgboost as xgb

        return lambda matrix: np.asarray(estimator.predict(xgb.DMatrix(matrix, missing=np.nan)))
    if problem_type == "regression":
        return lambda matrix: np.asarray(estimator.predict(matrix), dtype=np.float64)
    column = 1 if problem_type == "binary" else slice(None)  # binary: the positive class's probability
    return lambda matrix: np.asarray(estimator.predict_proba(matrix), dtype=np.float64)[:, column]


def team_predictor(hook: Path, estimator: Any, schema: DataSchema) -> Callable[[np.ndarray], np.ndarray]:
    """A team's serving hook (training.code.serve_hook: ``predict(model, features)``) as ServingModel.predict: loaded
    once, and its answers held to the kind's shape — (rows,) or (rows, classes), finite, probabilities in [0, 1] —
    and to what the platform accepts of an answer (mlcore.outputs' ``problem``: class probabilities that sum to 1, a
    value within the label's bounds), or a ServingHookError in one line (the endpoint answers 500 with it; training
    and Evaluate fail with it)."""
    from mlsettings.training_code import SERVE_HOOK_FUNCTION
    from pipelines.steps.team_hooks import ServingHookError, load_team_hook

    label = "serving hook (training.code.serve_hook)"
    call = load_team_hook(hook, SERVE_HOOK_FUNCTION, ServingHookError, name=label)
    kind = schema.problem_type
    classes = len(schema.label.classes or ())

    def predict(matrix: np.ndarray) -> np.ndarray:
        found = call(estimator, matrix.copy())
        try:
            answers = np.asarray(found, dtype=np.float64)
        except (TypeError, ValueError):
            raise ServingHookError(f"{label}: {SERVE_HOOK_FUNCTION}() answered {type(found).__name__}; allowed: "
                                   "numbers, one per row (a row of class probabilities for multiclass)") from None
        expected = (len(matrix), classes) if kind == "multiclass" else (len(matrix),)
        problem = (f"shape {answers.shape}, not {expected}" if answers.shape != expected
                   else "a value that is not finite" if not np.isfinite(answers).all()
                   else "a probability outside [0, 1]" if kind != "regression" and ((answers < 0) | (answers > 1)).any()
                   else None)
        if problem is None:  # every answer as the platform serves it: what the API and health checks will check
            output = output_for(schema.label)
            problem = next((f"row {row}: {found_problem}" for row, raw in enumerate(answers.tolist())
                            if (found_problem := output.problem(output.from_model(raw, schema.label), schema.label))),
                           None)
        if problem:
            raise ServingHookError(f"{label}: {SERVE_HOOK_FUNCTION}() answered {problem} for {len(matrix)} "
                                   f"rows of a {kind} model")
        return answers

    return predict


def model_fn(model_dir: str | Path, context: Any = None) -> ServingModel:
    from mlsettings.training_code import MODEL_CODE_FOLDER, TEAM_SERVE_FILE

    directory = Path(model_dir)
    estimator, framework, features = load_estimator(directory)
    schema = DataSchema.load(directory / SCHEMA_FILE)
    transformer = FeatureTransformer.from_schema(schema)
    if features != len(transformer.output_names):
        raise ValueError(f"the model expects {features} features but schema {schema.name!r} "
                         f"produces {len(transformer.output_names)}")
    hook = directory / MODEL_CODE_FOLDER / TEAM_SERVE_FILE  # a team's serving hook, put there by the training wrapper
    predict = (team_predictor(hook, estimator, schema) if hook.is_file()
               else predictor(estimator, framework, schema.problem_type))
    return ServingModel(estimator=estimator, framework=framework, schema=schema, transformer=transformer,
                        model_dir=directory, predict=predict)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def negotiate(accept: str | None) -> str:
    """The response media type for an ``Accept`` header (RFC 9110 q-values; ties keep header order)."""
    choices: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept or "").split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if not media or media in ("*/*", "text/*"):
            media = CSV
        elif media == "application/*":
            media = JSON
        if media in (CSV, JSON) and quality > 0:
            choices.append((-quality, position, media))
    if not choices:
        if not (accept or "").strip():
            return CSV
        raise UnsupportedContentTypeError(f"accept type {accept!r} is not supported; ask for {CSV} or {JSON}")
    return min(choices)[2]


_REASONS = {200: "OK", 400: "Bad Request", 406: "Not Acceptable", 415: "Unsupported Media Type"}


class RequestError(ValueError):
    """The request body cannot be read at all (not one row can be recovered)."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, served by the toolkit's Flask worker as a WSGI application (status and headers kept)."""

    status: int
    content_type: str
    body: bytes

    def __call__(self, environ: Mapping[str, Any], start_response: Any) -> list[bytes]:
        start_response(f"{self.status} {_REASONS.get(self.status, 'Error')}",
                       [("Content-Type", self.content_type), ("Content-Length", str(len(self.body)))])
        return [self.body]

    @classmethod
    def error(cls, status: int, error: str, message: str) -> Answer:
        return cls(status, JSON, json.dumps({"error": error, "message": message}).encode())


def _parse_csv(text: str) -> RawBatch:
    rows: list[Mapping[str, Any] | Sequence[Any] | None] = [
        [value.strip() for value in line] for line in csv.reader(io.StringIO(text)) if line and any(line)]
    return RawBatch(rows=rows)


def _parse_json(text: str) -> RawBatch:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(f"the request body is not valid JSON ({err})") from None
    if isinstance(doc, Mapping) and "instances" in doc:
        items = doc["instances"]
    elif isinstance(doc, list):
        items = doc
    else:
        items = [doc]
    if not isinstance(items, list):
        raise RequestError("'instances' must be a list of rows")
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


def parse_request(request_body: str | bytes, request_content_type: str | None) -> RawBatch:
    """Rows of a request body; raises UnsupportedContentTypeError or RequestError."""
    media = _media_type(request_content_type)
    if media not in (CSV, JSON):
        raise UnsupportedContentTypeError(f"content type {request_content_type!r} is not supported; "
                                          f"send {CSV} or {JSON}")
    try:
        text = request_body.decode("utf-8") if isinstance(request_body, bytes | bytearray) else request_body
    except UnicodeDecodeError as err:
        raise RequestError(f"the request body is not UTF-8 ({err.reason} at byte {err.start})") from None
    return _parse_csv(text) if media == CSV else _parse_json(text)


def predict_batch(batch: RawBatch, model: ServingModel) -> PredictionBatch:
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
    predictions: list[Any] = [None] * len(rows)
    if features:
        matrix = np.asarray(features, dtype=np.float64)
        predicted = model.predict(matrix)  # (rows,) or (rows, classes)
        output, label = model.output, model.schema.label
        for position, raw in zip(valid, predicted.tolist(), strict=True):
            predictions[position] = output.from_model(raw, label)
    return PredictionBatch(predictions=predictions, errors=errors)


def encode_response(prediction: PredictionBatch, media: str, output: OutputCodec) -> bytes:
    """The response body in ``media`` (a type :func:`negotiate` returned)."""
    if media == CSV:
        return "".join(f"{'' if p is None else output.csv_line(p)}\n" for p in prediction.predictions).encode()
    return json.dumps({
        "predictions": prediction.predictions,
        "malformed": len(prediction.errors),
        "errors": [{"row": row, "error": error} for row, error in sorted(prediction.errors.items())],
    }).encode()


def transform_fn(model: ServingModel, request_body: str | bytes, request_content_type: str | None,
                 accept: str | None, context: Any = None) -> Answer:
    """The toolkit's request hook: always an :class:`Answer`, never an exception for a bad request."""
    try:
        media = negotiate(accept)
    except UnsupportedContentTypeError as err:
        return Answer.error(406, "NotAcceptable", str(err))
    try:
        batch = parse_request(request_body, request_content_type)
    except UnsupportedContentTypeError as err:
        return Answer.error(415, "UnsupportedMediaType", str(err))
    except RequestError as err:
        return Answer.error(400, "BadRequest", str(err))
    try:
        predicted = predict_batch(batch, model)
    except RuntimeError as err:
        from pipelines.steps.team_hooks import ServingHookError

        if not isinstance(err, ServingHookError):
            raise
        return Answer.error(500, "ServingHookError", str(err))  # a team's serving hook failed: its one line
    return Answer(200, media, encode_response(predicted, media, model.output))


def predict_raw_rows(model: ServingModel, rows: Sequence[Mapping[str, Any] | Sequence[Any]]) -> list[Any]:
    """The endpoint's answers for raw rows (mlcore.outputs; None where a row cannot be scored), without the HTTP
    encoding (evaluate and baseline use it)."""
    return predict_batch(RawBatch(rows=list(rows)), model).predictions
