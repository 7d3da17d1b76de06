"""What the scheduled `make drift` (cdk drift --fail) can see: CloudFormation's drift detection compares only the
resources a stack declares. The serving deployer changes things at run time (the endpoint, its configs and
models, autoscaling, SSM parameters, the fallback model object); none of them may be a resource of any
template, or every deployment would show up as drift. Derived from the synthesized deployer role: every
resource its mutating statements allow is checked against every template of the environment, in both
topologies. docs/DEPLOYING.md lists them ("What drift detection leaves out")."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from mlsettings.config import load_environments
from mlsettings.naming import consumer_role_name
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.cloud_model import Stage
from tests.infra.conftest import ACCOUNTS, ENVIRONMENTS, SynthesizedApp

REPO = Path(__file__).resolve().parents[2]
MUTATING = re.compile(r"^(Create|Update|Put|Register|Deregister|Delete|Add)", re.IGNORECASE)
# The resource types the deployer creates through the API, never through CloudFormation.
RUNTIME_TYPES = ("AWS::SageMaker::Endpoint", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Model",
                 "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy")
# What docs/DEPLOYING.md names for each kind of thing the deployer writes at run time.
DOCUMENTED = ("endpoint", "endpoint configs", "models", "scalable targets", "scaling policies",
              "target-tracking alarms", "/mlops/<env>/deployer/", "/mlops/<env>/variant/",
              "serving/fallback_model.json")


def _arn_of(stage: Stage, resource: object) -> str | None:
    stack, logical, kind = resource.stack, resource.logical_id, resource.type  # type: ignore[attr-defined]
    if kind == "AWS::SSM::Parameter":
        name = stage.resolve(stack, resource.properties["Name"])  # type: ignore[attr-defined]
        return f"arn:aws:ssm:{stage.region}:{stage.account}:parameter{name}"
    arn = stage.resolve(stack, {"Fn::GetAtt": [logical, "Arn"]})
    return arn if isinstance(arn, str) and arn.startswith("arn:") else None


def _runtime_patterns(stage: Stage, env: str) -> list[tuple[str, str]]:
    config = load_environments(sampled_project_context())[env].for_model(MODEL)  # MODEL's deployer, as the sample
    role = f"arn:aws:iam::{stage.account}:role/{consumer_role_name(config, 'deployer')}"
    _, documents = stage.role_documents(role)
    found = []
    for document in documents:
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                if MUTATING.match(action.split(":", 1)[1]) and not action.startswith(("logs:", "xray:", "kms:")):
                    found += [(action, str(resource)) for resource in resources]
    return found


@pytest.fixture(scope="module")
def stages(synthesized: SynthesizedApp, three_accounts: SynthesizedApp) -> dict[str, Stage]:
    configs = load_environments(sampled_project_context())
    one = {env: Stage.load(synthesized.outdir, env, configs[env].region) for env in ENVIRONMENTS}
    own = {f"{env}@own": Stage.load(three_accounts.outdir, env, configs[env].region, account=account)
           for env, account in ACCOUNTS.items()}
    return {**one, **own}


@pytest.mark.parametrize("topology", [*ENVIRONMENTS, *(f"{e}@own" for e in ENVIRONMENTS)])
def test_nothing_the_deployer_changes_at_run_time_is_a_cloudformation_resource(stages: dict[str, Stage],
                                                                                 topology: str) -> None:
    stage = stages[topology]
    env = topology.split("@", maxsplit=1)[0]
    assert [r.logical_id for r in stage.resources() if r.type in RUNTIME_TYPES] == []
    patterns = _runtime_patterns(stage, env)
    assert {action for action, _ in patterns} >= {"sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint",
                                                   "ssm:PutParameter", "application-autoscaling:RegisterScalableTarget",
                                                   "cloudwatch:PutMetricAlarm"}
    owned = [(r.logical_id, arn) for r in stage.resources() if (arn := _arn_of(stage, r))]
    assert len(owned) > 20  # the stand-in ARNs resolve (a broken resolver would match nothing)
    overlaps = [(action, pattern, logical) for action, pattern in patterns for logical, arn in owned
                if fnmatch.fnmatchcase(arn, pattern)]
    assert overlaps == []


def test_the_published_names_would_be_caught() -> None:
    """The check can fail: a deployer grant on /mlops/<env>/* would cover the published names CloudFormation
    writes (SSM parameters of the stacks), and they would drift on every deployment."""
    assert fnmatch.fnmatchcase("arn:aws:ssm:eu-west-1:111122223333:parameter/mlops/dev/endpoint-name",
                               "arn:aws:ssm:eu-west-1:111122223333:parameter/mlops/dev/*")
    assert not fnmatch.fnmatchcase("arn:aws:ssm:eu-west-1:111122223333:parameter/mlops/dev/endpoint-name",
                                   "arn:aws:ssm:eu-west-1:111122223333:parameter/mlops/dev/deployer/*")


def test_the_deploying_guide_lists_what_drift_detection_leaves_out() -> None:
    text = (REPO / "docs" / "DEPLOYING.md").read_text(encoding="utf-8")
    section = text.split("### What drift detection leaves out", 1)[1].split("\n## ", 1)[0]
    missing = [item for item in DOCUMENTED if item not in section]
    assert missing == []
