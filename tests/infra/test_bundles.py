"""Every Lambda bundle, built as synth builds it: it holds what its handler imports and nothing else — no CLI,
no demo, no moto doubles, no test code — and its handler imports from the bundle alone. The sizes are
reported (run with ``-s`` to see the table; docs/ARCHITECTURE.md records them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.constructs.import_graph import BUNDLED_ROOTS, BundleGraphError, bundle_files
from stacks.constructs.lambda_function import MlopsFunction, build_bundle
from tests.infra.conftest import SynthesizedApp
from tests.infra.test_function_contracts import _functions

FIRST_PARTY = BUNDLED_ROOTS
# Lambda quotas: "Deployment package (.zip file archive) size: 250 MB (unzipped, including layers)".
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
# What must never ship: the CLI and its demo, the stacks, the tests and their kit (the moto doubles), test tooling.
FORBIDDEN_TOP_LEVEL = ("mlops", "stacks", "tests", "testkit", "bench", "moto", "pytest", "_pytest", "hypothesis")


@pytest.fixture(scope="module")
def functions(synthesized: SynthesizedApp) -> dict[str, MlopsFunction]:
    """One function per bundle source (the deployer's four tasks share one bundle), over every environment (the
    partials drift engine's function exists where cdk.json selects that engine: prod)."""
    found = [n for stage in synthesized.stages.values() for n in stage.node.find_all() if isinstance(n, MlopsFunction)]
    return {f.source: f for f in found}


@pytest.fixture(scope="module")
def bundles(functions: dict[str, MlopsFunction], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    built = {}
    for source, function in sorted(functions.items()):
        output = tmp_path_factory.mktemp(f"bundle-{source}")
        build_bundle(output, source=source, data=function.data, architecture="arm64")
        built[source] = output
    return built


def _files(bundle: Path) -> list[Path]:
    return sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())


def _sources(bundle: Path) -> list[Path]:
    """The bundle's files but the byte code compiled beside them (tests/infra/test_lambda_factory.py checks it)."""
    return [f for f in _files(bundle) if f.suffix != ".pyc"]


def test_the_app_has_seven_bundles(functions: dict[str, MlopsFunction]) -> None:
    assert sorted(functions) == ["batch_scoring", "deployer", "drift_monitor", "drift_partials", "health_check",
                                 "inference", "promotion_gate"]


@pytest.mark.slow
def test_no_bundle_holds_the_cli_the_demo_moto_or_tests(bundles: dict[str, Path]) -> None:
    found = {}
    for source, bundle in bundles.items():
        files = _files(bundle)
        # third-party wheels may carry their own conftest.py or test modules; ours must never ship
        bad = sorted({str(f) for f in files if f.parts[0].split("-")[0].lower() in FORBIDDEN_TOP_LEVEL
                      or f.parts[0].lower().startswith(("moto-", "pytest-"))
                      or (f.parts[0] in FIRST_PARTY and ("demo" in f.parts or "tests" in f.parts
                                                        or f.name.startswith(("moto_gaps", "conftest", "test_"))))})
        if bad:
            found[source] = bad[:10]
    assert found == {}


@pytest.mark.slow
def test_each_bundle_ships_exactly_its_handlers_import_graph(bundles: dict[str, Path],
                                                           functions: dict[str, MlopsFunction]) -> None:
    for source, bundle in bundles.items():
        first_party = [f for f in _sources(bundle) if f.parts[0] in FIRST_PARTY]
        assert first_party == functions[source].bundled_files, source
        assert not [f for f in first_party if f.parts[0] == "lambdas" and f.parts[1] not in (source, "__init__.py")]


# Imports the handler module from the bundle's first-party files alone: no working directory on sys.path,
# the repository's editable install switched off; third-party packages come from this interpreter (the
# bundle's own wheels are built for the Lambda runtime's Python and architecture, not this machine's).
_IMPORT_FROM_BUNDLE = """
import importlib, json, sys
bundle = sys.argv[1]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in getattr(h, "__module__", "").lower()]
sys.path[:] = [bundle] + [p for p in sys.path[1:] if "site-packages" in p or "lib/python" in p]
sys.path_importer_cache.clear()
module = importlib.import_module(sys.argv[2])
assert callable(getattr(module, sys.argv[3]))
first_party = {name: getattr(m, "__file__", None) or "" for name, m in sys.modules.items()
               if name.split(".")[0] in ("lambdas", "mlplatform", "mlcore", "mlsettings", "pipelines", "mlops",
                                         "stacks", "tests")}
print(json.dumps({"outside": sorted(n for n, f in first_party.items() if not f.startswith(bundle)),
                  "forbidden": sorted(n for n in sys.modules if n.split(".")[0] in ("mlops", "moto", "pytest"))}))
"""


@pytest.mark.slow
def test_each_handler_imports_from_its_bundle_alone(synthesized: SynthesizedApp, functions: dict[str, MlopsFunction],
                                                    tmp_path: Path) -> None:
    import os

    failures = {}
    handlers = {**_functions(synthesized, "dev"), **_functions(synthesized, "prod")}  # prod: the partials engine
    for handler, variables in handlers.items():
        module, _, attribute = handler.rpartition(".")
        source = module.split(".")[1]
        bundle = tmp_path / source
        if not bundle.exists():  # the first-party part of the bundle: what the import needs from this repo
            for relative in bundle_files(module, functions[source].data):
                (bundle / relative).parent.mkdir(parents=True, exist_ok=True)
                (bundle / relative).write_bytes((Path(__file__).resolve().parents[2] / relative).read_bytes())
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith(("POWERTOOLS_", "AWS_", "PYTHON"))}
        environment |= {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "LAMBDA_TASK_ROOT": str(bundle), **variables}
        completed = subprocess.run([sys.executable, "-I", "-c", _IMPORT_FROM_BUNDLE, str(bundle), module, attribute],
                                   cwd=tmp_path, env=environment, capture_output=True, text=True, check=False,
                                   timeout=120)
        if completed.returncode != 0:
            failures[handler] = completed.stderr.strip().splitlines()[-1:]
            continue
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        if result["outside"] or result["forbidden"]:
            failures[handler] = result
    assert failures == {}


