"""cdk-nag acknowledgements: resource-scoped, each with a specific reason.

cdk-nag 3 reads acknowledgements from construct metadata under
``Validations.ACKNOWLEDGED_RULES_METADATA_KEY`` ({rule id: reason}) on the resource or any ancestor.
``Validations.of(scope).acknowledge`` treats the text before ``::`` as a rule namespace, which breaks the
granular IAM4/IAM5 ids (``AwsSolutions-IAM5[Resource::arn:...*]``), so every acknowledgement is written as
that metadata directly: one mechanism for plain and granular ids.
"""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
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
