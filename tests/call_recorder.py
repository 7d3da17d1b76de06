"""Records every AWS API call a Lambda handler makes during the tests (the first stage of `make test`), so
that tests/infra/test_who_may_call.py can evaluate each one against the synthesized role of the function
that makes it in production.

Enabled by ``MLOPS_RECORD_CALLS=<directory>``: the root conftest then loads this plugin, which wraps
botocore's ``BaseClient._make_api_call`` — the one place every boto3 client call passes, before moto (or AWS)
sees it. A call is attributed to a function by the call stack: the outermost frame in a
``lambdas/<folder>/handler.py`` names the entry point (``lambdas.<folder>.handler.<function>``, the Lambda's
``Handler`` string); the first-party files on the stack are recorded too, so a call a test makes through a
handler's modules directly can be attributed by what each function ships (tests/infra/test_who_may_call.py).
Calls with no runtime frame (test set-up, the CLI alone) and calls a double makes from inside moto or the
demo's runtime doubles are not a function's own and are not recorded. Each process writes one
JSON-lines file, so xdist workers do not share one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = str(REPO / "lambdas") + os.sep
DOUBLES = (str(REPO / "mlops" / "demo") + os.sep, os.sep + "moto" + os.sep)
# Where code that runs under a function's role lives (handlers and what they import).
RUNTIME = ("lambdas" + os.sep, "mlplatform" + os.sep)
# Environment variables that say nothing about which resource a call names.
_ENV_SKIP = ("AWS_", "PYTEST", "POWERTOOLS_", "PATH", "HOME", "PWD", "OLDPWD", "SHELL", "LANG", "LC_", "TERM",
             "VIRTUAL_ENV", "PYTHON", "COV_", "JSII", "NODE", "XDG", "USER", "LOGNAME", "HOSTNAME", "TMP")


def _jsonable(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value[:512]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, bytes | bytearray):
        return None  # bodies do not name resources
    if isinstance(value, dict) and depth < 6:
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple) and depth < 6:
        return [_jsonable(v, depth + 1) for v in value[:50]]
    return str(value)[:512]


def _attribution() -> tuple[str | None, list[str]] | None:
    """The outermost handler frame's entry point (``lambdas.<folder>.handler.<function>``, or None) and the
    first-party files on the stack, innermost first; None for a double's own call (the innermost first-party
    frame is the demo's runtime double, or moto's code is on the way)."""
    frame = sys._getframe(2)
    entry: str | None = None
    files: list[str] = []
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(str(REPO) + os.sep) and os.sep + ".venv" not in filename:
            relative = str(Path(filename).relative_to(REPO))
            if not files and filename.startswith(DOUBLES[0]):
                return None
            if not files or files[-1] != relative:
                files.append(relative)
            if filename.startswith(LAMBDAS) and filename.endswith(os.sep + "handler.py"):
                entry = f"lambdas.{Path(filename).parent.name}.handler.{frame.f_code.co_name}"
        elif DOUBLES[1] in filename and not files:
            return None
        frame = frame.f_back  # type: ignore[assignment]
    return entry, files


# The requests tests/infra/test_recorded_requests.py checks against the APIs' whole rule set (tests/api_rules):
# every one the product's code builds (Lambda handlers, the domain, the CLI, the pipeline's local runner), recorded
# whole, whoever calls it — but not those a test builds itself or a double makes.
CHECKED_OPERATIONS = frozenset({
    "CreateTrainingJob", "CreateProcessingJob", "CreateTransformJob", "CreateModelPackage", "UpdateModelPackage",
    "CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint", "UpdateEndpointWeightsAndCapacities",
    "StartPipelineExecution", "RegisterScalableTarget", "PutScalingPolicy"})
PRODUCT = ("lambdas" + os.sep, "mlplatform" + os.sep, "mlops" + os.sep, "pipelines" + os.sep)


def _whole(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, dict):
        return {str(k): _whole(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_whole(v) for v in value]
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    return str(value)


class Recorder:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.path = directory / f"calls-{worker}-{os.getpid()}.jsonl"
        self.requests_path = directory / f"requests-{worker}-{os.getpid()}.jsonl"
        self.lines: list[str] = []
        self.requests: list[str] = []
        self.test = ""

    def install(self) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        recorder = self

        def recording(client: Any, operation_name: str, api_params: Any) -> Any:
            found = _attribution()
            if found is not None and (found[0] or any(f.startswith(RUNTIME) for f in found[1])):
                recorder.record(client, found[0], found[1], operation_name, api_params)
            if operation_name in CHECKED_OPERATIONS and found is not None and found[1] \
                    and found[1][0].startswith(PRODUCT):
                recorder.requests.append(json.dumps({
                    "service": client.meta.service_model.service_name, "operation": operation_name,
                    "caller": found[1][0], "params": _whole(api_params), "test": recorder.test}, sort_keys=True))
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = recording  # type: ignore[method-assign]

    def record(self, client: Any, entry: str | None, files: list[str], operation: str, params: Any) -> None:
        model = client.meta.service_model
        env = {k: v for k, v in os.environ.items() if k.isupper() and not k.startswith(_ENV_SKIP)}
        self.lines.append(json.dumps({
            "handler": entry, "files": files, "service": model.service_name, "signing_name": model.signing_name,
            "endpoint_prefix": model.endpoint_prefix, "operation": operation, "region": client.meta.region_name,
            "params": _jsonable(params), "env": env, "test": self.test}, sort_keys=True))

    def flush(self) -> None:
        for path, lines in ((self.path, self.lines), (self.requests_path, self.requests)):
            if lines:
                with path.open("a") as out:
                    out.write("\n".join(lines) + "\n")
                lines.clear()


_RECORDER: Recorder | None = None


def pytest_configure(config: Any) -> None:
    global _RECORDER  # noqa: PLW0603 - one recorder per process, installed once
    directory = os.environ.get("MLOPS_RECORD_CALLS")
    if directory and _RECORDER is None:
        _RECORDER = Recorder(Path(directory))
        _RECORDER.install()


def pytest_runtest_setup(item: Any) -> None:
    if _RECORDER is not None:
        _RECORDER.test = item.nodeid


def pytest_runtest_teardown(item: Any) -> None:
    if _RECORDER is not None:
        _RECORDER.flush()


def pytest_unconfigure(config: Any) -> None:
    if _RECORDER is not None:
        _RECORDER.flush()
