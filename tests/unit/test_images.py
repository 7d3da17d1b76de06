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

from pipelines.images import XGBOOST_ACCOUNTS, XGBOOST_FRAMEWORK_VERSION, UnsupportedRegionError, xgboost_image_uri

ORACLE = "sagemaker-core==2.27.0"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "oracle"


@pytest.fixture(scope="module")
def image_config() -> dict[str, object]:
    wheels = list(CACHE.glob("sagemaker_core-2.27.0-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-qq", "-d", str(CACHE), ORACLE],
                       check=True)
        wheels = list(CACHE.glob("sagemaker_core-2.27.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        return json.loads(wheel.read("sagemaker/core/image_uri_config/xgboost.json"))


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
