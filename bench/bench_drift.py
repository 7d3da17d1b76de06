"""Drift benchmark: N captured records x 25 features (20 numeric, 5 categorical) in data-capture JSONL, from the
files to published metrics, side by side with (a) an independent bare read of the same files and (b) Evidently's
data-drift report on the same data, in one run, interleaved, with the load average of every measurement.

    python -m bench.bench_drift --rows 1000000           # the issue's benchmark (~550 MB of files, cached)
    python -m bench.bench_drift --rows 2000 --no-evidently --rounds 1

Each measurement runs in its own subprocess, so its peak memory (``VmHWM``, i.e. peak RSS; forked workers' peaks
added) is its own; wall time is measured inside the subprocess around the work (imports excluded, reported
separately). Data is generated once per size under ``bench/.data/drift-<N>/`` (ignored by git). Evidently needs
pandas < 3, so it runs from its own virtual environment ``bench/.venv-evidently`` (``bench/evidently/
requirements.txt``); when it is missing or fails, the output says why and the other measurements still run.

Measurements (``WORKERS`` processes unless named otherwise; the drift Lambda runs 2):
* ``ours``: ``mlcore.drift.run.run_drift`` (block parser → DriftAccumulator → report) + HTML page +
  ``drift_metrics.publish_run_metrics`` with EMF printed to /dev/null.
* ``bare``: independent of our code: ``orjson.loads`` per line and the request payload kept, then one
  ``pandas.read_csv`` call over all of a process's payloads — nothing validated, nothing counted. The same number
  of processes as ours, each taking the same files.
* ``ours_ground_truth``: ``ours`` with ground-truth labels for every 10th request joined in the same pass.
* ``cli``: ``mlops drift --baseline … --capture … --json`` as a subprocess (interpreter start and imports
  included): the operator's command, with the function's parallelism.
* ``partials``: every file reduced to its partial result (``mlcore.drift.partials.object_partial``, one process,
  as the per-object function does it), then the window's merge alone (``merge_variant`` of the documents).
* ``evidently``: JSONL → pandas (json per line, then pandas' C CSV reader on the payloads) → Evidently
  ``Report([DataDriftPreset()])`` against the reference rows → JSON result.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.summaries import median
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


def write_labels(folder: Path, rows: int) -> None:
    """Ground truth for every 10th request (by its inference id), for the join measurement."""
    labels = folder / "labels" / "labels.csv"
    if labels.exists():
        return
    labels.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    values = rng.integers(0, 2, size=rows)
    labels.write_text("inference_id,label\n" + "".join(f"req-{n},{values[n]}\n" for n in range(0, rows, 10)))


# ---------------------------------------------------------------------------------------------- measurements


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space, which exec replaces;
    ru_maxrss survives exec on Linux, so a child started by a big parent would report the parent's peak."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def _children_peak_mb(workers: int) -> float:
    """Forked workers' peaks added to the parent's (an upper bound: they may not peak together)."""
    return workers * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if workers > 1 else 0.0


def _shares(files: list[Path], workers: int) -> list[list[Path]]:
    return [files[index::workers] for index in range(workers)]


def _bare(files: list[Path], names: list[str], numeric: list[str], categorical: list[str]) -> int:
    import io

    import orjson
    import pandas as pd

    payloads = []
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                payloads.append(orjson.loads(line)["captureData"]["endpointInput"]["data"])
    frame = pd.read_csv(io.StringIO("\n".join(payloads)), header=None, names=names, keep_default_na=False,
                        na_values={n: [""] for n in numeric}, dtype=dict.fromkeys(categorical, str))
    return len(frame)


def _in_processes(task: Any, shares: list[list[Path]]) -> int:
    """``task(share)`` per share in forked processes (as ours forks), the results summed over pipes."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    running = []
    for share in shares:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=lambda send=send, share=share: send.send(task(share)), daemon=True)
        process.start()
        send.close()
        running.append((process, receive))
    total = 0
    for process, receive in running:
        total += receive.recv()
        process.join()
    return total


