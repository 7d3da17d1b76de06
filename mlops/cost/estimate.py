"""A monthly cost estimate of one environment, per model and per line, from its synthesized templates, its
settings in cdk.json and a price table.

What is counted is what costs money whether or not anyone calls the system: endpoint instances (at the
autoscaling floor and ceiling), scheduled training runs and their processing steps, scheduled Lambda runs
(drift, health check), alarms, dashboards, custom metrics, KMS keys. Jobs are counted at their ceiling (every
job runs to its MaxRuntimeInSeconds, every scheduled function to its timeout), so the estimate is an upper
bound for them. What depends on traffic or data volume (API requests, captured data kept for the configured
retention) is priced per unit in ``usage``, outside the total. A price the table lacks is unknown: the line
says which, and the total says how many lines it leaves out; it never counts as zero.

An environment holds one stack per model (``Model-<name>``, stacks/model.py): ``models_of`` returns one entry per
model of cdk.json with its stack and its view of the environment (its serving and training settings), and every
other stack is shared. An assembly of the older layout (one model over the Training, Serving and Monitoring
stacks) is read as that one model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.cost.assembly import StackTemplate, alarm_metric_count, join_text, target_logical_id
from mlops.cost.price_table import PriceTable
from mlops.cost.schedules import HOURS_PER_MONTH, runs_per_month
from mlsettings.vocabulary import CHALLENGER, CHAMPION, NAMESPACE

if TYPE_CHECKING:
    from mlsettings.config import EnvironmentConfig

SHARED = "shared"
MODEL_STACK_PREFIX = "Model-"  # a model's stack: Model-<name> (stacks/stage.py)
# The older layout's stacks of the environment's one model: its pipeline, endpoint wiring, drift run, alarms and
# dashboard (Storage, Alerting, Registry and InferenceApi were shared).
MODEL_STACKS = ("Training", "Serving", "Monitoring")
INFERENCE_HANDLER = "lambdas.inference.handler.handler"
CUSTOM_NAMESPACE = NAMESPACE  # the project's custom metrics (mlsettings.vocabulary)
SPOT_NOTE = ("managed spot training: billed for the seconds trained at the spot price, which AWS puts at up to "
             "90 % below on-demand; not deducted here")


@dataclass(frozen=True)
class Model:
    name: str
    stacks: tuple[str, ...]
    features: int
    config: EnvironmentConfig | None = None  # the model's view of the environment (None: the environment's)


@dataclass(frozen=True)
class Line:
    scope: str  # a model's name or "shared"
    item: str
    quantity: str
    at_min: float | None  # None: a price is unknown
    at_max: float | None
    basis: str
    unknown: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class UsageRate:
    scope: str
    item: str
    per: str
    usd: float | None
    basis: str
    unknown: tuple[str, ...] = ()


@dataclass
class Estimate:
    environment: str
    region: str
    models: list[str]
    lines: list[Line] = field(default_factory=list)
    usage: list[UsageRate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    prices: dict[str, Any] = field(default_factory=dict)

    def totals(self, scope: str | None = None) -> dict[str, Any]:
        """Sums of the priced lines (of one scope, or all); lines without a price are counted, never added."""
        lines = [line for line in self.lines if scope is None or line.scope == scope]
        known = [line for line in lines if not line.unknown]
        return {"at_min": round(sum(line.at_min or 0.0 for line in known), 2),
                "at_max": round(sum(line.at_max or 0.0 for line in known), 2),
                "known_lines": len(known), "unknown_lines": len(lines) - len(known)}

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "region": self.region, "currency": "USD", "period": "month",
                "hours_per_month": HOURS_PER_MONTH, "models": self.models, "totals": self.totals(),
                "per_scope": {scope: self.totals(scope) for scope in [*self.models, SHARED]},
                "lines": [asdict(line) for line in self.lines], "usage": [asdict(rate) for rate in self.usage],
                "notes": self.notes, "prices": self.prices}


def _features(repo_root: Path, schema_file: str) -> tuple[dict[str, Any], int]:
    schema = json.loads((repo_root / schema_file).read_text(encoding="utf-8"))
    return schema, len(schema.get("features", []))


def models_of(config: EnvironmentConfig, repo_root: Path, stacks: Sequence[StackTemplate] = ()) -> list[Model]:
    """The models an environment serves and trains: each model of cdk.json whose stack (Model-<name>) is in
    ``stacks``; an assembly without model stacks (the older layout) holds one, named after its data schema."""
    present = {s.stack for s in stacks}
    models = [Model(name=view.model.name, stacks=(f"{MODEL_STACK_PREFIX}{view.model.name}",),
                    features=_features(repo_root, view.model.schema_file)[1], config=view)
              for view in config.models
              if view.model is not None and f"{MODEL_STACK_PREFIX}{view.model.name}" in present]
    if models:
        return models
    schema, features = _features(repo_root, config.training.schema_file)
    return [Model(name=str(schema.get("name", config.name)), stacks=MODEL_STACKS, features=features)]


class _Pricer:
    """Multiplies quantities by table prices, remembering which keys were missing and which sources were used."""

    def __init__(self, table: PriceTable, region: str) -> None:
        self.table, self.region = table, region
        self.used: set[str] = set()

    def cost(self, quantities: Mapping[str, float]) -> tuple[float | None, tuple[str, ...], tuple[str, ...]]:
        total, missing, sources = 0.0, [], []
        for key, amount in quantities.items():
            price = self.table.get(self.region, key)
            if price is None:
                missing.append(key)
                continue
            total += amount * price.usd
            sources.append(price.source)
        self.used.update(sources)
        return (None if missing else total), tuple(missing), tuple(sorted(set(sources)))

    def line(self, scope: str, item: str, quantity: str, basis: str, at_min: Mapping[str, float],
             at_max: Mapping[str, float] | None = None) -> Line:
        low, missing, sources = self.cost(at_min)
        high, missing_high, _ = self.cost(at_max if at_max is not None else at_min)
        return Line(scope=scope, item=item, quantity=quantity, basis=basis,
                    at_min=None if low is None else round(low, 2), at_max=None if high is None else round(high, 2),
                    unknown=tuple(sorted(set(missing) | set(missing_high))), sources=sources)


def _lambda_quantities(properties: Mapping[str, Any], runs: float, seconds: float | None = None) -> dict[str, float]:
    architecture = (properties.get("Architectures") or ["x86_64"])[0]
    memory_gb = float(properties.get("MemorySize", 128)) / 1024
    duration = float(seconds if seconds is not None else properties.get("Timeout", 3))
    return {f"lambda.gb_second.{architecture}": runs * memory_gb * duration, "lambda.request": runs}


def _schedules(stack: StackTemplate) -> Iterable[tuple[str, str, list[Mapping[str, Any]]]]:
    """(logical id, expression, targets) of every enabled schedule of the stack: EventBridge Scheduler schedules
    and scheduled EventBridge rules."""
    for schedule_id, schedule in stack.resources("AWS::Scheduler::Schedule"):
        expression = schedule.get("ScheduleExpression")
        if expression and schedule.get("State", "ENABLED") == "ENABLED":
            yield schedule_id, expression, [schedule.get("Target", {})]
    for rule_id, rule in stack.resources("AWS::Events::Rule"):
        expression = rule.get("ScheduleExpression")
        if expression and rule.get("State", "ENABLED") == "ENABLED":
            yield rule_id, expression, list(rule.get("Targets", []))


def _scheduled_functions(stack: StackTemplate) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    """(schedule name, schedule, function properties) for every schedule targeting a function of the stack."""
    functions = dict(stack.resources("AWS::Lambda::Function"))
    for schedule_id, schedule, targets in _schedules(stack):
        for target in targets:
            function_id = target_logical_id(target)
            if function_id in functions:
                yield stack.construct_name(schedule_id), schedule, functions[function_id]


def _drift_jobs(pricer: _Pricer, scope: str, stack: StackTemplate, function: Mapping[str, Any],
                runs: float) -> list[Line]:
    """With monitoring.drift.engine = processing each scheduled drift run starts one Processing job."""
    from mlplatform.monitoring.processing_job import ProcessingJobSettings

    variables = function.get("Environment", {}).get("Variables", {})
    if variables.get("DRIFT_ENGINE") != "processing":
        return []
    instance = variables.get("PROCESSING_INSTANCE_TYPE")
    seconds = int(ProcessingJobSettings.__dataclass_fields__["max_runtime_seconds"].default)  # type: ignore[arg-type]
    hours = seconds / 3600
    return [pricer.line(scope, f"drift Processing job ({instance} x1)", f"{runs:.0f} runs x {hours:g} instance-h",
                        f"at most: every job runs its MaxRuntimeInSeconds ({seconds} s)",
                        {f"sagemaker.processing.{instance}": runs * hours})]


def _pipelines(stack: StackTemplate) -> Iterable[tuple[str, dict[str, Any]]]:
    for _, properties in stack.resources("AWS::SageMaker::Pipeline"):
        body = properties.get("PipelineDefinition", {}).get("PipelineDefinitionBody")
        if body is not None:
            yield str(properties.get("PipelineName", "")), json.loads(join_text(body))


def _pipeline_schedules(stacks: Sequence[StackTemplate], pipeline: str) -> list[str]:
    found = []
    for stack in stacks:
        for _, schedule, targets in _schedules(stack):
            if any(_starts_pipeline(target, pipeline) for target in targets):
                found.append(schedule)
    return found


def _starts_pipeline(target: Mapping[str, Any], pipeline: str) -> bool:
    """A rule's pipeline target (its ARN names the pipeline) or a Scheduler schedule's StartPipelineExecution
    (its input names it)."""
    if f":pipeline/{pipeline}" in json.dumps(target):
        return True
    text = target.get("Input")
    if not isinstance(text, str):
        return False
    try:
        request = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(request, Mapping) and request.get("PipelineName") == pipeline


def _parameter_default(definition: Mapping[str, Any], value: Any) -> Any:
    if isinstance(value, Mapping) and "Get" in value:
        name = str(value["Get"]).removeprefix("Parameters.")
        for parameter in definition.get("Parameters", []):
            if parameter["Name"] == name:
                return parameter.get("DefaultValue")
    return value


def _training_lines(pricer: _Pricer, scope: str, stacks: Sequence[StackTemplate], config: EnvironmentConfig
                    ) -> tuple[list[Line], list[UsageRate]]:
    from pipelines.definition import iter_steps

    lines: list[Line] = []
    usage: list[UsageRate] = []
    for stack in stacks:
        for pipeline, definition in _pipelines(stack):
            schedules = _pipeline_schedules(stacks, pipeline)
            runs = sum(runs_per_month(s) for s in schedules)
            when = (f"{runs:.2f} scheduled runs a month ({', '.join(schedules)})" if schedules
                    else "no scheduled run")
            for step in iter_steps(definition):
                arguments = step.get("Arguments", {})
                if step["Type"] == "Training":
                    resources = arguments["ResourceConfig"]
                    kind, seconds = "training", arguments["StoppingCondition"]["MaxRuntimeInSeconds"]
                elif step["Type"] == "Processing":
                    resources = arguments["ProcessingResources"]["ClusterConfig"]
                    kind, seconds = "processing", arguments["StoppingCondition"]["MaxRuntimeInSeconds"]
                elif step["Type"] == "Transform":  # an own image's scoring: no run-time bound to price by
                    usage.append(_transform_rate(pricer, scope, step))
                    continue
                else:
                    continue
                instance = _parameter_default(definition, resources["InstanceType"])
                count = int(resources["InstanceCount"])
                hours = count * seconds / 3600
                key = f"sagemaker.{kind}.{instance}"
                basis = f"at most: every run's {step['Name']} job runs its MaxRuntimeInSeconds ({seconds} s)"
                if kind == "training" and arguments.get("EnableManagedSpotTraining"):
                    basis += f"; {SPOT_NOTE}"
                if config.training.retrain_on_new_data:
                    basis += "; runs started by new data or by hand come on top (see usage: per run)"
                lines.append(pricer.line(scope, f"{kind} step {step['Name']} ({instance} x{count})",
                                         f"{when} x {hours:g} instance-h", basis, {key: runs * hours}))
                per_run, missing, _ = pricer.cost({key: hours})
                usage.append(UsageRate(scope=scope, item=f"{kind} step {step['Name']} ({instance})",
                                       per="training run", usd=None if per_run is None else round(per_run, 4),
                                       basis=basis.split(";")[0], unknown=missing))
    return lines, usage


def _transform_rate(pricer: _Pricer, scope: str, step: Mapping[str, Any]) -> UsageRate:
    """A pipeline's Transform step (an own image's scoring of the training and test rows) per instance-hour: a
    transform job has no MaxRuntimeInSeconds (CreateTransformJob), so its time is the rows' and not bounded here."""
    resources = step["Arguments"]["TransformResources"]
    instance, count = resources["InstanceType"], int(resources["InstanceCount"])
    per_hour, missing, _ = pricer.cost({f"sagemaker.transform.{instance}": count})
    return UsageRate(scope=scope, item=f"transform step {step['Name']} ({instance} x{count})",
                     per="instance-hour of a training run's scoring", usd=None if per_hour is None else
                     round(per_hour, 4), basis="a transform job has no run-time bound: as long as its rows take",
                     unknown=missing)


