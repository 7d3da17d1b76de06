"""A circuit breaker whose state is shared by every concurrent copy of the inference Lambda.

Why shared: each Lambda execution environment is a separate process. A per-process breaker would let every
new environment (and a throttled endpoint makes Lambda scale out) pay the full endpoint timeout again
before learning that the endpoint is down.

State machine (one item per endpoint):

    closed --N consecutive failures--> open --cool-down elapsed, one caller claims the trial--> half_open
    half_open --trial succeeds--> closed          half_open --trial fails--> open (cool-down restarts)

Concurrency: every transition is a compare-and-set on the item's ``version`` (a DynamoDB conditional
write), computed from the state it replaces. Two handlers can therefore never both claim the half-open
trial, and a failure count is never overwritten by a stale copy: the loser re-reads and re-applies its
transition (bounded attempts; a count lost under extreme contention only delays opening slightly).
A trial whose holder vanished (the Lambda timed out mid-call) is re-claimable after ``trial_timeout``.

Cost trade-off: reading the item on every request would add a DynamoDB round trip (~2-5 ms) to every
prediction. The state is instead cached in memory for ``state_cache_seconds`` (default 1 s) and refreshed
by every write this process makes. The price: for up to that long after another copy opens the breaker,
this copy may still call the endpoint (its failures then change nothing), and a success here resets the
shared failure count only when this copy's view shows failures. Writes happen only on failures, on the
first success after failures, and on transitions - not on the healthy path.

If the state store itself is unreachable the breaker fails open (calls the endpoint): a DynamoDB problem
should not by itself take predictions off the model.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
_STATES = frozenset({CLOSED, OPEN, HALF_OPEN})
_MAX_WRITE_ATTEMPTS = 3


class BreakerStoreError(Exception):
    """The shared state could not be read or written (not a lost race: that is a normal False)."""


@dataclass(frozen=True, kw_only=True)
class BreakerRecord:
    state: str = CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    trial_id: str | None = None
    trial_started_at: float | None = None
    # 0 means "no item stored yet"; each successful write stores version + 1.
    version: int = 0

    def __post_init__(self) -> None:
        if self.state not in _STATES:
            raise ValueError(f"breaker state {self.state!r} is not one of {sorted(_STATES)}")


class BreakerStore(Protocol):
    def read(self, *, consistent: bool) -> BreakerRecord: ...

    def compare_and_set(self, new: BreakerRecord, *, expected_version: int) -> bool:
        """Store ``new`` only if the stored version is ``expected_version``; False when another writer won."""
        ...


@dataclass(frozen=True, kw_only=True)
class BreakerSettings:
    failure_threshold: int
    cooldown_seconds: float
    state_cache_seconds: float
    trial_timeout_seconds: float

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {self.failure_threshold}")
        for name in ("cooldown_seconds", "state_cache_seconds", "trial_timeout_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


@dataclass(frozen=True, kw_only=True)
class Permit:
    """The breaker's answer to "may I call the endpoint?"; hand it back with the outcome."""

    allowed: bool
    trial_id: str | None = None

    @property
    def is_trial(self) -> bool:
        return self.trial_id is not None


class CircuitBreaker:
    def __init__(self, *, store: BreakerStore, settings: BreakerSettings, clock: Callable[[], float],
                 on_store_error: Callable[[Exception], None] = lambda _err: None) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._on_store_error = on_store_error
        self._view: BreakerRecord | None = None
        self._view_read_at = 0.0

    def before_call(self) -> Permit:
        now = self._clock()
        try:
            view = self._cached_view(now)
        except BreakerStoreError as err:
            self._on_store_error(err)
            return Permit(allowed=True)
        if view.state == CLOSED:
            return Permit(allowed=True)
        if not self._trial_due(view, now):
            return Permit(allowed=False)
        trial_id = secrets.token_hex(8)

        def claim(current: BreakerRecord) -> BreakerRecord | None:
            if current.state == CLOSED or not self._trial_due(current, now):
                return None
            return replace(current, state=HALF_OPEN, trial_id=trial_id, trial_started_at=now)

        try:
            stored = self._transition(claim, view, now)
        except BreakerStoreError as err:
            self._on_store_error(err)
            return Permit(allowed=False)
        if stored is not None and stored.trial_id == trial_id:
            return Permit(allowed=True, trial_id=trial_id)
        # Another copy claimed the trial, or closed the breaker meanwhile.
        return Permit(allowed=self._view is not None and self._view.state == CLOSED)

    def record_success(self, permit: Permit) -> None:
        now = self._clock()

        def close(current: BreakerRecord) -> BreakerRecord | None:
            if permit.is_trial:
                if current.state != HALF_OPEN or current.trial_id != permit.trial_id:
                    return None
                return replace(current, state=CLOSED, consecutive_failures=0, opened_at=None,
                               trial_id=None, trial_started_at=None)
            if current.state != CLOSED or current.consecutive_failures == 0:
                return None
            return replace(current, consecutive_failures=0)

        self._record(close, now)

    def record_failure(self, permit: Permit) -> None:
        now = self._clock()
        threshold = self._settings.failure_threshold

        def count(current: BreakerRecord) -> BreakerRecord | None:
            if permit.is_trial:
                if current.state != HALF_OPEN or current.trial_id != permit.trial_id:
                    return None
                return replace(current, state=OPEN, opened_at=now, trial_id=None, trial_started_at=None,
                               consecutive_failures=current.consecutive_failures + 1)
            if current.state != CLOSED:
                return None
            failures = current.consecutive_failures + 1
            if failures >= threshold:
                return replace(current, state=OPEN, consecutive_failures=failures, opened_at=now)
            return replace(current, consecutive_failures=failures)

        self._record(count, now)

    def _record(self, change: Callable[[BreakerRecord], BreakerRecord | None], now: float) -> None:
        try:
            view = self._cached_view(now)
            self._transition(change, view, now)
        except BreakerStoreError as err:
            self._on_store_error(err)

    def _trial_due(self, view: BreakerRecord, now: float) -> bool:
        if view.state == OPEN:
            return view.opened_at is None or now - view.opened_at >= self._settings.cooldown_seconds
        if view.state == HALF_OPEN:
            started = view.trial_started_at
            return started is None or now - started >= self._settings.trial_timeout_seconds
        return False

    def _cached_view(self, now: float) -> BreakerRecord:
        if self._view is None or now - self._view_read_at >= self._settings.state_cache_seconds:
            self._remember(self._store.read(consistent=False), now)
        assert self._view is not None
        return self._view

    def _remember(self, record: BreakerRecord, now: float) -> None:
        self._view = record
        self._view_read_at = now

    def _transition(self, change: Callable[[BreakerRecord], BreakerRecord | None], view: BreakerRecord,
                    now: float) -> BreakerRecord | None:
        """Apply ``change`` with compare-and-set; on a lost race re-read (consistently) and re-apply.

        Returns the record now stored, or None when ``change`` decided nothing needs to change.
        """
        current = view
        for _ in range(_MAX_WRITE_ATTEMPTS):
            new = change(current)
            if new is None:
                return None
            new = replace(new, version=current.version + 1)
            if self._store.compare_and_set(new, expected_version=current.version):
                self._remember(new, now)
                return new
            current = self._store.read(consistent=True)
            self._remember(current, now)
        return None


