"""Benchmark of the operator CLI's start-up: wall time of `mlops --help` and other commands that should be
instant, each in a fresh process (interpreter start included: that is what an operator waits for).

    .venv/bin/python -m bench.bench_cli [--runs 15] [--baseline-rev GIT_REV]

Runs are sequential; the figure is the median of N runs, with the fastest and slowest beside it.
``--baseline-rev`` also times `mlops --help` of an older commit, exported with `git archive` into a
temporary folder and run with this interpreter (the repository itself is not touched), to show the
change. Prints a markdown table with the target from issue 14 (< 0.3 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3
RUN_CLI = "import sys; sys.path.insert(0, sys.argv[1]); from mlops import cli; sys.exit(cli.main(sys.argv[2:]))"


def wall_times(command: list[str], runs: int, cwd: Path = ROOT) -> list[float]:
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return times


def cli_command(source: Path, *argv: str) -> list[str]:
    """`mlops ARGV` from the source tree ``source`` (this checkout, or an exported older commit)."""
    return [sys.executable, "-c", RUN_CLI, str(source), *argv]


def export_revision(rev: str, into: Path) -> Path:
    archive = into / "source.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "source", filter="data")
    return into / "source"


def row(what: str, times: list[float], target: bool = True) -> str:
    median = statistics.median(times)
    met = ("yes" if median < TARGET_S else "no") if target else ""
    return (f"| {what} | {median:.3f} | {min(times):.3f} | {max(times):.3f} | "
            f"{f'< {TARGET_S} s' if target else ''} | {met} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per command (median reported)")
    parser.add_argument("--baseline-rev", help="also time `mlops --help` of this git revision")
    parser.add_argument("--validate-rev", help="also time `mlops config validate` of this git revision")
    args = parser.parse_args(argv)

    rows = [
        row("`python -c pass` (interpreter alone, for reference)", wall_times([sys.executable, "-c", "pass"],
                                                                                 args.runs), target=False),
        row("`mlops --help`", wall_times(cli_command(ROOT, "--help"), args.runs)),
        row("`mlops --version`", wall_times(cli_command(ROOT, "--version"), args.runs)),
        row("`mlops drift --help`", wall_times(cli_command(ROOT, "drift", "--help"), args.runs)),
        row("`mlops config validate`", wall_times(cli_command(ROOT, "config", "validate"), args.runs)),
    ]
    if args.baseline_rev:
        with tempfile.TemporaryDirectory() as folder:
            source = export_revision(args.baseline_rev, Path(folder))
            rows.append(row(f"`mlops --help` at {args.baseline_rev} (before the lazy imports)",
                            wall_times(cli_command(source, "--help"), max(3, args.runs // 3), cwd=source)))
    if args.validate_rev:
        with tempfile.TemporaryDirectory() as folder:
            source = export_revision(args.validate_rev, Path(folder))
            rows.append(row(f"`mlops config validate` at {args.validate_rev} (botocore's model loaded)",
                            wall_times(cli_command(source, "config", "validate"), args.runs, cwd=source)))
    load = os.getloadavg()
    print(f"Wall time of a fresh process per run, {args.runs} runs per command (seconds); load average "
          f"{load[0]:.1f} (1 minute) at the end.")
    print()
    print("| command | median | fastest | slowest | target | met |")
    print("|---|---:|---:|---:|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
