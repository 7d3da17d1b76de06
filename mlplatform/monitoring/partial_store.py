"""Where partial results live in S3 and how they are read and written (``mlcore.drift.partials`` defines them).

A captured object ``s3://<capture bucket>/<key>`` has its partial result at
``s3://<report bucket>/<partials prefix>/<key>.partial.json``: the key keeps the capture's hour partitions, so
the window run lists partial results by the same hour prefixes it lists the objects by, and one object can only
ever have one partial result there (a retried or duplicated event overwrites it with the same content).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlcore.drift.partials import PARTIAL_SUFFIX
from mlcore.drift.window import Window, hour_prefixes

READ_THREADS = 16
"""Partial results fetched at once: each GET is a small object, so latency, not bandwidth, bounds the reads."""


def partial_key(partials_prefix: str, object_key: str) -> str:
    return f"{partials_prefix.strip('/')}/{object_key}{PARTIAL_SUFFIX}"


def object_name_of(partials_prefix: str, capture_bucket: str, key: str) -> str | None:
    """The captured object a partial-result key belongs to (``s3://bucket/key``), or None for another key."""
    lead = f"{partials_prefix.strip('/')}/"
    if not key.startswith(lead) or not key.endswith(PARTIAL_SUFFIX):
        return None
    return f"s3://{capture_bucket}/{key[len(lead):-len(PARTIAL_SUFFIX)]}"


def write_partial(s3: Any, *, bucket: str, key: str, document: Mapping[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, separators=(",", ":"), allow_nan=False).encode(),
                  ContentType="application/json")


def list_partial_keys(s3: Any, *, bucket: str, partials_prefix: str, object_prefix: str, window: Window) -> list[str]:
    """Partial-result keys for the objects under ``object_prefix`` in the window's hour partitions."""
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    mirrored = f"{partials_prefix.strip('/')}/{object_prefix.strip('/')}"
    for hour_prefix in hour_prefixes(mirrored, window):
        for page in paginator.paginate(Bucket=bucket, Prefix=hour_prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(PARTIAL_SUFFIX))
    return keys


def read_partials(s3: Any, *, bucket: str, keys: Iterable[str], partials_prefix: str,
                  capture_bucket: str) -> list[Any]:
    """The documents at ``keys``, fetched in parallel. One that cannot be read or is not JSON comes back as a
    stub naming its object, which the merge counts as invalid (and counts the object itself)."""
    def fetch(key: str) -> Any:
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except (ClientError, BotoCoreError, ValueError, UnicodeDecodeError):
            return {"object": {"name": object_name_of(partials_prefix, capture_bucket, key)}}

    keys = list(keys)
    if len(keys) <= 1:
        return [fetch(key) for key in keys]
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(keys))) as pool:
        return list(pool.map(fetch, keys))
