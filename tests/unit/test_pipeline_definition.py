"""The pipeline definition: valid Create* requests, resolvable references, deterministic output."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape
from botocore.validate import ParamValidator

from mlsettings.quality import GATE_METRICS, decide_gate, gate_checks
from mlsettings.vocabulary import SCORE_ANSWERS
from pipelines.definition import (
    EVALUATION_REPORT,
    PARAMETERS,
    PipelineSettings,
    build_definition,
    build_source_bundle,
    iter_steps,
)

SETTINGS = PipelineSettings(
    pipeline_name="mlops-dev-training", role_arn="arn:aws:iam::123456789012:role/job",
    image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0",
    artifact_bucket="artifacts", kms_key_id="arn:aws:kms:eu-west-1:123456789012:key/abc",
    code_uri="s3://assets/abc.gz", code_file_name="abc.gz", schema_uri="s3://assets/def.json",
    schema_file_name="def.json", no_baseline_uri="s3://assets/none.json", model_package_group="mlops-dev-churn",
    model="churn",
    default_data_uri="s3://data/training/", training_instance_type="ml.g5.xlarge", training_instance_count=1,
    processing_instance_type="ml.m5.xlarge", volume_size_gb=30, use_spot=True, max_run_seconds=3600,
    max_wait_seconds=7200, checkpointing=True, num_round=200, quality_metric="auc", quality_threshold=0.95,
    inference_instance_types=("ml.m5.large",), transform_instance_types=("ml.m5.xlarge",),
    expected_p99_latency_ms=200.0,
)
OPERATIONS = {"Processing": ("CreateProcessingJob", "ProcessingJobName", "DescribeProcessingJob"),
              "Training": ("CreateTrainingJob", "TrainingJobName", "DescribeTrainingJob"),
              "RegisterModel": ("CreateModelPackage", None, "DescribeModelPackage"),
              # Pipelines' Model and Transform steps: CreateModel / CreateTransformJob without the name, their
              # properties DescribeModel's / DescribeTransformJob's (the SageMaker SDK's CreateModelStep and
              # TransformStep, sagemaker 2.257.6 workflow/steps.py)
              "Model": ("CreateModel", "ModelName", "DescribeModel"),
              "Transform": ("CreateTransformJob", "TransformJobName", "DescribeTransformJob")}
EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return build_definition(SETTINGS)


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


def _substitute(value: Any, shape: Shape, found: list[Any]) -> Any:
    """Replace pipeline expressions with a value of the type the request shape wants at that place."""
    if _is_expression(value):
        found.append(value)
        return {"string": "s3://bucket/placeholder", "integer": 1, "long": 1, "float": 1.0, "double": 1.0,
                "boolean": True}[shape.type_name]
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _substitute(v, shape.members[k], found) if k in shape.members else v for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_substitute(v, shape.member, found) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _substitute(v, shape.value, found) for k, v in value.items()}
    return value


def test_every_step_is_a_valid_create_request(definition: dict[str, Any]) -> None:
    assert _valid_requests(definition) == 6  # validate, preprocess, train, evaluate, baseline, register


def _valid_requests(definition: dict[str, Any]) -> int:
    checked = 0
    for step in iter_steps(definition):
        if step["Type"] not in OPERATIONS:
            continue
        operation, name_member, _ = OPERATIONS[step["Type"]]
        input_shape = SAGEMAKER.operation_model(operation).input_shape
        arguments = dict(step["Arguments"])
        if name_member:
            assert name_member not in arguments
            arguments[name_member] = "pipelines-placeholder"
        expressions: list[Any] = []
        report = ParamValidator().validate(_substitute(arguments, input_shape, expressions), input_shape)
        assert not report.has_errors(), f"{step['Name']}: {report.generate_report()}"
        checked += 1
    return checked


def _all_expressions(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if _is_expression(node) else []
        return found + [e for v in node.values() for e in _all_expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in _all_expressions(v)]
    return []


def _resolve_describe_path(shape: Shape, path: str) -> Shape:
    for part in re.findall(r"[A-Za-z0-9]+|\['[^']+'\]|\[\d+\]", path):
        if part.startswith("["):
            assert shape.type_name == "list", path
            shape = shape.member
            continue
        assert shape.type_name == "structure" and part in shape.members, f"{part} is not in {shape.name} ({path})"
        shape = shape.members[part]
    return shape


def test_every_reference_resolves(definition: dict[str, Any]) -> None:
    assert _resolved_references(definition) > 20


def _resolved_references(definition: dict[str, Any]) -> int:
    steps = {s["Name"]: s for s in iter_steps(definition)}
    declared = {name for name, _ in PARAMETERS}
    references = 0
    for expression in _all_expressions(definition["Steps"]):
        if "Get" in expression and isinstance(expression["Get"], str):
            target = expression["Get"]
            kind, _, rest = target.partition(".")
            if kind == "Parameters":
                assert rest in declared, target
            elif kind == "Steps":
                step_name, _, path = rest.partition(".")
                assert step_name in steps, target
                step = steps[step_name]
                if path.startswith("PropertyFiles."):
                    names = [p["PropertyFileName"] for p in step.get("PropertyFiles", [])]
                    assert path.removeprefix("PropertyFiles.") in names, target
                else:
                    describe = OPERATIONS[step["Type"]][2]
                    _resolve_describe_path(SAGEMAKER.operation_model(describe).output_shape, path)
                    for output in re.findall(r"Outputs\['([^']+)'\]", path):
                        outputs = [o["OutputName"] for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]]
                        assert output in outputs, target
            else:
                assert target in {"Execution.PipelineExecutionId", "Execution.PipelineExecutionArn",
                                  "Execution.PipelineName"}, target
            references += 1
    return references


def test_parameters_declare_types_and_defaults(definition: dict[str, Any]) -> None:
    params = {p["Name"]: p for p in definition["Parameters"]}
    assert set(params) == {name for name, _ in PARAMETERS}
    assert params["QualityThreshold"] == {"Name": "QualityThreshold", "Type": "Float", "DefaultValue": 0.95}
    assert params["PreviousBaselineUri"]["DefaultValue"] == "s3://assets/none.json"


def test_quality_gate_compares_the_configured_metric_and_fails_with_a_message(definition: dict[str, Any]) -> None:
    (gate,) = [s for s in definition["Steps"] if s["Type"] == "Condition"]
    # The value and its 95 % lower confidence bound must both clear the threshold (Conditions are ANDed).
    condition, bound = gate["Arguments"]["Conditions"]
    assert condition["Type"] == bound["Type"] == "GreaterThanOrEqualTo"
    json_get = condition["LeftValue"]["Std:JsonGet"]
    assert json_get["Path"] == "binary_classification_metrics.auc.value"
    assert bound["LeftValue"]["Std:JsonGet"]["Path"] == "binary_classification_metrics.auc.lower_bound_95"
    assert json_get["PropertyFile"] == {"Get": f"Steps.Evaluate.PropertyFiles.{EVALUATION_REPORT}"}
    assert condition["RightValue"] == bound["RightValue"] == {"Get": "Parameters.QualityThreshold"}
    assert [s["Name"] for s in gate["Arguments"]["IfSteps"]] == ["Baseline", "Register"]
    (fail,) = gate["Arguments"]["ElseSteps"]
    message = json.dumps(fail["Arguments"]["ErrorMessage"])
    assert "Quality gate failed: auc" in message and "QualityThreshold" in message and "JsonGet" in message


_CONDITIONS = {"GreaterThanOrEqualTo": lambda a, b: a >= b, "LessThanOrEqualTo": lambda a, b: a <= b}


def _condition_step_passes(gate: dict[str, Any], report: dict[str, Any], threshold: float) -> bool:
    """SageMaker's Condition step, read from the definition: JsonGet each LeftValue, compare (ANDed)."""
    outcome = True
    for condition in gate["Arguments"]["Conditions"]:
        assert condition["RightValue"] == {"Get": "Parameters.QualityThreshold"}
        node: Any = report
        for part in condition["LeftValue"]["Std:JsonGet"]["Path"].split("."):
            node = node[part]
        outcome = outcome and _CONDITIONS[condition["Type"]](node, threshold)
    return outcome


