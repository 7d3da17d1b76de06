"""The requests the product builds from the *synthesized* cloud assembly, checked against the APIs' whole rule
set: botocore's shapes in full (tests/api_rules/shapes.py) and the rules AWS states only in prose
(tests/api_rules/prose.py), for both topologies (every environment in one account, each in its own).

- the training pipeline's steps: the deployed PipelineDefinitionBody with CloudFormation's values resolved
  (tests/infra/cloud_model.py) and the pipeline's own expressions (parameters at their defaults, step properties
  as SageMaker names them) — CreateProcessingJob x4, CreateTrainingJob, CreateModelPackage;
- the deployer's requests under each consumer's deployed environment, for a first deployment, a blue/green
  update, a new instance type and a Challenger switched off: CreateModel, CreateEndpointConfig, CreateEndpoint,
  UpdateEndpoint, RegisterScalableTarget, PutScalingPolicy;
- batch scoring's CreateTransformJob and the drift Processing job's CreateProcessingJob under theirs.

tests/infra/test_recorded_requests.py checks, in the second stage, every request the suite's runs made.
Negative controls below: each prose rule refuses its known-bad request, the shape validator what botocore's own
validator lets through.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from lambdas.batch_scoring.settings import settings_from_environment as batch_settings
from lambdas.deployer.settings import settings_from_environment as deployer_settings
from lambdas.drift_monitor.settings import processing_job_settings, settings_from_environment
from mlcore.drift.window import Window
from mlplatform.monitoring.processing_job import (
    PARTIALS_DIR,
    SHARDS_DIR,
    job_name,
    job_outputs,
    processing_job_request,
    report_prefix,
)
from mlplatform.serving import deployment_actions as actions
from mlplatform.serving.deployment_plan import PromotionRequest, plan_deployment
from mlplatform.serving.endpoint_state import EndpointState, VariantState
from mlplatform.serving.transform_job import transform_request
from mlsettings.config import load_environments
from mlsettings.naming import pipeline_name
from mlsettings.training_code import IMAGE
from pipelines.definition import iter_steps
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.api_rules.prose import RULES, prose_problems
from tests.api_rules.shapes import validate
from tests.infra.cloud_model import Stage
from tests.infra.conftest import IN_ITS_ACCOUNT, TOPOLOGIES, SynthesizedApp, _synthesize, topology_stages

NOW = datetime(2026, 12, 6, 6, tzinfo=UTC)
EXECUTION = "a1b2c3d4e5f6"
OPERATIONS = {"Processing": ("CreateProcessingJob", "ProcessingJobName"),
              "Training": ("CreateTrainingJob", "TrainingJobName"),
              "RegisterModel": ("CreateModelPackage", None),
              # an own image's scoring (training.code.kind image): Pipelines' Model and Transform steps
              "Model": ("CreateModel", "ModelName"),
              "Transform": ("CreateTransformJob", "TransformJobName")}


def problems_of(service: str, operation: str, request: Mapping[str, Any]) -> list[str]:
    return validate(service, operation, request) + prose_problems(operation, request)


@pytest.fixture(scope="module")
def stages(synthesized: SynthesizedApp, three_accounts: SynthesizedApp) -> dict[str, Stage]:
    return topology_stages(synthesized, three_accounts)  # type: ignore[return-value]


def model_stack(app: SynthesizedApp, env: str) -> str:
    """The name of MODEL's stack in ``app``'s ``env`` (its template's name in cdk.out): the sample model whose
    functions and pipeline the requests below are built from (every model's come from the same code)."""
    return app.stages[env].models[MODEL].artifact_id


@pytest.fixture(scope="module")
def model_stacks(synthesized: SynthesizedApp, three_accounts: SynthesizedApp) -> dict[str, str]:
    """topology -> MODEL's stack in that topology's stage."""
    return {topology: model_stack(three_accounts if topology.endswith(IN_ITS_ACCOUNT) else synthesized,
                                  topology.removesuffix(IN_ITS_ACCOUNT)) for topology in TOPOLOGIES}


# ------------------------------------------------------------------------------------------ the pipeline
def _pipeline_value(value: Any, parameters: Mapping[str, Any], bucket: str) -> Any:
    """A pipeline expression as SageMaker evaluates it at run time, with the parameters' defaults."""
    if isinstance(value, list):
        return [_pipeline_value(v, parameters, bucket) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        path = value["Get"]
        if path.startswith("Parameters."):
            return parameters[path.removeprefix("Parameters.")]
        if path == "Execution.PipelineExecutionId":
            return EXECUTION
        if path == "Execution.PipelineExecutionArn":
            return f"arn:aws:sagemaker:eu-west-1:111122223333:pipeline/p/execution/{EXECUTION}"
        step = path.split(".")[1]
        if path.endswith("ModelArtifacts.S3ModelArtifacts"):
            return f"s3://{bucket}/models/pipelines-{EXECUTION}-Train-0a1b2c3d/output/model.tar.gz"
        if path.endswith("TrainingJobName"):
            return f"pipelines-{EXECUTION}-Train-0a1b2c3d"
        if path.endswith(".ModelName"):
            return f"pipelines-{EXECUTION}-{step}-0a1b2c3d"
        if path.endswith("TransformOutput.S3OutputPath"):
            return f"s3://{bucket}/pipelines/{EXECUTION}/{step}/output"
        output = re.search(r"Outputs\['([^']+)'\]", path)
        if output:
            return f"s3://{bucket}/pipelines/{EXECUTION}/{step}/{output.group(1)}"
        raise AssertionError(f"unknown property {path}")
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(_pipeline_value(v, parameters, bucket)) for v in join["Values"])
    if set(value) == {"Std:JsonGet"}:
        return 0.97
    return {k: _pipeline_value(v, parameters, bucket) for k, v in value.items()}


def pipeline_requests(stage: Stage, name: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The requests of the steps of the pipeline named ``name``."""
    pipelines = [p for p in stage.resources("AWS::SageMaker::Pipeline") if p.properties["PipelineName"] == name]
    assert len(pipelines) == 1, f"{stage.name} has {len(pipelines)} pipelines named {name}"
    for pipeline in pipelines:
        body = stage.resolve(pipeline.stack, pipeline.properties["PipelineDefinition"]["PipelineDefinitionBody"])
        definition = json.loads(body)
        parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        bucket = next(a for a in re.findall(r"s3://([^/\"]+)/", body) if "artifacts" in a or "Artifact" in a)
        for step in iter_steps(definition):
            if step["Type"] not in OPERATIONS:
                continue
            operation, name_key = OPERATIONS[step["Type"]]
            request = _pipeline_value(step["Arguments"], parameters, bucket)
            if name_key:  # SageMaker names a pipeline's jobs pipelines-<execution>-<step>-<suffix>
                request[name_key] = f"pipelines-{EXECUTION}-{step['Name']}-0a1b2c3d"[:63]
            yield step["Name"], operation, request


REGISTRY_TOPOLOGIES = [t for t in TOPOLOGIES if t.startswith("dev")]


def every_pipeline_request(stages: Mapping[str, Stage]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, operation, request) of every step of every sampled model's pipeline (each kind of training code
    included) in both topologies."""
    for topology in REGISTRY_TOPOLOGIES:
        config = load_environments(sampled_project_context())[topology.removesuffix(IN_ITS_ACCOUNT)]
        for model in config.model_names:
            for step, operation, request in pipeline_requests(stages[topology],
                                                              pipeline_name(config.for_model(model))):
                yield f"{topology} {model} {step}", operation, request


def test_every_pipeline_step_is_a_request_the_api_accepts(stages: dict[str, Stage]) -> None:
    found = list(every_pipeline_request(stages))
    config = load_environments(sampled_project_context())["dev"]
    steps = ["Baseline", "Evaluate", "Preprocess", "Register", "Train", "Validate"]
    # an own image's model is scored by its image: the TeamModel (CreateModel) and Score (CreateTransformJob) steps
    expected = [step for model in config.model_names for step in
                steps + (["Score", "TeamModel"] if config.for_model(model).training.code.kind == IMAGE else [])]
    assert sorted(where.rsplit(" ", 1)[1] for where, _, _ in found) == sorted(expected * len(REGISTRY_TOPOLOGIES))
    problems = [f"{where}: {p}" for where, operation, request in found
                for p in problems_of("sagemaker", operation, request)]
    assert problems == []


# ------------------------------------------------------------------------------------------ the deployer
def _function_environment(stage: Stage, stack: str, handler_prefix: str) -> dict[str, str]:
    """The deployed environment of the function of ``stack`` (a model's stack: one function per handler)."""
    (function,) = [f for f in stage.resources("AWS::Lambda::Function") if f.stack == stack
                   and str(f.properties.get("Handler", "")).startswith(handler_prefix)]
    variables = stage.resolve(function.stack, function.properties.get("Environment", {}).get("Variables", {}))
    return {k: str(v) for k, v in variables.items()}


def _deployer_environments(stages: Mapping[str, Stage], model_stacks: Mapping[str, str]
                           ) -> Iterator[tuple[str, Stage, dict[str, str]]]:
    configs = load_environments(sampled_project_context())
    for topology in TOPOLOGIES:
        env = topology.removesuffix(IN_ITS_ACCOUNT)
        if configs[env].serving.served_stages:
            stage = stages[topology]
            yield topology, stage, _function_environment(stage, model_stacks[topology],
                                                         "lambdas.deployer.handler.start_deployment")


def _package(stage: Stage, group: str, version: int) -> str:
    return f"arn:aws:sagemaker:{stage.region}:111111111111:model-package/{group}/{version}"


def _serving(plan: Mapping[str, Any], instance_type: str | None = None) -> EndpointState:
    return EndpointState(endpoint_name=plan["endpoint_name"], status="InService",
                         endpoint_config_name=plan["endpoint_config_name"], variants={
                             name: VariantState(name=name, model_name=spec["model_name"],
                                                model_package_arn=spec["model_package_arn"],
                                                instance_type=instance_type or spec["instance_type"],
                                                instance_count=spec["instance_count"], weight=spec["weight"])
                             for name, spec in plan["variants"].items()})


def deployer_requests(stage: Stage, environment: Mapping[str, str]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(scenario, service, operation, request) of a first deployment, a blue/green update, a new instance type
    and the Challenger switched off, under the deployed environment."""
    settings = deployer_settings(environment)
    stage_name = settings.served_stages[0]
    group = settings.model_package_group  # the deployer's model's group (another group's promotions are skipped)

    def promotion(version: int) -> PromotionRequest:
        return PromotionRequest(model_package_group=group, model_package_arn=_package(stage, group, version),
                                version=version, target_stage=stage_name, reason="promotion", requested_by="approver")

    first = plan_deployment(promotion(1), None, None, settings, now=NOW, deployment_id="d1")
    update = plan_deployment(promotion(2), _serving(first), None, settings, now=NOW, deployment_id="d2")
    resized = plan_deployment(promotion(3), _serving(first, "ml.m5.2xlarge"), None, settings, now=NOW,
                              deployment_id="d3")
    scenarios = {"create": first, "update": update, "new instance type": resized}
    if "Challenger" in first["variants"]:
        single = copy.deepcopy(environment)
        serving = json.loads(single["SERVING_SETTINGS"])
        serving["challenger_enabled"] = False
        single["SERVING_SETTINGS"] = json.dumps(serving)
        scenarios["challenger off"] = plan_deployment(promotion(4), _serving(first), None,
                                                      deployer_settings(single), now=NOW, deployment_id="d4")
    for scenario, plan in scenarios.items():
        for spec in plan["variants"].values():
            if spec["create_model"]:
                yield scenario, "sagemaker", "CreateModel", actions.create_model_request(spec, settings)
        if plan["endpoint_config"]:
            yield scenario, "sagemaker", "CreateEndpointConfig", plan["endpoint_config"]
        if plan["operation"] == "create":
            yield scenario, "sagemaker", "CreateEndpoint", actions.create_endpoint_request(plan)
        if plan["update_endpoint"]:
            yield scenario, "sagemaker", "UpdateEndpoint", plan["update_endpoint"]
        for target, policy in actions.scaling_requests(plan["endpoint_name"], plan["variants"]).values():
            yield scenario, "application-autoscaling", "RegisterScalableTarget", target
            yield scenario, "application-autoscaling", "PutScalingPolicy", policy


def test_every_deployer_request_is_one_the_api_accepts(stages: dict[str, Stage], model_stacks: dict[str, str]
                                                        ) -> None:
    seen: set[tuple[str, str]] = set()
    problems = []
    for topology, stage, environment in _deployer_environments(stages, model_stacks):
        for scenario, service, operation, request in deployer_requests(stage, environment):
            seen.add((scenario, operation))
            problems += [f"{topology} {scenario} {operation}: {p}" for p in problems_of(service, operation, request)]
    assert problems == []
    assert {("create", "CreateEndpoint"), ("update", "UpdateEndpoint"), ("challenger off", "UpdateEndpoint"),
            ("new instance type", "CreateEndpointConfig"), ("create", "PutScalingPolicy")} <= seen


def test_a_removed_or_resized_variant_is_deregistered_and_blue_green_keeps_the_variant_names(
        stages: dict[str, Stage], model_stacks: dict[str, str]) -> None:
    """Developer Guide: "Update endpoints that use auto scaling" (deregister before changing a variant's instance
    type or removing it) and deployment-guardrails "Exclusions" (blue/green needs the same variant names)."""
    for _topology, stage, environment in _deployer_environments(stages, model_stacks):
        settings = deployer_settings(environment)
        group = settings.model_package_group
        first = plan_deployment(PromotionRequest(
            model_package_group=group, model_package_arn=_package(stage, group, 1), version=1,
            target_stage=settings.served_stages[0], reason="promotion", requested_by="a"), None, None, settings,
            now=NOW, deployment_id="d1")
        resized = plan_deployment(PromotionRequest(
            model_package_group=group, model_package_arn=_package(stage, group, 2), version=2,
            target_stage=settings.served_stages[0], reason="promotion", requested_by="a"),
            _serving(first, "ml.m5.2xlarge"), None, settings, now=NOW, deployment_id="d2")
        assert resized["deregister_scaling"] == sorted(first["variants"])
        assert "DeploymentConfig" in (resized["update_endpoint"] or {})


# ------------------------------------------------------------------------------------------ batch and drift job
def test_batch_scoring_requests_are_ones_the_api_accepts(stages: dict[str, Stage], model_stacks: dict[str, str]
                                                          ) -> None:
    problems = []
    for topology, stage in stages.items():
        environment = _function_environment(stage, model_stacks[topology], "lambdas.batch_scoring.handler")
        settings = batch_settings(environment)
        request = transform_request(name=f"{settings.endpoint_name}-batch-20261206-060000", model_name="m-1",
                                    input_uri=f"{settings.default_input_uri}day/", settings=settings,
                                    now=NOW, model_version="7")
        problems += [f"{topology}: {p}" for p in problems_of("sagemaker", "CreateTransformJob", request)]
    assert problems == []


@pytest.fixture(scope="module")
def processing_engine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Stage, str]:
    """dev with monitoring.drift.engine: processing (the default runs the drift engine in the Lambda), and MODEL's
    stack in it."""
    context = copy.deepcopy(sampled_project_context())
    context["environments"]["dev"].setdefault("monitoring", {}).setdefault("drift", {})["engine"] = "processing"
    context["env"] = "dev"
    app = _synthesize(tmp_path_factory.mktemp("processing-engine.out"), context)
    region = load_environments(sampled_project_context())["dev"].region
    return Stage.load(app.outdir, "dev", region), model_stack(app, "dev")


def drift_job_request(processing_engine: tuple[Stage, str]) -> dict[str, Any]:
    environment = _function_environment(*processing_engine, "lambdas.drift_monitor.handler")
    job = processing_job_settings(environment)
    assert job is not None
    window = Window(start=datetime(2026, 12, 5, 6, tzinfo=UTC), end=NOW)
    name = job_name(environment["ENDPOINT_NAME"], window)
    settings = settings_from_environment(environment)
    folder = report_prefix(settings, window)
    request = processing_job_request(
        name=name, job=job,
        arguments=["--shard", "--endpoint", environment["ENDPOINT_NAME"], "--partials-out", PARTIALS_DIR,
                   "--shards-out", SHARDS_DIR],
        inputs=[{"InputName": "code", "AppManaged": False, "S3Input": {
            "S3Uri": job.code_uri, "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix",
            "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}],
        outputs=job_outputs(settings, folder), instance_count=job.max_instances)
    return request


def test_the_drift_job_request_is_one_the_api_accepts(processing_engine: tuple[Stage, str]) -> None:
    assert problems_of("sagemaker", "CreateProcessingJob", drift_job_request(processing_engine)) == []


def _isolated(operation: str, request: Mapping[str, Any]) -> bool:
    network = request.get("NetworkConfig", {}) if operation == "CreateProcessingJob" else request
    return network.get("EnableNetworkIsolation") is True


def test_network_isolation_is_on_in_every_job_and_model_the_product_creates(
        stages: dict[str, Stage], model_stacks: dict[str, str], processing_engine: tuple[Stage, str]) -> None:
    """Issue 26: a team's training code must bring its packages as wheels because no job the product starts has a
    network (Developer Guide, "Run Training and Inference Containers in Internet-Free Mode"). Every training and
    processing job of every sampled model's pipeline (each kind of training code), every model the deployer
    creates (each scenario, each consumer, both topologies) and the drift job, each built from the deployed
    assembly; the batch transform job runs on the deployer's model, and the registry's CreateModelPackage starts
    no container."""
    # CreateModelPackage starts no container; an own image's Score step (CreateTransformJob) runs on its TeamModel
    # step's model, whose CreateModel is among the requests checked
    found = [(where, operation, request) for where, operation, request in every_pipeline_request(stages)
             if operation not in ("CreateModelPackage", "CreateTransformJob")]
    for topology, stage, environment in _deployer_environments(stages, model_stacks):
        found += [(f"{topology} {scenario}", operation, request)
                  for scenario, _service, operation, request in deployer_requests(stage, environment)
                  if operation == "CreateModel"]
    found.append(("dev drift job", "CreateProcessingJob", drift_job_request(processing_engine)))
    assert {operation for _, operation, _ in found} == {"CreateTrainingJob", "CreateProcessingJob", "CreateModel"}
    assert [f"{where} {operation}" for where, operation, request in found if not _isolated(operation, request)] == []


# ------------------------------------------------------------------------------------------ negative controls
@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_each_prose_rule_refuses_its_known_bad_request(rule: Any) -> None:
    operation, request = rule.bad
    assert rule.check(operation, request), f"{rule.id} let its negative control through"
    assert rule.quote and rule.source


@pytest.mark.parametrize(("operation", "request_", "expected"), [
    ("CreateProcessingJob", {"ProcessingJobName": "j", "RoleArn": "arn:aws:iam::111122223333:role/r",
                             "AppSpecification": {"ImageUri": "i", "ContainerArguments": ["a" * 300]},
                             "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1,
                                                                       "InstanceType": "ml.m5.xlarge",
                                                                       "VolumeSizeInGB": 30}}},
     "300 characters is above ContainerArgument's maximum 256"),
    ("CreateProcessingJob", {"ProcessingJobName": "j", "RoleArn": "arn:aws:iam::111122223333:role/r",
                             "AppSpecification": {"ImageUri": "i"},
                             "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1,
                                                                       "InstanceType": "ml.not-a-type",
                                                                       "VolumeSizeInGB": 99999}}},
     "'ml.not-a-type' is not one of ProcessingInstanceType's"),
    ("CreateModelPackage", {"ModelPackageGroupName": "g",
                            "CustomerMetadataProperties": {"input_schema": "schema.json#sha256=1"}},
     "does not match CustomerMetadataValue's pattern"),
    ("CreateEndpoint", {"EndpointName": "bad_name", "EndpointConfigName": "c"}, "does not match EndpointName's"),
    ("CreateEndpoint", {"EndpointName": "e"}, "required member EndpointConfigName is missing"),
])
def test_the_shape_validator_refuses_what_botocore_lets_through(operation: str, request_: dict[str, Any],
                                                                expected: str) -> None:
    from botocore.validate import ParamValidator

    from tests.api_rules.shapes import service_model

    assert any(expected in p for p in validate("sagemaker", operation, request_))
    if "missing" not in expected:  # botocore's own validator sees only required members, types and minimums
        shape = service_model("sagemaker").operation_model(operation).input_shape
        assert not ParamValidator().validate(request_, shape).has_errors()
