"""Publishing resource names as SSM parameters ``/mlops/<env>/<key>``.

The CLI (mlops/resources.py) reads them, so it never guesses physical names. Stacks read them too
(``read_published``) instead of importing CloudFormation exports where a consumer needs only a name or ARN:
an export pins its producer (CloudFormation refuses to replace or remove an exported value while a stack
imports it, "Export ... cannot be updated as it is in use"), a published name is a deploy-time parameter the
consumer resolves on its next deploy, so each stack stays independently replaceable. The producer still
deploys first: the stage keeps the stack dependency."""

from __future__ import annotations

from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from mlsettings.config import EnvironmentConfig
from mlsettings.vocabulary import PARAMETER_PREFIX, Published


def publish_name(scope: Construct, *, environment: str, key: str, value: str) -> ssm.StringParameter:
    construct_id = "Published" + "".join(part.capitalize() for part in key.replace("/", "-").split("-"))
    return ssm.StringParameter(
        scope, construct_id,
        parameter_name=f"{PARAMETER_PREFIX}/{environment}/{key}",
        string_value=value,
        description=f"{key} of the {environment} MLOps environment, read by the mlops CLI",
    )


def read_published(scope: Construct, *, environment: str, key: str) -> str:
    """The value ``publish_name`` wrote under ``key``, as a deploy-time SSM parameter of ``scope``'s stack."""
    return ssm.StringParameter.value_for_string_parameter(scope, f"{PARAMETER_PREFIX}/{environment}/{key}")


def published_topic(scope: Construct, construct_id: str, *, environment: str, severity: str) -> sns.ITopic:
    """An alert topic of the Alerting stack (``<severity>-topic-arn``), referenced without an export."""
    return sns.Topic.from_topic_arn(scope, construct_id,
                                    read_published(scope, environment=environment, key=Published.topic_arn(severity)))


def publish_model_name(scope: Construct, config: EnvironmentConfig, *, key: str, value: str) -> ssm.StringParameter:
    """A name of one model's resources: ``/mlops/<env>/models/<model>/<key>`` (``config``: the model's view)."""
    assert config.model is not None
    return publish_name(scope, environment=config.name, key=Published.for_model(config.model.name, key),
                        value=value)
