"""The newcomer's first run: the whole lifecycle of every model in cdk.json's ``models`` on moto (server mode, on
127.0.0.1) and each model's bundled data, in three accounts as cdk.json's default topology deploys it: the
registry environment (dev) in 111111111111, staging in 222222222222 and prod in 333333333333.

What an environment shares is created once per account — its key, buckets, alert topics, the registry's
promotion gate and deployment ledger (one partition per model package group, so each model's history stays
apart), the event rules that forward every model's promotions and results (matched by the group-name prefix,
routed to the model's deployer by the promotion's ``model``) — and what is a model's own once per model: its
package group, endpoints, deployers, inference function, drift monitor and alarms.

Every step goes through the code that runs in production — the step scripts, the promotion gate, the
deployer's tasks, the inference Lambda, the drift monitor and the `mlops` commands (each with ``--model``);
where moto lacks an API the doubles in ``testkit.moto_gaps`` stand in (named there, nowhere else). Lambda
functions are invoked only through their entry points (``lambdas.<function>.handler``'s handler functions, with
the function's environment variables and the credentials of a role in its environment's account, as the Lambda
runtime does); the doubles sit at the network level (moto, and botocore's request hooks for InvokeEndpoint),
never inside a handler. moto keeps each account's state apart; credentials come from STS AssumeRole into a
role of that account, and every cross-account hop (promotions forwarded from the registry's bus to a
consumer's, results forwarded back, a consumer reading the registry's packages and artifacts) goes through
the same calls a real deployment makes. moto checks no trust, resource or bus policy: those are checked
offline by tests/infra/test_accounts.py.
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
from mlops.training_run import REPO_ROOT, train_local
from mlplatform.registry.deployment_ledger import DeploymentLedger
from mlsettings.config import EnvironmentConfig
from mlsettings.functions.contracts import (
    DeployerEnvironment,
    DriftMonitorEnvironment,
    GateEnvironment,
    InferenceEnvironment,
)
from mlsettings.image_reference import image_uri
from mlsettings.naming import (
    consumer_role_name,
    endpoint_name,
    event_bus_arn,
    group_prefix,
    image_repository_name,
    model_of_group,
    model_package_group_name,
    model_prefixes,
)
from mlsettings.problem_types import ProblemType, problem_type
from mlsettings.schema import DataSchema
from mlsettings.training_code import IMAGE
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
    EndpointMetrics,
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
from testkit.pushed_images import as_if_pushed

# The accounts the demo plays: the registry environment's, the Staging server's, the Production server's.
REGISTRY_ACCOUNT, STAGING_ACCOUNT, PROD_ACCOUNT = "111111111111", "222222222222", "333333333333"
STAGES = (STAGING, PRODUCTION)
REGISTRY = "registry"
"""The key of the registry environment among the demo's environments (beside the stages their servers serve)."""
# The identities in the registry's account, as the registry double records them (LastModifiedBy, CreatedBy).
APPROVER = f"arn:aws:sts::{REGISTRY_ACCOUNT}:assumed-role/MLApprover/alice"
GATE = f"arn:aws:sts::{REGISTRY_ACCOUNT}:assumed-role/PromotionGate/gate"
TRAINER = f"arn:aws:sts::{REGISTRY_ACCOUNT}:assumed-role/DataScientist/alice"
# The demo's own role in each account: what `cdk deploy` would create, and what the story reads back.
DEMO_ROLE = "mlops-demo"
DRIFT_FACTOR = 1.6
"""The drift the demo injects: every numeric input feature of the drifted traffic multiplied by this."""
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
    envs: dict[str, LocalEnvironment] = field(default_factory=dict)  # per model, once provisioned
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
        """The environment's shared resources (buckets, key): the same in every model's local environment."""
        assert self.envs, f"{self.name} is not provisioned"
        return next(iter(self.envs.values()))

    def local_for(self, model: str) -> LocalEnvironment:
        return self.envs[model]

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
class DemoModel:
    """One model of cdk.json's ``models``: its view of each of the demo's environments, its own resources there,
    and what the demo observed of it."""

    name: str
    views: dict[str, EnvironmentConfig]  # REGISTRY, STAGING, PRODUCTION: the model's view of that environment
    deployers: dict[str, DemoFunction] = field(default_factory=dict)  # per served stage: the model's deployer
    endpoints: dict[str, str] = field(default_factory=dict)  # per served stage: the model's endpoint
    versions: dict[str, int] = field(default_factory=dict)  # "v1", "v2", "v3": what the demo registered
    training: dict[int, dict[str, Any]] = field(default_factory=dict)  # per version: gate and metrics by kind
    metrics: EndpointMetrics | None = None  # its endpoint's metrics for the A/B report (from its traffic phase)
    served: dict[str, int] = field(default_factory=dict)  # rows its endpoint answered per variant (traffic phase)
    responses: list[dict[str, Any]] = field(default_factory=list)  # its inference API's answers
    inference_emf: list[str] = field(default_factory=list)  # what its inference function printed (EMF)
    drift_report: dict[str, Any] | None = None
    ab_report: dict[str, Any] | None = None
    alarm_states: list[dict[str, Any]] = field(default_factory=list)
    page_messages: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    illegal_skip: dict[str, Any] = field(default_factory=dict)
    rollback: dict[str, Any] = field(default_factory=dict)
    production: dict[str, str] = field(default_factory=dict)  # the production endpoint's variants, at the end
    _rows: list[list[str]] | None = None

    @property
    def config(self) -> EnvironmentConfig:
        """The model's view of the production environment (its cdk.json settings: Challenger, alarms, SLA)."""
        return self.views[PRODUCTION]

    @property
    def kind(self) -> ProblemType:
        assert self.config.model is not None
        return problem_type(self.config.model.problem_type)

    @property
    def group(self) -> str:
        return model_package_group_name(self.views[REGISTRY])

    @property
    def schema(self) -> DataSchema:
        return DataSchema.load(Path(__file__).resolve().parents[2] / self.config.training.schema_file)

    def rows(self) -> list[list[str]]:
        """The model's bundled data set without its label: what its API's clients send."""
        if self._rows is None:
            from pipelines.datasets import write_bundled_csv

            schema = self.schema
            path = write_bundled_csv(schema.name, Path(tempfile.mkdtemp(prefix="demo-data-")) / "data.csv")
            with path.open(encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                label = header.index(schema.label.name)
                self._rows = [[v for i, v in enumerate(row) if i != label] for row in reader]
        return self._rows


@dataclass
class DemoWorld:
    """What the demo created and observes."""

    registry: DemoAccount  # the registry environment's account: groups, ledger, gate, training
    consumers: dict[str, DemoAccount]  # per served stage: the account of the environment that serves it
    models: dict[str, DemoModel]  # per model name, in cdk.json's order
    registry_double: RealisticRegistry
    runtime: ModelRuntime
    gate: DemoFunction
    route: RuntimeRoute  # where the functions' InvokeEndpoint calls go (the runtime, or the faulty API view)
    ledger_table: str = "mlops-demo-ledger"
    promotion_queues: dict[str, str] = field(default_factory=dict)  # per stage: its promotion rule's target
    arrival_queues: dict[str, str] = field(default_factory=dict)  # per stage: every promotion on that bus
    results_queue: str = ""  # in the registry's account: its DeploymentResults rule's target
    hops: list[dict[str, Any]] = field(default_factory=list)  # every cross-account event, as it arrived
    say: Printer = print
    page_queue: str = ""
    page_topic: str = ""
    ticket_queue: str = ""
    ticket_topic: str = ""
    outcomes: list[str] = field(default_factory=list)
    account_check: dict[str, Any] = field(default_factory=dict)
    models_listing: dict[str, Any] = field(default_factory=dict)  # `mlops models --env prod --json`, at the end

    @property
    def prod(self) -> DemoAccount:
        """The production environment's account: its endpoints take the API traffic, drift and alarms."""
        return self.consumers[PRODUCTION]

    @property
    def config(self) -> EnvironmentConfig:
        """The production environment the demo serves (the environment itself; each model's view in its model)."""
        return self.prod.config

    @property
    def accounts(self) -> dict[str, DemoAccount]:
        return {account.name: account for account in (self.registry, *self.consumers.values())}

    @property
    def endpoints(self) -> dict[str, str]:
        """Every model's endpoint, per ``<stage>/<model>``."""
        return {f"{stage}/{name}": endpoint for name, model in self.models.items()
                for stage, endpoint in model.endpoints.items()}

    def ledger(self, model: str) -> DeploymentLedger:
        """The model's history: its partition of the registry's one ledger table."""
        return DeploymentLedger(self.registry.client("dynamodb"), self.ledger_table, self.models[model].group)

    def model_of(self, group: object) -> str | None:
        return model_of_group(str(group), self.registry.name) if group else None


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


def _with_account(config: EnvironmentConfig, account: str) -> EnvironmentConfig:
    """The environment in ``account``, and so each model's view of it."""
    return dataclasses.replace(config, account=account,
                               models=tuple(dataclasses.replace(view, account=account) for view in config.models))


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
    if not config.model_names:
        raise ValueError("cdk.json's context.models names no model: the demo plays each model's lifecycle")
    return {REGISTRY: _with_account(registry, REGISTRY_ACCOUNT), STAGING: _with_account(staging, STAGING_ACCOUNT),
            PRODUCTION: _with_account(config, PROD_ACCOUNT)}


def demo_configs() -> dict[str, EnvironmentConfig]:
    """cdk.json's environments as the demo plays them: an own image no one pushed as if it were
    (testkit.pushed_images)."""
    from mlops.project_config import read_context
    from mlsettings.config import load_environments

    return load_environments(as_if_pushed(read_context()))


def cli_project_file(configs: Mapping[str, EnvironmentConfig], folder: Path) -> Path:
    """A copy of the project's cdk.json with the demo's account ids and the models it plays, for the `mlops` commands
    the demo runs: they then check the caller's account as they do against AWS (the registry's, for
    status/promote/rollback)."""
    from mlops.project_config import read_context

    context = as_if_pushed(read_context())
    for config in configs.values():
        context["environments"][config.name]["account"] = config.account
    # the models the demo plays (all of cdk.json's, or the ones a caller gave it): the commands see that world
    played = set(configs[PRODUCTION].model_names)
    context["models"] = {name: entry for name, entry in context.get("models", {}).items() if name in played}
    path = folder / "cdk.json"
    path.write_text(json.dumps({"context": context}, indent=1), encoding="utf-8")
    return path


def build_world(configs: Mapping[str, EnvironmentConfig], patcher: AttributePatcher) -> DemoWorld:
    """What `cdk deploy` of the three environments would have created, each in its account, in moto — the
    environment's shared resources once, each model's own once per model; plus observer queues for events
    and pages."""
    registry_config, config = configs[REGISTRY], configs[PRODUCTION]
    os.environ["AWS_DEFAULT_REGION"] = config.region
    models = {name: DemoModel(name=name, views={key: configs[key].for_model(name) for key in configs})
              for name in config.model_names}
    double = patch_moto_registry(patcher)
    double.actor = TRAINER
    patch_cross_account_packages(patcher)
    patch_event_envelopes(patcher)
    first = next(iter(models.values()))
    patch_update_endpoint(patcher, account=PROD_ACCOUNT, region=config.region,
                          endpoint_name=endpoint_name(first.config))
    # The endpoints' model containers: every InvokeEndpoint of every function's client is answered by the
    # runtime double (moto's canned answers would not exercise the golden checks or the fallbacks), from the
    # caller's account, capturing into that environment's capture bucket.
    runtime = ModelRuntime(region=config.region)
    patcher.on_undo(runtime.close)
    route = patch_invoke_endpoint(patcher, runtime)
    sts = boto3_session(region_name=config.region).client("sts")  # moto's default account: the demo's start
    hub = DemoAccount(registry_config, sts)
    consumers = {stage: DemoAccount(configs[stage], sts) for stage in STAGES}
    # An own image's endpoints: its folder's serve program, kept running in the conformance check's namespaces, answers
    # for the image its versions name (the registry's repository at the configured digest).
    for model in models.values():
        code = model.views[REGISTRY].training.code
        if code.kind == IMAGE and code.image_digest and code.source_dir:
            uri = image_uri(account=hub.account, region=registry_config.region,
                            repository=image_repository_name(model.views[REGISTRY]), digest=code.image_digest)
            runtime.image_programs[uri] = REPO_ROOT / code.source_dir
    # provision() is idempotent: the environment's key and buckets are made with its first model, each model's
    # package group (registry) and published names with that model.
    with hub.acting():
        for name, model in models.items():
            hub.envs[name] = provision(model.views[REGISTRY])
    for stage, consumer in consumers.items():
        with consumer.acting():
            for name, model in models.items():
                consumer.envs[name] = provision(model.views[stage], registry_resources=False)
                runtime.capture_buckets[endpoint_name(model.views[stage])] = consumer.local.capture_bucket
    gate, ledger, results_url = _registry_account(hub, consumers, registry_config)
    promotion_queues, arrival_queues = _consumer_accounts(hub, consumers, models, event_bus_arn(registry_config,
                                                                                                hub.account))
    page, ticket, page_url, ticket_url = _alerting(consumers[PRODUCTION], config)
    return DemoWorld(registry=hub, consumers=consumers, models=models, registry_double=double, runtime=runtime,
                     gate=gate, route=route, ledger_table=ledger, promotion_queues=promotion_queues,
                     arrival_queues=arrival_queues, results_queue=results_url, page_queue=page_url, page_topic=page,
                     ticket_queue=ticket_url, ticket_topic=ticket)


def _registry_account(hub: DemoAccount, consumers: Mapping[str, DemoAccount], registry_config: EnvironmentConfig
                      ) -> tuple[DemoFunction, str, str]:
    """The registry's account (dev/Registry), once for every model: ledger, gate, notices, the rules of every hop
    (matching every model's group by the registry's group prefix). Returns the gate, the ledger table and the
    queue of deployment results."""
    groups = group_prefix(registry_config)
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
                                        "detail": {"model_package_group": [{"prefix": groups}]}},
          {"Id": "gate", "Arn": results_arn})
    for stage, consumer in consumers.items():
        _admit(events, registry_bus, consumer.account, RESULT_SOURCE,
               f"mlops-{registry_config.name}-results-from-{consumer.account}")
        rule = f"PromotionsTo{consumer.name.title().replace('-', '')}"
        _rule(events, rule, {"source": [PROMOTION_SOURCE], "detail-type": [PROMOTION_ACCEPTED],
                             "detail": {"model_package_group": [{"prefix": groups}], "target_stage": [stage]}},
              {"Id": "consumer-bus", "Arn": event_bus_arn(consumer.config, consumer.account),
               "RoleArn": f"arn:aws:iam::{hub.account}:role/mlops-{registry_config.name}-{rule}"})
    for key, value in {Published.LEDGER_TABLE: ledger, Published.EVENT_BUS_NAME: "default",
                       Published.PROMOTION_TOPIC_ARN: notices,
                       Published.REGISTRY_ENVIRONMENT: registry_config.name}.items():
        ssm.put_parameter(Name=parameter_name(registry_config.name, key), Value=value, Type="String",
                          Overwrite=True)
    gate = _function("promotion_gate", hub, GateEnvironment(
        group_prefix=groups, ledger_table=ledger, idempotency_table=idempotency, promotion_topic_arn=notices,
        event_bus_name="default", protected_production_versions=registry_config.registry.protected_production_versions,
        # Whose results count: per stage the one environment that serves it, in its (the demo's) account.
        stage_servers={stage: {"environment": consumer.name, "account": consumer.account}
                       for stage, consumer in consumers.items()}).to_env(),
        role="PromotionGate", session_name="gate")
    return gate, ledger, results_url


