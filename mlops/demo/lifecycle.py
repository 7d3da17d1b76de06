"""The newcomer's first run: the whole lifecycle on moto (server mode, on 127.0.0.1) and the bundled data, in
three accounts as cdk.json's default topology deploys it: the registry environment (dev) in 111111111111,
staging in 222222222222 and prod in 333333333333.

Every step goes through the code that runs in production — the step scripts, the promotion gate, the
deployer's tasks, the inference Lambda, the drift monitor and the `mlops` commands; where moto lacks an
API the doubles in ``testkit.moto_gaps`` stand in (named there, nowhere else). Lambda functions are
invoked only through their entry points (``lambdas.<function>.handler``'s handler functions, with the
function's environment variables and the credentials of a role in its environment's account, as the Lambda
runtime does); the doubles sit at the network level (moto, and botocore's request hooks for InvokeEndpoint),
never inside a handler. moto keeps each account's state apart; credentials come from STS AssumeRole into a
role of that account, and every cross-account hop (promotions forwarded from the registry's bus to a
consumer's, results forwarded back, a consumer reading the registry's packages and artifacts) goes through
the same calls a real deployment makes. moto checks no trust, resource or bus policy: those are checked
offline by tests/infra/test_accounts.py.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import importlib
import io
import json
import os
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlcore.s3_uri import split_s3_uri
from mlops import cli
from mlops.local_env import LocalEnvironment, provision
from mlops.resources import parameter_name
from mlops.training_run import train_local
from mlplatform.registry.deployment_ledger import DeploymentLedger
from mlsettings.config import EnvironmentConfig
from mlsettings.functions.contracts import (
    DeployerEnvironment,
    DriftMonitorEnvironment,
    GateEnvironment,
    InferenceEnvironment,
)
from mlsettings.naming import consumer_role_name, endpoint_name, event_bus_arn
from mlsettings.vocabulary import (
    CHALLENGER,
    CHAMPION,
    DEPLOYMENT_RESULT,
    NAMESPACE,
    PAGE,
    PRODUCTION,
    PROMOTION_ACCEPTED,
    PROMOTION_SOURCE,
    RESULT_SOURCE,
    STAGING,
    TICKET,
    Metric,
    Published,
)
from testkit.moto_gaps import (
    AttributePatcher,
    ModelRuntime,
    RealisticRegistry,
    RuntimeRoute,
    boto3_session,
    patch_cross_account_packages,
    patch_event_envelopes,
    patch_invoke_endpoint,
    patch_moto_registry,
    patch_update_endpoint,
)

# The accounts the demo plays: the registry environment's, the Staging server's, the Production server's.
REGISTRY_ACCOUNT, STAGING_ACCOUNT, PROD_ACCOUNT = "111111111111", "222222222222", "333333333333"
STAGES = (STAGING, PRODUCTION)
# The identities in the registry's account, as the registry double records them (LastModifiedBy, CreatedBy).
APPROVER = f"arn:aws:sts::{REGISTRY_ACCOUNT}:assumed-role/MLApprover/alice"
GATE = f"arn:aws:sts::{REGISTRY_ACCOUNT}:assumed-role/PromotionGate/gate"
TRAINER = f"arn:aws:sts::{REGISTRY_ACCOUNT}:assumed-role/DataScientist/alice"
# The demo's own role in each account: what `cdk deploy` would create, and what the story reads back.
DEMO_ROLE = "mlops-demo"
Printer = Callable[[str], None]


_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# boto3 default sessions by the credentials they resolve (from the environment): one per identity, reused.
_DEFAULT_SESSIONS: dict[tuple[str | None, ...], Any] = {}


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with these variables (a function's environment, credentials), put back afterwards.
    boto3's default session keeps the credentials it resolved first, so with credentials given here it is
    one for them while inside (boto3.client() inside uses them), and the previous one again afterwards."""
    import boto3

    saved = {key: os.environ.get(key) for key in variables}
    saved_session = boto3.DEFAULT_SESSION
    os.environ.update(variables)
    if any(key in variables for key in _CREDENTIAL_VARIABLES):
        identity = tuple(os.environ.get(key) for key in _CREDENTIAL_VARIABLES)
        if identity not in _DEFAULT_SESSIONS:
            _DEFAULT_SESSIONS[identity] = boto3_session()  # resolves exactly these from the environment
        boto3.DEFAULT_SESSION = _DEFAULT_SESSIONS[identity]
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        boto3.DEFAULT_SESSION = saved_session


