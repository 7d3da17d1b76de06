"""Evaluate step: model quality and prediction latency of the trained artifact on the held-out test set.

Runs unchanged in a SageMaker processing container (the XGBoost image: it has xgboost, numpy, pandas) and
locally. Inputs: ``--model`` (the training job's ``model.tar.gz``, or a folder holding it or the extracted
model) and ``--test-dir`` (preprocess's ``test_raw/test_raw.csv``: raw columns with the label). The test rows
go through the endpoint's own handler (``pipelines.serving.inference``: CSV parsing, the shared feature
transform, the booster), so the metrics and latencies are those of what will be served.

Output ``<output-dir>/evaluation.json``, SageMaker's model-quality format (registered as the model
package's ``ModelQuality.Statistics`` and read by the quality gate through a PropertyFile), in the section of the
schema's kind of model (``multiclass_classification_metrics``: accuracy, macro_f1, log_loss;
``regression_metrics``: rmse, mae, r2; each gate metric with the bound its direction needs, mlcore.metrics). For a
binary model::

    {"binary_classification_metrics": {
        "auc" | "f1" | "precision" | "recall" | "accuracy" | "log_loss" | "calibration_error":
            {"value": v, "standard_deviation": s},          # s from a stratified bootstrap
        "batch_latency_ms": {...}, "single_row_latency_ms_p50": {...}, "single_row_latency_ms_p99": {...},
        "confusion_matrix": {"1": {"1": tp, "0": fn}, "0": {"1": fp, "0": tn}}},
     "evaluation": {"rows", "threshold", "batch_rows", "single_row_requests", "fallback": {...}}}

JSON paths for the gate: ``<section>.<metric>.value`` and ``<section>.<metric>.lower_bound_95|upper_bound_95``
(mlsettings.quality.gate_checks).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file inside a container: make the code bundle's root (holding mlcore/, pipelines/) importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from mlcore.fallback import load_fallback
from mlcore.features import FeatureError, encode_label
from mlcore.metrics import quality_metrics, quality_report
from mlcore.outputs import answer_lines, output_for
from mlsettings.problem_types import problem_type
from mlsettings.training_code import EVALUATE_HOOK_FUNCTION, MAX_TEAM_METRICS, TEAM_METRIC_NAME
from mlsettings.vocabulary import EVALUATION_FILE, FALLBACK_FILE, SCORE_FILES, TRANSFORM_OUTPUT_SUFFIX
from pipelines.datasets import csv_body, csv_files_in, feature_rows, read_raw_csv
from pipelines.serving import inference
from pipelines.steps.team_hooks import ServingHookError, TeamHookError, call_team_hook


def _serve(model: inference.ServingModel, body: str) -> str:
    answer = inference.transform_fn(model, body, inference.CSV, inference.CSV)
    if answer.status != 200:
        raise ValueError(f"the model answered {answer.status}: {answer.body.decode()}")
    return answer.body.decode()


def measure_latency(model: inference.ServingModel, rows: Sequence[Sequence[str]], *, single_row_requests: int,
                    batch_repeats: int) -> dict[str, tuple[float, float]]:
    """Milliseconds per request through input_fn → predict_fn → output_fn (the handler's whole path).

    Reported as (value, standard deviation); one warm-up call first so imports and lazy initialisation are
    not charged to the first request.
    """
    body = csv_body(rows)
    _serve(model, body)
    batch_times = []
    for _ in range(batch_repeats):
        started = time.perf_counter()
        _serve(model, body)
        batch_times.append((time.perf_counter() - started) * 1000.0)
    single_times = []
    for index in range(single_row_requests):
        one_row = csv_body([rows[index % len(rows)]])
        started = time.perf_counter()
        _serve(model, one_row)
        single_times.append((time.perf_counter() - started) * 1000.0)
    batch = np.asarray(batch_times)
    single = np.asarray(single_times)
    return {
        "batch_latency_ms": (float(np.median(batch)), float(batch.std())),
        "single_row_latency_ms_p50": (float(np.percentile(single, 50)), float(single.std())),
        "single_row_latency_ms_p99": (float(np.percentile(single, 99)), float(single.std())),
    }


def team_metrics(hook: Path, labels: list[Any], answers: list[Any], schema: dict[str, Any]) -> dict[str, float]:
    """The team's ``evaluate(labels, answers, schema)`` on the scored test rows: labels as trained (class index, 0/1
    or the value) and answers in the kind's served shape (mlcore.outputs), returning {name: finite number}."""
    import math
    import re

    found = call_team_hook(hook, EVALUATE_HOOK_FUNCTION, list(labels), list(answers), dict(schema))
    if not isinstance(found, dict) or not 0 < len(found) <= MAX_TEAM_METRICS:
        raise TeamHookError(f"{hook.name}: {EVALUATE_HOOK_FUNCTION}() returned {type(found).__name__} "
                            f"{found!r:.80}; allowed: a dict of 1 to {MAX_TEAM_METRICS} metrics")
    metrics: dict[str, float] = {}
    for name, value in found.items():
        if not isinstance(name, str) or not re.fullmatch(TEAM_METRIC_NAME, name):
            raise TeamHookError(f"{hook.name}: metric name {name!r}; allowed: {TEAM_METRIC_NAME}")
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not math.isfinite(value):
            raise TeamHookError(f"{hook.name}: metric {name!r} is {value!r}; allowed: a finite number")
        metrics[name] = float(value)
    return metrics


