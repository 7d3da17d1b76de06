"""KMS permissions SageMaker needs from whoever creates its encrypted resources."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms


def grant_kms_for_aws_resources(key: kms.IKey, grantee: iam.IGrantable) -> None:
    """SageMaker creates KMS grants as the caller for the resources it encrypts (volumes, outputs); the
    condition limits the grant to grants for AWS resources. kms:GrantIsForAWSResource is defined for
    CreateGrant, ListGrants and RevokeGrant only (Service Authorization Reference, AWS KMS), so DescribeKey,
    which SageMaker calls to check the key, gets its own statement: under that condition it was never
    allowed."""
    grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
        sid="KmsGrantsForSageMakerResources", actions=["kms:CreateGrant"],
        resources=[key.key_arn], conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
    grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
        sid="DescribeTheKeyForSageMaker", actions=["kms:DescribeKey"], resources=[key.key_arn]))
