"""An own image's reference as the product accepts it (training.code.kind ``image``, issue 26): an ECR image pinned
by digest, in the model's own repository. The configuration checks it at synth; `mlops conformance --image` checks it
before anything runs."""

from __future__ import annotations

import re

ECR_IMAGE = re.compile(r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?"
                       r"/(?P<repository>[^@:]+)(?P<reference>[@:].+)")
DIGEST_PATTERN = r"sha256:[0-9a-f]{64}"
"""An image digest as the product accepts it (training.code.image_digest; after the '@' of an image URI)."""
DIGEST = re.compile(f"@{DIGEST_PATTERN}")
IMAGE_URI_MAX = 255
"""botocore's sagemaker ContainerImage and AlgorithmImage: at most 255 characters."""
REPOSITORY_NAME_PATTERN = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
"""botocore's ecr RepositoryName pattern (tests/unit/test_image_reference.py holds it equal to botocore's model;
mlsettings imports no botocore)."""


def image_reference_problem(uri: str) -> str | None:
    """Why ``uri`` is not an ECR image pinned by digest (one line), or None.

    A tag can be pushed again: the version a model package names would change under it, and a registry's
    approval would no longer say what runs. SageMaker accepts both forms (ContainerDefinition.Image: "path can
    be either in the registry/repository[:tag] or the registry/repository[@digest] form"); the product takes
    only the digest. The repository name follows botocore's ecr RepositoryName pattern."""
    found = ECR_IMAGE.fullmatch(uri)
    if found is None:
        return (f"{uri!r} is not an ECR image URI; allowed: <account>.dkr.ecr.<region>.amazonaws.com/<repository>"
                "@sha256:<64 hex digits>")
    if len(uri) > IMAGE_URI_MAX:
        return f"{uri!r} has {len(uri)} characters; allowed: at most {IMAGE_URI_MAX} (SageMaker's image URI)"
    if not re.fullmatch(REPOSITORY_NAME_PATTERN, found["repository"]):
        return (f"{uri!r} names repository {found['repository']!r}, which is not an ECR repository name "
                f"(botocore ecr RepositoryName: {REPOSITORY_NAME_PATTERN})")
    if not DIGEST.fullmatch(found["reference"]):
        return (f"{uri!r} is pinned by tag {found['reference'][1:]!r}; allowed: a digest (@sha256:<64 hex digits>: "
                "docker inspect --format '{{index .RepoDigests 0}}' <image>), since a tag can be moved")
    return None


def ecr_registry(account: str, region: str) -> str:
    """An account's ECR registry host in a region (``.amazonaws.com.cn`` in the China regions)."""
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}"


def image_uri(*, account: str, region: str, repository: str, digest: str) -> str:
    """``<account>.dkr.ecr.<region>.<domain>/<repository>@<digest>``: an image of a model's own repository (the
    stacks use CDK's ``Repository.repository_uri_for_digest``, which writes the same)."""
    return f"{ecr_registry(account, region)}/{repository}@{digest}"
