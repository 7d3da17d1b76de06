"""Benchmark: the local training pipeline end to end — wall time and peak memory per step.

Runs `pipelines.local_run.run_local` (the same step scripts SageMaker runs) on
  * the bundled breast-cancer data (569 rows, 30 numeric features), and
  * a synthetic data set of N rows (default 1,000,000; numeric and categorical features, nulls).
Memory is the process's resident set size sampled every 5 ms while each step runs (the peak of the
process during that step, so it includes what earlier steps left allocated); times are wall-clock.

    python -m bench.bench_training [--rows 1000000] [--num-round 50]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pipelines.datasets import synthetic_schema, write_breast_cancer_csv, write_synthetic_csv
from pipelines.local_run import run_local

REPO = Path(__file__).resolve().parents[1]
PAGE = 4096


def _rss_bytes() -> int:
    with Path("/proc/self/statm").open() as statm:
        return int(statm.read().split()[1]) * PAGE


class StepProfiler:
    """A progress callback that times each step and samples the process's RSS while it runs."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = {}
        self._current: str | None = None
        self._started = 0.0
        self._peak = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            if self._current is not None:
                self._peak = max(self._peak, _rss_bytes())

    def __call__(self, step: str, event: str) -> None:
        if event == "started":
            self._current, self._started, self._peak = step, time.perf_counter(), _rss_bytes()
            return
        if self._current == step:
            self.rows[step] = {"seconds": time.perf_counter() - self._started,
                               "peak_rss_mb": max(self._peak, _rss_bytes()) / 2**20, "outcome": event}  # type: ignore[dict-item]
            self._current = None

    def close(self) -> None:
        self._stop.set()


def profile(data: Path, schema: Path, *, num_round: int, threshold: float, workdir: Path) -> dict[str, Any]:
    profiler = StepProfiler()
    started = time.perf_counter()
    result = run_local(workdir, schema_path=schema, data_csv=data, hyperparameters={"num_round": num_round},
                       quality_metric="auc", threshold=threshold, progress=profiler)
    total = time.perf_counter() - started
    profiler.close()
    return {"status": result.status, "total_seconds": total, "steps": profiler.rows}


def markdown(title: str, report: dict[str, Any]) -> str:
    lines = [f"#### {title}", "", f"status: {report['status']}, total {report['total_seconds']:.1f} s", "",
             "| step | wall time (s) | peak RSS (MB) |", "|---|---:|---:|"]
    for step, row in report["steps"].items():
        lines.append(f"| {step} | {row['seconds']:.2f} | {row['peak_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic data set")
    parser.add_argument("--num-round", type=int, default=50, help="boosting rounds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        bundled = write_breast_cancer_csv(work / "breast_cancer.csv")
        results["bundled"] = profile(bundled, REPO / "pipelines" / "schemas" / "breast_cancer.json",
                                     num_round=args.num_round, threshold=0.9, workdir=work / "run-bundled")
        synthetic = write_synthetic_csv(work / "synthetic.csv", rows=args.rows, seed=1)
        schema = work / "synthetic_schema.json"
        schema.write_text(json.dumps(synthetic_schema()))
        results["synthetic"] = profile(synthetic, schema, num_round=args.num_round, threshold=0.5,
                                       workdir=work / "run-synthetic")
        results["synthetic"]["rows"] = args.rows
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(markdown(f"Bundled breast-cancer data (569 rows), {args.num_round} rounds", results["bundled"]))
        print(markdown(f"Synthetic data, {args.rows:,} rows, {args.num_round} rounds", results["synthetic"]))
    return results


if __name__ == "__main__":
    main()