def _consumer_accounts(hub: DemoAccount, consumers: Mapping[str, DemoAccount], models: Mapping[str, DemoModel],
                       registry_bus: str) -> tuple[dict[str, str], dict[str, str]]:
    """Each consumer's account: its bus admits the registry's promotions; one promotion rule and one results
    rule for every model (as the event router's shared rules); each model's deployer. Returns the promotion
    and arrival queues per stage."""
    promotion_queues: dict[str, str] = {}
    arrival_queues: dict[str, str] = {}
    for stage, consumer in consumers.items():
        target = consumer.config
        groups = group_prefix(target)
        sqs, events, ssm = (consumer.client(s) for s in ("sqs", "events", "ssm"))
        bus = event_bus_arn(target, consumer.account)
        _admit(events, bus, hub.account, PROMOTION_SOURCE, f"mlops-{target.name}-promotions-from-{hub.name}")
        # The event router's rule: every model's accepted promotions; the router starts the deployer the
        # promotion's ``model`` names (here: the demo drains the queue into that model's deployer).
        promotion_queues[stage], promotions_arn = _queue(sqs, "mlops-demo-accepted-promotions")
        _rule(events, "AcceptedPromotions", {"source": [PROMOTION_SOURCE], "detail-type": [PROMOTION_ACCEPTED],
                                             "detail": {"model_package_group": [{"prefix": groups}],
                                                        "target_stage": [stage]}},
              {"Id": "router", "Arn": promotions_arn})
        # The demo's observer: every promotion that reaches this bus, whichever stage (none but its own should).
        arrival_queues[stage], arrivals_arn = _queue(sqs, "mlops-demo-arrived-promotions")
        _rule(events, "DemoArrivedPromotions", {"source": [PROMOTION_SOURCE]}, {"Id": "observer", "Arn": arrivals_arn})
        _rule(events, "ResultsToTheRegistry", {"source": [RESULT_SOURCE], "detail-type": [DEPLOYMENT_RESULT],
                                               "detail": {"model_package_group": [{"prefix": groups}]}},
              {"Id": "registry-bus", "Arn": registry_bus,
               "RoleArn": f"arn:aws:iam::{consumer.account}:role/mlops-{target.name}-ResultsToTheRegistry"})
        for key, value in {Published.EVENT_BUS_NAME: "default", Published.REGISTRY_ENVIRONMENT: hub.name}.items():
            ssm.put_parameter(Name=parameter_name(target.name, key), Value=value, Type="String", Overwrite=True)
        for name, model in models.items():
            view, local = model.views[stage], consumer.local_for(name)
            model.endpoints[stage] = endpoint_name(view)
            # The serving stack's contract, with the demo's two differences: no rollback alarms (moto's alarms
            # never change state during a rollout) and a 10 s poll (the demo's compressed time).
            contract = DeployerEnvironment.for_config(
                view, model_execution_role_arn=f"arn:aws:iam::{consumer.account}:role/"
                                               f"{consumer_role_name(view, 'model')}",
                artifact_bucket=local.artifact_bucket, capture_bucket=local.capture_bucket,
                kms_key_arn=local.kms_key_arn)
            model.deployers[stage] = _function("deployer", consumer, dataclasses.replace(
                contract, rollback_alarm_names=(), poll_seconds=10).to_env(),
                role=consumer_role_name(view, "deployer"))
    return promotion_queues, arrival_queues


