"""The generated GitHub Actions workflow (.github/workflows/delivery.yml, mlops/delivery/workflow.py): committed as
generated, valid against GitHub's workflow schema (check-jsonschema's built-in copy), free of zizmor findings in
every persona, clean under jactionlint with shellcheck; and what it does is what the topology and the OIDC roles
say. Each validator also gets a known-bad workflow, so a validator that stopped working would fail here."""

from __future__ import annotations

import copy
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.delivery.actions import PINNED
from mlops.delivery.topology import deploy_plan
from mlops.delivery.workflow import WORKFLOW_PATH, build_workflow, render_workflow
from mlsettings.config import load_environments, project_context
from mlsettings.delivery_naming import bootstrap_role_name, deploy_role_name, read_role_name

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
COMMITTED = REPO / WORKFLOW_PATH


def _configs(accounts: dict[str, str] | None = None) -> Any:
    context = copy.deepcopy(project_context())
    for env, account in (accounts or {}).items():
        context["environments"][env]["account"] = account
    return load_environments(context)


def _run(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    # No network is used: zizmor --offline, jactionlint --no-online, check-jsonschema's vendored schema. HOME is
    # a scratch folder so no tool's cache lands in the user's home.
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": tempfile.gettempdir(), "NO_COLOR": "1"}
    return subprocess.run([*argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False)


def _validators(path: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    return {
        "check-jsonschema": _run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                                 str(path)),
        "zizmor": _run(str(BIN / "zizmor"), "--offline", "--persona", "auditor", "--no-progress", str(path)),
        "jactionlint": _run(str(BIN / "jactionlint"), "--no-online", str(path)),
    }


def test_the_committed_workflow_is_what_cdk_json_generates() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render_workflow(_configs()), \
        "run `mlops workflow write` (or `make workflow`) and commit .github/workflows/delivery.yml"


def test_the_workflow_passes_every_offline_validator() -> None:
    results = _validators(COMMITTED)
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    assert "No findings to report" in results["zizmor"].stdout + results["zizmor"].stderr
    assert "shellcheck was not found" not in results["jactionlint"].stdout + results["jactionlint"].stderr


def _mutated(tmp_path: Path, change: Any) -> Path:
    document = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / ".github" / "workflows" / "delivery.yml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _inject(document: dict[str, Any]) -> None:
    document["jobs"]["lint"]["steps"].append({"run": "echo ${{ github.event.pull_request.title }}"})


def _unpin(document: dict[str, Any]) -> None:
    document["jobs"]["lint"]["steps"][0]["uses"] = "actions/checkout@v4"


def _bad_key(document: dict[str, Any]) -> None:
    document["jobs"]["lint"]["runs_on"] = "ubuntu-latest"


def _bad_shell(document: dict[str, Any]) -> None:
    document["jobs"]["lint"]["steps"].append({"run": 'for f in $(ls *.txt); do echo "$f"; done'})


@pytest.mark.parametrize(("change", "validator", "finding"), [
    (_inject, "zizmor", "template-injection"),
    (_unpin, "zizmor", "unpinned-uses"),
    (_bad_key, "check-jsonschema", "runs_on"),
    (_bad_shell, "jactionlint", "SC2045"),
])
def test_each_validator_refuses_a_known_bad_workflow(tmp_path: Path, change: Any, validator: str,
                                                     finding: str) -> None:
    result = _validators(_mutated(tmp_path, change))[validator]
    assert result.returncode != 0 and finding in result.stdout + result.stderr, result.stdout + result.stderr


def _jobs() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    return document["jobs"]


def test_every_action_is_pinned_by_a_commit_sha_with_its_version_beside_it() -> None:
    text = COMMITTED.read_text(encoding="utf-8")
    uses = re.findall(r"uses: (\S+)@(\S+)  # (\S+)", text)
    assert len(uses) == text.count("uses:") and uses
    pins = {(a.repository, a.sha, a.version) for a in PINNED}
    assert {tuple(u) for u in uses} <= pins
    assert all(re.fullmatch(r"[0-9a-f]{40}", sha) for _, sha, _ in uses)


def test_least_permissions_no_persisted_credentials_no_expression_in_scripts() -> None:
    document = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    assert document["permissions"] == {}
    for name, job in document["jobs"].items():
        assert set(job["permissions"]) <= {"contents", "id-token", "pull-requests"}, name
        assert job["permissions"]["contents"] == "read"
        needs_oidc = any("configure-aws-credentials" in step.get("uses", "") for step in job["steps"])
        assert ("id-token" in job["permissions"]) == needs_oidc, name
        assert ("pull-requests" in job["permissions"]) == (name == "plan"), name
        for step in job["steps"]:
            if "actions/checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False
            assert "${{" not in step.get("run", ""), (name, step)


def _make_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))


