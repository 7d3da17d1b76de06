"""The newcomer's first run: the whole lifecycle on moto (server mode, on 127.0.0.1) and the bundled data.

Every step goes through the code that runs in production — the step scripts, the promotion gate, the
deployer's tasks, the inference Lambda, the drift monitor and the `mlops` commands; where moto lacks an
API the doubles in ``mlops.demo.moto_gaps`` stand in (named there, nowhere else). Lambda functions are
invoked only through their entry points (``lambdas.<function>.handler``'s handler functions, with the
function's environment variables, as the Lambda runtime does); the doubles sit at the network level (moto,
and botocore's request hooks for InvokeEndpoint), never inside a handler.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib
import io
import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlops import cli
from mlops.demo.moto_gaps import (
    AttributePatcher,
    ModelRuntime,
    RealisticRegistry,
    RuntimeRoute,
    patch_invoke_endpoint,
    patch_moto_registry,
    patch_update_endpoint,
)
from mlops.local_env import LOCAL_ACCOUNT, LocalEnvironment, provision
from mlops.resources import parameter_name
from mlops.training_run import train_local
from mlplatform.registry.deployment_ledger import DeploymentLedger
from stacks.config import EnvironmentConfig, to_plain
from stacks.naming import endpoint_name

APPROVER = "arn:aws:sts::123456789012:assumed-role/MLApprover/alice"
GATE = "arn:aws:sts::123456789012:assumed-role/PromotionGate/gate"
Printer = Callable[[str], None]


@dataclass
class DemoWorld:
    """What the demo created and observes."""

    env: LocalEnvironment
    registry: RealisticRegistry
    runtime: ModelRuntime
    gate: Any
    deployers: dict[str, Any]  # per served stage: that environment's deployer handler module
    endpoints: dict[str, str]  # per served stage: the endpoint its deployer deploys to
    route: RuntimeRoute  # where the functions' InvokeEndpoint calls go (the runtime, or the faulty API view)
    ledger_table: str = "mlops-demo-ledger"
    promotions_queue: str = ""
    results_queue: str = ""
    say: Printer = print
    metrics: Any = None
    responses: list[dict[str, Any]] = field(default_factory=list)
    drift_report: dict[str, Any] | None = None
    ab_report: dict[str, Any] | None = None
    page_messages: list[dict[str, Any]] = field(default_factory=list)
    page_queue: str = ""
    page_topic: str = ""
    ticket_queue: str = ""
    ticket_topic: str = ""
    inference_emf: list[str] = field(default_factory=list)  # what the inference Lambda printed (EMF)
    alarm_states: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)

    @property
    def config(self) -> EnvironmentConfig:
        return self.env.config

    def client(self, service: str) -> Any:
        return self.env.client(service)

    def ledger(self) -> DeploymentLedger:
        return DeploymentLedger(self.client("dynamodb"), self.ledger_table, self.env.model_package_group)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on a free loopback port; every boto3 client goes there; stopped even on failure."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's access log would drown the story
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION", "POWERTOOLS_TRACE_DISABLED",
                                            "POWERTOOLS_LOG_LEVEL")}
    url = f"http://127.0.0.1:{port}"
    os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"})
    try:
        yield url
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def build_world(config: EnvironmentConfig, staging: EnvironmentConfig, patcher: AttributePatcher) -> DemoWorld:
    """What `cdk deploy` would have created, in moto, plus observer queues for events and pages."""
    os.environ["AWS_DEFAULT_REGION"] = config.region
    registry = patch_moto_registry(patcher)
    patch_update_endpoint(patcher, region=config.region, endpoint_name=endpoint_name(config))
    env = provision(config)
    dynamodb, sns, sqs, events, ssm = (env.client(s) for s in ("dynamodb", "sns", "sqs", "events", "ssm"))
    ledger, idempotency = "mlops-demo-ledger", "mlops-demo-gate-idempotency"
    dynamodb.create_table(TableName=ledger, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                     {"AttributeName": "sk", "KeyType": "RANGE"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                {"AttributeName": "sk", "AttributeType": "S"}])
    dynamodb.create_table(TableName=idempotency, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    notices = sns.create_topic(Name="mlops-demo-promotions")["TopicArn"]
    page = sns.create_topic(Name="mlops-demo-page")["TopicArn"]
    ticket = sns.create_topic(Name="mlops-demo-ticket")["TopicArn"]
    page_url, page_arn = _queue(sqs, "mlops-demo-oncall")
    sns.subscribe(TopicArn=page, Protocol="sqs", Endpoint=page_arn)
    ticket_url, ticket_arn = _queue(sqs, "mlops-demo-tickets")
    sns.subscribe(TopicArn=ticket, Protocol="sqs", Endpoint=ticket_arn)
    promotions_url, promotions_arn = _queue(sqs, "mlops-demo-accepted-promotions")
    events.put_rule(Name="accepted-promotions", EventPattern=json.dumps(
        {"source": ["mlops.promotion"], "detail-type": ["Model Promotion Accepted"]}))
    events.put_targets(Rule="accepted-promotions", Targets=[{"Id": "deployer", "Arn": promotions_arn}])
    # The registry's DeploymentResults rule: every deployer's result goes to the gate's function.
    results_url, results_arn = _queue(sqs, "mlops-demo-deployment-results")
    events.put_rule(Name="deployment-results", EventPattern=json.dumps(
        {"source": ["mlops.deployment"], "detail-type": ["Model Deployment Result"]}))
    events.put_targets(Rule="deployment-results", Targets=[{"Id": "gate", "Arn": results_arn}])
    registry_environment = config.registry.registry_environment  # the CLI's status/promote/rollback act there
    for environment in sorted({config.name, registry_environment}):
        for key, value in {"ledger-table": ledger, "event-bus-name": "default", "promotion-topic-arn": notices,
                           "page-topic-arn": page, "ticket-topic-arn": ticket,
                           "model-package-group": env.model_package_group}.items():
            ssm.put_parameter(Name=parameter_name(environment, key), Value=value, Type="String", Overwrite=True)

    gate = _function("promotion_gate", {
        "MODEL_PACKAGE_GROUP": env.model_package_group, "LEDGER_TABLE": ledger, "IDEMPOTENCY_TABLE": idempotency,
        "PROMOTION_TOPIC_ARN": notices, "EVENT_BUS_NAME": "default",
        "STAGE_SERVERS": json.dumps({stage: {"environment": target.name, "account": LOCAL_ACCOUNT}
                                     for stage, target in (("Staging", staging), ("Production", config))})})

    # The endpoints' model containers: every InvokeEndpoint of every function's client is answered by the
    # runtime double (moto's canned answers would not exercise the golden checks or the fallbacks).
    runtime = ModelRuntime(region=config.region, capture_bucket=env.capture_bucket)
    route = patch_invoke_endpoint(patcher, runtime)
    # One registry (this environment's) and two deployers, as with a central registry: the staging
    # environment's endpoint serves Staging promotions, the production endpoint Production ones.
    deployers, endpoints = {}, {}
    for stage, target in (("Staging", staging), ("Production", config)):
        endpoints[stage] = endpoint_name(target)
        deployers[stage] = _function("deployer", {
            "ENVIRONMENT_NAME": target.name, "ENDPOINT_NAME": endpoint_name(target),
            "MODEL_PACKAGE_GROUP": env.model_package_group, "EVENT_BUS_NAME": "default",
            "MODEL_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/mlops-demo-model",
            "CAPTURE_DESTINATION_URI": f"s3://{env.capture_bucket}/endpoint", "ARTIFACT_BUCKET": env.artifact_bucket,
            "SERVING_SETTINGS": json.dumps(to_plain(target.serving)), "ROLLBACK_ALARM_NAMES": "[]",
            "SERVED_STAGES": stage, "POLL_SECONDS": "10"})
    return DemoWorld(env=env, registry=registry, runtime=runtime, gate=gate, deployers=deployers,
                     endpoints=endpoints, route=route, ledger_table=ledger, promotions_queue=promotions_url,
                     results_queue=results_url,
                     page_queue=page_url, page_topic=page, ticket_queue=ticket_url, ticket_topic=ticket)


def _function(name: str, environment: dict[str, str]) -> Any:
    """A Lambda function's handler module, imported afresh under the function's environment variables (the
    Lambda factory's two included), as a new execution environment of that function would import it: the
    module parses its environment once, at import, and keeps it with its clients."""
    os.environ.update({"POWERTOOLS_SERVICE_NAME": name, "POWERTOOLS_METRICS_NAMESPACE": "MLOps", **environment})
    sys.modules.pop(f"lambdas.{name}.handler", None)
    return importlib.import_module(f"lambdas.{name}.handler")


class _Context:
    function_name = "demo"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:demo"
    aws_request_id = "demo"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def settle(world: DemoWorld) -> list[str]:
    """Deliver the events SageMaker would have sent to the gate; then run the deployer for each accepted one."""
    outcomes = []
    while events := world.registry.take_events():
        with world.registry.acting_as(GATE):
            outcomes += [str(world.gate.handler(event, _Context()).get("outcome")) for event in events]
    sqs = world.client("sqs")
    while True:
        messages = sqs.receive_message(QueueUrl=world.promotions_queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            deploy(world, json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=world.promotions_queue, ReceiptHandle=message["ReceiptHandle"])
            with world.registry.acting_as(GATE):
                outcomes += _record_results(world)  # the gate's function records each deployer's result
            with world.registry.acting_as(GATE):  # the StageStatus update it made is judged too
                while more := world.registry.take_events():
                    outcomes += [str(world.gate.handler(e, _Context()).get("outcome")) for e in more]
    world.outcomes += outcomes
    return outcomes


def _record_results(world: DemoWorld) -> list[str]:
    """The deployers' results, as the registry's rule delivers them to the gate's function."""
    sqs, outcomes = world.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=world.results_queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            event = json.loads(message["Body"])
            # moto gap: its delivery leaves out the envelope's "account", which EventBridge sets to the account
            # the event was put in (AWS's documented event structure); the demo plays one account.
            event.setdefault("account", LOCAL_ACCOUNT)
            outcomes.append(str(world.gate.handler(event, _Context()).get("outcome")))
            sqs.delete_message(QueueUrl=world.results_queue, ReceiptHandle=message["ReceiptHandle"])
    return outcomes


def deploy(world: DemoWorld, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Each environment's deployer consumes the accepted promotion (and skips stages it does not serve)."""
    return [_deploy_one(deployer, event) for deployer in world.deployers.values()]


def _deploy_one(deployer: Any, event: dict[str, Any]) -> dict[str, Any]:
    """The deployer state machine's path, task by task (start → check → verify_and_record | record_failure),
    each task through its Lambda entry point with the state as Step Functions passes it (JSON)."""
    state = _task(deployer.start_deployment, event)
    if state.get("action") == "skip":
        return state
    for _ in range(5):
        state = _task(deployer.check_deployment, state)
        if state["status"]["decision"] != "wait":
            break
    if state["status"]["decision"] == "succeeded":
        return _task(deployer.verify_and_record, state)
    return _task(deployer.record_failure, state)


def _task(entry_point: Callable[[dict[str, Any], Any], dict[str, Any]], state: dict[str, Any]) -> dict[str, Any]:
    # What a task prints (its EMF deployment counts) goes to its log group in AWS; the demo's CloudWatch
    # story is the inference and drift metrics, so the deployer's stay out of it.
    with contextlib.redirect_stdout(io.StringIO()):
        result = entry_point(json.loads(json.dumps(state)), _Context())
    return dict(json.loads(json.dumps(result)))


def promote(world: DemoWorld, version: int, to: str) -> list[str]:
    """An approver's registry update (the same one as in Studio), then everything it sets off."""
    with world.registry.acting_as(APPROVER), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["promote", "--env", world.config.name, "--version", str(version), "--to", to])
    if code != 0:
        return [f"promote exited {code}"]
    return settle(world)


def serving(world: DemoWorld) -> dict[str, dict[str, str]]:
    """Per endpoint, which version each variant serves and its traffic weight."""
    from mlplatform.serving.endpoint_state import read_endpoint_state

    out: dict[str, dict[str, str]] = {}
    for endpoint in world.endpoints.values():
        state = read_endpoint_state(world.client("sagemaker"), endpoint)
        if state is None:
            continue
        described = world.client("sagemaker").describe_endpoint(EndpointName=endpoint)
        weights = {v["VariantName"]: v.get("CurrentWeight", 0) for v in described["ProductionVariants"]}
        out[endpoint] = {
            name: f"v{variant.model_package_arn.rsplit('/', 1)[-1]} (weight {weights.get(name, 0):g})"
            for name, variant in state.variants.items()}
    return out


def ledger_rows(world: DemoWorld, limit: int = 20) -> list[dict[str, Any]]:
    return [dataclasses.asdict(row) for row in world.ledger().recent_decisions(limit)]


def timestamp() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


def window_end() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    keys = sorted({k for row in rows for k in row})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def elapsed(start: float) -> str:
    return f"{time.perf_counter() - start:.1f} s"


# ------------------------------------------------------------------------------------------------ the story
@dataclass
class DemoOptions:
    out_dir: Path
    num_round: int = 100
    requests: int = 400
    say: Printer = print


def run_lifecycle(config: EnvironmentConfig, staging: EnvironmentConfig, options: DemoOptions) -> dict[str, Any]:
    """Steps 2-9 of the demo; returns a summary. Step failures are reported and the story goes on."""
    say = options.say
    summary: dict[str, Any] = {"steps": {}}
    options.out_dir.mkdir(parents=True, exist_ok=True)
    patcher = AttributePatcher()

    def step(number: int, title: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        say(f"[{number}] {title}")
        try:
            result = action()
        except Exception as err:
            say(f"    step {number} FAILED: {type(err).__name__}: {err}")
            summary["steps"][number] = {"title": title, "ok": False, "error": f"{type(err).__name__}: {err}"}
            return None
        summary["steps"][number] = {"title": title, "ok": True, "seconds": round(time.perf_counter() - started, 1)}
        return result

    def skip(numbers: range | tuple[int, ...], reason: str) -> None:
        for number in numbers:
            say(f"[{number}] step {number} skipped: {reason}")
            summary["steps"][number] = {"title": f"step {number}", "ok": False, "error": f"skipped: {reason}"}

    with moto_server() as url:
        try:
            world = step(2, f"moto server on {url}; creating what `cdk deploy` would", lambda: build_world(
                config, staging, patcher))
            if world is None:
                skip(range(3, 10), "the demo's AWS (step 2) could not be set up")
                return summary
            world.say = say
            say(f"    buckets, model package group {world.env.model_package_group}, ledger, gate, topics, alarms' "
                f"queues, two deployers")
            challenger = (f"a {config.serving.challenger_weight_percent:g} % Challenger"
                          if config.serving.challenger_enabled else "no Challenger")
            say(f"    the demo plays '{config.name}' (its cdk.json settings: {challenger}) with the "
                f"'{staging.name}' endpoint for Staging")
            v1 = step(3, "training version 1 on the bundled data (validate → … → quality gate → register)",
                      lambda: _train(world, options))
            if v1:
                step(4, "v1 → Staging → staging endpoint → health check → Production → production endpoint",
                     lambda: _promote_through(world, 1))
            else:
                skip((4,), "no version 1 to promote (step 3 failed)")
            v2 = step(5, "training version 2; through staging; it enters production as Challenger; traffic; A/B",
                      lambda: _challenger_and_traffic(world, options))
            step(6, "drift injected into part of the traffic → drift run → metrics → alarm → page",
                 lambda: _drift_and_page(world, options))
            step(7, "an illegal promotion: version 3 straight from Development to Production",
                 lambda: _illegal_skip(world, options))
            step(8, "rolling production back to the previous version", lambda: _rollback(world))
            step(9, f"writing the report folder {options.out_dir}", lambda: _report(world, options, summary))
            summary["versions"] = {"v1": v1, "v2": v2}
        finally:
            patcher.undo()
    return summary


def _train(world: DemoWorld, options: DemoOptions) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        outcome = train_local(world.env, num_round=options.num_round)
    gate = outcome.run.gate
    assert gate is not None and outcome.model_package is not None, outcome.run.failure
    options.say(f"    gate: {gate.metric} {gate.value:.4f} {gate.comparison} {gate.threshold} → passed; "
                f"registered version {outcome.model_package['version']} "
                f"({outcome.model_package['stage']}, {outcome.model_package['approval_status']})")
    return int(outcome.model_package["version"])


def _promote_through(world: DemoWorld, version: int) -> None:
    for stage in ("staging", "production"):
        outcomes = promote(world, version, stage)
        world.runtime.served.clear()
        world.say(f"    promote v{version} → {stage}: gate {', '.join(outcomes) or 'nothing to judge'}")
    for endpoint, variants in serving(world).items():
        world.say(f"    {endpoint}: " + ", ".join(f"{k} {v}" for k, v in variants.items()))


def _challenger_and_traffic(world: DemoWorld, options: DemoOptions) -> int:
    version = _train(world, options)
    _promote_through(world, version)
    rows = _bundled_rows()
    with _inference_function(world) as function:
        for index in range(options.requests):
            _call_api(world, function, [rows[index % len(rows)]], index)
    sources: dict[str, int] = {}
    for response in world.responses:
        sources[response["source"]] = sources.get(response["source"], 0) + 1
    world.say(f"    {options.requests} API requests: answered by " +
              ", ".join(f"{k} {v}" for k, v in sorted(sources.items())) +
              " (every 12th endpoint call fails on purpose: throttling, ModelError, timeout)")
    from mlops import serving_ops
    from stacks.naming import endpoint_name as name_of

    end = datetime.now(UTC) + timedelta(minutes=5)
    world.ab_report = serving_ops.ab_report(
        sagemaker_client=world.client("sagemaker"), cloudwatch_client=world.metrics, s3_client=world.client("s3"),
        endpoint=name_of(world.config), capture_uri=f"s3://{world.env.capture_bucket}/endpoint",
        start=end - timedelta(hours=2), end=end, n_features=len(rows[0]),
        sla_p99_ms=world.config.serving.sla.p99_latency_ms)
    recommendation = world.ab_report.get("recommendation", {})
    action = recommendation.get("action", recommendation) if isinstance(recommendation, dict) else recommendation
    world.say(f"    A/B report: recommendation {action}")
    return version


def _bundled_rows() -> list[list[str]]:
    import tempfile

    from pipelines.datasets import write_breast_cancer_csv

    path = write_breast_cancer_csv(Path(tempfile.mkdtemp(prefix="demo-data-")) / "data.csv")
    with path.open(encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        label = header.index("target")
        return [[v for i, v in enumerate(row) if i != label] for row in reader]


class FaultyRuntime:
    """The endpoint as the API sees it: every 12th call fails (throttling, ModelError, timeout in turn)."""

    def __init__(self, world: DemoWorld) -> None:
        self.world, self.calls = world, 0

    def invoke_endpoint(self, **request: Any) -> Any:
        from botocore.exceptions import ClientError, ReadTimeoutError

        self.calls += 1
        if self.calls % 12 == 0:
            kind = (self.calls // 12) % 3
            if kind == 2:
                raise ReadTimeoutError(endpoint_url="http://endpoint")
            code = ("ThrottlingException", "ModelError")[kind]
            raise ClientError({"Error": {"Code": code, "Message": "injected by the demo"}}, "InvokeEndpoint")
        answer = self.world.runtime.invoke_endpoint(**request)
        variant = answer["InvokedProductionVariant"]
        # ModelLatency as SageMaker reports it: the model's own time, measured by the runtime double.
        latency = self.world.runtime.model_latency_ms[variant][-1]
        self.world.metrics.latencies_ms.setdefault(variant, []).append(latency)
        return answer


@contextlib.contextmanager
def _inference_function(world: DemoWorld) -> Iterator[Any]:
    """The inference function in a new execution environment (its handler module imported afresh under its
    environment: the alarms watch this service's metrics), while its endpoint calls meet the faulty endpoint;
    afterwards InvokeEndpoint goes straight to the model runtime again."""
    from mlops.demo.moto_gaps import EndpointMetrics

    dynamodb, firehose = world.client("dynamodb"), world.client("firehose")
    for table, key in (("mlops-demo-breaker", "breaker_id"), ("mlops-demo-cache", "cache_key")):
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                                  KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                                  AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
    with contextlib.suppress(Exception):
        firehose.create_delivery_stream(
            DeliveryStreamName="mlops-demo-predictions", DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/firehose",
                                                "BucketARN": f"arn:aws:s3:::{world.env.capture_bucket}",
                                                "Prefix": "inference-api/"})
    world.metrics = EndpointMetrics(runtime=world.runtime)
    world.route.target = FaultyRuntime(world)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Dimension 'service' has already been added": reset on purpose
            yield _function("inference", {
                "ENDPOINT_NAME": endpoint_name(world.config), "DATA_SCHEMA_PATH": world.config.training.schema_file,
                # the schema path is relative to the bundle root, which is the repository here
                "LAMBDA_TASK_ROOT": str(Path(__file__).resolve().parents[2]),
                "BREAKER_TABLE_NAME": "mlops-demo-breaker", "RESPONSE_CACHE_TABLE_NAME": "mlops-demo-cache",
                "PREDICTION_LOG_STREAM_NAME": "mlops-demo-predictions", "SAFE_DEFAULT_PROBABILITY": "0.5",
                "FALLBACK_MODEL_BUCKET": world.env.artifact_bucket,
                "FALLBACK_MODEL_KEY": "serving/fallback_model.json",
                "BREAKER_FAILURE_THRESHOLD": "3", "BREAKER_COOLDOWN_SECONDS": "1"})
    finally:
        world.route.target = world.runtime


def _call_api(world: DemoWorld, function: Any, rows: list[list[str]], index: int) -> dict[str, Any]:
    event = {"version": "2.0", "routeKey": "POST /predict", "rawPath": "/predict",
             "headers": {"content-type": "application/json"},
             "requestContext": {"requestId": f"demo-{index}", "http": {"method": "POST", "path": "/predict"}},
             "body": json.dumps({"instances": [[float(v) for v in row] for row in rows],
                                 "inference_id": f"demo-{index}"}), "isBase64Encoded": False}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # EMF lines, put into CloudWatch later by the EMF bridge
        response = function.handler(event, _Context())
    world.inference_emf.append(printed.getvalue())
    body: dict[str, Any] = json.loads(response["body"])
    if response["statusCode"] == 200:
        world.responses.append(body)
    return body


def _drift_and_page(world: DemoWorld, options: DemoOptions) -> None:
    from mlops.demo.moto_gaps import evaluate_alarm, publish_emf

    rows = _bundled_rows()
    shifted = [[f"{float(v) * (1.6 if i in (0, 2, 3, 20, 22, 23) else 1.0):.6g}" for i, v in enumerate(row)]
               for row in rows]
    with _inference_function(world) as function:
        for index in range(options.requests):
            _call_api(world, function, [shifted[index % len(shifted)]], 10_000 + index)
    environment = {"ENDPOINT_NAME": endpoint_name(world.config), "CAPTURE_BUCKET": world.env.capture_bucket,
                   "CAPTURE_PREFIX": "endpoint", "PREDICTION_LOG_PREFIX": "inference-api",
                   "REPORT_BUCKET": world.env.artifact_bucket, "REPORT_PREFIX": "drift-reports",
                   "VARIANT_PARAMETER_PREFIX": f"/mlops/{world.config.name}/variant", "WINDOW_HOURS": "2",
                   "DRIFT_THRESHOLDS": json.dumps({"min_rows": 100}), "DRIFT_WORKERS": "1"}
    handler = _function("drift_monitor", environment)
    # Powertools keeps metrics state (default dimensions included) per process, shared by every Metrics
    # object; the inference "function" ran in this same process (in AWS each function has its own), so the
    # drift function's service dimension is set back here, through Powertools, not through the handler.
    from aws_lambda_powertools import Metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Dimension 'service' has already been added": that is the point
        Metrics(namespace="MLOps").set_default_dimensions(service="drift_monitor")
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        result = handler.lambda_handler({"time": window_end().isoformat()}, _Context())
    cloudwatch, sns = world.client("cloudwatch"), world.client("sns")
    published = publish_emf(cloudwatch, captured.getvalue())
    bucket, _, key = str(result["report_uri"]).removeprefix("s3://").partition("/")
    world.drift_report = json.loads(world.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    champion = world.drift_report["variants"].get("Champion", {}).get("drift", {})
    world.say(f"    drift run: {champion.get('rows')} rows, drifted features "
              f"{[n for n, f in champion.get('features', {}).items() if f.get('drifted')]}; "
              f"{published} metrics published")
    emf = publish_emf(cloudwatch, "".join(world.inference_emf))
    world.say(f"    {emf} inference API metric values (EMF) put into CloudWatch by the demo's EMF bridge")
    for name in create_alarms(world):
        evaluation = evaluate_alarm(cloudwatch, sns, name)
        world.alarm_states.append(evaluation)
        world.say(f"    alarm {name}: {evaluation['state']} (value {evaluation['value']})")
    sqs = world.client("sqs")
    for severity, queue in (("ticket", world.ticket_queue), ("page", world.page_queue)):
        for message in _drain(sqs, queue):
            notice = json.loads(json.loads(message["Body"])["Message"])
            if severity == "page":
                world.page_messages.append(notice)
                world.say(f"    SNS message that pages on-call: {json.dumps(notice)}")
            else:
                world.say(f"    ticket: {notice['AlarmName']} — {notice['AlarmDescription']}")


def _drain(sqs: Any, queue: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return messages


def create_alarms(world: DemoWorld) -> list[str]:
    """The alarms stacks/monitoring.py defines for the metrics the demo publishes — same metrics,
    dimensions, thresholds, periods, severities and descriptions; named ``<env>-<construct id>`` because
    the stack lets CloudFormation name them. Latency, error-rate and health-check alarms are left out: the
    demo does not publish the AWS/SageMaker metrics they watch."""
    config, cloudwatch = world.config, world.client("cloudwatch")
    endpoint, alarms, drift = endpoint_name(config), config.monitoring.alarms, config.monitoring.drift
    topics = {"page": world.page_topic, "ticket": world.ticket_topic}
    gte = "GreaterThanOrEqualToThreshold"
    names: list[str] = []

    def describe(severity: str, summary: str, runbook: str) -> str:
        return f"[{severity}] {config.name}: {summary} Runbook: docs/runbooks/{runbook}.md"

    def drift_alarm(variant: str, construct_id: str, metric: str, severity: str, runbook: str, summary: str) -> None:
        name = f"{config.name}-{construct_id}"
        cloudwatch.put_metric_alarm(
            AlarmName=name, AlarmDescription=describe(severity, summary, runbook), Namespace="MLOps",
            MetricName=metric, Statistic="Maximum", Period=86_400, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator=gte, TreatMissingData="notBreaching",
            Dimensions=[{"Name": "Endpoint", "Value": endpoint}, {"Name": "Variant", "Value": variant},
                        {"Name": "service", "Value": "drift_monitor"}],
            AlarmActions=[topics[severity]], OKActions=[topics[severity]])
        names.append(name)

    for variant in ("Champion", "Challenger"):
        drift_alarm(variant, f"{variant}DataDrift", "DriftDetected", "ticket", "data-drift",
                    f"{variant}: drifted input features carry at least {drift.weighted_drift_alarm:.0%} of the "
                    "model's feature importance.")
        drift_alarm(variant, f"{variant}PredictionShift", "PredictionDrifted", "ticket", "prediction-shift",
                    f"{variant}: the predicted-probability distribution shifted.")
        drift_alarm(variant, f"{variant}QualityDegraded", "QualityDegraded", "page", "quality-degradation",
                    f"{variant}: ground-truth quality more than {alarms.quality_margin:g} below the registered "
                    "evaluation metric.")

    def inference(query_id: str, metric: str) -> dict[str, Any]:
        return {"Id": query_id, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "MLOps", "MetricName": metric,
                       "Dimensions": [{"Name": "service", "Value": "inference"}]},
            "Period": 300, "Stat": "Sum"}}

    name = f"{config.name}-FallbackRate"
    cloudwatch.put_metric_alarm(
        AlarmName=name, EvaluationPeriods=3, Threshold=alarms.fallback_rate_percent, ComparisonOperator=gte,
        TreatMissingData="notBreaching", AlarmActions=[world.page_topic], OKActions=[world.page_topic],
        AlarmDescription=describe("page", f"At least {alarms.fallback_rate_percent:g}% of API answers came "
                                          "from a fallback.", "fallback-rate"),
        Metrics=[inference("degraded", "DegradedResponses"), inference("responses", "Responses"),
                 {"Id": "expression", "Expression": "IF(responses > 0, 100 * degraded / responses, 0)",
                  "Label": "API answers not served by the endpoint (%)", "ReturnData": True}])
    names.append(name)
    return names


def _illegal_skip(world: DemoWorld, options: DemoOptions) -> None:
    version = _train(world, options)
    outcomes = promote(world, version, "production")
    sagemaker = world.client("sagemaker")
    (arn,) = [p["ModelPackageArn"] for p in sagemaker.list_model_packages(
        ModelPackageGroupName=world.env.model_package_group)["ModelPackageSummaryList"]
        if p.get("ModelPackageVersion") == version]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    lifecycle = package.get("ModelLifeCycle", {})
    world.say(f"    gate: {', '.join(outcomes)}; v{version} is back in {lifecycle.get('Stage')} "
              f"({package.get('ModelApprovalStatus')})")
    latest = ledger_rows(world, 1)
    if latest:
        row = latest[0]
        world.say(f"    ledger: {row.get('decided_at')} v{row.get('version')} {row.get('from_stage')} → "
                  f"{row.get('to_stage')}: {row.get('outcome')} — {row.get('reason')}")


def _rollback(world: DemoWorld) -> None:
    with world.registry.acting_as(APPROVER), contextlib.redirect_stdout(io.StringIO()) as out:
        code = cli.main(["rollback", "--env", world.config.name])
    world.say(f"    mlops rollback: exit {code}; {out.getvalue().strip().splitlines()[-1] if out.getvalue() else ''}")
    settle(world)
    for endpoint, variants in serving(world).items():
        world.say(f"    {endpoint}: " + ", ".join(f"{k} {v}" for k, v in variants.items()))


def _report(world: DemoWorld, options: DemoOptions, summary: dict[str, Any]) -> None:
    from mlops.demo import report

    written = report.write(options.out_dir, world=world, summary=summary)
    world.say(f"    {len(written)} files in {options.out_dir}")
