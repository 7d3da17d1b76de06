"""The SDK v3 probe of bench/bench_sdk_pipeline.py: a script-mode ModelTrainer in a one-step pipeline.

Runs under bench/.venv-sdk3 inside a network namespace without a network; region and role validation are set
before the SDK is imported, every AWS call is answered in-process (and listed), the code is an s3:// URI:

    bench/.venv-sdk3/bin/python bench/sdk/author_v3.py --out def.json [--custom-prefix]

Prints one JSON line like author_v2.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from author_v2 import ACCOUNT, BUCKET, CODE_S3, PIPELINE, PROJECT_IMAGE, REGION, ROLE, stub_aws

os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")


def author(args: argparse.Namespace, notes: list[str]):  # type: ignore[no-untyped-def]
    import boto3
    from sagemaker.core import image_uris
    from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, SourceCode
    from sagemaker.core.workflow.parameters import ParameterInteger
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.pipeline_definition_config import PipelineDefinitionConfig
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    class FixedBucketSession(PipelineSession):  # type: ignore[misc]
        def default_bucket(self) -> str:
            return BUCKET

    session = FixedBucketSession(boto_session=boto3.Session(region_name=REGION), default_bucket=BUCKET)
    image = image_uris.retrieve("xgboost", region=REGION, version="3.2-0")
    notes.append(f"v3 image_uris.retrieve('xgboost', version='3.2-0') offline: {image}")
    if image != PROJECT_IMAGE:
        notes.append(f"v3 image differs from the project's {PROJECT_IMAGE}")
    num_round = ParameterInteger("NumRound", default_value=50)
    trainer = ModelTrainer(training_image=image, role=ROLE, sagemaker_session=session, base_job_name="bench-sdk",
                           source_code=SourceCode(source_dir=f"{CODE_S3}/team.tar.gz", entry_script="train.py"),
                           compute=Compute(instance_type="ml.m5.large", instance_count=1),
                           output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/models/sdk"),
                           hyperparameters={"num_round": "50"})
    train = TrainingStep("Train", step_args=trainer.train(input_data_config=[
        InputData(channel_name="train", data_source=f"s3://{BUCKET}/data/train/")]))
    return Pipeline(name=PIPELINE, parameters=[num_round], steps=[train], sagemaker_session=session,
                    pipeline_definition_config=PipelineDefinitionConfig(use_custom_job_prefix=args.custom_prefix))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--custom-prefix", action="store_true")
    args = parser.parse_args()
    notes: list[str] = [f"account {ACCOUNT}"][:0]
    seconds: dict[str, float] = {}
    result: dict[str, object] = {"ok": False, "error": None, "seconds": seconds, "notes": notes}
    calls: list[str] = []
    result["aws_calls"] = calls
    started = time.perf_counter()
    try:
        stub_aws(calls)  # botocore first: the SDK may call AWS while it is imported
        from importlib.metadata import version

        import sagemaker.train  # noqa: F401

        seconds["import"] = time.perf_counter() - started
        result["sdk"] = version("sagemaker")
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
        result["where"] = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames][-4:]
        message = " | ".join(str(error).splitlines()[:3])[:400]
        result["error"] = f"{type(error).__name__}: {message}"
    seconds["total"] = time.perf_counter() - started
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
