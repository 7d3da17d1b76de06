"""The XGBoost image table against its maintained source of truth, sagemaker-core's image_uri_config.

The SageMaker SDK is not needed to synth, so the oracle is fetched here: the sagemaker-core wheel (1.4 MB,
no dependencies installed) is downloaded once into .cache/ and its xgboost.json is read."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mlsettings.instance_types import is_gpu_instance
from mlsettings.training_code import PLATFORM, SKLEARN_SCRIPT, XGBOOST_SCRIPT
from pipelines.images import (
    SKLEARN_ACCOUNTS,
    SKLEARN_FRAMEWORK_VERSION,
    SKLEARN_PROCESSOR,
    SKLEARN_PY_VERSION,
    SKLEARN_REPOSITORY,
    XGBOOST_ACCOUNTS,
    XGBOOST_FRAMEWORK_VERSION,
    UnsupportedRegionError,
    image_for,
    sklearn_image_uri,
    xgboost_image_uri,
)

ORACLE = "sagemaker-core==2.27.0"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "oracle"


def _oracle(name: str) -> dict[str, object]:
    wheels = list(CACHE.glob("sagemaker_core-2.27.0-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-qq", "-d", str(CACHE), ORACLE],
                       check=True)
        wheels = list(CACHE.glob("sagemaker_core-2.27.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        found: dict[str, object] = json.loads(wheel.read(f"sagemaker/core/image_uri_config/{name}.json"))
        return found


@pytest.fixture(scope="module")
def image_config() -> dict[str, object]:
    return _oracle("xgboost")


@pytest.fixture(scope="module")
def sklearn_config() -> dict[str, object]:
    return _oracle("sklearn")


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["training", "inference"])
def test_accounts_match_sagemaker_core(image_config: dict[str, object], scope: str) -> None:
    versions = image_config[scope]["versions"]  # type: ignore[index]
    entry = versions[XGBOOST_FRAMEWORK_VERSION]
    assert entry["repository"] == "sagemaker-xgboost"
    oracle = {region: account for region, account in entry["registries"].items() if not region.startswith("us-iso")}
    assert oracle == XGBOOST_ACCOUNTS


def test_uri_shape_and_unknown_region() -> None:
    assert xgboost_image_uri("eu-west-1") == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0"
    assert xgboost_image_uri("cn-north-1").endswith(".amazonaws.com.cn/sagemaker-xgboost:3.2-0")
    with pytest.raises(UnsupportedRegionError, match="not published in 'xx-east-9'"):
        xgboost_image_uri("xx-east-9")


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["training", "inference"])
def test_the_sklearn_image_matches_sagemaker_core(sklearn_config: dict[str, object], scope: str) -> None:
    entry = sklearn_config[scope]["versions"][SKLEARN_FRAMEWORK_VERSION]  # type: ignore[index]
    assert entry["repository"] == SKLEARN_REPOSITORY
    assert entry["processors"] == [SKLEARN_PROCESSOR] and entry["py_versions"] == [SKLEARN_PY_VERSION]
    oracle = {region: account for region, account in entry["registries"].items() if not region.startswith("us-iso")}
    assert oracle == SKLEARN_ACCOUNTS


def test_the_sklearn_uri_has_the_sdks_tag_and_each_kind_its_image() -> None:
    assert sklearn_image_uri("eu-west-1") == ("141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:"
                                              "1.9-0-cpu-py3")
    assert image_for(SKLEARN_SCRIPT).framework == "SKLEARN"
    assert image_for(PLATFORM) == image_for(XGBOOST_SCRIPT) and image_for(PLATFORM).framework == "XGBOOST"
    with pytest.raises(UnsupportedRegionError, match=r"scikit-learn 1\.9-0 container is not published in 'xx-east-9'"):
        sklearn_image_uri("xx-east-9")


@pytest.mark.parametrize(("instance_type", "gpu"), [("ml.g5.xlarge", True), ("ml.p4d.24xlarge", True),
                                                    ("ml.m5.xlarge", False), ("ml.c5.2xlarge", False),
                                                    ("ml.inf2.xlarge", False), ("ml.trn1.2xlarge", False)])
def test_gpu_instances_follow_the_sdks_processor_rule(instance_type: str, gpu: bool) -> None:
    assert is_gpu_instance(instance_type) is gpu
