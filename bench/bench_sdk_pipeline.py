"""Can a pipeline authored with the SageMaker Python SDK be built offline, byte-identically, twice? (issue 26)

The SDK is not a project dependency: it lives in its own virtual environments (bench/.venv-sdk: v2, pinned in
bench/sdk/requirements.txt; bench/.venv-sdk3: v3, bench/sdk/requirements-v3.txt). This runner, in the project's
venv, starts bench/sdk/author_v2.py (the training pipeline's shape: Validate and Preprocess processing steps, a
script-mode XGBoost training step, Evaluate with a property file, a quality-gate condition, RegisterModel, Fail)
under the SDK's interpreter, each run in a fresh process inside ``unshare -rn`` (a user and network namespace with
no network: any call to AWS fails at once) with fake credentials. Every variant runs twice; the two definitions are
compared byte for byte and, when they differ, JSON path by JSON path.

    python -m bench.bench_sdk_pipeline [--runs 2]

Setting up the environments (not part of `make test`)::

    python3 -m venv bench/.venv-sdk && bench/.venv-sdk/bin/pip install -r bench/sdk/requirements.txt
    python3 -m venv bench/.venv-sdk3 && bench/.venv-sdk3/bin/pip install -r bench/sdk/requirements-v3.txt
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AUTHOR_V2 = ROOT / "bench" / "sdk" / "author_v2.py"
AUTHOR_V3 = ROOT / "bench" / "sdk" / "author_v3.py"
VENVS = {"v2": ROOT / "bench" / ".venv-sdk", "v3": ROOT / "bench" / ".venv-sdk3"}
# Fake credentials and a region: the SDK builds boto3 clients when a session is made; none may reach AWS.
OFFLINE_ENV = {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret",
               "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true",
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
# (name, author_v2.py flags, what the variant shows)
VARIANTS: tuple[tuple[str, list[str], str], ...] = (
    ("naive", ["--code", "local", "--session", "plain"],
     "local entry_point/source_dir and code, a PipelineSession with default_bucket named"),
    ("s3-code", ["--code", "s3", "--session", "plain"],
     "code as s3:// URIs (nothing to upload), the same session"),
    ("naive+stub", ["--code", "local", "--session", "plain", "--stub-aws"],
     "the naive variant with every AWS call answered in-process (what it would upload)"),
    ("fixed-bucket", ["--code", "local", "--session", "fixed"],
     "local code, a session whose default_bucket() never calls S3"),
    ("offline", ["--code", "s3", "--session", "fixed"],
     "both workarounds, default definition config"),
    ("offline+knobs", ["--code", "s3", "--session", "fixed", "--custom-prefix", "--job-names"],
     "both workarounds, PipelineDefinitionConfig(use_custom_job_prefix=True), fixed base_job_name"),
)


def venv_size(venv: Path) -> tuple[int, int]:
    """Bytes and files below the venv (apparent sizes)."""
    total = files = 0
    for directory, _, names in os.walk(venv):
        for name in names:
            path = Path(directory) / name
            if not path.is_symlink():
                total += path.stat().st_size
                files += 1
    return total, files


def sandbox() -> list[str]:
    """`unshare -rn` when this machine allows unprivileged user namespaces, else nothing (and the report says)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "-rn"]
    return []


def no_network_inside(prefix: list[str], python: Path) -> bool:
    """Proof that the namespace has no network: a TCP connection to a public address fails there."""
    probe = ("import socket,sys\ntry:\n socket.create_connection(('1.1.1.1', 443), timeout=3)\nexcept OSError:\n"
             " sys.exit(0)\nsys.exit(1)")
    return bool(prefix) and subprocess.run([*prefix, str(python), "-c", probe], check=False).returncode == 0


