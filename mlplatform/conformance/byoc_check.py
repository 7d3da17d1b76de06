"""The conformance check of a "bring your own container" image: its ``train`` and ``serve`` programs run in a
private ``/opt/ml`` laid out as SageMaker lays it out, inside ``unshare`` (user, mount, network and pid
namespaces: no network but loopback, as ``EnableNetworkIsolation`` gives a container; every process ends with the
namespace), and what they write and answer is judged by ``container_contract``'s rules.

The image is represented by its folder (what its Dockerfile copies): executables ``train`` and ``serve``. Docker
itself, the image build, GPUs and registry pulls are outside the check (docs/TRAINING.md)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlplatform.conformance import container_contract as contract

DRIVER = Path(__file__).with_name("sandbox_driver.py")
# user (root inside, for the mounts), mount (/opt is our tmpfs), network (loopback only), pid (nothing outlives the
# run: the driver is the namespace's init, and --kill-child ends it if the checker dies).
UNSHARE = ("unshare", "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork", "--mount-proc",
           "--kill-child")
_MOUNT_THEN_EXEC = 'mount -t tmpfs none /opt && exec "$0" "$@"'
# Margin over the phase's own limits before the checker gives up on the namespace itself.
_SESSION_MARGIN_SECONDS = 30.0


class SandboxUnavailable(Exception):
    """``unshare`` cannot create the namespaces here (missing, or user namespaces are disabled)."""


class SandboxFailed(Exception):
    """The namespace itself failed or hung (not the image's programs, whose failures are findings)."""


@dataclass(frozen=True, kw_only=True)
class InvocationCase:
    """One golden request: POST /invocations with this body, Content-Type and Accept; ``rows`` answers expected."""

    name: str
    body: str
    rows: int
    content_type: str = "text/csv"
    accept: str = "text/csv"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """A rule the image broke, as one line."""

    rule: str
    message: str


@dataclass(kw_only=True)
class ConformanceResult:
    findings: list[Finding] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)
    serve: dict[str, Any] = field(default_factory=dict)
    network: dict[str, Any] = field(default_factory=dict)
    model_files: list[str] = field(default_factory=list)

    @property
    def conformant(self) -> bool:
        return not self.findings

    def add(self, rule: str, message: str) -> None:
        self.findings.append(Finding(rule=rule, message=message))

    def to_dict(self) -> dict[str, Any]:
        return {"conformant": self.conformant, "findings": [asdict(f) for f in self.findings],
                "network": self.network, "train": self.train, "serve": self.serve, "model_files": self.model_files}


@dataclass(frozen=True, kw_only=True)
class CheckLimits:
    train_seconds: float = contract.TRAIN_TIMEOUT_SECONDS
    ping_startup_seconds: float = contract.PING_STARTUP_SECONDS
    invocation_seconds: float = contract.INVOCATION_TIMEOUT_SECONDS
    stop_grace_seconds: float = contract.STOP_GRACE_SECONDS


def sandbox_available() -> str | None:
    """``None`` when the namespaces can be created here, else one line saying why not."""
    if shutil.which(UNSHARE[0]) is None:
        return "unshare is not installed (util-linux): the conformance check needs it to isolate the programs"
    probe = subprocess.run([*UNSHARE, "sh", "-c", "mount -t tmpfs none /opt"], capture_output=True, text=True,
                           check=False, timeout=30)
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return f"unshare cannot create user, mount and network namespaces here ({reason})"
    return None


