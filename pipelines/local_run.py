"""Run the training pipeline's steps locally, in order, on real files — the same scripts SageMaker runs.

``run_local`` gives every step its own folder that mimics the container's file system
(``<workdir>/<step>/opt/ml/...``), copies each step's inputs there the way SageMaker would download them
from S3, calls the step script's ``main`` with the container paths re-rooted, and computes the quality
gate exactly as the pipeline's ConditionStep does. It never talks to AWS: the caller (``mlops train
--local``) wraps S3 and the model registry around it.

Order and outcomes: validate → preprocess → train → evaluate → gate → baseline. A validation failure
stops the run (``status="failed_validation"``); a gate failure skips the baseline and must never be
registered (``status="failed_gate"``); a team's training program that breaks its contract stops the run
(``status="failed_training"``), and so do its hooks (``status="failed_preprocessing"``,
``"failed_evaluation"``) and an own image's answers that cannot be used (``"failed_evaluation"``,
``"failed_baseline"``); otherwise ``status="succeeded"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcore.outputs import answer_lines
from mlsettings.quality import GateDecision, decide_gate
from mlsettings.training_code import (
    ENTRY_POINT_HYPERPARAMETER,
    IMAGE,
    KIND_HYPERPARAMETER,
    REQUIREMENTS_FILE,
    SERVE_HOOK_HYPERPARAMETER,
    WHEELS_FOLDER,
    XGBOOST_SCRIPT,
)
from mlsettings.vocabulary import (
    BASELINE_FILE,
    EVALUATION_FILE,
    FALLBACK_FILE,
    GOLDEN_FILE,
    SAMPLE_PAYLOAD_FILE,
    SCORE_ANSWERS,
    SCORE_FILES,
    SCORE_OUTPUT,
    TRANSFORM_OUTPUT_SUFFIX,
)
from pipelines.serving import inference
from pipelines.steps import baseline as baseline_step
from pipelines.steps import evaluate as evaluate_step
from pipelines.steps import preprocess as preprocess_step
from pipelines.steps import script_train as script_train_step
from pipelines.steps import train as train_step
from pipelines.steps import validate as validate_step
from pipelines.steps.team_hooks import ServingHookError, TeamHookError

STEP_NAMES = ("validate", "preprocess", "train", "evaluate", "gate", "baseline")
ProgressCallback = Callable[[str, str], None]
"""Called as ``progress(step, event)`` with event "started", "succeeded", "failed" or "skipped"."""


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    name: str
    status: str
    seconds: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "seconds": round(self.seconds, 3),
                "detail": self.detail}


@dataclass(kw_only=True)
class LocalRunResult:
    workdir: Path
    status: str = "running"
    failure: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    validation_report: dict[str, Any] | None = None
    lineage: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    gate: GateDecision | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    """Artifacts by role: validation_report, model_dir, model_artifact, evaluation, baseline, golden,
    sample_payload, lineage, fallback, schema."""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "status": self.status,
            "failure": self.failure,
            "steps": [s.to_dict() for s in self.steps],
            "gate": self.gate.to_dict() if self.gate else None,
            "metrics": self.metrics,
            "lineage": self.lineage,
            "training": self.training,
            "validation": None if self.validation_report is None else {
                "passed": self.validation_report["passed"], "violations": self.validation_report["violations"],
                "warnings": self.validation_report["warnings"]},
            "paths": {role: str(path) for role, path in self.paths.items()},
        }


def place(source: Path, destination_dir: Path, name: str | None = None) -> Path:
    """Put a file into a step's input folder, as SageMaker's download would (hard link when possible)."""
    destination_dir.mkdir(parents=True, exist_ok=True)
    target = destination_dir / (name or source.name)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def place_folder(source: Path, destination: Path) -> Path:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            place(path, destination / path.relative_to(source).parent)
    return destination


def package_model(model_dir: Path, artifact: Path) -> Path:
    """``model.tar.gz`` with the model folder's contents at the top level, as a training job uploads it."""
    artifact.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(artifact, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, arcname=str(path.relative_to(model_dir)))
    return artifact


def _hyperparameter_argv(hyperparameters: Mapping[str, Any]) -> list[str]:
    argv: list[str] = []
    for name, value in hyperparameters.items():
        argv += [f"--{name}", str(value)]
    return argv


