"""The one Lambda factory (STYLE.md rule 6): every function in the app is made here with the same defaults.

Code is bundled without Docker: exactly the first-party modules the handler imports (read from the source
by ``stacks.constructs.import_graph``: the function's folder, the domain package's modules it uses, mlcore's),
declared data files, and the function's pinned requirements installed by ``pip --platform`` for its
architecture. The asset hash is computed from exactly the files that ship, the requirements, the
architecture and the Python version, because CDK does not hash the local bundler object (two architectures
would otherwise share one asset) and a source path hash would miss changes in the shared packages.

Every bundle ships byte code compiled by the interpreter of the runtime it declares (``RUNTIME_PYTHON_VERSION``):
Lambda's file system is read-only, so without ``.pyc`` files each cold start compiles every module it imports
(boto3's and pandas' included). The files are hash-based and unchecked (PEP 552): CDK's zip does not keep
modification times, so a timestamp-based ``.pyc`` would look stale and be compiled again; an unchecked one is used
as it is (the bundle never changes after it is built). ``co_filename`` is rewritten to ``/var/task/…``, so the
byte code does not depend on the build folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlsettings.config import LambdaSettings
from mlsettings.functions.base import FunctionEnvironment
from stacks.constructs.checkov import skip_checkov
from stacks.constructs.import_graph import bundle_files
from stacks.constructs.nag import acknowledge
from stacks.constructs.queues import dead_letter_queue

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = REPO_ROOT / "lambdas"
# The newest Lambda Python runtime whose interpreter the build machines have (pyenv on this machine kind and in
# CI: 3.12 and 3.13; 3.14 is not installable here). The bundle's wheels and its byte code are for this version.
RUNTIME = lambda_.Runtime.PYTHON_3_13
RUNTIME_PYTHON_VERSION = "3.13"
LAMBDA_TASK_ROOT = "/var/task"
"""Where Lambda unpacks a bundle: the byte code's file names point there."""
BUNDLE_PYTHON_VARIABLE = "MLOPS_BUNDLE_PYTHON"
"""An interpreter of ``RUNTIME_PYTHON_VERSION`` to compile bundles with, when it is not found by itself."""
_PLATFORM_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}
_EXCLUDED_DIRS = frozenset({"__pycache__", "tests", ".pytest_cache", ".mypy_cache"})
_BUNDLER_VERSION = "4"  # 4: byte code compiled into the bundle


class BundlePythonMissing(RuntimeError):
    """No interpreter of the runtime's Python version to compile the bundle with."""


