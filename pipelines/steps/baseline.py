"""Baseline step: the drift baseline and the golden health-check payloads, both stored with the model.

Runs unchanged in a SageMaker processing container and locally, after the quality gate passed. Inputs:
``--model`` (``model.tar.gz`` or a model folder), ``--train-dir`` (preprocess's ``train_raw``) and
``--test-dir`` (preprocess's ``test_raw``). Outputs in ``--output-dir``:

* ``baseline.json`` — ``mlcore.drift.baseline`` format ("mlops-drift-baseline/1"): per numeric feature fixed bin
  edges and counts, per categorical feature category frequencies, missing rates, and the prediction and
  confidence distributions of the model on the training rows. The drift Lambda and the next run's
  validate step compare against it. Registered as the package's DriftCheckBaselines.
* ``golden_payloads.json`` — "mlops-golden/1": request bodies built from test rows, each with the answers this
  artifact returns (``expected``, in the output shape of the schema's kind of model: mlcore.outputs), the kind and
  the label's declaration, and a tolerance. The deployer's health check replays them against the endpoint
  and fails the deployment when a response differs (wrong model, wrong handler, broken transform).
* ``sample_payload.tar.gz`` — the CSV rows of the batch case, as SageMaker's ``SamplePayloadUrl`` wants
  (one gzip tar archive).

Expected responses are computed through the handler itself (input_fn → predict_fn → output_fn), so the
golden file pins the whole serving path, not just the booster.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file inside a container: make the code bundle's root (holding mlcore/, pipelines/) importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from mlcore.drift.baseline import build_baseline, normalised_importances
from mlcore.drift.predictions import prediction_baseline
from mlcore.features import FeatureError, encode_label
from mlcore.outputs import output_for, parse_csv_answers, parse_json_answers
from mlsettings.problem_types import BINARY
from mlsettings.schema import DataSchema, LabelSpec
from mlsettings.vocabulary import BASELINE_FILE, GOLDEN_FILE, GOLDEN_FORMAT, SAMPLE_PAYLOAD_FILE
from pipelines.datasets import csv_body, csv_files_in, feature_rows, read_raw_csv
from pipelines.serving import inference
from pipelines.steps.evaluate import AnswersError
from pipelines.steps.preprocess import split_strata
from pipelines.steps.team_hooks import TeamHookError


def _parse_response(body: str, accept: str, label: LabelSpec) -> list[Any]:
    if accept == inference.JSON:
        return parse_json_answers(json.loads(body)["predictions"], label)
    return parse_csv_answers(body, label)


def golden_rows(labels: Sequence[float], count: int, problem_type: str = BINARY) -> list[int]:
    """Up to ``count`` test-row positions taken in turn from each class (a regression target's quintile), highest
    first, so every outcome is pinned."""
    strata = split_strata(np.asarray(labels), problem_type).tolist() if len(labels) else []
    pools = [[i for i, stratum in enumerate(strata) if stratum == s] for s in sorted(set(strata), reverse=True)]
    chosen: list[int] = []
    for index in range(count * max(1, len(pools))):
        if len(chosen) == count:
            break
        pool = pools[index % len(pools)] if pools else []
        taken = sum(1 for i in chosen if i in pool)
        if taken < len(pool):
            chosen.append(pool[taken])
    return sorted(chosen)


def golden_document(schema: DataSchema, labels: list[float], cases: list[dict[str, Any]],
                    tolerance: float) -> dict[str, Any]:
    return {
        "format": GOLDEN_FORMAT,
        "schema": {"name": schema.name, "version": schema.version},
        "problem_type": schema.problem_type,
        "label": schema.label.to_dict(),
        "tolerance": tolerance,
        "labels": labels,
        "cases": cases,
    }


def golden_from_answers(schema: DataSchema, rows: Sequence[Sequence[str]], labels: Sequence[float],
                        answers: Sequence[Any], *, count: int, tolerance: float) -> dict[str, Any]:
    """An own image's golden payloads: the same rows as ``build_golden`` chooses, as CSV requests only (its contract
    is CSV in and out), each expecting the answers its serve gave those rows in the batch transform."""
    usable = [i for i, answer in enumerate(answers) if answer is not None]
    positions = [usable[i] for i in golden_rows([labels[i] for i in usable], count, schema.problem_type)]
    if not positions:
        raise AnswersError("golden payloads: the image answered none of the test rows in its kind's shape")
    chosen = [list(rows[i]) for i in positions]
    cases = [{"name": f"single_row_{n}", "content_type": inference.CSV, "accept": inference.CSV,
              "body": csv_body([row]), "expected": [answers[position]]}
             for n, (row, position) in enumerate(zip(chosen[:2], positions, strict=False))]
    cases.append({"name": "batch_csv", "content_type": inference.CSV, "accept": inference.CSV,
                  "body": csv_body(chosen), "expected": [answers[i] for i in positions]})
    return golden_document(schema, [labels[i] for i in positions], cases, tolerance)


def build_golden(model: inference.ServingModel, rows: Sequence[Sequence[str]], labels: Sequence[float], *,
                 count: int, tolerance: float) -> dict[str, Any]:
    names = model.schema.feature_names
    positions = golden_rows(labels, count, model.schema.problem_type)
    chosen = [list(rows[i]) for i in positions]
    requests: list[tuple[str, str, str, str]] = [
        (f"single_row_{n}", inference.CSV, inference.CSV, csv_body([row])) for n, row in enumerate(chosen[:2])]
    requests.append(("batch_csv", inference.CSV, inference.CSV, csv_body(chosen)))
    requests.append(("batch_json", inference.JSON, inference.JSON,
                     json.dumps({"instances": [dict(zip(names, row, strict=True)) for row in chosen]})))
    cases = []
    for name, content_type, accept, body in requests:
        answer = inference.transform_fn(model, body, content_type, accept)
        if answer.status != 200 or answer.content_type != accept:
            raise ValueError(f"golden case {name}: the model answered {answer.status} {answer.content_type}")
        response = answer.body.decode()
        expected = _parse_response(response, accept, model.schema.label)
        if any(p is None for p in expected):
            raise ValueError(f"golden case {name}: the model could not score its own test rows")
        cases.append({"name": name, "content_type": content_type, "accept": accept, "body": body,
                      "expected": expected})
    return golden_document(model.schema, [labels[i] for i in positions], cases, tolerance)


def _labelled(frame: Any, schema: DataSchema) -> tuple[list[list[str]], list[float], list[int]]:
    """(feature rows, encoded labels, their positions) of the rows whose label encodes."""
    rows, labels, positions = [], [], []
    for position, (row, label) in enumerate(zip(feature_rows(frame, schema.feature_names),
                                                frame[schema.label.name].tolist(), strict=True)):
        try:
            labels.append(encode_label(label, schema.label))
        except FeatureError:
            continue
        rows.append(row)
        positions.append(position)
    return rows, labels, positions


def drift_baseline(schema: DataSchema, train_rows: Sequence[Sequence[str]], answers: Sequence[Any], *, bins: int,
                   importances: dict[str, float] | None) -> dict[str, Any]:
    """The drift baseline of the training rows and the model's answers to them (``None``: a row it could not score,
    left out of both sides, keeping features and predictions aligned)."""
    names = list(schema.feature_names)
    scored = [i for i, p in enumerate(answers) if p is not None]
    columns = {name: [train_rows[i][column] for i in scored] for column, name in enumerate(names)}
    scored_answers = [answers[i] for i in scored]
    predictions = prediction_baseline(schema.label, scored_answers)
    output = output_for(schema.label)
    # The prediction and confidence distributions the drift engine bins: each answer's drift value and
    # confidence (mlcore.outputs: the score and max(p, 1 - p); the class index and the top probability; the
    # value and none). The kind's own statistics' baseline is stored beside them (mlcore.drift.predictions).
    confidences = [output.confidence(a) for a in scored_answers]
    baseline = build_baseline(columns, schema, bins=bins, feature_importances=importances,
                              predictions=[output.drift_value(a, schema.label) for a in scored_answers],
                              confidences=[c for c in confidences if c is not None])
    baseline["predictions"] = {key: value for key, value in predictions.items() if key != "scores"}
    baseline["unscored_rows"] = len(train_rows) - len(scored)
    return baseline


def write_outputs(output_dir: Path, baseline: dict[str, Any], golden: dict[str, Any]) -> dict[str, Any]:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / BASELINE_FILE).write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
    (output_dir / GOLDEN_FILE).write_text(json.dumps(golden, indent=2) + "\n", encoding="utf-8")
    batch_case = next(case for case in golden["cases"] if case["name"] == "batch_csv")
    payload = output_dir / "sample_payload.csv"
    payload.write_text(batch_case["body"], encoding="utf-8")
    with tarfile.open(output_dir / SAMPLE_PAYLOAD_FILE, "w:gz") as tar:
        tar.add(payload, arcname=payload.name)
    return {"baseline": baseline, "golden": golden}


def run_answers(*, answers_dir: Path, metadata_dir: Path, train_dir: Path, test_dir: Path, output_dir: Path,
                bins: int = 10, golden_count: int = 5, tolerance: float = 1e-4) -> dict[str, Any]:
    """An own image's baseline and golden payloads from its batch answers to the training and test rows (the Score
    step); the image's feature use is unknown, so the drift score weighs features uniformly."""
    from pipelines.steps.evaluate import read_answers

    schema = DataSchema.load(metadata_dir / "schema.json")
    train = read_raw_csv(csv_files_in(train_dir))
    train_rows = feature_rows(train, schema.feature_names)
    baseline = drift_baseline(schema, train_rows, read_answers(answers_dir, "train", schema.label, train_rows),
                              bins=bins, importances=None)
    test = read_raw_csv(csv_files_in(test_dir))
    test_answers = read_answers(answers_dir, "test", schema.label, feature_rows(test, schema.feature_names))
    rows, labels, positions = _labelled(test, schema)
    golden = golden_from_answers(schema, rows, labels, [test_answers[i] for i in positions], count=golden_count,
                                 tolerance=tolerance)
    return write_outputs(output_dir, baseline, golden)


