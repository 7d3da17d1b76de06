"""Limits that only a deployment would hit, computed from cdk.out:

- every physical name the templates (or a function's environment, for names the deployer creates) set,
  against the length and pattern constraints of the API that creates it, read from botocore's service
  models (the same models the AWS SDKs are generated from);
- every function's environment against Lambda's 4 KB quota ("Environment variables: 4 KB, for all
  environment variables associated with the function, in aggregate", Lambda quotas).

CloudFormation-generated names (of tables, functions, queues ...) are not known before deployment: in the
environments they appear with stand-ins of similar length (tests/infra/cloud_model.py), so the environment
check keeps a margin for longer real names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import botocore.session
import pytest

from mlsettings.config import load_environments
from mlsettings.naming import endpoint_name
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.cloud_model import Stage
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp

ENVIRONMENT_LIMIT_BYTES = 4 * 1024
# CloudFormation names generated resources up to ~64 characters (stack name, logical id, random suffix):
# room for every token in a function's environment to be that long.
GENERATED_NAME_LENGTH = 64

# (resource type, property) -> (service, operation, input member) of the API that takes that name.
NAMED_PROPERTIES = {
    ("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupName"):
        ("sagemaker", "CreateModelPackageGroup", "ModelPackageGroupName"),
    ("AWS::SageMaker::Pipeline", "PipelineName"): ("sagemaker", "CreatePipeline", "PipelineName"),
    ("AWS::CloudWatch::Alarm", "AlarmName"): ("cloudwatch", "PutMetricAlarm", "AlarmName"),
    ("AWS::CloudWatch::Dashboard", "DashboardName"): ("cloudwatch", "PutDashboard", "DashboardName"),
    ("AWS::SSM::Parameter", "Name"): ("ssm", "PutParameter", "Name"),
}
# Function environment variables whose value the function passes as a resource name it creates or calls.
NAMED_VARIABLES = {
    "ENDPOINT_NAME": ("sagemaker", "CreateEndpoint", "EndpointName"),
    "MODEL_PACKAGE_GROUP": ("sagemaker", "CreateModelPackageGroup", "ModelPackageGroupName"),
}

_SESSION = botocore.session.get_session()


def constraint(service: str, operation: str, member: str) -> tuple[int | None, int | None, str | None]:
    shape = _SESSION.get_service_model(service).operation_model(operation).input_shape.members[member]
    return shape.metadata.get("min"), shape.metadata.get("max"), shape.metadata.get("pattern")


def name_problems(name: str, api: tuple[str, str, str]) -> list[str]:
    low, high, pattern = constraint(*api)
    found = []
    if (low is not None and len(name) < low) or (high is not None and len(name) > high):
        found.append(f"{name!r} has {len(name)} characters; {'.'.join(api)} takes {low}-{high}")
    # botocore keeps the services' patterns unanchored; the services match the whole value.
    if pattern and not re.fullmatch(pattern, name):
        found.append(f"{name!r} does not match {'.'.join(api)}'s pattern {pattern}")
    return found


def named_values(stage: Stage) -> Iterator[tuple[str, str, tuple[str, str, str]]]:
    for resource in stage.resources():
        for (kind, prop), api in NAMED_PROPERTIES.items():
            if resource.type == kind and prop in resource.properties:
                yield f"{resource.stack}/{resource.logical_id}.{prop}", str(
                    stage.resolve(resource.stack, resource.properties[prop])), api
    for function in stage.resources("AWS::Lambda::Function"):
        variables = function.properties.get("Environment", {}).get("Variables", {})
        for variable, api in NAMED_VARIABLES.items():
            if variable in variables:
                yield f"{function.stack}/{function.logical_id} {variable}", str(
                    stage.resolve(function.stack, variables[variable])), api


def environment_size(stage: Stage, stack: str, variables: dict[str, object]) -> int:
    """Bytes of keys and values, with every CloudFormation-resolved part counted at a generated name's
    length when its stand-in is shorter."""
    total = 0
    for key, value in variables.items():
        resolved = str(stage.resolve(stack, value))
        tokens = 0 if isinstance(value, str) else max(1, str(value).count("'Ref'") + str(value).count("GetAtt")
                                                        + str(value).count("ImportValue"))
        total += len(key.encode()) + len(resolved.encode()) + tokens * GENERATED_NAME_LENGTH
    return total


@pytest.fixture(scope="module")
def stages(synthesized: SynthesizedApp) -> dict[str, Stage]:
    configs = load_environments(sampled_project_context())
    return {env: Stage.load(synthesized.outdir, env, configs[env].region) for env in ENVIRONMENTS}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_physical_names_fit_the_apis_that_create_them(stages: dict[str, Stage], env: str) -> None:
    values = list(named_values(stages[env]))
    assert len({api for _, _, api in values}) >= 4
    assert [f"{where}: {p}" for where, name, api in values for p in name_problems(name, api)] == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_function_environment_fits_lambdas_4_kb(stages: dict[str, Stage], env: str) -> None:
    stage = stages[env]
    sizes = {f.logical_id: environment_size(stage, f.stack, dict(f.properties.get("Environment", {})
                                                                  .get("Variables", {})))
             for f in stage.resources("AWS::Lambda::Function")}
    assert sizes
    assert {name: size for name, size in sizes.items() if size > ENVIRONMENT_LIMIT_BYTES} == {}


def test_the_name_check_refuses_what_the_api_refuses() -> None:
    group = ("sagemaker", "CreateModelPackageGroup", "ModelPackageGroupName")
    assert name_problems("mlops-prod-models", group) == []
    assert name_problems("mlops_prod_models", group)  # underscores are outside the pattern
    assert name_problems("m" * 64, group)  # 63 characters at most


# What may cross a stack boundary as a CloudFormation export (CloudFormation refuses to change or delete an
# exported value while another stack imports it). Everything else travels as a published name
# (stacks/constructs/published_names.py). Reviewed list: exporting stack -> {exported resource type: reason}.
EXPORTS_ALLOWED = {
    "Storage": {"AWS::KMS::Key": "retained, never replaced in place; every stack's grants name it",
                "AWS::S3::Bucket": "retained, never replaced in place (a replacement is a data migration); "
                                   "the consumers' IAM grants and Firehose destination need the ARN"},
    "Registry": {"AWS::DynamoDB::Table": "the ledger: retained, its key schema is the deployer's contract"},
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_retained_stateful_resources_are_exported(stages: dict[str, Stage], env: str) -> None:
    stage = stages[env]
    exported: dict[str, set[str]] = {}
    for stack, template in stage.templates.items():
        for output in template.get("Outputs", {}).values():
            if "Export" not in output:
                continue
            value = output["Value"]
            logical_id = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
            kind = template["Resources"][logical_id]["Type"]
            exported.setdefault(stack.removeprefix(env).rstrip("0123456789ABCDEF"), set()).add(kind)
    assert exported, "no exports found: the stack-name parsing is broken"
    assert {stack: kinds - set(EXPORTS_ALLOWED.get(stack, {})) for stack, kinds in exported.items()} == {
        stack: set() for stack in exported}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_names_the_deployer_creates_fit_the_api_and_its_own_grant(stages: dict[str, Stage],
                                                                 synthesized: SynthesizedApp, env: str) -> None:
    """The deployer names each rollout's endpoint config itself (mlplatform/serving/deployment_plan.py): the
    name must fit CreateEndpointConfig and fall under the endpoint-config ARN its role is granted (MODEL's
    deployer, in MODEL's stack)."""
    from datetime import UTC, datetime

    from mlplatform.serving.deployment_plan import endpoint_config_name

    stage = stages[env]
    own_stack = synthesized.stages[env].models[MODEL].artifact_id
    expected = endpoint_name(load_environments(sampled_project_context())[env].for_model(MODEL))
    (endpoint,) = {value for where, value, api in named_values(stage)
                   if api[2] == "EndpointName" and where.startswith(f"{own_stack}/")}
    assert endpoint == expected
    name = endpoint_config_name(endpoint, datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "0f" * 18)
    assert name_problems(name, ("sagemaker", "CreateEndpointConfig", "EndpointConfigName")) == []
    granted = [str(resource) for policy in stage.resources("AWS::IAM::Policy")
               if policy.stack == own_stack and "Deployer" in policy.logical_id
               for statement in stage.resolve(policy.stack, policy.properties["PolicyDocument"])["Statement"]
               if "sagemaker:CreateEndpointConfig" in statement["Action"]
               for resource in statement["Resource"]]
    arn = f"arn:aws:sagemaker:{stage.region}:111122223333:endpoint-config/{name}"
    assert any(re.fullmatch(re.escape(g).replace(r"\*", ".*"), arn) for g in granted), (arn, granted)
