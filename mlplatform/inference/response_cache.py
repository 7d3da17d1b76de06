"""Remembers the endpoint's answers so that a repeat of the same input can be served while it is down.

Key: SHA-256 over the schema identity and the canonical CSV of the rows (see
``request_validation.rows_to_csv``): ``1`` and ``1.0`` or a list row and the equivalent object row give
the same key, and a schema change never serves answers computed for another feature layout.

DynamoDB's TTL deletion runs lazily (typically within days of expiry), so expiry is also checked on
read; the TTL attribute only keeps the table from growing.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mlsettings.schema import DataSchema


class ResponseCacheError(Exception):
    """The cache could not be read or written; callers treat it as a miss and count it."""


@dataclass(frozen=True, kw_only=True)
class CachedAnswer:
    answers: tuple[Any, ...]
    """The endpoint's answers in the model's kind's shape (mlcore.outputs); the service judges them on read."""
    model_version: str
    stored_at: float


class ResponseCache(Protocol):
    def get(self, key: str, *, now: float) -> CachedAnswer | None: ...

    def put(self, key: str, answer: CachedAnswer, *, expires_at: float) -> None: ...


def cache_key(schema: DataSchema, csv_payload: str) -> str:
    material = f"{schema.name}\x1fv{schema.version}\x1f{csv_payload}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class DynamoDbClient(Protocol):
    def get_item(self, **kwargs: Any) -> dict[str, Any]: ...

    def put_item(self, **kwargs: Any) -> dict[str, Any]: ...


class DynamoDbResponseCache:
    """Table with partition key ``cache_key`` (S); TTL attribute ``expires_at`` (N, epoch seconds).

    Other attributes: probabilities (S, a JSON list of the answers: probabilities for a binary model, the kind's
    answers otherwise; the attribute keeps its name so entries written before issue 25 still read), model_version
    (S), stored_at (N).
    """

    def __init__(self, client: DynamoDbClient, *, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def get(self, key: str, *, now: float) -> CachedAnswer | None:
        try:
            response = self._client.get_item(TableName=self._table_name, Key={"cache_key": {"S": key}})
        except (ClientError, BotoCoreError) as err:
            raise ResponseCacheError(f"reading cache entry {key[:12]}: {err}") from err
        item = response.get("Item")
        if not item:
            return None
        try:
            if float(item["expires_at"]["N"]) <= now:
                return None
            answers = tuple(json.loads(item["probabilities"]["S"]))
            answer = CachedAnswer(answers=answers, model_version=item["model_version"]["S"],
                                  stored_at=float(item["stored_at"]["N"]))
        except (KeyError, ValueError, TypeError) as err:
            raise ResponseCacheError(f"cache entry {key[:12]} is malformed: {err!r}") from err
        if not all(_answer_like(a) for a in answer.answers):
            raise ResponseCacheError(f"cache entry {key[:12]} holds values that are not answers")
        return answer

    def put(self, key: str, answer: CachedAnswer, *, expires_at: float) -> None:
        item = {
            "cache_key": {"S": key},
            "probabilities": {"S": json.dumps(list(answer.answers))},
            "model_version": {"S": answer.model_version},
            "stored_at": {"N": repr(answer.stored_at)},
            "expires_at": {"N": str(math.ceil(expires_at))},
        }
        try:
            self._client.put_item(TableName=self._table_name, Item=item)
        except (ClientError, BotoCoreError) as err:
            raise ResponseCacheError(f"writing cache entry {key[:12]}: {err}") from err


def _answer_like(value: Any) -> bool:
    """A finite number or an object (a multiclass answer): what any kind's answer is, before its kind judges it."""
    if isinstance(value, dict):
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
