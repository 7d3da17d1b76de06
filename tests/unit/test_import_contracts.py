"""The layer contracts of docs/ARCHITECTURE.md (pyproject.toml ``[tool.importlinter]``, run by ``make lint``)
hold for the tree as it is, and each one fails on a new arrow that crosses its layer: the tree is copied,
one import is added, and lint-imports must name the broken contract and the import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("mlsettings", "mlcore", "mlplatform", "mlops", "lambdas", "pipelines", "stacks", "testkit")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(target: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", target / "pyproject.toml")
    return target


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, so the graph is built from it and not from the editable install.
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache", "--no-logo"],
                          cwd=root, env=environment, capture_output=True, text=True, check=False, timeout=120)


def test_every_contract_is_kept_by_the_tree_as_it_is(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 11 kept, 0 broken." in result.stdout


NEW_ARROWS = [
    # (file that gains the import, the import, the contract that must break, the arrow it reports)
    ("mlcore/features.py", "import lambdas.deployer.handler", "mlcore is pure",
     "mlcore.features -> lambdas.deployer.handler"),
    ("mlcore/drift/run.py", "import botocore.exceptions", "mlcore is pure", "mlcore.drift.run -> botocore"),
    ("mlplatform/serving/endpoint_state.py", "import lambdas.health_check.handler",
     "The domain (mlplatform) imports no handler", "mlplatform.serving.endpoint_state -> lambdas.health_check.handler"),
    ("mlplatform/registry/gate_rules.py", "import mlops.cli", "Layers:", "mlplatform.registry.gate_rules -> mlops.cli"),
    ("lambdas/inference/handler.py", "import lambdas.deployer.settings", "No Lambda folder imports another",
     "lambdas.inference.handler -> lambdas.deployer.settings"),
    ("mlops/commands/drift_cmds.py", "import lambdas.drift_monitor.settings", "The CLI imports no Lambda code",
     "mlops.commands.drift_cmds -> lambdas.drift_monitor.settings"),
    ("mlops/demo/report.py", "import lambdas.deployer.settings", "The CLI imports no Lambda code",
     "mlops.demo.report -> lambdas.deployer.settings"),
    ("mlsettings/naming.py", "import mlplatform.serving.endpoint_state", "Stacks import no runtime package",
     "mlsettings.naming -> mlplatform.serving.endpoint_state"),
    ("mlops/commands/config_cmd.py", "import stacks.app_builder", "The CLI and the demo import no CDK code",
     "mlops.commands.config_cmd -> stacks.app_builder"),
    ("mlsettings/rollout.py", "import botocore.session", "mlsettings (what crosses",
     "mlsettings.rollout -> botocore"),
    ("mlsettings/instance_types.py", "import mlcore.features", "Layers:",
     "mlsettings.instance_types -> mlcore.features"),
    ("pipelines/steps/train.py", "import mlplatform.monitoring.variant_models", "Code that runs in SageMaker",
     "pipelines.steps.train -> mlplatform.monitoring.variant_models"),
    ("mlops/commands/serving_cmds.py", "import testkit.moto_gaps", "The test kit (moto doubles",
     "mlops.commands.serving_cmds -> testkit.moto_gaps"),
    ("mlplatform/serving/deployment_flow.py", "import testkit.inference_doubles", "The test kit (moto doubles",
     "mlplatform.serving.deployment_flow -> testkit.inference_doubles"),
    ("mlsettings/drift_partials.py", "import numpy", "mlsettings (what crosses",
     "mlsettings.drift_partials -> numpy"),
]


@pytest.mark.parametrize(("file", "statement", "contract", "arrow"), NEW_ARROWS,
                         ids=[a[0] + ":" + a[1].split()[-1] for a in NEW_ARROWS])
def test_a_new_arrow_across_a_layer_breaks_its_contract(tmp_path: Path, file: str, statement: str, contract: str,
                                                        arrow: str) -> None:
    root = _copy_tree(tmp_path)
    target = root / file
    target.write_text(target.read_text() + f"\n{statement}  # the new arrow\n")
    result = _lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    assert arrow in broken


def test_the_demo_may_import_a_handler_entry_point_only(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    target = root / "mlops" / "demo" / "report.py"
    target.write_text(target.read_text() + "\nimport lambdas.health_check.handler  # an entry point\n")
    result = _lint(root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bench_imports_no_tests() -> None:
    """bench/ measures product code with the test kit's doubles; it imports nothing from tests/ (which is not a
    package the benchmarks may rely on)."""
    import ast

    found = []
    for path in sorted((REPO / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {name}" for name in names if name == "tests" or name.startswith("tests.")]
    assert found == []
