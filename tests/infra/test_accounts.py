"""The default topology in three accounts — dev (the registry), staging and prod — synthesized from cdk.json
with only the account ids changed: every security gate stays green, and every cross-account permission holds
on both halves (the caller's IAM policy and the resource's policy), for exactly the roles that need it.

The requests are built from the table the stacks grant from (stacks.constructs.cross_account.REGISTRY_ACCESS:
what each consumer role reads of the registry); the policies are the synthesized ones, evaluated by
tests/infra/cloud_model.py. A role the table does not name is refused by the registry's policies.

Consumer roles are a model's (``mlops-<env>-<model>-<purpose>``): the requests are MODEL's, reading MODEL's
prefixes and versions; another model's roles are refused MODEL's versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks

from mlops.security_gates import run_cfn_lint, run_checkov, stack_summaries
from mlsettings.config import load_environments
from mlsettings.drift_partials import ENGINE_PARTIALS, ENGINE_PROCESSING
from mlsettings.naming import (
    artifact_bucket_name,
    consumer_role_name,
    data_key_alias,
    image_repository_name,
    model_package_group_name,
    model_prefixes,
)
from mlsettings.training_code import IMAGE
from stacks.constructs.cross_account import IMAGE_PULL_ACTIONS, REGISTRY_ACCESS
from stacks.constructs.nag import resolve_wildcard_allowances
from testkit.serving_world import MODEL
from tests.infra.cloud_model import Stage, evaluate
from tests.infra.conftest import ACCOUNTS, SynthesizedApp, three_account_context

REGION = "eu-west-1"


def _context() -> dict[str, Any]:
    return three_account_context()


def _view(env: str, model: str = MODEL) -> Any:
    """``model``'s view of ``env`` in the three-account topology."""
    return load_environments(_context())[env].for_model(model)


def _other_model() -> str:
    """A model of cdk.json other than MODEL (isolation between models needs one)."""
    return next(name for name in load_environments(_context())["dev"].model_names if name != MODEL)


def _group(model: str = MODEL) -> str:
    return model_package_group_name(_view("dev", model))


def _package(version: int, model: str = MODEL) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNTS['dev']}:model-package/{_group(model)}/{version}"


@pytest.fixture(scope="module")
def three(three_accounts: SynthesizedApp) -> tuple[cdk.App, dict[str, Stage], Path]:
    stages = {env: Stage.load(three_accounts.outdir, env, REGION, account=account) for env, account in ACCOUNTS.items()}
    return three_accounts.app, stages, three_accounts.outdir


@pytest.mark.parametrize("pack_class", [AwsSolutionsChecks, ServerlessChecks], ids=["AwsSolutions", "Serverless"])
def test_no_unacknowledged_nag_findings(three: Any, pack_class: type[NagPack]) -> None:
    app, _, _ = three
    resolve_wildcard_allowances(app)
    report = pack_class().validate_scope(app)
    assert [f"{v.rule_name} {[r.construct_path for r in v.violating_resources]}" for v in report.violations] == []


def test_cfn_lint_and_checkov_are_clean(three: Any) -> None:
    _, _, outdir = three
    assert run_cfn_lint([s.template for s in stack_summaries(outdir)]).findings == []
    assert run_checkov(outdir).findings == []


# ------------------------------------------------------------------------------------------ both halves
def _resource_policy(stage: Stage, resource_type: str, property_name: str, document_key: str | None = None,
                     **match: Any) -> list[dict[str, Any]]:
    documents = []
    for resource in stage.resources(resource_type):
        if all(stage.resolve(resource.stack, resource.properties.get(k)) == v for k, v in match.items()):
            document = resource.properties[property_name]
            documents.append(stage.resolve(resource.stack, document[document_key] if document_key else document))
    assert documents, f"no {resource_type} with {match} in {stage.name}"
    return documents


def _bucket_policy(registry: Stage) -> list[dict[str, Any]]:
    bucket = artifact_bucket_name(load_environments(_context())["dev"], ACCOUNTS["dev"])
    return _resource_policy(registry, "AWS::S3::BucketPolicy", "PolicyDocument", Bucket=bucket)