@dataclass
class DemoAccount:
    """One account of the demo: an environment (its config carries the account id) and credentials into
    it, from STS AssumeRole of a role there (``sts``: moto's default account, where the demo starts)."""

    config: EnvironmentConfig
    sts: Any
    env: LocalEnvironment | None = None  # its buckets and published names, once provisioned
    _credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    _sessions: dict[str, Any] = field(default_factory=dict)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def account(self) -> str:
        return str(self.config.account)

    @property
    def local(self) -> LocalEnvironment:
        assert self.env is not None, f"{self.name} is not provisioned"
        return self.env

    def credentials(self, role: str = DEMO_ROLE, session_name: str = "demo") -> dict[str, str]:
        """Temporary credentials of ``role`` in this account, as environment variables (one AssumeRole each)."""
        key = f"{role}/{session_name}"
        if key not in self._credentials:
            answer = self.sts.assume_role(RoleArn=f"arn:aws:iam::{self.account}:role/{role}",
                                          RoleSessionName=session_name)["Credentials"]
            self._credentials[key] = {"AWS_ACCESS_KEY_ID": answer["AccessKeyId"],
                                      "AWS_SECRET_ACCESS_KEY": answer["SecretAccessKey"],
                                      "AWS_SESSION_TOKEN": answer["SessionToken"]}
        return self._credentials[key]

    def acting(self, role: str = DEMO_ROLE, session_name: str = "demo") -> contextlib.AbstractContextManager[None]:
        """Code inside runs with ``role``'s credentials in this account (boto3's chain reads them)."""
        return environment(self.credentials(role, session_name))

    def client(self, service: str, role: str = DEMO_ROLE) -> Any:
        """A client with ``role``'s credentials in this account (one per service and role)."""
        if role not in self._sessions:
            variables = self.credentials(role)
            self._sessions[role] = boto3_session(
                aws_access_key_id=variables["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=variables["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=variables["AWS_SESSION_TOKEN"], region_name=self.config.region)
        if (service, role) not in self._clients:
            self._clients[(service, role)] = self._sessions[role].client(service)
        return self._clients[(service, role)]


@dataclass
class DemoFunction:
    """A Lambda function: its handler module (imported under its environment) and that environment — its
    variables and the credentials of its role in its account — present again around every invocation."""

    name: str
    module: Any
    environment: dict[str, str]
    account: str

    def invoke(self, entry_point: str, event: Any) -> Any:
        with environment(self.environment):
            return getattr(self.module, entry_point)(event, _Context(self.name, self.account))


@dataclass
class DemoWorld:
    """What the demo created and observes."""

    registry: DemoAccount  # the registry environment's account: group, ledger, gate, training
    consumers: dict[str, DemoAccount]  # per served stage: the account of the environment that serves it
    registry_double: RealisticRegistry
    runtime: ModelRuntime
    gate: DemoFunction
    deployers: dict[str, DemoFunction]  # per served stage: that environment's deployer
    endpoints: dict[str, str]  # per served stage: the endpoint its deployer deploys to
    route: RuntimeRoute  # where the functions' InvokeEndpoint calls go (the runtime, or the faulty API view)
    ledger_table: str = "mlops-demo-ledger"
    promotion_queues: dict[str, str] = field(default_factory=dict)  # per stage: its deployer rule's target
    arrival_queues: dict[str, str] = field(default_factory=dict)  # per stage: every promotion on that bus
    results_queue: str = ""  # in the registry's account: its DeploymentResults rule's target
    hops: list[dict[str, Any]] = field(default_factory=list)  # every cross-account event, as it arrived
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
    account_check: dict[str, Any] = field(default_factory=dict)

    @property
    def prod(self) -> DemoAccount:
        """The production environment's account: its endpoint takes the API traffic, drift and alarms."""
        return self.consumers[PRODUCTION]

    @property
    def config(self) -> EnvironmentConfig:
        """The production environment the demo serves (its cdk.json settings: Challenger, alarms)."""
        return self.prod.config

    @property
    def accounts(self) -> dict[str, DemoAccount]:
        return {account.name: account for account in (self.registry, *self.consumers.values())}

    def ledger(self) -> DeploymentLedger:
        return DeploymentLedger(self.registry.client("dynamodb"), self.ledger_table,
                                self.registry.local.model_package_group)


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
                                            "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                                            "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_LOG_LEVEL")}
    url = f"http://127.0.0.1:{port}"
    os.environ.pop("AWS_SESSION_TOKEN", None)
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


def _rule(events: Any, name: str, pattern: dict[str, Any], target: dict[str, str]) -> None:
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[target])


def _admit(events: Any, bus_arn: str, account: str, source: str, statement_id: str) -> None:
    """The bus policy the stacks give a default bus (E1/E2 in docs/ACCOUNTS.md); moto stores, never enforces it."""
    events.put_permission(EventBusName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": statement_id, "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "events:PutEvents", "Resource": bus_arn, "Condition": {"StringEquals": {"events:source": source}}}]}))


def demo_accounts(config: EnvironmentConfig, staging: EnvironmentConfig,
                  registry: EnvironmentConfig) -> dict[str, EnvironmentConfig]:
    """The three environments with the demo's account ids (everything else as cdk.json has it)."""
    if config.registry.registry_environment != registry.name or staging.registry.registry_environment != registry.name \
            or not registry.is_registry:
        raise ValueError(f"{config.name!r} and {staging.name!r} must deploy from registry environment "
                         f"{registry.name!r}")
    if tuple(staging.serving.served_stages) != (STAGING,) or tuple(config.serving.served_stages) != (PRODUCTION,):
        raise ValueError(f"the demo needs {staging.name!r} serving Staging and {config.name!r} serving Production; "
                         f"they serve {list(staging.serving.served_stages)} and {list(config.serving.served_stages)}")
    return {"registry": dataclasses.replace(registry, account=REGISTRY_ACCOUNT),
            STAGING: dataclasses.replace(staging, account=STAGING_ACCOUNT),
            PRODUCTION: dataclasses.replace(config, account=PROD_ACCOUNT)}


def cli_project_file(configs: Mapping[str, EnvironmentConfig], folder: Path) -> Path:
    """A copy of the project's cdk.json with the demo's account ids, for the `mlops` commands the demo runs:
    they then check the caller's account as they do against AWS (the registry's, for status/promote/rollback)."""
    from mlops.project_config import read_context

    context = copy.deepcopy(read_context())
    for config in configs.values():
        context["environments"][config.name]["account"] = config.account
    path = folder / "cdk.json"
    path.write_text(json.dumps({"context": context}, indent=1), encoding="utf-8")
    return path