def check_image(program_dir: Path, *, channels: Mapping[str, Path], channel_content_types: Mapping[str, str],
                hyperparameters: Mapping[str, Any], requests: Sequence[InvocationCase],
                instance_type: str = "ml.m5.xlarge", limits: CheckLimits = CheckLimits(),
                workdir: Path | None = None) -> ConformanceResult:
    """Train with the given channels and hyperparameters, serve the model, send the requests; the findings say
    which rule the image broke (none: conformant). Raises ``SandboxUnavailable`` when the namespaces cannot be
    created, ``SandboxFailed`` when one fails by itself, and ``FileNotFoundError`` for a program folder without
    ``train`` or ``serve``."""
    for program in (contract.TRAIN_PROGRAM, contract.SERVE_PROGRAM):
        if not (program_dir / program).is_file():
            raise FileNotFoundError(f"{program_dir / program} does not exist: the image needs a {program} program")
    reason = sandbox_available()
    if reason is not None:
        raise SandboxUnavailable(reason)
    own_workdir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="mlops-conformance-")) if workdir is None else workdir
    try:
        result = ConformanceResult()
        model = _train_phase(root, program_dir, channels, channel_content_types, hyperparameters, instance_type,
                             limits, result)
        if model is not None:
            _serve_phase(root, program_dir, model, requests, limits, result)
        return result
    finally:
        if own_workdir:
            shutil.rmtree(root, ignore_errors=True)


def _train_phase(root: Path, program_dir: Path, channels: Mapping[str, Path], content_types: Mapping[str, str],
                 hyperparameters: Mapping[str, Any], instance_type: str, limits: CheckLimits,
                 result: ConformanceResult) -> Path | None:
    stage = root / "train-stage"
    config = stage / "input/config"
    config.mkdir(parents=True)
    declared = tuple(contract.Channel(name=name, content_type=content_types.get(name, "application/octet-stream"))
                     for name in channels)
    (config / contract.HYPERPARAMETERS_FILE).write_text(contract.hyperparameters_document(hyperparameters),
                                                        encoding="utf-8")
    (config / contract.INPUT_DATA_CONFIG_FILE).write_text(contract.input_data_config_document(declared),
                                                          encoding="utf-8")
    (config / contract.RESOURCE_CONFIG_FILE).write_text(contract.resource_config_document(instance_type),
                                                        encoding="utf-8")
    for name, folder in channels.items():
        shutil.copytree(folder, stage / "input/data" / name)
    # "How Amazon SageMaker AI Provides Training Information": TRAINING_JOB_NAME and TRAINING_JOB_ARN are set.
    env = {"TRAINING_JOB_NAME": "conformance-check",
           "TRAINING_JOB_ARN": "arn:aws:sagemaker:us-east-1:000000000000:training-job/conformance-check"}
    outcome = _run_phase(root, "train", program_dir, stage, {"train_env": env, "train_timeout": limits.train_seconds},
                         limits.train_seconds)
    result.train, result.network = {k: v for k, v in outcome.items() if k != "network"}, outcome["network"]
    _judge_network(outcome["network"], result)
    model_dir = root / "results-train" / "model"
    result.model_files = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()) \
        if model_dir.is_dir() else []
    code = outcome["exit_code"]
    if code is None:
        result.add("train.exit", f"train did not finish within {limits.train_seconds:g} s")
        return None
    if code != 0:
        failure = (outcome.get("failure") or "").strip()
        if failure:  # "How Amazon SageMaker AI Signals Algorithm Success and Failure": the job's FailureReason
            result.add("train.exit", f"train exited with {code}: {failure.splitlines()[0]}")
        else:
            result.add("train.exit", f"train exited with {code} and wrote no {contract.FAILURE_FILE}")
        return None
    if not result.model_files:
        result.add("train.model", f"train wrote no model: {contract.MODEL_DIR} is empty")
        return None
    artifact = root / "model.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:  # what SageMaker uploads: the folder's contents at the root
        for name in result.model_files:
            tar.add(model_dir / name, arcname=name)
    return artifact


def _serve_phase(root: Path, program_dir: Path, artifact: Path, requests: Sequence[InvocationCase],
                 limits: CheckLimits, result: ConformanceResult) -> None:
    stage = root / "serve-stage"
    stage.mkdir()
    settings = _serve_settings(artifact, requests, limits)
    budget = limits.ping_startup_seconds + limits.stop_grace_seconds + limits.invocation_seconds * len(requests)
    outcome = _run_phase(root, "serve", program_dir, stage, settings, budget)
    result.serve = {k: v for k, v in outcome.items() if k != "network"}
    _judge_serving(outcome, requests, limits, result)


