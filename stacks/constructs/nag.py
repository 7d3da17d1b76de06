"""cdk-nag acknowledgements: resource-scoped, each with a specific reason.

cdk-nag 3 reads acknowledgements from construct metadata under
``Validations.ACKNOWLEDGED_RULES_METADATA_KEY`` ({rule id: reason}) on the resource or any ancestor.
``Validations.of(scope).acknowledge`` treats the text before ``::`` as a rule namespace, which breaks the
granular IAM4/IAM5 ids (``AwsSolutions-IAM5[Resource::arn:...*]``), so every acknowledgement is written as
that metadata directly: one mechanism for plain and granular ids.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from constructs import IConstruct

MIN_REASON_LENGTH = 10


class AcknowledgementError(ValueError):
    """An acknowledgement without a usable reason."""


def acknowledge(scope: IConstruct, rule_id: str, reason: str, *, findings: Iterable[str] = ()) -> None:
    """Acknowledge ``rule_id`` on ``scope`` (and its children).

    ``findings`` turns the rule into granular ids, e.g. ``acknowledge(role, "AwsSolutions-IAM5", "...",
    findings=["Resource::arn:aws:s3:::bucket/*"])`` acknowledges ``AwsSolutions-IAM5[Resource::...]`` only.
    """
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise AcknowledgementError(
            f"acknowledgement of {rule_id} on {scope.node.path} needs a specific reason of at least "
            f"{MIN_REASON_LENGTH} characters, got {reason!r}")
    granular = list(findings)
    ids = [f"{rule_id}[{finding}]" for finding in granular] if granular else [rule_id]
    # cdk-nag's validate_scope matches the bare id; CDK's synth-time policy validation matches
    # '<plugin>::<id>' (the plugin is the pack name, the id's prefix): write both spellings.
    plugin = rule_id.split("-", 1)[0]
    entries = {**dict.fromkeys(ids, reason), **{f"{plugin}::{i}": reason for i in ids}}
    scope.node.add_metadata(cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY, entries)


def acknowledged_rules(scope: IConstruct) -> list[tuple[str, str, str]]:
    """(construct path, rule id, reason) of every acknowledgement below ``scope``."""
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    rows: list[tuple[str, str, str]] = []
    for node in scope.node.find_all():
        for entry in node.node.metadata:
            if entry.type == key and isinstance(entry.data, dict):
                rows.extend((node.node.path, rule, reason) for rule, reason in entry.data.items()
                            if "::" not in rule.split("[", 1)[0])
    return rows


# ---------------------------------------------------------------- declared IAM wildcard allowances
# AwsSolutions-IAM5 reports one finding per wildcard action or resource, with the resource flattened from
# the *resolved* policy: a cross-stack bucket ARN only takes its final form (an ImportValue) once the app is
# prepared. So a role declares which wildcards it may hold, as patterns with a reason
# (`allow_wildcards`), and `resolve_wildcard_allowances` turns them into exact acknowledgements when
# the tree is final: just before cdk-nag runs (WildcardAllowancePlugin) or in a test.
_ALLOWANCES_KEY = "mlops:iam-wildcard-allowances"


def allow_wildcards(scope: IConstruct, allowances: dict[str, str]) -> None:
    """Allow IAM5 findings below ``scope`` that match a pattern (see ``allowance_matches``)."""
    for pattern, reason in allowances.items():
        if len(reason.strip()) < MIN_REASON_LENGTH:
            raise AcknowledgementError(f"wildcard allowance {pattern!r} on {scope.node.path} needs a reason")
    scope.node.add_metadata(_ALLOWANCES_KEY, dict(allowances))


def flatten_reference(node: Any) -> str:
    """cdk-nag's flattenCfnReference: how a resolved CloudFormation value appears in a finding id."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_reference(i) for i in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    return str(json.dumps(node, separators=(",", ":")))


def wildcard_findings(policy_document: dict[str, Any]) -> list[str]:
    findings: dict[str, None] = {}
    for statement in policy_document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        for action in actions if isinstance(actions, list) else [actions]:
            if "*" in action:
                findings[f"Action::{action}"] = None
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            flat = flatten_reference(resource)
            if "*" in flat:
                findings[f"Resource::{flat}"] = None
    return list(findings)


def allowance_matches(finding: str, pattern: str) -> bool:
    """A pattern whose only '*' is its last character is literal (``Resource::*`` allows the finding
    ``Resource::*`` and nothing else; ``Action::s3:GetObject*`` only that action wildcard); any other '*' is a
    glob over the flattened ARN (``Resource::*ArtifactBucket*/pipelines/*``)."""
    if "*" not in pattern[:-1]:
        return finding == pattern
    return fnmatch.fnmatchcase(finding, pattern)


def _allowances_for(node: IConstruct) -> dict[str, str]:
    allowances: dict[str, str] = {}
    current: IConstruct | None = node
    while current is not None:
        for entry in current.node.metadata:
            if entry.type == _ALLOWANCES_KEY and isinstance(entry.data, dict):
                allowances.update(entry.data)
        current = current.node.scope
    return allowances


def resolve_wildcard_allowances(root: IConstruct) -> None:
    """Acknowledge every IAM5 finding below ``root`` that a declared allowance covers (idempotent)."""
    for node in root.node.find_all():
        if not isinstance(node, iam.CfnPolicy | iam.CfnManagedPolicy):
            continue
        allowances = _allowances_for(node)
        if not allowances:
            continue
        document = cdk.Stack.of(node).resolve(node.policy_document)
        done = {row[1] for row in acknowledged_rules(node) if row[0] == node.node.path}
        for finding in wildcard_findings(document):
            rule = f"AwsSolutions-IAM5[{finding}]"
            if rule in done:
                continue
            reason = next((r for p, r in allowances.items() if allowance_matches(finding, p)), None)
            if reason is not None:
                acknowledge(node, "AwsSolutions-IAM5", reason, findings=[finding])


@jsii.implements(cdk.IPolicyValidationPlugin)
class WildcardAllowancePlugin:
    """Runs first among the validation plugins: resolves the allowances on the prepared tree, then reports
    nothing itself (cdk-nag, next, reports whatever is not allowed)."""

    def __init__(self, app: IConstruct) -> None:
        self._app = app

    @property
    def name(self) -> str:
        return "IamWildcardAllowances"

    @property
    def version(self) -> str | None:
        return None

    @property
    def rule_ids(self) -> list[str] | None:
        return None

    def validate(self, context: Any) -> cdk.PolicyValidationPluginReport:
        resolve_wildcard_allowances(self._app)
        return cdk.PolicyValidationPluginReport(success=True, violations=[])
