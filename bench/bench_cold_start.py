"""Cold import of every Lambda function's handler from its real bundle, with the byte code the bundler compiles
and without it (what every cold start paid before: Lambda's file system is read-only, so nothing compiled is kept).

    python -m bench.bench_cold_start [--runs 7]

The bundles are the factory's own (``stacks.constructs.lambda_function.build_bundle``) for this machine's
architecture (the runtime's Python must run them here), cached under ``bench/.data/bundles/`` by their asset
hash; the copy without byte code is the same bundle minus every ``__pycache__``. Each sample is a fresh
``python3.13 -I -S -B`` (the runtime's interpreter: isolated, no site-packages but the bundle's, writing no byte
code) that imports ``lambdas.<function>.handler`` with the environment the synthesized template gives the
function, the two variants alternating; the time is measured inside the process around the import (interpreter
start excluded). The load average is recorded with every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.summaries import median

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = ROOT / "bench" / ".data" / "bundles"
ARCHITECTURE = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[os.uname().machine]

IMPORT = """
import sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
__import__(sys.argv[2])
print(time.perf_counter() - started)
"""


def _placeholder(value: Any) -> str:
    """A template's deploy-time value as a plausible string (tokens become 'placeholder', joins keep literals)."""
    if isinstance(value, str):
        return value
    if value == {"Ref": "AWS::AccountId"}:
        return "123456789012"
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(_placeholder(p) for p in parts)
    return "placeholder"


def functions() -> dict[str, tuple[str, dict[str, str], tuple[str, ...]]]:
    """``{source: (handler module, environment, data files)}`` of every function the app deploys, from a synthesis
    without bundling."""
    sys.path.insert(0, str(ROOT))
    import aws_cdk as cdk

    from mlsettings.config import project_context
    from stacks.app_builder import build_app
    from stacks.constructs.lambda_function import MlopsFunction

    app = cdk.App(context={**project_context(), "aws:cdk:bundling-stacks": []}, outdir=str(BUNDLES / "cdk.out"))
    build_app(app)
    assembly = app.synth()
    found: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {}
    data = {f.source: f.data for f in app.node.find_all() if isinstance(f, MlopsFunction)}
    for stack in assembly.stacks_recursively:
        for resource in stack.template.get("Resources", {}).values():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            props = resource["Properties"]
            module = props["Handler"].rpartition(".")[0]
            source = module.split(".")[1]
            variables = props.get("Environment", {}).get("Variables", {})
            found.setdefault(source, (module, {k: _placeholder(v) for k, v in variables.items()}, data[source]))
    return found


def bundle(source: str, data: tuple[str, ...]) -> tuple[Path, Path]:
    """(with byte code, without) for this machine's architecture, built once per asset hash."""
    from stacks.constructs.lambda_function import build_bundle, bundle_hash

    digest = bundle_hash(source, data, ARCHITECTURE)[:16]
    compiled, plain = BUNDLES / f"{source}-{digest}", BUNDLES / f"{source}-{digest}-no-pyc"
    if not (compiled / ".complete").exists():
        shutil.rmtree(compiled, ignore_errors=True)
        build_bundle(compiled, source=source, data=data, architecture=ARCHITECTURE)
        (compiled / ".complete").write_text("")
    if not (plain / ".complete").exists():
        shutil.rmtree(plain, ignore_errors=True)
        shutil.copytree(compiled, plain, ignore=shutil.ignore_patterns("__pycache__"))
    return compiled, plain


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def sample(python: str, folder: Path, module: str, environment: dict[str, str]) -> float:
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_LAMBDA_FUNCTION_NAME": "bench", "LAMBDA_TASK_ROOT": str(folder),
           **environment}
    completed = subprocess.run([python, "-I", "-S", "-B", "-c", IMPORT, str(folder), module], env=env,
                               capture_output=True, text=True, check=False, cwd=folder)
    if completed.returncode != 0:
        raise RuntimeError(f"{module}: {completed.stderr.strip().splitlines()[-1:]}")
    return float(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cold import per Lambda function, with and without byte code")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from stacks.constructs.lambda_function import RUNTIME_PYTHON_VERSION, runtime_python

    python = runtime_python()
    results: dict[str, Any] = {"python": RUNTIME_PYTHON_VERSION, "architecture": ARCHITECTURE, "runs": args.runs,
                               "functions": {}}
    for source, (module, environment, data) in sorted(functions().items()):
        compiled, plain = bundle(source, data)
        times: dict[str, list[float]] = {"pyc": [], "source": []}
        loads = []
        sample(python, compiled, module, environment)  # the page cache warm for both, as on a warm Lambda host
        sample(python, plain, module, environment)
        for run in range(args.runs):
            loads.append(os.getloadavg()[0])
            order = (("pyc", compiled), ("source", plain)) if run % 2 == 0 else (("source", plain), ("pyc", compiled))
            for name, folder in order:
                times[name].append(sample(python, folder, module, environment))
        results["functions"][source] = {
            "module": module, "pyc_ms": 1000 * median(times["pyc"]), "source_ms": 1000 * median(times["source"]),
            "bytes_pyc": _size(compiled), "bytes_source": _size(plain), "load": [min(loads), max(loads)]}
        print(f"{source}: {results['functions'][source]}", file=sys.stderr)
    print(json.dumps(results, indent=2) if args.json else markdown(results))
    return 0


def markdown(results: dict[str, Any]) -> str:
    rows = results["functions"].values()
    loads = [value for row in rows for value in row["load"]]
    lines = [f"Python {results['python']} (the runtime's interpreter) on {results['architecture']}, median of "
             f"{results['runs']} fresh processes per function and variant, alternating; load average "
             f"{min(loads):.1f}-{max(loads):.1f}.", "",
             "| function | cold import without .pyc (ms) | with .pyc (ms) | faster | bundle MB without / with .pyc |",
             "|---|---:|---:|---:|---:|"]
    for source, row in results["functions"].items():
        lines.append(f"| `{source}` | {row['source_ms']:.0f} | {row['pyc_ms']:.0f} | "
                     f"{row['source_ms'] / row['pyc_ms']:.1f}x | {row['bytes_source'] / 2**20:.0f} / "
                     f"{row['bytes_pyc'] / 2**20:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    started = time.perf_counter()
    status = main()
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    sys.exit(status)
