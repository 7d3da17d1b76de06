"""`make bench`: run every benchmark on this machine and write their results into docs/BENCHMARKS.md.

Each benchmark is a module that prints Markdown; this runner only runs them one after another (never in
parallel: they would measure each other) and records the machine they ran on.

    python -m bench [--only training,inference] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "BENCHMARKS.md"
# (module, title, arguments, quick arguments)
BENCHMARKS: tuple[tuple[str, str, list[str], list[str]], ...] = (
    ("bench.bench_training", "Training pipeline, local, per step (issue 3)", [], ["--rows", "20000"]),
    ("bench.bench_inference", "Inference Lambda overhead (issue 6)", [], ["--imports", "5", "--requests", "1000"]),
    ("bench.bench_serving", "Serving: scoring latency and deployer decisions (issue 5)", [], []),
    ("bench.bench_drift", "Drift run vs Evidently vs an independent bare read (issues 7, 28)", [],
     ["--rows", "20000", "--rounds", "1"]),
    ("bench.bench_cold_start", "Lambda cold imports with and without byte code (issue 28)", [], ["--runs", "3"]),
    ("bench.bench_cli", "CLI start-up (issue 14)", [], ["--runs", "3"]),
    ("bench.bench_drift_quality", "Drift detectors: false alarms and power, ours vs Evidently (issue 17)", [],
     ["--quick"]),
    ("bench.bench_synth_scale", "Synthesis at 1, 10 and 50 models (issue 24)", ["--gates"],
     ["--sizes", "1,3", "--fixture-sizes", ""]),
    ("bench.bench_sdk_pipeline", "SDK-authored pipeline definitions offline, twice (issue 26)", [], []),
)


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} "
            f"{platform.machine()}; load average {load:.1f} at start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", help="comma-separated benchmark names "
                        "(training, inference, serving, drift, start, cli, quality, scale, pipeline)")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run; not for the record)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else None
    sections = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); every figure below was measured by the benchmark named "
        "in its section, on the machine described here. Targets are the issues' targets; a figure that misses "
        "its target says so.",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
    ]
    failures = 0
    for module, title, arguments, quick in BENCHMARKS:
        name = module.rsplit("_", 1)[-1]
        if wanted and name not in wanted:
            continue
        if not (REPO / (module.replace(".", "/") + ".py")).exists():
            sections += [f"## {title}", "", f"`{module}` does not exist yet.", ""]
            continue
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", module, *(quick if args.quick else arguments)],
                                   cwd=REPO, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        print(f"{module}: exit {completed.returncode} in {elapsed:.0f} s", file=sys.stderr)
        sections += [f"## {title}", "", f"`python -m {module} {' '.join(quick if args.quick else arguments)}`"
                     f" ({elapsed:.0f} s)", ""]
        if completed.returncode != 0:
            failures += 1
            sections += ["The benchmark failed:", "", "```", completed.stderr.strip()[-2000:], "```", ""]
        else:
            sections += [_markdown_part(completed.stdout), ""]
    args.output.write_text("\n".join(sections).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 1 if failures else 0


def _markdown_part(stdout: str) -> str:
    """Benchmarks may log progress before their Markdown; keep from the first heading or table on."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("#", "|")):
            return "\n".join(lines[index:]).strip()
    return stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