def _endpoint_lines(pricer: _Pricer, scope: str, config: EnvironmentConfig) -> tuple[list[Line], list[str]]:
    serving = config.serving
    if not serving.served_stages:
        return [], [f"{scope}: {config.name} serves no registry stage, so its deployer never creates the endpoint "
                    "(serving.served_stages is empty): no instance-hours"]
    variants = [(CHAMPION, serving.champion)]
    if serving.challenger_enabled:
        variants.append((CHALLENGER, serving.challenger))
    lines = []
    for name, variant in variants:
        key = f"sagemaker.hosting.{variant.instance_type}"
        lines.append(pricer.line(
            scope, f"endpoint {name} ({variant.instance_type})",
            f"{variant.min_instances}-{variant.max_instances} instances x {HOURS_PER_MONTH:g} h",
            "instances run all month whether or not requests arrive; autoscaling moves between min_instances and "
            "max_instances (the endpoint exists from the first promotion on)",
            {key: variant.min_instances * HOURS_PER_MONTH}, {key: variant.max_instances * HOURS_PER_MONTH}))
    return lines, []


def _fixed_lines(pricer: _Pricer, scope: str, stacks: Sequence[StackTemplate], features: int,
                 variants: int) -> list[Line]:
    lines: list[Line] = []
    for stack in stacks:
        for rule, schedule, function in _scheduled_functions(stack):
            runs = runs_per_month(schedule)
            lines.append(pricer.line(
                scope, f"Lambda runs of {stack.stack}/{rule}",
                f"{runs:.0f} runs x {function.get('MemorySize', 128)} MB x {function.get('Timeout', 3)} s",
                f"at most: every run of {schedule} lasts the function's timeout", _lambda_quantities(function, runs)))
            lines += _drift_jobs(pricer, scope, stack, function, runs)
    alarm_metrics = sum(alarm_metric_count(props) for stack in stacks
                        for _, props in stack.resources("AWS::CloudWatch::Alarm"))
    alarms = sum(1 for stack in stacks for _ in stack.resources("AWS::CloudWatch::Alarm"))
    if alarms:
        lines.append(pricer.line(scope, "CloudWatch alarms", f"{alarms} alarms, {alarm_metrics} alarm metrics",
                                 "standard resolution; a metric-math alarm is billed per metric it reads",
                                 {"cloudwatch.alarm_metric": alarm_metrics}))
    dashboards = sum(1 for stack in stacks for _ in stack.resources("AWS::CloudWatch::Dashboard"))
    if dashboards:
        lines.append(pricer.line(scope, "CloudWatch dashboards", f"{dashboards} dashboards",
                                 "the account's first three dashboards are free; not deducted",
                                 {"cloudwatch.dashboard": dashboards}))
    metrics = _custom_metrics(stacks)
    if metrics or features:
        per_feature = features * variants
        lines.append(pricer.line(
            scope, "CloudWatch custom metrics", f"{len(metrics) + per_feature} metrics",
            f"at least: the {len(metrics)} {CUSTOM_NAMESPACE} metrics alarms and dashboards read, plus FeatureDrift "
            f"per feature and variant ({per_feature}); the drift run publishes a few more per variant "
            "(docs/MONITORING.md)", {"cloudwatch.custom_metric": len(metrics) + per_feature}))
    keys = sum(1 for stack in stacks for _ in stack.resources("AWS::KMS::Key"))
    if keys:
        lines.append(pricer.line(scope, "KMS keys", f"{keys} keys", "a customer managed key costs per month it exists",
                                 {"kms.key": keys}))
    return lines


