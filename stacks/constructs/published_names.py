"""Publishing resource names for the operator CLI as SSM parameters ``/mlops/<env>/<key>``.

The CLI (mlops/resources.py) reads them, so it never guesses physical names."""

from __future__ import annotations

from aws_cdk import aws_ssm as ssm
from constructs import Construct

PARAMETER_PREFIX = "/mlops"


def publish_name(scope: Construct, *, environment: str, key: str, value: str) -> ssm.StringParameter:
    construct_id = "Published" + "".join(part.capitalize() for part in key.split("-"))
    return ssm.StringParameter(
        scope, construct_id,
        parameter_name=f"{PARAMETER_PREFIX}/{environment}/{key}",
        string_value=value,
        description=f"{key} of the {environment} MLOps environment, read by the mlops CLI",
    )
