"""S3 URIs: ``s3://bucket/key`` into its parts, the one parser every side uses."""

from __future__ import annotations


def split_s3_uri(uri: str, *, key_required: bool = True) -> tuple[str, str]:
    """(bucket, key or prefix) of ``s3://bucket/key``; ``key_required=False`` also takes ``s3://bucket`` (an empty
    prefix). A malformed URI is a ValueError naming it."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, slash, key = uri[5:].partition("/")
    if not bucket or (key_required and (not slash or not key)):
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    return bucket, key
