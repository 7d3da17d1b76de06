"""botocore's set-up errors as one line that says what to fix (exit status 2), instead of a traceback.

Only errors an operator fixes by changing credentials, profile, region or network are translated: a
missing or unknown profile, no credentials, no region, an unreachable endpoint, credentials AWS does not
recognise, an expired session, a denied action. Anything else is left to propagate (it is a bug, or an
AWS answer the command itself handles).

The module never imports botocore: if botocore is not loaded, the error cannot be one of its own.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlops.aws_session import AwsTarget

UNRECOGNIZED = frozenset({"UnrecognizedClientException", "InvalidClientTokenId", "SignatureDoesNotMatch",
                          "AuthFailure", "InvalidAccessKeyId"})
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
DENIED = frozenset({"AccessDenied", "AccessDeniedException"})


def explain(err: BaseException, args: argparse.Namespace) -> str | None:
    """The one-line message for a botocore set-up error, or None when ``err`` is something else."""
    exceptions: Any = sys.modules.get("botocore.exceptions")
    if exceptions is None:
        return None
    target: AwsTarget | None = getattr(args, "aws_target", None)
    needs = target.describe() if target else "pass --env, --region and --profile as needed"
    profile_fix = "pass --profile NAME (or set AWS_PROFILE)"
    if isinstance(err, exceptions.ProfileNotFound):
        profile = err.kwargs.get("profile", "?")
        return (f"AWS profile {profile!r} is not in ~/.aws/config or ~/.aws/credentials"
                f"{_known_profiles()}; fix --profile or AWS_PROFILE; {needs}")
    if isinstance(err, exceptions.ConfigParseError):
        return (f"the AWS config file {err.kwargs.get('path', '')} cannot be parsed: fix it or point "
                f"AWS_CONFIG_FILE at another; {needs}")
    sso_errors = tuple(getattr(exceptions, name) for name in ("SSOTokenLoadError", "TokenRetrievalError",
                                                               "UnauthorizedSSOTokenError")
                       if hasattr(exceptions, name))
    if sso_errors and isinstance(err, sso_errors):
        return f"the SSO session has expired or was never started: run `aws sso login` for the profile; {needs}"
    if isinstance(err, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return (f"no usable AWS credentials: {profile_fix}, or export AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY; {needs}")
    if isinstance(err, exceptions.NoRegionError):
        return f"no AWS region: pass --region, set AWS_DEFAULT_REGION, or pass --env to use cdk.json's; {needs}"
    if isinstance(err, exceptions.EndpointConnectionError | exceptions.ConnectTimeoutError):
        url = err.kwargs.get("endpoint_url", "the AWS endpoint")
        return (f"cannot reach {url}: check the region (--region, or the environment's region in cdk.json) and "
                f"the network or proxy; {needs}")
    if isinstance(err, exceptions.ClientError):
        error = err.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", "")).strip()
        operation = getattr(err, "operation_name", "the call")
        if code in UNRECOGNIZED:
            return (f"AWS does not recognise the credentials ({code} on {operation}): {profile_fix} with valid "
                    f"keys for the right account; {needs}")
        if code in EXPIRED:
            return (f"the AWS session has expired ({code} on {operation}): refresh it (`aws sso login`, or new "
                    f"temporary keys); {needs}")
        if code in DENIED:
            return (f"access denied on {operation}: {message or code}; use a profile whose role may do this; "
                    f"{needs}")
    return None


def _known_profiles() -> str:
    try:
        import boto3

        profiles = sorted(boto3.Session().available_profiles)
    except Exception:  # the listing is a courtesy; the message stands without it
        return ""
    return f" (profiles there: {', '.join(profiles)})" if profiles else " (no profiles are configured)"