def test_a_handler_that_imports_the_cli_fails_synth(tmp_path: Path) -> None:
    (tmp_path / "lambdas" / "bad").mkdir(parents=True)
    (tmp_path / "lambdas" / "__init__.py").write_text("")
    (tmp_path / "lambdas" / "bad" / "__init__.py").write_text("")
    (tmp_path / "lambdas" / "bad" / "handler.py").write_text("def handler(e, c):\n    from mlops import cli\n")
    (tmp_path / "mlops").mkdir()
    (tmp_path / "mlops" / "__init__.py").write_text("")
    (tmp_path / "mlops" / "cli.py").write_text("")
    with pytest.raises(BundleGraphError, match=r"lambdas.bad.handler imports mlops.*must never ship"):
        bundle_files("lambdas.bad.handler", root=tmp_path)


@pytest.mark.slow
def test_bundle_sizes_are_reported_and_fit_the_limit(bundles: dict[str, Path]) -> None:
    rows = ["| bundle | bytes (unzipped) | files | first-party bytes | first-party files |",
            "|---|---:|---:|---:|---:|"]
    for source, bundle in sorted(bundles.items()):
        files = [bundle / f for f in _files(bundle)]
        first_party = [f for f in files if f.relative_to(bundle).parts[0] in FIRST_PARTY]
        size = sum(f.stat().st_size for f in files)
        assert size < UNZIPPED_LIMIT_BYTES, f"{source}: {size / 2**20:.0f} MB unzipped"
        rows.append(f"| {source} | {size:,} | {len(files):,} | {sum(f.stat().st_size for f in first_party):,} | "
                    f"{len(first_party)} |")
    print("\nLambda bundles (arm64):\n" + "\n".join(rows))
