"""The shared circuit breaker's state machine, against the in-memory compare-and-set store."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from mlplatform.inference.circuit_breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerRecord,
    BreakerSettings,
    BreakerStoreError,
    CircuitBreaker,
    Permit,
)
from testkit.inference_doubles import InMemoryBreakerStore

SETTINGS = BreakerSettings(failure_threshold=3, cooldown_seconds=30.0, state_cache_seconds=0.0,
                           trial_timeout_seconds=10.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def breaker(store: InMemoryBreakerStore, clock: Clock, settings: BreakerSettings = SETTINGS) -> CircuitBreaker:
    return CircuitBreaker(store=store, settings=settings, clock=clock)


def fail(b: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        permit = b.before_call()
        assert permit.allowed
        b.record_failure(permit)


def test_closed_breaker_opens_after_n_consecutive_failures() -> None:
    store, clock = InMemoryBreakerStore(), Clock()
    b = breaker(store, clock)
    fail(b, 2)
    assert store.read(consistent=True).state == CLOSED
    assert store.read(consistent=True).consecutive_failures == 2
    fail(b, 1)
    record = store.read(consistent=True)
    assert (record.state, record.consecutive_failures, record.opened_at) == (OPEN, 3, 1_000.0)
    assert b.before_call() == Permit(allowed=False)


def test_a_success_resets_the_count_so_failures_must_be_consecutive() -> None:
    store, clock = InMemoryBreakerStore(), Clock()
    b = breaker(store, clock)
    fail(b, 2)
    b.record_success(b.before_call())
    fail(b, 2)
    assert store.read(consistent=True).state == CLOSED


def test_healthy_traffic_writes_nothing() -> None:
    store, clock = InMemoryBreakerStore(), Clock()
    b = breaker(store, clock)
    for _ in range(50):
        b.record_success(b.before_call())
    assert store.writes == 0


def test_open_breaker_half_opens_after_the_cool_down_and_lets_exactly_one_trial_through() -> None:
    store, clock = InMemoryBreakerStore(), Clock()
    b = breaker(store, clock)
    fail(b, 3)
    clock.now += 29.9
    assert not b.before_call().allowed
    clock.now += 0.1
    trial = b.before_call()
    assert trial.allowed and trial.is_trial
    assert store.read(consistent=True).state == HALF_OPEN
    other = breaker(store, clock)
    assert not other.before_call().allowed
    assert not b.before_call().allowed


def test_a_successful_trial_closes_the_breaker() -> None:
    store, clock = InMemoryBreakerStore(), Clock()
    b = breaker(store, clock)
    fail(b, 3)
    clock.now += 30
    b.record_success(b.before_call())
    record = store.read(consistent=True)
    assert (record.state, record.consecutive_failures, record.opened_at, record.trial_id) == (CLOSED, 0, None, None)
    assert b.before_call() == Permit(allowed=True)


def test_a_failed_trial_reopens_the_breaker_and_restarts_the_cool_down() -> None:
    store, clock = InMemoryBreakerStore(), Clock()
    b = breaker(store, clock)
    fail(b, 3)
    clock.now += 30
    b.record_failure(b.before_call())
    record = store.read(consistent=True)
    assert (record.state, record.opened_at) == (OPEN, clock.now)
    clock.now += 29
    assert not b.before_call().allowed
    clock.now += 1
    assert b.before_call().is_trial


def test_a_trial_whose_holder_vanished_can_be_claimed_again_after_the_trial_timeout() -> None:
    store, clock = InMemoryBreakerStore(), Clock()
    fail(breaker(store, clock), 3)
    clock.now += 30
    assert breaker(store, clock).before_call().is_trial  # this holder never reports back
    clock.now += 9
    assert not breaker(store, clock).before_call().allowed
    clock.now += 1
    assert breaker(store, clock).before_call().is_trial


def test_a_late_report_from_a_superseded_trial_changes_nothing() -> None:
    store, clock = InMemoryBreakerStore(), Clock()
    first, second = breaker(store, clock), breaker(store, clock)
    fail(first, 3)
    clock.now += 30
    stale = first.before_call()
    clock.now += 10
    fresh = second.before_call()
    first.record_success(stale)
    assert store.read(consistent=True).state == HALF_OPEN
    second.record_failure(fresh)
    assert store.read(consistent=True).state == OPEN


def test_concurrent_copies_claim_one_trial_and_count_every_failure() -> None:
    store, clock = InMemoryBreakerStore(), Clock()
    copies = [breaker(store, clock, replace(SETTINGS, failure_threshold=1000)) for _ in range(8)]
    barrier = threading.Barrier(len(copies))

    def fail_many(b: CircuitBreaker) -> None:
        barrier.wait()
        for _ in range(25):
            b.record_failure(Permit(allowed=True))

    threads = [threading.Thread(target=fail_many, args=(b,)) for b in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Conflicts are retried up to three times; with eight copies a count can only be lost if one copy
    # loses three races in a row, which the lock-step in-memory store makes vanishingly rare.
    assert store.read(consistent=True).consecutive_failures >= 195

    store2, clock2 = InMemoryBreakerStore(), Clock()
    fail(breaker(store2, clock2), 3)
    clock2.now += 30
    claimants = [breaker(store2, clock2) for _ in range(8)]
    permits: list[Permit] = []
    barrier2 = threading.Barrier(len(claimants))

    def claim(b: CircuitBreaker) -> None:
        barrier2.wait()
        permits.append(b.before_call())

    threads = [threading.Thread(target=claim, args=(b,)) for b in claimants]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(p.is_trial for p in permits) == 1
    assert sum(p.allowed for p in permits) == 1


def test_the_state_is_read_at_most_once_per_cache_period() -> None:
    class CountingStore(InMemoryBreakerStore):
        reads = 0

        def read(self, *, consistent: bool) -> BreakerRecord:
            CountingStore.reads += 1
            return super().read(consistent=consistent)

    store, clock = CountingStore(), Clock()
    b = breaker(store, clock, replace(SETTINGS, state_cache_seconds=1.0))
    for _ in range(100):
        b.before_call()
    assert CountingStore.reads == 1
    clock.now += 1.0
    b.before_call()
    assert CountingStore.reads == 2


def test_an_unreachable_store_fails_open_and_is_reported() -> None:
    class BrokenStore(InMemoryBreakerStore):
        def read(self, *, consistent: bool) -> BreakerRecord:
            raise BreakerStoreError("dynamodb down")

    errors: list[Exception] = []
    b = CircuitBreaker(store=BrokenStore(), settings=SETTINGS, clock=Clock(), on_store_error=errors.append)
    permit = b.before_call()
    b.record_failure(permit)
    assert permit.allowed
    assert len(errors) == 2


def test_settings_and_records_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="failure_threshold must be at least 1"):
        BreakerSettings(failure_threshold=0, cooldown_seconds=1, state_cache_seconds=0, trial_timeout_seconds=1)
    with pytest.raises(ValueError, match="breaker state 'ajar'"):
        BreakerRecord(state="ajar")
