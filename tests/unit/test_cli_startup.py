"""`mlops --help` and `mlops config validate` import none of the heavy libraries (the start-up time itself is
measured by bench/bench_cli.py, not here). Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "pandas", "scipy", "xgboost", "sklearn", "boto3", "botocore", "moto", "aws_cdk", "jsii",
         "lambdas", "mlcore", "pipelines")
PROBE = """
import json, sys
from mlops import cli
try:
    code = cli.main(sys.argv[2:])
except SystemExit as exit_:
    code = exit_.code
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _probe(*argv: str) -> dict[str, object]:
    completed = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), *argv], cwd=REPO,
                               capture_output=True, text=True, check=False, timeout=120)
    result: dict[str, object] = json.loads(completed.stderr.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("argv", [("--help",), ("config", "validate"), ("drift", "--help"), ("train", "--help"),
                                  ("status", "--help"), ("--version",)])
def test_light_commands_import_no_heavy_library(argv: tuple[str, ...]) -> None:
    result = _probe(*argv)
    assert result["code"] == 0
    # `config validate` checks instance types and regions against a snapshot of botocore's service and partition
    # data (mlsettings/aws_values.json, kept equal to botocore by tests/unit/test_aws_values.py): no SDK loads.
    assert result["loaded"] == []


def test_the_probe_sees_heavy_imports() -> None:
    """The probe itself can fail: a command that does import them is reported."""
    result = _probe("drift", "--baseline", "/nonexistent.json", "--capture", "/nonexistent")
    assert result["code"] == 2
    assert "mlcore" in result["loaded"]  # type: ignore[operator]
