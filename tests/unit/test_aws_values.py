"""The settings package's snapshot of AWS values equals what the pinned botocore says."""

from __future__ import annotations

import json

from mlsettings import aws_values
from tests.aws_values_snapshot import SNAPSHOT, snapshot


def test_the_snapshot_is_botocores() -> None:
    assert json.loads(SNAPSHOT.read_text()) == snapshot(), "run `python -m tests.aws_values_snapshot`"


def test_the_reader_answers_from_it() -> None:
    assert "ml.g5.xlarge" in aws_values.sagemaker_instance_types("TrainingInstanceType")
    assert "ml.t2.medium" not in aws_values.sagemaker_instance_types("TransformInstanceType")
    assert "eu-west-1" in aws_values.sagemaker_regions() and "mars-east-1" not in aws_values.sagemaker_regions()
