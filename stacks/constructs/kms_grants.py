"""KMS permissions SageMaker needs from whoever creates its encrypted resources."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms


def grant_kms_for_aws_resources(key: kms.IKey, grantee: iam.IGrantable) -> None:
    """SageMaker creates KMS grants as the caller for the resources it encrypts (volumes, outputs); the
    condition limits the grant to grants for AWS resources."""
    grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
        sid="KmsGrantsForSageMakerResources", actions=["kms:CreateGrant", "kms:DescribeKey"],
        resources=[key.key_arn], conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
