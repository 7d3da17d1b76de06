"""Drift benchmark: N captured records x 25 features (20 numeric, 5 categorical) in data-capture JSONL, from
the files to published metrics, side by side with (a) Evidently's data-drift report on the same data and
(b) only parsing the JSONL with the same parser.

    python -m bench.bench_drift --rows 1000000           # the issue's benchmark (~2 GB of files, cached)
    python -m bench.bench_drift --rows 2000 --no-evidently

Each measurement runs in its own subprocess, so its peak memory (``VmHWM``, i.e. peak RSS) is its own; wall time is
measured inside the subprocess around the work (imports excluded, reported separately). Data is generated
once per size under ``bench/.data/drift-<N>/`` (ignored by git). Evidently needs pandas < 3, so it runs
from its own virtual environment ``bench/.venv-evidently`` (``bench/evidently/requirements.txt``); when it
is missing or fails, the output says why and the other measurements still run.

Measurements:
* ``ours``: ``drift_run.analyse_variant`` (fast chunk parser → DriftAccumulator → report) + HTML page +
  ``drift_metrics.publish_run_metrics`` with EMF printed to /dev/null.
* ``parse``: the same chunk parser over the same lines, results discarded.
* ``exact_parse``: ``mlcore.drift.capture.parse_capture_line`` per line (the parser before the fast path).
* ``evidently``: JSONL → pandas (json per line, then pandas' C CSV reader on the payloads) → Evidently
  ``Report([DataDriftPreset()])`` against the reference rows → JSON result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlsettings.vocabulary import BASELINE_FILE, CHAMPION, NAMESPACE

ROOT = Path(__file__).resolve().parents[1]
# Parsing processes for our run (the drift Lambda uses one per vCPU; 3,538 MB gives a function two).
WORKERS = int(os.environ.get("DRIFT_WORKERS", str(min(os.cpu_count() or 1, 4))))
DATA_ROOT = ROOT / "bench" / ".data"
EVIDENTLY_PYTHON = ROOT / "bench" / ".venv-evidently" / "bin" / "python"
NUMERIC, CATEGORICAL = 20, 5
LINES_PER_FILE = 100_000
REFERENCE_ROWS = 100_000
CATEGORIES = [["a", "b", "c"], ["north", "south", "east", "west"], ["basic", "plus", "premium"],
              ["web", "ios", "android", "store", "partner"], ["x", "y"]]


def schema_document() -> dict[str, Any]:
    features: list[dict[str, Any]] = [
        {"name": f"n{i:02d}", "type": "numeric", "min": -1000.0, "max": 1000.0, "nullable": i < 2,
         **({"max_missing_rate": 0.5} if i < 2 else {})} for i in range(NUMERIC)]
    features += [{"name": f"c{i}", "type": "categorical", "categories": CATEGORIES[i]} for i in range(CATEGORICAL)]
    return {"name": "bench", "version": 1, "label": {"name": "y"}, "features": features}


def generate_columns(rows: int, *, seed: int, shifted: bool) -> tuple[list[np.ndarray], np.ndarray]:
    """Formatted string columns (schema order) and probabilities; ``shifted`` moves 3 numeric features and
    brings an unseen category, so the report has something to find."""
    rng = np.random.default_rng(seed)
    columns: list[np.ndarray] = []
    for i in range(NUMERIC):
        values = rng.normal(10.0 * i, 1.0 + i, size=rows)
        if shifted and i in (3, 7, 11):
            values += 0.8 * (1.0 + i)
        text = np.char.mod("%.4f", values)
        if i < 2:
            text[rng.random(rows) < 0.02] = ""
        columns.append(text)
    for i in range(CATEGORICAL):
        choices = CATEGORIES[i] + (["new"] if shifted and i == 3 else [])
        columns.append(np.asarray(choices, dtype=object)[rng.integers(0, len(choices), size=rows)].astype(str))
    probabilities = rng.beta(2.0, 3.0, size=rows)
    return columns, probabilities


def generate(rows: int) -> Path:
    folder = DATA_ROOT / f"drift-{rows}"
    done = folder / "complete"
    if done.exists():
        return folder
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    (DATA_ROOT / ".gitignore").write_text("*\n")
    capture = folder / "capture"
    capture.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from mlcore.drift.baseline import build_baseline
    from mlsettings.schema import DataSchema

    schema_doc = schema_document()
    schema = DataSchema.from_dict(schema_doc)
    names = list(schema.feature_names)
    reference_rows = min(REFERENCE_ROWS, max(rows, 1000))
    ref_columns, ref_probabilities = generate_columns(reference_rows, seed=1, shifted=False)
    baseline = build_baseline({name: list(col) for name, col in zip(names, ref_columns, strict=True)}, schema,
                              probabilities=ref_probabilities)
    (folder / BASELINE_FILE).write_text(json.dumps(baseline))
    (folder / "schema.json").write_text(json.dumps(schema_doc))
    with (folder / "reference.csv").open("w") as handle:
        handle.write(",".join(names) + "\n")
        for row in zip(*ref_columns, strict=True):
            handle.write(",".join(row) + "\n")

    head = '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"'
    middle = ('","encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv; charset=utf-8",'
              '"mode":"OUTPUT","data":"')
    tail = '","encoding":"CSV"}},"eventMetadata":{"eventId":"'
    for start in range(0, rows, LINES_PER_FILE):
        count = min(LINES_PER_FILE, rows - start)
        columns, probabilities = generate_columns(count, seed=100 + start // LINES_PER_FILE, shifted=True)
        scores = np.char.mod("%.6f", probabilities)
        lines = []
        for offset, row in enumerate(zip(*columns, strict=True)):
            n = start + offset
            lines.append(f'{head}{",".join(row)}{middle}{scores[offset]}{tail}{n:012d}-4a5b",'
                         f'"inferenceId":"req-{n}","inferenceTime":"2025-03-02T03:{n % 60:02d}:00.000Z"}},'
                         f'"eventVersion":"0"}}\n')
        (capture / f"part-{start // LINES_PER_FILE:04d}.jsonl").write_text("".join(lines))
    done.write_text(f"generated in {time.perf_counter() - started:.1f} s\n")
    return folder


# ---------------------------------------------------------------------------------------------- measurements


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space, which exec replaces;
    ru_maxrss survives exec on Linux, so a child started by a big parent would report the parent's peak."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def measure(kind: str, folder: Path) -> dict[str, Any]:
    imports = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from mlcore.drift.baseline import baseline_schema, load_baseline
    from mlcore.drift.capture import CaptureFormatError
    from mlcore.drift.capture_chunks import CaptureChunkParser
    from mlcore.drift.run import (
        DEFAULT_CHUNK_LINES,
        LineSource,
        VariantPlan,
        render_variant_pages,
        run_drift,
    )
    from mlcore.drift.statistics import DriftThresholds
    from mlcore.drift.window import iter_local_lines, local_capture_files

    baseline = load_baseline(folder / BASELINE_FILE)
    files = local_capture_files(folder / "capture")
    import_seconds = time.perf_counter() - imports
    started = time.perf_counter()
    result: dict[str, Any] = {}
    if kind == "ours":
        from aws_lambda_powertools import Metrics

        from mlplatform.monitoring.drift_metrics import publish_run_metrics

        plan = VariantPlan(variant=CHAMPION, baseline=baseline, sources=[
            LineSource(name=str(f), kind="endpoint_capture", open=lambda f=f: iter_local_lines(f)) for f in files])
        report = run_drift([plan], endpoint="bench", window=None, thresholds=DriftThresholds(),
                           workers=WORKERS)
        render_variant_pages(report, [plan])
        metrics = Metrics(namespace=NAMESPACE, service="bench")
        with Path(os.devnull).open("w") as null, contextlib.redirect_stdout(null):  # EMF to a null sink
            documents = publish_run_metrics(metrics, report)
        drift = report["variants"][CHAMPION]["drift"]
        # forked parsing workers: their peaks add to the parent's (an upper bound: they may not peak together)
        children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result = {"rows": drift["rows"], "malformed": drift["malformed"], "emf_documents": documents,
                  "workers": WORKERS, "children_peak_mb": WORKERS * children_kb / 1024 if WORKERS > 1 else 0.0,
                  "drifted_features": sorted(n for n, f in drift["features"].items() if f["drifted"])}
    elif kind == "parse":
        parser = CaptureChunkParser(baseline_schema(baseline))
        rows = 0
        for file in files:
            buffer: list[bytes] = []
            for line in iter_local_lines(file):
                buffer.append(line)
                if len(buffer) >= DEFAULT_CHUNK_LINES:
                    rows += parser.parse(buffer).rows
                    buffer = []
            if buffer:
                rows += parser.parse(buffer).rows
        result = {"rows": rows}
    elif kind == "exact_parse":
        parser = CaptureChunkParser(baseline_schema(baseline), fast=False)
        rows = 0
        for file in files:
            for line in iter_local_lines(file):
                with contextlib.suppress(CaptureFormatError):
                    rows += len(parser.parse_record(line).rows)
        result = {"rows": rows}
    else:
        raise SystemExit(f"unknown measurement {kind!r}")
    return {"kind": kind, "seconds": time.perf_counter() - started, "import_seconds": import_seconds,
            "peak_mb": _peak_mb() + float(result.pop("children_peak_mb", 0.0)), **result}


EVIDENTLY_SCRIPT = r"""
import io, json, sys, time
folder = sys.argv[1]
t0 = time.perf_counter()
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
import pathlib
t1 = time.perf_counter()
schema = json.loads(pathlib.Path(folder, "schema.json").read_text())
names = [f["name"] for f in schema["features"]]
numeric = [f["name"] for f in schema["features"] if f["type"] == "numeric"]
categorical = [f["name"] for f in schema["features"] if f["type"] == "categorical"]
dtypes = {name: str for name in categorical}
reference = pd.read_csv(pathlib.Path(folder, "reference.csv"), dtype=dtypes, keep_default_na=False,
                        na_values={n: [""] for n in numeric})
