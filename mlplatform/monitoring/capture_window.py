"""Where a window of captured traffic lives in S3, and how to stream it without holding it.

Endpoint data capture writes ``<capture prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``; the
inference Lambda's prediction log (Firehose) writes ``<log prefix>/yyyy/mm/dd/hh/<file>`` (no extension
by default). Ground-truth labels use the same hour partitions. Both writers name the hour after the
record's arrival, so a window of whole hours is a list of hour prefixes (``mlcore.drift.window``): no
listing of the whole bucket, no reliance on file names (SageMaker does not document them).

Objects are streamed line by line (``StreamingBody.iter_chunks``); gzip objects (``.gz``) are decompressed
on the fly. Nothing here holds more than one read buffer of an object.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlcore.drift.run import LineSource, SourceKind
from mlcore.drift.window import READ_CHUNK_BYTES, Window, hour_prefixes, lines_of_chunks, split_lines


def list_window_keys(s3: Any, *, bucket: str, prefix: str, window: Window) -> list[str]:
    """Keys of the objects in the window's hour partitions under ``prefix``, in key (= time) order."""
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for hour_prefix in hour_prefixes(prefix, window):
        for page in paginator.paginate(Bucket=bucket, Prefix=hour_prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/"))
    return keys


@dataclass(frozen=True)
class ListedObject:
    """One object of a listing: what identifies its content for partial results (size, ETag) and when it
    landed (late partial results are judged by it)."""

    key: str
    size: int
    etag: str
    modified: datetime


def list_window_objects(s3: Any, *, bucket: str, prefix: str, window: Window) -> list[ListedObject]:
    """``list_window_keys`` with each object's size, ETag and last-modified time."""
    objects: list[ListedObject] = []
    paginator = s3.get_paginator("list_objects_v2")
    for hour_prefix in hour_prefixes(prefix, window):
        for page in paginator.paginate(Bucket=bucket, Prefix=hour_prefix):
            objects.extend(ListedObject(key=item["Key"], size=int(item["Size"]), etag=str(item["ETag"]).strip('"'),
                                        modified=item["LastModified"])
                           for item in page.get("Contents", []) if not item["Key"].endswith("/"))
    return objects


def list_all_keys(s3: Any, *, bucket: str, prefix: str) -> list[str]:
    """Every object below a prefix (``mlops drift --capture s3://…``: the caller chose the prefix)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/"))
    return sorted(keys)


def iter_s3_lines(s3: Any, *, bucket: str, key: str) -> Iterator[bytes]:
    """The lines of one object, streamed (no trailing newline; blank lines are kept for counting)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        if key.endswith(".gz"):
            with gzip.GzipFile(fileobj=body) as unzipped:
                yield from split_lines(unzipped)
        else:
            yield from lines_of_chunks(body.iter_chunks(READ_CHUNK_BYTES))
    finally:
        body.close()




def iter_s3_blocks(s3: Any, *, bucket: str, key: str) -> Iterator[bytes]:
    """The raw bytes of one object (decompressed when ``.gz``), streamed in reads of ``READ_CHUNK_BYTES``."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        if key.endswith(".gz"):
            with gzip.GzipFile(fileobj=body) as unzipped:
                while chunk := unzipped.read(READ_CHUNK_BYTES):
                    yield chunk
        else:
            yield from body.iter_chunks(READ_CHUNK_BYTES)
    finally:
        body.close()


def s3_line_source(s3: Any, *, bucket: str, key: str, kind: SourceKind, size: int | None = None,
                   etag: str | None = None, modified: datetime | None = None) -> LineSource:
    """One S3 object as a drift run's source: streamed when the run reads it; an S3 error while reading makes it
    an unreadable object of the report, as a corrupt file would be. ``size``, ``etag`` and ``modified`` are the
    listing's, when known."""
    return LineSource(name=f"s3://{bucket}/{key}", kind=kind,
                      open=lambda: iter_s3_lines(s3, bucket=bucket, key=key),
                      open_blocks=lambda: iter_s3_blocks(s3, bucket=bucket, key=key),
                      read_errors=(ClientError, BotoCoreError), size=size, etag=etag, modified=modified)
