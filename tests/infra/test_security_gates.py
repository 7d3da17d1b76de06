"""Security is a test: cdk-nag, cfn-lint and checkov on every environment's synthesized templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks

from mlops.security_gates import run_cfn_lint, run_checkov, stack_summaries
from mlsettings.training_code import IMAGE
from stacks.constructs.nag import (
    MIN_REASON_LENGTH,
    AcknowledgementError,
    acknowledge,
    acknowledged_rules,
    resolve_wildcard_allowances,
)
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp

# The contract: every acknowledgement is deliberate. Adding one means changing a number here in the same commit,
# with the reason visible in review. By rule, per shared stack of each environment and per model stack — every
# model's stack holds the same set (they differ in settings, not in resources), so the pins do not grow with the
# models in cdk.json.
_MODEL_CONSUMER = {
    # AWSLambdaBasicExecutionRole (only the function's own log writes) on the roles of the inference function,
    # the deployer tasks (one shared role), the health check, batch scoring and the drift monitor
    "AwsSolutions-IAM4": 5,
    # each wildcard declared with allow_wildcards (or in the Lambda factory) with a reason; see the stacks
    "AwsSolutions-IAM5": 73,
    # synchronously invoked functions: the inference API and the four deployer tasks (Step Functions)
    "Serverless-LambdaDLQ": 5,
    # dead-letter queues themselves (failure queues of the async functions and the schedules' DLQs)
    "AwsSolutions-SQS3": 5,
    "Serverless-SQSRedrivePolicy": 5,
    # the runtime (Python 3.13, whose interpreter compiles the bundles' byte code; 3.14 is not installable here),
    # on each function: inference, four deployer tasks, health check, batch scoring, drift monitor
    "AwsSolutions-L1": 8,
    "Serverless-LambdaLatestVersion": 8,
}
_STORAGE = {"AwsSolutions-S1": 1}  # the access-log bucket does not log into itself
# The event router (an Express state machine logging at ERROR level: SF1) and its role's per-model name
# wildcards, one per routed kind (IAM5); its rules' dead-letter queue (SQS3, SQSRedrivePolicy).
_REGISTRY_CONSUMER = {"AwsSolutions-IAM5": 5, "AwsSolutions-SF1": 1, "AwsSolutions-SQS3": 1,
                      "Serverless-SQSRedrivePolicy": 1}
EXPECTED_ACKNOWLEDGEMENTS: dict[str, dict[str, dict[str, int]]] = {
    # the registry environment: + the promotion gate's role and function (IAM4, L1, LambdaLatestVersion), the
    # gate's and package-event rules' wildcards and queues in Registry; per model + the Training part's
    # wildcards and the retraining schedule's dead-letter queue, minus the accepted-promotion DLQ
    "dev": {"Storage": _STORAGE,
            "Registry": {"AwsSolutions-IAM4": 1, "AwsSolutions-IAM5": 13, "AwsSolutions-SF1": 1,
                         "AwsSolutions-SQS3": 4, "Serverless-SQSRedrivePolicy": 4, "AwsSolutions-L1": 1,
                         "Serverless-LambdaLatestVersion": 1},
            "model": {**_MODEL_CONSUMER, "AwsSolutions-IAM5": 85, "AwsSolutions-SQS3": 6,
                      "Serverless-SQSRedrivePolicy": 6}},
    "staging": {"Storage": _STORAGE, "Registry": _REGISTRY_CONSUMER, "model": _MODEL_CONSUMER},
    # the partials drift engine (cdk.json): + the per-object function's role (IAM4); its written-out wildcards
    # (capture objects by key, partial results, variant parameters, the registry's baselines and versions), the
    # failure queue's key grant and the monitor's read of partial results (IAM5); its failure queue (SQS3,
    # SQSRedrivePolicy); the router's shard-summary routing (its queue)
    "prod": {"Storage": _STORAGE,
             "Registry": {**_REGISTRY_CONSUMER, "AwsSolutions-SQS3": 2, "Serverless-SQSRedrivePolicy": 2},
             "model": {**_MODEL_CONSUMER, "AwsSolutions-IAM4": 6, "AwsSolutions-IAM5": 86, "AwsSolutions-SQS3": 6,
                       "Serverless-SQSRedrivePolicy": 6, "AwsSolutions-L1": 9,
                       "Serverless-LambdaLatestVersion": 9}},
}
OWN_IMAGE_TRAINING = {"AwsSolutions-IAM5": 2}
"""What a model whose team brings its own image (training.code.kind image) adds in the registry environment: the
pipeline role's Model and Transform step wildcards (model/pipelines-*, transform-job/pipelines-*: Pipelines names
what its steps create)."""


@pytest.mark.parametrize("pack_class", [AwsSolutionsChecks, ServerlessChecks], ids=["AwsSolutions", "Serverless"])
def test_no_unacknowledged_nag_findings(synthesized: SynthesizedApp, pack_class: type[NagPack]) -> None:
    resolve_wildcard_allowances(synthesized.app)  # what WildcardAllowancePlugin does inside `cdk synth`
    pack = pack_class()
    report = pack.validate_scope(synthesized.app)
    findings = [f"{v.rule_name} {[r.construct_path for r in v.violating_resources]}" for v in report.violations]
    assert findings == []
    assert report.success


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_acknowledgements_are_pinned_and_reasoned(synthesized: SynthesizedApp, env: str) -> None:
    resolve_wildcard_allowances(synthesized.app)
    stage = synthesized.stages[env]
    counts: dict[str, dict[str, int]] = {}
    for path, rule, reason in acknowledged_rules(stage):
        assert len(reason) >= MIN_REASON_LENGTH, (path, rule)
        assert path.startswith(f"{env}/") and path.count("/") >= 2, f"{rule} is not resource-scoped: {path}"
        stack = counts.setdefault(path.split("/")[1], {})
        base = rule.split("[", 1)[0]
        stack[base] = stack.get(base, 0) + 1
    expected = EXPECTED_ACKNOWLEDGEMENTS[env]
    assert {stack: found for stack, found in counts.items() if not stack.startswith("Model-")} == \
        {stack: pinned for stack, pinned in expected.items() if stack != "model"}
    models = {stack.removeprefix("Model-"): found for stack, found in counts.items() if stack.startswith("Model-")}
    assert set(models) == set(stage.models)
    pinned = {}
    for model in stage.models:
        pinned[model] = dict(expected["model"])
        if env == "dev" and stage.config.for_model(model).training.code.kind == IMAGE:
            for rule, extra in OWN_IMAGE_TRAINING.items():
                pinned[model][rule] = pinned[model].get(rule, 0) + extra
    assert models == pinned


def test_acknowledgement_without_a_real_reason_is_refused(synthesized: SynthesizedApp) -> None:
    with pytest.raises(AcknowledgementError, match="needs a specific reason"):
        acknowledge(synthesized.stages["dev"].storage.data_bucket, "AwsSolutions-S1", "because")


def test_cfn_lint_reports_no_errors_or_warnings(synthesized: SynthesizedApp) -> None:
    templates = [s.template for s in stack_summaries(synthesized.outdir)]
    assert len(templates) == sum(len(stage.node.children) for stage in synthesized.stages.values())
    result = run_cfn_lint(templates)
    assert result.findings == []


def test_checkov_reports_no_failed_checks(synthesized: SynthesizedApp) -> None:
    result = run_checkov(synthesized.outdir)
    assert result.findings == []
    assert "passed" in result.detail


def test_wildcard_allowance_patterns_are_literal_unless_they_glob_inside() -> None:
    from stacks.constructs.nag import allowance_matches

    assert allowance_matches("Resource::*", "Resource::*")
    assert not allowance_matches("Resource::arn:aws:s3:::anything/*", "Resource::*")
    assert allowance_matches("Action::s3:GetObject*", "Action::s3:GetObject*")
    assert not allowance_matches("Action::s3:GetObjectVersion*", "Action::s3:GetObject*")
    assert allowance_matches("Resource::<ArtifactBucket1.Arn>/pipelines/*", "Resource::*ArtifactBucket*/pipelines/*")
    assert not allowance_matches("Resource::<DataBucket1.Arn>/pipelines/*", "Resource::*ArtifactBucket*/pipelines/*")


def test_only_the_last_synths_templates_are_gated(synthesized: SynthesizedApp, tmp_path: Path) -> None:
    """An environment an earlier synth wrote (no longer configured, or not selected by `-c env=`) leaves its
    folder in cdk.out: the gates read the cloud assembly's manifests, so they never judge it."""
    import shutil

    outdir = tmp_path / "cdk.out"
    shutil.copytree(synthesized.outdir, outdir, ignore=shutil.ignore_patterns("asset.*"))
    shutil.copytree(outdir / "assembly-dev", outdir / "assembly-olddev")
    stages = {s.stage for s in stack_summaries(outdir)}
    assert stages == {"dev", "staging", "prod"}
    assert len(stack_summaries(outdir)) == len(stack_summaries(synthesized.outdir))