def _alerting(production: DemoAccount, config: EnvironmentConfig) -> tuple[str, str, str, str]:
    """The production environment's alerting, shared by its models: its page and ticket topics, and queues to
    read them back. Returns (page topic, ticket topic, page queue, ticket queue)."""
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
    """Deliver the events SageMaker would have sent to the gate; then, per consumer account, run the deployer of
    the model each accepted promotion its bus received names, and hand each result that reached the registry's
    bus to the gate's function."""
    outcomes = _judge_changes(world)
    while delivered := _accepted_promotions(world):
        for stage, event in delivered:
            model = world.models.get(str(event.get("detail", {}).get("model")))
            if model is None:
                world.say(f"      no deployer in {world.consumers[stage].name} for model "
                          f"{event.get('detail', {}).get('model')!r}: not routed")
                continue
            state = _deploy_one(model.deployers[stage], event)
            if state.get("action") == "skip":
                world.say(f"      the {world.consumers[stage].name} {model.name} deployer skipped it: "
                          f"{state.get('skip_reason')}")
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
    """What each consumer's promotion rule delivered; every promotion that reached a consumer's bus is a hop."""
    delivered = []
    names = {account.account: account.name for account in world.accounts.values()}
    for stage, consumer in world.consumers.items():
        sqs = consumer.client("sqs")
        for message in _drain(sqs, world.arrival_queues[stage]):
            event = json.loads(message["Body"])
            detail, sender = event.get("detail", {}), str(event.get("account"))
            world.hops.append({"event": PROMOTION_ACCEPTED, "model": detail.get("model"),
                               "model_package_group": detail.get("model_package_group"),
                               "version": detail.get("version"), "stage": detail.get("target_stage"),
                               "from": sender, "from_environment": names.get(sender, "?"), "to": consumer.account,
                               "to_environment": consumer.name})
            world.say(f"    promotion {detail.get('model')} v{detail.get('version')} → {detail.get('target_stage')}: "
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
            world.hops.append({"event": DEPLOYMENT_RESULT, "model": world.model_of(detail.get("model_package_group")),
                               "model_package_group": detail.get("model_package_group"),
                               "version": detail.get("version"), "stage": detail.get("stage"),
                               "outcome": detail.get("outcome"), "health_check": detail.get("health_check"),
                               "from": event.get("account"), "from_environment": detail.get("environment"),
                               "to": world.registry.account, "to_environment": world.registry.name,
                               "gate": answer.get("outcome")})
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


def promote(world: DemoWorld, model: DemoModel, version: int, to: str) -> list[str]:
    """An approver's registry update (the same one as in Studio), in the registry's account, then everything
    it sets off."""
    argv = ["promote", "--env", world.config.name, "--model", model.name, "--version", str(version), "--to", to]
    world.say(f"    mlops {' '.join(argv)}: as MLApprover/alice in registry {world.registry.name} "
              f"{world.registry.account}")
    with world.registry_double.acting_as(APPROVER):
        code, _, err = _mlops(world.registry, "MLApprover", "alice", argv)
    if code != 0:
        return [f"promote exited {code}: {err.strip()}"]
    return settle(world)


def serving(world: DemoWorld, model: DemoModel) -> dict[str, dict[str, str]]:
    """Per endpoint of the model (read in its own account), which version each variant serves and its weight."""
    from mlplatform.serving.endpoint_state import read_endpoint_state

    out: dict[str, dict[str, str]] = {}
    for stage, endpoint in model.endpoints.items():
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


def ledger_rows(world: DemoWorld, model: str, limit: int = 20) -> list[dict[str, Any]]:
    return [dataclasses.asdict(row) for row in world.ledger(model).recent_decisions(limit)]


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
    requests: int = 200  # API requests per model and traffic phase
    say: Printer = print
    # Called with the world after the last step, while moto still runs (the e2e test looks into the accounts).
    inspect: Callable[[DemoWorld], Any] | None = None


class ModelsFailed(RuntimeError):
    """A step failed for some models (each named, with its error); the others went through it."""


def _each_model(world: DemoWorld, action: Callable[[DemoModel], Any]) -> None:
    """``action`` for every model in turn: a model's failure is reported and the next model goes on; then the
    step fails naming each failed model."""
    failures = []
    for model in world.models.values():
        try:
            action(model)
        except Exception as err:
            world.say(f"    {model.name}: FAILED: {type(err).__name__}: {err}")
            failures.append(f"{model.name}: {type(err).__name__}: {err}")
    if failures:
        raise ModelsFailed("; ".join(failures))


def run_lifecycle(config: EnvironmentConfig, staging: EnvironmentConfig, options: DemoOptions,
                  registry: EnvironmentConfig | None = None) -> dict[str, Any]:
    """Steps 2-9 of the demo, each for every model of cdk.json; returns a summary. Step failures are reported
    and the story goes on.

    ``config`` serves Production and ``staging`` Staging, both from ``registry`` (default: their registry
    environment in the project's cdk.json); each is played in its own account (``demo_accounts``)."""
    from mlops import project_config

    _DEFAULT_SESSIONS.clear()  # sessions of an earlier run hold a stopped server's credentials
    say = options.say
    summary: dict[str, Any] = {"steps": {}}
    options.out_dir.mkdir(parents=True, exist_ok=True)
    if registry is None:
        registry = demo_configs()[config.registry.registry_environment]
    configs = demo_accounts(config, staging, registry)
    summary["accounts"] = {c.name: c.account for c in configs.values()}
    summary["models"] = {view.model.name: {"problem_type": view.model.problem_type}
                         for view in configs[PRODUCTION].models if view.model is not None}
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
            summary["steps"][number] = {"title": title, "ok": False, "error": f"{type(err).__name__}: {err}",
                                        "seconds": round(time.perf_counter() - started, 1)}
            return None
        summary["steps"][number] = {"title": title, "ok": True, "seconds": round(time.perf_counter() - started, 1)}
        return result

    def skip(numbers: range | tuple[int, ...], reason: str) -> None:
        for number in numbers:
            say(f"[{number}] step {number} skipped: {reason}")
            summary["steps"][number] = {"title": f"step {number}", "ok": False, "error": f"skipped: {reason}"}

    try:
        with moto_server() as url, warnings.catch_warnings():
            # Every model's functions share this process's Powertools metrics state (``_fresh_metrics``): a
            # dimension a function sets over one left by another model's function is expected here, not news.
            warnings.filterwarnings("ignore", message="Dimension '.*' has already been added")
            world = step(2, f"moto server on {url}; creating what `cdk deploy` would, in three accounts: each "
                            "environment's shared resources once, each model's own per model",
                         lambda: build_world(configs, patcher))
            if world is None:
                skip(range(3, 10), "the demo's AWS (step 2) could not be set up")
                return summary
            world.say = say
            summary["hops"] = world.hops  # filled as events cross accounts
            _describe_accounts(world)
            step(3, "training version 1 of each model on its bundled data (validate → … → quality gate → register)",
                 lambda: _each_model(world, lambda m: _train(world, m, options, "v1")))
            step(4, "each model's v1 → Staging → staging endpoint → health check → Production → production endpoint",
                 lambda: _each_model(world, lambda m: _promote_through(world, m, _version(m, "v1"))))
            step(5, "each model's version 2: trained; through staging; into production as Challenger; traffic "
                    "through its inference function; A/B",
                 lambda: _each_model(world, lambda m: _challenger_and_traffic(world, m, options)))
            step(6, "drift injected into each model's traffic → its drift run → metrics → its alarms → page",
                 lambda: _each_model(world, lambda m: _drift_and_page(world, m, options)))
            step(7, "an illegal promotion of each model: version 3 straight from Development to Production",
                 lambda: _each_model(world, lambda m: _illegal_skip(world, m, options)))
            step(8, "rolling each model's production endpoint back to its previous version", lambda: _rollback(world))
            summary["versions"] = {name: dict(model.versions) for name, model in world.models.items()}
            summary["account_check"] = world.account_check
            step(9, f"writing the report folder {options.out_dir}, one section per model",
                 lambda: _report(world, options, summary))
            if options.inspect is not None:
                options.inspect(world)
    finally:
        patcher.undo()
        _DEFAULT_SESSIONS.clear()
    return summary


def _describe_accounts(world: DemoWorld) -> None:
    hub, config = world.registry, world.config
    say = world.say
    say(f"    registry {hub.name} in account {hub.account}: training, the promotion gate and the ledger (shared, "
        f"one partition per model), artifact bucket {hub.local.artifact_bucket} (a prefix per model)")
    for name, model in world.models.items():
        say(f"    model {name} ({model.kind.name}, owner {model.config.model.owner if model.config.model else '-'}): "
            f"package group {model.group}; endpoints " +
            ", ".join(f"{endpoint} in {world.consumers[stage].name}" for stage, endpoint in model.endpoints.items()))
    for stage, consumer in world.consumers.items():
        say(f"    {consumer.name} in account {consumer.account} serves {stage}: a deployer per model" +
            (", an inference API, drift monitor and alarms per model; page and ticket topics shared"
             if stage == PRODUCTION else ""))
    say(f"    EventBridge: {hub.name}'s bus forwards every model's Staging promotions to "
        f"{world.consumers[STAGING].account} and Production ones to {world.prod.account} (one rule each, by the "
        f"group prefix); there the promotion's model picks its deployer; each consumer's bus forwards its results "
        f"to {hub.account}; every function and command runs with credentials from STS AssumeRole into its account")
    challenger = (f"a {config.serving.challenger_weight_percent:g} % Challenger"
                  if config.serving.challenger_enabled else "no Challenger")
    say(f"    the demo serves production users from '{config.name}' (its cdk.json settings: {challenger}); "
        f"'{world.consumers[STAGING].name}' deploys Staging")


def _train(world: DemoWorld, model: DemoModel, options: DemoOptions, label: str) -> int:
    """Training runs as the registry environment, in its account: its data and artifact buckets (the model's
    prefixes), the model's group."""
    with world.registry.acting("DataScientist", "alice"), contextlib.redirect_stdout(io.StringIO()):
        outcome = train_local(world.registry.local_for(model.name), num_round=options.num_round)
    gate = outcome.run.gate
    assert gate is not None and outcome.model_package is not None, outcome.run.failure
    version = int(outcome.model_package["version"])
    kind = model.kind
    section = (outcome.run.metrics or {}).get(kind.report_section, {})
    metrics = {name: float(section[name]["value"]) for name in kind.quality_metrics
               if isinstance(section.get(name), dict) and section[name].get("value") is not None}
    model.versions[label] = version
    model.training[version] = {"gate": {"metric": gate.metric, "value": gate.value, "comparison": gate.comparison,
                                        "threshold": gate.threshold, "passed": gate.passed}, "metrics": metrics}
    world.say(f"    {model.name} ({kind.name}): gate {gate.metric} {gate.value:.4f} {gate.comparison} "
              f"{gate.threshold:g} → passed; " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) +
              f"; registered version {version} ({outcome.model_package['stage']}, "
              f"{outcome.model_package['approval_status']}) in {world.registry.name} {world.registry.account}")
    return version


