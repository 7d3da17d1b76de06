"""Author the training pipeline's shape with the SageMaker Python SDK v2 and write ``pipeline.definition()``.

Runs under the SDK's own virtual environment (bench/.venv-sdk), started by bench/bench_sdk_pipeline.py inside a
network namespace without a network. Each workaround and stabilising knob is a flag, so the benchmark can show
which one each failure or difference needs:

    bench/.venv-sdk/bin/python bench/sdk/author_v2.py --out def.json [--code local|s3] [--session plain|fixed]
        [--custom-prefix] [--job-names] [--stub-aws] [--code-root DIR]

Prints one JSON line: {"ok", "error", "seconds": {"import", "author", "definition"}, "notes"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

# The project's names, defined once in mlsettings (standard library only, so the SDK's interpreter imports it too).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mlsettings.vocabulary import EVALUATION_FILE, PENDING_MANUAL_APPROVAL

HERE = Path(__file__).resolve().parent
REGION = "eu-west-1"
ACCOUNT = "111122223333"
BUCKET = "bench-sdk-artifacts"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench-sdk-pipeline"
# The project's image (pipelines/images.py): the SDK v2 does not know XGBoost 3.2-0 (see image_uri()).
PROJECT_IMAGE = f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:3.2-0"
CODE_S3 = f"s3://{BUCKET}/code/0123456789abcdef"
PIPELINE = "bench-sdk-training"


def image_uri(notes: list[str]) -> str:
    from sagemaker import image_uris

    try:
        return str(image_uris.retrieve("xgboost", region=REGION, version="3.2-0"))
    except ValueError as error:
        notes.append(f"image_uris.retrieve('xgboost', version='3.2-0') refused: {str(error).splitlines()[0][:160]}")
    older = image_uris.retrieve("xgboost", region=REGION, version="3.0-5")
    notes.append(f"image_uris.retrieve 3.0-5 works offline ({older}); the project's 3.2-0 URI is used instead")
    return PROJECT_IMAGE


def session(kind: str):  # type: ignore[no-untyped-def]
    import boto3
    from sagemaker.workflow.pipeline_context import PipelineSession

    boto = boto3.Session(region_name=REGION)
    if kind == "plain":
        return PipelineSession(boto_session=boto, default_bucket=BUCKET)

    class FixedBucketSession(PipelineSession):  # type: ignore[misc]
        """default_bucket() calls S3 (HeadBucket, CreateBucket) even when the bucket is named; this one never."""

        def default_bucket(self) -> str:
            return BUCKET

    return FixedBucketSession(boto_session=boto, default_bucket=BUCKET)


def stub_aws(calls: list[str]) -> None:
    """Answer every AWS API call in-process (recorded, never sent): what definition() would need from AWS."""
    from botocore.client import BaseClient

    def answer(self, operation, params):  # type: ignore[no-untyped-def]
        calls.append(f"{self.meta.service_model.service_name}:{operation}")
        canned = {"PutObject": {"ETag": '"0"'}, "ListBuckets": {"Buckets": [{"Name": BUCKET}]},
                  "GetCallerIdentity": {"Account": ACCOUNT, "Arn": ROLE}}
        return canned.get(operation, {})

    BaseClient._make_api_call = answer


def author(args: argparse.Namespace, notes: list[str]):  # type: ignore[no-untyped-def]
    from sagemaker.model import Model
    from sagemaker.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_definition_config import PipelineDefinitionConfig
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.xgboost.estimator import XGBoost

    sm = session(args.session)
    image = image_uri(notes)
    data_uri = ParameterString("DataUri", default_value=f"s3://{BUCKET}/data/")
    instance_type = ParameterString("TrainingInstanceType", default_value="ml.m5.large")
    threshold = ParameterFloat("QualityThreshold", default_value=0.7)
    approval = ParameterString("ModelApprovalStatus", default_value=PENDING_MANUAL_APPROVAL)
    num_round = ParameterInteger("NumRound", default_value=50)
    local = args.code == "local"
    code = str(args.code_root / "steps.py") if local else f"{CODE_S3}/steps.py"
    names = {"base_job_name": "bench-sdk"} if args.job_names else {}

    def processor(name: str) -> ScriptProcessor:
        return ScriptProcessor(image_uri=image, command=["python3"], role=ROLE, instance_count=1,
                               instance_type="ml.m5.large", sagemaker_session=sm, **names)

    def output(step: str, name: str) -> ProcessingOutput:
        return ProcessingOutput(output_name=name, source=f"/opt/ml/processing/output/{name}",
                                destination=Join(on="/", values=[f"s3://{BUCKET}/pipeline-outputs",
                                                                 ExecutionVariables.PIPELINE_EXECUTION_ID, step, name]))

    data = ProcessingInput(source=data_uri, destination="/opt/ml/processing/input/data", input_name="data")
    validate = ProcessingStep("Validate", step_args=processor("validate").run(
        code=code, inputs=[data], outputs=[output("Validate", "report")], arguments=["--step", "validate"]))
    preprocess = ProcessingStep("Preprocess", depends_on=[validate], step_args=processor("preprocess").run(
        code=code, inputs=[data], outputs=[output("Preprocess", n) for n in ("train", "validation", "test")],
        arguments=["--step", "preprocess"]))
    outputs = preprocess.properties.ProcessingOutputConfig.Outputs

    from sagemaker.inputs import TrainingInput

    source_dir = str(args.code_root / "team_code") if local else f"{CODE_S3}/team.tar.gz"
    estimator = XGBoost(entry_point="train.py", source_dir=source_dir,
                        framework_version="3.2-0", image_uri=image, role=ROLE, instance_count=1,
                        instance_type=instance_type, output_path=f"s3://{BUCKET}/models/sdk",
                        hyperparameters={"num_round": num_round}, sagemaker_session=sm,
                        enable_network_isolation=True, **names)
    train = TrainingStep("Train", step_args=estimator.fit(inputs={
        channel: TrainingInput(s3_data=outputs[channel].S3Output.S3Uri, content_type="text/csv")
        for channel in ("train", "validation", "test")}))

    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path=EVALUATION_FILE)
    evaluate = ProcessingStep("Evaluate", property_files=[report], step_args=processor("evaluate").run(
        code=code, inputs=[ProcessingInput(source=train.properties.ModelArtifacts.S3ModelArtifacts,
                                           destination="/opt/ml/processing/input/model", input_name="model"),
                           ProcessingInput(source=outputs["test"].S3Output.S3Uri,
                                           destination="/opt/ml/processing/input/test", input_name="test")],
        outputs=[output("Evaluate", "evaluation")], arguments=["--step", "evaluate"]))

    model = Model(image_uri=image, model_data=train.properties.ModelArtifacts.S3ModelArtifacts, role=ROLE,
                  sagemaker_session=sm, env={"SAGEMAKER_PROGRAM": "inference.py"})
    metrics = ModelMetrics(model_statistics=MetricsSource(content_type="application/json", s3_uri=Join(
        on="/", values=[evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
                        EVALUATION_FILE])))
    register = ModelStep("Register", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"], model_package_group_name="bench-sdk-models",
        approval_status=approval, model_metrics=metrics))
    gate = ConditionStep("QualityGate", conditions=[ConditionGreaterThanOrEqualTo(
        left=JsonGet(step_name="Evaluate", property_file=report, json_path="metrics.auc.value"), right=threshold)],
        if_steps=[register], else_steps=[FailStep("QualityGateFailed", error_message="quality gate failed")])
    config = PipelineDefinitionConfig(use_custom_job_prefix=args.custom_prefix)
    return Pipeline(name=PIPELINE, parameters=[data_uri, instance_type, threshold, approval, num_round],
                    steps=[validate, preprocess, train, evaluate, gate], sagemaker_session=sm,
                    pipeline_definition_config=config)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--code", choices=("local", "s3"), default="s3")
    parser.add_argument("--session", choices=("plain", "fixed"), default="fixed")
    parser.add_argument("--custom-prefix", action="store_true")
    parser.add_argument("--job-names", action="store_true")
    parser.add_argument("--code-root", type=Path, default=HERE, help="folder of steps.py and team_code/")
    parser.add_argument("--stub-aws", action="store_true", help="answer AWS calls in-process (and list them)")
    args = parser.parse_args()
    notes: list[str] = []
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    result: dict[str, object] = {"ok": False, "error": None, "seconds": seconds, "notes": notes}
    try:
        import sagemaker

        seconds["import"] = time.perf_counter() - started
        calls: list[str] = []
        result["aws_calls"] = calls
        if args.stub_aws:
            stub_aws(calls)
        result["sdk"] = sagemaker.__version__
        mark = time.perf_counter()
        pipeline = author(args, notes)
        seconds["author"] = time.perf_counter() - mark
        mark = time.perf_counter()
        definition = pipeline.definition()
        seconds["definition"] = time.perf_counter() - mark
        args.out.write_text(definition, encoding="utf-8")
        result["ok"] = True
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        where = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames if "sagemaker" in f.filename][-3:]
        result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
        result["where"] = where
    seconds["total"] = time.perf_counter() - started
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
