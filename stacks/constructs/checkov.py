"""checkov skips live in the resource's CloudFormation metadata, each with the reason as its comment."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

MIN_COMMENT_LENGTH = 10


def skip_checkov(scope: IConstruct, check_id: str, comment: str) -> None:
    """Skip ``check_id`` on the CloudFormation resource behind ``scope`` (an L1 or an L2's default child)."""
    if len(comment.strip()) < MIN_COMMENT_LENGTH:
        raise ValueError(f"checkov skip {check_id} on {scope.node.path} needs a specific comment")
    resource = scope if isinstance(scope, cdk.CfnResource) else scope.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to carry a checkov skip")
    metadata = resource.get_metadata("checkov") or {"skip": []}
    metadata["skip"] = [*metadata["skip"], {"id": check_id, "comment": comment}]
    resource.add_metadata("checkov", metadata)