def _version(model: DemoModel, label: str) -> int:
    if label not in model.versions:
        raise RuntimeError(f"{model.name} has no {label} to promote (its training failed above)")
    return model.versions[label]


def _promote_through(world: DemoWorld, model: DemoModel, version: int) -> None:
    for stage in ("staging", "production"):
        outcomes = promote(world, model, version, stage)
        world.runtime.served.clear()
        world.say(f"      gate: {', '.join(outcomes) or 'nothing to judge'}")
        if any(outcome.startswith("promote exited") for outcome in outcomes):
            raise RuntimeError(f"{model.name} v{version} → {stage}: {outcomes[0]}")
    for endpoint, variants in serving(world, model).items():
        world.say(f"    {endpoint}: " + ", ".join(f"{k} {v}" for k, v in variants.items()))


def _challenger_and_traffic(world: DemoWorld, model: DemoModel, options: DemoOptions) -> None:
    version = _train(world, model, options, "v2")
    _promote_through(world, model, version)
    rows = model.rows()
    world.runtime.served.clear()  # from here: what this model's production endpoint answers the API
    with _inference_function(world, model) as function:
        for index in range(options.requests):
            _call_api(model, function, [rows[index % len(rows)]], index)
    sources: dict[str, int] = {}
    for response in model.responses:
        sources[response["source"]] = sources.get(response["source"], 0) + 1
    world.say(f"    {model.name}: {options.requests} API requests through its inference function: answered by " +
              ", ".join(f"{k} {v}" for k, v in sorted(sources.items())) +
              " (every 12th endpoint call fails on purpose: throttling, ModelError, timeout)")
    from mlops import serving_ops

    prod, end = world.prod, datetime.now(UTC) + timedelta(minutes=5)
    schema = model.schema
    # `mlops ab-report --env prod --model <name>`'s code, with an operator's credentials in prod's account.
    model.ab_report = serving_ops.ab_report(
        sagemaker_client=prod.client("sagemaker", "MLOperator"), cloudwatch_client=model.metrics,
        s3_client=prod.client("s3", "MLOperator"), endpoint=model.endpoints[PRODUCTION],
        capture_uri=f"s3://{prod.local_for(model.name).capture_bucket}/endpoint",
        start=end - timedelta(hours=2), end=end, n_features=len(schema.feature_names),
        feature_names=tuple(schema.feature_names), label_spec=schema.label,
        sla_p99_ms=model.config.serving.sla.p99_latency_ms)
    model.served = {variant: sum(rows) for variant, rows in world.runtime.served.items()}
    recommendation = model.ab_report.get("recommendation", {})
    action = recommendation.get("action", recommendation) if isinstance(recommendation, dict) else recommendation
    world.say(f"    {model.name} A/B report ({model.kind.ab_test}): recommendation {action}")