class AnswersError(ValueError):
    """An own image's batch answers that cannot be joined to their rows; the message says why, in one line."""


def read_answers(answers_dir: Path, name: str, label: Any, rows: Sequence[Sequence[str]]) -> list[Any]:
    """An own image's batch answers to ``SCORE_FILES[name]`` (``<file>.out``): the Score step joins each answer to its
    input row (``DataProcessing.JoinSource`` Input), so a line is the row's values and then the answer's fields. An
    answer its kind cannot read (or out of its kind's range) is None — counted as malformed by the caller, never
    fatal; a file whose lines are not ``rows``, in order, is refused."""
    path = answers_dir / f"{SCORE_FILES[name]}{TRANSFORM_OUTPUT_SUFFIX}"
    if not path.is_file():
        raise AnswersError(f"no batch answers {path.name} in {answers_dir} (did the Score step run?)")
    # joined lines each hold their row: a blank one is no record (an empty answer is "<row>,")
    lines = [line for line in answer_lines(path.read_text(encoding="utf-8")) if line.strip()]
    if len(lines) != len(rows):
        raise AnswersError(f"{path.name} holds {len(lines)} answers for {len(rows)} rows: the image's serve must "
                           "answer one line per row (docs/TRAINING.md, 'Your own image')")
    codec = output_for(label)
    answers: list[Any] = []
    for number, (line, row) in enumerate(zip(lines, rows, strict=True), start=1):
        fields = next(csv.reader([line]), [])
        if [value.strip() for value in fields[:len(row)]] != [value.strip() for value in row]:
            raise AnswersError(f"{path.name} line {number} is not joined to row {number} of {SCORE_FILES[name]} "
                               "(the Score step joins each answer to its input row)")
        answer_text = csv_body([fields[len(row):]]).strip()
        try:
            answer = codec.parse_csv_line(answer_text, label) if answer_text.strip(",") else None
        except ValueError:  # mlcore.outputs.OutputError: not the kind's shape
            answer = None
        # an answer outside its kind's range (a probability above 1, a value beyond the label's bounds) is malformed
        answers.append(None if answer is None or codec.problem(answer, label) else answer)
    return answers


def scored(answers: Sequence[Any], labels_raw: Sequence[Any], label: Any) -> tuple[list[int], list[float], int]:
    """(positions kept, their encoded labels, malformed count): rows whose label or answer is unusable are counted
    and left out of the metrics, never allowed to stop the evaluation."""
    kept: list[int] = []
    labels: list[float] = []
    malformed = 0
    for position, (answer, value) in enumerate(zip(answers, labels_raw, strict=True)):
        try:
            encoded = encode_label(value, label)
        except FeatureError:
            malformed += 1
            continue
        if answer is None:
            malformed += 1
            continue
        kept.append(position)
        labels.append(encoded)
    return kept, labels, malformed