@pytest.mark.parametrize("metric", GATE_METRICS)
def test_the_condition_step_and_the_local_gate_decide_alike(metric: str) -> None:
    """The pipeline's Condition step and the local run's decide_gate come from mlsettings.quality.gate_checks;
    on the same reports they decide the same, including the case a bound alone fails."""
    definition = build_definition(dataclasses.replace(SETTINGS, quality_metric=metric))
    (gate,) = [s for s in definition["Steps"] if s["Type"] == "Condition"]
    seen = set()
    value_path, bound_path = (check.path.split(".") for check in gate_checks(metric))
    for value, bound, threshold in itertools.product((0.7, 0.9, 0.95), (0.6, 0.9, 0.94), (0.8, 0.9, 0.95)):
        report = {value_path[0]: {metric: {value_path[2]: value, bound_path[2]: bound}}}
        expected = _condition_step_passes(gate, report, threshold)
        assert decide_gate(report, metric=metric, threshold=threshold).passed is expected
        seen.add(expected)
    assert seen == {True, False}


def test_training_is_spot_with_checkpoints_encrypted_and_isolated(definition: dict[str, Any]) -> None:
    (train,) = [s for s in definition["Steps"] if s["Type"] == "Training"]
    args = train["Arguments"]
    assert args["EnableManagedSpotTraining"] is True
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert args["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert args["EnableNetworkIsolation"] is True
    assert args["EnableInterContainerTrafficEncryption"] is True
    # ml.g5.xlarge mounts NVMe instance storage: the API refuses a volume key there (mlsettings.instance_types).
    assert "VolumeKmsKeyId" not in args["ResourceConfig"]
    assert args["OutputDataConfig"]["KmsKeyId"] == SETTINGS.kms_key_id
    assert args["HyperParameters"]["device"] == "auto"  # the train step picks cuda where it sees a GPU
    # The toolkit's `pip install .` of the code must work without an index (network isolation).
    assert args["Environment"]["PIP_NO_INDEX"] == "1" and args["Environment"]["PIP_NO_BUILD_ISOLATION"] == "0"
    assert all(isinstance(v, str) or _is_expression(v) for v in args["HyperParameters"].values())
    assert "code" in [c["ChannelName"] for c in args["InputDataConfig"]]


@pytest.mark.parametrize(("instance_type", "keyed"), [("ml.g5.xlarge", False), ("ml.g4dn.xlarge", False),
                                                      ("ml.p3.2xlarge", True), ("ml.m5.xlarge", True)])
def test_train_volume_key_follows_the_storage_class(instance_type: str, keyed: bool) -> None:
    """GIVEN a training type WHEN the definition is built THEN the volume key is there exactly when the type has no
    local storage, and a run may only pick types of the same storage class (EnumValues + the Validate check)."""
    import dataclasses

    from mlsettings.instance_types import has_local_storage, same_storage_class

    enum = SAGEMAKER.shape_for("TrainingInstanceType").enum
    settings = dataclasses.replace(SETTINGS, training_instance_type=instance_type,
                                   training_instance_types=tuple(same_storage_class(instance_type, enum)))
    definition = build_definition(settings)
    (train,) = [s for s in definition["Steps"] if s["Type"] == "Training"]
    assert ("VolumeKmsKeyId" in train["Arguments"]["ResourceConfig"]) is keyed
    (parameter,) = [p for p in definition["Parameters"] if p["Name"] == "TrainingInstanceType"]
    assert instance_type in parameter["EnumValues"]
    assert all(has_local_storage(t) is not keyed for t in parameter["EnumValues"])
    (validate,) = [s for s in definition["Steps"] if s["Name"] == "Validate"]
    arguments = validate["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--training-storage") + 1] == ("ebs" if keyed else "local")
    assert arguments[arguments.index("--training-instance-type") + 1] == {"Get": "Parameters.TrainingInstanceType"}


