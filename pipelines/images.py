"""SageMaker framework container image URIs: XGBoost (the platform's program and ``xgboost-script`` teams) and
scikit-learn (``sklearn-script`` teams); for one model, training, processing and inference use one image.

The account per region is copied from sagemaker-core 2.27.0's image_uri_config/xgboost.json, the maintained
source of truth (the isolated us-iso* regions, which use other domains, are left out);
tests/unit/test_images.py compares this table with that file so a stale copy fails. Keeping the table here
means synth needs neither the SageMaker SDK nor the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlsettings.image_reference import ecr_registry
from mlsettings.training_code import SKLEARN_SCRIPT

XGBOOST_FRAMEWORK_VERSION = "3.2-0"
# The local xgboost (xgboost-cpu in requirements.txt) has the same version, so artifacts load alike.
XGBOOST_PACKAGE_VERSION = "3.2.0"
REPOSITORY = "sagemaker-xgboost"

XGBOOST_ACCOUNTS: dict[str, str] = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "ca-west-1": "190319476487",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}


class UnsupportedRegionError(ValueError):
    """The framework container is not published in this region."""


def _image_uri(label: str, accounts: Mapping[str, str], repository: str, tag: str, region: str) -> str:
    try:
        account = accounts[region]
    except KeyError:
        raise UnsupportedRegionError(
            f"the SageMaker {label} container is not published in {region!r}; regions: {sorted(accounts)}") from None
    return f"{ecr_registry(account, region)}/{repository}:{tag}"


def xgboost_image_uri(region: str) -> str:
    return XGBOOST_IMAGE.uri(region)


# ---------------------------------------------------------------------------------------- scikit-learn
SKLEARN_FRAMEWORK_VERSION = "1.9-0"
SKLEARN_PACKAGE_VERSION = "1.9.0"
"""aws/deep-learning-containers docker/sklearn/1.9-0/pyproject.toml: scikit-learn==1.9.0 (Python 3.12)."""
SKLEARN_REPOSITORY = "sagemaker-scikit-learn"
SKLEARN_ACCOUNTS: dict[str, str] = dict(XGBOOST_ACCOUNTS)
"""sagemaker-core 2.27.0's image_uri_config/sklearn.json, version 1.9-0: the same account per region as XGBoost
3.2-0's (tests/unit/test_images.py compares both with the file)."""
SKLEARN_PROCESSOR, SKLEARN_PY_VERSION = "cpu", "py3"
"""The version's only "processors" and "py_versions" in that file: the image runs on CPU instances only."""


def sklearn_image_uri(region: str) -> str:
    return SKLEARN_IMAGE.uri(region)


@dataclass(frozen=True)
class FrameworkImage:
    """The framework image a model's jobs and endpoints run, and how its model package names it."""

    label: str
    """How errors name it ("scikit-learn 1.9-0")."""
    repository: str
    accounts: Mapping[str, str]
    tag: str
    framework: str
    """CreateModelPackage's ModelPackageContainerDefinition.Framework: a free string in botocore; the value the
    SageMaker SDK registers for the framework (its Model.register upper-cases the framework's name: "xgboost",
    "sklearn" in sagemaker 2.257.6's xgboost/ and sklearn/ model.py)."""
    framework_version: str

    def uri(self, region: str) -> str:
        return _image_uri(self.label, self.accounts, self.repository, self.tag, region)


XGBOOST_IMAGE = FrameworkImage(label=f"XGBoost {XGBOOST_FRAMEWORK_VERSION}", repository=REPOSITORY,
                               accounts=XGBOOST_ACCOUNTS, tag=XGBOOST_FRAMEWORK_VERSION, framework="XGBOOST",
                               framework_version="3.2")
SKLEARN_IMAGE = FrameworkImage(label=f"scikit-learn {SKLEARN_FRAMEWORK_VERSION}", repository=SKLEARN_REPOSITORY,
                               accounts=SKLEARN_ACCOUNTS,
                               # the tag as the SDK formats it (image_uris._format_tag): version, processor, Python
                               tag=f"{SKLEARN_FRAMEWORK_VERSION}-{SKLEARN_PROCESSOR}-{SKLEARN_PY_VERSION}",
                               framework="SKLEARN", framework_version="1.9")


def image_for(training_kind: str) -> FrameworkImage:
    """The framework image of a model whose training code is of ``training_kind`` (mlsettings.training_code)."""
    return SKLEARN_IMAGE if training_kind == SKLEARN_SCRIPT else XGBOOST_IMAGE


FRAMEWORK_IMAGES = (XGBOOST_IMAGE, SKLEARN_IMAGE)
"""Every framework image a model version may name: an endpoint may roll back to a version trained before its model
changed its kind of training code."""