@functools.cache
def runtime_python() -> str:
    """An interpreter of ``RUNTIME_PYTHON_VERSION``: ``$MLOPS_BUNDLE_PYTHON``, ``python3.13`` on the PATH, or pyenv's
    newest 3.13 (``~/.pyenv/versions/3.13.*``). Its version is checked: byte code of another minor version is
    refused by the runtime (magic number) and compiled again at every cold start."""
    candidates = [os.environ.get(BUNDLE_PYTHON_VARIABLE, ""), shutil.which(f"python{RUNTIME_PYTHON_VERSION}") or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installed = pyenv.glob(f"{RUNTIME_PYTHON_VERSION}.*/bin/python{RUNTIME_PYTHON_VERSION}")
    candidates += [str(path) for path in sorted(installed, reverse=True, key=lambda path: [
        int(part) for part in path.parts[-3].split(".") if part.isdigit()])]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == RUNTIME_PYTHON_VERSION:
            return candidate
    raise BundlePythonMissing(
        f"Lambda bundles are compiled by Python {RUNTIME_PYTHON_VERSION}, the runtime they declare, and none was "
        f"found: install it (pyenv install {RUNTIME_PYTHON_VERSION}) or set {BUNDLE_PYTHON_VARIABLE} to its "
        "interpreter")


def compile_bundle(output_dir: Path) -> None:
    """Byte code for every module of the bundle, by the runtime's interpreter: unchecked hash-based ``.pyc``
    (deterministic, never judged stale), file names under ``/var/task``. A file the interpreter cannot compile
    (a vendored Python-2 test fixture, say) fails the build: it could not be imported on Lambda either."""
    subprocess.run([runtime_python(), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                    "-s", str(output_dir), "-p", LAMBDA_TASK_ROOT, str(output_dir)], check=True)
# The SDK every bundle carries, at the project's pins. aws-xray-sdk (Powertools' [tracer] extra) requires
# botocore, so pip put the newest botocore 1.x into the bundle, where /var/task shadows the runtime's
# botocore but not its boto3: a pair no test ran. Bundling the tested boto3 and botocore together makes the
# function run exactly the SDK of `make test` (Lambda Developer Guide recommends bundling the SDK to control
# its version). About 34 MB unzipped.
SDK_PACKAGES = ("boto3", "botocore")


def sdk_pins() -> list[str]:
    """``boto3==X``, ``botocore==Y`` from the project's requirements.txt."""
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        if name.lower() in SDK_PACKAGES and version:
            pins[name.lower()] = f"{name.lower()}=={version.strip()}"
    missing = [p for p in SDK_PACKAGES if p not in pins]
    if missing:
        raise ValueError(f"requirements.txt pins no {missing}: the Lambda bundles need them")
    return [pins[p] for p in SDK_PACKAGES]


def shipped_files(source: str, data: Iterable[str] = ()) -> list[Path]:
    """The first-party files (relative to the repository) the bundle of ``lambdas/<source>`` ships."""
    return bundle_files(f"lambdas.{source}.handler", data)


def _requirements(source: str) -> Path:
    return LAMBDAS_DIR / source / "requirements.txt"


def bundle_hash(source: str, data: Iterable[str], architecture: str) -> str:
    """The asset hash: the files that ship (path and bytes), the requirements that are installed beside them,
    the bundler's version, the architecture, the Python version and the SDK pins."""
    digest = hashlib.sha256(f"{_BUNDLER_VERSION}|{architecture}|{RUNTIME_PYTHON_VERSION}|{sdk_pins()}".encode())
    requirements = _requirements(source)
    for path in [*(REPO_ROOT / f for f in shipped_files(source, data)),
                 *([requirements] if requirements.exists() else [])]:
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prune_bundle(output_dir: Path) -> None:
    """Remove what a function never needs and would only make it bigger (tests, byte code, dist-info RECORDs
    stay because importlib.metadata reads them)."""
    for path in sorted(output_dir.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _EXCLUDED_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix == ".pyc":
            path.unlink()


@jsii.implements(cdk.ILocalBundling)
class PipLocalBundler:
    """Builds a function bundle on this machine: copies sources, installs wheels for the target platform."""

    def __init__(self, *, source: str, data: tuple[str, ...], architecture: str) -> None:
        self.source = source
        self.data = data
        self.architecture = architecture

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        build_bundle(Path(output_dir), source=self.source, data=self.data, architecture=self.architecture)
        return True


def build_bundle(output_dir: Path, *, source: str, data: Iterable[str] = (), architecture: str) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    for relative in shipped_files(source, data):
        (output_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, output_dir / relative)
    requirements = _requirements(source)
    if requirements.exists() and requirements.read_text().strip():
        machine = _PLATFORM_MACHINE[architecture]
        # Only manylinux2014 makes pip pick old releases for new Pythons; offer manylinux_2_28 first.
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-qq", "--disable-pip-version-check",
             "--requirement", str(requirements), *sdk_pins(), "--target", str(output_dir),
             "--platform", f"manylinux_2_28_{machine}", "--platform", f"manylinux2014_{machine}",
             "--implementation", "cp", "--python-version", RUNTIME_PYTHON_VERSION,
             "--only-binary=:all:", "--upgrade"],
            check=True,
        )
    prune_bundle(output_dir)
    compile_bundle(output_dir)