def test_no_spot_means_no_max_wait() -> None:
    import dataclasses

    definition = build_definition(dataclasses.replace(SETTINGS, use_spot=False, checkpointing=False))
    (train,) = [s for s in definition["Steps"] if s["Type"] == "Training"]
    assert "EnableManagedSpotTraining" not in train["Arguments"]
    assert "MaxWaitTimeInSeconds" not in train["Arguments"]["StoppingCondition"]
    assert "CheckpointConfig" not in train["Arguments"]


def test_register_carries_lineage_and_starts_in_development(definition: dict[str, Any]) -> None:
    (register,) = [s for s in iter_steps(definition) if s["Type"] == "RegisterModel"]
    args = register["Arguments"]
    assert args["ModelLifeCycle"]["Stage"] == "Development"
    assert args["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    metadata = args["CustomerMetadataProperties"]
    for key in ("git_commit", "config_hash", "data_uri", "data_lineage_uri", "pipeline_execution_arn",
                "training_job_name", "training_log_location", "quality_metric", "quality_value",
                "quality_threshold", "quality_gate_passed", "expected_p99_latency_ms", "instance_type"):
        assert key in metadata, key
    assert args["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["ContentType"] == "application/json"
    assert "SamplePayloadUrl" in args


def test_processing_steps_encrypt_and_isolate(definition: dict[str, Any]) -> None:
    for step in iter_steps(definition):
        if step["Type"] != "Processing":
            continue
        args = step["Arguments"]
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == SETTINGS.kms_key_id
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == SETTINGS.kms_key_id
        assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
        assert args["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
        assert args["ProcessingInputs"][0]["InputName"] == "code"


def test_definition_and_code_bundle_are_byte_identical_across_builds() -> None:
    assert json.dumps(build_definition(SETTINGS), sort_keys=False) == json.dumps(build_definition(SETTINGS))
    assert build_source_bundle() == build_source_bundle()


def test_processing_arguments_are_accepted_by_the_step_scripts(definition: dict[str, Any]) -> None:
    """The definition and the scripts agree: every ContainerArguments list parses with the script's parser,
    and the script the entry point runs exists in the code bundle."""
    import importlib
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(build_source_bundle()), mode="r:gz") as bundle:
        bundled = set(bundle.getnames())
    for step in iter_steps(definition):
        if step["Type"] != "Processing":
            continue
        spec = step["Arguments"]["AppSpecification"]
        script = re.search(r"python3 /opt/ml/code/(\S+\.py)", spec["ContainerEntrypoint"][2]).group(1)
        assert script in bundled, script
        module = importlib.import_module(script.removesuffix(".py").replace("/", "."))
        arguments = [a if isinstance(a, str) else "s3://placeholder" for a in spec["ContainerArguments"]]
        parsed = module.parse_args(arguments)
        assert parsed is not None
        local_inputs = {i["S3Input"]["LocalPath"] for i in step["Arguments"]["ProcessingInputs"]}
        for flag, value in itertools.pairwise(arguments):
            if flag.endswith("-dir") and value.startswith("/opt/ml/processing/input"):
                assert value in local_inputs, (step["Name"], flag, value)


def test_training_program_and_channels_exist(definition: dict[str, Any]) -> None:
    import io
    import tarfile

    (train,) = [s for s in definition["Steps"] if s["Type"] == "Training"]
    program = train["Arguments"]["HyperParameters"]["sagemaker_program"]
    # The toolkit runs `python -m <sagemaker_program minus .py>`: a module name, not a path.
    assert "/" not in program and not program.endswith(".py")
    with tarfile.open(fileobj=io.BytesIO(build_source_bundle()), mode="r:gz") as bundle:
        assert program.replace(".", "/") + ".py" in bundle.getnames()
    channels = [c["ChannelName"] for c in train["Arguments"]["InputDataConfig"]]
    assert channels == ["train", "validation", "test", "metadata", "code"]


def test_vpc_from_config_reaches_every_job() -> None:
    import dataclasses

    definition = build_definition(dataclasses.replace(SETTINGS, subnets=("subnet-0abc12345",),
                                                      security_group_ids=("sg-0abc12345",)))
    vpc = {"Subnets": ["subnet-0abc12345"], "SecurityGroupIds": ["sg-0abc12345"]}
    for step in iter_steps(definition):
        if step["Type"] == "Processing":
            assert step["Arguments"]["NetworkConfig"]["VpcConfig"] == vpc
        elif step["Type"] == "Training":
            assert step["Arguments"]["VpcConfig"] == vpc


def test_the_validate_step_receives_the_configured_drift_thresholds() -> None:
    """The Validate step compares new data with the previous training data by the configured thresholds (it used
    DriftThresholds' own, different defaults), each in an argument of its own (at most 256 characters each)."""
    import dataclasses

    from mlsettings.config import drift_thresholds, parse_environment

    configured = drift_thresholds(parse_environment("dev", {"monitoring": {"drift": {"psi_threshold": 0.3}}}))
    definition = build_definition(dataclasses.replace(SETTINGS, drift_thresholds=configured))
    (validate,) = [s for s in definition["Steps"] if s["Name"] == "Validate"]
    arguments = validate["Arguments"]["AppSpecification"]["ContainerArguments"]
    passed = {arguments[i + 1].split("=")[0]: json.loads(arguments[i + 1].split("=", 1)[1])
              for i, a in enumerate(arguments) if a == "--drift-threshold"}
    assert passed == configured and passed["psi"] == 0.3
    assert all(len(a) <= 256 for a in arguments if isinstance(a, str))


# ------------------------------------------------------------------------------ an own image (training.code.kind image)
TEAM_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-dev/churn@sha256:" + "ab" * 32
IMAGE_SETTINGS = dataclasses.replace(SETTINGS, training_kind="image", team_image=TEAM_IMAGE)


def test_an_own_images_pipeline_is_valid_requests_whose_references_resolve() -> None:
    definition = build_definition(IMAGE_SETTINGS)
    steps = {s["Name"]: s for s in iter_steps(definition)}
    # validate, preprocess, train, the team's model, its batch scoring, evaluate, baseline, register
    assert _valid_requests(definition) == 8
    assert _resolved_references(definition) > 20
    train, model, score = steps["Train"]["Arguments"], steps["TeamModel"]["Arguments"], steps["Score"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == TEAM_IMAGE == model["PrimaryContainer"]["Image"]
    assert not any(name.startswith("sagemaker_") for name in train["HyperParameters"])
    assert "code" not in {c["ChannelName"] for c in train["InputDataConfig"]}
    assert model["EnableNetworkIsolation"] is True and train["EnableNetworkIsolation"] is True
    assert score["ModelName"] == {"Get": "Steps.TeamModel.ModelName"}
    assert score["TransformInput"]["SplitType"] == "Line" and score["TransformOutput"]["AssembleWith"] == "Line"
    # Evaluate and Baseline read the batch answers, never a model folder (no framework could load the team's model)
    for name in ("Evaluate", "Baseline"):
        inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in steps[name]["Arguments"]["ProcessingInputs"]}
        assert "model" not in inputs
        assert inputs[SCORE_ANSWERS] == {"Get": "Steps.Score.TransformOutput.S3OutputPath"}
    container = steps["Register"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert container == {"Image": TEAM_IMAGE, "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}
    assert json.dumps(build_definition(IMAGE_SETTINGS), sort_keys=False) == json.dumps(definition, sort_keys=False)


def test_an_own_image_without_a_digest_is_one_fail_step_that_says_what_to_do() -> None:
    definition = build_definition(dataclasses.replace(IMAGE_SETTINGS, team_image=None))
    (step,) = definition["Steps"]
    assert step["Type"] == "Fail" and "no image yet" in step["Arguments"]["ErrorMessage"]
    assert "training.code.image_digest" in step["Arguments"]["ErrorMessage"]
