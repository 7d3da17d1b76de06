"""A central registry in dev, deployed from by staging (Staging) and prod (Production) in the same account:
the consumers' deployers, health checks and drift monitors use dev's ledger, key and artifact bucket
(deploy-time SSM parameters), each deploys only its stage, and every gate stays green."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks

from mlops.security_gates import run_cfn_lint, run_checkov, stack_summaries
from stacks.app_builder import build_app
from stacks.config import project_context
from stacks.constructs.nag import resolve_wildcard_allowances
from stacks.stage import MlopsStage

SERVED = {"dev": [], "staging": ["Staging"], "prod": ["Production"]}


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[cdk.App, dict[str, MlopsStage], Path]]:
    context = copy.deepcopy(project_context())
    for env, stages in SERVED.items():
        context["environments"][env]["registry"] = {"location": "central", "registry_environment": "dev"}
        context["environments"][env].setdefault("serving", {})["served_stages"] = stages
    outdir = tmp_path_factory.mktemp("central.out")
    app = cdk.App(outdir=str(outdir), context={**context, "aws:cdk:bundling-stacks": []})
    stages = build_app(app, context=context, with_nag=False)
    app.synth()
    yield app, {s.config.name: s for s in stages}, outdir


def _parameter_named(template: Template, name: str) -> str:
    """The logical id of the deploy-time SSM parameter that resolves ``name``."""
    parameters = template.to_json()["Parameters"]
    [logical_id] = [k for k, v in parameters.items() if v.get("Default") == name]
    assert parameters[logical_id]["Type"] == "AWS::SSM::Parameter::Value<String>"
    return logical_id


def _deployer_variables(template: Template) -> dict[str, Any]:
    functions = template.find_resources("AWS::Lambda::Function")
    [start] = [f["Properties"] for f in functions.values()
               if f["Properties"]["Handler"] == "lambdas.deployer.handler.start_deployment"]
    variables: dict[str, Any] = start["Environment"]["Variables"]
    return variables


@pytest.mark.parametrize(("env", "stages"), [("staging", "Staging"), ("prod", "Production")])
def test_consumers_deploy_their_stage_with_the_central_ledger(central: Any, env: str, stages: str) -> None:
    _, stages_by_env, _ = central
    template = Template.from_stack(stages_by_env[env].serving)
    variables = _deployer_variables(template)
    assert variables["SERVED_STAGES"] == stages
    assert variables["MODEL_PACKAGE_GROUP"] == "mlops-dev-models"
    assert variables["LEDGER_TABLE"] == {"Ref": _parameter_named(template, "/mlops/dev/ledger-table")}
    template.has_resource_properties("AWS::Events::Rule", {"EventPattern": {
        "source": ["mlops.promotion"], "detail": {"model_package_group": ["mlops-dev-models"],
                                                  "target_stage": [stages]}}})
    # the central key (ledger, registered artifacts) and bucket are granted to the deployer
    key = _parameter_named(template, "/mlops/dev/kms-key-arn")
    bucket = _parameter_named(template, "/mlops/dev/artifact-bucket")
    policies = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert json.dumps({"Ref": key}) in policies
    assert f'{{"Ref": "{bucket}"}}, "/models/*"' in policies
    # the drift monitor reads the baselines registered with the versions, in the central bucket
    monitoring = Template.from_stack(stages_by_env[env].monitoring)
    monitoring_bucket = _parameter_named(monitoring, "/mlops/dev/artifact-bucket")
    assert f'{{"Ref": "{monitoring_bucket}"}}, "/pipelines/*"' in json.dumps(
        monitoring.find_resources("AWS::IAM::Policy"))
    # the CLI of the consumer finds the central ledger
    Template.from_stack(stages_by_env[env].registry).has_resource_properties("AWS::SSM::Parameter", {
        "Name": f"/mlops/{env}/ledger-table", "Value": Match.object_like({"Ref": Match.any_value()})})


def test_the_registry_environment_deploys_nothing_and_keeps_its_own_ledger(central: Any) -> None:
    _, stages_by_env, _ = central
    dev = stages_by_env["dev"]
    template = Template.from_stack(dev.serving)
    assert _deployer_variables(template)["SERVED_STAGES"] == ""
    assert template.find_resources("AWS::Events::Rule", {"Properties": {"EventPattern": Match.any_value()}}) == {}
    # its own ledger, key and bucket: the only deploy-time lookup is its own alert topic (published names
    # replace that export, stacks/constructs/published_names.py)
    assert [v["Default"] for v in template.to_json().get("Parameters", {}).values()
            if str(v.get("Default", "")).startswith("/mlops/")] == ["/mlops/dev/ticket-topic-arn"]
    Template.from_stack(dev.registry).resource_count_is("AWS::DynamoDB::Table", 2)
    for env in ("staging", "prod"):
        Template.from_stack(stages_by_env[env].registry).resource_count_is("AWS::DynamoDB::Table", 0)


@pytest.mark.parametrize("pack_class", [AwsSolutionsChecks, ServerlessChecks], ids=["AwsSolutions", "Serverless"])
def test_no_unacknowledged_nag_findings(central: Any, pack_class: type[NagPack]) -> None:
    app, _, _ = central
    resolve_wildcard_allowances(app)
    report = pack_class().validate_scope(app)
    assert [f"{v.rule_name} {[r.construct_path for r in v.violating_resources]}" for v in report.violations] == []


def test_cfn_lint_and_checkov_are_clean(central: Any) -> None:
    _, _, outdir = central
    assert run_cfn_lint([s.template for s in stack_summaries(outdir)]).findings == []
    assert run_checkov(outdir).findings == []
