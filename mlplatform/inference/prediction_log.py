"""Sends one data-capture JSONL record per answered request to Kinesis Data Firehose.

Firehose delivers into the capture bucket under the API's own prefix, in the same line format as the
endpoint's data capture (``mlcore.drift.capture``), so the drift Lambda reads fallback answers exactly like
endpoint traffic. Firehose concatenates records as they are, hence the trailing newline on each.

Delivery is at-least-once (a PutRecord retried after a lost acknowledgement can duplicate a line); every
record carries the request id as ``eventMetadata.eventId`` so readers can de-duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError


class PredictionLogError(Exception):
    """The record could not be delivered; the caller still answers, counts it and logs the record."""


class PredictionLog(Protocol):
    def write(self, record: Mapping[str, Any]) -> None: ...


class FirehoseClient(Protocol):
    def put_record(self, **kwargs: Any) -> dict[str, Any]: ...


def encode_record(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


class FirehosePredictionLog:
    def __init__(self, client: FirehoseClient, *, stream_name: str) -> None:
        self._client = client
        self._stream_name = stream_name

    def write(self, record: Mapping[str, Any]) -> None:
        try:
            data = encode_record(record)
        except (TypeError, ValueError) as err:
            raise PredictionLogError(f"capture record is not serialisable: {err}") from err
        try:
            self._client.put_record(DeliveryStreamName=self._stream_name, Record={"Data": data})
        except (ClientError, BotoCoreError) as err:
            raise PredictionLogError(f"Firehose {self._stream_name}: {err}") from err
