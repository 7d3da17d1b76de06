"""The one way every AWS-facing command reaches AWS: ``--env`` / ``--region`` / ``--profile`` → a boto3 session.

Region: ``--region`` if given, else the environment's ``region`` in cdk.json (its stacks, SSM names and
endpoint live there, so a shell's AWS_DEFAULT_REGION set for another project must not redirect the
command); without ``--env`` (only ``mlops drift`` allows that) boto3's own chain decides
(AWS_DEFAULT_REGION, the profile's region). Credentials: ``--profile`` if given, else boto3's chain
(AWS_PROFILE, the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables, SSO, instance roles). When cdk.json
names the environment's account, the caller's account is checked before anything else is called.

boto3 is imported only when a session is made: ``mlops --help`` must not pay for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from mlops.errors import OperatorError
from mlops.project_config import environment_config

REGION_HELP = "AWS region to call (default: the environment's region in cdk.json)"
PROFILE_HELP = ("named AWS profile from ~/.aws/config (default: AWS_PROFILE, then the standard credential "
                "chain)")


MODEL_HELP = "model name from cdk.json's models (required when there is more than one)"


def add_aws_options(parser: argparse.ArgumentParser, *, env_required: bool = True,
                    env_help: str = "environment name from cdk.json (dev, staging, prod, ...)",
                    model: bool = True) -> None:
    """``--env``, ``--model``, ``--region`` and ``--profile``, spelled and explained the same on every command."""
    parser.add_argument("--env", required=env_required, metavar="NAME", help=env_help)
    if model:
        parser.add_argument("--model", metavar="NAME", help=MODEL_HELP)
    parser.add_argument("--region", metavar="REGION", help=REGION_HELP)
    parser.add_argument("--profile", metavar="PROFILE", help=PROFILE_HELP)


@dataclass(frozen=True)
class AwsTarget:
    """Where a command is about to call: what error messages name so the operator knows what to fix."""

    environment: str | None
    account: str | None
    region: str | None
    region_source: str
    profile: str | None  # --profile, or AWS_PROFILE as boto3 will read it
    profile_source: str
    on_behalf_of: str | None = None  # the environment named by --env, when the command acts on its registry

    def describe(self) -> str:
        where = f"environment {self.environment!r}" if self.environment else "this command"
        if self.on_behalf_of and self.on_behalf_of != self.environment:
            where = f"the registry of environment {self.on_behalf_of!r} (environment {self.environment!r})"
        account = f"account {self.account}" if self.account else "the account of your credentials (cdk.json " \
                                                                  "names none)"
        region = f"region {self.region} (from {self.region_source})" if self.region else \
            "no region (pass --region or set AWS_DEFAULT_REGION)"
        profile = f"profile {self.profile!r} (from {self.profile_source})" if self.profile else \
            "the default credential chain (no --profile, no AWS_PROFILE)"
        return f"{where} needs {account}, {region}, {profile}"


def resolve_target(args: argparse.Namespace) -> AwsTarget:
    """The account, region and profile a command's arguments (and cdk.json) select; reads no credentials."""
    name = getattr(args, "env", None)
    config = environment_config(name) if name else None
    region = getattr(args, "region", None)
    if region:
        region_source = "--region"
    elif config is not None:
        region, region_source = config.region, f"cdk.json environments.{config.name}.region"
    else:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        region_source = "AWS_REGION/AWS_DEFAULT_REGION" if region else "the profile's configuration"
    profile = getattr(args, "profile", None)
    profile_source = "--profile"
    if not profile and os.environ.get("AWS_PROFILE"):
        profile, profile_source = os.environ["AWS_PROFILE"], "AWS_PROFILE"
    return AwsTarget(environment=name, account=config.account if config else None, region=region or None,
                     region_source=region_source, profile=profile or None, profile_source=profile_source)


class AwsSession:
    """boto3 clients for one target; every client of a command comes from here."""

    def __init__(self, target: AwsTarget, *, explicit_profile: str | None = None) -> None:
        import boto3

        self.target = target
        # Only an explicit --profile is passed: boto3 reads AWS_PROFILE itself, and passing it here too would
        # make a profile that the environment variables' static keys should override win instead.
        self._session = boto3.Session(profile_name=explicit_profile, region_name=target.region)
        self._caller_arn: str | None = None

    @property
    def region(self) -> str | None:
        return self.target.region

    def client(self, service: str) -> Any:
        return self._session.client(service)

    def caller_arn(self) -> str:
        """Who is calling (recorded with promotions and rollbacks); fetched once."""
        if self._caller_arn is None:
            self._caller_arn = str(self.client("sts").get_caller_identity()["Arn"])
        return self._caller_arn

    def check_account(self) -> None:
        """Refuse credentials for another account than the one cdk.json names for the environment."""
        if self.target.account is None:
            return
        arn = self.caller_arn()
        account = arn.split(":")[4] if arn.count(":") >= 5 else ""
        if account != self.target.account:
            via = (f" (the registry environment of {self.target.on_behalf_of!r}: its ledger, versions and "
                   "promotion bus live there)" if self.target.on_behalf_of
                   and self.target.on_behalf_of != self.target.environment else "")
            raise OperatorError(
                f"the credentials are for account {account or '?'} ({arn}) but environment "
                f"{self.target.environment!r}{via} is account {self.target.account} in cdk.json; use --profile "
                "(or AWS_PROFILE) for that account")


def aws_session(args: argparse.Namespace, *, registry: bool = False) -> AwsSession:
    """The session of a command: resolves the target, remembers it for error messages, checks the account.
    ``registry``: the command acts on the registry environment of ``--env`` (status, promote, rollback), so
    the credentials must be for the registry's account."""
    target = resolve_target(args)
    if registry and target.environment is not None:
        owner = environment_config(target.environment).registry.registry_environment
        if owner != target.environment:
            owner_args = argparse.Namespace(**{**vars(args), "env": owner})
            target = dataclasses.replace(resolve_target(owner_args), on_behalf_of=target.environment)
    args.aws_target = target  # read by mlops.aws_errors when a botocore error ends the command
    session = AwsSession(target, explicit_profile=getattr(args, "profile", None) or None)
    session.check_account()
    return session


def selected_model(args: argparse.Namespace) -> str:
    """The model a command acts on: ``--model``, or cdk.json's only model (models are the same in every
    environment; each environment has a view of each)."""
    from mlops.project_config import model_config

    view = model_config(args.env, getattr(args, "model", None))
    assert view.model is not None
    return view.model.name