def _custom_metrics(stacks: Sequence[StackTemplate]) -> set[str]:
    """Distinct custom-namespace metrics (name and dimensions) named by alarms and dashboards."""
    found: set[str] = set()
    for stack in stacks:
        for _, alarm in stack.resources("AWS::CloudWatch::Alarm"):
            queries = alarm.get("Metrics") or [{"MetricStat": {"Metric": alarm}}]
            for query in queries:
                metric = query.get("MetricStat", {}).get("Metric", {})
                if metric.get("Namespace") == CUSTOM_NAMESPACE:
                    found.add(json.dumps([metric.get("MetricName"), metric.get("Dimensions")], sort_keys=True,
                                         default=str))
        for _, dashboard in stack.resources("AWS::CloudWatch::Dashboard"):
            body = json.loads(join_text(dashboard.get("DashboardBody", "{}")) or "{}")
            for widget in body.get("widgets", []):
                for row in widget.get("properties", {}).get("metrics", []) or []:
                    if isinstance(row, list) and len(row) >= 2 and row[0] == CUSTOM_NAMESPACE:
                        fields = [part for part in row if not isinstance(part, dict)]
                        found.add(json.dumps(fields, default=str))
    return found


def _usage_rates(pricer: _Pricer, stacks: Sequence[StackTemplate], config: EnvironmentConfig,
                 scopes: Mapping[str, str]) -> list[UsageRate]:
    """``scopes``: the model each model stack belongs to (the older layout's InferenceApi stack is shared)."""
    rates: list[UsageRate] = []
    for stack in stacks:
        if stack.stack != "InferenceApi" and stack.stack not in scopes:
            continue
        for _, function in stack.resources("AWS::Lambda::Function"):
            if stack.stack != "InferenceApi" and function.get("Handler") != INFERENCE_HANDLER:
                continue
            price, missing, _ = pricer.cost(_lambda_quantities(function, 1_000_000))
            rates.append(UsageRate(
                scope=scopes.get(stack.stack, SHARED), item="inference API function", per="1M requests",
                usd=None if price is None else round(price, 2), unknown=missing,
                basis=f"at most: each request lasts the function's {function.get('Timeout')} s timeout; API Gateway's "
                      "request price comes on top"))
    storage = config.storage
    for what, days in (("captured requests and prediction logs", storage.capture_retention_days),
                       ("replaced object versions", storage.noncurrent_version_expiration_days)):
        price, missing, _ = pricer.cost({"s3.standard": days / (HOURS_PER_MONTH / 24)})
        rates.append(UsageRate(scope=SHARED, item=f"S3 storage of {what}", per="GB written per day",
                               usd=None if price is None else round(price, 4), unknown=missing,
                               basis=f"kept {days} days (storage settings), so each GB a day holds {days} GB"))
    return rates


