"""Every SageMaker and Application Auto Scaling request the product's code made in `make test`'s first stage —
the deployer, the drift job, batch scoring, the gate, the CLI and the local training run, through moto — checked
against the APIs' whole rule set: botocore's shapes in full (tests/api_rules/shapes.py) and the rules AWS states in
prose (tests/api_rules/prose.py). moto accepts what AWS would refuse (it checks neither maximums, enums nor
patterns), so this is where a request too long or malformed for the real service shows.

Runs in the second stage (``MLOPS_CALL_RECORDS``, like tests/infra/test_who_may_call.py); the requests are
recorded by tests/call_recorder.py (``requests-*.jsonl``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.api_rules.prose import prose_problems
from tests.api_rules.shapes import validate
from tests.call_recorder import CHECKED_OPERATIONS

# The builders every run of the suite must reach, or this check proves nothing about them.
EXPECTED = {"CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint", "CreateProcessingJob",
            "CreateTransformJob", "CreateModelPackage", "UpdateModelPackage", "RegisterScalableTarget",
            "PutScalingPolicy", "UpdateEndpointWeightsAndCapacities"}


@pytest.fixture(scope="module")
def requests() -> list[dict[str, Any]]:
    directory = os.environ.get("MLOPS_CALL_RECORDS")
    if not directory:
        pytest.fail("MLOPS_CALL_RECORDS is not set: run `make test` (its first stage records the requests)")
    unique: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(directory).glob("requests-*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            unique.setdefault(json.dumps([record["operation"], record["params"]], sort_keys=True), record)
    return list(unique.values())


def test_the_suite_reaches_every_request_builder(requests: list[dict[str, Any]]) -> None:
    seen = Counter(r["operation"] for r in requests)
    print("distinct requests checked:", dict(sorted(seen.items())))
    assert set(seen) >= EXPECTED, sorted(EXPECTED - set(seen))
    assert set(seen) <= CHECKED_OPERATIONS


def test_every_recorded_request_is_one_the_api_accepts(requests: list[dict[str, Any]]) -> None:
    problems = []
    for record in requests:
        found = validate(record["service"], record["operation"], record["params"])
        found += prose_problems(record["operation"], record["params"])
        problems += [f"{record['operation']} from {record['caller']} ({record['test']}): {p}" for p in found]
    assert problems == [], "\n".join(sorted(set(problems))[:60])
