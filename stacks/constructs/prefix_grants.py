"""Reading a model's prefixes of a shared bucket, and nothing of another model's: CDK's ``grant_read`` lists the
whole bucket (``s3:List*`` on the bucket, unconditioned), so a model's role could list every other model's keys.
This grant lists only under the given prefixes (the ``s3:prefix`` condition key of ListBucket, Service
Authorization Reference for Amazon S3) and reads only their objects."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3


def grant_prefix_read(bucket: s3.IBucket, grantee: iam.IGrantable, prefixes: Sequence[str]) -> None:
    """``prefixes``: key patterns ending in ``*`` (e.g. ``endpoint/mlops-dev-wine/*``)."""
    iam.Grant.add_to_principal(grantee=grantee, actions=["s3:GetObject"],
                               resource_arns=[bucket.arn_for_objects(prefix) for prefix in prefixes])
    grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
        actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": list(prefixes)}}))
    if bucket.encryption_key is not None:
        bucket.encryption_key.grant_decrypt(grantee)


def grant_prefix_read_write(bucket: s3.IBucket, grantee: iam.IGrantable, prefixes: Sequence[str]) -> None:
    """Read, list, write and replace objects under ``prefixes`` only."""
    grant_prefix_read(bucket, grantee, prefixes)
    iam.Grant.add_to_principal(grantee=grantee, actions=["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                               resource_arns=[bucket.arn_for_objects(prefix) for prefix in prefixes])
    if bucket.encryption_key is not None:
        bucket.encryption_key.grant_encrypt_decrypt(grantee)