def test_every_job_runs_make_targets_a_developer_runs() -> None:
    targets = _make_targets()
    for name, job in _jobs().items():
        scripts = [step["run"] for step in job["steps"] if "run" in step]
        assert scripts, name
        for script in scripts:
            if script.startswith(("mkdir ", "gh pr comment ")):
                continue  # plumbing of the plan job: a folder for its files, posting the comment
            match = re.match(r"make (?:-s |-C \S+ )*([a-z-]+)", script)
            assert match and match.group(1) in targets, (name, script)
    assert "train" not in " ".join(step.get("run", "") for job in _jobs().values() for step in job["steps"])


def test_deploy_jobs_follow_the_topology_and_are_bound_to_their_github_environment() -> None:
    configs = _configs()
    jobs = _jobs()
    plan = deploy_plan(configs)
    for step in plan:
        job = jobs[f"deploy-{step.environment}"]
        assert job["environment"] == step.environment
        assert job["needs"] == ["test", *(f"deploy-{need}" for need in step.needs)]
        assert job["if"] == "github.event_name == 'push'"
        assert job["steps"][-1]["run"] == f"make deploy ENV={step.environment} APPROVAL=never"
        assert job["concurrency"] == {"group": f"deploy-{step.environment}", "cancel-in-progress": False}
    assert sorted(name for name in jobs if name.startswith("deploy-")) == sorted(f"deploy-{e}" for e in configs)


def test_the_roles_the_workflow_assumes_are_the_ones_the_oidc_stack_creates() -> None:
    """In separate accounts the ARNs are literal; the OIDC stack's names come from the same module
    (mlsettings/delivery_naming.py; tests/infra/test_delivery.py checks the stack creates exactly them)."""
    accounts = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
    configs = _configs(accounts)
    jobs = build_workflow(configs)["jobs"]
    for env, account in accounts.items():
        config = configs[env]
        deploy = [s for s in jobs[f"deploy-{env}"]["steps"] if "with" in s and "role-to-assume" in s["with"]]
        assert [s["with"]["role-to-assume"] for s in deploy] == [
            f"arn:aws:iam::{account}:role/{deploy_role_name(config)}"]
        drift = [s["with"] for s in jobs[f"drift-{env}"]["steps"] if "with" in s and "role-to-assume" in s["with"]]
        assert [d["role-to-assume"] for d in drift] == [
            f"arn:aws:iam::{account}:role/{read_role_name(config)}",
            f"arn:aws:iam::{account}:role/{bootstrap_role_name(config, 'lookup', account)}"]
        assert drift[1]["role-chaining"] is True and drift[1]["role-skip-session-tagging"] is True
        assert jobs[f"drift-{env}"]["steps"][-1]["run"] == f"make drift ENV={env}"
    plan_roles = [s["with"]["role-to-assume"] for s in jobs["plan"]["steps"] if "role-to-assume" in s.get("with", {})]
    assert plan_roles == [f"arn:aws:iam::{accounts[e]}:role/mlops-{e}-github-read" for e in ("dev", "staging", "prod")]


def test_without_account_ids_the_account_comes_from_a_repository_variable() -> None:
    text = render_workflow(_configs())
    assert "arn:aws:iam::${{ vars.AWS_ACCOUNT_ID }}:role/mlops-prod-github-deploy" in text


def test_pull_requests_from_forks_get_no_plan_job_and_main_gets_no_plan() -> None:
    plan = _jobs()["plan"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in plan["if"]
    assert "pull_request" in plan["if"] and "push" not in plan["if"]
    steps = [s.get("run", "") for s in plan["steps"]]
    assert steps.index("make gates") < steps.index("make -C base synth")
    assert [s for s in steps if s.startswith("make -s diff")] == [
        f"make -s diff ENV={e} > plan/diff-{e}.txt" for e in ("dev", "staging", "prod")]