@dataclass(frozen=True)
class TeamCode:
    """A model team's training code (training.code.kind xgboost-script): its folder and program."""

    source_dir: Path
    entry_point: str
    kind: str = XGBOOST_SCRIPT
    """mlsettings.training_code.SCRIPT_KINDS: which model file the program writes; IMAGE: source_dir is an own
    image's folder, whose train and serve programs run in the conformance check's namespaces."""
    evaluate_hook: str | None = None
    """A file of source_dir the Evaluate step calls (training.code.evaluate_hook), or None."""
    preprocess_hook: str | None = None
    """A file of source_dir the Preprocess step calls (training.code.preprocess_hook), or None."""
    serve_hook: str | None = None
    """A file of source_dir the serving handler calls (training.code.serve_hook), or None."""


def _install_offline(code_dir: Path, site: Path) -> None:
    """What the container's toolkit does with a requirements.txt, kept off the network as the Train step keeps it:
    pip installs from the folder's vendored wheels only (into ``site``, not into the runner's environment)."""
    if not (code_dir / REQUIREMENTS_FILE).is_file():
        return
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
         "--find-links", str(code_dir / WHEELS_FOLDER), "--target", str(site), "-r", REQUIREMENTS_FILE],
        cwd=code_dir, capture_output=True, text=True, check=False, env={**os.environ, "PIP_NO_INDEX": "1"})
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise StepFailed(f"{REQUIREMENTS_FILE} did not install from {WHEELS_FOLDER}/ with no index: {last}")


def script_mode_environment(channels: Mapping[str, Path], model_dir: Path, output_data_dir: Path,
                            hyperparameters: Mapping[str, Any], site: Path) -> dict[str, str]:
    """The environment script mode gives a program (the toolkit's SM_* variables), for the local runner."""
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SM_OUTPUT_DATA_DIR": str(output_data_dir),
           "SM_CHANNELS": json.dumps(sorted(channels)), "SM_HPS": json.dumps({k: str(v) for k, v in
                                                                              hyperparameters.items()}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))}
    env.update({f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()})
    env.update({f"SM_HP_{name.upper()}": str(value) for name, value in hyperparameters.items()})
    return env


class StepFailed(Exception):
    """A step stopped the run (validation or the quality gate); the result says why."""


