"""Delivery from git (stacks/delivery.py): GitHub's OIDC provider and the roles the generated workflow assumes.

Checked against the real artifacts: the trust policies are evaluated for the subject claims GitHub documents
(cloud_model's evaluator, the one the who-may-call tests use); the bootstrap role names come from the pinned CDK
CLI's own bootstrap-template.yaml; the templates pass cdk-nag, cfn-lint and checkov like every other stack (IAM
validity: tests/infra/test_iam_validity.py); the CLI's stack selection is the real `cdk ls`."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from mlops.security_gates import run_cfn_lint, run_checkov, stack_summaries
from mlsettings.config import ConfigError, load_environments
from mlsettings.delivery_naming import (
    BOOTSTRAP_ROLE_PURPOSES,
    DELIVERY_STAGE,
    GITHUB_OIDC_AUDIENCE,
    GITHUB_OIDC_HOST,
    deploy_role_name,
    read_role_name,
)
from stacks.constructs.nag import acknowledged_rules
from stacks.delivery import build_delivery
from testkit.model_sample import sampled_project_context
from tests.infra.cloud_model import Stage, evaluate
from tests.infra.conftest import ACCOUNTS, REPOSITORY, DeliveryApp, delivery_context

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP_TEMPLATE = REPO / "node_modules" / "aws-cdk" / "lib" / "api" / "bootstrap" / "bootstrap-template.yaml"
SHARED_ACCOUNT = "111122223333"  # cloud_model's stand-in for AWS::AccountId when cdk.json names none
SUB, AUD = f"{GITHUB_OIDC_HOST}:sub", f"{GITHUB_OIDC_HOST}:aud"


def _stage(app: DeliveryApp, account: str = SHARED_ACCOUNT) -> Stage:
    return Stage.load(app.outdir, DELIVERY_STAGE, "eu-west-1", account=account)


def _role(stage: Stage, name: str) -> tuple[dict[str, Any], list[Any]]:
    resource, documents = stage.role_documents(f"arn:aws:iam::{stage.account}:role/{name}")
    return stage.resolve(resource.stack, dict(resource.properties)), documents


def _assume(trust: dict[str, Any], *, provider: str, sub: str, aud: str = GITHUB_OIDC_AUDIENCE) -> str:
    return evaluate([trust], caller={"Federated": provider}, action="sts:AssumeRoleWithWebIdentity",
                    resource="*", context={SUB: sub, AUD: aud})


def test_one_stack_per_account(delivery: dict[str, DeliveryApp]) -> None:
    assert sorted(delivery["one-account"].stage.stacks) == ["GitHubOidc"]
    assert sorted(delivery["own-accounts"].stage.stacks) == sorted(f"GitHubOidc-{a}" for a in ACCOUNTS.values())
    for stack_id, stack in delivery["own-accounts"].stage.stacks.items():
        assert stack.account == stack_id.removeprefix("GitHubOidc-")


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_deploy_role_trusts_only_this_repository_in_its_github_environment(
        delivery: dict[str, DeliveryApp], env: str) -> None:
    app = delivery["own-accounts"]
    account = ACCOUNTS[env]
    stage = _stage(app, account)
    config = load_environments(app.context)[env]
    properties, documents = _role(stage, deploy_role_name(config))
    trust = properties["AssumeRolePolicyDocument"]
    provider = f"arn:aws:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}"
    assert _assume(trust, provider=provider, sub=f"repo:{REPOSITORY}:environment:{env}") == "allow"
    other = "prod" if env != "prod" else "dev"
    for refused in (f"repo:{REPOSITORY}:environment:{other}", f"repo:{REPOSITORY}:pull_request",
                    f"repo:{REPOSITORY}:ref:refs/heads/main", f"repo:someone/else:environment:{env}",
                    f"repo:{REPOSITORY}:environment:{env}-copy"):
        assert _assume(trust, provider=provider, sub=refused) == "implicit", refused
    assert _assume(trust, provider=provider, sub=f"repo:{REPOSITORY}:environment:{env}", aud="other") == "implicit"
    assert _assume(trust, provider="arn:aws:iam::999999999999:oidc-provider/x", sub=f"repo:{REPOSITORY}:"
                   f"environment:{env}") == "implicit"
    # its only permission: assume this account's four bootstrap roles
    actions = {a for d in documents for s in d["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                                      else s["Action"])}
    assert actions == {"sts:AssumeRole"}
    for purpose in BOOTSTRAP_ROLE_PURPOSES:
        bootstrap = f"arn:aws:iam::{account}:role/cdk-hnb659fds-{purpose}-role-{account}-eu-west-1"
        assert evaluate(documents, caller=None, action="sts:AssumeRole", resource=bootstrap, context={}) == "allow"
    elsewhere = f"arn:aws:iam::{account}:role/mlops-{env}-deployer"
    assert evaluate(documents, caller=None, action="sts:AssumeRole", resource=elsewhere, context={}) == "implicit"
    assert evaluate(documents, caller=None, action="sts:AssumeRole", context={},
                    resource="arn:aws:iam::444455556666:role/cdk-hnb659fds-deploy-role-444455556666-eu-west-1"
                    ) == "implicit"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_read_role_serves_pull_requests_and_the_default_branch_and_may_only_look_up(
        delivery: dict[str, DeliveryApp], env: str) -> None:
    stage = _stage(delivery["one-account"])
    config = load_environments(delivery["one-account"].context)[env]
    properties, documents = _role(stage, read_role_name(config))
    provider = f"arn:aws:iam::{SHARED_ACCOUNT}:oidc-provider/{GITHUB_OIDC_HOST}"
    trust = properties["AssumeRolePolicyDocument"]
    for allowed in (f"repo:{REPOSITORY}:pull_request", f"repo:{REPOSITORY}:ref:refs/heads/main"):
        assert _assume(trust, provider=provider, sub=allowed) == "allow"
    for refused in (f"repo:{REPOSITORY}:environment:{env}", f"repo:{REPOSITORY}:ref:refs/heads/feature",
                    "repo:someone/else:pull_request"):
        assert _assume(trust, provider=provider, sub=refused) == "implicit"
    lookup = f"arn:aws:iam::{SHARED_ACCOUNT}:role/cdk-hnb659fds-lookup-role-{SHARED_ACCOUNT}-eu-west-1"
    deploy = lookup.replace("lookup-role", "deploy-role")
    assert evaluate(documents, caller=None, action="sts:AssumeRole", resource=lookup, context={}) == "allow"
    assert evaluate(documents, caller=None, action="sts:AssumeRole", resource=deploy, context={}) == "implicit"


def test_the_bootstrap_role_names_are_the_pinned_cdk_clis(delivery: dict[str, DeliveryApp]) -> None:
    """Read from node_modules' bootstrap-template.yaml (what `cdk bootstrap` deploys): RoleName of each role, and
    that every one of them trusts its own account (so a role of that account may assume it)."""
    from cfnlint.decode import decode_str

    template, problems = decode_str(BOOTSTRAP_TEMPLATE.read_text(encoding="utf-8"))
    assert problems == []
    names = {}
    for body in template["Resources"].values():
        if body["Type"] == "AWS::IAM::Role" and "RoleName" in body["Properties"]:
            pattern = body["Properties"]["RoleName"]["Fn::Sub"]
            match = re.fullmatch(r"cdk-\$\{Qualifier\}-([a-z-]+)-role-\$\{AWS::AccountId\}-\$\{AWS::Region\}", pattern)
            if match:
                names[match.group(1)] = body
    assert set(BOOTSTRAP_ROLE_PURPOSES) <= set(names)
    for purpose in BOOTSTRAP_ROLE_PURPOSES:
        trust = names[purpose]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        assert trust["Action"] == "sts:AssumeRole" and trust["Principal"] == {"AWS": {"Ref": "AWS::AccountId"}}
    assert template["Parameters"]["Qualifier"]["Default"] == "hnb659fds"
    # the lookup role is ReadOnlyAccess without KMS decryption: what the read role reaches
    lookup = names["lookup"]["Properties"]
    assert "ReadOnlyAccess" in json.dumps(lookup["ManagedPolicyArns"])
    assert "kms:Decrypt" in json.dumps(lookup["Policies"])


def test_the_provider_is_githubs_without_a_thumbprint(delivery: dict[str, DeliveryApp]) -> None:
    stage = _stage(delivery["one-account"])
    (provider,) = stage.resources("AWS::IAM::OIDCProvider")
    assert provider.properties == {"Url": f"https://{GITHUB_OIDC_HOST}", "ClientIdList": [GITHUB_OIDC_AUDIENCE]} \
        or {k: v for k, v in provider.properties.items() if k != "Tags"} == {
            "Url": f"https://{GITHUB_OIDC_HOST}", "ClientIdList": [GITHUB_OIDC_AUDIENCE]}


def test_an_account_with_a_provider_is_trusted_by_arn(tmp_path: Path) -> None:
    context = delivery_context("own-accounts")
    context["environments"]["prod"]["delivery"] = {"create_oidc_provider": False}
    app = cdk.App(outdir=str(tmp_path), context=context)
    stage = build_delivery(app, load_environments(context), only="prod", default_account=None)
    app.synth()
    assert list(stage.stacks) == [f"GitHubOidc-{ACCOUNTS['prod']}"]
    loaded = Stage.load(tmp_path, DELIVERY_STAGE, "eu-west-1", account=ACCOUNTS["prod"])
    assert list(loaded.resources("AWS::IAM::OIDCProvider")) == []
    (role, *_), = [[r for r in loaded.resources("AWS::IAM::Role") if "deploy" in r.properties["RoleName"]]]
    trust = loaded.resolve(role.stack, dict(role.properties))["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {
        "Federated": f"arn:aws:iam::{ACCOUNTS['prod']}:oidc-provider/{GITHUB_OIDC_HOST}"}


@pytest.mark.parametrize("layout", ["one-account", "own-accounts"])
def test_no_unacknowledged_nag_findings_and_no_acknowledgement(delivery: dict[str, DeliveryApp], layout: str) -> None:
    app = delivery[layout].app
    for pack in (AwsSolutionsChecks(), ServerlessChecks()):
        report = pack.validate_scope(app)
        assert [v.rule_name for v in report.violations] == []
    assert acknowledged_rules(delivery[layout].stage) == []


def test_cfn_lint_and_checkov_pass(delivery: dict[str, DeliveryApp]) -> None:
    for built in delivery.values():
        templates = [s.template for s in stack_summaries(built.outdir)]
        assert len(templates) == len(built.stage.stacks)
        assert run_cfn_lint(templates).findings == []
        result = run_checkov(built.outdir)
        assert result.findings == [] and "passed" in result.detail


def _context(repository: str | None = REPOSITORY, **per_env: dict[str, Any]) -> dict[str, Any]:
    context = copy.deepcopy(sampled_project_context())
    context["defaults"]["delivery"] = {"github_repository": repository}
    for env, delivery in per_env.items():
        context["environments"][env]["delivery"] = delivery
    return context


@pytest.mark.parametrize(("context", "only", "message"), [
    (_context(None), "dev", "environments.dev.delivery.github_repository is null"),
    (_context(), "qa", "context delivery is 'qa'; allowed: one of ['dev', 'prod', 'staging']"),
    (_context(prod={"github_repository": "other/repo"}), None, "delivery.github_repository are"),
    (_context(prod={"default_branch": "trunk"}), None, "delivery.default_branch are"),
    (_context(prod={"create_oidc_provider": False}), None,
     "environments.{dev,staging,prod}.delivery.create_oidc_provider are ['False', 'True']; allowed: one value"),
    (_context(prod={"bootstrap_qualifier": "other"}), None, "delivery.bootstrap_qualifier are"),
])
def test_inconsistent_delivery_settings_fail_synth_naming_the_key(context: dict[str, Any], only: str | None,
                                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_delivery(cdk.App(), load_environments(context), only=only, default_account=None)


def test_no_repository_no_stack() -> None:
    assert build_delivery(cdk.App(), load_environments(_context(None)), only=None, default_account=None) is None


@pytest.mark.parametrize("value", ["no-slash", "a/b c", "-bad/x"])
def test_a_repository_must_be_owner_slash_name(value: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("delivery.github_repository")):
        load_environments(_context(value))


def test_make_deploy_delivery_selects_the_stack_of_that_environments_account(tmp_path: Path) -> None:
    """`make deploy-delivery ENV=staging` synthesizes with `-c delivery=staging` (build_app builds that account's
    stack alone) and selects 'Delivery/*': the pinned CLI's `cdk ls` lists exactly that stack."""
    from stacks.app_builder import build_app
    from tests.infra.test_cli_stack_selection import cdk_ls, make_dry_run

    argv = make_dry_run("deploy-delivery", "staging")
    assert "delivery=staging" in argv and "Delivery/*" in argv
    context = delivery_context("own-accounts")
    app = cdk.App(outdir=str(tmp_path), context={**context, "delivery": "staging"})
    assert build_app(app, context=context, with_nag=False) == []  # no environment's stage
    app.synth()
    listed = cdk_ls(tmp_path, "Delivery/*")
    assert listed.returncode == 0, listed.stderr
    assert [line.split(" ")[0] for line in listed.stdout.splitlines() if line.strip()] == [
        f"Delivery/GitHubOidc-{ACCOUNTS['staging']}"]


@pytest.mark.parametrize("target", ["diff", "drift"])
def test_make_diff_and_drift_select_the_environments_stage(target: str) -> None:
    from tests.infra.test_cli_stack_selection import make_dry_run

    argv = make_dry_run(target, "prod")
    assert "prod/*" in argv and "env=prod" in argv
    assert ("--method" in argv and "template" in argv) if target == "diff" else "--fail" in argv


@pytest.mark.parametrize("layout", ["one-account", "own-accounts"])
def test_the_service_principal_validator_finds_no_delivery_to_check(delivery: dict[str, DeliveryApp],
                                                                    layout: str) -> None:
    """The OIDC stacks hold no alarm, rule, log group, bucket or function: tests/infra/test_service_principals.py's
    edge finders, run over the Delivery stage, find nothing a service delivers to."""
    from tests.infra.test_service_principals import all_edges

    assert all_edges(_stage(delivery[layout])) == []