def run_author(prefix: list[str], python: Path, flags: list[str], out: Path,
               script: Path = AUTHOR_V2) -> dict[str, Any]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **OFFLINE_ENV,
           "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    completed = subprocess.run([*prefix, str(python), str(script), "--out", str(out), *flags],
                               capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=600)
    wall = time.perf_counter() - started
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {"ok": False, "error": completed.stderr[-500:]}
    result["wall"] = wall
    return result


def differences(a: Any, b: Any, path: str = "$") -> list[tuple[str, str, str]]:
    """JSON paths where two parsed definitions differ (steps addressed by their Name)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[tuple[str, str, str]] = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                found.append((f"{path}.{key}", repr(a.get(key, "<absent>"))[:90], repr(b.get(key, "<absent>"))[:90]))
            else:
                found += differences(a[key], b[key], f"{path}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        found = []
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            label = x.get("Name") if isinstance(x, dict) and x.get("Name") == (y or {}).get("Name") else None
            found += differences(x, y, f"{path}[{label!r}]" if label else f"{path}[{index}]")
        return found
    return [] if a == b else [(path, repr(a)[:140], repr(b)[:140])]


def measure(prefix: list[str], python: Path, runs: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags, meaning in VARIANTS:
            results, texts = [], []
            for number in range(runs):
                out = Path(tmp) / f"{name}-{number}.json"
                results.append(run_author(prefix, python, flags, out))
                texts.append(out.read_bytes() if out.exists() else None)
            row: dict[str, Any] = {"name": name, "flags": flags, "meaning": meaning, "results": results}
            if all(texts):
                row["identical"] = len(set(texts)) == 1
                row["bytes"] = len(texts[0] or b"")
                row["diffs"] = differences(json.loads(texts[0] or b""), json.loads(texts[1] or b"")) \
                    if runs > 1 and not row["identical"] else []
            rows.append(row)
            print(f"{name}: {[r.get('ok') for r in results]} identical={row.get('identical')}", file=sys.stderr)
    return rows


def relocation(prefix: list[str], python: Path) -> list[dict[str, Any]]:
    """Local code with AWS answered in-process: the same files in another checkout folder, and with byte code."""
    flags = ["--code", "local", "--session", "plain", "--stub-aws"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        roots = [Path(tmp) / "checkout-a" / "bench" / "sdk", Path(tmp) / "checkout-b" / "bench" / "sdk"]
        for root in roots:
            root.mkdir(parents=True)
            shutil.copy2(AUTHOR_V2.parent / "steps.py", root / "steps.py")
            shutil.copytree(AUTHOR_V2.parent / "team_code", root / "team_code",
                            ignore=shutil.ignore_patterns("__pycache__"))
        out = [Path(tmp) / f"{n}.json" for n in range(3)]
        results = [run_author(prefix, python, [*flags, "--code-root", str(roots[0])], out[0]),
                   run_author(prefix, python, [*flags, "--code-root", str(roots[1])], out[1])]
        # what running the team's tests next to its code leaves behind
        (roots[0] / "team_code" / "__pycache__").mkdir()
        (roots[0] / "team_code" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"byte code")
        results.append(run_author(prefix, python, [*flags, "--code-root", str(roots[0])], out[2]))
        texts = [o.read_bytes() if o.exists() else b"{}" for o in out]
        for name, meaning, other in (("relocated", "the same code in another checkout folder", 1),
                                     ("byte-code", "the same checkout after a __pycache__ appeared", 2)):
            rows.append({"name": name, "meaning": meaning, "results": [results[0], results[other]],
                         "identical": texts[0] == texts[other], "bytes": len(texts[0]),
                         "diffs": differences(json.loads(texts[0]), json.loads(texts[other]))})
            print(f"{name}: identical={texts[0] == texts[other]}", file=sys.stderr)
    return rows


def measure_v3(prefix: list[str], python: Path, runs: int) -> list[dict[str, Any]]:
    """SDK v3: a script-mode ModelTrainer in a one-step pipeline, AWS answered in-process, code as an s3:// URI."""
    with tempfile.TemporaryDirectory() as tmp:
        out = [Path(tmp) / f"v3-{n}.json" for n in range(runs)]
        results = [run_author(prefix, python, ["--custom-prefix"], o, AUTHOR_V3) for o in out]
        texts = [o.read_bytes() if o.exists() else None for o in out]
    row: dict[str, Any] = {"name": "v3-trainer", "results": results,
                           "meaning": "SDK v3 ModelTrainer(source_code=SourceCode(s3:// tar.gz)), fixed base_job_name, "
                                      "use_custom_job_prefix=True, AWS answered in-process"}
    if all(texts):
        row["identical"] = len(set(texts)) == 1
        row["bytes"] = len(texts[0] or b"")
        row["diffs"] = [] if row["identical"] else differences(json.loads(texts[0] or b""), json.loads(texts[1] or b""))
    return [row]


