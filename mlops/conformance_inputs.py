"""What `mlops conformance` gives an image's programs: exactly what the pipeline's Train step gives training.

* The channels: the project's own Preprocess step (``pipelines.steps.preprocess``) run on the data and schema, its
  output folders named as an own image's Train step's ``InputDataConfig`` names them (``train``, ``validation``,
  ``test``, ``metadata``, each with its ContentType).
* The hyperparameters: that Train step's ``HyperParameters`` (``pipelines.definition``, training.code.kind
  ``image``), with pipeline parameters at their defaults.
* The golden requests: rows of the test split (raw features in the schema's order, no label, no header) as
  ``text/csv`` — one single-row request and one batch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplatform.conformance.byoc_check import InvocationCase
from mlsettings.config.model import TrainingSettings
from mlsettings.problem_types import TYPES
from mlsettings.schema import DataSchema

BATCH_ROWS = 20
PLACEHOLDER_IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/conformance/check@sha256:" + "0" * 64
"""The image the check's pipeline definition names (the check runs a folder's programs; nothing is pulled)."""


@dataclass(frozen=True, kw_only=True)
class ImageInputs:
    channels: dict[str, Path]
    channel_content_types: dict[str, str]
    hyperparameters: dict[str, str]
    requests: list[InvocationCase]
    instance_type: str


def prepare_inputs(*, schema_path: Path, data_csv: Path, workdir: Path) -> ImageInputs:
    """Run Preprocess on the data into ``workdir`` and derive channels, hyperparameters and requests."""
    from pipelines.steps import preprocess

    schema = DataSchema.load(schema_path)
    data_dir = workdir / "input"
    data_dir.mkdir(parents=True)
    (data_dir / data_csv.name).write_bytes(data_csv.read_bytes())
    output = workdir / "preprocess"
    preprocess.main(["--input-dir", str(data_dir), "--schema", str(schema_path), "--output-dir", str(output),
                     "--data-uri", str(data_csv)])
    step = train_step(schema)
    args = step["Arguments"]
    declared = args["InputDataConfig"]
    return ImageInputs(
        channels={c["ChannelName"]: output / c["ChannelName"] for c in declared},
        channel_content_types={c["ChannelName"]: c["ContentType"] for c in declared},
        hyperparameters=dict(step["HyperParameters"]),
        requests=golden_requests(schema, output / "test_raw"),
        instance_type=step["InstanceType"])


def train_step(schema: DataSchema, *, num_round: int | None = None) -> dict[str, Any]:
    """An own image's Train step in the pipeline definition for a model of the schema's kind, with the
    configuration's defaults (``num_round``: NumRound's); ``HyperParameters`` resolved (pipeline parameters at their
    defaults) and the instance type it runs on."""
    from mlsettings.training_code import IMAGE
    from pipelines.definition import PipelineSettings, build_definition, iter_steps

    defaults = TrainingSettings()
    settings = PipelineSettings(
        pipeline_name="conformance", role_arn="", image_uri="", artifact_bucket="", kms_key_id="", code_uri="",
        code_file_name="sourcedir.tar.gz", schema_uri="", schema_file_name="", no_baseline_uri="",
        model_package_group="", model="conformance", default_data_uri="",
        training_instance_type=defaults.instance_type, training_instance_count=defaults.instance_count,
        processing_instance_type=defaults.processing_instance_type, volume_size_gb=defaults.volume_size_gb,
        use_spot=False, max_run_seconds=defaults.max_run_seconds, max_wait_seconds=defaults.max_wait_seconds,
        checkpointing=False, num_round=defaults.num_round if num_round is None else num_round,
        training_kind=IMAGE, team_image=PLACEHOLDER_IMAGE,
        quality_metric=TYPES[schema.problem_type].gate_metrics[0].name, quality_threshold=0.5,
        # the serving fields shape only the Register step, which the check does not read
        inference_instance_types=("ml.m5.large",), transform_instance_types=("ml.m5.large",),
        expected_p99_latency_ms=100.0)
    definition = build_definition(settings)
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    step = next(s for s in iter_steps(definition) if s["Type"] == "Training")
    args = step["Arguments"]
    return {"Arguments": args,
            "HyperParameters": {name: resolve(value, parameters) for name, value in args["HyperParameters"].items()},
            "InstanceType": resolve(args["ResourceConfig"]["InstanceType"], parameters)}


def resolve(value: Any, parameters: Mapping[str, Any]) -> str:
    """A pipeline expression as SageMaker evaluates it at run time: ``Get Parameters.X`` is the parameter's value,
    ``Std:Join`` joins its resolved values; a literal is its string (HyperParameters are strings)."""
    if isinstance(value, dict) and "Get" in value and str(value["Get"]).startswith("Parameters."):
        return str(parameters[value["Get"].removeprefix("Parameters.")])
    if isinstance(value, dict) and "Std:Join" in value:
        join = value["Std:Join"]
        return str(join["On"]).join(resolve(v, parameters) for v in join["Values"])
    if isinstance(value, dict | list):
        raise ValueError(f"a Train step value the check cannot resolve offline: {value!r}")
    return str(value)


def golden_requests(schema: DataSchema, test_raw: Path) -> list[InvocationCase]:
    """The test split's raw rows, features only in the schema's order: one row alone, then a batch."""
    rows: list[list[str]] = []
    for path in sorted(test_raw.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            rows += [[record.get(name) or "" for name in schema.feature_names] for record in csv.DictReader(handle)]
    if not rows:
        raise ValueError("the test split has no rows")
    batch = rows[:BATCH_ROWS]
    return [InvocationCase(name="single_row", body=_csv(rows[:1]), rows=1),
            InvocationCase(name="batch_csv", body=_csv(batch), rows=len(batch))]


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
