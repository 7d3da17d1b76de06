"""Names of delivery from git, defined once: the OIDC stack builds them, the workflow generator
(mlops/delivery/workflow.py) writes them into the workflow, the tests check both against each other.

No CDK here (the CLI imports it). Facts this module relies on, each checked by a test:
- GitHub's OIDC issuer is ``token.actions.githubusercontent.com``; its ``aud`` for AWS is ``sts.amazonaws.com``
  (the default of aws-actions/configure-aws-credentials' ``audience`` input, read in its action.yml);
- a job bound to a GitHub environment gets ``sub`` = ``repo:<owner>/<repo>:environment:<name>``; a pull
  request's job ``repo:<owner>/<repo>:pull_request``; any other job on a branch
  ``repo:<owner>/<repo>:ref:refs/heads/<branch>`` (GitHub Docs, "About security hardening with OpenID Connect",
  example subject claims);
- the CDK bootstrap roles are ``cdk-<qualifier>-<purpose>-role-<account>-<region>`` (the pinned CDK CLI's
  bootstrap-template.yaml, read by tests/infra/test_delivery.py).
"""

from __future__ import annotations

from mlsettings.config import EnvironmentConfig

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
SUB_CLAIM = f"{GITHUB_OIDC_HOST}:sub"
AUD_CLAIM = f"{GITHUB_OIDC_HOST}:aud"

# The CDK bootstrap roles a `cdk deploy` assumes (deploy: CloudFormation; file/image publishing: assets;
# lookup: context lookups and `cdk diff --method template`).
BOOTSTRAP_ROLE_PURPOSES = ("deploy", "file-publishing", "image-publishing", "lookup")
LOOKUP = "lookup"

# The cloud assembly names of the OIDC stacks: one Stage outside every environment's, one stack per account.
# Upper case: an environment name is lower case (mlsettings/config), so the two can never collide.
DELIVERY_STAGE = "Delivery"
DELIVERY_CONTEXT_KEY = "delivery"  # `cdk deploy -c delivery=ENV 'Delivery/*'`: the stack of ENV's account
# When cdk.json gives no account ids every environment shares the CLI's account: one stack of this name.
SHARED_ACCOUNT_STACK = "GitHubOidc"

# Repository-level GitHub Actions variable holding the account id when cdk.json gives none.
ACCOUNT_VARIABLE = "AWS_ACCOUNT_ID"


def deploy_role_name(config: EnvironmentConfig) -> str:
    """Assumed by the workflow's deploy job of this environment (bound to the GitHub environment of this name)."""
    return f"mlops-{config.name}-github-deploy"


def read_role_name(config: EnvironmentConfig) -> str:
    """Assumed by pull-request jobs (`cdk diff`) and the scheduled drift job: the lookup role only."""
    return f"mlops-{config.name}-github-read"


def github_environment(config: EnvironmentConfig) -> str:
    """The GitHub environment a deploy job is bound to: the cdk.json environment's own name."""
    return config.name


def deploy_subject(config: EnvironmentConfig) -> str:
    return f"repo:{config.delivery.github_repository}:environment:{github_environment(config)}"


def read_subjects(config: EnvironmentConfig) -> tuple[str, ...]:
    repository = config.delivery.github_repository
    return (f"repo:{repository}:pull_request", f"repo:{repository}:ref:refs/heads/{config.delivery.default_branch}")


def bootstrap_role_name(config: EnvironmentConfig, purpose: str, account: str) -> str:
    if purpose not in BOOTSTRAP_ROLE_PURPOSES:
        raise ValueError(f"{purpose!r} is not a bootstrap role; allowed: {BOOTSTRAP_ROLE_PURPOSES}")
    return f"cdk-{config.delivery.bootstrap_qualifier}-{purpose}-role-{account}-{config.region}"


def role_arn(partition: str, account: str, name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{name}"


def oidc_provider_arn(partition: str, account: str) -> str:
    return f"arn:{partition}:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}"


def delivery_stack_id(config: EnvironmentConfig) -> str:
    """The OIDC stack holding this environment's roles: one per account."""
    return f"{SHARED_ACCOUNT_STACK}-{config.account}" if config.account else SHARED_ACCOUNT_STACK