def measure(kind: str, folder: Path) -> dict[str, Any]:
    imports = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from mlcore.drift.baseline import load_baseline
    from mlcore.drift.run import VariantPlan, local_source, render_variant_pages, run_drift
    from mlcore.drift.statistics import DriftThresholds
    from mlcore.drift.window import local_capture_files

    baseline = load_baseline(folder / BASELINE_FILE)
    files = local_capture_files(folder / "capture")
    schema = json.loads((folder / "schema.json").read_text())
    names = [f["name"] for f in schema["features"]]
    numeric = [f["name"] for f in schema["features"] if f["type"] == "numeric"]
    categorical = [f["name"] for f in schema["features"] if f["type"] == "categorical"]
    import_seconds = time.perf_counter() - imports
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result: dict[str, Any] = {}
    if kind in ("ours", "ours_ground_truth"):
        from aws_lambda_powertools import Metrics

        from mlcore.drift.ground_truth import QualityJoin, read_labels
        from mlplatform.monitoring.drift_metrics import publish_run_metrics
        from mlsettings.schema import DataSchema

        quality = None
        if kind == "ours_ground_truth":
            labels_file = folder / "labels" / "labels.csv"
            labels = read_labels([(labels_file.name, labels_file.open("rb"))], DataSchema.from_dict(schema).label)
            quality = QualityJoin(labels)
        plan = VariantPlan(variant=CHAMPION, baseline=baseline,
                           sources=[local_source(f, "endpoint_capture") for f in files])
        report = run_drift([plan], endpoint="bench", window=None, thresholds=DriftThresholds(), workers=WORKERS,
                           quality=quality)
        render_variant_pages(report, [plan])
        metrics = Metrics(namespace=NAMESPACE, service="bench")
        with Path(os.devnull).open("w") as null, contextlib.redirect_stdout(null):  # EMF to a null sink
            documents = publish_run_metrics(metrics, report)
        drift = report["variants"][CHAMPION]["drift"]
        result = {"rows": drift["rows"], "malformed": drift["malformed"], "emf_documents": documents,
                  "workers": WORKERS, "children_peak_mb": _children_peak_mb(WORKERS),
                  "drifted_features": sorted(n for n, f in drift["features"].items() if f["drifted"])}
        if quality is not None:
            result["labelled_rows"] = report["quality"]["variants"][CHAMPION]["labelled_rows"]
    elif kind == "bare":
        task = functools.partial(_bare, names=names, numeric=numeric, categorical=categorical)
        rows = _in_processes(task, _shares(files, WORKERS)) if WORKERS > 1 else task(files)
        result = {"rows": rows, "workers": WORKERS, "children_peak_mb": _children_peak_mb(WORKERS)}
    elif kind == "partials":
        from mlcore.drift.partials import merge_variant, object_partial

        documents = [object_partial(local_source(f, "endpoint_capture"), variant=CHAMPION, baseline=baseline)
                     for f in files]
        reduced = time.perf_counter()
        plan = VariantPlan(variant=CHAMPION, baseline=baseline,
                           sources=[local_source(f, "endpoint_capture") for f in files])
        entry = merge_variant(plan, documents, thresholds=DriftThresholds())
        result = {"rows": entry["drift"]["rows"], "workers": 1, "reduce_seconds": reduced - started,
                  "merge_seconds": time.perf_counter() - reduced, "objects": len(documents),
                  "partial_bytes": sum(len(json.dumps(d)) for d in documents),
                  "capture_bytes": sum(f.stat().st_size for f in files)}
    elif kind == "exact_parse":
        from mlcore.drift.baseline import baseline_schema
        from mlcore.drift.capture import CaptureFormatError
        from mlcore.drift.capture_chunks import CaptureChunkParser
        from mlcore.drift.window import iter_local_lines

        parser = CaptureChunkParser(baseline_schema(baseline), fast=False)
        rows = 0
        for file in files:
            for line in iter_local_lines(file):
                with contextlib.suppress(CaptureFormatError):
                    rows += len(parser.parse_record(line).rows)
        result = {"rows": rows, "workers": 1}
    else:
        raise SystemExit(f"unknown measurement {kind!r}")
    return {"kind": kind, "seconds": time.perf_counter() - started, "import_seconds": import_seconds,
            "load": load, "peak_mb": _peak_mb() + float(result.pop("children_peak_mb", 0.0)), **result}


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