def _job_file(root: Path, phase: str, program_dir: Path, stage: Path, settings: Mapping[str, Any]) -> Path:
    results = root / f"results-{phase}"
    results.mkdir()
    job = {"phase": phase, "program_dir": str(program_dir.resolve()), "stage_dir": str(stage),
           "opt_ml": contract.OPT_ML, "results_dir": str(results), "python_dir": str(Path(sys.executable).parent),
           **settings}
    job_file = root / f"{phase}-job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    return job_file


def _serve_settings(artifact: Path, requests: Sequence[InvocationCase], limits: CheckLimits) -> dict[str, Any]:
    return {"serve_env": {}, "model_artifact": str(artifact), "port": contract.SERVING_PORT,
            "ping_path": contract.PING_PATH, "invocations_path": contract.INVOCATIONS_PATH,
            "ping_startup": limits.ping_startup_seconds, "invocation_timeout": limits.invocation_seconds,
            "stop_grace": limits.stop_grace_seconds, "requests": [asdict(case) for case in requests]}


SHORT_TMP = "/tmp"  # noqa: S108 - a private mkdtemp folder in it, for a short socket path
SOCKET_PATH_MAX = 108
"""sun_path of Linux's struct sockaddr_un (<sys/un.h>), the terminating NUL included."""