@dataclass(kw_only=True)
class _LocalRun:
    """One local run: each step reads the previous steps' outputs under ``workdir`` as SageMaker would pass them."""

    workdir: Path
    schema_path: Path
    data_csv: Path
    result: LocalRunResult
    notify: ProgressCallback
    processed: Path = field(init=False)  # preprocess's output folder
    artifact: Path = field(init=False)  # train's model.tar.gz
    answers: Path | None = None  # an own image's answers to the score rows (what the Score step writes)
    _started: float = 0.0

    def step(self, name: str, run: Callable[[], str]) -> None:
        """Run one step; it returns its one-line detail or raises StepFailed after setting the result."""
        self._started = time.perf_counter()
        self.notify(name, "started")
        try:
            detail = run()
        except StepFailed as failure:
            self._record(name, "failed", str(failure))
            for later in STEP_NAMES[STEP_NAMES.index(name) + 1:]:
                self.result.steps.append(StepRecord(name=later, status="skipped", seconds=0.0))
                self.notify(later, "skipped")
            raise
        self._record(name, "succeeded", detail)

    def _record(self, name: str, status: str, detail: str) -> None:
        self.result.steps.append(StepRecord(name=name, status=status, seconds=time.perf_counter() - self._started,
                                            detail=detail))
        self.notify(name, status)

    def validate(self, *, previous_baseline: Path | None, drift_thresholds: Mapping[str, Any] | None,
                 min_rows_per_class: int) -> str:
        result, root = self.result, self.workdir / "validate" / "opt" / "ml"
        data_dir = root / "processing/input/data"
        place(self.data_csv, data_dir)
        schema_file = place(self.schema_path, root / "processing/input/schema", "schema.json")
        argv = ["--input-dir", str(data_dir), "--schema", str(schema_file),
                "--report-dir", str(root / "processing/output/report"),
                "--message-file", str(root / "output/message"), "--min-rows-per-class", str(min_rows_per_class)]
        if previous_baseline is not None:
            argv += ["--baseline", str(place(previous_baseline, root / "processing/input/baseline", BASELINE_FILE))]
        if drift_thresholds:
            argv += ["--drift-thresholds", json.dumps(dict(drift_thresholds))]
        result.paths["validation_report"] = root / "processing/output/report" / validate_step.REPORT_NAME
        try:
            validate_step.main(argv)
        except validate_step.DataValidationError as err:
            result.validation_report = json.loads(result.paths["validation_report"].read_text(encoding="utf-8"))
            result.status, result.failure = "failed_validation", str(err)
            raise StepFailed(str(err)) from err
        result.validation_report = json.loads(result.paths["validation_report"].read_text(encoding="utf-8"))
        return f"{result.validation_report['rows']} rows"

    def preprocess(self, *, seed: int, data_uri: str, s3_object_versions: Mapping[str, str] | None,
                   team_code: TeamCode | None = None) -> str:
        root = self.workdir / "preprocess" / "opt" / "ml" / "processing"
        data_dir = root / "input/data"
        place(self.data_csv, data_dir)
        schema_file = place(self.schema_path, root / "input/schema", "schema.json")
        self.processed = root / "output"
        argv = ["--input-dir", str(data_dir), "--schema", str(schema_file), "--output-dir", str(self.processed),
                "--seed", str(seed), "--data-uri", data_uri]
        for uri, version in (s3_object_versions or {}).items():
            argv += ["--s3-object-version", f"{uri}={version}"]
        if team_code is not None and team_code.preprocess_hook:
            argv += ["--team-hook", str(team_code.source_dir / team_code.preprocess_hook)]
        if team_code is not None and team_code.kind == IMAGE:
            argv.append("--score-rows")
        try:
            lineage = self.result.lineage = preprocess_step.main(argv)
        except TeamHookError as err:
            self.result.status, self.result.failure = "failed_preprocessing", f"preprocessing hook: {err}"
            raise StepFailed(self.result.failure) from err
        self.result.paths["lineage"] = self.processed / "metadata/lineage.json"
        return f"sha256 {lineage['data_version']['sha256'][:12]}"

    def train(self, *, hyperparameters: Mapping[str, Any] | None, team_code: TeamCode | None = None) -> str:
        root = self.workdir / "train" / "opt" / "ml"
        channels = {name: place_folder(self.processed / name, root / "input/data" / name)
                    for name in ("train", "validation", "test", "metadata")}
        model_dir = root / "model"
        if team_code is not None and team_code.kind == IMAGE:
            return self._train_and_score_image(root, channels, hyperparameters or {}, team_code)
        argv = [*(arg for name, path in channels.items() for arg in (f"--{name}", str(path))),
                "--model-dir", str(model_dir), "--checkpoint-dir", str(root / "checkpoints"),
                "--output-data-dir", str(root / "output/data"), *_hyperparameter_argv(hyperparameters or {})]
        if team_code is None:
            training = self.result.training = train_step.main(argv)
        else:
            training = self.result.training = self._train_team_code(root, argv, channels, model_dir,
                                                                    hyperparameters or {}, team_code)
        self.artifact = package_model(model_dir, self.workdir / "artifacts" / "model.tar.gz")
        self.result.paths.update(model_dir=model_dir, model_artifact=self.artifact,
                                 fallback=model_dir / FALLBACK_FILE, schema=model_dir / "schema.json")
        return f"{training['rounds']} rounds" if "rounds" in training else f"a {training.get('estimator', 'model')}"

    def _train_and_score_image(self, root: Path, channels: Mapping[str, Path], hyperparameters: Mapping[str, Any],
                               team_code: TeamCode) -> str:
        """An own image: its folder's ``train`` on the channels, then its ``serve`` answering the score rows — the
        Train, TeamModel and Score steps — in the conformance check's namespaces (no network, a private /opt/ml).
        A broken contract (the check's findings) fails the run in one line."""
        from mlplatform.conformance.byoc_check import (
            InvocationCase,
            SandboxFailed,
            SandboxUnavailable,
            check_image,
        )
        from pipelines.definition import DATA_CHANNELS

        score = self.processed / SCORE_OUTPUT
        bodies = {name: (score / file).read_text(encoding="utf-8") for name, file in SCORE_FILES.items()}
        requests = [InvocationCase(name=name, body=body, rows=len(body.splitlines())) for name, body in bodies.items()]
        sandbox = root / "image"
        sandbox.mkdir(parents=True, exist_ok=True)
        try:
            checked = check_image(team_code.source_dir, channels=channels,
                                  channel_content_types=dict(DATA_CHANNELS), hyperparameters=hyperparameters,
                                  requests=requests, workdir=sandbox)
        except (SandboxUnavailable, SandboxFailed, FileNotFoundError) as err:
            self.result.status, self.result.failure = "failed_training", f"own image: {err}"
            raise StepFailed(self.result.failure) from err
        if checked.findings:
            finding = checked.findings[0]
            self.result.status = "failed_training"
            self.result.failure = f"own image: {finding.rule}: {finding.message}"
            raise StepFailed(self.result.failure)
        self.answers = root / SCORE_ANSWERS
        self.answers.mkdir(parents=True, exist_ok=True)
        for answer in checked.serve.get("invocations", []):
            # as the Score step writes them: each answer joined to its input row (DataProcessing.JoinSource Input);
            # the check above refused a serve that answers another number of lines
            joined = [f"{row},{line}" for row, line in zip(bodies[answer["name"]].splitlines(),
                                                            answer_lines(answer["body"]), strict=True)]
            (self.answers / f"{SCORE_FILES[answer['name']]}{TRANSFORM_OUTPUT_SUFFIX}").write_text(
                "".join(f"{line}\n" for line in joined), encoding="utf-8")
        model_dir = root / "model"
        shutil.rmtree(model_dir, ignore_errors=True)
        model_dir.mkdir(parents=True)
        inference.resolve_model_dir(sandbox / inference.ARTIFACT_NAME, model_dir)  # SageMaker's model.tar.gz
        self.artifact = package_model(model_dir, self.workdir / "artifacts" / "model.tar.gz")
        self.result.training = {"kind": IMAGE, "model_files": checked.model_files,
                                "rows_scored": {name: case.rows for name, case in zip(bodies, requests, strict=True)}}
        self.result.paths.update(model_dir=model_dir, model_artifact=self.artifact,
                                 schema=self.processed / "metadata" / "schema.json")
        return f"the image's train wrote {len(checked.model_files)} file(s); serve answered the score rows"

    def _train_team_code(self, root: Path, argv: list[str], channels: Mapping[str, Path], model_dir: Path,
                         hyperparameters: Mapping[str, Any], team_code: TeamCode) -> dict[str, Any]:
        """The team's program under the platform's wrapper, its folder copied as the container unpacks it and its
        requirements installed from its wheels with no index."""
        code_dir = root / "code"
        shutil.rmtree(code_dir, ignore_errors=True)
        shutil.copytree(team_code.source_dir, code_dir)
        site = root / "site-packages"
        env = script_mode_environment(channels, model_dir, root / "output/data", hyperparameters, site)
        try:
            _install_offline(code_dir, site)
            serve_hook = [f"--{SERVE_HOOK_HYPERPARAMETER}", team_code.serve_hook] if team_code.serve_hook else []
            return script_train_step.main([*argv, f"--{ENTRY_POINT_HYPERPARAMETER}", team_code.entry_point,
                                           f"--{KIND_HYPERPARAMETER}", team_code.kind, *serve_hook],
                                          code_dir=code_dir, env=env)
        except (script_train_step.ContractError, StepFailed) as err:
            message = str(err) if isinstance(err, StepFailed) else f"training contract: {err}"
            self.result.status, self.result.failure = "failed_training", message
            raise StepFailed(message) from err

    def evaluate(self, *, options: Mapping[str, Any] | None, team_code: TeamCode | None = None) -> str:
        root = self.workdir / "evaluate" / "opt" / "ml" / "processing"
        if self.answers is not None:  # an own image: the Score step's answers
            argv = ["--answers-dir", str(place_folder(self.answers, root / SCORE_ANSWERS)),
                    "--test-dir", str(place_folder(self.processed / "test_raw", root / "test")),
                    "--metadata-dir", str(place_folder(self.processed / "metadata", root / "metadata")),
                    "--train-features-dir", str(place_folder(self.processed / "train", root / "train_features")),
                    "--test-features-dir", str(place_folder(self.processed / "test", root / "test_features")),
                    "--output-dir", str(root / "evaluation")]
            if options and "bootstrap_resamples" in options:
                argv += ["--bootstrap-resamples", str(options["bootstrap_resamples"])]
            try:
                self.result.metrics = evaluate_step.main(argv)
            except evaluate_step.AnswersError as err:
                self.result.status, self.result.failure = "failed_evaluation", f"own image: {err}"
                raise StepFailed(self.result.failure) from err
            self.result.paths.update(evaluation=root / "evaluation" / EVALUATION_FILE,
                                     fallback=root / "evaluation" / FALLBACK_FILE)
            return ""
        model_input = place(self.artifact, root / "model")
        test_input = place_folder(self.processed / "test_raw", root / "test")
        argv = ["--model", str(model_input.parent), "--test-dir", str(test_input),
                "--output-dir", str(root / "evaluation")]
        for name, value in (options or {}).items():
            argv += [f"--{name.replace('_', '-')}", str(value)]
        if team_code is not None and team_code.evaluate_hook:
            argv += ["--team-hook", str(team_code.source_dir / team_code.evaluate_hook)]
        try:
            self.result.metrics = evaluate_step.main(argv)
        except TeamHookError as err:  # a serving hook's line names itself
            prefix = "" if isinstance(err, ServingHookError) else "evaluation hook: "
            self.result.status, self.result.failure = "failed_evaluation", f"{prefix}{err}"
            raise StepFailed(self.result.failure) from err
        self.result.paths["evaluation"] = root / "evaluation" / EVALUATION_FILE
        return ""

    def gate(self, *, metric: str, threshold: float) -> str:
        result = self.result
        metrics = result.metrics or {}
        gate = result.gate = decide_gate(metrics, metric=metric, threshold=threshold)
        side = "lower" if gate.lower_bound is not None else "upper"
        text = (f"{metric} {gate.value:.4f}"
                + f" (95 % {side} bound {gate.bound:.4f} on "
                  f"{metrics.get('evaluation', {}).get('rows', '?')} test rows)"
                + f" {gate.comparison} {threshold} is {'met' if gate.passed else 'NOT met'}")
        if not gate.passed:
            result.status, result.failure = "failed_gate", f"quality gate failed: {text}"
            raise StepFailed(text)
        return text

    def baseline(self) -> str:
        root = self.workdir / "baseline" / "opt" / "ml" / "processing"
        output = root / "baseline"
        data = ["--train-dir", str(place_folder(self.processed / "train_raw", root / "train")),
                "--test-dir", str(place_folder(self.processed / "test_raw", root / "test")),
                "--output-dir", str(output)]
        if self.answers is not None:  # an own image: the Score step's answers
            try:
                baseline_step.main(["--answers-dir", str(place_folder(self.answers, root / SCORE_ANSWERS)),
                                    "--metadata-dir", str(place_folder(self.processed / "metadata",
                                                                       root / "metadata")), *data])
            except evaluate_step.AnswersError as err:
                self.result.status, self.result.failure = "failed_baseline", f"own image: {err}"
                raise StepFailed(self.result.failure) from err
        else:
            baseline_step.main(["--model", str(place(self.artifact, root / "model").parent), *data])
        self.result.paths.update(baseline=output / BASELINE_FILE, golden=output / GOLDEN_FILE,
                                 sample_payload=output / SAMPLE_PAYLOAD_FILE)
        return ""


