"""Benchmark of serving: model scoring latency in the endpoint's code path, and the deployer's decision time.

    .venv/bin/python bench/bench_serving.py [--rounds 200] [--repeats 300] [--json]

* scoring: a model trained by the local runner (bundled breast-cancer data, ``--rounds`` boosting rounds, the
  config's default 200) is loaded with ``pipelines/serving/inference.py`` (``model_fn``) and each request goes
  through ``input_fn → predict_fn → output_fn`` exactly as the container calls them: CSV and JSON single rows,
  CSV batches of 100 and 1000 rows. This is the model's share of ``ModelLatency``; the container's HTTP
  front end and the network come on top.
* deployer: per event, the pure decisions (``parse_promotion`` + ``plan_deployment``; ``judge_endpoint``) and
  the whole ``start_deployment`` / ``check_deployment`` tasks over in-memory stub clients (no network), i.e.
  the Lambda's own compute per Step Functions task.

Prints a markdown table (p50/p99 in milliseconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlsettings.vocabulary import CHALLENGER, CHAMPION, PRODUCTION, PROMOTION_ACCEPTED, PROMOTION_SOURCE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "n": len(ordered)}


def timed(action: Callable[[], Any], repeats: int, warmup: int = 20) -> dict[str, float]:
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples)


# ------------------------------------------------------------------------------------------- scoring
def scoring(rounds: int, repeats: int) -> dict[str, dict[str, float]]:
    from pipelines.datasets import read_raw_csv, write_breast_cancer_csv
    from pipelines.local_run import run_local
    from pipelines.serving import inference

    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    data = write_breast_cancer_csv(workdir / "data.csv")
    run = run_local(workdir / "run", schema_path=ROOT / "pipelines/schemas/breast_cancer.json", data_csv=data,
                    hyperparameters={"num_round": rounds, "device": "cpu"}, threshold=0.5)
    if not run.succeeded:
        raise SystemExit(f"training failed: {run.failure}")
    model = inference.model_fn(run.paths["model_dir"])
    names = list(model.schema.feature_names)
    rows = read_raw_csv(data)[names].astype(str).values.tolist()

    def csv_body(count: int) -> str:
        return "\n".join(",".join(rows[i % len(rows)]) for i in range(count))

    def request(body: str, content_type: str) -> Callable[[], str]:
        return inference.transform_fn(model, body, content_type, content_type).body.decode

    json_row = json.dumps({"instances": [dict(zip(names, rows[0], strict=True))]})
    results = {
        "single row, CSV": timed(request(csv_body(1), "text/csv"), repeats),
        "single row, JSON": timed(request(json_row, "application/json"), repeats),
        "batch of 100 rows, CSV": timed(request(csv_body(100), "text/csv"), max(50, repeats // 3)),
        "batch of 1000 rows, CSV": timed(request(csv_body(1000), "text/csv"), max(20, repeats // 10), warmup=5),
    }
    return results


# ------------------------------------------------------------------------------------------- deployer
ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-prod-models/{}"


class StubSageMaker:
    """Answers the deployer's calls from memory: an InService A/B endpoint serving v1."""

    class exceptions:
        ClientError = RuntimeError

    def describe_endpoint(self, **_: Any) -> dict[str, Any]:
        return {"EndpointStatus": "InService", "EndpointConfigName": "cfg-1",
                "ProductionVariants": [{"VariantName": CHAMPION, "CurrentWeight": 90.0},
                                       {"VariantName": CHALLENGER, "CurrentWeight": 10.0}]}

    def describe_endpoint_config(self, **_: Any) -> dict[str, Any]:
        return {"ProductionVariants": [
            {"VariantName": v, "ModelName": f"m-{v}", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2,
             "InitialVariantWeight": w} for v, w in ((CHAMPION, 90.0), (CHALLENGER, 10.0))]}

    def describe_model(self, **_: Any) -> dict[str, Any]:
        return {"PrimaryContainer": {"ModelPackageName": ARN.format(1)}}

    def create_model(self, **_: Any) -> dict[str, Any]:
        return {}

    def create_endpoint_config(self, **_: Any) -> dict[str, Any]:
        return {}

    def update_endpoint(self, **_: Any) -> dict[str, Any]:
        return {}


class StubDynamoDb:
    def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}


class StubCloudWatch:
    def describe_alarms(self, **_: Any) -> dict[str, Any]:
        return {"MetricAlarms": []}


def deployer(repeats: int) -> dict[str, dict[str, float]]:
    import os

    from testkit.serving_world import deployer_environment

    env = deployer_environment(challenger=True)
    env["ENDPOINT_NAME"] = "mlops-prod"
    env["MODEL_PACKAGE_GROUP"] = "mlops-prod-models"
    os.environ.update({"AWS_DEFAULT_REGION": "eu-west-1"})
    from lambdas.deployer.settings import settings_from_environment
    from mlplatform.serving import deployment_flow
    from mlplatform.serving.deployment_flow import DeployerClients
    from mlplatform.serving.deployment_plan import parse_promotion, plan_deployment
    from mlplatform.serving.deployment_status import judge_endpoint
    from mlplatform.serving.endpoint_state import read_endpoint_state

    settings = settings_from_environment(env)
    event = {"source": PROMOTION_SOURCE, "detail-type": PROMOTION_ACCEPTED, "id": "e", "detail": {
        "model_package_group": "mlops-prod-models", "model_package_arn": ARN.format(2), "version": 2,
        "target_stage": PRODUCTION, "reason": "promotion", "requested_by": "bench"}}
    clients = DeployerClients(sagemaker=StubSageMaker(), runtime=None, s3=None, ssm=None, dynamodb=StubDynamoDb(),
                              cloudwatch=StubCloudWatch(), autoscaling=None)
    current = read_endpoint_state(clients.sagemaker, "mlops-prod")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    plan = deployment_flow.start_deployment(event, clients=clients, settings=settings, now=now, deployment_id="b")
    describe = {"EndpointStatus": "Updating", "EndpointConfigName": "cfg-1"}
    return {
        "plan (parse + plan_deployment, pure)": timed(
            lambda: plan_deployment(parse_promotion(event), current, None, settings, now=now, deployment_id="b"),
            repeats),
        "status (judge_endpoint, pure)": timed(
            lambda: judge_endpoint(describe=describe, target_config="cfg-2", deadline=now + timedelta(hours=1),
                                   now=now), repeats),
        "start_deployment task (stub clients)": timed(
            lambda: deployment_flow.start_deployment(event, clients=clients, settings=settings, now=now,
                                                     deployment_id="b"), repeats),
        "check_deployment task (stub clients)": timed(
            lambda: deployment_flow.check_deployment(plan, clients=clients, settings=settings, now=now), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="boosting rounds of the benchmarked model")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {"scoring": scoring(args.rounds, args.repeats), "deployer": deployer(args.repeats * 10)}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| what | p50 ms | p99 ms | samples |\n|---|---:|---:|---:|")
    for group, rows in results.items():
        for name, values in rows.items():
            print(f"| {group}: {name} | {values['p50']:.3f} | {values['p99']:.3f} | {values['n']:.0f} |")


if __name__ == "__main__":
    main()
