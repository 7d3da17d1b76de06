"""Values the AWS APIs accept that the configuration checks, from a snapshot of botocore's service models
(``aws_values.json``, written by ``python -m tests.aws_values_snapshot``; tests/unit/test_aws_values.py keeps it equal
to the pinned botocore). A snapshot keeps the settings package free of the AWS SDK and its start-up cost, and
independent of the operator's AWS profile and config files."""

from __future__ import annotations

import functools
import json
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("aws_values.json")


@functools.cache
def _snapshot() -> dict[str, object]:
    document: dict[str, object] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    return document


def sagemaker_instance_types(shape: str) -> frozenset[str]:
    """The instance types botocore's SageMaker model allows for one purpose (``TrainingInstanceType``,
    ``ProcessingInstanceType``, ``ProductionVariantInstanceType``, ``TransformInstanceType``)."""
    shapes = _snapshot()["sagemaker_instance_types"]
    assert isinstance(shapes, dict)
    return frozenset(shapes[shape])


def sagemaker_regions() -> frozenset[str]:
    """Every region of every partition where SageMaker has an endpoint."""
    regions = _snapshot()["sagemaker_regions"]
    assert isinstance(regions, list)
    return frozenset(regions)
