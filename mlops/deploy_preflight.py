"""`make deploy ENV=x` / `make destroy ENV=x` run this first: is ENV an environment of cdk.json, and do the
caller's AWS credentials belong to the account that environment names? One clear line and exit 2 otherwise,
before the CDK CLI spends a minute synthesizing and bundling only to stop at "Unable to resolve AWS account".

    python -m mlops.deploy_preflight ENV [--profile NAME]

Prints the stage selector the CDK CLI needs (`ENV/*`: every stack sits inside the environment's Stage, so
`--all` selects nothing) and the account/region it will deploy to.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mlops.errors import OperatorError
from mlops.project_config import load_configs, project_file


class PreflightError(Exception):
    pass


def stage_selector(environment: str) -> str:
    """The CDK CLI selector for every stack of one environment's Stage (its construct id is the env name)."""
    return f"{environment}/*"


def check(environment: str, *, profile: str | None = None, bootstrap_target: bool = False, verb: str = "deploying",
          selector: str | None = None) -> str:
    """What `make deploy` will do, after checking ENV and the credentials; with ``bootstrap_target``, the
    ``aws://ACCOUNT/REGION`` environment `make bootstrap-account` bootstraps (the account cdk.json names, which the
    credentials must be for; without one in cdk.json, the credentials' own). ``verb`` and ``selector`` name what
    another make target does with the same check (diff, drift: comparing ENV/*; deploy-delivery: Delivery/*)."""
    try:
        configs = load_configs(project_file())  # the cdk.json `make deploy` synthesizes from
    except OperatorError as err:
        raise PreflightError(str(err)) from None
    if environment not in configs:
        raise PreflightError(f"ENV is {environment!r}; allowed: one of {sorted(configs)} (cdk.json environments)")
    config = configs[environment]
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, ConfigParseError, NoCredentialsError, ProfileNotFound

    try:
        session = boto3.Session(profile_name=profile, region_name=config.region)
        identity = session.client("sts").get_caller_identity()
    except ProfileNotFound:
        name = profile or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")
        where = "PROFILE=" if profile else "AWS_PROFILE="
        raise PreflightError(f"AWS profile {name!r} ({where}{name}) is not configured (aws configure --profile "
                             f"{name})") from None
    except ConfigParseError as err:
        raise PreflightError(f"the AWS config file {err.kwargs.get('path', '')} cannot be parsed; fix it or point "
                             "AWS_CONFIG_FILE at another") from None
    except NoCredentialsError:
        target = config.account or "the environment's account"
        raise PreflightError(f"no AWS credentials: sign in to {target} (AWS_PROFILE, aws sso login, or "
                             f"environment credentials) before deploying {environment}") from None
    except (ClientError, BotoCoreError) as err:
        raise PreflightError(f"cannot verify the AWS credentials for {environment}: {err}") from None
    account = str(identity["Account"])
    if config.account and config.account != account:
        raise PreflightError(f"cdk.json puts {environment} in account {config.account}, but the credentials "
                             f"are for {account}; sign in to {config.account}")
    if bootstrap_target:
        return f"aws://{account}/{config.region}"
    return f"{verb} {selector or stage_selector(environment)} to {account}/{config.region} as {identity['Arn']}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.deploy_preflight", description=__doc__)
    parser.add_argument("environment", help="an environment of cdk.json (dev, staging, prod)")
    parser.add_argument("--profile", default=None, help="AWS profile to check (default: the usual chain)")
    parser.add_argument("--bootstrap-target", action="store_true",
                        help="print the aws://ACCOUNT/REGION to bootstrap for the environment instead")
    parser.add_argument("--verb", default="deploying", help="what the make target does (printed)")
    parser.add_argument("--selector", default=None, help="the CDK CLI selector it uses (default: ENV/*)")
    args = parser.parse_args(argv)
    try:
        print(check(args.environment, profile=args.profile, bootstrap_target=args.bootstrap_target,
                    verb=args.verb, selector=args.selector))
    except PreflightError as err:
        print(f"make: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