class FaultyRuntime:
    """A model's endpoint as its API sees it: every 12th call fails (throttling, ModelError, timeout in turn)."""

    def __init__(self, world: DemoWorld, model: DemoModel) -> None:
        self.world, self.model, self.calls = world, model, 0

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
        assert self.model.metrics is not None
        self.model.metrics.latencies_ms.setdefault(variant, []).append(latency)
        return answer


def _fresh_metrics(service: str) -> None:
    """Powertools keeps metrics state (default dimensions included) per process, shared by every Metrics object;
    the demo runs every model's functions in this one process (in AWS each function has its own), so each
    function's default dimensions are set back to its own service, through Powertools, before it runs."""
    from aws_lambda_powertools import Metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Dimension 'service' has already been added": that is the point
        shared = Metrics(namespace=NAMESPACE)
        shared.clear_metrics()
        shared.clear_default_dimensions()
        shared.set_default_dimensions(service=service)


@contextlib.contextmanager
def _inference_function(world: DemoWorld, model: DemoModel) -> Iterator[DemoFunction]:
    """The model's inference function in a new execution environment (its handler module imported afresh under
    its environment, with its role's credentials in prod's account: the alarms watch this service's metrics),
    while its endpoint calls meet the faulty endpoint; afterwards InvokeEndpoint goes straight to the model
    runtime again. Its breaker and cache tables and its prediction log stream are the model's own."""
    prod, view = world.prod, model.config
    local = prod.local_for(model.name)
    dynamodb, firehose = prod.client("dynamodb"), prod.client("firehose")
    tables = {"breaker": f"mlops-demo-{model.name}-breaker", "cache": f"mlops-demo-{model.name}-cache"}
    stream = f"mlops-demo-{model.name}-predictions"
    for table, key in ((tables["breaker"], "breaker_id"), (tables["cache"], "cache_key")):
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                                  KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                                  AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
    with contextlib.suppress(firehose.exceptions.ResourceInUseException):
        firehose.create_delivery_stream(
            DeliveryStreamName=stream, DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={"RoleARN": f"arn:aws:iam::{prod.account}:role/firehose",
                                                "BucketARN": f"arn:aws:s3:::{local.capture_bucket}",
                                                "Prefix": model_prefixes(view).prediction_log})
    if model.metrics is None:
        model.metrics = EndpointMetrics(runtime=world.runtime)
    world.route.target = FaultyRuntime(world, model)
    try:
        _fresh_metrics("inference")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Dimension 'service' has already been added": reset on purpose
            # The inference API stack's contract (the fallback model prod's deployer published, in prod's artifact
            # bucket), with the breaker opening after 3 failures and cooling for 1 s: the demo's compressed time.
            contract = InferenceEnvironment.for_config(
                view, breaker_table_name=tables["breaker"], response_cache_table_name=tables["cache"],
                prediction_log_stream_name=stream, fallback_model_bucket=local.artifact_bucket)
            yield _function("inference", prod, {
                **dataclasses.replace(contract, breaker_failure_threshold=3, breaker_cooldown_seconds=1).to_env(),
                # the schema path is relative to the bundle root, which is the repository here
                "LAMBDA_TASK_ROOT": str(Path(__file__).resolve().parents[2])},
                role=f"mlops-{view.name}-{model.name}-inference")
    finally:
        world.route.target = world.runtime