def build_world(configs: Mapping[str, EnvironmentConfig], patcher: AttributePatcher) -> DemoWorld:
    """What `cdk deploy` of the three environments would have created, each in its account, in moto; plus
    observer queues for events and pages."""
    registry_config, config = configs["registry"], configs[PRODUCTION]
    os.environ["AWS_DEFAULT_REGION"] = config.region
    double = patch_moto_registry(patcher)
    double.actor = TRAINER
    patch_cross_account_packages(patcher)
    patch_event_envelopes(patcher)
    patch_update_endpoint(patcher, account=PROD_ACCOUNT, region=config.region, endpoint_name=endpoint_name(config))
    # The endpoints' model containers: every InvokeEndpoint of every function's client is answered by the
    # runtime double (moto's canned answers would not exercise the golden checks or the fallbacks), from the
    # caller's account, capturing into that environment's capture bucket.
    runtime = ModelRuntime(region=config.region)
    route = patch_invoke_endpoint(patcher, runtime)
    sts = boto3_session(region_name=config.region).client("sts")  # moto's default account: the demo's start
    hub = DemoAccount(registry_config, sts)
    consumers = {stage: DemoAccount(configs[stage], sts) for stage in STAGES}
    with hub.acting():
        hub.env = provision(registry_config)
    for consumer in consumers.values():
        with consumer.acting():
            consumer.env = provision(consumer.config, registry_resources=False)
        runtime.capture_buckets[endpoint_name(consumer.config)] = consumer.local.capture_bucket
    group = hub.local.model_package_group
    registry_bus = event_bus_arn(registry_config, hub.account)

    gate, ledger, results_url = _registry_account(hub, consumers, registry_config)
    deployers, endpoints, promotion_queues, arrival_queues = _consumer_accounts(hub, consumers, registry_bus, group)
    page, ticket, page_url, ticket_url = _alerting(consumers[PRODUCTION], config)
    return DemoWorld(registry=hub, consumers=consumers, registry_double=double, runtime=runtime, gate=gate,
                     deployers=deployers, endpoints=endpoints, route=route, ledger_table=ledger,
                     promotion_queues=promotion_queues, arrival_queues=arrival_queues, results_queue=results_url,
                     page_queue=page_url, page_topic=page, ticket_queue=ticket_url, ticket_topic=ticket)


def _registry_account(hub: DemoAccount, consumers: Mapping[str, DemoAccount], registry_config: EnvironmentConfig
                      ) -> tuple[Any, str, str]:
    """The registry's account (dev/Registry): ledger, gate, notices, the rules of every hop. Returns the gate,
    the ledger table and the queue of deployment results."""
    group = hub.local.model_package_group
    registry_bus = event_bus_arn(registry_config, hub.account)
    dynamodb, sns, sqs, events, ssm = (hub.client(s) for s in ("dynamodb", "sns", "sqs", "events", "ssm"))
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
    # Results from every consumer account reach the gate's function (here: a queue the demo drains into it).
    results_url, results_arn = _queue(sqs, "mlops-demo-deployment-results")
    _rule(events, "DeploymentResults", {"source": [RESULT_SOURCE], "detail-type": [DEPLOYMENT_RESULT],
                                        "detail": {"model_package_group": [group]}},
          {"Id": "gate", "Arn": results_arn})
    for stage, consumer in consumers.items():
        _admit(events, registry_bus, consumer.account, RESULT_SOURCE,
               f"mlops-{registry_config.name}-results-from-{consumer.account}")
        rule = f"PromotionsTo{consumer.name.title().replace('-', '')}"
        _rule(events, rule, {"source": [PROMOTION_SOURCE], "detail-type": [PROMOTION_ACCEPTED],
                             "detail": {"model_package_group": [group], "target_stage": [stage]}},
              {"Id": "consumer-bus", "Arn": event_bus_arn(consumer.config, consumer.account),
               "RoleArn": f"arn:aws:iam::{hub.account}:role/mlops-{registry_config.name}-{rule}"})
    for key, value in {Published.LEDGER_TABLE: ledger, Published.EVENT_BUS_NAME: "default",
                       Published.PROMOTION_TOPIC_ARN: notices,
                       Published.REGISTRY_ENVIRONMENT: registry_config.name}.items():
        ssm.put_parameter(Name=parameter_name(registry_config.name, key), Value=value, Type="String",
                          Overwrite=True)
    gate = _function("promotion_gate", hub, GateEnvironment(
        model_package_group=group, ledger_table=ledger, idempotency_table=idempotency, promotion_topic_arn=notices,
        event_bus_name="default", protected_production_versions=registry_config.registry.protected_production_versions,
        # Whose results count: per stage the one environment that serves it, in its (the demo's) account.
        stage_servers={stage: {"environment": consumer.name, "account": consumer.account}
                       for stage, consumer in consumers.items()}).to_env(),
        role="PromotionGate", session_name="gate")

    return gate, ledger, results_url