frames = []
for path in sorted(pathlib.Path(folder, "capture").glob("*.jsonl")):
    payloads = []
    with open(path, "rb") as handle:
        for line in handle:
            payloads.append(json.loads(line)["captureData"]["endpointInput"]["data"])
    frames.append(pd.read_csv(io.StringIO("\n".join(payloads)), header=None, names=names, dtype=dtypes,
                              keep_default_na=False, na_values={n: [""] for n in numeric}))
current = pd.concat(frames, ignore_index=True)
t2 = time.perf_counter()
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
result = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                         Dataset.from_pandas(reference, data_definition=definition))
document = result.json()
t3 = time.perf_counter()
drifted = json.loads(document)
print(json.dumps({"kind": "evidently", "seconds": t3 - t1, "parse_seconds": t2 - t1, "report_seconds": t3 - t2,
                  "import_seconds": t1 - t0, "rows": int(len(current)), "reference_rows": int(len(reference)),
                  "peak_mb": int(next(l.split()[1] for l in open("/proc/self/status")
                                      if l.startswith("VmHWM:"))) / 1024.0,
                  "result_bytes": len(document)}))
"""


def run_subprocess(command: list[str], timeout: int = 3600) -> dict[str, Any]:
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        return {"error": f"exit {completed.returncode}: {completed.stderr.strip()[-800:]}", "process_seconds": wall}
    last = completed.stdout.strip().splitlines()[-1]
    return {**json.loads(last), "process_seconds": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="drift benchmark")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--no-exact", action="store_true", help="skip the per-line exact parser measurement")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.data)))
        return 0

    generated = time.perf_counter()
    folder = generate(args.rows)
    print(f"data: {folder} ({(folder / 'complete').read_text().strip()}; ready in "
          f"{time.perf_counter() - generated:.1f} s)", file=sys.stderr)
    results: dict[str, Any] = {"rows": args.rows, "features": NUMERIC + CATEGORICAL}
    kinds = ["parse", "ours"] + ([] if args.no_exact else ["exact_parse"])
    for kind in kinds:
        results[kind] = run_subprocess([sys.executable, "-m", "bench.bench_drift", "--measure", kind,
                                        "--data", str(folder)])
        print(f"{kind}: {results[kind]}", file=sys.stderr)
    if not args.no_evidently:
        if not EVIDENTLY_PYTHON.exists():
            results["evidently"] = {"error": f"{EVIDENTLY_PYTHON} is missing: create it with python3.11 -m venv "
                                             "bench/.venv-evidently && bench/.venv-evidently/bin/pip install -r "
                                             "bench/evidently/requirements.txt"}
        else:
            results["evidently"] = run_subprocess([str(EVIDENTLY_PYTHON), "-c", EVIDENTLY_SCRIPT, str(folder)])
        print(f"evidently: {results['evidently']}", file=sys.stderr)
    ours = results["ours"].get("seconds")
    if ours:
        if results["parse"].get("seconds"):
            results["ours_vs_parse"] = ours / results["parse"]["seconds"]
        if results.get("evidently", {}).get("seconds"):
            results["evidently_vs_ours"] = results["evidently"]["seconds"] / ours
        if results.get("exact_parse", {}).get("seconds"):
            results["exact_parse_vs_ours"] = results["exact_parse"]["seconds"] / ours
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(markdown(results))
    return 0 if "error" not in results["ours"] else 1


def markdown(results: dict[str, Any]) -> str:
    """The comparison as a Markdown table with the issue's targets."""
    rows = [("ours: JSONL → report, HTML, metrics", "ours"), ("bare parse, same parser (1 process)", "parse"),
            ("exact per-line parser", "exact_parse"), ("Evidently DataDriftPreset (own venv)", "evidently")]
    lines = [f"{results['rows']:,} captured records x {results['features']} features; ours with "
             f"{results['ours'].get('workers', 1)} parsing process(es).", "",
             "| measurement | wall time (s) | peak memory (MB) |", "|---|---:|---:|"]
    for label, key in rows:
        item = results.get(key)
        if not item:
            continue
        if "error" in item:
            lines.append(f"| {label} | failed: {str(item['error'])[:80]} | |")
        else:
            lines.append(f"| {label} | {item['seconds']:.1f} | {item['peak_mb']:.0f} |")
    lines.append("")
    speedup = results.get("evidently_vs_ours")
    ratio = results.get("ours_vs_parse")
    peak = results["ours"].get("peak_mb", 0.0)
    lines.append("| target | measured | met |")
    lines.append("|---|---:|---|")
    if speedup:
        lines.append(f"| ≥ 10x faster than Evidently (aim 20x) | {speedup:.1f}x | {'yes' if speedup >= 10 else 'no'} |")
    if ratio:
        lines.append(f"| ≤ 1.5x the bare parse | {ratio:.2f}x | {'yes' if ratio <= 1.5 else 'no'} |")
    lines.append(f"| peak memory < 1 GB | {peak:.0f} MB | {'yes' if peak < 1024 else 'no'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
