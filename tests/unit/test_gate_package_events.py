"""Parsing "SageMaker Model Package State Change" events: the documented sample, both time formats, and
the reasons malformed or foreign events are refused."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from mlplatform.registry.package_events import RejectedEvent, parse_event_time, parse_state_change

GROUP = "versionedmp-p-idy6c3e1fiqj"

# The sample from the SageMaker developer guide ("SageMaker model package state change"), trimmed of
# fields the gate ignores, plus the ModelLifeCycle block stage-aware registries add.
SAMPLE: dict[str, Any] = {
    "version": "0",
    "id": "844e2571-85d4-695f-b930-0153b71dcb42",
    "detail-type": "SageMaker Model Package State Change",
    "source": "aws.sagemaker",
    "account": "123456789012",
    "time": "2021-02-24T17:00:14Z",
    "region": "us-east-2",
    "resources": ["arn:aws:sagemaker:us-east-2:123456789012:model-package/versionedmp-p-idy6c3e1fiqj/2"],
    "detail": {
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": 2,
        "ModelPackageArn": "arn:aws:sagemaker:us-east-2:123456789012:model-package/versionedmp-p-idy6c3e1fiqj/2",
        "CreationTime": "2021-02-24T17:00:14Z",
        "InferenceSpecification": {"Containers": [{"Image": "xgboost", "ModelDataUrl": "s3://b/model.tar.gz"}]},
        "ModelPackageStatus": "Completed",
        "CertifyForMarketplace": False,
        "ModelApprovalStatus": "Rejected",
        "MetadataProperties": {"GeneratedBy": "arn:aws:sagemaker:us-east-2:123456789012:pipeline/p/execution/x"},
        "LastModifiedTime": "2021-02-24T17:00:14Z",
        "ModelLifeCycle": {"Stage": "Staging", "StageStatus": "Approved", "StageDescription": "ok"},
    },
}
CREATED = datetime(2021, 2, 24, 17, 0, 14, tzinfo=UTC)


def sample(**detail_changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(SAMPLE)
    event["detail"].update(detail_changes)
    for key, value in list(event["detail"].items()):
        if value is None:
            del event["detail"][key]
    return event


def test_documented_sample_parses_with_iso_times() -> None:
    parsed = parse_state_change(sample(), expected_group=GROUP)
    assert parsed.detail.ModelPackageVersion == 2
    assert parsed.detail.CreationTime == CREATED
    assert parsed.detail.ModelApprovalStatus == "Rejected"
    assert parsed.detail.ModelLifeCycle is not None
    assert parsed.detail.ModelLifeCycle.Stage == "Staging"


@pytest.mark.parametrize("millis", [1614186014000, 1614186014000.0, "1614186014000"])
def test_sample_parses_with_epoch_millisecond_times(millis: object) -> None:
    parsed = parse_state_change(sample(CreationTime=millis, LastModifiedTime=millis), expected_group=GROUP)
    assert parsed.detail.CreationTime == CREATED
    assert parsed.detail.LastModifiedTime == CREATED


def test_both_time_formats_give_the_same_dedup_key() -> None:
    iso = parse_state_change(sample(), expected_group=GROUP)
    millis = parse_state_change(sample(CreationTime=1614186014000, LastModifiedTime=1614186014000),
                                expected_group=GROUP)
    assert iso.dedup_key() == millis.dedup_key()


def test_a_second_delivery_of_the_same_change_has_the_same_key_despite_a_new_event_id() -> None:
    again = sample()
    again["id"] = "another-id"
    assert parse_state_change(again, expected_group=GROUP).dedup_key() == parse_state_change(
        sample(), expected_group=GROUP
    ).dedup_key()


def test_a_different_change_has_a_different_key() -> None:
    first = parse_state_change(sample(), expected_group=GROUP)
    later = parse_state_change(sample(LastModifiedTime="2021-02-24T17:05:00Z"), expected_group=GROUP)
    assert first.dedup_key() != later.dedup_key()


def test_lifecycle_and_approval_are_optional() -> None:
    parsed = parse_state_change(sample(ModelLifeCycle=None, ModelApprovalStatus=None), expected_group=GROUP)
    assert parsed.detail.ModelLifeCycle is None


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("not json", "not a JSON object"),
        ({**SAMPLE, "source": "aws.ec2"}, "foreign event"),
        ({**SAMPLE, "detail-type": "SageMaker Endpoint State Change"}, "foreign event"),
        (sample(ModelPackageGroupName="someone-elses-group"), "foreign model package group"),
        (sample(ModelPackageVersion=None), "ModelPackageVersion"),
        (sample(ModelPackageArn="not-an-arn"), "ModelPackageArn"),
        (sample(CreationTime="yesterday"), "CreationTime"),
        (sample(CreationTime=True), "CreationTime"),
        (sample(ModelApprovalStatus="Maybe"), "ModelApprovalStatus"),
        ({key: value for key, value in SAMPLE.items() if key != "detail"}, "detail"),
    ],
)
def test_malformed_and_foreign_events_are_rejected_with_a_reason(event: Any, reason: str) -> None:
    with pytest.raises(RejectedEvent, match=reason):
        parse_state_change(event, expected_group=GROUP)


def test_naive_iso_time_is_read_as_utc() -> None:
    assert parse_event_time("2021-02-24T17:00:14") == CREATED