class ServingSandbox:
    """An own image's ``serve`` kept running on one model artifact in the check's namespaces, answering requests
    through the sandbox driver's relay (a Unix socket): the stand-in for its endpoint where the platform's local
    runs and its demo need one. ``close`` stops it (SIGTERM, as SageMaker stops a container)."""

    def __init__(self, program_dir: Path, artifact: Path, limits: CheckLimits = CheckLimits()) -> None:
        reason = sandbox_available()
        if reason is not None:
            raise SandboxUnavailable(reason)
        # A pathname socket's path must fit sockaddr_un (108 bytes on Linux): a short folder, not a long TMPDIR's.
        self._root = Path(tempfile.mkdtemp(prefix="mlops-", dir=SHORT_TMP if Path(SHORT_TMP).is_dir() else None))
        if len(str(self._root / "relay.sock").encode()) >= SOCKET_PATH_MAX:
            shutil.rmtree(self._root, ignore_errors=True)
            raise SandboxUnavailable(f"the relay's socket path under {self._root.parent} is longer than a Unix socket "
                                     f"takes ({SOCKET_PATH_MAX} bytes)")
        self._limits = limits
        stage = self._root / "serve-stage"
        stage.mkdir()
        self._socket = self._root / "relay.sock"
        job_file = _job_file(self._root, "serve", program_dir, stage,
                             {**_serve_settings(artifact, (), limits), "relay_socket": str(self._socket)})
        self._log = (self._root / "session.log").open("wb")
        self._session = subprocess.Popen([*UNSHARE, "sh", "-c", _MOUNT_THEN_EXEC, sys.executable, "-I", str(DRIVER),
                                          str(job_file)], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + limits.ping_startup_seconds + _SESSION_MARGIN_SECONDS
        while not Path(f"{self._socket}.ready").is_file():
            if self._session.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SandboxFailed(f"the image's serve did not come up within {limits.ping_startup_seconds:g} s")
            time.sleep(0.05)

    def invoke(self, body: bytes, content_type: str, accept: str) -> dict[str, Any]:
        """POST /invocations: {status, content_type, body} (status None and an error when it got no answer); an empty
        ``accept`` sends no Accept header."""
        request = {"body": body.decode("utf-8"), "content_type": content_type, "accept": accept}
        return self._send(request, timeout=self._limits.invocation_seconds + _SESSION_MARGIN_SECONDS)

    def _send(self, request: Mapping[str, Any], *, timeout: float) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(str(self._socket))
            connection.sendall(json.dumps(request).encode("utf-8"))
            connection.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        answer: dict[str, Any] = json.loads(b"".join(chunks) or b"{}")
        return answer

    def close(self) -> None:
        if self._session.poll() is None:
            try:
                self._send({"stop": True}, timeout=5.0)
                self._session.wait(timeout=self._limits.stop_grace_seconds + _SESSION_MARGIN_SECONDS)
            except (OSError, subprocess.TimeoutExpired):
                self._session.kill()
                self._session.wait()
        self._log.close()
        shutil.rmtree(self._root, ignore_errors=True)


def _run_phase(root: Path, phase: str, program_dir: Path, stage: Path, settings: Mapping[str, Any],
               budget: float) -> dict[str, Any]:
    results = root / f"results-{phase}"
    job_file = _job_file(root, phase, program_dir, stage, settings)
    try:
        session = subprocess.run([*UNSHARE, "sh", "-c", _MOUNT_THEN_EXEC, sys.executable, "-I", str(DRIVER),
                                  str(job_file)], capture_output=True, text=True, check=False,
                                 timeout=budget + _SESSION_MARGIN_SECONDS)
    except subprocess.TimeoutExpired:
        raise SandboxFailed(f"the {phase} namespace did not end within {budget + _SESSION_MARGIN_SECONDS:g} s") \
            from None
    report = results / f"{phase}.json"
    if session.returncode != 0 or not report.is_file():
        detail = (session.stderr.strip().splitlines() or ["no message"])[-1]
        raise SandboxFailed(f"the {phase} namespace failed (exit {session.returncode}): {detail}")
    outcome: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    for log in ("train.log", "serve.log"):
        if (results / log).is_file():
            outcome["log_tail"] = (results / log).read_text(encoding="utf-8", errors="replace")[-2000:]
    return outcome


def _judge_network(network: Mapping[str, Any], result: ConformanceResult) -> None:
    others = [name for name in network.get("interfaces", []) if name != "lo"]
    if others or str(network.get("probe", "")).endswith("connected"):
        result.add("network", "the programs had a network (interfaces "
                   f"{', '.join(network.get('interfaces', []))}; {network.get('probe')}): the check needs network "
                   "isolation")


def _judge_serving(outcome: Mapping[str, Any], requests: Sequence[InvocationCase], limits: CheckLimits,
                   result: ConformanceResult) -> None:
    ping = outcome.get("ping") or {}
    port = contract.SERVING_PORT
    if ping.get("status") is None:
        if outcome.get("exit_code") is not None:
            result.add("serve.ping", f"serve exited with {outcome['exit_code']} before answering GET "
                       f"{contract.PING_PATH} on port {port}")
        else:
            result.add("serve.ping", f"serve did not answer GET {contract.PING_PATH} on port {port} within "
                       f"{limits.ping_startup_seconds:g} s")
        return
    if ping["status"] != 200:
        result.add("serve.ping", f"GET {contract.PING_PATH} answered {ping['status']}, not 200, within "
                   f"{limits.ping_startup_seconds:g} s")
        return
    answers = {answer["name"]: answer for answer in outcome.get("invocations", [])}
    for case in requests:
        answer = answers.get(case.name) or {}
        where = f"POST {contract.INVOCATIONS_PATH} ({case.name}, {case.rows} rows)"
        if answer.get("status") is None:
            result.add("serve.invocations", f"{where} got no answer: {answer.get('error', 'not sent')}")
            continue
        if answer["status"] != 200:
            first = (answer.get("body") or "").strip().splitlines()[:1]
            result.add("serve.invocations", f"{where} answered {answer['status']}, not 200"
                       + (f": {first[0][:200]}" if first else ""))
            continue
        rows = contract.count_rows(answer["body"].encode("utf-8"), answer.get("content_type") or case.accept)
        if rows is None:
            result.add("serve.invocations", f"{where} answered a body that is not {answer.get('content_type')}")
        elif rows != case.rows:
            result.add("serve.invocations", f"{where} answered {rows} rows, not one per input row")