def _consumer_accounts(hub: DemoAccount, consumers: Mapping[str, DemoAccount], registry_bus: str, group: str
                       ) -> tuple[dict[str, Any], dict[str, str], dict[str, str], dict[str, str]]:
    """Each consumer's account: its bus admits the registry's promotions, its deployer rule, its results rule.
    Returns (deployers, endpoints, promotion queues, arrival queues) per stage."""
    deployers: dict[str, Any] = {}
    endpoints: dict[str, str] = {}
    promotion_queues: dict[str, str] = {}
    arrival_queues: dict[str, str] = {}
    for stage, consumer in consumers.items():
        target, local = consumer.config, consumer.local
        sqs, events, ssm = (consumer.client(s) for s in ("sqs", "events", "ssm"))
        bus = event_bus_arn(target, consumer.account)
        _admit(events, bus, hub.account, PROMOTION_SOURCE, f"mlops-{target.name}-promotions-from-{hub.name}")
        promotion_queues[stage], promotions_arn = _queue(sqs, "mlops-demo-accepted-promotions")
        _rule(events, "AcceptedPromotions", {"source": [PROMOTION_SOURCE], "detail-type": [PROMOTION_ACCEPTED],
                                             "detail": {"model_package_group": [group], "target_stage": [stage]}},
              {"Id": "deployer", "Arn": promotions_arn})
        # The demo's observer: every promotion that reaches this bus, whichever stage (none but its own should).
        arrival_queues[stage], arrivals_arn = _queue(sqs, "mlops-demo-arrived-promotions")
        _rule(events, "DemoArrivedPromotions", {"source": [PROMOTION_SOURCE]}, {"Id": "observer", "Arn": arrivals_arn})
        _rule(events, "ResultsToTheRegistry", {"source": [RESULT_SOURCE], "detail-type": [DEPLOYMENT_RESULT],
                                               "detail": {"model_package_group": [group]}},
              {"Id": "registry-bus", "Arn": registry_bus,
               "RoleArn": f"arn:aws:iam::{consumer.account}:role/mlops-{target.name}-ResultsToTheRegistry"})
        for key, value in {Published.EVENT_BUS_NAME: "default", Published.REGISTRY_ENVIRONMENT: hub.name}.items():
            ssm.put_parameter(Name=parameter_name(target.name, key), Value=value, Type="String", Overwrite=True)
        endpoints[stage] = endpoint_name(target)
        # The serving stack's contract, with the demo's two differences: no rollback alarms (moto's alarms never
        # change state during a rollout) and a 10 s poll (the demo's compressed time).
        contract = DeployerEnvironment.for_config(
            target, model_execution_role_arn=f"arn:aws:iam::{consumer.account}:role/"
                                             f"{consumer_role_name(target, 'model')}",
            artifact_bucket=local.artifact_bucket, capture_bucket=local.capture_bucket,
            kms_key_arn=local.kms_key_arn)
        deployers[stage] = _function("deployer", consumer, dataclasses.replace(
            contract, rollback_alarm_names=(), poll_seconds=10).to_env(), role=consumer_role_name(target, "deployer"))

    return deployers, endpoints, promotion_queues, arrival_queues


def _alerting(production: DemoAccount, config: EnvironmentConfig) -> tuple[str, str, str, str]:
    """The production environment's alerting: its own page and ticket topics, and queues to read them back.
    Returns (page topic, ticket topic, page queue, ticket queue)."""
    sns, sqs, ssm = (production.client(s) for s in ("sns", "sqs", "ssm"))
    page = sns.create_topic(Name="mlops-demo-page")["TopicArn"]
    ticket = sns.create_topic(Name="mlops-demo-ticket")["TopicArn"]
    page_url, page_arn = _queue(sqs, "mlops-demo-oncall")
    sns.subscribe(TopicArn=page, Protocol="sqs", Endpoint=page_arn)
    ticket_url, ticket_arn = _queue(sqs, "mlops-demo-tickets")
    sns.subscribe(TopicArn=ticket, Protocol="sqs", Endpoint=ticket_arn)
    for key, value in {Published.topic_arn(PAGE): page, Published.topic_arn(TICKET): ticket}.items():
        ssm.put_parameter(Name=parameter_name(config.name, key), Value=value, Type="String", Overwrite=True)
    return page, ticket, page_url, ticket_url


def _function(name: str, account: DemoAccount, variables: dict[str, str], *, role: str,
              session_name: str = "demo") -> DemoFunction:
    """A Lambda function's handler module, imported afresh under the function's environment variables (the
    Lambda factory's two included) and its role's credentials, as a new execution environment of that function
    would import it: the module parses its environment once, at import, and keeps it with its clients (made at
    import or first use, so with these credentials: they are present around every invocation too)."""
    environment_ = {**variables, **account.credentials(role, session_name)}
    with environment(environment_):
        sys.modules.pop(f"lambdas.{name}.handler", None)
        module = importlib.import_module(f"lambdas.{name}.handler")
    return DemoFunction(name=name, module=module, environment=environment_, account=account.account)