TARGET_EVIDENTLY = 25.0
TARGET_BARE = 1.2
TARGET_PEAK_MB = 512.0


def _cli(folder: Path) -> dict[str, Any]:
    """``mlops drift`` as an operator runs it (a fresh interpreter: start and imports included)."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", "from mlops import cli; cli.main()", "drift", "--baseline",
                                str(folder / BASELINE_FILE), "--capture", str(folder / "capture"), "--json"],
                               capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        return {"error": f"exit {completed.returncode}: {completed.stderr.strip()[-800:]}"}
    report = json.loads(completed.stdout)
    return {"kind": "cli", "seconds": seconds, "rows": report["rows"], "load": load, "workers": WORKERS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="drift benchmark")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of ours and the bare read")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--exact", action="store_true", help="also time the per-line exact parser (slow)")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.data)))
        return 0

    generated = time.perf_counter()
    folder = generate(args.rows)
    write_labels(folder, args.rows)
    print(f"data: {folder} ({(folder / 'complete').read_text().strip()}; ready in "
          f"{time.perf_counter() - generated:.1f} s)", file=sys.stderr)
    results: dict[str, Any] = {"rows": args.rows, "features": NUMERIC + CATEGORICAL, "workers": WORKERS,
                               "capture_bytes": sum(f.stat().st_size for f in (folder / "capture").iterdir()),
                               "rounds": []}

    def run(kind: str) -> dict[str, Any]:
        if kind == "cli":
            outcome = _cli(folder)
        elif kind == "evidently":
            if not EVIDENTLY_PYTHON.exists():
                return {"error": f"{EVIDENTLY_PYTHON} is missing: create it with python3.11 -m venv "
                                 "bench/.venv-evidently && bench/.venv-evidently/bin/pip install -r "
                                 "bench/evidently/requirements.txt"}
            load = os.getloadavg()[0]
            outcome = {**run_subprocess([str(EVIDENTLY_PYTHON), "-c", EVIDENTLY_SCRIPT, str(folder)]), "load": load}
        else:
            outcome = run_subprocess([sys.executable, "-m", "bench.bench_drift", "--measure", kind,
                                      "--data", str(folder)])
        print(f"{kind}: {outcome}", file=sys.stderr)
        return outcome

    # Ours and the bare read run back to back, in opposite order every round, so a change of the machine's load
    # hits both; Evidently (a minute) runs once, between two rounds; the rest once each.
    for number in range(args.rounds):
        if number == (args.rounds + 1) // 2 and not args.no_evidently:
            results["evidently"] = run("evidently")
        pair = ("bare", "ours") if number % 2 == 0 else ("ours", "bare")
        results["rounds"].append({kind: run(kind) for kind in pair})
    if args.rounds < 2 and not args.no_evidently:
        results["evidently"] = run("evidently")
    for kind in ("ours_ground_truth", "cli", "partials", *(["exact_parse"] if args.exact else [])):
        results[kind] = run(kind)
    summarise(results)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(markdown(results))
    ours_runs = [r["ours"] for r in results["rounds"]]
    return 0 if all("error" not in r for r in ours_runs) else 1


def summarise(results: dict[str, Any]) -> None:
    """Medians over the rounds, and the ratios of runs made side by side (each round's ours / its bare)."""
    ours = [r["ours"] for round_ in results["rounds"] for r in (round_,) if "error" not in r["ours"]]
    bare = [r["bare"] for round_ in results["rounds"] for r in (round_,) if "error" not in r["bare"]]
    if not ours:
        return
    results["ours"] = {"seconds": median([o["seconds"] for o in ours]), "peak_mb": max(o["peak_mb"] for o in ours),
                       "rows": ours[0]["rows"], "malformed": ours[0].get("malformed"), "workers": results["workers"],
                       "drifted_features": ours[0].get("drifted_features"),
                       "emf_documents": ours[0].get("emf_documents"),
                       "loads": [o["load"] for o in ours], "all_seconds": [o["seconds"] for o in ours]}
    if bare:
        results["bare"] = {"seconds": median([b["seconds"] for b in bare]), "peak_mb": max(b["peak_mb"] for b in bare),
                           "rows": bare[0]["rows"], "loads": [b["load"] for b in bare],
                           "all_seconds": [b["seconds"] for b in bare]}
        ratios = [r["ours"]["seconds"] / r["bare"]["seconds"] for r in results["rounds"]
                  if "error" not in r["ours"] and "error" not in r["bare"]]
        results["ours_vs_bare"] = {"median": median(ratios), "min": min(ratios), "max": max(ratios)}
    evidently = results.get("evidently", {})
    if evidently.get("seconds"):
        results["evidently_vs_ours"] = evidently["seconds"] / results["ours"]["seconds"]
    loads = [o.get("load", 0.0) for o in [*ours, *bare, evidently, *(results.get(k, {}) for k in
                                                                         ("ours_ground_truth", "cli", "partials"))]
             if o]
    results["load_average"] = {"min": min(loads), "max": max(loads)} if loads else None


def markdown(results: dict[str, Any]) -> str:
    """The comparison as Markdown tables with the issue's targets."""
    workers = results["workers"]
    load = results.get("load_average") or {"min": float("nan"), "max": float("nan")}
    lines = [f"{results['rows']:,} captured records x {results['features']} features "
             f"({results['capture_bytes'] / 1e6:,.0f} MB of JSONL); {workers} processes for ours and the bare read; "
             f"{len(results['rounds'])} rounds, ours and the bare read alternating; load average "
             f"{load['min']:.1f}-{load['max']:.1f} (1 minute, at each measurement's start).", "",
             "| measurement | wall time (s) | peak memory (MB) | load |", "|---|---:|---:|---:|"]

    def row(label: str, item: dict[str, Any] | None, seconds: str | None = None) -> None:
        if not item:
            return
        if "error" in item:
            lines.append(f"| {label} | failed: {str(item['error'])[:80]} | | |")
            return
        loads = item.get("loads") or [item.get("load", float("nan"))]
        peak = f"{item['peak_mb']:.0f}" if "peak_mb" in item else ""
        lines.append(f"| {label} | {seconds or format(item['seconds'], '.2f')} | {peak} | "
                     f"{min(loads):.1f}-{max(loads):.1f} |")

    ours, bare = results.get("ours"), results.get("bare")
    if ours:
        row(f"ours, {workers} processes: JSONL → report, HTML, metrics (median; runs "
            f"{', '.join(f'{s:.2f}' for s in ours['all_seconds'])})", ours)
    if bare:
        row(f"bare read, {workers} processes: orjson per line + one pandas C-reader call (median; runs "
            f"{', '.join(f'{s:.2f}' for s in bare['all_seconds'])})", bare)
    row(f"ours with a ground-truth join in the same pass ({workers} processes)", results.get("ours_ground_truth"))
    row("`mlops drift --json` (process wall time: start, imports, printing included)", results.get("cli"))
    partials = results.get("partials")
    if partials and "error" not in partials:
        row(f"partial results: {partials['objects']} objects reduced one by one (1 process), then merged",
            partials, seconds=f"{partials['reduce_seconds']:.2f} + {partials['merge_seconds']:.3f}")
    row("Evidently DataDriftPreset (own venv, 1 process)", results.get("evidently"))
    row("exact per-line parser (`parse_capture_line`, 1 process)", results.get("exact_parse"))
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    speedup = results.get("evidently_vs_ours")
    if speedup:
        lines.append(f"| ≥ {TARGET_EVIDENTLY:g}x faster than Evidently's DataDriftPreset | {speedup:.1f}x | "
                     f"{'yes' if speedup >= TARGET_EVIDENTLY else 'no'} |")
    ratio = results.get("ours_vs_bare")
    if ratio:
        met = "yes" if ratio["median"] <= TARGET_BARE else "no"
        lines.append(f"| ≤ {TARGET_BARE:g}x the independent bare read, same process count | {ratio['median']:.2f}x "
                     f"(rounds {ratio['min']:.2f}-{ratio['max']:.2f}) | {met} |")
    if ours:
        peak = ours["peak_mb"]
        met = "yes" if peak < TARGET_PEAK_MB else "no"
        lines.append(f"| peak memory < {TARGET_PEAK_MB:g} MB | {peak:.0f} MB | {met} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
