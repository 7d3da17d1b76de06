"""The one rule for instance types with local storage (mlsettings.instance_types), against the SageMaker Python SDK's
own function and botocore's service model."""

from __future__ import annotations

import botocore.session
import pytest

from mlsettings.instance_types import (
    LATER_LOCAL_STORAGE_PREFIXES,
    has_local_storage,
    instance_family,
    same_storage_class,
    volume_kms_key,
)
from tests.oracles import library_functions

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
PURPOSES = ("TrainingInstanceType", "ProcessingInstanceType", "ProductionVariantInstanceType", "TransformInstanceType")
EVERY_TYPE = sorted({t for shape in PURPOSES for t in SAGEMAKER.shape_for(shape).enum})


@pytest.fixture(scope="module")
def sdk_supports_kms() -> object:
    return library_functions("sagemaker", "sagemaker/utils.py", ("volume_size_supported", "instance_supports_kms"),
                             {"is_pipeline_variable": lambda value: False})["instance_supports_kms"]


def test_our_rule_is_the_sdks_plus_the_families_it_predates(sdk_supports_kms: object) -> None:
    """For every instance type botocore knows: where the SDK drops the volume key, so do we; we drop it besides only
    on the families added after the SDK's list (LATER_LOCAL_STORAGE_PREFIXES)."""
    assert len(EVERY_TYPE) > 300
    differ = [t for t in EVERY_TYPE if has_local_storage(t) != (not sdk_supports_kms(t))]  # type: ignore[operator]
    assert differ, "the SDK caught up: drop LATER_LOCAL_STORAGE_PREFIXES"
    assert all(has_local_storage(t) and instance_family(t).startswith(LATER_LOCAL_STORAGE_PREFIXES) for t in differ), \
        differ


@pytest.mark.parametrize(("instance_type", "local"), [
    ("ml.m5.large", False), ("ml.c5.xlarge", False), ("ml.m5d.large", True), ("ml.g4dn.xlarge", True),
    ("ml.g5.2xlarge", True), ("ml.c6id.large", True), ("ml.m6gd.large", True), ("ml.inf2.xlarge", False),
    ("ml.p6-b200.48xlarge", True), ("ml.trn2.48xlarge", True), ("ml.p3.2xlarge", False)])
def test_local_instance_storage(instance_type: str, local: bool) -> None:
    assert has_local_storage(instance_type) is local
    assert bool(volume_kms_key(instance_type, "arn:aws:kms:eu-west-1:1:key/k")) is not local


def test_a_malformed_type_is_refused() -> None:
    with pytest.raises(ValueError, match="is not an instance type"):
        has_local_storage("g5")


def test_same_storage_class_keeps_one_class() -> None:
    training = SAGEMAKER.shape_for("TrainingInstanceType").enum
    local = same_storage_class("ml.g5.xlarge", training)
    ebs = same_storage_class("ml.m5.xlarge", training)
    assert "ml.g5.xlarge" in local and "ml.p4d.24xlarge" in local and "ml.m5.xlarge" not in local
    assert "ml.m5.xlarge" in ebs and "ml.p3.2xlarge" in ebs and "ml.g4dn.xlarge" not in ebs
    assert sorted(local + ebs) == sorted(training)
