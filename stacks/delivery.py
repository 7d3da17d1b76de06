"""Delivery from git: GitHub's OIDC provider and the roles the generated workflow assumes, one stack per account.

Deployed once per account, apart from the environments' stages: `make deploy-delivery ENV=x` runs
`cdk deploy -c delivery=x 'Delivery/*'`, which synthesizes only the stack of x's account (docs/DEPLOYING.md,
"Delivery from git"). Per environment of that account:

* ``mlops-<env>-github-deploy``: trusted only by a job of this repository bound to the GitHub environment of
  the same name; may only assume that account's CDK bootstrap roles (deploy, file publishing, image publishing,
  lookup). Everything `cdk deploy` does, the bootstrap roles do; no access key exists anywhere.
* ``mlops-<env>-github-read``: trusted by this repository's pull-request jobs and by runs on its default branch
  (the scheduled drift job); may only assume the lookup role (AWS's ReadOnlyAccess without kms:Decrypt, in the
  bootstrap template). It exists so that a `cdk diff` on every pull request and the daily drift check need no
  reviewer's approval, which a GitHub environment with required reviewers would demand of every job bound to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from cdk_nag import WriteNagSuppressionsToCloudFormationAspect
from constructs import Construct

from mlsettings.config import ConfigError, EnvironmentConfig
from mlsettings.delivery_naming import (
    AUD_CLAIM,
    BOOTSTRAP_ROLE_PURPOSES,
    DELIVERY_STAGE,
    GITHUB_OIDC_AUDIENCE,
    GITHUB_OIDC_HOST,
    LOOKUP,
    SUB_CLAIM,
    bootstrap_role_name,
    delivery_stack_id,
    deploy_role_name,
    deploy_subject,
    oidc_provider_arn,
    read_role_name,
    read_subjects,
    role_arn,
)

# configure-aws-credentials and the CDK CLI chain roles; AWS caps a chained session at one hour anyway.
SESSION = cdk.Duration.hours(1)


class GitHubOidcStack(cdk.Stack):
    """GitHub's OIDC provider (or the account's existing one) and two roles per environment of one account."""

    def __init__(self, scope: Construct, construct_id: str, *, configs: Sequence[EnvironmentConfig],
                 **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        first = configs[0]
        if first.delivery.create_oidc_provider:
            # No thumbprint: IAM trusts GitHub's OIDC endpoint through its own root CAs (IAM User Guide,
            # "Create an OpenID Connect (OIDC) identity provider"; aws-actions/configure-aws-credentials v6).
            provider = iam.CfnOIDCProvider(self, "GitHubProvider", url=f"https://{GITHUB_OIDC_HOST}",
                                           client_id_list=[GITHUB_OIDC_AUDIENCE])
            self.provider_arn = provider.attr_arn
        else:
            self.provider_arn = oidc_provider_arn(self.partition, self.account)
        self.roles: dict[str, tuple[iam.Role, iam.Role]] = {}
        for config in configs:
            self.roles[config.name] = (self._role(config, deploy=True), self._role(config, deploy=False))

    def _role(self, config: EnvironmentConfig, *, deploy: bool) -> iam.Role:
        subjects = [deploy_subject(config)] if deploy else list(read_subjects(config))
        purposes = BOOTSTRAP_ROLE_PURPOSES if deploy else (LOOKUP,)
        name = deploy_role_name(config) if deploy else read_role_name(config)
        label = "Deploy" if deploy else "Read"
        role = iam.Role(
            self, f"{config.name.title().replace('-', '')}{label}Role", role_name=name, max_session_duration=SESSION,
            description=(f"GitHub Actions: deploys {config.name} through the CDK bootstrap roles" if deploy else
                         f"GitHub Actions: cdk diff and drift of {config.name} through the CDK lookup role"),
            assumed_by=iam.WebIdentityPrincipal(self.provider_arn, conditions={
                "StringEquals": {AUD_CLAIM: GITHUB_OIDC_AUDIENCE,
                                 SUB_CLAIM: subjects[0] if len(subjects) == 1 else subjects}}))
        role.add_to_policy(iam.PolicyStatement(
            sid="AssumeTheCdkBootstrapRoles" if deploy else "AssumeTheCdkLookupRole", actions=["sts:AssumeRole"],
            resources=[role_arn(self.partition, self.account, bootstrap_role_name(config, purpose, self.account))
                       for purpose in purposes]))
        return role


class DeliveryStage(cdk.Stage):
    def __init__(self, scope: Construct, *, groups: Mapping[str, Sequence[EnvironmentConfig]],
                 default_account: str | None) -> None:
        super().__init__(scope, DELIVERY_STAGE)
        cdk.Tags.of(self).add("project", "serverless-mlops")
        self.stacks: dict[str, GitHubOidcStack] = {}
        for stack_id, configs in groups.items():
            env = cdk.Environment(account=configs[0].account or default_account, region=configs[0].region)
            self.stacks[stack_id] = GitHubOidcStack(
                self, stack_id, configs=configs, env=env,
                description=f"MLOps delivery: GitHub OIDC roles for {', '.join(c.name for c in configs)}")
        cdk.Aspects.of(self).add(WriteNagSuppressionsToCloudFormationAspect())


def account_groups(configs: Mapping[str, EnvironmentConfig]) -> dict[str, list[EnvironmentConfig]]:
    """The environments of each account (one OIDC stack each), after checking the settings they must share."""
    repositories = {c.delivery.github_repository for c in configs.values()}
    branches = {c.delivery.default_branch for c in configs.values()}
    for key, values in (("github_repository", repositories), ("default_branch", branches)):
        if len(values) > 1:
            raise ConfigError(f"environments.*.delivery.{key} are {sorted(map(str, values))}; allowed: one value "
                              "for every environment (one repository delivers them all)")
    groups: dict[str, list[EnvironmentConfig]] = {}
    for config in configs.values():
        groups.setdefault(delivery_stack_id(config), []).append(config)
    for members in groups.values():
        for key in ("create_oidc_provider", "bootstrap_qualifier"):
            values = {getattr(c.delivery, key) for c in members}
            if len(values) > 1:
                names = ",".join(c.name for c in members)
                raise ConfigError(f"environments.{{{names}}}.delivery.{key} are {sorted(map(str, values))}; "
                                  "allowed: one value, since these environments share an account")
    return groups


def build_delivery(app: cdk.App, configs: Mapping[str, EnvironmentConfig], *, only: str | None,
                   default_account: str | None) -> DeliveryStage | None:
    """The Delivery stage: every account's OIDC stack, or with ``only`` (`-c delivery=ENV`) that environment's.
    None when cdk.json names no repository (and ``only`` is not asked for)."""
    groups = account_groups(configs)
    if only is not None:
        if only not in configs:
            raise ConfigError(f"context delivery is {only!r}; allowed: one of {sorted(configs)}")
        if configs[only].delivery.github_repository is None:
            raise ConfigError(f"environments.{only}.delivery.github_repository is null; allowed: 'owner/name' of "
                              "the GitHub repository whose workflow deploys (docs/DEPLOYING.md, 'Delivery from git')")
        wanted = delivery_stack_id(configs[only])
        groups = {wanted: groups[wanted]}
    elif next(iter(configs.values())).delivery.github_repository is None:
        return None
    return DeliveryStage(app, groups=groups, default_account=default_account)