def _key_policy(registry: Stage) -> list[dict[str, Any]]:
    return [registry.resolve(k.stack, k.properties["KeyPolicy"]) for k in registry.resources("AWS::KMS::Key")]


def _group_policy(registry: Stage, model: str = MODEL) -> list[dict[str, Any]]:
    return _resource_policy(registry, "AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupPolicy",
                            ModelPackageGroupName=_group(model))


def _requests(purpose: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, resource, context) of every read ``purpose`` makes of the registry, for MODEL."""
    dev = _view("dev")
    bucket = artifact_bucket_name(dev, ACCOUNTS["dev"])
    access = REGISTRY_ACCESS[purpose]
    prefixes = model_prefixes(dev)
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("s3:GetObject", f"arn:aws:s3:::{bucket}/{getattr(prefixes, name)}execution-1/golden.json", {})
        for name in access.prefixes]
    requests.append(("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNTS['dev']}:key/0a1b2c3d-dev",
                     {"kms:ResourceAliases": [data_key_alias(dev)], "kms:ViaService": f"s3.{REGION}.amazonaws.com"}))
    requests += [(action, _package(7), {}) for action in access.package_actions]
    return requests


def _resource_documents(registry: Stage, action: str) -> list[dict[str, Any]]:
    if action.startswith("s3:"):
        return _bucket_policy(registry)
    if action.startswith("kms:"):
        return _key_policy(registry)
    return _group_policy(registry)


@pytest.mark.parametrize("consumer", ["staging", "prod"])
@pytest.mark.parametrize("purpose", sorted(REGISTRY_ACCESS))
def test_each_consumer_role_may_read_what_it_needs_on_both_halves(three: Any, consumer: str, purpose: str) -> None:
    _, stages, _ = three
    config = _view(consumer)
    if purpose == "drift-job" and config.monitoring.drift.engine != ENGINE_PROCESSING:
        pytest.skip(f"{consumer} runs no Processing drift engine (monitoring.drift.engine): no job role")
    if purpose == "drift-partials" and config.monitoring.drift.engine != ENGINE_PARTIALS:
        pytest.skip(f"{consumer} runs no partials drift engine (monitoring.drift.engine): no partials function")
    role_arn = f"arn:aws:iam::{ACCOUNTS[consumer]}:role/{consumer_role_name(config, purpose)}"
    _, identity = stages[consumer].role_documents(role_arn)
    caller = {"AWS": role_arn}
    for action, resource, context in _requests(purpose):
        context = {**context, "aws:PrincipalArn": role_arn, "aws:PrincipalAccount": ACCOUNTS[consumer]}
        assert evaluate(identity, caller=None, action=action, resource=resource, context=context) == "allow", \
            f"{role_arn}'s own policy does not allow {action} on {resource}"
        # The resource policy names the account root as principal and the role in aws:PrincipalArn.
        resource_caller = {"AWS": f"arn:aws:iam::{ACCOUNTS[consumer]}:root"}
        verdict = evaluate(_resource_documents(stages["dev"], action), caller=resource_caller, action=action,
                           resource=resource, context=context)
        assert verdict == "allow", f"the registry's policy does not let {role_arn} {action} {resource}"
        assert caller  # the role itself is what aws:PrincipalArn names


@pytest.mark.parametrize("consumer", ["staging", "prod"])
def test_other_roles_of_a_consumer_account_are_refused_by_the_registry(three: Any, consumer: str) -> None:
    _, stages, _ = three
    # a role of the environment and one of MODEL's that the table does not name
    for intruder in (f"arn:aws:iam::{ACCOUNTS[consumer]}:role/mlops-{consumer}-batch-scoring",
                     f"arn:aws:iam::{ACCOUNTS[consumer]}:role/mlops-{consumer}-{MODEL}-batch-scoring"):
        for purpose in REGISTRY_ACCESS:
            for action, resource, context in _requests(purpose):
                verdict = evaluate(_resource_documents(stages["dev"], action),
                                   caller={"AWS": f"arn:aws:iam::{ACCOUNTS[consumer]}:root"}, action=action,
                                   resource=resource, context={**context, "aws:PrincipalArn": intruder})
                assert verdict != "allow", f"{intruder} may {action} {resource}"


@pytest.mark.parametrize("consumer", ["staging", "prod"])
def test_create_model_from_a_registry_package_is_granted_to_exactly_the_deployer(three: Any, consumer: str) -> None:
    """AWS's recipe ("Deploy a Model Version from a Different Account") grants sagemaker:CreateModel on
    model-package/<group>/* in the group's policy: the consumer's deployer holds it on both halves, the consumer's
    other registry readers (health check, drift monitor) on neither; another model's deployer holds it on
    neither (each model's deployer creates models of its own group's versions only)."""
    _, stages, _ = three
    package = _package(7)
    root = {"AWS": f"arn:aws:iam::{ACCOUNTS[consumer]}:root"}
    for model, purpose, allowed in ((MODEL, "deployer", True), (MODEL, "health-check", False),
                                    (MODEL, "drift-monitor", False), (_other_model(), "deployer", False)):
        role_arn = f"arn:aws:iam::{ACCOUNTS[consumer]}:role/{consumer_role_name(_view(consumer, model), purpose)}"
        context = {"aws:PrincipalArn": role_arn, "aws:PrincipalAccount": ACCOUNTS[consumer]}
        _, identity = stages[consumer].role_documents(role_arn)
        own = evaluate(identity, caller=None, action="sagemaker:CreateModel", resource=package, context=context)
        registry = evaluate(_group_policy(stages["dev"]), caller=root, action="sagemaker:CreateModel",
                            resource=package, context=context)
        assert (own == "allow", registry == "allow") == (allowed, allowed), (model, purpose, own, registry)


def test_a_role_reads_no_prefix_it_does_not_need(three: Any) -> None:
    """The model containers read models/, never golden payloads or baselines (pipelines/): the registry's bucket
    policy lets MODEL's model role read its models, not its pipeline outputs."""
    _, stages, _ = three
    role_arn = f"arn:aws:iam::{ACCOUNTS['prod']}:role/{consumer_role_name(_view('prod'), 'model')}"
    bucket = artifact_bucket_name(_view("dev"), ACCOUNTS["dev"])
    prefixes = model_prefixes(_view("dev"))
    root = {"AWS": f"arn:aws:iam::{ACCOUNTS['prod']}:root"}
    context = {"aws:PrincipalArn": role_arn, "aws:PrincipalAccount": ACCOUNTS["prod"]}
    needed = f"arn:aws:s3:::{bucket}/{prefixes.models}x/model.tar.gz"
    assert evaluate(_bucket_policy(stages["dev"]), caller=root, action="s3:GetObject", resource=needed,
                    context=context) == "allow"  # the same role and bucket policy: what it needs, it gets
    not_needed = f"arn:aws:s3:::{bucket}/{prefixes.pipeline_outputs}x/golden.json"
    assert evaluate(_bucket_policy(stages["dev"]), caller=root, action="s3:GetObject", resource=not_needed,
                    context=context) != "allow"


# ------------------------------------------------------------------------------------------ the event hops
def _bus_policies(stage: Stage) -> list[dict[str, Any]]:
    return [{"Statement": [stage.resolve(p.stack, p.properties["Statement"])]}
            for p in stage.resources("AWS::Events::EventBusPolicy")]


def _forwarding_rules(stage: Stage) -> list[tuple[dict[str, Any], str, str, str]]:
    """(pattern, target bus ARN, target role ARN, the rule's own ARN) of every rule that targets another account's
    bus."""
    rules = []
    for rule in stage.resources("AWS::Events::Rule"):
        for target in rule.properties.get("Targets", []):
            arn = stage.resolve(rule.stack, target["Arn"])
            if ":event-bus/" in str(arn):
                own = f"arn:aws:events:{stage.region}:{stage.account}:rule/{rule.properties['Name']}"
                rules.append((rule.properties["EventPattern"], arn, stage.resolve(rule.stack, target["RoleArn"]),
                              own))
    return rules


def _admitted(policies: list[dict[str, Any]], *, account: str, rule_arn: str, bus: str) -> str:
    """A rule-forwarded delivery as the receiving bus policy sees it: the sender account, the sending rule
    (aws:SourceArn, EventBridge User Guide "Example policy: Send events from specific rules")."""
    return evaluate(policies, caller={"AWS": f"arn:aws:iam::{account}:root"}, action="events:PutEvents",
                    resource=bus, context={"aws:SourceArn": rule_arn, "aws:SourceAccount": account})


@pytest.mark.parametrize(("consumer", "stage_name"), [("staging", "Staging"), ("prod", "Production")])
def test_promotions_reach_each_consumer_account_and_only_from_the_registry(three: Any, consumer: str,
                                                                          stage_name: str) -> None:
    _, stages, _ = three
    bus = f"arn:aws:events:{REGION}:{ACCOUNTS[consumer]}:event-bus/default"
    [(pattern, role_arn, rule_arn)] = [(p, r, own) for p, target, r, own in _forwarding_rules(stages["dev"])
                                       if target == bus]
    assert pattern["source"] == ["mlops.promotion"] and pattern["detail"]["target_stage"] == [stage_name]
    _, identity = stages["dev"].role_documents(role_arn)  # sender half: the rule's role may put on that bus
    assert evaluate(identity, caller=None, action="events:PutEvents", resource=bus, context={}) == "allow"
    policies = _bus_policies(stages[consumer])  # receiver half: the consumer's bus admits that rule only
    other_rule = rule_arn.rsplit("/", 1)[0] + "/another-rule"
    for account, sender, expected in ((ACCOUNTS["dev"], rule_arn, "allow"), (ACCOUNTS["dev"], other_rule, "implicit"),
                                      ("444444444444", rule_arn.replace(ACCOUNTS["dev"], "444444444444"),
                                       "implicit")):
        assert _admitted(policies, account=account, rule_arn=sender, bus=bus) == expected, (account, sender)


@pytest.mark.parametrize("consumer", ["staging", "prod"])
def test_results_reach_the_registry_from_each_consumer_account(three: Any, consumer: str) -> None:
    _, stages, _ = three
    registry_bus = f"arn:aws:events:{REGION}:{ACCOUNTS['dev']}:event-bus/default"
    [(pattern, role_arn, rule_arn)] = [(p, r, own) for p, target, r, own in _forwarding_rules(stages[consumer])
                                       if target == registry_bus]
    assert pattern["source"] == ["mlops.deployment"]  # the rule forwards results only: no forged registry events
    _, identity = stages[consumer].role_documents(role_arn)
    assert evaluate(identity, caller=None, action="events:PutEvents", resource=registry_bus, context={}) == "allow"
    policies = _bus_policies(stages["dev"])
    assert _admitted(policies, account=ACCOUNTS[consumer], rule_arn=rule_arn, bus=registry_bus) == "allow"
    for other in ("staging", "prod"):  # another consumer's rule name in this account is not admitted
        if other != consumer:
            forged = rule_arn.replace(f"mlops-{consumer}-", f"mlops-{other}-")
            assert _admitted(policies, account=ACCOUNTS[consumer], rule_arn=forged, bus=registry_bus) == "implicit"


def test_the_gate_trusts_each_stage_only_from_its_environment_and_account(three: Any) -> None:
    import json

    _, stages, _ = three
    [gate] = [f for f in stages["dev"].resources("AWS::Lambda::Function")
              if f.properties["Handler"] == "lambdas.promotion_gate.handler.handler"]
    variables = stages["dev"].resolve(gate.stack, gate.properties["Environment"]["Variables"])
    assert json.loads(variables["STAGE_SERVERS"]) == {
        "Production": {"account": ACCOUNTS["prod"], "environment": "prod"},
        "Staging": {"account": ACCOUNTS["staging"], "environment": "staging"}}


def test_consumers_build_no_registry_of_their_own(three: Any) -> None:
    _, stages, _ = three
    for consumer in ("staging", "prod"):
        kinds = {r.type for r in stages[consumer].resources()}
        assert not kinds & {"AWS::SageMaker::ModelPackageGroup", "AWS::SageMaker::Pipeline"}
        assert not [r for r in stages[consumer].resources("AWS::DynamoDB::Table") if "Ledger" in r.logical_id]
        # no model's training part (TrainingPart, construct id "Training", in the registry's model stacks only)
        assert not [r for r in stages[consumer].resources() if r.logical_id.startswith("Training")]
    assert [r for r in stages["dev"].resources() if r.logical_id.startswith("Training")]


def test_one_account_needs_no_resource_policy_statements(synthesized: SynthesizedApp) -> None:
    """The single-account quickstart (cdk.json as shipped): the IAM half alone, no cross-account statements."""
    dev = Stage.load(synthesized.outdir, "dev", REGION)
    groups = {g.properties["ModelPackageGroupName"]: g for g in dev.resources("AWS::SageMaker::ModelPackageGroup")}
    assert _group() in groups  # one group per model, MODEL's among them
    assert [name for name, group in groups.items() if "ModelPackageGroupPolicy" in group.properties] == []
    assert _bus_policies(dev) == [] and _forwarding_rules(dev) == []
    statements = [s for d in _key_policy(dev) for s in d["Statement"]]
    assert not [s for s in statements if s.get("Sid") == "ConsumersDecryptRegistryArtifacts"]


# ------------------------------------------------------------------------------------- an own image's repository
def _image_model() -> str:
    """The model of cdk.json whose training code is its team's own image (the sample synthesizes every kind)."""
    return next(name for name in load_environments(_context())["dev"].model_names
                if _view("dev", name).training.code.kind == IMAGE)


@pytest.mark.parametrize("consumer", ["staging", "prod"])
def test_an_own_image_is_pullable_by_exactly_the_serving_model_roles_on_both_halves(three: Any, consumer: str) -> None:
    """AWS's cross-account recipe for a model group's inference image (Developer Guide, "Deploy a Model Version from a
    Different Account"): the repository's policy admits the consumer, the consumer's role allows itself the pull. The
    consumer's model role (the endpoint's and batch transform's containers) may pull on both halves; its deployer,
    another model's model role and a role of the account the table does not name are refused by the repository."""
    _, stages, _ = three
    model = _image_model()
    repository = f"arn:aws:ecr:{REGION}:{ACCOUNTS['dev']}:repository/{image_repository_name(_view('dev', model))}"
    (document,) = _resource_policy(stages["dev"], "AWS::ECR::Repository", "RepositoryPolicyText",
                                   RepositoryName=image_repository_name(_view("dev", model)))
    root = {"AWS": f"arn:aws:iam::{ACCOUNTS[consumer]}:root"}
    pullers = {consumer_role_name(_view(consumer, model), "model"): True,
               consumer_role_name(_view(consumer, model), "deployer"): False,
               consumer_role_name(_view(consumer, MODEL), "model"): False,
               f"mlops-{consumer}-batch-scoring": False}
    for role, allowed in pullers.items():
        role_arn = f"arn:aws:iam::{ACCOUNTS[consumer]}:role/{role}"
        context = {"aws:PrincipalArn": role_arn, "aws:PrincipalAccount": ACCOUNTS[consumer]}
        for action in IMAGE_PULL_ACTIONS:
            verdict = evaluate([document], caller=root, action=action, resource=repository, context=context)
            assert (verdict == "allow") is allowed, (role, action, verdict)
            if allowed:
                _, identity = stages[consumer].role_documents(role_arn)
                assert evaluate(identity, caller=None, action=action, resource=repository, context=context) == "allow"
                assert evaluate(identity, caller=None, action="ecr:GetAuthorizationToken", resource="*",
                                context=context) == "allow"
