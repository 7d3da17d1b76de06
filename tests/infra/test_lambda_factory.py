"""The Lambda factory: real bundles without Docker, the right wheels per architecture, every default set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from mlsettings.config import LambdaSettings
from mlsettings.functions.contracts import GateEnvironment
from stacks.constructs import lambda_function
from stacks.constructs.import_graph import BUNDLED_ROOTS
from stacks.constructs.lambda_function import (
    RUNTIME_PYTHON_VERSION,
    MlopsFunction,
    build_bundle,
    bundle_hash,
    sdk_pins,
    shipped_files,
)

# A function whose requirements include a compiled wheel (pydantic-core, through Powertools' parser).
SOURCE = "promotion_gate"


@pytest.fixture(scope="module", params=["arm64", "x86_64"])
def bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    output = tmp_path_factory.mktemp(f"bundle-{request.param}")
    build_bundle(output, source=SOURCE, architecture=request.param)
    return request.param, output


@pytest.mark.slow
def test_bundle_holds_wheels_for_its_architecture_only(bundle: tuple[str, Path]) -> None:
    architecture, output = bundle
    machine, other = ("aarch64", "x86_64") if architecture == "arm64" else ("x86_64", "aarch64")
    shared_objects = list(output.rglob("*.so"))
    assert any("pydantic_core" in str(p) for p in shared_objects)
    names = " ".join(p.name for p in shared_objects)
    assert machine in names
    assert other not in names
    tag = RUNTIME_PYTHON_VERSION.replace(".", "")
    assert any(p.name.startswith(f"_pydantic_core.cpython-{tag}") for p in shared_objects)


@pytest.mark.slow
def test_bundle_keeps_package_paths_and_drops_tests(bundle: tuple[str, Path]) -> None:
    _, output = bundle
    assert (output / "lambdas" / "__init__.py").is_file()
    assert (output / "lambdas" / SOURCE / "handler.py").is_file()
    assert (output / "mlplatform" / "registry" / "gate_rules.py").is_file()
    first_party = sorted(p.relative_to(output) for p in output.rglob("*") if p.is_file() and p.suffix != ".pyc"
                         and p.relative_to(output).parts[0] in BUNDLED_ROOTS)
    assert first_party == shipped_files(SOURCE)  # exactly the handler's import graph, nothing else
    assert not [p for p in output.rglob("tests") if p.is_dir()]


# Each .pyc beside the sources the runtime imports: the magic number of the runtime's Python, PEP 552 flags
# 0b01 (hash-based, source not checked), the source's hash (keyed by that magic number), /var/task names.
_CHECK_BYTECODE = """
import importlib.util, json, marshal, pathlib, sys
root = pathlib.Path(sys.argv[1])
problems, checked = [], 0
for source in root.rglob("*.py"):
    compiled = pathlib.Path(importlib.util.cache_from_source(str(source)))
    if not compiled.is_file():
        problems.append(f"no byte code for {source.relative_to(root)}")
        continue
    data = compiled.read_bytes()
    checked += 1
    if data[:4] != importlib.util.MAGIC_NUMBER:
        problems.append(f"{compiled.relative_to(root)}: magic {data[:4].hex()}")
    elif int.from_bytes(data[4:8], "little") != 0b01:
        problems.append(f"{compiled.relative_to(root)}: flags {data[4:8].hex()} (want unchecked hash-based)")
    elif data[8:16] != importlib.util.source_hash(source.read_bytes()):
        problems.append(f"{compiled.relative_to(root)}: source hash differs")
    elif not marshal.loads(data[16:]).co_filename.startswith("/var/task/"):
        problems.append(f"{compiled.relative_to(root)}: {marshal.loads(data[16:]).co_filename}")
print(json.dumps({"magic": importlib.util.MAGIC_NUMBER.hex(), "version": "%d.%d" % sys.version_info[:2],
                  "checked": checked, "problems": problems[:20]}))
"""


@pytest.mark.slow
def test_bundle_ships_byte_code_of_the_runtimes_python(bundle: tuple[str, Path]) -> None:
    """Checked by the runtime's own interpreter: every module has a .pyc its import system takes as it is."""
    _, output = bundle
    completed = subprocess.run([lambda_function.runtime_python(), "-I", "-c", _CHECK_BYTECODE, str(output)],
                               capture_output=True, text=True, check=True)
    result = json.loads(completed.stdout)
    assert result["version"] == RUNTIME_PYTHON_VERSION == lambda_function.RUNTIME.name.removeprefix("python")
    assert result["magic"] == RUNTIME_MAGIC[RUNTIME_PYTHON_VERSION]
    assert result["checked"] > 500  # boto3, botocore, Powertools, pydantic and ours
    assert result["problems"] == []


# The magic numbers CPython gives each minor version (Lib/importlib/_bootstrap_external.py, MAGIC_NUMBER).
RUNTIME_MAGIC = {"3.12": "cb0d0d0a", "3.13": "f30d0d0a"}