def estimate(config: EnvironmentConfig, stacks: Sequence[StackTemplate], table: PriceTable,
             repo_root: Path) -> Estimate:
    pricer = _Pricer(table, config.region)
    models = models_of(config, repo_root, stacks)
    result = Estimate(environment=config.name, region=config.region, models=[m.name for m in models])
    claimed: dict[str, str] = {}
    for model in models:
        view = model.config or config  # the model's serving and training settings over the environment's
        variants = 2 if view.serving.challenger_enabled else 1
        own = [s for s in stacks if s.stack in model.stacks]
        claimed.update((s.stack, model.name) for s in own)
        endpoint, notes = _endpoint_lines(pricer, model.name, view)
        training, per_run = _training_lines(pricer, model.name, own, view)
        result.lines += endpoint + training + _fixed_lines(pricer, model.name, own, model.features, variants)
        result.usage += per_run
        result.notes += notes
    shared = [s for s in stacks if s.stack not in claimed]
    result.lines += _fixed_lines(pricer, SHARED, shared, 0, 2 if config.serving.challenger_enabled else 1)
    result.usage += _usage_rates(pricer, stacks, config,
                                 {stack: model for stack, model in claimed.items() if stack not in MODEL_STACKS})
    if config.region not in table.regions:
        result.notes.append(f"the price table has no prices for {config.region} (it covers {', '.join(table.regions)}):"
                            " every line is unknown")
    result.notes.append("not counted: requests to SQS, SNS, EventBridge, Step Functions, DynamoDB and S3, logs "
                        "ingestion, data transfer: they cost per use and nothing while idle")
    result.prices = {"table": table.path, "read_on": table.read_on, "regions": table.regions,
                     "sources": {key: dict(table.sources[key]) for key in sorted(pricer.used)}}
    return result