class _Context:
    memory_limit_in_mb = 512
    aws_request_id = "demo"

    def __init__(self, function_name: str = "demo", account: str = REGISTRY_ACCOUNT) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:{account}:function:{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def settle(world: DemoWorld) -> list[str]:
    """Deliver the events SageMaker would have sent to the gate; then, per consumer account, run its deployer
    for each accepted promotion its bus received, and hand each result that reached the registry's bus to
    the gate's function."""
    outcomes = _judge_changes(world)
    while delivered := _accepted_promotions(world):
        for stage, event in delivered:
            state = _deploy_one(world.deployers[stage], event)
            if state.get("action") == "skip":
                world.say(f"      the {world.consumers[stage].name} deployer skipped it: {state.get('skip_reason')}")
            outcomes += _record_results(world)  # the gate's function records each deployer's result
            outcomes += _judge_changes(world)  # the StageStatus update it made is judged too
    world.outcomes += outcomes
    return outcomes


def _judge_changes(world: DemoWorld) -> list[str]:
    outcomes = []
    with world.registry_double.acting_as(GATE):
        while events := world.registry_double.take_events():
            outcomes += [str(world.gate.invoke("handler", event).get("outcome")) for event in events]
    return outcomes


def _accepted_promotions(world: DemoWorld) -> list[tuple[str, dict[str, Any]]]:
    """What each consumer's deployer rule delivered; every promotion that reached a consumer's bus is a hop."""
    delivered = []
    names = {account.account: account.name for account in world.accounts.values()}
    for stage, consumer in world.consumers.items():
        sqs = consumer.client("sqs")
        for message in _drain(sqs, world.arrival_queues[stage]):
            event = json.loads(message["Body"])
            detail, sender = event.get("detail", {}), str(event.get("account"))
            world.hops.append({"event": PROMOTION_ACCEPTED, "version": detail.get("version"),
                               "stage": detail.get("target_stage"), "from": sender,
                               "from_environment": names.get(sender, "?"), "to": consumer.account,
                               "to_environment": consumer.name})
            world.say(f"    promotion v{detail.get('version')} → {detail.get('target_stage')}: "
                      f"{names.get(sender, '?')} {sender} → {consumer.name} {consumer.account}")
        delivered += [(stage, json.loads(m["Body"])) for m in _drain(sqs, world.promotion_queues[stage])]
    return delivered


def _record_results(world: DemoWorld) -> list[str]:
    """The deployers' results, as the registry's rule delivers them to the gate's function. Their ``account``
    is the sender's: EventBridge sets it where the result was put (moto_gaps.patch_event_envelopes)."""
    outcomes = []
    with world.registry_double.acting_as(GATE):
        for message in _drain(world.registry.client("sqs"), world.results_queue):
            event = json.loads(message["Body"])
            answer = world.gate.invoke("handler", event)
            outcomes.append(str(answer.get("outcome")))
            detail = event.get("detail", {})
            world.hops.append({"event": DEPLOYMENT_RESULT, "version": detail.get("version"),
                               "stage": detail.get("stage"), "outcome": detail.get("outcome"),
                               "health_check": detail.get("health_check"), "from": event.get("account"),
                               "from_environment": detail.get("environment"), "to": world.registry.account,
                               "to_environment": world.registry.name, "gate": answer.get("outcome")})
            world.say(f"      result {detail.get('outcome')}/{detail.get('health_check')}: "
                      f"{detail.get('environment')} {event.get('account')} → registry {world.registry.name} "
                      f"{world.registry.account}: {answer.get('outcome')}")
    return outcomes


def _deploy_one(deployer: DemoFunction, event: dict[str, Any]) -> dict[str, Any]:
    """The deployer state machine's path, task by task (start → check → verify_and_record | record_failure),
    each task through its Lambda entry point with the state as Step Functions passes it (JSON)."""
    state = _task(deployer, "start_deployment", event)
    if state.get("action") == "skip":
        return state
    for _ in range(5):
        state = _task(deployer, "check_deployment", state)
        if state["status"]["decision"] != "wait":
            break
    if state["status"]["decision"] == "succeeded":
        return _task(deployer, "verify_and_record", state)
    return _task(deployer, "record_failure", state)


def _task(deployer: DemoFunction, entry_point: str, state: dict[str, Any]) -> dict[str, Any]:
    # What a task prints (its EMF deployment counts) goes to its log group in AWS; the demo's CloudWatch
    # story is the inference and drift metrics, so the deployer's stay out of it.
    with contextlib.redirect_stdout(io.StringIO()):
        result = deployer.invoke(entry_point, json.loads(json.dumps(state)))
    return dict(json.loads(json.dumps(result)))


def _mlops(account: DemoAccount, role: str, session_name: str, argv: list[str]) -> tuple[int, str, str]:
    """An `mlops` command with the credentials of ``role`` in ``account``: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with account.acting(role, session_name), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def promote(world: DemoWorld, version: int, to: str) -> list[str]:
    """An approver's registry update (the same one as in Studio), in the registry's account, then everything
    it sets off."""
    world.say(f"    mlops promote --env {world.config.name} --version {version} --to {to}: as MLApprover/alice in "
              f"registry {world.registry.name} {world.registry.account}")
    with world.registry_double.acting_as(APPROVER):
        code, _, err = _mlops(world.registry, "MLApprover", "alice",
                              ["promote", "--env", world.config.name, "--version", str(version), "--to", to])
    if code != 0:
        return [f"promote exited {code}: {err.strip()}"]
    return settle(world)


def serving(world: DemoWorld) -> dict[str, dict[str, str]]:
    """Per endpoint (read in its own account), which version each variant serves and its traffic weight."""
    from mlplatform.serving.endpoint_state import read_endpoint_state

    out: dict[str, dict[str, str]] = {}
    for stage, endpoint in world.endpoints.items():
        sagemaker = world.consumers[stage].client("sagemaker")
        state = read_endpoint_state(sagemaker, endpoint)
        if state is None:
            continue
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
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


def elapsed(start: float) -> str:
    return f"{time.perf_counter() - start:.1f} s"


# ------------------------------------------------------------------------------------------------ the story
@dataclass
class DemoOptions:
    out_dir: Path
    num_round: int = 100
    requests: int = 400
    say: Printer = print
    # Called with the world after the last step, while moto still runs (the e2e test looks into the accounts).
    inspect: Callable[[DemoWorld], Any] | None = None


def run_lifecycle(config: EnvironmentConfig, staging: EnvironmentConfig, options: DemoOptions,
                  registry: EnvironmentConfig | None = None) -> dict[str, Any]:
    """Steps 2-9 of the demo; returns a summary. Step failures are reported and the story goes on.

    ``config`` serves Production and ``staging`` Staging, both from ``registry`` (default: their registry
    environment in the project's cdk.json); each is played in its own account (``demo_accounts``)."""
    from mlops import project_config

    _DEFAULT_SESSIONS.clear()  # sessions of an earlier run hold a stopped server's credentials
    say = options.say
    summary: dict[str, Any] = {"steps": {}}
    options.out_dir.mkdir(parents=True, exist_ok=True)
    if registry is None:
        registry = project_config.load_configs()[config.registry.registry_environment]
    configs = demo_accounts(config, staging, registry)
    summary["accounts"] = {c.name: c.account for c in configs.values()}
    patcher = AttributePatcher()
    # The `mlops` commands read cdk.json: they get the demo's account ids, and check the caller's against them.
    patcher.setattr(project_config, "PROJECT_FILE",
                    cli_project_file(configs, Path(tempfile.mkdtemp(prefix="demo-accounts-"))))

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

    try:
        with moto_server() as url:
            world = step(2, f"moto server on {url}; creating what `cdk deploy` would, in three accounts",
                         lambda: build_world(configs, patcher))
            if world is None:
                skip(range(3, 10), "the demo's AWS (step 2) could not be set up")
                return summary
            world.say = say
            summary["hops"] = world.hops  # filled as events cross accounts
            _describe_accounts(world)
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
            summary["versions"] = {"v1": v1, "v2": v2}
            summary["account_check"] = world.account_check
            step(9, f"writing the report folder {options.out_dir}", lambda: _report(world, options, summary))
            if options.inspect is not None:
                options.inspect(world)
    finally:
        patcher.undo()
        _DEFAULT_SESSIONS.clear()
    return summary


def _describe_accounts(world: DemoWorld) -> None:
    hub, config = world.registry, world.config
    say = world.say
    say(f"    registry {hub.name} in account {hub.account}: training, model package group "
        f"{hub.local.model_package_group}, promotion gate, ledger, artifact bucket {hub.local.artifact_bucket}")
    for stage, consumer in world.consumers.items():
        say(f"    {consumer.name} in account {consumer.account}: endpoint {world.endpoints[stage]} ({stage}), its "
            f"deployer" + (", inference API, drift monitor, alarms" if stage == PRODUCTION else ""))
    say(f"    EventBridge: {hub.name}'s bus forwards Staging promotions to {world.consumers[STAGING].account} and "
        f"Production ones to {world.prod.account}; each consumer's bus forwards its results to {hub.account}; "
        "every function and command runs with credentials from STS AssumeRole into its account")
    challenger = (f"a {config.serving.challenger_weight_percent:g} % Challenger"
                  if config.serving.challenger_enabled else "no Challenger")
    say(f"    the demo serves production users from '{config.name}' (its cdk.json settings: {challenger}); "
        f"'{world.consumers[STAGING].name}' deploys Staging")


def _train(world: DemoWorld, options: DemoOptions) -> int:
    """Training runs as the registry environment, in its account: its data and artifact buckets, its group."""
    with world.registry.acting("DataScientist", "alice"), contextlib.redirect_stdout(io.StringIO()):
        outcome = train_local(world.registry.local, num_round=options.num_round)
    gate = outcome.run.gate
    assert gate is not None and outcome.model_package is not None, outcome.run.failure
    options.say(f"    gate: {gate.metric} {gate.value:.4f} {gate.comparison} {gate.threshold} → passed; "
                f"registered version {outcome.model_package['version']} "
                f"({outcome.model_package['stage']}, {outcome.model_package['approval_status']}) in "
                f"{world.registry.name} {world.registry.account}")
    return int(outcome.model_package["version"])


def _promote_through(world: DemoWorld, version: int) -> None:
    for stage in ("staging", "production"):
        outcomes = promote(world, version, stage)
        world.runtime.served.clear()
        world.say(f"      gate: {', '.join(outcomes) or 'nothing to judge'}")
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

    prod, end = world.prod, datetime.now(UTC) + timedelta(minutes=5)
    # `mlops ab-report --env prod`'s code, with an operator's credentials in prod's account.
    world.ab_report = serving_ops.ab_report(
        sagemaker_client=prod.client("sagemaker", "MLOperator"), cloudwatch_client=world.metrics,
        s3_client=prod.client("s3", "MLOperator"), endpoint=endpoint_name(world.config),
        capture_uri=f"s3://{prod.local.capture_bucket}/endpoint",
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
def _inference_function(world: DemoWorld) -> Iterator[DemoFunction]:
    """The inference function in a new execution environment (its handler module imported afresh under its
    environment, with its role's credentials in prod's account: the alarms watch this service's metrics),
    while its endpoint calls meet the faulty endpoint; afterwards InvokeEndpoint goes straight to the model
    runtime again."""
    from testkit.moto_gaps import EndpointMetrics

    prod = world.prod
    dynamodb, firehose = prod.client("dynamodb"), prod.client("firehose")
    for table, key in (("mlops-demo-breaker", "breaker_id"), ("mlops-demo-cache", "cache_key")):
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                                  KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                                  AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
    with contextlib.suppress(Exception):
        firehose.create_delivery_stream(
            DeliveryStreamName="mlops-demo-predictions", DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={"RoleARN": f"arn:aws:iam::{prod.account}:role/firehose",
                                                "BucketARN": f"arn:aws:s3:::{prod.local.capture_bucket}",
                                                "Prefix": "inference-api/"})
    world.metrics = EndpointMetrics(runtime=world.runtime)
    world.route.target = FaultyRuntime(world)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Dimension 'service' has already been added": reset on purpose
            # The inference API stack's contract (the fallback model prod's deployer published, in prod's artifact
            # bucket), with the breaker opening after 3 failures and cooling for 1 s: the demo's compressed time.
            contract = InferenceEnvironment.for_config(
                world.config, breaker_table_name="mlops-demo-breaker", response_cache_table_name="mlops-demo-cache",
                prediction_log_stream_name="mlops-demo-predictions", fallback_model_bucket=prod.local.artifact_bucket)
            yield _function("inference", prod, {
                **dataclasses.replace(contract, breaker_failure_threshold=3, breaker_cooldown_seconds=1).to_env(),
                # the schema path is relative to the bundle root, which is the repository here
                "LAMBDA_TASK_ROOT": str(Path(__file__).resolve().parents[2])},
                role=f"mlops-{world.config.name}-inference")
    finally:
        world.route.target = world.runtime


def _call_api(world: DemoWorld, function: DemoFunction, rows: list[list[str]], index: int) -> dict[str, Any]:
    event = {"version": "2.0", "routeKey": "POST /predict", "rawPath": "/predict",
             "headers": {"content-type": "application/json"},
             "requestContext": {"requestId": f"demo-{index}", "http": {"method": "POST", "path": "/predict"}},
             "body": json.dumps({"instances": [[float(v) for v in row] for row in rows],
                                 "inference_id": f"demo-{index}"}), "isBase64Encoded": False}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # EMF lines, put into CloudWatch later by the EMF bridge
        response = function.invoke("handler", event)
    world.inference_emf.append(printed.getvalue())
    body: dict[str, Any] = json.loads(response["body"])
    if response["statusCode"] == 200:
        world.responses.append(body)
    return body


def _drift_and_page(world: DemoWorld, options: DemoOptions) -> None:
    from testkit.moto_gaps import evaluate_alarm, publish_emf

    rows = _bundled_rows()
    shifted = [[f"{float(v) * (1.6 if i in (0, 2, 3, 20, 22, 23) else 1.0):.6g}" for i, v in enumerate(row)]
               for row in rows]
    with _inference_function(world) as function:
        for index in range(options.requests):
            _call_api(world, function, [shifted[index % len(shifted)]], 10_000 + index)
    prod = world.prod
    # The monitoring stack's contract with prod's thresholds (cdk.json), over a 2-hour window in one process: the
    # demo's traffic is minutes old and the demo runs beside the other functions.
    environment_ = dataclasses.replace(DriftMonitorEnvironment.for_config(
        world.config, capture_bucket=prod.local.capture_bucket, report_bucket=prod.local.artifact_bucket),
        window_hours=2, drift_workers=1).to_env()
    # Its baselines are the registry's (the packages' URIs, in dev's artifact bucket): read across accounts.
    function = _function("drift_monitor", prod, environment_, role=consumer_role_name(world.config, "drift-monitor"))
    # Powertools keeps metrics state (default dimensions included) per process, shared by every Metrics
    # object; the inference "function" ran in this same process (in AWS each function has its own), so the
    # drift function's service dimension is set back here, through Powertools, not through the handler.
    from aws_lambda_powertools import Metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Dimension 'service' has already been added": that is the point
        Metrics(namespace=NAMESPACE).set_default_dimensions(service="drift_monitor")
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        result = function.invoke("lambda_handler", {"time": window_end().isoformat()})
    cloudwatch, sns = prod.client("cloudwatch"), prod.client("sns")
    published = publish_emf(cloudwatch, captured.getvalue())
    bucket, key = split_s3_uri(str(result["report_uri"]))
    world.drift_report = json.loads(prod.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    champion = world.drift_report["variants"].get(CHAMPION, {}).get("drift", {})
    world.say(f"    drift run in {prod.name} {prod.account}: {champion.get('rows')} rows, drifted features "
              f"{[n for n, f in champion.get('features', {}).items() if f.get('drifted')]}; "
              f"{published} metrics published")
    emf = publish_emf(cloudwatch, "".join(world.inference_emf))
    world.say(f"    {emf} inference API metric values (EMF) put into CloudWatch by the demo's EMF bridge")
    for name in create_alarms(world):
        evaluation = evaluate_alarm(cloudwatch, sns, name)
        world.alarm_states.append(evaluation)
        world.say(f"    alarm {name}: {evaluation['state']} (value {evaluation['value']})")
    sqs = prod.client("sqs")
    # A new alarm starts at INSUFFICIENT_DATA (PutMetricAlarm), so its first OK evaluation notifies its OK
    # actions too: only ALARM notifications page or open a ticket.
    for severity, queue in (("ticket", world.ticket_queue), ("page", world.page_queue)):
        for message in _drain(sqs, queue):
            notice = json.loads(json.loads(message["Body"])["Message"])
            if notice["NewStateValue"] != "ALARM":
                world.say(f"    {severity} topic, {notice['NewStateValue']} notice: {notice['AlarmName']}")
            elif severity == "page":
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
    dimensions, thresholds, periods, severities and descriptions, in prod's account; named
    ``<env>-<construct id>`` because the stack lets CloudFormation name them. Latency, error-rate and
    health-check alarms are left out: the demo does not publish the AWS/SageMaker metrics they watch."""
    config, cloudwatch = world.config, world.prod.client("cloudwatch")
    endpoint, alarms, drift = endpoint_name(config), config.monitoring.alarms, config.monitoring.drift
    topics = {"page": world.page_topic, "ticket": world.ticket_topic}
    gte = "GreaterThanOrEqualToThreshold"
    names: list[str] = []

    def describe(severity: str, summary: str, runbook: str) -> str:
        return f"[{severity}] {config.name}: {summary} Runbook: docs/runbooks/{runbook}.md"

    def drift_alarm(variant: str, construct_id: str, metric: str, severity: str, runbook: str, summary: str) -> None:
        name = f"{config.name}-{construct_id}"
        cloudwatch.put_metric_alarm(
            AlarmName=name, AlarmDescription=describe(severity, summary, runbook), Namespace=NAMESPACE,
            MetricName=metric, Statistic="Maximum", Period=86_400, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator=gte, TreatMissingData="notBreaching",
            Dimensions=[{"Name": Metric.ENDPOINT_DIMENSION, "Value": endpoint}, {"Name": Metric.VARIANT_DIMENSION,
                                                                                 "Value": variant},
                        {"Name": "service", "Value": "drift_monitor"}],
            AlarmActions=[topics[severity]], OKActions=[topics[severity]])
        names.append(name)

    for variant in (CHAMPION, CHALLENGER):
        drift_alarm(variant, f"{variant}DataDrift", Metric.DRIFT_DETECTED, "ticket", "data-drift",
                    f"{variant}: drifted input features carry at least {drift.weighted_drift_alarm:.0%} of the "
                    "model's feature importance.")
        drift_alarm(variant, f"{variant}PredictionShift", Metric.PREDICTION_DRIFTED, "ticket", "prediction-shift",
                    f"{variant}: the predicted-probability distribution shifted.")
        drift_alarm(variant, f"{variant}QualityDegraded", Metric.QUALITY_DEGRADED, "page", "quality-degradation",
                    f"{variant}: ground-truth quality more than {alarms.quality_margin:g} below the registered "
                    "evaluation metric.")

    def inference(query_id: str, metric: str) -> dict[str, Any]:
        return {"Id": query_id, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                       "Dimensions": [{"Name": "service", "Value": "inference"}]},
            "Period": 300, "Stat": "Sum"}}

    name = f"{config.name}-FallbackRate"
    cloudwatch.put_metric_alarm(
        AlarmName=name, EvaluationPeriods=3, Threshold=alarms.fallback_rate_percent, ComparisonOperator=gte,
        TreatMissingData="notBreaching", AlarmActions=[world.page_topic], OKActions=[world.page_topic],
        AlarmDescription=describe("page", f"At least {alarms.fallback_rate_percent:g}% of API answers came "
                                          "from a fallback.", "fallback-rate"),
        Metrics=[inference("degraded", Metric.DEGRADED_RESPONSES), inference("responses", Metric.RESPONSES),
                 {"Id": "expression", "Expression": "IF(responses > 0, 100 * degraded / responses, 0)",
                  "Label": "API answers not served by the endpoint (%)", "ReturnData": True}])
    names.append(name)
    return names


def _illegal_skip(world: DemoWorld, options: DemoOptions) -> None:
    version = _train(world, options)
    outcomes = promote(world, version, "production")
    sagemaker = world.registry.client("sagemaker")
    (arn,) = [p["ModelPackageArn"] for p in sagemaker.list_model_packages(
        ModelPackageGroupName=world.registry.local.model_package_group)["ModelPackageSummaryList"]
        if p.get("ModelPackageVersion") == version]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    lifecycle = package.get("ModelLifeCycle", {})
    world.say(f"    gate: {', '.join(outcomes)}; v{version} is back in {lifecycle.get('Stage')} "
              f"({package.get('ModelApprovalStatus')}); no promotion left {world.registry.account}")
    latest = ledger_rows(world, 1)
    if latest:
        row = latest[0]
        world.say(f"    ledger: {row.get('decided_at')} v{row.get('version')} {row.get('from_stage')} → "
                  f"{row.get('to_stage')}: {row.get('outcome')} — {row.get('reason')}")


def _rollback(world: DemoWorld) -> None:
    prod, name = world.prod, world.config.name
    # The registry commands act in the registry's account: with prod's credentials they stop and name it.
    code, _, err = _mlops(prod, "MLOperator", "bob", ["status", "--env", name])
    world.account_check = {"command": f"mlops status --env {name}", "credentials_account": prod.account,
                           "exit_code": code, "message": err.strip()}
    world.say(f"    mlops status --env {name} with credentials for {prod.name} {prod.account}: exit {code}; "
              f"{err.strip()}")
    with world.registry_double.acting_as(APPROVER):
        code, out, _ = _mlops(world.registry, "MLApprover", "alice", ["rollback", "--env", name])
    lines = out.strip().splitlines()
    world.say(f"    mlops rollback --env {name} in registry {world.registry.name} {world.registry.account}: exit "
              f"{code}; {lines[-1] if lines else ''}")
    settle(world)
    for endpoint, variants in serving(world).items():
        world.say(f"    {endpoint}: " + ", ".join(f"{k} {v}" for k, v in variants.items()))


def _report(world: DemoWorld, options: DemoOptions, summary: dict[str, Any]) -> None:
    from mlops.demo import report

    written = report.write(options.out_dir, world=world, summary=summary)
    crossings = [hop for hop in world.hops if hop["from"] != hop["to"]]
    world.say(f"    {len(crossings)} cross-account hops (summary.json: hops); {len(written)} files in "
              f"{options.out_dir}")
