"""Where an environment's deployed models come from: its registry environment's artifact bucket and key.

In the registry environment these are its own Storage resources, granted with CDK's grants. Every other
environment names them as cdk.json determines them (``stacks.constructs.cross_account``): the bucket by its
deterministic name, the key by its alias, the versions by the group's ARN in the registry's account. No
deploy-time lookup reaches into the registry's account, and nothing depends on the registry being deployed
first, except that its resources must exist when the consumer's code first runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from stacks.constructs.cross_account import (
    REGISTRY_ACCESS,
    RegistryLocation,
    access_prefixes,
    grant_registry_access,
    image_pull_statements,
)
from stacks.constructs.prefix_grants import grant_prefix_read


@dataclass(frozen=True)
class ModelSource:
    """One model's registry: ``location.registry`` is the model's view of the registry environment."""

    location: RegistryLocation
    own: tuple[s3.IBucket, kms.IKey] | None = None
    """The registry environment's own bucket and key (None in a consumer environment)."""

    @property
    def bucket_name(self) -> str:
        return self.own[0].bucket_name if self.own else self.location.bucket_name

    @property
    def package_arns(self) -> str:
        return self.location.package_arns

    def grant(self, grantee: iam.IGrantable, purpose: str) -> None:
        """What ``purpose`` (a consumer role of ``REGISTRY_ACCESS``) reads of the registry."""
        if self.own is None:
            grant_registry_access(grantee, purpose, self.location)
            return
        bucket, key = self.own
        access = REGISTRY_ACCESS[purpose]
        grant_prefix_read(bucket, grantee, list(access_prefixes(self.location.registry, purpose)))
        key.grant_decrypt(grantee)
        if access.package_actions:
            grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
                sid="RegistryVersions", actions=list(access.package_actions), resources=[self.package_arns]))
        for statement in image_pull_statements(purpose, self.location):
            grantee.grant_principal.add_to_principal_policy(statement)