def run(*, model_path: Path, train_dir: Path, test_dir: Path, output_dir: Path, bins: int = 10,
        golden_count: int = 5, tolerance: float = 1e-4) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        model = inference.model_fn(inference.resolve_model_dir(model_path, Path(scratch) / "model"))
        schema = model.schema
        train = read_raw_csv(csv_files_in(train_dir))
        train_rows = feature_rows(train, schema.feature_names)
        # What the model uses, for the importance-weighted drift score (mlcore.drift.statistics).
        importances = normalised_importances(model.feature_importances(), model.transformer.output_names,
                                             schema.feature_names)
        baseline = drift_baseline(schema, train_rows, inference.predict_raw_rows(model, train_rows), bins=bins,
                                  importances=importances)
        # Without a separate test input the golden rows come from the training rows (still raw, labelled).
        test = read_raw_csv(csv_files_in(test_dir)) if test_dir.exists() and csv_files_in(test_dir) else train
        usable, labels, _ = _labelled(test, schema)
        golden = build_golden(model, usable, labels, count=golden_count, tolerance=tolerance)
    return write_outputs(output_dir, baseline, golden)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", "--model-dir", dest="model", type=Path, default=Path("/opt/ml/processing/model"))
    parser.add_argument("--train-dir", "--data-dir", dest="train_dir", type=Path,
                        default=Path("/opt/ml/processing/train"), help="raw training rows (header, label)")
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/test"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/baseline"))
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--golden-rows", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="absolute difference allowed between a served and a golden probability")
    parser.add_argument("--answers-dir", type=Path, default=None,
                        help="an own image's model: the Score step's batch answers (instead of --model)")
    parser.add_argument("--metadata-dir", type=Path, default=None, help="with --answers-dir: Preprocess's metadata")
    args = parser.parse_args(argv)
    if (args.answers_dir is None) != (args.metadata_dir is None):
        parser.error("--answers-dir and --metadata-dir go together (an own image's model)")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.answers_dir is not None:
        result = run_answers(answers_dir=args.answers_dir, metadata_dir=args.metadata_dir, train_dir=args.train_dir,
                             test_dir=args.test_dir, output_dir=args.output_dir, bins=args.bins,
                             golden_count=args.golden_rows, tolerance=args.tolerance)
        print(f"baseline: {result['baseline']['rows']} rows; golden cases: {len(result['golden']['cases'])}")
        return result
    result = run(model_path=args.model, train_dir=args.train_dir, test_dir=args.test_dir,
                 output_dir=args.output_dir, bins=args.bins, golden_count=args.golden_rows,
                 tolerance=args.tolerance)
    print(f"baseline: {result['baseline']['rows']} rows; golden cases: {len(result['golden']['cases'])}")
    return result


def entry(argv: Sequence[str] | None = None) -> int:
    """The step's process: an own image's answers that cannot be used, or a serving hook's failure, is one line on
    stderr and exit 1 (the job fails, nothing is registered); anything else fails as before."""
    try:
        main(argv)
    except (AnswersError, TeamHookError) as err:
        print(f"baseline: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(entry())