class DynamoDbBreakerStore:
    """One item per breaker in a table whose partition key is ``breaker_id`` (S).

    Item attributes: state (S), consecutive_failures (N), version (N), updated_at (N, epoch seconds) and,
    while relevant, opened_at (N), trial_id (S), trial_started_at (N). Written with PutItem conditioned
    on the version it replaces, so the whole item is the unit of the compare-and-set.
    """

    def __init__(self, client: DynamoDbClient, *, table_name: str, breaker_id: str,
                 clock: Callable[[], float]) -> None:
        self._client = client
        self._table_name = table_name
        self._breaker_id = breaker_id
        self._clock = clock

    def read(self, *, consistent: bool) -> BreakerRecord:
        try:
            response = self._client.get_item(TableName=self._table_name,
                                              Key={"breaker_id": {"S": self._breaker_id}},
                                              ConsistentRead=consistent)
        except (ClientError, BotoCoreError) as err:
            raise BreakerStoreError(f"reading breaker {self._breaker_id!r}: {err}") from err
        item = response.get("Item")
        if not item:
            return BreakerRecord()
        try:
            return BreakerRecord(
                state=item["state"]["S"],
                consecutive_failures=int(item["consecutive_failures"]["N"]),
                opened_at=float(item["opened_at"]["N"]) if "opened_at" in item else None,
                trial_id=item["trial_id"]["S"] if "trial_id" in item else None,
                trial_started_at=float(item["trial_started_at"]["N"]) if "trial_started_at" in item else None,
                version=int(item["version"]["N"]),
            )
        except (KeyError, ValueError) as err:
            raise BreakerStoreError(f"breaker item {self._breaker_id!r} is malformed: {err!r}") from err

    def compare_and_set(self, new: BreakerRecord, *, expected_version: int) -> bool:
        item: dict[str, dict[str, str]] = {
            "breaker_id": {"S": self._breaker_id},
            "state": {"S": new.state},
            "consecutive_failures": {"N": str(new.consecutive_failures)},
            "version": {"N": str(new.version)},
            "updated_at": {"N": repr(self._clock())},
        }
        if new.opened_at is not None:
            item["opened_at"] = {"N": repr(new.opened_at)}
        if new.trial_id is not None:
            item["trial_id"] = {"S": new.trial_id}
        if new.trial_started_at is not None:
            item["trial_started_at"] = {"N": repr(new.trial_started_at)}
        if expected_version == 0:
            condition: dict[str, object] = {"ConditionExpression": "attribute_not_exists(breaker_id)"}
        else:
            condition = {"ConditionExpression": "#version = :expected",
                         "ExpressionAttributeNames": {"#version": "version"},
                         "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}}}
        try:
            self._client.put_item(TableName=self._table_name, Item=item, **condition)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise BreakerStoreError(f"writing breaker {self._breaker_id!r}: {err}") from err
        except BotoCoreError as err:
            raise BreakerStoreError(f"writing breaker {self._breaker_id!r}: {err}") from err
        return True


class DynamoDbClient(Protocol):
    def get_item(self, **kwargs: Any) -> dict[str, Any]: ...

    def put_item(self, **kwargs: Any) -> dict[str, Any]: ...