def _call_api(model: DemoModel, function: DemoFunction, rows: list[list[str]], index: int) -> dict[str, Any]:
    event = {"version": "2.0", "routeKey": "POST /predict", "rawPath": "/predict",
             "headers": {"content-type": "application/json"},
             "requestContext": {"requestId": f"demo-{index}", "http": {"method": "POST", "path": "/predict"}},
             "body": json.dumps({"instances": [[float(v) for v in row] for row in rows],
                                 "inference_id": f"demo-{model.name}-{index}"}), "isBase64Encoded": False}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # EMF lines, put into CloudWatch later by the EMF bridge
        response = function.invoke("handler", event)
    model.inference_emf.append(printed.getvalue())
    body: dict[str, Any] = json.loads(response["body"])
    if response["statusCode"] == 200:
        model.responses.append(body)
    return body


def _drift_and_page(world: DemoWorld, model: DemoModel, options: DemoOptions) -> None:
    from testkit.moto_gaps import evaluate_alarm, publish_emf

    schema = model.schema
    numeric = {i for i, name in enumerate(schema.feature_names) if schema.feature(name).is_numeric}
    shifted = [[f"{float(v) * (DRIFT_FACTOR if i in numeric else 1.0):.6g}" for i, v in enumerate(row)]
               for row in model.rows()]
    with _inference_function(world, model) as function:
        for index in range(options.requests):
            _call_api(model, function, [shifted[index % len(shifted)]], 10_000 + index)
    prod, view = world.prod, model.config
    local = prod.local_for(model.name)
    # The monitoring stack's contract with prod's thresholds (cdk.json), over a 2-hour window in one process: the
    # demo's traffic is minutes old and the demo runs beside the other functions.
    environment_ = dataclasses.replace(DriftMonitorEnvironment.for_config(
        view, capture_bucket=local.capture_bucket, report_bucket=local.artifact_bucket),
        window_hours=2, drift_workers=1).to_env()
    # Its baselines are the registry's (the packages' URIs, in dev's artifact bucket): read across accounts.
    function = _function("drift_monitor", prod, environment_, role=consumer_role_name(view, "drift-monitor"))
    _fresh_metrics("drift_monitor")
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        result = function.invoke("lambda_handler", {"time": window_end().isoformat()})
    cloudwatch, sns = prod.client("cloudwatch"), prod.client("sns")
    published = publish_emf(cloudwatch, captured.getvalue())
    bucket, key = split_s3_uri(str(result["report_uri"]))
    model.drift_report = json.loads(prod.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    champion = model.drift_report["variants"].get(CHAMPION, {}).get("drift", {})
    world.say(f"    {model.name}: drift run in {prod.name} {prod.account}: {champion.get('rows')} rows, drifted "
              f"features {[n for n, f in champion.get('features', {}).items() if f.get('drifted')]}; "
              f"{published} metrics published")
    emf = publish_emf(cloudwatch, "".join(model.inference_emf))
    world.say(f"    {model.name}: {emf} inference API metric values (EMF) put into CloudWatch by the demo's EMF "
              "bridge")
    names = create_alarms(world, model)
    for name in names:
        evaluation = evaluate_alarm(cloudwatch, sns, name)
        model.alarm_states.append(evaluation)
        world.say(f"    alarm {name}: {evaluation['state']} (value {evaluation['value']})")
    sqs = prod.client("sqs")
    # A new alarm starts at INSUFFICIENT_DATA (PutMetricAlarm), so its first OK evaluation notifies its OK
    # actions too: only ALARM notifications page or open a ticket. The topics are the environment's: what
    # arrives now is this model's (its alarms were just evaluated), and its alarm names say so.
    for severity, queue in (("ticket", world.ticket_queue), ("page", world.page_queue)):
        for message in _drain(sqs, queue):
            notice = json.loads(json.loads(message["Body"])["Message"])
            if notice["AlarmName"] not in names:
                world.say(f"    {severity} topic: {notice['AlarmName']} is not one of {model.name}'s alarms")
            elif notice["NewStateValue"] != "ALARM":
                world.say(f"    {severity} topic, {notice['NewStateValue']} notice: {notice['AlarmName']}")
            elif severity == "page":
                model.page_messages.append(notice)
                world.say(f"    SNS message that pages on-call: {json.dumps(notice)}")
            else:
                model.tickets.append(notice)
                world.say(f"    ticket: {notice['AlarmName']} — {notice['AlarmDescription']}")


def _drain(sqs: Any, queue: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return messages


def create_alarms(world: DemoWorld, model: DemoModel) -> list[str]:
    """The alarms stacks/monitoring.py defines for one model for the metrics the demo publishes — same metrics,
    dimensions, thresholds, periods, severities and descriptions (per kind of model: a confidence alarm only
    where the kind states a confidence), in prod's account; named ``<endpoint>-<construct id>`` because the
    model's stack lets CloudFormation name them. Latency, error-rate and health-check alarms are left out: the
    demo does not publish the AWS/SageMaker metrics they watch."""
    config, cloudwatch = model.config, world.prod.client("cloudwatch")
    endpoint, alarms, drift = model.endpoints[PRODUCTION], config.monitoring.alarms, config.monitoring.drift
    kind = model.kind
    topics = {"page": world.page_topic, "ticket": world.ticket_topic}
    gte = "GreaterThanOrEqualToThreshold"
    names: list[str] = []

    def describe(severity: str, summary: str, runbook: str) -> str:
        return f"[{severity}] {config.name}: {summary} Runbook: docs/runbooks/{runbook}.md"

    def drift_alarm(variant: str, construct_id: str, metric: str, severity: str, runbook: str, summary: str) -> None:
        name = f"{endpoint}-{construct_id}"
        cloudwatch.put_metric_alarm(
            AlarmName=name, AlarmDescription=describe(severity, summary, runbook), Namespace=NAMESPACE,
            MetricName=metric, Statistic="Maximum", Period=86_400, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator=gte, TreatMissingData="notBreaching",
            Dimensions=[{"Name": Metric.ENDPOINT_DIMENSION, "Value": endpoint},
                        {"Name": Metric.VARIANT_DIMENSION, "Value": variant},
                        {"Name": "service", "Value": "drift_monitor"}],
            AlarmActions=[topics[severity]], OKActions=[topics[severity]])
        names.append(name)

    for variant in (CHAMPION, CHALLENGER):
        drift_alarm(variant, f"{variant}DataDrift", Metric.DRIFT_DETECTED, "ticket", "data-drift",
                    f"{variant}: drifted input features carry at least {drift.weighted_drift_alarm:.0%} of the "
                    "model's feature importance.")
        drift_alarm(variant, f"{variant}PredictionShift", Metric.PREDICTION_DRIFTED, "ticket", "prediction-shift",
                    f"{variant}: the prediction distribution shifted ({kind.prediction_drift}).")
        if kind.output.confidence is not None:  # a regression model states no confidence
            drift_alarm(variant, f"{variant}ConfidenceShift", Metric.CONFIDENCE_DRIFTED, "ticket",
                        "prediction-shift", f"{variant}: the confidence distribution shifted (PSI above "
                                            f"{alarms.confidence_shift_psi:g}).")
        drift_alarm(variant, f"{variant}QualityDegraded", Metric.QUALITY_DEGRADED, "page", "quality-degradation",
                    f"{variant}: ground-truth {config.training.quality_gate.metric} more than "
                    f"{alarms.quality_margin:g} worse than the registered evaluation metric.")

    def inference(query_id: str, metric: str) -> dict[str, Any]:
        return {"Id": query_id, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                       "Dimensions": [{"Name": "service", "Value": "inference"},
                                      {"Name": Metric.ENDPOINT_DIMENSION, "Value": endpoint}]},
            "Period": 300, "Stat": "Sum"}}

    name = f"{endpoint}-FallbackRate"
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