def run_answers(*, answers_dir: Path, test_dir: Path, metadata_dir: Path, train_features_dir: Path,
                test_features_dir: Path, output_dir: Path, threshold: float = 0.5, resamples: int = 100,
                fallback_l2: float = 1.0) -> dict[str, Any]:
    """Evaluate an own image's model (training.code.kind image) from its batch answers to the test rows: the same
    metrics and report as ``run``, without latency (a batch transform times no request; the endpoint's alarms and
    the health check do). The platform's fallback model is fitted here on the encoded channels — the team's artifact
    holds none — and written beside the report, where the deployer finds it."""
    from mlsettings.schema import DataSchema
    from pipelines.steps.training_io import build_fallback, read_xgboost_csv

    schema = DataSchema.load(metadata_dir / "schema.json")
    frame = read_raw_csv(csv_files_in(test_dir))
    answers = read_answers(answers_dir, "test", schema.label, feature_rows(frame, schema.feature_names))
    kept, labels, malformed = scored(answers, frame[schema.label.name].tolist(), schema.label)
    if not kept:
        raise AnswersError(f"the image answered none of the {len(frame)} test rows in its kind's shape ({malformed} "
                           "malformed)")
    kind = schema.problem_type
    output = output_for(schema.label)
    y = np.asarray(labels)
    p = np.asarray([output.metric_input(answers[i]) for i in kept], dtype=np.float64)
    report = quality_report(kind, y, p, resamples=resamples, threshold=threshold)
    test_features = read_xgboost_csv(test_features_dir)
    fallback = build_fallback(schema, read_xgboost_csv(train_features_dir), test_features, evaluated_on="test",
                              l2=fallback_l2)
    report["evaluation"] = {
        "rows": int(y.size), "malformed": malformed, "problem_type": kind, "threshold": threshold,
        "batch_rows": 0, "single_row_requests": 0, "bootstrap_resamples": resamples,
        "latency": "not measured: an own image answers the test rows by batch transform",
        "fallback": fallback["metrics"],
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (output_dir / FALLBACK_FILE).write_text(json.dumps(fallback, indent=2) + "\n", encoding="utf-8")
    return report


def run(*, model_path: Path, test_dir: Path, output_dir: Path, threshold: float = 0.5, resamples: int = 100,
        single_row_requests: int = 200, batch_repeats: int = 5, batch_rows: int = 1000,
        team_hook: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = inference.resolve_model_dir(model_path, Path(scratch) / "model")
        model = inference.model_fn(model_dir)
        schema = model.schema
        frame = read_raw_csv(csv_files_in(test_dir))
        rows = feature_rows(frame, schema.feature_names)
        answers = inference.predict_raw_rows(model, rows)
        kept, labels, malformed = scored(answers, frame[schema.label.name].tolist(), schema.label)
        if not kept:
            raise ValueError(f"no test row could be scored ({malformed} malformed)")
        kind = schema.problem_type
        y = np.asarray(labels)
        p = np.asarray([model.output.metric_input(answers[i]) for i in kept], dtype=np.float64)
        latency = measure_latency(model, [rows[i] for i in kept[:batch_rows]],
                                  single_row_requests=single_row_requests, batch_repeats=batch_repeats)
        report = quality_report(kind, y, p, resamples=resamples, extra_metrics=latency, threshold=threshold)
        if team_hook is not None:
            report["team_metrics"] = team_metrics(team_hook, labels, [answers[i] for i in kept], schema.to_dict())

        fallback_summary: dict[str, Any] | None = None
        fallback_path = model_dir / FALLBACK_FILE
        if fallback_path.is_file():
            fallback = load_fallback(fallback_path)
            fallback_p = np.asarray([model.output.metric_input(fallback.predict_row(rows[i])) for i in kept])
            fallback_summary = quality_metrics(kind, y, fallback_p)

    report["evaluation"] = {
        "rows": int(y.size),
        "malformed": malformed,
        "problem_type": kind,
        "threshold": threshold,
        "batch_rows": min(batch_rows, len(kept)),
        "single_row_requests": single_row_requests,
        "bootstrap_resamples": resamples,
        "fallback": fallback_summary,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", "--model-dir", dest="model", type=Path, default=Path("/opt/ml/processing/model"),
                        help="model.tar.gz, a folder holding it, or an extracted model folder")
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/test"),
                        help="raw test CSV (header, raw feature columns and the label)")
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/evaluation"))
    parser.add_argument("--threshold", type=float, default=0.5, help="probability that predicts positive")
    parser.add_argument("--bootstrap-resamples", type=int, default=100)
    parser.add_argument("--single-row-requests", type=int, default=200)
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--team-hook", type=Path, default=None,
                        help="a team's evaluation hook (a file defining evaluate(labels, answers, schema))")
    image = parser.add_argument_group("an own image's model (its batch answers instead of a model folder)")
    image.add_argument("--answers-dir", type=Path, default=None, help="the Score step's output (<file>.out)")
    image.add_argument("--metadata-dir", type=Path, default=None, help="Preprocess's metadata (schema.json)")
    image.add_argument("--train-features-dir", type=Path, default=None, help="Preprocess's train channel")
    image.add_argument("--test-features-dir", type=Path, default=None, help="Preprocess's test channel")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.answers_dir is not None:
        report = run_answers(answers_dir=args.answers_dir, test_dir=args.test_dir, metadata_dir=args.metadata_dir,
                             train_features_dir=args.train_features_dir, test_features_dir=args.test_features_dir,
                             output_dir=args.output_dir, threshold=args.threshold, resamples=args.bootstrap_resamples)
        kind = problem_type(report["evaluation"]["problem_type"])
        metrics = report[kind.report_section]
        print(f"evaluation ({kind.name}, batch answers): "
              + ", ".join(f"{m.name} {metrics[m.name]['value']:.4f}" for m in kind.gate_metrics))
        return report
    report = run(model_path=args.model, test_dir=args.test_dir, output_dir=args.output_dir,
                 threshold=args.threshold, resamples=args.bootstrap_resamples,
                 single_row_requests=args.single_row_requests, batch_repeats=args.batch_repeats,
                 batch_rows=args.batch_rows, team_hook=args.team_hook)
    kind = problem_type(report["evaluation"]["problem_type"])
    metrics = report[kind.report_section]
    quality = ", ".join(f"{m.name} {metrics[m.name]['value']:.4f}" for m in kind.gate_metrics)
    print(f"evaluation ({kind.name}): {quality}, p99 single-row {metrics['single_row_latency_ms_p99']['value']:.2f} ms")
    return report


def entry(argv: Sequence[str] | None = None) -> int:
    """The step's process: a team hook's failure is one line on stderr and exit 1 (the job fails, nothing is
    registered); anything else fails as before."""
    try:
        main(argv)
    except TeamHookError as err:  # a serving hook's line names itself
        print(f"{'' if isinstance(err, ServingHookError) else 'evaluation hook: '}{err}", file=sys.stderr)
        return 1
    except AnswersError as err:
        print(f"evaluation: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(entry())
