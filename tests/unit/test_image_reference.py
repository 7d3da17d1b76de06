"""The own-image reference rules: the repository pattern is botocore's (the maintained source), typed once."""

import botocore.session

from mlsettings.image_reference import REPOSITORY_NAME_PATTERN, image_reference_problem, image_uri

DIGEST = "sha256:" + "ab" * 32


def test_repository_pattern_is_botocores() -> None:
    shape = botocore.session.get_session().get_service_model("ecr").shape_for("RepositoryName")
    assert shape.metadata["pattern"] == REPOSITORY_NAME_PATTERN


def test_a_models_repository_at_a_digest_is_an_accepted_uri() -> None:
    uri = image_uri(account="123456789012", region="eu-west-1", repository="mlops/wine-image", digest=DIGEST)
    assert uri == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops/wine-image@{DIGEST}"
    assert image_reference_problem(uri) is None
    assert image_uri(account="123456789012", region="cn-north-1", repository="a", digest=DIGEST).startswith(
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/")


def test_a_tag_and_a_bad_repository_are_refused_in_one_line() -> None:
    tagged = image_reference_problem("123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops/wine:latest")
    assert tagged is not None and "pinned by tag 'latest'" in tagged and "\n" not in tagged
    upper = image_reference_problem(f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/Team/Wine@{DIGEST}")
    assert upper is not None and "not an ECR repository name" in upper
