"""The GitHub Actions workflow, generated from cdk.json: `mlops workflow write` puts it in
.github/workflows/delivery.yml and tests/unit/test_workflow.py fails when the committed file differs.

* pull request: `make lint`, `make test`, and a plan job (same-repository pull requests only: GitHub gives no
  OIDC token to forks) that runs the security gates (`make gates`), synthesizes main beside the change,
  runs `make diff` per environment with the read-only role, and posts one comment holding the cost of main
  against the change (`make plan-comment`) and the diffs;
* push to main: `make test`, then `make deploy` per environment in the topology's order
  (mlops/delivery/topology.py), each job bound to the GitHub environment of the same name, so a reviewer rule
  on that environment gates it;
* schedule (daily) and by hand: `make drift` per environment with the read-only role chained to the CDK lookup
  role: CloudFormation drift detection fails the job when a resource CloudFormation owns was changed outside it.

Training is not started here: the registry's pipeline starts on its schedule and on new data (docs/TRAINING.md).
Every job runs a make target a developer runs. Hardening (checked by zizmor in make test): actions pinned by
commit SHA, `permissions: {}` at the top and the least per job, `persist-credentials: false`, and no `${{ }}`
expression inside a `run:` script (values reach scripts through `env:`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.delivery.actions import CHECKOUT, CONFIGURE_AWS_CREDENTIALS, SETUP_PYTHON, PinnedAction
from mlops.delivery.topology import deploy_plan

if TYPE_CHECKING:
    from mlsettings.config import EnvironmentConfig

WORKFLOW_PATH = Path(".github/workflows/delivery.yml")
PYTHON_VERSION = "3.11"  # what `make test` is written for (README: Python 3.11)
RUNNER = "ubuntu-24.04"
DRIFT_CRON = "17 5 * * *"  # daily, off the hour (GitHub delays runs scheduled on the hour)
BASE_DIR = "base"  # where the plan job checks out main
PLAN_DIR = "plan"


@dataclass(frozen=True)
class Commented:
    """A scalar written with a trailing YAML comment (the version of a pinned action)."""

    value: str
    comment: str


# ------------------------------------------------------------------------------------------------ the emitter
_PLAIN = re.compile(r"[A-Za-z_./][A-Za-z0-9_ ./=@+-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED and not text.endswith(" "):
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def _emit(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            lines += _entry(f"{pad}{_scalar(key)}:", item, indent)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping) and item:
                inner = _emit(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines += _entry(f"{pad}-", item, indent)
    return lines


def _entry(head: str, item: Any, indent: int) -> list[str]:
    if isinstance(item, Commented):
        return [f"{head} {_scalar(item.value)}  # {item.comment}"]
    if isinstance(item, Mapping):
        return [f"{head} {{}}"] if not item else [head, *_emit(item, indent + 2)]
    if isinstance(item, list):
        return [f"{head} []"] if not item else [head, *_emit(item, indent + 2)]
    if isinstance(item, str) and "\n" in item:
        body = [f"{' ' * (indent + 2)}{line}" if line else "" for line in item.rstrip("\n").split("\n")]
        return [f"{head} |", *body]
    return [f"{head} {_scalar(item)}"]


def to_yaml(document: Mapping[str, Any], header: str) -> str:
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + "\n".join(_emit(document, 0)) + "\n"


# ------------------------------------------------------------------------------------------------ the workflow
def _uses(action: PinnedAction, with_: Mapping[str, Any] | None = None, name: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {}
    if name:
        step["name"] = name
    step["uses"] = Commented(action.uses, action.version)
    if with_:
        step["with"] = dict(with_)
    return step


def _checkout(**extra: Any) -> dict[str, Any]:
    # No token is left in .git/config: nothing after checkout needs to push.
    return _uses(CHECKOUT, {"persist-credentials": False, **extra}, name=extra.get("path") and "Check out main")


def _setup() -> list[dict[str, Any]]:
    return [_checkout(), _uses(SETUP_PYTHON, {"python-version": PYTHON_VERSION})]


def _partition(region: str) -> str:
    import botocore.session

    partition = botocore.session.get_session().get_partition_for_region(region)
    return str(partition)


def _account(config: EnvironmentConfig) -> str:
    from mlsettings.delivery_naming import ACCOUNT_VARIABLE

    # cdk.json without account ids deploys every environment to one account, named by a repository variable.
    return config.account or f"${{{{ vars.{ACCOUNT_VARIABLE} }}}}"


def _role(config: EnvironmentConfig, name: str) -> str:
    from mlsettings.delivery_naming import role_arn

    return role_arn(_partition(config.region), _account(config), name)


def _credentials(config: EnvironmentConfig, role: str, *, name: str) -> dict[str, Any]:
    return _uses(CONFIGURE_AWS_CREDENTIALS, {"role-to-assume": role, "aws-region": config.region}, name=name)


def _job(*, condition: str, permissions: Mapping[str, Commented], steps: list[dict[str, Any]], timeout: int,
         needs: list[str] | None = None, environment: str | None = None, concurrency: str | None = None,
         name: str | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {}
    if name:
        job["name"] = name
    if needs:
        job["needs"] = needs
    job["if"] = condition
    job["runs-on"] = RUNNER
    if environment:
        job["environment"] = environment
    if concurrency:
        job["concurrency"] = {"group": concurrency, "cancel-in-progress": False}
    job["timeout-minutes"] = timeout
    job["permissions"] = dict(permissions) if permissions else {}
    job["steps"] = steps
    return job


PULL_REQUEST = "github.event_name == 'pull_request'"
PUSH = "github.event_name == 'push'"
SCHEDULED = "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'"
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
# Every permission a job holds, with the reason written beside it in the workflow.
CONTENTS = Commented("read", "check out the repository")
ID_TOKEN = Commented("write", "request GitHub's OIDC token, exchanged for the role's short-lived credentials")
PULL_REQUESTS = Commented("write", "post or update the plan comment on the pull request")
READ = {"contents": CONTENTS}
OIDC = {"contents": CONTENTS, "id-token": ID_TOKEN}


def build_workflow(configs: Mapping[str, EnvironmentConfig]) -> dict[str, Any]:
    from mlsettings.delivery_naming import (
        LOOKUP,
        bootstrap_role_name,
        deploy_role_name,
        github_environment,
        read_role_name,
    )

    plan = deploy_plan(configs)
    branch = next(iter(configs.values())).delivery.default_branch
    jobs: dict[str, Any] = {
        "lint": _job(name="make lint", condition=PULL_REQUEST, permissions=READ, timeout=30,
                     steps=[*_setup(), {"run": "make lint"}]),
        "test": _job(name="make test", condition=f"{PULL_REQUEST} || {PUSH}", permissions=READ, timeout=60,
                     steps=[*_setup(), {"run": "make test"}]),
    }
    plan_steps: list[dict[str, Any]] = [
        *_setup(),
        _checkout(ref="${{ github.event.pull_request.base.sha }}", path=BASE_DIR),
        {"name": "Security gates on the change (cdk-nag, cfn-lint, checkov)", "run": "make gates"},
        {"name": "Synthesize main for the cost comparison", "continue-on-error": True,
         "run": f"make -C {BASE_DIR} synth"},
        {"run": f"mkdir -p {PLAN_DIR}"},
    ]
    for step in plan:
        config = configs[step.environment]
        plan_steps += [
            _credentials(config, _role(config, read_role_name(config)), name=f"Read-only role of {config.name}"),
            {"name": f"cdk diff {config.name}", "continue-on-error": True,
             "run": f"make -s diff ENV={config.name} > {PLAN_DIR}/diff-{config.name}.txt"},
        ]
    plan_steps += [
        {"name": "Cost of main and of the change, and the diffs, as one comment",
         "run": f"make -s plan-comment BASE={BASE_DIR} PLAN={PLAN_DIR} > {PLAN_DIR}/comment.md"},
        {"name": "Post or update the comment", "env": {"GH_TOKEN": "${{ github.token }}",
                                                       "PR_NUMBER": "${{ github.event.pull_request.number }}"},
         "run": f'gh pr comment "$PR_NUMBER" --repo "$GITHUB_REPOSITORY" --body-file {PLAN_DIR}/comment.md '
                "--edit-last --create-if-none"},
    ]
    jobs["plan"] = _job(name="plan: gates, cdk diff and cost", condition=f"{PULL_REQUEST} && {SAME_REPOSITORY}",
                        permissions={**OIDC, "pull-requests": PULL_REQUESTS}, timeout=90, steps=plan_steps)
    for step in plan:
        config = configs[step.environment]
        jobs[f"deploy-{config.name}"] = _job(
            name=f"deploy {config.name}", needs=["test", *(f"deploy-{need}" for need in step.needs)],
            condition=PUSH, environment=github_environment(config), concurrency=f"deploy-{config.name}",
            permissions=OIDC, timeout=120,
            steps=[*_setup(), _credentials(config, _role(config, deploy_role_name(config)),
                                           name=f"Deploy role of {config.name}"),
                   {"run": f"make deploy ENV={config.name} APPROVAL=never"}])
    for step in plan:
        config = configs[step.environment]
        account = _account(config)
        lookup = _uses(CONFIGURE_AWS_CREDENTIALS, {
            "role-to-assume": _role(config, bootstrap_role_name(config, LOOKUP, account)),
            "aws-region": config.region, "role-chaining": True, "role-skip-session-tagging": True},
            name="Chain to the CDK lookup role (read-only)")
        jobs[f"drift-{config.name}"] = _job(
            name=f"drift {config.name}", condition=SCHEDULED, permissions=OIDC, timeout=60,
            steps=[*_setup(), _credentials(config, _role(config, read_role_name(config)),
                                           name=f"Read-only role of {config.name}"),
                   lookup, {"run": f"make drift ENV={config.name}"}])
    return {
        "name": "delivery",
        "on": {"pull_request": {"branches": [branch]}, "push": {"branches": [branch]},
               "schedule": [{"cron": DRIFT_CRON}], "workflow_dispatch": {}},
        "permissions": {},
        "concurrency": {"group": "${{ github.workflow }}-${{ github.event.pull_request.number || github.ref }}",
                        "cancel-in-progress": "${{ github.event_name == 'pull_request' }}"},
        "defaults": {"run": {"shell": "bash"}},
        "jobs": jobs,
    }


HEADER = """Generated by `mlops workflow write` from cdk.json: do not edit; tests/unit/test_workflow.py fails when this
file differs from what the generator writes. What each job does and why: mlops/delivery/workflow.py and
docs/DEPLOYING.md ("Delivery from git")."""


def render_workflow(configs: Mapping[str, EnvironmentConfig]) -> str:
    return to_yaml(build_workflow(configs), HEADER)