def run_local(workdir: Path, *, schema_path: Path, data_csv: Path, previous_baseline: Path | None = None,
              hyperparameters: Mapping[str, Any] | None = None, quality_metric: str = "auc",
              threshold: float = 0.9, progress: ProgressCallback | None = None,
              drift_thresholds: Mapping[str, Any] | None = None, data_uri: str = "",
              s3_object_versions: Mapping[str, str] | None = None, seed: int = 42,
              evaluation_options: Mapping[str, Any] | None = None,
              min_rows_per_class: int = validate_step.MIN_ROWS_PER_CLASS,
              team_code: TeamCode | None = None) -> LocalRunResult:
    """Run validate → preprocess → train → evaluate → gate → baseline under ``workdir``.

    ``hyperparameters`` go to the train script as strings, like SageMaker's. ``evaluation_options``: keyword
    arguments of the evaluate script (``single_row_requests``, ``batch_repeats``, ``bootstrap_resamples``)
    to keep tests fast. ``team_code``: the model team's training program instead of the platform's.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    result = LocalRunResult(workdir=workdir)
    run = _LocalRun(workdir=workdir, schema_path=schema_path, data_csv=data_csv, result=result,
                    notify=progress or (lambda step, event: None))
    try:
        run.step("validate", lambda: run.validate(previous_baseline=previous_baseline,
                                                  drift_thresholds=drift_thresholds,
                                                  min_rows_per_class=min_rows_per_class))
        run.step("preprocess", lambda: run.preprocess(seed=seed, data_uri=data_uri,
                                                      s3_object_versions=s3_object_versions, team_code=team_code))
        run.step("train", lambda: run.train(hyperparameters=hyperparameters, team_code=team_code))
        run.step("evaluate", lambda: run.evaluate(options=evaluation_options, team_code=team_code))
        run.step("gate", lambda: run.gate(metric=quality_metric, threshold=threshold))
        run.step("baseline", run.baseline)
    except StepFailed:
        return result
    result.status = "succeeded"
    return result