class MlopsFunction(Construct):
    """A Python function with the project's defaults: arm64 (from config), the newest Python runtime, X-Ray
    tracing, JSON logs into an encrypted log group with retention, environment encrypted with the
    project key, reserved concurrency, and — for asynchronously invoked functions — two retries, then the
    event goes to an encrypted failure queue (on-failure destination and DLQ) whose depth alarms.

    The bundle holds what ``lambdas/<source>/handler.py`` imports (``import_graph``) and ``data``: the
    non-Python files the function reads at run time (a file or a folder, relative to the repository)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source: str,
        description: str,
        memory_size: int,
        timeout: cdk.Duration,
        settings: LambdaSettings,
        key: kms.IKey,
        environment: FunctionEnvironment,
        asynchronous: bool = False,
        reserved_concurrency: int | None = None,
        unreserved_demand: int | None = None,
        data: tuple[str, ...] = (),
        alarm_topic: sns.ITopic | None = None,
        handler_function: str = "handler",
        role: iam.IRole | None = None,
        function_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not (LAMBDAS_DIR / source / "handler.py").is_file():
            raise ValueError(f"lambdas/{source}/handler.py does not exist")
        if source != environment.SERVICE:
            raise ValueError(f"lambdas/{source} is given {type(environment).__name__}, the contract of "
                             f"{environment.SERVICE}")
        self.source = source
        self.environment = environment
        # Either a reservation (a guarantee and a cap) or, for a function that must not be throttled, its
        # SLA demand on the account's unreserved pool; app_builder checks both against the quota.
        self.reserved_concurrency: int | None = None if unreserved_demand is not None else (
            reserved_concurrency or settings.reserved_concurrency)
        self.concurrency_demand = unreserved_demand or 0
        self.data = data
        self.bundled_files = shipped_files(source, data)
        architecture = settings.architecture
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention(settings.log_retention_days),
            encryption_key=key, removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.failure_queue: sqs.Queue | None = None
        self.failure_alarm: cloudwatch.Alarm | None = None
        async_options = self._asynchronous_options(source, key) if asynchronous else {}
        self.function = lambda_.Function(
            self, "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64 if architecture == "arm64" else lambda_.Architecture.X86_64,
            handler=f"lambdas.{source}.handler.{handler_function}",
            role=role,
            code=lambda_.Code.from_asset(
                str(LAMBDAS_DIR / source),
                asset_hash_type=cdk.AssetHashType.CUSTOM,
                asset_hash=bundle_hash(source, data, architecture),
                bundling=cdk.BundlingOptions(
                    # Never pulled: local bundling always succeeds (no Docker engine is assumed anywhere).
                    image=cdk.DockerImage.from_registry("local-bundling-only"),
                    local=PipLocalBundler(source=source, data=data, architecture=architecture),
                ),
            ),
            memory_size=memory_size,
            timeout=timeout,
            # One contract class writes it here and reads it in the handler (mlsettings/functions/).
            environment=environment.to_env(),
            environment_encryption=key,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=self.log_group,
            reserved_concurrent_executions=self.reserved_concurrency,
            **async_options,
        )
        self._failure_handling(source, alarm_topic)
        if role is None:  # the role CDK made for this function alone
            created = self.function.role
            assert created is not None
            acknowledge_execution_role(created)

    def _asynchronous_options(self, source: str, key: kms.IKey) -> dict[str, Any]:
        """Two retries, then the event goes to an encrypted failure queue (on-failure destination and DLQ)."""
        self.failure_queue = dead_letter_queue(self, "FailureQueue", key=key,
                                               purpose=f"the {source} function (DLQ and on-failure)")
        return {
            "retry_attempts": 2,
            "max_event_age": cdk.Duration.hours(6),
            "on_failure": destinations.SqsDestination(self.failure_queue),
            "dead_letter_queue": self.failure_queue,
        }

    def _failure_handling(self, source: str, alarm_topic: sns.ITopic | None) -> None:
        """An asynchronous function's failure queue alarms when it holds an event; a synchronous one has none."""
        if self.failure_queue is not None:
            self.failure_alarm = cloudwatch.Alarm(
                self, "FailureQueueDepth",
                alarm_description=(f"Events that {source} failed to process after retries are waiting in its "
                                   "failure queue. Runbook: docs/runbooks/dlq-depth.md"),
                metric=self.failure_queue.metric_approximate_number_of_messages_visible(
                    period=cdk.Duration.minutes(5)),
                threshold=1, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            if alarm_topic is not None:
                self.failure_alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))
        else:
            reason = "Synchronously invoked: the caller receives the error; a DLQ applies to async invocations only."
            skip_checkov(self.function, "CKV_AWS_116", reason)
            acknowledge(self.function, "Serverless-LambdaDLQ", reason)
        runtime_reason = (f"{RUNTIME.name}, not the newest Lambda Python: the bundle ships byte code compiled by "
                          "the runtime's own interpreter, and the newer one is not installable on the build machines")
        acknowledge(self.function, "AwsSolutions-L1", runtime_reason)
        acknowledge(self.function, "Serverless-LambdaLatestVersion", runtime_reason)
        skip_checkov(self.function, "CKV_AWS_117",
                     "Calls only AWS APIs; the project runs without a VPC unless configured (no data plane "
                     "resources live in a VPC).")

    @property
    def role(self) -> iam.IRole:
        role = self.function.role
        assert role is not None
        return role


def acknowledge_execution_role(role: iam.IRole) -> None:
    """The two findings every Lambda execution role has, with their reasons."""
    acknowledge(role, "AwsSolutions-IAM4",
                "AWSLambdaBasicExecutionRole only allows writing the function's own CloudWatch logs.",
                findings=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"])
    # X-Ray's PutTraceSegments/PutTelemetryRecords support no resource-level permissions.
    acknowledge(role, "AwsSolutions-IAM5", "X-Ray trace upload actions do not support resource ARNs.",
                findings=["Resource::*"])


def shared_execution_role(scope: Construct, construct_id: str, *, description: str,
                          role_name: str | None = None) -> iam.Role:
    """One role for several functions that serve one purpose (e.g. the deployer's state-machine tasks), or a
    named role another account's resource policies admit (``role_name``, mlsettings.naming.consumer_role_name)."""
    role = iam.Role(scope, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                    description=description, role_name=role_name,
                    managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                        "service-role/AWSLambdaBasicExecutionRole")])
    acknowledge_execution_role(role)
    return role


_RETENTION_NAMES = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}


def log_retention(days: int) -> logs.RetentionDays:
    """The CloudWatch Logs retention for ``days`` (config only accepts the values CloudWatch allows)."""
    return logs.RetentionDays[_RETENTION_NAMES[days]]