def markdown(rows: list[dict[str, Any]], sizes: dict[str, tuple[int, int]], isolated: bool, runs: int) -> str:
    lines = ["| Variant | Offline | Byte-identical | Definition | Wall per run (import / author / definition) |",
             "|---|---|---|---|---|"]
    for row in rows:
        first = row["results"][0]
        ok = all(r.get("ok") for r in row["results"])
        seconds = first.get("seconds", {})
        timing = (f"{sum(r['wall'] for r in row['results']) / runs:.1f} s ({seconds.get('import', 0):.1f} / "
                  f"{seconds.get('author', 0):.2f} / {seconds.get('definition', 0):.3f} s)")
        identical = {True: "yes", False: f"no ({len(row.get('diffs', []))} paths)", None: "-"}[row.get("identical")]
        lines.append(f"| `{row['name']}`: {row['meaning']} | {'yes' if ok else 'no: ' + str(first.get('error'))} | "
                     f"{identical} | {row.get('bytes', '-')} bytes | {timing} |")
    lines += ["", f"Runs per variant: {runs}, each a fresh process; network namespace without network: "
              f"{'yes (a TCP connect fails inside)' if isolated else 'NO (unshare -rn unavailable)'}.", ""]
    for row in rows:
        for path, a, b in row.get("diffs", []):
            lines.append(f"* `{row['name']}` differs at `{path}`: {a} vs {b}")
        first = row["results"][0]
        if first.get("where"):
            lines.append(f"* `{row['name']}` failed in {', '.join(first['where'])}")
    for row in rows:
        calls = row["results"][0].get("aws_calls")
        if calls:
            counted = sorted({c: calls.count(c) for c in calls}.items())
            lines.append(f"* `{row['name']}` called AWS: " + ", ".join(f"{c} x{n}" for c, n in counted))
    notes = {note for row in rows for r in row["results"] for note in r.get("notes", [])}
    lines += [f"* note: {note}" for note in sorted(notes)]
    lines += ["", "| Environment | Installed size | Files |", "|---|---|---|"]
    lines += [f"| {name} | {size / 1e6:.0f} MB | {files} |" for name, (size, files) in sizes.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    python = VENVS["v2"] / "bin" / "python"
    if not python.exists():
        print("# SDK-authored pipeline\n\nSkipped: bench/.venv-sdk is absent (see this module's docstring).")
        return 0
    prefix = sandbox()
    isolated = no_network_inside(prefix, python)
    sizes = {f"bench/.venv-sdk{'' if name == 'v2' else '3'}": venv_size(venv) for name, venv in VENVS.items()
             if venv.exists()}
    rows = measure(prefix, python, args.runs) + relocation(prefix, python)
    python3 = VENVS["v3"] / "bin" / "python"
    if python3.exists():
        rows += measure_v3(prefix, python3, args.runs)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "sizes": sizes}, indent=1), encoding="utf-8")
    versions = sorted({str(r.get("sdk")) for row in rows for r in row["results"] if r.get("sdk")})
    print(f"## SDK-authored pipelines (sagemaker {', '.join(versions)})\n")
    print(markdown(rows, sizes, isolated, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