def _illegal_skip(world: DemoWorld, model: DemoModel, options: DemoOptions) -> None:
    version = _train(world, model, options, "v3")
    outcomes = promote(world, model, version, "production")
    sagemaker = world.registry.client("sagemaker")
    (arn,) = [p["ModelPackageArn"] for p in sagemaker.list_model_packages(
        ModelPackageGroupName=model.group)["ModelPackageSummaryList"] if p.get("ModelPackageVersion") == version]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    lifecycle = package.get("ModelLifeCycle", {})
    model.illegal_skip = {"version": version, "gate": outcomes, "stage_after": lifecycle.get("Stage"),
                          "approval_after": package.get("ModelApprovalStatus")}
    world.say(f"    {model.name} gate: {', '.join(outcomes)}; v{version} is back in {lifecycle.get('Stage')} "
              f"({package.get('ModelApprovalStatus')}); no promotion left {world.registry.account}")
    latest = ledger_rows(world, model.name, 1)
    if latest:
        row = latest[0]
        world.say(f"    {model.name} ledger: {row.get('decided_at')} v{row.get('version')} {row.get('from_stage')} → "
                  f"{row.get('to_stage')}: {row.get('outcome')} — {row.get('reason')}")


def _rollback(world: DemoWorld) -> None:
    prod, name = world.prod, world.config.name
    first = next(iter(world.models))
    # The registry commands act in the registry's account: with prod's credentials they stop and name it.
    argv = ["status", "--env", name, "--model", first]
    code, _, err = _mlops(prod, "MLOperator", "bob", argv)
    world.account_check = {"command": f"mlops {' '.join(argv)}", "credentials_account": prod.account,
                           "exit_code": code, "message": err.strip()}
    world.say(f"    mlops {' '.join(argv)} with credentials for {prod.name} {prod.account}: exit {code}; "
              f"{err.strip()}")

    def roll_back(model: DemoModel) -> None:
        argv = ["rollback", "--env", name, "--model", model.name]
        with world.registry_double.acting_as(APPROVER):
            code, out, err = _mlops(world.registry, "MLApprover", "alice", argv)
        lines = out.strip().splitlines()
        world.say(f"    mlops {' '.join(argv)} in registry {world.registry.name} {world.registry.account}: exit "
                  f"{code}; {lines[-1] if lines else err.strip()}")
        if code != 0:
            raise RuntimeError(f"mlops {' '.join(argv)} exited {code}: {err.strip()}")
        outcomes = settle(world)
        model.rollback = {"exit_code": code, "gate": outcomes}
        for endpoint, variants in serving(world, model).items():
            world.say(f"    {endpoint}: " + ", ".join(f"{k} {v}" for k, v in variants.items()))

    _each_model(world, roll_back)


def _report(world: DemoWorld, options: DemoOptions, summary: dict[str, Any]) -> None:
    from mlops.demo import report

    code, out, err = _mlops(world.registry, "MLOperator", "bob", ["models", "--env", world.config.name, "--json"])
    if code != 0:
        raise RuntimeError(f"mlops models --env {world.config.name} exited {code}: {err.strip()}")
    world.models_listing = json.loads(out)
    summary["models"] = {name: report.model_summary(world, model) for name, model in world.models.items()}
    written = report.write(options.out_dir, world=world, summary=summary)
    for line in report.models_table(summary["models"]).splitlines():
        world.say(f"    {line}")
    crossings = [hop for hop in world.hops if hop["from"] != hop["to"]]
    world.say(f"    {len(crossings)} cross-account hops (summary.json: hops); {len(written)} files in "
              f"{options.out_dir}")
