"""Security is a test: cdk-nag, cfn-lint and checkov on every environment's synthesized templates."""

from __future__ import annotations

import pytest
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks

from mlops.security_gates import run_cfn_lint, run_checkov, stack_summaries
from stacks.constructs.nag import MIN_REASON_LENGTH, AcknowledgementError, acknowledge, acknowledged_rules
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp

# The contract: every acknowledgement is deliberate. Adding one means changing this number in the same
# commit, with the reason visible in review. Per environment, by rule.
EXPECTED_ACKNOWLEDGEMENTS = {
    "AwsSolutions-S1": 1,  # the access-log bucket does not log into itself
}


@pytest.mark.parametrize("pack_class", [AwsSolutionsChecks, ServerlessChecks], ids=["AwsSolutions", "Serverless"])
def test_no_unacknowledged_nag_findings(synthesized: SynthesizedApp, pack_class: type[NagPack]) -> None:
    pack = pack_class()
    report = pack.validate_scope(synthesized.app)
    findings = [f"{v.rule_name} {[r.construct_path for r in v.violating_resources]}" for v in report.violations]
    assert findings == []
    assert report.success


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_acknowledgements_are_pinned_and_reasoned(synthesized: SynthesizedApp, env: str) -> None:
    rows = acknowledged_rules(synthesized.stages[env])
    counts: dict[str, int] = {}
    for path, rule, reason in rows:
        assert len(reason) >= MIN_REASON_LENGTH, (path, rule)
        assert path.startswith(f"{env}/") and path.count("/") >= 2, f"{rule} is not resource-scoped: {path}"
        base = rule.split("[", 1)[0]
        counts[base] = counts.get(base, 0) + 1
    assert counts == EXPECTED_ACKNOWLEDGEMENTS


def test_acknowledgement_without_a_real_reason_is_refused(synthesized: SynthesizedApp) -> None:
    with pytest.raises(AcknowledgementError, match="needs a specific reason"):
        acknowledge(synthesized.stages["dev"].storage.data_bucket, "AwsSolutions-S1", "because")


def test_cfn_lint_reports_no_errors_or_warnings(synthesized: SynthesizedApp) -> None:
    templates = [s.template for s in stack_summaries(synthesized.outdir)]
    assert len(templates) == 3 * len(synthesized.stages["dev"].node.children)
    result = run_cfn_lint(templates)
    assert result.findings == []


def test_checkov_reports_no_failed_checks(synthesized: SynthesizedApp) -> None:
    result = run_checkov(synthesized.outdir)
    assert result.findings == []
    assert "passed" in result.detail