def test_the_bundle_python_is_the_runtimes_or_the_build_fails_naming_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lambda_function.runtime_python.cache_clear()
    try:
        found = lambda_function.runtime_python()
        version = subprocess.run([found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        assert version == RUNTIME_PYTHON_VERSION
        lambda_function.runtime_python.cache_clear()
        monkeypatch.setenv(lambda_function.BUNDLE_PYTHON_VARIABLE, sys.executable)  # this venv's 3.11: refused
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
        expected = rf"compiled by Python {RUNTIME_PYTHON_VERSION}.*{lambda_function.BUNDLE_PYTHON_VARIABLE}"
        with pytest.raises(lambda_function.BundlePythonMissing, match=expected):
            lambda_function.runtime_python()
    finally:
        lambda_function.runtime_python.cache_clear()


# Lambda quotas: "Deployment package (.zip file archive) size: 250 MB (unzipped, including layers)".
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024


@pytest.mark.slow
def test_bundle_carries_the_sdk_pair_the_tests_ran(bundle: tuple[str, Path]) -> None:
    """aws-xray-sdk pulls botocore into the bundle; the factory pins it with its boto3 to the project's pins
    (otherwise the newest botocore would sit beside the runtime's older boto3)."""
    _, output = bundle
    found = {p.name.removesuffix(".dist-info").split("-")[0].lower(): p.name.removesuffix(".dist-info").split("-")[1]
             for p in output.glob("*.dist-info") if p.name.split("-")[0].lower() in ("boto3", "botocore")}
    assert [f"{name}=={version}" for name, version in sorted(found.items())] == sdk_pins()


@pytest.mark.slow
def test_bundle_fits_the_unzipped_package_limit(bundle: tuple[str, Path]) -> None:
    _, output = bundle
    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    assert size < UNZIPPED_LIMIT_BYTES, f"{size / 2**20:.0f} MB unzipped"


def test_asset_hash_differs_per_architecture_and_follows_shared_code(monkeypatch: pytest.MonkeyPatch) -> None:
    arm = bundle_hash(SOURCE, (), "arm64")
    assert arm != bundle_hash(SOURCE, (), "x86_64")
    assert arm != bundle_hash(SOURCE, ("pipelines/schemas",), "arm64")  # declared data files are part of it
    assert arm == bundle_hash(SOURCE, (), "arm64")
    shipped = shipped_files(SOURCE)
    assert any(f.parts[0] == "mlplatform" for f in shipped)
    # the shared package's modules are hashed: a bundle without one of them hashes differently
    monkeypatch.setattr(lambda_function, "shipped_files", lambda source, data=(): shipped[:-1])
    assert bundle_hash(SOURCE, (), "arm64") != arm


ENVIRONMENT = GateEnvironment(group_prefix="mlops-dev-", ledger_table="ledger", idempotency_table="idem",
                              promotion_topic_arn="arn:aws:sns:eu-west-1:123456789012:promotion",
                              event_bus_name="bus", stage_servers={}, protected_production_versions=3)


def _function_template(*, asynchronous: bool) -> Template:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Test")
    MlopsFunction(stack, "Gate", source=SOURCE, description="test", memory_size=256,
                  timeout=cdk.Duration.seconds(30), settings=LambdaSettings(), key=kms.Key(stack, "Key"),
                  asynchronous=asynchronous, environment=ENVIRONMENT)
    return Template.from_stack(stack)


def test_function_defaults() -> None:
    template = _function_template(asynchronous=False)
    template.has_resource_properties("AWS::Lambda::Function", {
        "Runtime": "python3.13", "Architectures": ["arm64"], "MemorySize": 256, "Timeout": 30,
        "Handler": f"lambdas.{SOURCE}.handler.handler", "TracingConfig": {"Mode": "Active"},
        "LoggingConfig": Match.object_like({"LogFormat": "JSON"}), "ReservedConcurrentExecutions": 5,
        "KmsKeyArn": Match.any_value(),
        "Environment": {"Variables": ENVIRONMENT.to_env()},
    })
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30, "KmsKeyId": Match.any_value()})
    template.resource_count_is("AWS::SQS::Queue", 0)
    template.resource_count_is("AWS::Lambda::EventInvokeConfig", 0)


def test_asynchronous_function_gets_retries_failure_queue_and_depth_alarm() -> None:
    template = _function_template(asynchronous=True)
    template.resource_count_is("AWS::SQS::Queue", 1)
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "MaximumRetryAttempts": 2,
        "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
    })
    template.has_resource_properties("AWS::Lambda::Function", {"DeadLetterConfig": Match.any_value()})
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold"})


def test_missing_handler_fails_synth_with_the_path() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Test")
    with pytest.raises(ValueError, match=r"lambdas/nope/handler\.py does not exist"):
        MlopsFunction(stack, "Nope", source="nope", description="x", memory_size=128,
                      timeout=cdk.Duration.seconds(3), settings=LambdaSettings(), key=kms.Key(stack, "Key"),
                      environment=ENVIRONMENT)


def test_a_function_given_another_functions_contract_fails_synth() -> None:
    stack = cdk.Stack(cdk.App(), "Test")
    with pytest.raises(ValueError, match="lambdas/health_check is given GateEnvironment"):
        MlopsFunction(stack, "Wrong", source="health_check", description="x", memory_size=128,
                      timeout=cdk.Duration.seconds(3), settings=LambdaSettings(), key=kms.Key(stack, "Key"),
                      environment=ENVIRONMENT)
