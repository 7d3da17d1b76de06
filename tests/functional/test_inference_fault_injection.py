"""Fault injection: random endpoint faults must never cost a caller a valid answer, a wrong `source`, or a
prediction-log record; the shared breaker must open, half-open and close as designed.

Scale vs. fidelity: the 10,000-request run drives the real handler (Powertools decorators included) over
the real service, breaker and invoker, with the in-memory stand-ins from ``local_backends`` for DynamoDB
and Firehose (moto costs ~1-2 ms per call; 10,000 requests would take minutes). A 300-request sample runs
the same checks against moto's DynamoDB, Firehose and S3, including the breaker's conditional writes.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.inference import handler as handler_module
from lambdas.inference.settings import InferenceSettings
from mlcore.fallback import FallbackModel
from mlplatform.inference.circuit_breaker import CLOSED, HALF_OPEN, OPEN, BreakerRecord, BreakerSettings, CircuitBreaker
from mlplatform.inference.degradation import InferenceService, ServiceSettings
from mlplatform.inference.fallback_loading import FallbackModelScorer
from mlplatform.inference.request_validation import Row, ValidationLimits, rows_to_csv
from testkit import inference_world as kit
from testkit.inference_doubles import (
    FAULT_REASONS,
    CountingMetrics,
    InMemoryBreakerStore,
    InMemoryPredictionLog,
    InMemoryResponseCache,
    SilentLogger,
    StubbedEndpoint,
    healthy_probability,
)

SCHEMA = kit.load_schema()
FAULTS = sorted(FAULT_REASONS)
THRESHOLD = 4
COOLDOWN = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class TransitionRecordingStore(InMemoryBreakerStore):
    def __init__(self) -> None:
        super().__init__()
        self.transitions: list[tuple[str, str, int]] = []

    def compare_and_set(self, new: BreakerRecord, *, expected_version: int) -> bool:
        before = self.read(consistent=True)
        stored = super().compare_and_set(new, expected_version=expected_version)
        if stored and before.state != new.state:
            self.transitions.append((before.state, new.state, new.consecutive_failures))
        return stored


class SwitchableFallback:
    """The real fallback model, which the test can take away to exercise the cache and default rungs."""

    def __init__(self) -> None:
        model = FallbackModel.from_dict(kit.fallback_document(SCHEMA))
        self.scorer = FallbackModelScorer(model, model_version="fallback/v7")
        self.available = True

    @property
    def model_version(self) -> str:
        return self.scorer.model_version

    def score(self, rows: Sequence[Row]) -> tuple[float, ...]:
        if not self.available:
            raise RuntimeError("fallback withdrawn by the test")
        return self.scorer.score(rows)


@dataclass
class Plan:
    """Seeded fault schedule with healthy spells, outages and flapping, so every transition happens."""

    rng: random.Random
    fault_rate: float = 0.0
    last: list[str | None] = field(default_factory=list)

    def __call__(self) -> str | None:
        fault = self.rng.choice(FAULTS) if self.rng.random() < self.fault_rate else None
        self.last.append(fault)
        return fault


def build_service(*, endpoint: StubbedEndpoint, store: InMemoryBreakerStore, cache: InMemoryResponseCache,
                  log: InMemoryPredictionLog, fallback: SwitchableFallback | None, metrics: CountingMetrics,
                  clock: Callable[[], float], state_cache_seconds: float = 0.0) -> InferenceService:
    return InferenceService(
        schema=SCHEMA,
        settings=ServiceSettings(endpoint_name=kit.ENDPOINT_NAME,
                                 limits=ValidationLimits(max_rows=8, max_body_bytes=65_536),
                                 safe_default_probability=0.5, cache_ttl_seconds=3_600),
        sagemaker_runtime=endpoint,
        breaker=CircuitBreaker(store=store, clock=clock, settings=BreakerSettings(
            failure_threshold=THRESHOLD, cooldown_seconds=COOLDOWN, state_cache_seconds=state_cache_seconds,
            trial_timeout_seconds=3.0)),
        response_cache=cache, prediction_log=log, fallback_model=fallback, metrics=metrics,
        logger=SilentLogger(), clock=clock)


@dataclass
class Context:
    aws_request_id: str = "lambda-req"
    function_name: str = "inference"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{kit.REGION}:{kit.ACCOUNT}:function:inference"


QUIET = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def quiet_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    # The handler's Powertools metrics would print 10,000 EMF lines; the service's own CountingMetrics
    # are what this test checks.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr(handler_module.metrics, "add_metric", lambda **_: None)


@pytest.mark.slow
@QUIET
@pytest.mark.usefixtures("quiet_metrics")
def test_ten_thousand_requests_with_random_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20250615)
    plan = Plan(rng)
    clock = FakeClock()
    endpoint = StubbedEndpoint(plan)
    store, cache, log = TransitionRecordingStore(), InMemoryResponseCache(), InMemoryPredictionLog()
    fallback, metrics = SwitchableFallback(), CountingMetrics()
    service = build_service(endpoint=endpoint, store=store, cache=cache, log=log, fallback=fallback,
                            metrics=metrics, clock=clock)
    monkeypatch.setattr(handler_module, "_service", service)
    pool = [kit.random_row(rng, SCHEMA) for _ in range(300)]  # repeats make cache hits possible
    endpoint_answers: dict[str, tuple[float, ...]] = {}
    served: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    total_rows = 0
    requests = 10_000

    for i in range(requests):
        if i % 500 == 0:
            # Phases: healthy, flapping, outage; the fallback model comes and goes.
            plan.fault_rate = rng.choice([0.0, 0.05, 0.3, 0.6, 0.95, 1.0])
            fallback.available = rng.random() < 0.5
        clock.advance(rng.uniform(0.0, 0.2))
        rows = [rng.choice(pool) for _ in range(rng.randint(1, 4))]
        body: dict[str, Any] = {"instances": rows}
        if rng.random() < 0.3:
            body["inference_id"] = f"client-{i}"
        calls_before = endpoint.calls
        response = handler_module.handler(kit.api_event(body, request_id=f"req-{i}"), Context())

        assert response["statusCode"] == 200
        answer = json.loads(response["body"])
        kit.assert_valid_answer(answer, len(rows))
        assert answer["inference_id"] == body.get("inference_id", f"req-{i}")
        canonical = tuple(tuple(float(v) for v in row) for row in rows)
        key = rows_to_csv(canonical)
        probabilities = tuple(p["probability"] for p in answer["predictions"])
        called = endpoint.calls > calls_before
        fault = plan.last[-1] if called else None
        if called and fault is None:
            expected_source, expected_reason = "endpoint", None
            assert probabilities == tuple(healthy_probability(rows_to_csv([row])) for row in canonical)
            endpoint_answers[key] = probabilities
        else:
            expected_reason = FAULT_REASONS[fault] if called and fault else "circuit_open"
            if fallback.available:
                expected_source = "fallback_model"
                assert probabilities == fallback.score(canonical)
            elif key in endpoint_answers:
                expected_source = "cache"
                assert probabilities == endpoint_answers[key]
            else:
                expected_source = "default"
                assert probabilities == (0.5,) * len(rows)
        assert (answer["source"], answer["degradation_reason"]) == (expected_source, expected_reason)
        served[expected_source] += 1
        if expected_reason:
            reasons[expected_reason] += 1
        total_rows += len(rows)

    # Every source and every reason occurred, so the checks above covered them all.
    assert set(served) == {"endpoint", "fallback_model", "cache", "default"}
    assert set(reasons) == set(FAULT_REASONS.values()) | {"circuit_open"}
    assert metrics.fallbacks == reasons
    assert metrics.served_by == served

    # Every prediction logged exactly once, nothing lost.
    records = [json.loads(line) for line in log.lines]
    assert len(records) == requests
    assert sorted(r["eventMetadata"]["eventId"] for r in records) == sorted(f"req-{i}" for i in range(requests))
    assert sum(len(r["captureData"]["endpointOutput"]["data"].split("\n")) for r in records) == total_rows
    assert Counter(r["eventMetadata"]["customAttributes"]["source"] for r in records) == served

    # The breaker went through every transition, and opened only after THRESHOLD consecutive failures.
    kinds = Counter((before, after) for before, after, _ in store.transitions)
    assert {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)} <= set(kinds)
    assert set(kinds) <= {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)}
    assert all(failures == THRESHOLD for before, after, failures in store.transitions if before == CLOSED)


@QUIET
@pytest.mark.usefixtures("quiet_metrics")
def test_concurrent_handlers_share_the_breaker_state() -> None:
    """Eight Lambda copies (threads, each with its own breaker view) through an outage and a recovery."""
    clock = FakeClock()
    outage = [True]
    endpoint = StubbedEndpoint(lambda: "server_error" if outage[0] else None)
    store, cache, log = TransitionRecordingStore(), InMemoryResponseCache(), InMemoryPredictionLog()
    metrics = CountingMetrics()
    copies = [build_service(endpoint=endpoint, store=store, cache=cache, log=log, fallback=None, metrics=metrics,
                            clock=clock, state_cache_seconds=0.5) for _ in range(8)]
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def run(service: InferenceService, copy: int, phase: str, count: int) -> None:
        for i in range(count):
            event = kit.api_event({"instances": [[float(copy)] * 30]}, request_id=f"{phase}-{copy}-{i}")
            answer = json.loads(service.handle(event, request_id=f"{phase}-{copy}-{i}")["body"])
            with lock:
                answers.append(answer)

    def phase(name: str, count: int) -> None:
        threads = [threading.Thread(target=run, args=(s, n, name, count)) for n, s in enumerate(copies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    phase("outage", 40)
    record = store.read(consistent=True)
    assert record.state == OPEN
    # Once open, nobody calls: only the failures that opened it (plus calls already past a stale view).
    assert endpoint.calls <= THRESHOLD + len(copies)
    calls_during_outage = endpoint.calls

    clock.advance(COOLDOWN + 1)
    outage[0] = False
    phase("recovery", 40)
    assert store.read(consistent=True).state == CLOSED
    assert [t[:2] for t in store.transitions] == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
    assert endpoint.calls > calls_during_outage
    for answer in answers:
        kit.assert_valid_answer(answer, 1)
    assert len(answers) == len(log.lines) == 2 * 8 * 40
    assert len({json.loads(line)["eventMetadata"]["eventId"] for line in log.lines}) == len(answers)


@pytest.fixture
def moto_deployment(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for name, value in kit.environment(BREAKER_FAILURE_THRESHOLD="3", BREAKER_COOLDOWN_SECONDS="0",
                                       BREAKER_STATE_CACHE_SECONDS="0").items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        session = boto3.session.Session(region_name=kit.REGION)
        kit.create_resources(session, SCHEMA)
        yield session


@pytest.mark.slow
@QUIET
@pytest.mark.usefixtures("quiet_metrics")
def test_a_sample_against_moto_dynamodb_firehose_and_s3(moto_deployment: boto3.session.Session,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    session = moto_deployment
    rng = random.Random(7)
    plan = Plan(rng)
    endpoint = StubbedEndpoint(plan)
    settings = InferenceSettings.from_environ(kit.environment(
        BREAKER_FAILURE_THRESHOLD="3", BREAKER_COOLDOWN_SECONDS="0", BREAKER_STATE_CACHE_SECONDS="0"))
    service = handler_module.build_service(settings, session=session, sagemaker_runtime=endpoint)
    monkeypatch.setattr(handler_module, "_service", service)
    pool = [kit.random_row(rng, SCHEMA) for _ in range(20)]
    states: list[str] = []
    sources: Counter[str] = Counter()
    requests = 300
    dynamodb = session.client("dynamodb")
    for i in range(requests):
        if i % 50 == 0:
            plan.fault_rate = [0.0, 1.0, 0.5][(i // 50) % 3]
        rows = [rng.choice(pool)]
        calls_before = endpoint.calls
        response = handler_module.handler(kit.api_event({"instances": rows}, request_id=f"m-{i}"), Context())
        answer = json.loads(response["body"])
        kit.assert_valid_answer(answer, 1)
        called = endpoint.calls > calls_before
        fault = plan.last[-1] if called else None
        if called and fault is None:
            assert answer["source"] == "endpoint"
        else:
            assert answer["source"] == "fallback_model"
            assert answer["degradation_reason"] == (FAULT_REASONS[fault] if fault else "circuit_open")
        sources[answer["source"]] += 1
        item = dynamodb.get_item(TableName=kit.BREAKER_TABLE, Key={"breaker_id": {"S": kit.ENDPOINT_NAME}},
                                 ConsistentRead=True).get("Item")
        states.append(item["state"]["S"] if item else CLOSED)

    lines = kit.logged_lines(session)
    assert len(lines) == requests
    assert {line["eventMetadata"]["eventId"] for line in lines} == {f"m-{i}" for i in range(requests)}
    assert Counter(line["eventMetadata"]["customAttributes"]["source"] for line in lines) == sources
    # With a zero cool-down an open breaker is half-opened by the very next request (its trial), so the
    # state seen after each request is closed or open; it opens in the outage and closes after it.
    assert set(states) == {CLOSED, OPEN}
    assert any(a == OPEN and b == CLOSED for a, b in itertools.pairwise(states))
    cached = dynamodb.scan(TableName=kit.CACHE_TABLE)["Items"]
    assert 0 < len(cached) <= len(pool)
